//! The driver: the simulated world of one run — replicas, clients, mempools, network,
//! faults — advanced one event at a time.
//!
//! ## How inputs and actions are handled
//!
//! Every input to a half (start, message, timer, batch) gets a fresh
//! `Context::new(now)`, where `now` is the time since that instance (re)started. The
//! actions it pushed are then carried out **in order**, before the next event:
//!
//! - `Send`/`Broadcast` (to all n nodes, the sender included) go to the network model;
//!   a copy from an instance to itself is delivered locally after [`LOCAL_DELAY`] and
//!   is never lost. Every outgoing message of an honest instance is shown to the
//!   double-vote checker first.
//! - `SetTimer`/`CancelTimer` arm and disarm per-instance, per-half timers. Each arming
//!   gets a fresh generation number; a timer event whose generation is not the armed
//!   one (cancelled, re-armed, or from before a crash) is ignored.
//! - `Persist(s)` becomes the instance's durable state at once, so it is durable before
//!   any later send of the same input.
//! - `Commit(c)` appends to the replica's committed log (heights must go up by one) and
//!   its ledger executes the block's inline transactions, each `(client, nonce)` at
//!   most once.
//! - `FetchBatch` and `Event`s are counted.
//!
//! Delivery runs `Protocol::verify` first (a rejection is counted, the message dropped)
//! and routes by `Message::dest`: `Both` gives a copy to each half, leader first.
//!
//! ## Crashes
//!
//! A crash drops the instance's state machines, its armed timers, its mempool and every
//! message in flight to it (they carry the incarnation they were sent to). A restart
//! builds the halves with `Protocol::create(.., persisted.clone())` and calls
//! `on_start` on both: only the persisted safety state survives. The committed log and
//! ledger survive too — they model the node's durable log, which the checkers judge.

