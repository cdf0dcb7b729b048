//! `olympus client`: submits transactions to a committee and measures how fast they
//! commit.
//!
//! The client connects to every replica's client port, proves each replica's identity
//! (the replica signs a fresh challenge; the signature is checked against the committee
//! key of the member dialled), and from then on attributes every receipt on a connection
//! to that replica. A transaction counts as committed once **f + 1 distinct
//! authenticated replicas** report it in the same `(height, block)`: at least one of them
//! is honest. (f = (n−1)/3 for the partially synchronous protocols, (n−1)/2 for the
//! synchronous family; a lone replica for `unreplicated`.)
//!
//! Transactions go to one replica each, round-robin by nonce; a transaction that is not
//! committed within `--resubmit-ms`, that a replica refused as busy, or whose replica
//! went away, is sent again to the next live replica. A replica that goes away is
//! retried every half second; the run goes on with the others. Replicas execute each `(client, nonce)` at most once, so a resent
//! transaction is never executed twice.
//!
//! Load models: **closed loop** (`--window K`: at most K transactions outstanding; a new
//! one is sent when one commits) or **open loop** (`--rate R`: R transactions per second
//! on a fixed schedule, whatever happens; latency is measured from the scheduled time).
//! `--txs N` submits exactly N transactions and waits for all of them.
//!
//! Output: `progress t=.. committed=.. tps=..` on stderr once a second, a summary on
//! stdout, and with `--json FILE` the summary as JSON (throughput and latency over the
//! measured window, after `--warmup`, plus a per-second series).
//!
//! Exit status: 0 when transactions committed (with `--txs`, all of them), 1 when none
//! did (or some of `--txs` did not) or two different blocks were reported for one
//! transaction by f + 1 replicas each, 2 on bad usage or when a replica cannot be
//! reached at start or fails its identity check.

use anyhow::{bail, Context, Result};
use olympus_crypto::{Committee, Scheme};
use olympus_net::Frame;
use olympus_types::client::{identity_statement, ClientReply, ClientRequest};
use olympus_types::config::ClientConfig;
use olympus_types::frame::{decode, FrameReader};
use olympus_types::{Digest, NodeId, PublicKeyBytes, Signature, Transaction};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most transactions in one submit frame.
const SUBMIT_CHUNK: usize = 1024;
/// How long to keep trying to reach a replica at start.
const CONNECT_PATIENCE: Duration = Duration::from_secs(20);

/// Arguments of `olympus client`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The clients' configuration file (written by `olympus genconfig`).
    #[arg(long)]
    pub config: PathBuf,
    /// Closed loop: most transactions outstanding at once (the default load model).
    #[arg(long, conflicts_with = "rate")]
    pub window: Option<usize>,
    /// Open loop: transactions per second, sent on a fixed schedule.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Submit exactly this many transactions and wait until all commit (or --duration
    /// passes); instead of running for a fixed time.
    #[arg(long)]
    pub txs: Option<u64>,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Payload bytes per transaction.
    #[arg(long, default_value_t = 0)]
    pub payload: usize,
    /// This client's id (default: random).
    #[arg(long)]
    pub id: Option<u64>,
    /// Resend a transaction not committed after this many milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub resubmit_ms: u64,
    /// Write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Byzantine replicas a client must out-vote, by protocol.
pub fn fault_bound(protocol: &str, n: usize) -> usize {
    match protocol {
        "sync-hotstuff" | "opt-sync" | "optsync" | "apollo" | "artemis" => (n.max(1) - 1) / 2,
        "unreplicated" => 0,
        _ => (n.max(1) - 1) / 3,
    }
}

/// A transaction not yet committed.
struct Pending {
    /// When it was (or, open loop, should have been) first sent.
    sent: Instant,
    /// When it was last sent, and to which replica.
    last_sent: Instant,
    attempt: u32,
    /// The replica it was last sent to.
    replica: usize,
    /// (height, block, replicas reporting it as a bitmap) — at most a few entries.
    reports: Vec<(u64, Digest, u64)>,
}

/// What the reader threads pass to the main loop.
enum Event {
    Reply(usize, ClientReply),
    /// Replica `.0`'s connection of generation `.1` ended.
    Closed(usize, u64, String),
}

/// One replica's connection. A replica that goes away (crash, restart) is marked down,
/// its outstanding transactions go to the others, and the client reconnects to it every
/// [`RECONNECT_EVERY`].
struct Replica {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    generation: u64,
    next_attempt: Instant,
    outbox: Vec<Transaction>,
}

