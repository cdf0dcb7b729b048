//! The node: one replica of a protocol on a glommio (io_uring) executor.
//!
//! [`run`] checks the machine (kernel, io_uring, locked memory), loads the safety state
//! the replica last persisted, starts the network ([`olympus_net::Network`]) and runs
//! the main loop until SIGTERM or SIGINT:
//!
//! 1. **Peer frames** are decoded with bytecheck validation ([`Wire::from_bytes`]), then
//!    every signature and certificate in them is checked ([`Protocol::verify`]) before
//!    the [`Driver`] hands them to the protocol. A frame that fails either check is
//!    counted and reported to the network, which closes the link after too many. The
//!    frames one loop turn takes are decoded together and their signatures checked in
//!    one batch (`prime`); a protocol with [`Protocol::PEEKS`] sees them first, before
//!    the check (Apollo's next round leader builds on a block meanwhile), and what it
//!    sends then leaves before the check starts.
//! 2. **Client frames** ([`ClientRequest`]) are challenges, answered by a signature that
//!    proves this node's identity, and submissions, whose transactions go through the
//!    [`Batcher`] (duplicates dropped, bounded pool). Sealed batches are offered to the
//!    protocol's leader half; when it is full the node keeps one batch back and stops
//!    popping, so the pool fills and clients get [`ClientReply::Busy`] (backpressure).
//! 3. **Timers** of the protocol and the batcher's time bound.
//! 4. **Actions** go out through [`NodeEnv`]: messages are encoded once and queued to
//!    peers (a broadcast shares one buffer); safety state is stored in a [`DurableCell`]
//!    and is durable before the driver carries out the next action, so no vote leaves
//!    before the state that makes it safe; messages the node sends itself are handled
//!    after a yield, once what the same input sent to others has left (see
//!    [`Driver::defer_local`]); committed blocks are executed against the
//!    at-most-once ledger and every client gets one receipt per block holding its
//!    transactions.
//!
//! At exit the node prints one JSON line of counters to stdout, and its metrics
//! ([`crate::meters`]: protocol events, commits, rejected frames, verification,
//! persist and loop-turn times, queue depths) readably to stderr and as JSON to
//! `<data>/metrics.json` (or [`NodeSettings::metrics_out`]); with
//! [`NodeSettings::metrics_addr`] it also serves them live in the Prometheus format.
//!
//! ## What survives a crash
//!
//! - The protocol's safety state ([`DurableCell`] under `<data>/safety`): a restarted
//!   node never votes against what it voted before.
//! - The committed chain: every committed block is appended to a [`BatchLog`] under
//!   `<data>/chain` (keyed by block digest, checksummed) and its receipts wait until a
//!   write-back covering it has finished — group commit on a syncer thread
//!   (`Durability`), so the event loop never blocks on that disk flush and one flush
//!   serves every block appended before it. At start the node replays it: the at-most-once
//!   ledger is rebuilt, so a transaction executed before the crash is never executed
//!   again, and the node reports the height it recovered to. A torn tail (a crash in
//!   the middle of an append) is cut by the log's recovery; that block was not yet
//!   acknowledged to anyone by this node, and the protocol commits it again.
//! - Blocks committed by the others while the node was down reach it through the
//!   protocol's own catch-up (a proposal whose ancestors are unknown makes the replica
//!   fetch them from the proposer).
//!
//! ## Placement
//!
//! This runner executes the *compact* plan (every role on one shard: the right plan for
//! loopback clusters on small machines, where several node processes share the cores)
//! and the *verify* plan (signature checks on a second shard). Plans that split network,
//! mempool, leader and voter are refused with a clear error until the cross-shard runner
//! lands; the plan is printed at start-up either way.

use crate::dissem::{BatchStore, FetchBatches, Fetcher, Kind};
use crate::driver::{Driver, DriverError, Env};
use crate::meters::{Meters, Reject};
use crate::placement::{Placement, Role};
use crate::wire::Wire;
use olympus_crypto::{Committee, Keypair, Scheme};
use olympus_mempool::{
    Admission, BatchLog, Batcher, BatcherConfig, DurableCell, LogConfig, SealedBatch, SubmitError,
};
use olympus_net::{ClientConn, Frame, Incoming, NetConfig, NetHandle, Network};
use olympus_protocols::{BatchRef, Commit, Event, Protocol, ReplicaConfig};
use olympus_types::client::{
    identity_statement, ClientReply, ClientRequest, MAX_RECEIPT_NONCES, MAX_SUBMIT_TXS,
};
use olympus_types::config::NodeConfig;
use olympus_types::{Batch, Block, NodeId, Payload, PublicKeyBytes, Signature};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the main loop wakes at the latest, to notice a shutdown request.
pub const IDLE_WAKE: Duration = Duration::from_millis(50);
/// Most inbox frames handled before timers are looked at again.
pub const MAX_FRAMES_PER_TURN: usize = 256;
/// Most batches the protocol's leader half holds waiting to be proposed.
pub const MAX_PENDING_BATCHES: usize = 1024;
/// Most nonces above a client's contiguous prefix the ledger remembers; beyond it the
/// oldest are folded into the prefix (see [`Ledger`]).
pub const MAX_LEDGER_GAPS: usize = 1 << 20;
/// Most clients the ledger and the receipt table remember.
pub const MAX_LEDGER_CLIENTS: usize = 100_000;