use crate::checker::{Checker, DetMap, DetSet, Violations};
use crate::config::{ByzantineChoice, ByzantineKind, SimConfig};
use crate::network::{self, Connectivity, Cut, World};
use crate::queue::{EventQueue, Time};
use crate::report::{fmt_time, CommitStats, MessageCounts, RunReport, ViolationKind};
use crate::rng::{mix64, Rng};
use olympus_crypto::{Committee, Keypair, Scheme};
use olympus_protocols::{
    Action, BatchRef, Commit, Context, Dest, Event, Half, Message, Protocol, ReplicaConfig,
    TimerId, Verified,
};
use olympus_types::{Batch, Digest, NodeId, Transaction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Delay of a message from an instance to itself (never lost, never duplicated).
pub const LOCAL_DELAY: Duration = Duration::from_micros(10);

/// Where [`crate::run_logged`] sends its lines: (virtual time, line).
pub type EventLog<'a> = &'a mut dyn FnMut(Duration, &str);

/// Longest message text in the event log.
const MAX_LOGGED_MESSAGE: usize = 400;

const STREAM_SCHEDULE: u64 = 1;
const STREAM_NETWORK: u64 = 2;
const STREAM_CLIENTS: u64 = 3;

fn ns(d: Duration) -> Time {
    d.as_nanos().min(u64::MAX as u128) as u64
}

fn dur(t: Time) -> Duration {
    Duration::from_nanos(t)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum HalfKind {
    Leader,
    Voter,
}

enum Input<M> {
    Start,
    Message(NodeId, Verified<M>),
    /// A message before its check (`Half::on_unverified`, protocols with `PEEKS`).
    Unverified(NodeId, M),
    Timer(TimerId),
    Batch(BatchRef),
}

fn apply<M, S, H: Half<M, S>>(h: &mut H, input: Input<M>, cx: &mut Context<M, S>) -> bool {
    match input {
        Input::Start => h.on_start(cx),
        Input::Message(from, m) => h.on_message(from, m, cx),
        Input::Unverified(from, m) => h.on_unverified(from, &m, cx),
        Input::Timer(id) => h.on_timer(id, cx),
        Input::Batch(b) => return h.on_batch(b, cx),
    }
    true
}

enum Ev<M> {
    Start(usize),
    Deliver {
        inst: usize,
        inc: u32,
        from: NodeId,
        msg: M,
    },
    Timer {
        inst: usize,
        inc: u32,
        half: HalfKind,
        id: TimerId,
        gen: u64,
    },
    Seal {
        inst: usize,
        inc: u32,
        gen: u64,
    },
    ClientTick(usize),
    TxArrive {
        inst: usize,
        inc: u32,
        tx: Transaction,
    },
    Retry {
        client: usize,
        nonce: u64,
        attempt: u32,
    },
    Crash {
        down: Time,
    },
    Restart(usize),
    PartitionStart {
        len: Time,
    },
    PartitionHeal,
    SplitStart {
        len: Time,
    },
    SplitEnd,
    FaultEnd,
    LivenessDeadline,
}

/// A replica's durable committed log and its ledger.
#[derive(Default)]
struct Ledger {
    /// Digest committed at each height (index h − 1).
    log: Vec<Digest>,
    /// Executed `(client, nonce)` pairs.
    executed: DetSet<(u64, u64)>,
    /// How often each transaction appears in the raw committed log.
    raw: DetMap<(u64, u64), u32>,
    /// The log's order was violated; later commits are not applied.
    broken: bool,
}

/// One running copy of a replica: an honest replica, or one of a pair of Twins.
struct Instance<P: Protocol> {
    node: NodeId,
    world: World,
    honest: bool,
    halves: Option<(P::Leader, P::Voter)>,
    incarnation: u32,
    started_at: Time,
    timers: DetMap<(HalfKind, TimerId), u64>,
    next_gen: u64,
    persisted: Option<P::Safety>,
    mempool: Vec<Transaction>,
    seal_gen: u64,
    seal_armed: bool,
    ledger: Ledger,
    /// Time of the first commit above the post-fault target height.
    recovered_at: Option<Time>,
    /// When it last restarted after a crash.
    restarted_at: Option<Time>,
}

struct TxInfo {
    payload: Vec<u8>,
    submissions: u32,
    executed_by: u32,
    confirmed: bool,
}

struct Client {
    home: usize,
    next_nonce: u64,
}

/// Running totals that end up in the report.
#[derive(Default)]
struct Stats {
    messages: BTreeMap<&'static str, MessageCounts>,
    faults: BTreeMap<&'static str, u64>,
    events: BTreeMap<&'static str, u64>,
    txs_submitted: u64,
    tx_submissions: u64,
    txs_executed: u64,
    txs_confirmed: u64,
    duplicates_suppressed: u64,
    batches_refused: u64,
}

impl Stats {
    fn msg(&mut self, kind: &'static str) -> &mut MessageCounts {
        self.messages.entry(kind).or_default()
    }
    fn fault(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
    }
    fn event(&mut self, kind: &'static str) {
        *self.events.entry(kind).or_default() += 1;
    }
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Proposed { .. } => "proposed",
        Event::Voted { .. } => "voted",
        Event::CertificateFormed { .. } => "qc_formed",
        Event::TimeoutSent { .. } => "timeout_sent",
        Event::TimeoutCertFormed { .. } => "tc_formed",
        Event::ViewChanged { .. } => "view_changed",
        Event::Ignored { .. } => "ignored",
        Event::Buffered { .. } => "buffered",
        Event::ConflictingCommit { .. } => "conflicting_commit",
    }
}

/// An order-sensitive 64-bit hash of the run's trace.
struct Trace(u64);

impl Trace {
    fn mix(&mut self, x: u64) {
        self.0 = mix64(self.0.rotate_left(23) ^ x);
    }
    fn mix_str(&mut self, s: &str) {
        // FNV-1a over the bytes, then mixed in.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in s.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.mix(h);
    }
    fn mix_digest(&mut self, d: &Digest) {
        for c in d.0.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
    }
}

/// The world of one run.
pub(crate) struct Sim<'a, P: Protocol> {
    /// Optional event log (for debugging one seed).
    log: Option<EventLog<'a>>,
    cfg: SimConfig,
    seed: u64,
    n: usize,
    now: Time,
    queue: EventQueue<Ev<P::Msg>>,
    committee: Arc<Committee>,
    keys: Vec<Arc<Keypair>>,
    replica_cfgs: Vec<ReplicaConfig>,
    byzantine: Vec<(NodeId, ByzantineKind)>,
    byzantine_count: usize,
    /// Some Byzantine replica is a Twins pair (it can replay transactions).
    replaying_byzantine: bool,
    instances: Vec<Instance<P>>,
    /// Instances of each node (none for a silent node, two for Twins).
    node_instances: Vec<Vec<usize>>,
    honest: Vec<usize>,
    sched: Rng,
    net: Rng,
    client_rng: Rng,
    conn: Connectivity,
    fault_start: Time,
    fault_end: Time,
    healed: bool,
    /// After the faults: every honest replica must commit above this height.
    target_height: Option<u64>,
    liveness_checked: bool,
    stop_at: Option<Time>,
    clients: Vec<Client>,
    txs: DetMap<(u64, u64), TxInfo>,
    confirm_threshold: u32,
    checker: Checker,
    violations: Violations,
    stats: Stats,
    trace: Trace,
    events_processed: u64,
}