/// How often a client tries to reconnect to a replica that went away.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// The first live replica at or after `r` (round robin); `r` itself if none is live.
fn live_from(replicas: &[Replica], r: usize) -> usize {
    let n = replicas.len();
    (0..n)
        .map(|k| (r + k) % n)
        .find(|&i| replicas[i].stream.is_some())
        .unwrap_or(r % n)
}

pub fn run(args: ClientArgs) -> Result<ExitCode> {
    let cfg = olympus_types::config::load_client(&args.config)?;
    if args.window == Some(0) || args.rate == Some(0) {
        bail!("--window and --rate must be positive");
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    if args.payload > olympus_types::limits::MAX_TX_PAYLOAD {
        bail!(
            "--payload {} exceeds the limit of {} bytes",
            args.payload,
            olympus_types::limits::MAX_TX_PAYLOAD
        );
    }
    let n = cfg.committee.size();
    if n > 64 {
        bail!("this client tracks receipts from at most 64 replicas; the committee has {n}");
    }
    let f = fault_bound(&cfg.params.protocol, n);
    let committee = committee_of(&cfg)?;
    let id = match args.id {
        Some(id) => id,
        None => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
            u64::from_le_bytes(b)
        }
    };
    let window = if args.rate.is_some() {
        None
    } else {
        Some(args.window.unwrap_or(10_000))
    };

    let (tx_events, events) = mpsc::channel();
    let mut replicas = Vec::with_capacity(n);
    for (i, m) in cfg.committee.members.iter().enumerate() {
        let stream = connect(
            id,
            i,
            m.client_addr,
            &committee,
            &tx_events,
            0,
            CONNECT_PATIENCE,
        )
        .with_context(|| format!("replica {i} at {}", m.client_addr))?;
        replicas.push(Replica {
            addr: m.client_addr,
            stream: Some(stream),
            generation: 0,
            next_attempt: Instant::now(),
            outbox: Vec::new(),
        });
    }
    eprintln!(
        "client {id:#x}: connected to {n} replicas, commit on {} matching receipts; load: {}",
        f + 1,
        load_name(window, args.rate)
    );

    let start = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup);
    let end = warmup + Duration::from_secs_f64(args.duration);
    let resubmit = Duration::from_millis(args.resubmit_ms.max(1));
    let payload = vec![0u8; args.payload];

    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut retry: VecDeque<u64> = VecDeque::new();
    let mut next_nonce = 0u64;
    let mut submitted = 0u64;
    let mut committed_total = 0u64;
    let mut measured = 0u64;
    let mut latencies: Vec<f64> = Vec::new();
    let mut series = Series::default();
    let mut conflicts = 0u64;
    let mut resent = 0u64;
    let mut last_progress = Duration::ZERO;
    let mut last_resubmit_scan = Duration::ZERO;

    loop {
        let now = Instant::now();
        let t = now - start;
        let done_sending = args.txs.is_some_and(|k| next_nonce >= k);
        if t >= end && (args.txs.is_none() || pending.is_empty()) {
            break;
        }
        if args.txs.is_some() && done_sending && pending.is_empty() {
            break;
        }
        if args.txs.is_some() && t >= end + Duration::from_secs(30) {
            break; // --txs gives up a while after --duration
        }

        // New transactions.
        let mut new = 0u64;
        if t < end || args.txs.is_some() {
            let wanted = match (window, args.rate) {
                (Some(w), _) => (w as u64).saturating_sub(pending.len() as u64),
                (None, Some(r)) => ((t.as_secs_f64() * r as f64) as u64).saturating_sub(next_nonce),
                (None, None) => 0,
            };
            new = match args.txs {
                Some(k) => wanted.min(k - next_nonce.min(k)),
                None => wanted,
            };
        }
        for _ in 0..new {
            let nonce = next_nonce;
            next_nonce += 1;
            submitted += 1;
            let sent = match args.rate {
                // Open loop: latency counts from the scheduled time.
                Some(r) if window.is_none() => {
                    start + Duration::from_secs_f64(nonce as f64 / r as f64)
                }
                _ => now,
            };
            let r = live_from(&replicas, (nonce % n as u64) as usize);
            pending.insert(
                nonce,
                Pending {
                    sent,
                    last_sent: now,
                    attempt: 0,
                    replica: r,
                    reports: Vec::new(),
                },
            );
            replicas[r].outbox.push(Transaction {
                client: id,
                nonce,
                payload: payload.clone(),
            });
        }
        // Retries: busy refusals and transactions that took too long.
        if t - last_resubmit_scan >= Duration::from_millis(100) {
            last_resubmit_scan = t;
            for (&nonce, p) in pending.iter() {
                if now - p.last_sent >= resubmit {
                    retry.push_back(nonce);
                }
            }
        }
        while let Some(nonce) = retry.pop_front() {
            if let Some(p) = pending.get_mut(&nonce) {
                p.attempt += 1;
                p.last_sent = now;
                resent += 1;
                let r = live_from(&replicas, ((nonce + p.attempt as u64) % n as u64) as usize);
                p.replica = r;
                replicas[r].outbox.push(Transaction {
                    client: id,
                    nonce,
                    payload: payload.clone(),
                });
            }
        }
        for (i, r) in replicas.iter_mut().enumerate() {
            if let Err(e) = flush(r) {
                let _ = tx_events.send(Event::Closed(
                    i,
                    r.generation,
                    format!("send failed: {e:#}"),
                ));
            }
            if r.stream.is_none() && now >= r.next_attempt {
                r.next_attempt = now + RECONNECT_EVERY;
                let generation = r.generation + 1;
                if let Ok(s) = connect(
                    id,
                    i,
                    r.addr,
                    &committee,
                    &tx_events,
                    generation,
                    Duration::ZERO,
                ) {
                    eprintln!("client: replica {i} is back");
                    r.stream = Some(s);
                    r.generation = generation;
                }
            }
        }

        // Receipts.
        let mut got = events.recv_timeout(Duration::from_millis(1)).ok();
        while let Some(ev) = got {
            match ev {
                Event::Reply(
                    from,
                    ClientReply::Committed {
                        height,
                        block,
                        nonces,
                    },
                ) => {
                    let now = Instant::now();
                    for nonce in nonces {
                        let Some(p) = pending.get_mut(&nonce) else {
                            continue; // already committed, or not ours
                        };
                        let bit = 1u64 << from;
                        let entry =
                            match p.reports.iter_mut().find(|r| r.0 == height && r.1 == block) {
                                Some(e) => e,
                                None => {
                                    p.reports.push((height, block, 0));
                                    // Bounded by n: a replica reports a nonce at most once per
                                    // distinct block it claims.
                                    p.reports.last_mut().unwrap_or_else(|| unreachable!())
                                }
                            };
                        entry.2 |= bit;
                        if entry.2.count_ones() as usize > f {
                            if p.reports
                                .iter()
                                .filter(|r| r.2.count_ones() as usize > f)
                                .count()
                                > 1
                            {
                                conflicts += 1;
                            }
                            let sent = p.sent;
                            pending.remove(&nonce);
                            committed_total += 1;
                            let at = now - start;
                            if at >= warmup && at < end {
                                measured += 1;
                                let ms = (now - sent).as_secs_f64() * 1e3;
                                latencies.push(ms);
                                series.add(at - warmup, ms);
                            }
                        }
                    }
                }
                Event::Reply(_, ClientReply::Busy { nonces }) => {
                    retry.extend(nonces.into_iter().filter(|n| pending.contains_key(n)));
                }
                Event::Reply(from, ClientReply::Identity { .. }) => {
                    eprintln!("client: replica {from} sent a second identity; ignored");
                }
                Event::Closed(from, generation, why) => {
                    let r = &mut replicas[from];
                    if r.generation == generation && r.stream.is_some() {
                        eprintln!("client: replica {from} went away ({why}); resending its transactions to the others");
                        r.stream = None;
                        r.outbox.clear();
                        r.next_attempt = Instant::now() + RECONNECT_EVERY;
                        retry.extend(
                            pending
                                .iter()
                                .filter(|(_, p)| p.replica == from)
                                .map(|(&nonce, _)| nonce),
                        );
                    }
                }
            }
            got = events.try_recv().ok();
        }

        if t - last_progress >= Duration::from_secs(1) {
            last_progress = t;
            let secs = t.as_secs_f64().max(1e-9);
            eprintln!(
                "progress t={:.0} committed={committed_total} tps={:.0} outstanding={}",
                secs,
                committed_total as f64 / secs,
                pending.len()
            );
        }
    }

    let elapsed = (Instant::now() - start).min(end).saturating_sub(warmup);
    let secs = elapsed.as_secs_f64().max(1e-9);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let summary = Summary {
        load: load_name(window, args.rate),
        window,
        rate: args.rate,
        payload: args.payload,
        warmup_s: args.warmup,
        duration_s: secs,
        submitted,
        committed: committed_total,
        measured,
        throughput: measured as f64 / secs,
        mean: if latencies.is_empty() {
            0.0
        } else {
            latencies.iter().sum::<f64>() / latencies.len() as f64
        },
        p50: percentile(&latencies, 0.50),
        p90: percentile(&latencies, 0.90),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0.0),
        outstanding: pending.len(),
        resent,
        conflicts,
        series: series.finish(),
    };
    println!(
        "client {id:#x}: {} committed ({} measured over {:.1} s): {:.0} tx/s, latency ms \
         mean {:.1} p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; {} outstanding, {} resent",
        summary.committed,
        summary.measured,
        secs,
        summary.throughput,
        summary.mean,
        summary.p50,
        summary.p90,
        summary.p99,
        summary.max,
        summary.outstanding,
        summary.resent
    );
    if !pending.is_empty() {
        let mut left: Vec<_> = pending.iter().collect();
        left.sort_by_key(|(n, _)| **n);
        let show: Vec<String> = left
            .iter()
            .take(5)
            .map(|(n, p)| {
                format!(
                    "nonce {n} (last sent to replica {}, {} resends)",
                    p.replica, p.attempt
                )
            })
            .collect();
        eprintln!(
            "client: not committed: {}{}",
            show.join(", "),
            if left.len() > 5 { ", ..." } else { "" }
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, summary.to_json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if conflicts > 0 {
        eprintln!("client: {conflicts} transactions were reported in two different blocks by f+1 replicas each");
        return Ok(ExitCode::from(1));
    }
    if committed_total == 0 || args.txs.is_some_and(|k| committed_total < k) {
        eprintln!("client: {committed_total} of {submitted} transactions committed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn load_name(window: Option<usize>, rate: Option<u64>) -> String {
    match (window, rate) {
        (Some(w), _) => format!("window {w}"),
        (None, Some(r)) => format!("rate {r}/s"),
        (None, None) => "none".into(),
    }
}

fn committee_of(cfg: &ClientConfig) -> Result<Committee> {
    cfg.committee.validate()?;
    let mut pks = Vec::new();
    let mut pops = Vec::new();
    for m in &cfg.committee.members {
        pks.push(PublicKeyBytes(m.public_key_bytes()?));
        pops.push(Signature(m.pop_bytes()?));
    }
    Ok(Committee::with_proofs(Scheme::Bls, &pks, &pops)?)
}

fn write_frame<T: Write>(s: &mut T, frame: &Frame) -> std::io::Result<()> {
    s.write_all(frame.wire())
}

/// Connects to replica `i`, checks its identity, and starts its reader thread.
fn connect(
    id: u64,
    i: usize,
    addr: SocketAddr,
    committee: &Committee,
    events: &mpsc::Sender<Event>,
    generation: u64,
    patience: Duration,
) -> Result<TcpStream> {
    let deadline = Instant::now() + patience;
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => bail!("cannot connect within {CONNECT_PATIENCE:?}: {e}"),
        }
    };
    stream.set_nodelay(true)?;
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    write_frame(&mut stream, &olympus_net::client::client_hello(id))?;
    write_frame(
        &mut stream,
        &Frame::encode(&ClientRequest::Challenge(nonce))?,
    )?;
    let mut reader = stream.try_clone()?;
    reader.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut frames = FrameReader::new();
    let mut buf = vec![0u8; 64 * 1024];
    let body = loop {
        if let Some(body) = frames.next_frame()? {
            break body;
        }
        let k = reader
            .read(&mut buf)
            .context("waiting for the identity proof")?;
        if k == 0 {
            bail!("closed before proving its identity");
        }
        frames.extend(&buf[..k]);
    };
    match decode::<ClientReply>(&body)? {
        ClientReply::Identity { node, signature } if node == NodeId(i as u16) => {
            committee
                .verify(node, &identity_statement(id, &nonce, node), &signature)
                .map_err(|e| anyhow::anyhow!("identity proof does not verify: {e}"))?;
        }
        other => bail!("expected the identity proof of replica {i}, got {other:?}"),
    }
    reader.set_read_timeout(None)?;
    let events = events.clone();
    std::thread::Builder::new()
        .name(format!("client-rx-{i}"))
        .spawn(move || read_loop(i, generation, reader, frames, buf, events))?;
    Ok(stream)
}

fn read_loop(
    i: usize,
    generation: u64,
    mut s: TcpStream,
    mut frames: FrameReader,
    mut buf: Vec<u8>,
    events: mpsc::Sender<Event>,
) {
    loop {
        loop {
            match frames.next_frame() {
                Ok(Some(body)) => match decode::<ClientReply>(&body) {
                    Ok(r) => {
                        if events.send(Event::Reply(i, r)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ =
                            events.send(Event::Closed(i, generation, format!("bad frame: {e}")));
                        return;
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    let _ = events.send(Event::Closed(i, generation, format!("bad frame: {e}")));
                    return;
                }
            }
        }
        match s.read(&mut buf) {
            Ok(0) => {
                let _ = events.send(Event::Closed(i, generation, "end of stream".into()));
                return;
            }
            Ok(k) => frames.extend(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = events.send(Event::Closed(i, generation, e.to_string()));
                return;
            }
        }
    }
}

fn flush(r: &mut Replica) -> Result<()> {
    let Some(stream) = r.stream.as_mut() else {
        return Ok(());
    };
    if r.outbox.is_empty() {
        return Ok(());
    }
    let txs = std::mem::take(&mut r.outbox);
    for chunk in txs.chunks(SUBMIT_CHUNK) {
        let frame = Frame::encode(&ClientRequest::Submit(chunk.to_vec()))?;
        write_frame(stream, &frame)?;
    }
    Ok(())
}

/// The value at quantile `q` of sorted `v` (nearest rank); 0 when empty.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Per-second commits and latency percentiles over the measured window.
#[derive(Default)]
struct Series {
    seconds: Vec<Vec<f64>>,
}

impl Series {
    fn add(&mut self, at: Duration, ms: f64) {
        let s = at.as_secs() as usize;
        if self.seconds.len() <= s {
            self.seconds.resize_with(s + 1, Vec::new);
        }
        self.seconds[s].push(ms);
    }

    /// (second end, commits, p50, p99) per second.
    fn finish(mut self) -> Vec<(f64, usize, f64, f64)> {
        self.seconds
            .iter_mut()
            .enumerate()
            .map(|(s, v)| {
                v.sort_by(|a, b| a.total_cmp(b));
                (
                    (s + 1) as f64,
                    v.len(),
                    percentile(v, 0.5),
                    percentile(v, 0.99),
                )
            })
            .collect()
    }
}

struct Summary {
    load: String,
    window: Option<usize>,
    rate: Option<u64>,
    payload: usize,
    warmup_s: f64,
    duration_s: f64,
    submitted: u64,
    committed: u64,
    measured: u64,
    throughput: f64,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    outstanding: usize,
    resent: u64,
    conflicts: u64,
    series: Vec<(f64, usize, f64, f64)>,
}

impl Summary {
    fn to_json(&self) -> String {
        let series: Vec<serde_json::Value> = self
            .series
            .iter()
            .map(|(t, c, p50, p99)| {
                serde_json::json!({"t": t, "committed": c, "tps": *c as f64, "p50_ms": p50, "p99_ms": p99})
            })
            .collect();
        serde_json::json!({
            "load": if self.window.is_some() { "window" } else { "rate" },
            "load_desc": self.load,
            "window": self.window,
            "rate": self.rate,
            "payload": self.payload,
            "warmup_s": self.warmup_s,
            "duration_s": self.duration_s,
            "submitted": self.submitted,
            "committed": self.committed,
            "measured": self.measured,
            "throughput_tx_s": self.throughput,
            "latency_ms": {"mean": self.mean, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max},
            "outstanding": self.outstanding,
            "resent": self.resent,
            "conflicts": self.conflicts,
            "series": series,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.01), 7.0);
    }

    #[test]
    fn fault_bounds_follow_the_protocol_family() {
        assert_eq!(fault_bound("hotstuff", 4), 1);
        assert_eq!(fault_bound("hotstuff", 7), 2);
        assert_eq!(fault_bound("apollo", 3), 1);
        assert_eq!(fault_bound("artemis", 7), 3);
        assert_eq!(fault_bound("unreplicated", 1), 0);
    }

    #[test]
    fn series_buckets_by_second() {
        let mut s = Series::default();
        s.add(Duration::from_millis(100), 5.0);
        s.add(Duration::from_millis(900), 7.0);
        s.add(Duration::from_millis(2100), 9.0);
        let out = s.finish();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].1, 2);
        assert_eq!(out[1].1, 0);
        assert_eq!(out[2], (3.0, 1, 9.0, 9.0));
    }
}