/// A protocol the engine can run: its messages and safety state have rkyv encodings.
pub trait NodeProtocol: Protocol<Msg: Wire, Safety: Wire> {}
impl<P: Protocol<Msg: Wire, Safety: Wire>> NodeProtocol for P {}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Startup(#[from] olympus_net::checks::StartupError),
    #[error(transparent)]
    Net(#[from] olympus_net::NetError),
    #[error("safety state: {0}")]
    Safety(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("executor: {0}")]
    Executor(String),
    #[error("chain log: {0}")]
    Chain(String),
}

/// A batch holds at most this fraction of a block's transactions.
const BATCHES_PER_BLOCK: usize = 4;

/// Opens the chain log and replays it into a fresh ledger.
fn open_chain(
    dir: &std::path::Path,
    report: &mut NodeReport,
    mut store: Option<&mut BatchStore>,
) -> Result<(BatchLog, Ledger), NodeError> {
    let chain_err = |e: &dyn std::fmt::Display| NodeError::Chain(format!("{}: {e}", dir.display()));
    // Appends are written back by the syncer thread (see `Durability`), not by `append`;
    // segments are still created and sealed synced.
    let config = LogConfig {
        fsync: olympus_mempool::FsyncPolicy::EveryBytes(u64::MAX),
        ..LogConfig::new(dir)
    };
    let (log, recovery) = BatchLog::open(config).map_err(|e| chain_err(&e))?;
    if let Some(cut) = &recovery.truncated {
        eprintln!("chain log {}: cut a torn tail: {cut:?}", dir.display());
    }
    let mut ledger = Ledger::default();
    let digests: Vec<_> = log.records().map(|(_, d)| d).collect();
    for d in digests {
        let bytes = log
            .get(&d)
            .ok_or_else(|| chain_err(&"a listed record cannot be read"))?;
        let block = Block::from_bytes(&bytes).map_err(|e| chain_err(&e))?;
        report.recovered_blocks += 1;
        report.committed_height = report.committed_height.max(block.height);
        let batches: Vec<Arc<Batch>> = match &block.payload {
            Payload::Inline(b) => b.iter().cloned().map(Arc::new).collect(),
            Payload::Digests(ds) => {
                let store = store.as_deref_mut().ok_or_else(|| {
                    chain_err(&"blocks carry digests: use --dissemination digests")
                })?;
                ds.iter()
                    .map(|d| {
                        store
                            .get(d)
                            .ok_or_else(|| chain_err(&format!("batch {} is missing", d.short())))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        for tx in batches.iter().flat_map(|b| b.txs.iter()) {
            if ledger.execute(tx.client, tx.nonce) {
                report.recovered_txs += 1;
            }
        }
    }
    report.ledger_txs = report.recovered_txs;
    Ok((log, ledger))
}

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub config: NodeConfig,
    pub placement: Placement,
    /// Longest a transaction waits for its batch to fill.
    pub batch_delay: Duration,
    /// Pin the shard to this CPU; `None` lets the kernel schedule it (the right choice
    /// when several node processes share few cores).
    pub cpu: Option<usize>,
    /// Fault injection for tests: behave as a Byzantine node.
    pub fault: Option<Fault>,
    /// Where the metrics JSON goes at exit (default `<data>/metrics.json`).
    pub metrics_out: Option<PathBuf>,
    /// Serve the metrics live in the Prometheus text format on this address.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Byzantine behaviours a node can be told to show, for tests of the honest ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Sign every protocol message with a key that is not this node's (the peer links
    /// still authenticate with the real key): honest peers must drop and count them.
    MisSign,
}

/// Counters a node reports at exit.
#[derive(Clone, Debug, Default)]
pub struct NodeReport {
    pub node: u16,
    /// Blocks and transactions replayed from the chain log at start.
    pub recovered_blocks: u64,
    pub recovered_txs: u64,
    /// Height of the last committed block (recovered or new).
    pub committed_height: u64,
    /// Distinct transactions in the committed chain (recovered and new).
    pub ledger_txs: u64,
    pub committed_blocks: u64,
    pub committed_txs: u64,
    pub duplicate_txs: u64,
    pub accepted_txs: u64,
    pub busy_txs: u64,
    /// Resubmitted transactions proposed again because their first block was lost.
    pub readmitted_txs: u64,
    pub invalid_frames: u64,
    pub bad_signatures: u64,
    pub receipts_dropped: u64,
    pub persists: u64,
    pub messages_sent: u64,
    pub timers_fired: u64,
    pub uptime_s: f64,
}

impl NodeReport {
    /// One JSON object (no external serializer needed: every field is a number).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"node\":{},\"recovered_blocks\":{},\"recovered_txs\":{},\
             \"committed_height\":{},\"ledger_txs\":{},\"committed_blocks\":{},\"committed_txs\":{},\"duplicate_txs\":{},\
             \"accepted_txs\":{},\"busy_txs\":{},\"readmitted_txs\":{},\"invalid_frames\":{},\"bad_signatures\":{},\
             \"receipts_dropped\":{},\"persists\":{},\"messages_sent\":{},\"timers_fired\":{},\
             \"uptime_s\":{:.3}}}",
            self.node,
            self.recovered_blocks,
            self.recovered_txs,
            self.committed_height,
            self.ledger_txs,
            self.committed_blocks,
            self.committed_txs,
            self.duplicate_txs,
            self.accepted_txs,
            self.busy_txs,
            self.readmitted_txs,
            self.invalid_frames,
            self.bad_signatures,
            self.receipts_dropped,
            self.persists,
            self.messages_sent,
            self.timers_fired,
            self.uptime_s
        )
    }
}

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// Makes SIGTERM and SIGINT request a clean shutdown.
fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// Asks a running node (in this process) to stop, as SIGTERM does.
pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}

/// The keys and committee of a node file.
pub fn load_keys(cfg: &NodeConfig) -> Result<(Arc<Keypair>, Arc<Committee>), NodeError> {
    let bad = |e: &dyn std::fmt::Display| NodeError::Config(e.to_string());
    cfg.validate().map_err(|e| bad(&e))?;
    let mut pks = Vec::new();
    let mut pops = Vec::new();
    for m in &cfg.committee.members {
        pks.push(PublicKeyBytes(m.public_key_bytes().map_err(|e| bad(&e))?));
        pops.push(Signature(m.pop_bytes().map_err(|e| bad(&e))?));
    }
    let committee = Committee::with_proofs(Scheme::Bls, &pks, &pops).map_err(|e| bad(&e))?;
    let secret = cfg.secret_bytes().map_err(|e| bad(&e))?;
    let key =
        Keypair::from_secret_bytes(Scheme::Bls, NodeId(cfg.id), &secret).map_err(|e| bad(&e))?;
    if Some(key.public()) != committee.public(NodeId(cfg.id)) {
        return Err(NodeError::Config(format!(
            "the secret key of node {} does not match its public key in the committee",
            cfg.id
        )));
    }
    Ok((Arc::new(key), Arc::new(committee)))
}

/// Runs a node until SIGTERM/SIGINT; returns its counters.
pub fn run<P: NodeProtocol>(settings: NodeSettings) -> Result<NodeReport, NodeError> {
    let shards = settings.placement.shards();
    eprintln!(
        "olympus node {}: protocol {}, placement:\n{}",
        settings.config.id,
        P::NAME,
        settings.placement
    );
    let plan = &settings.placement;
    let core = plan.shard_of(Role::Network);
    if [Role::Mempool, Role::Leader, Role::Voter]
        .iter()
        .any(|r| plan.shard_of(*r) != core)
        || shards > 2
    {
        return Err(NodeError::Config(format!(
            "this node runs network, mempool, leader and voter on one shard, and \
             signature verification on the same shard or one of its own; the plan asks \
             for {shards} shards with the core roles apart: use --placement compact or \
             --placement verify"
        )));
    }
    let verify_apart = plan.shard_of(Role::Verify) != core;
    let memlock = olympus_net::checks::check_all(shards)?;
    eprintln!("olympus node {}: {memlock:?}", settings.config.id);
    let (key, committee) = load_keys(&settings.config)?;
    std::fs::create_dir_all(&settings.config.data_dir).map_err(|e| {
        NodeError::Config(format!(
            "cannot create data directory {}: {e}",
            settings.config.data_dir.display()
        ))
    })?;
    let mut cell = DurableCell::new(settings.config.data_dir.join("safety"))
        .map_err(|e| NodeError::Safety(e.to_string()))?;
    let restored = match cell.load().map_err(|e| NodeError::Safety(e.to_string()))? {
        None => None,
        Some(bytes) => Some(
            P::Safety::from_bytes(&bytes)
                .map_err(|e| NodeError::Safety(format!("{}: {e}", cell.path().display())))?,
        ),
    };
    if let Some(s) = &restored {
        eprintln!(
            "olympus node {}: restored safety state {s:?}",
            settings.config.id
        );
    }
    install_signal_handlers();
    let id = settings.config.id;
    if let Err(e) = crate::metrics::install() {
        eprintln!("olympus node {id}: metrics: {e}; this node records none");
    }
    if let Some(addr) = settings.metrics_addr {
        let bound = crate::metrics::serve(addr)
            .map_err(|e| NodeError::Config(format!("metrics endpoint on {addr}: {e}")))?;
        eprintln!("olympus node {id}: metrics on http://{bound}/metrics");
    }
    let metrics_out = settings
        .metrics_out
        .clone()
        .unwrap_or_else(|| settings.config.data_dir.join("metrics.json"));
    let placement = match settings.cpu {
        Some(cpu) => glommio::Placement::Fixed(cpu),
        None => glommio::Placement::Unbound,
    };
    let (verifier, verify_thread) = if verify_apart {
        let shard = settings.placement.shard_of(Role::Verify);
        let at = match settings.placement.cpu_of(shard) {
            Some(cpu) => glommio::Placement::Fixed(cpu),
            None => glommio::Placement::Unbound,
        };
        let (ends, thread) = crate::verify::start::<P>(
            at,
            committee.clone(),
            format!("olympus-verify-{}", settings.config.id),
        )
        .map_err(NodeError::Executor)?;
        (Some(ends), Some(thread))
    } else {
        (None, None)
    };
    let handle = olympus_net::rt::executor_builder(placement)
        .name(&format!("olympus-node-{}", settings.config.id))
        .spawn(move || async move {
            main_loop::<P>(settings, key, committee, cell, restored, verifier).await
        })
        .map_err(|e| NodeError::Executor(e.to_string()))?;
    let result = handle
        .join()
        .map_err(|e| NodeError::Executor(e.to_string()))?;
    if let Some(t) = verify_thread {
        let _ = t.join();
    }
    dump_metrics(id, &metrics_out);
    result
}

/// Prints the metrics readably to stderr and writes them as JSON to `path`.
fn dump_metrics(id: u16, path: &std::path::Path) {
    let snap = crate::metrics::snapshot();
    eprint!("olympus node {id}: {}", snap.to_text());
    match std::fs::write(path, snap.to_json()) {
        Ok(()) => eprintln!("olympus node {id}: metrics written to {}", path.display()),
        Err(e) => eprintln!(
            "olympus node {id}: cannot write metrics to {}: {e}",
            path.display()
        ),
    }
}

async fn main_loop<P: NodeProtocol>(
    settings: NodeSettings,
    key: Arc<Keypair>,
    committee: Arc<Committee>,
    cell: DurableCell,
    restored: Option<P::Safety>,
    verifier: Option<crate::verify::Ends<P>>,
) -> Result<NodeReport, NodeError> {
    let cfg = &settings.config;
    let me = NodeId(cfg.id);
    let verifier = match verifier {
        Some(ends) => Some((ends.jobs.connect().await, ends.verdicts.connect().await)),
        None => None,
    };
    let peer_addrs = cfg.committee.members.iter().map(|m| m.peer_addr).collect();
    let mut net_cfg = NetConfig::new(me, peer_addrs, key.clone(), committee.clone());
    net_cfg.client_addr = Some(cfg.committee.members[me.index()].client_addr);
    let (net, inbox) = Network::start(net_cfg)?;
    eprintln!(
        "olympus node {}: ready, peers on {}, clients on {}",
        cfg.id,
        net.peer_addr(),
        net.client_addr().map_or("-".into(), |a| a.to_string())
    );

    let n = committee.size();
    let mut rcfg = ReplicaConfig::new(me, n);
    rcfg.view_timeout = Duration::from_millis(cfg.params.view_timeout_ms.max(1));
    rcfg.delta = Duration::from_millis(cfg.params.delta_ms.max(1));
    rcfg.max_batches_per_block = olympus_types::limits::MAX_BATCHES_PER_BLOCK;
    rcfg.max_block_txs = cfg.params.block_size.max(1);
    rcfg.payload_by_digest = cfg.params.dissemination == "digests";
    rcfg.max_pending_batches = MAX_PENDING_BATCHES;
    let protocol_key = match settings.fault {
        Some(Fault::MisSign) => {
            eprintln!(
                "olympus node {}: FAULT INJECTION: mis-signing protocol messages",
                cfg.id
            );
            Arc::new(Keypair::generate(Scheme::Bls, &[0xBA; 32], me))
        }
        None => key.clone(),
    };
    let (leader, voter) = P::create(&rcfg, protocol_key, committee.clone(), restored);
    let mut driver = Driver::<P>::new(me, leader, voter);
    // This node's messages to itself wait until what the input sent has left (see
    // `local_after_sends`).
    driver.defer_local(P::DEFER_LOCAL);
    // A block takes whole batches up to `block_size` transactions, so batches of a
    // quarter block fill blocks to at least three quarters (batches of a whole block
    // left them a third empty on average under load).
    let batcher = Batcher::new(BatcherConfig {
        max_batch_txs: (cfg.params.block_size / BATCHES_PER_BLOCK)
            .clamp(1, olympus_types::limits::MAX_BATCH_TXS),
        max_batch_delay: settings.batch_delay,
        ..BatcherConfig::default()
    })
    .map_err(|e| NodeError::Config(e.to_string()))?;

    let mut report = NodeReport {
        node: cfg.id,
        ..NodeReport::default()
    };
    let digest_mode = match cfg.params.dissemination.as_str() {
        "inline" => false,
        "digests" => true,
        other => {
            return Err(NodeError::Config(format!(
                "unknown dissemination mode {other:?}; use one of {}",
                olympus_types::config::DISSEMINATION_MODES.join(", ")
            )))
        }
    };
    let mut store = if digest_mode {
        Some(BatchStore::open(&cfg.data_dir.join("batches")).map_err(NodeError::Chain)?)
    } else {
        None
    };
    let (chain, ledger) = open_chain(&cfg.data_dir.join("chain"), &mut report, store.as_mut())?;
    eprintln!(
        "olympus node {}: chain log: {} blocks, {} transactions recovered (height {})",
        cfg.id, report.recovered_blocks, report.recovered_txs, report.committed_height
    );
    let start = Instant::now();
    let durability = Durability::start(cfg.id).map_err(|e| NodeError::Chain(e.to_string()))?;
    let sync_done = durability.done.clone();
    let mut env = NodeEnv {
        net: &net,
        cell,
        chain,
        durability,
        ledger,
        clients: HashMap::new(),
        report,
        fatal: None,
        meters: Meters::new(net.stats()),
        store,
        fetcher: Fetcher::default(),
        waiting: Default::default(),
        me,
        n,
    };
    let mut pool = Pool {
        batcher,
        stalled: None,
        readmit: Default::default(),
    };
    driver.start(start.elapsed(), &mut env)?;
    local_after_sends(&mut driver, &mut env, &start).await?;

    // When the loop last woke from a wait: how long it runs without yielding.
    let mut running_since = Instant::now();
    let mut pending_verdict: Option<crate::verify::Verdict<P::Msg>> = None;
    let mut turn: Vec<Incoming> = Vec::with_capacity(MAX_FRAMES_PER_TURN);
    let mut claims: Vec<olympus_protocols::Claim> = Vec::new();
    let mut pending_synced: Option<(u64, std::io::Result<()>)> = None;
    while !SHUTDOWN.load(Ordering::SeqCst) {
        if let Some(e) = env.fatal.take() {
            net.shutdown().await;
            return Err(NodeError::Chain(e));
        }
        env.meters.sample(&inbox, &net, n);
        while let Ok((ticket, result)) = sync_done.try_recv() {
            env.synced(ticket, result);
        }
        let now = start.elapsed();
        driver.fire_timers(now, &mut env)?;
        local_after_sends(&mut driver, &mut env, &start).await?;
        env.fetch_due(now);
        if let Err(e) = pool.batcher.tick(now) {
            eprintln!("olympus node {}: batcher: {e}", cfg.id);
        }
        pool.offer::<P>(&mut driver, now, &mut env)?;
        local_after_sends(&mut driver, &mut env, &start).await?;

        let mut wake = now + IDLE_WAKE;
        for d in [driver.next_deadline(), pool.batcher.deadline()]
            .into_iter()
            .flatten()
        {
            wake = wake.min(d);
        }
        // Blocks committed by timers or verdicts above: their write-back starts now,
        // not after the wait.
        env.start_sync();
        let first = if let Some(m) = inbox.try_recv() {
            Some(m)
        } else {
            let sleep = wake.saturating_sub(now);
            env.meters.ran(running_since.elapsed());
            let woke = futures_lite::future::or(
                async { Some(inbox.recv().await) },
                futures_lite::future::or(
                    async {
                        match &verifier {
                            Some((_, verdicts)) => {
                                let v = verdicts.recv().await;
                                pending_verdict = v;
                                None
                            }
                            None => std::future::pending().await,
                        }
                    },
                    futures_lite::future::or(
                        async {
                            if let Ok((ticket, result)) = sync_done.recv_async().await {
                                pending_synced = Some((ticket, result));
                            }
                            None
                        },
                        async {
                            glommio::timer::sleep(sleep).await;
                            None
                        },
                    ),
                ),
            )
            .await;
            if let Some((ticket, result)) = pending_synced.take() {
                env.synced(ticket, result);
            }
            running_since = Instant::now();
            match woke {
                Some(Some(m)) => Some(m),
                Some(None) => break, // the network shut down
                None => None,
            }
        };
        // Verdicts of the verify shard: the one that woke us, then any ready.
        if let Some((_, verdicts)) = &verifier {
            let mut ready = 0;
            while let Some(v) = pending_verdict.take().or_else(|| {
                if ready < MAX_FRAMES_PER_TURN {
                    futures_lite::future::block_on(futures_lite::future::poll_once(verdicts.recv()))
                        .flatten()
                } else {
                    None
                }
            }) {
                ready += 1;
                on_verdict::<P>(v, &mut driver, &mut env, &start)?;
                local_after_sends(&mut driver, &mut env, &start).await?;
            }
        }
        // The frames of this turn: taken first, so that the signatures they carry are
        // checked in one batch before each is handled (`prime`).
        let mut next = first;
        turn.clear();
        while let Some(m) = next {
            turn.push(m);
            next = if turn.len() < MAX_FRAMES_PER_TURN {
                inbox.try_recv()
            } else {
                None
            };
        }
        let handled = turn.len();
        let mut decoded = if verifier.is_none() {
            let decoded = decode_turn::<P>(&turn);
            if P::PEEKS {
                // Before the (slow) signature check: the leader half may build on what
                // came, speculatively (`Half::on_unverified`). What it sends leaves
                // before the check starts: the writers run when this task yields.
                let sent = driver.stats.sent + driver.stats.broadcasts;
                for (m, msg) in turn.iter().zip(&decoded) {
                    if let (Incoming::Peer { from, .. }, Some(msg)) = (m, msg) {
                        driver.peek(*from, msg, start.elapsed(), &mut env)?;
                    }
                }
                if driver.stats.sent + driver.stats.broadcasts > sent {
                    futures_lite::future::yield_now().await;
                }
                driver.run_local(start.elapsed(), &mut env)?;
            }
            prime::<P>(&decoded, &committee, &mut claims, &env.meters);
            decoded
        } else {
            Vec::new()
        };
        decoded.resize_with(handled, || None);
        for (m, msg) in turn.drain(..).zip(decoded) {
            handle::<P>(
                m,
                msg,
                &mut driver,
                &mut pool,
                (&committee, &key),
                &mut env,
                &start,
                verifier.as_ref().map(|(jobs, _)| jobs),
            )?;
            local_after_sends(&mut driver, &mut env, &start).await?;
        }
        env.meters.handled(handled);
        env.start_sync();
    }
    eprintln!("olympus node {}: shutting down", cfg.id);
    env.meters.sample_net();
    let mut report = env.report.clone();
    report.persists = driver.stats.persists;
    report.messages_sent = driver.stats.sent + driver.stats.broadcasts;
    report.timers_fired = driver.stats.timers_fired;
    report.accepted_txs = pool.batcher.stats().accepted;
    report.duplicate_txs += pool.batcher.stats().duplicates;
    report.uptime_s = start.elapsed().as_secs_f64();
    net.shutdown().await;
    Ok(report)
}

/// Handles the messages the last input made this node send itself — after a yield, so
/// that what it sent to others leaves first: a leader's proposal is on the wire before
/// its own voter persists and signs a vote on it, a vote before its own leader half
/// sums a quorum with it. (The driver defers them; see `Driver::defer_local`.)
async fn local_after_sends<P: NodeProtocol>(
    driver: &mut Driver<P>,
    env: &mut NodeEnv<'_>,
    start: &Instant,
) -> Result<(), NodeError> {
    if driver.has_local() {
        futures_lite::future::yield_now().await;
        driver.run_local(start.elapsed(), env)?;
    }
    Ok(())
}

/// Decodes the protocol frames among `turn`: the messages, aligned with `turn` (`None`
/// for other frames and for bodies that do not decode, which `handle` rejects as usual).
fn decode_turn<P: NodeProtocol>(turn: &[Incoming]) -> Vec<Option<P::Msg>> {
    turn.iter()
        .map(|m| match m {
            Incoming::Peer { body, .. } => match crate::dissem::split(body) {
                Some((Kind::Protocol, archive)) => P::Msg::from_bytes(archive).ok(),
                _ => None,
            },
            Incoming::Client { .. } => None,
        })
        .collect()
}

/// When the decoded messages of a turn claim several signatures ([`Protocol::claims`]:
/// single signatures and certificates), checks them in one batch ([`Committee::prime`]):
/// a burst of k proposals then costs about one pairing check instead of k, and each
/// frame's own [`Protocol::verify`] finds its signatures in the committee's cache.
fn prime<P: NodeProtocol>(
    decoded: &[Option<P::Msg>],
    committee: &Committee,
    claims: &mut Vec<olympus_protocols::Claim>,
    meters: &Meters,
) {
    claims.clear();
    for msg in decoded.iter().flatten() {
        P::claims(msg, committee, claims);
    }
    if claims.len() > 1 {
        let priming = Instant::now();
        let primed = committee.prime(claims);
        meters.primed(primed, priming.elapsed());
    }
}

/// Handles one received frame (`decoded`: its protocol message, if `prime` decoded it).
#[allow(clippy::too_many_arguments)]
fn handle<P: NodeProtocol>(
    m: Incoming,
    decoded: Option<P::Msg>,
    driver: &mut Driver<P>,
    pool: &mut Pool,
    (committee, key): (&Committee, &Keypair),
    env: &mut NodeEnv<'_>,
    start: &Instant,
    verifier: Option<&glommio::channels::shared_channel::ConnectedSender<crate::verify::Job>>,
) -> Result<(), NodeError> {
    let origin = m.origin();
    match m {
        Incoming::Peer { from, body } => {
            env.meters.frame_in(true);
            let archive = match crate::dissem::split(&body) {
                Some((Kind::Protocol, _)) if verifier.is_some() => {
                    // To the verify shard; if its queue is full, check it here.
                    let job = (from, body);
                    return match verifier.map(|v| v.try_send(job)) {
                        Some(Err(glommio::GlommioError::Closed(
                            glommio::ResourceType::Channel((f, b)),
                        )))
                        | Some(Err(glommio::GlommioError::WouldBlock(
                            glommio::ResourceType::Channel((f, b)),
                        ))) => {
                            let v = crate::verify::judge::<P>(f, &b, committee);
                            on_verdict::<P>(v, driver, env, start)
                        }
                        _ => Ok(()),
                    };
                }
                Some((Kind::Protocol, archive)) => archive,
                Some((Kind::Batch, archive)) => {
                    env.on_batch_frame(origin, archive);
                    return Ok(());
                }
                Some((Kind::Fetch, archive)) => {
                    env.on_fetch(from, origin, archive);
                    return Ok(());
                }
                None => {
                    env.report.invalid_frames += 1;
                    env.meters.rejected(Reject::Decode);
                    env.net.report_invalid(origin);
                    return Ok(());
                }
            };
            let msg = match decoded.map_or_else(|| P::Msg::from_bytes(archive), Ok) {
                Ok(msg) => msg,
                Err(_) => {
                    env.report.invalid_frames += 1;
                    env.meters.rejected(Reject::Decode);
                    env.net.report_invalid(origin);
                    return Ok(());
                }
            };
            let verifying = Instant::now();
            let verified = P::verify(msg, from, committee);
            env.meters.verified(verifying.elapsed());
            match verified {
                Ok(v) => driver.on_message(from, v, start.elapsed(), env)?,
                Err(_) => {
                    env.report.bad_signatures += 1;
                    env.meters.rejected(Reject::Signature);
                    env.net.report_invalid(origin);
                }
            }
        }
        Incoming::Client { conn, client, body } => {
            env.meters.frame_in(false);
            let req = match ClientRequest::from_bytes(&body) {
                Ok(r) => r,
                Err(_) => {
                    env.report.invalid_frames += 1;
                    env.meters.rejected(Reject::ClientDecode);
                    env.net.report_invalid(origin);
                    return Ok(());
                }
            };
            match req {
                ClientRequest::Challenge(nonce) => {
                    env.remember_client(client, conn);
                    let signature = key.sign(&identity_statement(client, &nonce, key.id()));
                    env.reply(
                        conn,
                        &ClientReply::Identity {
                            node: key.id(),
                            signature,
                        },
                    );
                }
                ClientRequest::Submit(txs) => {
                    if txs.len() > MAX_SUBMIT_TXS || txs.iter().any(|t| t.client != client) {
                        env.report.invalid_frames += 1;
                        env.meters.rejected(Reject::ClientSubmit);
                        env.net.report_invalid(origin);
                        return Ok(());
                    }
                    env.remember_client(client, conn);
                    let now = start.elapsed();
                    let mut busy = Vec::new();
                    let mut readmit = Vec::new();
                    for tx in txs {
                        let nonce = tx.nonce;
                        let again = tx.clone();
                        match pool.batcher.submit(tx, now) {
                            Ok(Admission::Accepted) => {}
                            // Seen before. If it never executed, the block that carried
                            // it was lost (a view that failed): propose it again. The
                            // ledger keeps execution at most once either way.
                            Ok(Admission::Duplicate | Admission::Stale)
                                if !env.ledger.executed(client, nonce) =>
                            {
                                readmit.push(again)
                            }
                            Ok(Admission::Duplicate | Admission::Stale) => {
                                env.report.duplicate_txs += 1
                            }
                            Err(SubmitError::PoolFull { .. }) => busy.push(nonce),
                            Err(_) => {
                                env.report.invalid_frames += 1;
                                env.meters.rejected(Reject::ClientSubmit);
                                env.net.report_invalid(origin);
                            }
                        }
                    }
                    if !readmit.is_empty() {
                        env.report.readmitted_txs += readmit.len() as u64;
                        let batch = BatchRef::new(Batch::new(readmit));
                        if pool.readmit.len() < MAX_PENDING_BATCHES {
                            pool.readmit.push_back(batch);
                        }
                    }
                    if !busy.is_empty() {
                        env.report.busy_txs += busy.len() as u64;
                        env.meters.busy(busy.len());
                        env.reply(conn, &ClientReply::Busy { nonces: busy });
                    }
                    pool.offer::<P>(driver, now, env)?;
                }
            }
        }
    }
    Ok(())
}

/// Acts on what the verify shard (or the fallback in [`handle`]) found.
fn on_verdict<P: NodeProtocol>(
    v: crate::verify::Verdict<P::Msg>,
    driver: &mut Driver<P>,
    env: &mut NodeEnv<'_>,
    start: &Instant,
) -> Result<(), NodeError> {
    use crate::verify::Verdict;
    match v {
        Verdict::Ok { from, msg, took } => {
            env.meters.verified(took);
            driver.on_message(from, msg, start.elapsed(), env)?;
        }
        Verdict::Undecodable { from } => {
            env.report.invalid_frames += 1;
            env.meters.rejected(Reject::Decode);
            env.net.report_invalid(olympus_net::Origin::Peer(from));
        }
        Verdict::BadSignature { from, took } => {
            env.meters.verified(took);
            env.report.bad_signatures += 1;
            env.meters.rejected(Reject::Signature);
            env.net.report_invalid(olympus_net::Origin::Peer(from));
        }
    }
    Ok(())
}

/// The batcher and the one batch the leader half could not take yet.
struct Pool {
    batcher: Batcher,
    stalled: Option<BatchRef>,
    /// Resubmitted transactions whose earlier block was lost (bounded).
    readmit: std::collections::VecDeque<BatchRef>,
}

impl Pool {
    /// Offers sealed batches to the leader half until it refuses one.
    fn offer<P: NodeProtocol>(
        &mut self,
        driver: &mut Driver<P>,
        now: Duration,
        env: &mut NodeEnv<'_>,
    ) -> Result<(), DriverError> {
        loop {
            let batch = match self.stalled.take().or_else(|| self.readmit.pop_front()) {
                Some(b) => b,
                None => match self.batcher.pop() {
                    Some(sealed) => match sealed.decode() {
                        Ok(batch) => {
                            let b = BatchRef {
                                digest: sealed.digest,
                                batch: Arc::new(batch),
                            };
                            env.disseminate(&b, Some(&sealed));
                            b
                        }
                        // The batcher encoded it itself; failing to read it back is a
                        // bug, not an input problem: drop the batch, keep serving.
                        Err(e) => {
                            eprintln!("sealed batch does not decode: {e}");
                            continue;
                        }
                    },
                    None => return Ok(()),
                },
            };
            let txs = batch.batch.txs.len();
            env.disseminate(&batch, None); // a no-op unless new and in digest mode
            if !driver.on_batch(batch.clone(), now, env)? {
                self.stalled = Some(batch);
                return Ok(());
            }
            env.meters.batch_taken(txs);
        }
    }
}

/// Executed transactions: each `(client, nonce)` at most once.
///
/// Per client it keeps `below` (every nonce under it was executed) and the executed
/// nonces above it. Memory is bounded: past [`MAX_LEDGER_GAPS`] remembered nonces for a
/// client, or [`MAX_LEDGER_CLIENTS`] clients, the oldest knowledge is folded away (a
/// client that leaves gaps that large gets at-most-once only within that window).
#[derive(Default)]
pub struct Ledger {
    clients: HashMap<u64, ClientLedger>,
}

#[derive(Default)]
struct ClientLedger {
    below: u64,
    above: BTreeSet<u64>,
}

impl Ledger {
    /// Whether `(client, nonce)` was executed.
    pub fn executed(&self, client: u64, nonce: u64) -> bool {
        self.clients
            .get(&client)
            .is_some_and(|l| nonce < l.below || l.above.contains(&nonce))
    }

    /// Marks `(client, nonce)` executed; false if it already was.
    pub fn execute(&mut self, client: u64, nonce: u64) -> bool {
        if !self.clients.contains_key(&client) && self.clients.len() >= MAX_LEDGER_CLIENTS {
            return false;
        }
        let l = self.clients.entry(client).or_default();
        if nonce < l.below || !l.above.insert(nonce) {
            return false;
        }
        while l.above.first() == Some(&l.below) {
            l.above.pop_first();
            l.below += 1;
        }
        if l.above.len() > MAX_LEDGER_GAPS {
            if let Some(lowest) = l.above.pop_first() {
                l.below = lowest + 1;
            }
        }
        true
    }
}

/// The node around the driver: network, safety cell, ledger, receipts.
/// Group commit of the chain log off the event loop: blocks are appended to the mapped
/// log at once, a dedicated thread writes them back (`msync`) while the loop goes on
/// voting and proposing, and the receipts of a block leave only once a write-back that
/// covers it has finished. One write-back covers every block appended before it began,
/// so under load each costs one disk flush for many blocks.
struct Durability {
    jobs: std::sync::mpsc::Sender<(u64, olympus_mempool::SyncJob)>,
    done: flume::Receiver<(u64, std::io::Result<()>)>,
    /// Blocks appended, and how many of them are durable (tickets).
    appended: u64,
    durable: u64,
    in_flight: bool,
    held: std::collections::VecDeque<(u64, ClientConn, ClientReply)>,
}

impl Durability {
    fn start(id: u16) -> std::io::Result<Self> {
        let (jobs, job_rx) = std::sync::mpsc::channel::<(u64, olympus_mempool::SyncJob)>();
        let (done_tx, done) = flume::unbounded();
        std::thread::Builder::new()
            .name(format!("olympus-sync-{id}"))
            .spawn(move || {
                let took = metrics::histogram!("olympus_chain_sync_us");
                while let Ok((ticket, job)) = job_rx.recv() {
                    let t = Instant::now();
                    let result = job.run();
                    took.record(t.elapsed().as_micros() as f64);
                    if done_tx.send((ticket, result)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Durability {
            jobs,
            done,
            appended: 0,
            durable: 0,
            in_flight: false,
            held: Default::default(),
        })
    }
}

struct NodeEnv<'a> {
    net: &'a NetHandle,
    cell: DurableCell,
    chain: BatchLog,
    /// Receipts wait here until the chain log holds their block durably.
    durability: Durability,
    ledger: Ledger,
    clients: HashMap<u64, ClientConn>,
    report: NodeReport,
    /// An error that must stop the node (the chain log failed).
    fatal: Option<String>,
    meters: Meters,
    /// Dissemination by digest: where batches are kept (`None`: inline mode).
    store: Option<BatchStore>,
    fetcher: Fetcher,
    /// Committed blocks waiting for their batches, in commit order.
    waiting: std::collections::VecDeque<Commit>,
    me: NodeId,
    n: usize,
}

impl NodeEnv<'_> {
    fn remember_client(&mut self, client: u64, conn: ClientConn) {
        if self.clients.len() < MAX_LEDGER_CLIENTS || self.clients.contains_key(&client) {
            self.clients.insert(client, conn);
        }
    }

    fn reply(&mut self, conn: ClientConn, reply: &ClientReply) {
        match reply.to_frame() {
            Ok(f) => {
                if self.net.try_reply(conn, f).is_err() {
                    self.report.receipts_dropped += 1;
                }
            }
            Err(e) => eprintln!("cannot encode a client reply: {e}"),
        }
    }

    fn encode<M: Wire>(&self, msg: &M) -> Option<Frame> {
        match crate::dissem::protocol_frame(msg) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("cannot encode a protocol message: {e}");
                None
            }
        }
    }
}