impl<'a, P: Protocol> Sim<'a, P> {
    pub fn new(cfg: &SimConfig, seed: u64, log: Option<EventLog<'a>>) -> Self {
        // A synchronous protocol runs under the synchronous model (and vice versa).
        let adapted;
        let cfg = if cfg.synchronous != P::SYNCHRONOUS {
            adapted = cfg.adapted(P::SYNCHRONOUS);
            &adapted
        } else {
            cfg
        };
        if let Err(e) = cfg.validate() {
            panic!("invalid simulator configuration: {e}");
        }
        let n = cfg.n;
        let mut sched = Rng::stream(seed, STREAM_SCHEDULE);
        let mut key_seed = [0u8; 32];
        for (i, c) in key_seed.chunks_exact_mut(8).enumerate() {
            c.copy_from_slice(&mix64(seed ^ (i as u64 + 0x5eed)).to_le_bytes());
        }
        let keypairs: Vec<Arc<Keypair>> = (0..n)
            .map(|i| {
                Arc::new(Keypair::generate(
                    Scheme::Insecure,
                    &key_seed,
                    NodeId(i as u16),
                ))
            })
            .collect();
        let publics: Vec<_> = keypairs.iter().map(|k| k.public()).collect();
        let committee = Arc::new(
            Committee::new(Scheme::Insecure, &publics)
                .expect("a committee of freshly generated insecure keys is valid"),
        );
        let replica_cfgs = (0..n)
            .map(|i| {
                let mut r = cfg.replica.clone();
                r.id = NodeId(i as u16);
                r.n = n;
                r
            })
            .collect();

        // Byzantine replicas and their kinds.
        let mut byz_nodes: Vec<NodeId> = match &cfg.byzantine_nodes {
            Some(v) => v.clone(),
            None => {
                let mut all: Vec<NodeId> = (0..n).map(|i| NodeId(i as u16)).collect();
                sched.shuffle(&mut all);
                all.truncate(cfg.byzantine);
                all
            }
        };
        byz_nodes.sort();
        let byzantine: Vec<(NodeId, ByzantineKind)> = byz_nodes
            .iter()
            .map(|&id| {
                let kind = match cfg.byzantine_choice {
                    ByzantineChoice::All(k) => k,
                    ByzantineChoice::Mixed => {
                        if sched.below(2) == 0 {
                            ByzantineKind::Silent
                        } else {
                            ByzantineKind::Twins
                        }
                    }
                };
                (id, kind)
            })
            .collect();

        let mut instances = Vec::new();
        let mut node_instances = vec![Vec::new(); n];
        let mut honest = Vec::new();
        for (i, slot) in node_instances.iter_mut().enumerate() {
            let node = NodeId(i as u16);
            let worlds: &[World] = match byzantine.iter().find(|(id, _)| *id == node) {
                None => &[World::Honest],
                Some((_, ByzantineKind::Silent)) => &[],
                Some((_, ByzantineKind::Twins)) => &[World::TwinA, World::TwinB],
            };
            for &world in worlds {
                if world == World::Honest {
                    honest.push(instances.len());
                }
                slot.push(instances.len());
                instances.push(Instance {
                    node,
                    world,
                    honest: world == World::Honest,
                    halves: None,
                    incarnation: 0,
                    started_at: 0,
                    timers: DetMap::default(),
                    next_gen: 0,
                    persisted: None,
                    mempool: Vec::new(),
                    seal_gen: 0,
                    seal_armed: false,
                    ledger: Ledger::default(),
                    recovered_at: None,
                    restarted_at: None,
                });
            }
        }
        let f = cfg.f();
        let confirm_threshold = (f + 1).min(honest.len()).max(1) as u32;
        let clients = (0..cfg.clients.clients)
            .map(|c| Client {
                home: c % n,
                next_nonce: 0,
            })
            .collect();

        let mut sim = Sim {
            log,
            cfg: cfg.clone(),
            seed,
            n,
            now: 0,
            queue: EventQueue::new(),
            committee,
            keys: keypairs,
            replica_cfgs,
            byzantine_count: byzantine.len(),
            replaying_byzantine: byzantine.iter().any(|(_, k)| *k == ByzantineKind::Twins),
            byzantine,
            instances,
            node_instances,
            honest,
            sched,
            net: Rng::stream(seed, STREAM_NETWORK),
            client_rng: Rng::stream(seed, STREAM_CLIENTS),
            conn: Connectivity {
                // Beyond f (a positive control) the full Twins adversary of the partially
                // synchronous mix applies: its splits cut honest replicas apart too.
                honest_connected: cfg.synchronous && cfg.byzantine <= cfg.f(),
                ..Connectivity::default()
            },
            fault_start: ns(cfg.fault_start),
            fault_end: ns(cfg.fault_end),
            healed: false,
            target_height: None,
            liveness_checked: false,
            stop_at: None,
            clients,
            txs: DetMap::default(),
            confirm_threshold,
            checker: Checker::new(),
            violations: Violations::new(cfg.max_violations),
            stats: Stats::default(),
            trace: Trace(mix64(seed)),
            events_processed: 0,
        };
        sim.schedule_initial();
        sim
    }

    fn schedule_initial(&mut self) {
        for i in 0..self.instances.len() {
            self.queue.push(0, Ev::Start(i));
        }
        let interval = ns(self.cfg.clients.interval);
        for c in 0..self.clients.len() {
            let first = self.client_rng.below(interval.max(1));
            self.queue.push(first, Ev::ClientTick(c));
        }
        let (s, e) = (self.fault_start, self.fault_end);
        let window = e - s;
        let f = self.cfg.faults.clone();
        // Partitions and twins splits: one per equal slot of the window.
        let slots = |count: usize| -> Vec<(Time, Time)> {
            if count == 0 || window == 0 {
                return Vec::new();
            }
            let len = window / count as u64;
            (0..count as u64)
                .map(|k| (s + k * len, s + (k + 1) * len))
                .collect()
        };
        for (a, b) in slots(f.partitions) {
            let len = self
                .sched
                .range(ns(f.partition_min), ns(f.partition_max))
                .min(b - a);
            let start = a + self.sched.range(0, b - a - len);
            self.queue.push(start, Ev::PartitionStart { len });
        }
        let has_twins = self
            .byzantine
            .iter()
            .any(|(_, k)| *k == ByzantineKind::Twins);
        if has_twins {
            for (a, b) in slots(f.twins_splits) {
                let len = self
                    .sched
                    .range(ns(f.twins_split_min), ns(f.twins_split_max))
                    .min(b - a);
                let start = a + self.sched.range(0, b - a - len);
                self.queue.push(start, Ev::SplitStart { len });
            }
        }
        if window > 0 {
            for _ in 0..f.crashes {
                let at = s + self.sched.below(window);
                let down = self.sched.range(ns(f.downtime_min), ns(f.downtime_max));
                self.queue.push(at, Ev::Crash { down });
            }
        }
        self.queue.push(e, Ev::FaultEnd);
    }

    /// Runs to the end and returns the report.
    pub fn run(mut self) -> RunReport {
        let mut end = ns(self.cfg.duration);
        let mut cut_short = false;
        while let Some((t, _seq, ev)) = self.queue.pop() {
            if t > end {
                cut_short = true;
                break;
            }
            self.now = t;
            self.events_processed += 1;
            self.handle(ev);
            if let Some(stop) = self.stop_at {
                end = end.min(stop);
            }
            if self.cfg.stop_at_first_violation
                && (!self.violations.kept.is_empty() || self.violations.dropped > 0)
            {
                break;
            }
        }
        if cut_short {
            self.now = end;
        }
        if !self.liveness_checked {
            self.check_liveness();
        }
        if self.logging() {
            let lines: Vec<String> = self
                .violations
                .kept
                .iter()
                .map(|v| format!("violation {v}"))
                .collect();
            for l in lines {
                self.log(l);
            }
        }
        self.report()
    }

    fn logging(&self) -> bool {
        self.log.is_some()
    }

    fn log(&mut self, line: String) {
        if let Some(log) = self.log.as_mut() {
            log(dur(self.now), &line);
        }
    }

    fn label(&self, i: usize) -> String {
        let ins = &self.instances[i];
        match ins.world {
            World::Honest => ins.node.to_string(),
            World::TwinA => format!("{}a", ins.node),
            World::TwinB => format!("{}b", ins.node),
        }
    }

    fn faulty_now(&self) -> bool {
        !self.healed && self.now >= self.fault_start && self.now < self.fault_end
    }

    fn handle(&mut self, ev: Ev<P::Msg>) {
        match ev {
            Ev::Start(i) => self.start(i, false),
            Ev::Deliver {
                inst,
                inc,
                from,
                msg,
            } => self.deliver(inst, inc, from, msg),
            Ev::Timer {
                inst,
                inc,
                half,
                id,
                gen,
            } => {
                let ins = &mut self.instances[inst];
                if ins.halves.is_none() || ins.incarnation != inc {
                    return;
                }
                if ins.timers.get(&(half, id)) != Some(&gen) {
                    self.stats.event("timer_stale");
                    return;
                }
                ins.timers.remove(&(half, id));
                self.stats.event("timer_fired");
                if self.logging() {
                    let line = format!("{} timer {half:?} {}", self.label(inst), id.0);
                    self.log(line);
                }
                self.trace.mix(self.now ^ ((inst as u64) << 48) ^ id.0);
                self.step(inst, half, Input::Timer(id));
            }
            Ev::Seal { inst, inc, gen } => {
                let ins = &self.instances[inst];
                if ins.halves.is_some()
                    && ins.incarnation == inc
                    && ins.seal_armed
                    && ins.seal_gen == gen
                {
                    self.seal(inst);
                }
            }
            Ev::ClientTick(c) => self.client_tick(c),
            Ev::TxArrive { inst, inc, tx } => self.tx_arrive(inst, inc, tx),
            Ev::Retry {
                client,
                nonce,
                attempt,
            } => self.retry(client, nonce, attempt),
            Ev::Crash { down } => self.crash(down),
            Ev::Restart(i) => {
                if self.instances[i].halves.is_none() {
                    self.start(i, true);
                }
            }
            Ev::PartitionStart { len } => {
                if self.healed {
                    return;
                }
                let all: Vec<usize> = (0..self.n).collect();
                self.conn.partition = Some(network::random_split(&mut self.sched, self.n, &all));
                self.stats.fault("partition");
                if self.logging() {
                    let line = format!(
                        "partition {:?} for {}",
                        self.conn.partition,
                        fmt_time(dur(len))
                    );
                    self.log(line);
                }
                self.queue.push(self.now + len, Ev::PartitionHeal);
            }
            Ev::PartitionHeal => {
                self.conn.partition = None;
                self.log("partition healed".into());
            }
            Ev::SplitStart { len } => {
                if self.healed {
                    return;
                }
                let honest_nodes: Vec<usize> = self
                    .honest
                    .iter()
                    .map(|&i| self.instances[i].node.index())
                    .collect();
                self.conn.sides = Some(network::random_split(
                    &mut self.sched,
                    self.n,
                    &honest_nodes,
                ));
                self.stats.fault("twins_split");
                if self.logging() {
                    let line = format!(
                        "twins split: sides {:?} for {}",
                        self.conn.sides,
                        fmt_time(dur(len))
                    );
                    self.log(line);
                }
                self.queue.push(self.now + len, Ev::SplitEnd);
            }
            Ev::SplitEnd => {
                self.conn.sides = None;
                self.log("twins split ended".into());
            }
            Ev::FaultEnd => self.fault_end_reached(),
            Ev::LivenessDeadline => self.check_liveness(),
        }
    }

    // -----------------------------------------------------------------------------------
    // Replicas
    // -----------------------------------------------------------------------------------

    fn start(&mut self, i: usize, restart: bool) {
        let node = self.instances[i].node;
        let restored = if restart {
            self.instances[i].persisted.clone()
        } else {
            None
        };
        let halves = P::create(
            &self.replica_cfgs[node.index()],
            self.keys[node.index()].clone(),
            self.committee.clone(),
            restored,
        );
        let ins = &mut self.instances[i];
        ins.halves = Some(halves);
        ins.started_at = self.now;
        if restart {
            ins.restarted_at = Some(self.now);
            self.stats.fault("restart");
        }
        if self.logging() {
            let line = format!(
                "{} {}",
                self.label(i),
                if restart {
                    "restarts from its persisted state"
                } else {
                    "starts"
                }
            );
            self.log(line);
        }
        self.step(i, HalfKind::Leader, Input::Start);
        self.step(i, HalfKind::Voter, Input::Start);
    }