impl<P: NodeProtocol> Env<P> for NodeEnv<'_> {
    fn send(&mut self, to: NodeId, msg: &P::Msg) {
        if let Some(f) = self.encode(msg) {
            // A full queue drops the message: the protocol's timers recover from loss.
            let _ = self.net.try_send(to, f);
        }
    }

    fn broadcast(&mut self, msg: &P::Msg) {
        if let Some(f) = self.encode(msg) {
            self.net.broadcast(&f);
        }
    }

    fn persist(&mut self, state: &P::Safety) -> Result<(), String> {
        let bytes = state.to_bytes().map_err(|e| e.to_string())?;
        let storing = Instant::now();
        let stored = self.cell.store(&bytes).map_err(|e| e.to_string());
        self.meters.persisted(storing.elapsed());
        stored
    }

    fn event(&mut self, event: &Event) {
        self.meters.event(event);
        // Votes are checked when the leader aggregates them: a bad one shows up here.
        if let Event::Ignored {
            reason: "bad signature",
            ..
        } = event
        {
            self.report.bad_signatures += 1;
        }
    }

    fn commit(&mut self, c: Commit) {
        if self.waiting.len() >= crate::dissem::MAX_WAITING_BLOCKS {
            self.fatal.get_or_insert(format!(
                "{} committed blocks wait for batches nobody sends",
                self.waiting.len()
            ));
            return;
        }
        self.waiting.push_back(c);
        self.execute_ready();
    }
}