    fn crash(&mut self, down: Time) {
        if self.healed {
            return;
        }
        // Down, or restarted within the recovery grace (zero unless synchronous).
        let grace = ns(self.cfg.recovery_grace);
        let crashed = self
            .honest
            .iter()
            .filter(|&&i| {
                let ins = &self.instances[i];
                ins.halves.is_none() || ins.restarted_at.is_some_and(|t| self.now < t + grace)
            })
            .count();
        if self.byzantine_count + crashed + 1 > self.cfg.fault_budget() {
            self.stats.event("crash_skipped_budget");
            return;
        }
        let live: Vec<usize> = self
            .honest
            .iter()
            .copied()
            .filter(|&i| self.instances[i].halves.is_some())
            .collect();
        if live.is_empty() {
            return;
        }
        let victim = live[self.sched.index(live.len())];
        let ins = &mut self.instances[victim];
        ins.halves = None;
        ins.incarnation += 1;
        ins.timers.clear();
        ins.mempool.clear();
        ins.seal_armed = false;
        self.stats.fault("crash");
        if self.logging() {
            let line = format!("{} crashes", self.label(victim));
            self.log(line);
        }
        let restart_at = (self.now + down).min(self.fault_end);
        self.queue.push(restart_at, Ev::Restart(victim));
    }

    /// Gives `input` to one half of instance `i` and carries out its actions.
    fn step(&mut self, i: usize, half: HalfKind, input: Input<P::Msg>) -> bool {
        let now = self.now;
        let ins = &mut self.instances[i];
        let Some((leader, voter)) = ins.halves.as_mut() else {
            return false;
        };
        let mut cx = Context::new(dur(now - ins.started_at));
        let accepted = match half {
            HalfKind::Leader => apply(leader, input, &mut cx),
            HalfKind::Voter => apply(voter, input, &mut cx),
        };
        for action in cx.drain() {
            self.act(i, half, action);
        }
        accepted
    }

    fn act(&mut self, i: usize, half: HalfKind, action: Action<P::Msg, P::Safety>) {
        match action {
            Action::Send { to, msg } => {
                self.observe_outgoing(i, &msg);
                self.route(i, to, msg);
            }
            Action::Broadcast { msg } => {
                self.observe_outgoing(i, &msg);
                for to in 0..self.n - 1 {
                    self.route(i, NodeId(to as u16), msg.clone());
                }
                self.route(i, NodeId(self.n as u16 - 1), msg);
            }
            Action::SetTimer { id, after } => {
                let ins = &mut self.instances[i];
                ins.next_gen += 1;
                let gen = ins.next_gen;
                ins.timers.insert((half, id), gen);
                let inc = ins.incarnation;
                self.queue.push(
                    self.now + ns(after),
                    Ev::Timer {
                        inst: i,
                        inc,
                        half,
                        id,
                        gen,
                    },
                );
            }
            Action::CancelTimer { id } => {
                self.instances[i].timers.remove(&(half, id));
            }
            Action::Persist(s) => {
                self.instances[i].persisted = Some(s);
                self.stats.event("persist");
            }
            Action::Commit(c) => self.commit(i, c),
            Action::FetchBatch { .. } => self.stats.event("fetch_batch"),
            Action::Event(e) => {
                self.stats.event(event_name(&e));
                if let Event::ConflictingCommit { committed, target } = e {
                    let ins = &self.instances[i];
                    if ins.honest {
                        self.violations.record(
                            ViolationKind::Conflict,
                            dur(self.now),
                            format!(
                                "{}'s commit rule fired for {target}, which does not extend its \
                                 committed block {committed}",
                                ins.node
                            ),
                        );
                    }
                }
            }
        }
    }