impl NodeEnv<'_> {
    /// Executes the committed blocks at the front of the queue whose batches are all
    /// here, in order; asks for the missing batches of the first one that waits.
    fn execute_ready(&mut self) {
        while let Some(c) = self.waiting.front() {
            // Digest mode: the batches from the store (inline ones are read in place).
            let fetched: Vec<Arc<Batch>> = match &c.block.payload {
                Payload::Inline(_) => Vec::new(),
                Payload::Digests(ds) => {
                    let Some(store) = self.store.as_mut() else {
                        self.fatal.get_or_insert(
                            "a block carries batch digests but this node disseminates inline"
                                .into(),
                        );
                        return;
                    };
                    let got: Vec<_> = ds.iter().map(|d| store.get(d)).collect();
                    if got.iter().any(Option::is_none) {
                        let proposer = c.block.proposer;
                        for (d, g) in ds.iter().zip(&got) {
                            if g.is_none() {
                                self.fetcher.want(*d, proposer);
                            }
                        }
                        return;
                    }
                    got.into_iter().flatten().collect()
                }
            };
            let Some(c) = self.waiting.pop_front() else {
                return;
            };
            let batches: Vec<&Batch> = match &c.block.payload {
                Payload::Inline(b) => b.iter().collect(),
                Payload::Digests(_) => fetched.iter().map(|b| &**b).collect(),
            };
            self.execute(&c, &batches);
        }
    }

    /// Logs a committed block, executes its transactions at most once, and sends the
    /// receipts.
    fn execute(&mut self, c: &Commit, batches: &[&Batch]) {
        self.report.committed_blocks += 1;
        self.report.committed_height = self.report.committed_height.max(c.block.height);
        // Appended now, written back by the syncer thread; the receipts below wait for
        // that (`Durability`). A failure stops the node: it could no longer recover
        // what it acknowledged.
        let appending = Instant::now();
        let logged = Block::to_bytes(&c.block)
            .map_err(|e| e.to_string())
            .and_then(|b| self.chain.append(c.digest, &b).map_err(|e| e.to_string()));
        self.meters.appended(appending.elapsed());
        if let Err(e) = logged {
            self.fatal.get_or_insert(e);
            return;
        }
        self.meters.committed(&c.digest, c.block.height, batches);
        let mut receipts: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for tx in batches.iter().flat_map(|b| b.txs.iter()) {
            if self.ledger.execute(tx.client, tx.nonce) {
                self.report.committed_txs += 1;
                self.report.ledger_txs += 1;
                receipts.entry(tx.client).or_default().push(tx.nonce);
            } else {
                self.report.duplicate_txs += 1;
            }
        }
        self.meters
            .executed(receipts.values().map(|n| n.len() as u64).sum());
        self.durability.appended += 1;
        let ticket = self.durability.appended;
        for (client, nonces) in receipts {
            let Some(&conn) = self.clients.get(&client) else {
                continue;
            };
            for chunk in nonces.chunks(MAX_RECEIPT_NONCES) {
                self.durability.held.push_back((
                    ticket,
                    conn,
                    ClientReply::Committed {
                        height: c.block.height,
                        block: c.digest,
                        nonces: chunk.to_vec(),
                    },
                ));
            }
        }
    }

    /// Hands what the chain log appended since the last write-back to the syncer
    /// thread, unless a write-back is under way (the next one then covers it).
    fn start_sync(&mut self) {
        let d = &mut self.durability;
        if d.in_flight || d.appended == d.durable {
            return;
        }
        match self.chain.take_sync_job() {
            Ok(Some(job)) => {
                if d.jobs.send((d.appended, job)).is_err() {
                    self.fatal
                        .get_or_insert("chain log: the syncer thread is gone".into());
                    return;
                }
                d.in_flight = true;
            }
            Ok(None) => {
                let t = d.appended;
                self.synced(t, Ok(()));
            }
            Err(e) => {
                self.fatal.get_or_insert(format!("chain log: {e}"));
            }
        }
    }

    /// Everything appended up to `ticket` is durable (or the write-back failed, which
    /// stops the node): its receipts go out.
    fn synced(&mut self, ticket: u64, result: std::io::Result<()>) {
        self.durability.in_flight = false;
        if let Err(e) = result {
            self.fatal
                .get_or_insert(format!("chain log: write-back failed: {e}"));
            return;
        }
        self.durability.durable = self.durability.durable.max(ticket);
        while let Some((t, _, _)) = self.durability.held.front() {
            if *t > self.durability.durable {
                break;
            }
            if let Some((_, conn, reply)) = self.durability.held.pop_front() {
                self.reply(conn, &reply);
            }
        }
    }

    /// Stores a batch this node sealed and sends it to every peer (digest mode), before
    /// the leader half may propose its digest.
    fn disseminate(&mut self, batch: &BatchRef, sealed: Option<&SealedBatch>) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if store.contains(&batch.digest) {
            return;
        }
        let sealed = match sealed {
            Some(s) => s.clone(),
            None => match SealedBatch::seal(&batch.batch) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cannot seal a batch: {e}");
                    return;
                }
            },
        };
        if let Err(e) = store.insert(&sealed, batch.batch.clone()) {
            self.fatal.get_or_insert(format!("batch log: {e}"));
            return;
        }
        // Framed from the batcher's buffer (not read back from the log's mapping): one
        // frame, shared by every peer.
        match crate::dissem::frame(Kind::Batch, sealed.as_bytes()) {
            Ok(f) => {
                self.net.broadcast(&f);
            }
            Err(e) => eprintln!("cannot frame a batch: {e}"),
        }
    }

    /// A batch from a peer: validated, hashed, stored; blocks waiting for it run.
    fn on_batch_frame(&mut self, origin: olympus_net::Origin, archive: &[u8]) {
        let Some(store) = self.store.as_mut() else {
            return; // inline mode: nobody should send batches; ignore
        };
        let sealed = match SealedBatch::from_archive(archive) {
            Ok(s) => s,
            Err(_) => {
                self.report.invalid_frames += 1;
                self.meters.rejected(Reject::Decode);
                self.net.report_invalid(origin);
                return;
            }
        };
        if !store.contains(&sealed.digest) {
            let batch = match sealed.decode() {
                Ok(b) => Arc::new(b),
                Err(_) => return,
            };
            if let Err(e) = store.insert(&sealed, batch) {
                self.fatal.get_or_insert(format!("batch log: {e}"));
                return;
            }
        }
        self.fetcher.got(&sealed.digest);
        self.execute_ready();
    }

    /// A peer asks for batches: send those this node has.
    fn on_fetch(&mut self, from: NodeId, origin: olympus_net::Origin, archive: &[u8]) {
        let req = match FetchBatches::from_bytes(archive) {
            Ok(r) if r.digests.len() <= crate::dissem::MAX_FETCH_DIGESTS => r,
            _ => {
                self.report.invalid_frames += 1;
                self.meters.rejected(Reject::Decode);
                self.net.report_invalid(origin);
                return;
            }
        };
        let Some(store) = self.store.as_ref() else {
            return;
        };
        for d in &req.digests {
            if let Some(f) = store.frame_of(d) {
                let _ = self.net.try_send(from, f);
            }
        }
    }

    /// Sends the fetch requests that are due.
    fn fetch_due(&mut self, now: Duration) {
        if self.fetcher.is_empty() {
            return;
        }
        for (to, digests) in self.fetcher.due(now, self.me, self.n) {
            let req = FetchBatches { digests };
            match req
                .to_bytes()
                .and_then(|a| crate::dissem::frame(Kind::Fetch, &a))
            {
                Ok(f) => {
                    let _ = self.net.try_send(to, f);
                }
                Err(e) => eprintln!("cannot encode a fetch: {e}"),
            }
        }
    }
}

/// Where a node keeps its files.
pub fn safety_path(cfg: &NodeConfig) -> PathBuf {
    cfg.data_dir.join("safety")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_executes_each_pair_once_and_stays_compact() {
        let mut l = Ledger::default();
        assert!(l.execute(1, 0));
        assert!(!l.execute(1, 0));
        assert!(l.execute(1, 2));
        assert!(l.execute(2, 0), "clients are independent");
        assert!(!l.executed(1, 1));
        assert!(l.execute(1, 1));
        assert!(l.executed(1, 1) && l.executed(1, 0) && !l.executed(1, 3));
        assert!(!l.execute(1, 2));
        let c = &l.clients[&1];
        assert_eq!(
            (c.below, c.above.len()),
            (3, 0),
            "contiguous nonces fold away"
        );
    }

    #[test]
    fn report_is_json() {
        let r = NodeReport {
            node: 3,
            committed_txs: 7,
            ..NodeReport::default()
        };
        let j = r.to_json();
        assert!(j.starts_with("{\"node\":3,"), "{j}");
        assert!(j.contains("\"committed_txs\":7"), "{j}");
    }
}