    fn observe_outgoing(&mut self, i: usize, msg: &P::Msg) {
        let ins = &self.instances[i];
        if !ins.honest {
            return;
        }
        if let Some(v) = msg.signed_vote() {
            if v.signer == ins.node {
                self.checker.on_vote(dur(self.now), v, &mut self.violations);
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Network
    // -----------------------------------------------------------------------------------

    fn route(&mut self, from: usize, to: NodeId, msg: P::Msg) {
        let kind = msg.kind();
        if to.index() >= self.n {
            let c = self.stats.msg(kind);
            c.sent += 1;
            c.dropped += 1;
            self.stats.event("send_to_unknown_node");
            return;
        }
        let count = self.node_instances[to.index()].len();
        if count == 0 {
            // A silent Byzantine node: the message goes nowhere.
            let c = self.stats.msg(kind);
            c.sent += 1;
            c.dropped += 1;
            return;
        }
        let mut msg = Some(msg);
        for k in 0..count {
            let target = self.node_instances[to.index()][k];
            let m = if k + 1 == count {
                msg.take().expect("taken once")
            } else {
                msg.clone().expect("present")
            };
            self.stats.msg(kind).sent += 1;
            if target == from {
                let inc = self.instances[from].incarnation;
                let from_node = self.instances[from].node;
                self.queue.push(
                    self.now + ns(LOCAL_DELAY),
                    Ev::Deliver {
                        inst: target,
                        inc,
                        from: from_node,
                        msg: m,
                    },
                );
            } else {
                self.transmit(from, target, kind, m);
            }
        }
    }

    fn transmit(&mut self, from: usize, to: usize, kind: &'static str, msg: P::Msg) {
        let (fnode, fworld) = (self.instances[from].node, self.instances[from].world);
        let target = &self.instances[to];
        if target.halves.is_none() {
            self.stats.msg(kind).dropped += 1;
            return;
        }
        let inc = target.incarnation;
        if let Err(cut) = self
            .conn
            .check(fnode.index(), fworld, target.node.index(), target.world)
        {
            self.stats.msg(kind).dropped += 1;
            self.stats.fault(match cut {
                Cut::Partition => "partition_cut",
                Cut::Worlds => "twins_cut",
            });
            return;
        }
        let faulty = self.faulty_now();
        if faulty && self.net.chance(self.cfg.faults.loss_prob) {
            self.stats.msg(kind).dropped += 1;
            self.stats.fault("loss");
            return;
        }
        let dup = faulty && self.net.chance(self.cfg.faults.dup_prob);
        let (d, long) = network::delay(&mut self.net, &self.cfg.faults, faulty);
        if long {
            self.stats.fault("long_delay");
        }
        if dup {
            self.stats.fault("duplicate");
            self.stats.msg(kind).sent += 1;
            let (d2, long2) = network::delay(&mut self.net, &self.cfg.faults, faulty);
            if long2 {
                self.stats.fault("long_delay");
            }
            self.queue.push(
                self.now + d2,
                Ev::Deliver {
                    inst: to,
                    inc,
                    from: fnode,
                    msg: msg.clone(),
                },
            );
        }
        self.queue.push(
            self.now + d,
            Ev::Deliver {
                inst: to,
                inc,
                from: fnode,
                msg,
            },
        );
    }

    fn deliver(&mut self, i: usize, inc: u32, from: NodeId, msg: P::Msg) {
        let kind = msg.kind();
        let ins = &self.instances[i];
        if ins.halves.is_none() || ins.incarnation != inc {
            self.stats.msg(kind).dropped += 1;
            return;
        }
        if P::PEEKS && from != self.instances[i].node {
            // As the engine does: the leader half sees it before the check.
            self.step(i, HalfKind::Leader, Input::Unverified(from, msg.clone()));
        }
        let verified = match P::verify(msg, from, &self.committee) {
            Ok(v) => v,
            Err(e) => {
                self.stats.msg(kind).rejected += 1;
                if self.logging() {
                    let line = format!("{} rejects {kind} from {from}: {e}", self.label(i));
                    self.log(line);
                }
                return;
            }
        };
        self.stats.msg(kind).delivered += 1;
        if self.logging() {
            let mut text = format!("{:?}", verified.inner());
            if text.len() > MAX_LOGGED_MESSAGE {
                let mut cut = MAX_LOGGED_MESSAGE;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push_str("...");
            }
            let line = format!("{} <- {from}: {text}", self.label(i));
            self.log(line);
        }
        self.trace.mix(self.now);
        self.trace.mix(((i as u64) << 16) | from.0 as u64);
        self.trace.mix_str(kind);
        if let Some(v) = verified.signed_vote() {
            self.trace.mix(v.view);
            self.trace.mix_digest(&v.block);
        }
        match verified.dest() {
            Dest::Leader => {
                self.step(i, HalfKind::Leader, Input::Message(from, verified));
            }
            Dest::Voter => {
                self.step(i, HalfKind::Voter, Input::Message(from, verified));
            }
            Dest::Both => {
                self.step(i, HalfKind::Leader, Input::Message(from, verified.clone()));
                self.step(i, HalfKind::Voter, Input::Message(from, verified));
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Commits, ledgers and liveness
    // -----------------------------------------------------------------------------------

    fn commit(&mut self, i: usize, c: Commit) {
        let at = dur(self.now);
        let (node, honest) = (self.instances[i].node, self.instances[i].honest);
        let restarted = self.instances[i].restarted_at.is_some();
        if !honest {
            self.stats.event("byzantine_commit");
            return;
        }
        self.stats.event("commit");
        let h = c.block.height;
        self.trace.mix(h ^ ((i as u64) << 48));
        self.trace.mix_digest(&c.digest);
        let ledger = &mut self.instances[i].ledger;
        if ledger.broken {
            return;
        }
        let expected = ledger.log.len() as u64 + 1;
        if restarted
            && h >= 1
            && h < expected
            && h + olympus_protocols::contract::COMMIT_PERSIST_EVERY >= expected
            && ledger.log[h as usize - 1] == c.digest
            && c.block.digest() == c.digest
        {
            // A restarted replica delivering again one of the last COMMIT_PERSIST_EVERY
            // blocks its durable log holds (protocols persist their committed mark
            // lazily, so it may restart up to that far below what it had committed): the
            // engine's chain log keeps one copy and its ledger executes nothing twice,
            // so this is a no-op. Another block at a logged height, a repeat from further
            // back (the replica forgot its persisted mark), or any repeat by a replica
            // that never restarted is still a `commit-order` violation.
            self.stats.event("recommit");
            return;
        }
        if h != expected {
            ledger.broken = true;
            self.violations.record(
                ViolationKind::CommitOrder,
                at,
                format!("{node} committed height {h} after height {}", expected - 1),
            );
            return;
        }
        if c.block.digest() != c.digest {
            ledger.broken = true;
            self.violations.record(
                ViolationKind::CommitOrder,
                at,
                format!(
                    "{node} committed {} at height {h} but the block's digest is {}",
                    c.digest,
                    c.block.digest()
                ),
            );
            return;
        }
        if h > 1 && c.block.parent != ledger.log[h as usize - 2] {
            ledger.broken = true;
            self.violations.record(
                ViolationKind::CommitOrder,
                at,
                format!(
                    "{node} committed {} at height {h} whose parent {} is not its block at height {} ({})",
                    c.digest,
                    c.block.parent,
                    h - 1,
                    ledger.log[h as usize - 2]
                ),
            );
            return;
        }
        ledger.log.push(c.digest);
        if self.logging() {
            let line = format!("{} commits height {h} {}", self.label(i), c.digest);
            self.log(line);
        }
        self.checker
            .on_commit(at, node, h, c.digest, &mut self.violations);
        self.execute(i, &c);
        if let Some(target) = self.target_height {
            let ins = &mut self.instances[i];
            if h > target && ins.recovered_at.is_none() {
                ins.recovered_at = Some(self.now);
                if self.cfg.stop_when_live
                    && self
                        .honest
                        .iter()
                        .all(|&j| self.instances[j].recovered_at.is_some())
                {
                    self.stop_at = Some(self.now + ns(self.cfg.settle));
                }
            }
        }
    }

    fn execute(&mut self, i: usize, c: &Commit) {
        let at = dur(self.now);
        let node = self.instances[i].node;
        for tx in c.block.inline_txs() {
            let key = (tx.client, tx.nonce);
            let Some(info) = self.txs.get_mut(&key) else {
                self.violations.record(
                    ViolationKind::UnknownTransaction,
                    at,
                    format!(
                        "{node} committed transaction (client {}, nonce {}) that no client submitted",
                        tx.client, tx.nonce
                    ),
                );
                continue;
            };
            if info.payload != tx.payload {
                self.violations.record(
                    ViolationKind::UnknownTransaction,
                    at,
                    format!(
                        "{node} committed transaction (client {}, nonce {}) with a payload its client never sent",
                        tx.client, tx.nonce
                    ),
                );
                continue;
            }
            let ledger = &mut self.instances[i].ledger;
            let raw = ledger.raw.entry(key).or_insert(0);
            *raw += 1;
            // A Twins replica may replay any transaction it saw (a leader that was
            // forwarded a batch proposes it in both worlds, or hands it on after
            // proposing it); execution stays at-most-once, which the ledger below checks.
            if *raw > info.submissions && !self.replaying_byzantine {
                self.violations.record(
                    ViolationKind::DuplicateTransaction,
                    at,
                    format!(
                        "{node}'s committed log holds (client {}, nonce {}) {} times but it was submitted {} time(s)",
                        tx.client, tx.nonce, raw, info.submissions
                    ),
                );
            }
            if !ledger.executed.insert(key) {
                self.stats.duplicates_suppressed += 1;
                continue;
            }
            info.executed_by += 1;
            if info.executed_by == 1 {
                self.stats.txs_executed += 1;
            }
            if info.executed_by >= self.confirm_threshold && !info.confirmed {
                info.confirmed = true;
                self.stats.txs_confirmed += 1;
            }
        }
    }

    fn fault_end_reached(&mut self) {
        self.healed = true;
        self.log("fault window ends: the network heals and crashed replicas restart".into());
        self.conn.partition = None;
        self.conn.sides = None;
        for k in 0..self.honest.len() {
            let i = self.honest[k];
            if self.instances[i].halves.is_none() {
                self.start(i, true);
            }
        }
        let target = self.checker.highest();
        self.target_height = Some(target);
        for &i in &self.honest {
            debug_assert!(self.instances[i].recovered_at.is_none());
        }
        if self.cfg.checks_liveness() {
            self.queue
                .push(self.now + ns(self.cfg.liveness_bound), Ev::LivenessDeadline);
        } else {
            self.liveness_checked = true;
            if self.cfg.stop_when_live {
                self.stop_at = Some(self.now + ns(self.cfg.settle));
            }
        }
    }

    fn check_liveness(&mut self) {
        if self.liveness_checked {
            return;
        }
        self.liveness_checked = true;
        let target = self.target_height.unwrap_or(0);
        let healed_at = self.fault_end.min(self.now);
        for k in 0..self.honest.len() {
            let i = self.honest[k];
            let ins = &self.instances[i];
            if ins.recovered_at.is_none() {
                let waited = self.now.saturating_sub(healed_at);
                self.violations.record(
                    ViolationKind::Liveness,
                    dur(self.now),
                    format!(
                        "{} did not commit above height {target} within {} of the end of the \
                         fault window at {} (waited {}; its height is {})",
                        ins.node,
                        fmt_time(self.cfg.liveness_bound),
                        fmt_time(dur(self.fault_end)),
                        fmt_time(dur(waited)),
                        ins.ledger.log.len()
                    ),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Clients and mempools
    // -----------------------------------------------------------------------------------

    fn client_tick(&mut self, c: usize) {
        let nonce = self.clients[c].next_nonce;
        self.clients[c].next_nonce += 1;
        let mut payload = vec![0u8; self.cfg.clients.payload_bytes];
        for chunk in payload.chunks_mut(8) {
            let r = self.client_rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        self.txs.insert(
            (c as u64, nonce),
            TxInfo {
                payload,
                submissions: 1,
                executed_by: 0,
                confirmed: false,
            },
        );
        self.stats.txs_submitted += 1;
        self.stats.tx_submissions += 1;
        self.submit(c, nonce, 0);
        self.queue.push(
            self.now + ns(self.cfg.clients.retry_timeout),
            Ev::Retry {
                client: c,
                nonce,
                attempt: 1,
            },
        );
        let interval = ns(self.cfg.clients.interval);
        let gap = self
            .client_rng
            .range(interval / 2, interval + interval / 2)
            .max(1);
        self.queue.push(self.now + gap, Ev::ClientTick(c));
    }

    fn submit(&mut self, c: usize, nonce: u64, attempt: u32) {
        let node = (self.clients[c].home + attempt as usize) % self.n;
        let targets = &self.node_instances[node];
        let inst = match targets.len() {
            0 => {
                self.stats.event("tx_to_silent_node");
                return;
            }
            1 => targets[0],
            k => targets[self.client_rng.index(k)],
        };
        if self.instances[inst].halves.is_none() {
            self.stats.event("tx_to_crashed_node");
            return;
        }
        let payload = self
            .txs
            .get(&(c as u64, nonce))
            .map(|t| t.payload.clone())
            .unwrap_or_default();
        let tx = Transaction {
            client: c as u64,
            nonce,
            payload,
        };
        let lo = ns(self.cfg.faults.delay_min);
        let hi = ns(self.cfg.faults.delay_max);
        let d = self.client_rng.range(lo, hi);
        let inc = self.instances[inst].incarnation;
        self.queue
            .push(self.now + d, Ev::TxArrive { inst, inc, tx });
    }

    fn retry(&mut self, c: usize, nonce: u64, attempt: u32) {
        let Some(info) = self.txs.get_mut(&(c as u64, nonce)) else {
            return;
        };
        if info.confirmed {
            return;
        }
        if attempt > self.cfg.clients.max_retries {
            self.stats.event("tx_gave_up");
            return;
        }
        info.submissions += 1;
        self.stats.tx_submissions += 1;
        self.stats.event("tx_retry");
        self.submit(c, nonce, attempt);
        self.queue.push(
            self.now + ns(self.cfg.clients.retry_timeout),
            Ev::Retry {
                client: c,
                nonce,
                attempt: attempt + 1,
            },
        );
    }

    fn tx_arrive(&mut self, i: usize, inc: u32, tx: Transaction) {
        let ins = &mut self.instances[i];
        if ins.halves.is_none() || ins.incarnation != inc {
            self.stats.event("tx_lost_in_crash");
            return;
        }
        ins.mempool.push(tx);
        if ins.mempool.len() >= self.cfg.mempool.batch_max_txs {
            self.seal(i);
        } else if !ins.seal_armed {
            ins.seal_armed = true;
            ins.seal_gen += 1;
            let gen = ins.seal_gen;
            self.queue.push(
                self.now + ns(self.cfg.mempool.batch_timeout),
                Ev::Seal { inst: i, inc, gen },
            );
        }
    }

    fn seal(&mut self, i: usize) {
        let ins = &mut self.instances[i];
        ins.seal_armed = false;
        ins.seal_gen += 1;
        if ins.mempool.is_empty() {
            return;
        }
        let txs = std::mem::take(&mut ins.mempool);
        self.stats.event("batch_sealed");
        let batch = BatchRef::new(Batch::new(txs));
        if !self.step(i, HalfKind::Leader, Input::Batch(batch)) {
            self.stats.batches_refused += 1;
        }
    }

    // -----------------------------------------------------------------------------------
    // Report
    // -----------------------------------------------------------------------------------

    fn report(self) -> RunReport {
        let heights: Vec<(NodeId, u64)> = self
            .honest
            .iter()
            .map(|&i| {
                (
                    self.instances[i].node,
                    self.instances[i].ledger.log.len() as u64,
                )
            })
            .collect();
        let min_height = heights.iter().map(|h| h.1).min().unwrap_or(0);
        let max_height = heights.iter().map(|h| h.1).max().unwrap_or(0);
        let max_recovery = if self.target_height.is_some() {
            self.honest
                .iter()
                .map(|&i| {
                    self.instances[i]
                        .recovered_at
                        .map(|t| dur(t - self.fault_end))
                })
                .try_fold(Duration::ZERO, |m, r| r.map(|r| m.max(r)))
        } else {
            None
        };
        RunReport {
            protocol: P::NAME,
            seed: self.seed,
            flags: self.cfg.cli_flags(),
            n: self.n,
            byzantine: self.byzantine,
            virtual_time: dur(self.now),
            events_processed: self.events_processed,
            commits: CommitStats {
                heights,
                min_height,
                max_height,
                max_recovery,
            },
            liveness_checked: self.cfg.checks_liveness(),
            txs_submitted: self.stats.txs_submitted,
            tx_submissions: self.stats.tx_submissions,
            txs_executed: self.stats.txs_executed,
            txs_confirmed: self.stats.txs_confirmed,
            duplicates_suppressed: self.stats.duplicates_suppressed,
            batches_refused: self.stats.batches_refused,
            messages: self.stats.messages,
            faults: self.stats.faults,
            events: self.stats.events,
            violations: self.violations.kept,
            violations_dropped: self.violations.dropped,
            trace_hash: self.trace.0,
        }
    }
}
