//! What the node measures, as [`metrics`] handles registered once at start.
//!
//! Registering looks the metric up in the recorder; recording through a registered
//! handle is an atomic add (see [`crate::metrics`]). So [`Meters::new`] registers every
//! handle the node uses, and the main loop only records. Without an installed recorder
//! the handles are no-ops.
//!
//! | metric | kind | what |
//! | --- | --- | --- |
//! | `olympus_proposals_total`, `olympus_proposal_batches` | counter, histogram | blocks this node proposed, batches in each |
//! | `olympus_votes_total` | counter | votes this node cast |
//! | `olympus_certificates_total` | counter | quorum certificates this node formed |
//! | `olympus_timeouts_sent_total`, `olympus_timeout_certificates_total` | counter | view timeouts sent, timeout certificates formed |
//! | `olympus_view_changes_total{cause}` | counter | view changes, `cause` = `certificate` or `timeout` |
//! | `olympus_view` | gauge | the current view |
//! | `olympus_ignored_total{kind,reason}` | counter | valid messages the protocol could not use |
//! | `olympus_buffered_blocks_total`, `olympus_conflicting_commits_total` | counter | blocks waiting for their parent; commit rule on a conflicting block |
//! | `olympus_commits_total`, `olympus_committed_txs_total`, `olympus_committed_batches_total` | counter | committed blocks, newly executed transactions, batches |
//! | `olympus_committed_height` | gauge | height of the last committed block |
//! | `olympus_block_txs` | histogram | transactions per committed block |
//! | `olympus_commit_interval_us` | histogram | time between two commits |
//! | `olympus_commit_latency_us` | histogram | from this node first seeing a block (proposing or voting for it) to committing it |
//! | `olympus_frames_in_total{from}` | counter | frames handled, `from` = `peer` or `client` |
//! | `olympus_frames_rejected_total{reason}` | counter | frames refused: `decode` (peer bytes), `signature`, `client_decode`, `client_submit` |
//! | `olympus_verify_us` | histogram | signature and certificate checks of one peer message |
//! | `olympus_batch_verify_us`, `olympus_signatures_batched_total`, `olympus_signature_batches_failed_total` | histogram, counter, counter | one batch check of the signatures of a loop turn's frames (`prime`), the signatures it verified, the batches that did not hold (turns whose signatures were all verified already are not counted) |
//! | `olympus_batches_taken_total`, `olympus_batch_txs` | counter, histogram | batches the leader half took, transactions in each |
//! | `olympus_busy_txs_total` | counter | transactions refused with Busy (pool full) |
//! | `olympus_persist_us`, `olympus_chain_append_us`, `olympus_chain_sync_us` | histogram | safety-state store (one fdatasync), chain-log append (into the mapping), chain-log write-back (on the syncer thread, covering every block appended before it) |
//! | `olympus_loop_busy_us` | histogram | time the main loop runs between two waits (a long one stalls the reactor) |
//! | `olympus_loop_stalls_total` | counter | such runs longer than [`STALL`] |
//! | `olympus_frames_per_turn` | histogram | frames handled per loop turn |
//! | `olympus_inbox_depth`, `olympus_peer_queue_depth`, `olympus_peer_queue_max` | gauge | sampled each turn: inbox frames, frames queued to peers (all, fullest queue) |
//! | `olympus_inbox_depth_sampled` | histogram | the inbox depth of each turn |
//! | `olympus_net_*_total` | counter | the transport's [`NetStats`], copied every [`NET_SAMPLE`] |

use metrics::{Counter, Gauge, Histogram};
use olympus_net::{Inbox, NetHandle, NetStats};
use olympus_protocols::Event;
use olympus_types::{Batch, Digest, NodeId};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A main-loop run longer than this is counted as a reactor stall.
pub const STALL: Duration = Duration::from_millis(10);
/// How often the transport's counters are copied into the registry.
pub const NET_SAMPLE: Duration = Duration::from_millis(100);
/// Most blocks remembered for `olympus_commit_latency_us` (the oldest are forgotten).
pub const MAX_TRACKED_BLOCKS: usize = 4096;

/// Why a frame was refused.
#[derive(Clone, Copy, Debug)]
pub enum Reject {
    /// Peer bytes that do not decode as a message.
    Decode,
    /// A peer message whose signature or certificate does not verify.
    Signature,
    /// Client bytes that do not decode as a request.
    ClientDecode,
    /// A client submission over the limits or for another client.
    ClientSubmit,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The transport's counters, mirrored.
struct NetMirror {
    stats: Arc<NetStats>,
    last: Option<Instant>,
    frames_in: Counter,
    bytes_in: Counter,
    frames_out: Counter,
    bytes_out: Counter,
    writes: Counter,
    frames_lost: Counter,
    sends_refused: Counter,
    frames_invalid: Counter,
    links_closed_invalid: Counter,
    handshakes_ok: Counter,
    handshakes_refused: Counter,
    reconnects: Counter,
    dial_failures: Counter,
    links_down: Counter,
    clients_accepted: Counter,
}

impl NetMirror {
    fn new(stats: Arc<NetStats>) -> Self {
        NetMirror {
            stats,
            last: None,
            frames_in: metrics::counter!("olympus_net_frames_in_total"),
            bytes_in: metrics::counter!("olympus_net_bytes_in_total"),
            frames_out: metrics::counter!("olympus_net_frames_out_total"),
            bytes_out: metrics::counter!("olympus_net_bytes_out_total"),
            writes: metrics::counter!("olympus_net_writes_total"),
            frames_lost: metrics::counter!("olympus_net_frames_lost_total"),
            sends_refused: metrics::counter!("olympus_net_sends_refused_total"),
            frames_invalid: metrics::counter!("olympus_net_frames_invalid_total"),
            links_closed_invalid: metrics::counter!("olympus_net_links_closed_invalid_total"),
            handshakes_ok: metrics::counter!("olympus_net_handshakes_ok_total"),
            handshakes_refused: metrics::counter!("olympus_net_handshakes_refused_total"),
            reconnects: metrics::counter!("olympus_net_reconnects_total"),
            dial_failures: metrics::counter!("olympus_net_dial_failures_total"),
            links_down: metrics::counter!("olympus_net_links_down_total"),
            clients_accepted: metrics::counter!("olympus_net_clients_accepted_total"),
        }
    }

    fn copy(&mut self) {
        let s = self.stats.snapshot();
        self.frames_in.absolute(s.frames_in);
        self.bytes_in.absolute(s.bytes_in);
        self.frames_out.absolute(s.frames_out);
        self.bytes_out.absolute(s.bytes_out);
        self.writes.absolute(s.writes);
        self.frames_lost.absolute(s.frames_lost);
        self.sends_refused.absolute(s.sends_refused);
        self.frames_invalid.absolute(s.frames_invalid);
        self.links_closed_invalid.absolute(s.links_closed_invalid);
        self.handshakes_ok.absolute(s.handshakes_ok);
        self.handshakes_refused.absolute(s.handshakes_refused);
        self.reconnects.absolute(s.reconnects);
        self.dial_failures.absolute(s.dial_failures);
        self.links_down.absolute(s.links_down);
        self.clients_accepted.absolute(s.clients_accepted);
    }
}

/// When this node first saw each recent block (bounded by [`MAX_TRACKED_BLOCKS`]).
#[derive(Default)]
struct FirstSeen {
    at: HashMap<Digest, Instant>,
    order: VecDeque<(Digest, Instant)>,
}

impl FirstSeen {
    fn see(&mut self, block: Digest, now: Instant) {
        if self.at.contains_key(&block) {
            return;
        }
        while self.order.len() >= MAX_TRACKED_BLOCKS {
            if let Some((d, t)) = self.order.pop_front() {
                // Only if it is still that entry (not already committed and seen again).
                if self.at.get(&d) == Some(&t) {
                    self.at.remove(&d);
                }
            }
        }
        self.at.insert(block, now);
        self.order.push_back((block, now));
    }

    fn take(&mut self, block: &Digest) -> Option<Instant> {
        self.at.remove(block)
    }
}

/// The descriptions of the node's metrics (Prometheus `# HELP` lines).
fn describe() {
    const COUNTERS: &[(&str, &str)] = &[
        ("olympus_proposals_total", "blocks this node proposed"),
        ("olympus_votes_total", "votes this node cast"),
        (
            "olympus_certificates_total",
            "quorum certificates this node formed",
        ),
        (
            "olympus_timeouts_sent_total",
            "view timeouts this node sent",
        ),
        (
            "olympus_timeout_certificates_total",
            "timeout certificates this node formed",
        ),
        ("olympus_view_changes_total", "view changes, by cause"),
        (
            "olympus_ignored_total",
            "valid messages the protocol could not use",
        ),
        (
            "olympus_buffered_blocks_total",
            "blocks that waited for their parent",
        ),
        (
            "olympus_conflicting_commits_total",
            "commit rule fired on a conflicting block",
        ),
        ("olympus_commits_total", "committed blocks"),
        (
            "olympus_signatures_batched_total",
            "signatures verified in a batch before their messages were handled",
        ),
        (
            "olympus_signature_batches_failed_total",
            "signature batches that did not all verify or held nothing new (each message is then checked alone)",
        ),
        (
            "olympus_committed_txs_total",
            "committed transactions new to the ledger",
        ),
        (
            "olympus_committed_batches_total",
            "batches in committed blocks",
        ),
        ("olympus_frames_in_total", "frames handled, by origin"),
        ("olympus_frames_rejected_total", "frames refused, by reason"),
        (
            "olympus_batches_taken_total",
            "batches the leader half took",
        ),
        (
            "olympus_busy_txs_total",
            "transactions refused with Busy (pool full)",
        ),
        (
            "olympus_loop_stalls_total",
            "main-loop runs without yielding longer than 10 ms",
        ),
    ];
    const GAUGES: &[(&str, &str)] = &[
        ("olympus_view", "current view"),
        (
            "olympus_committed_height",
            "height of the last committed block",
        ),
        ("olympus_inbox_depth", "frames waiting in the inbox"),
        ("olympus_peer_queue_depth", "frames queued to all peers"),
        (
            "olympus_peer_queue_max",
            "frames queued to the fullest peer queue",
        ),
    ];
    const HISTOGRAMS: &[(&str, &str)] = &[
        (
            "olympus_proposal_batches",
            "batches per proposal of this node",
        ),
        ("olympus_block_txs", "transactions per committed block"),
        (
            "olympus_commit_interval_us",
            "microseconds between two commits",
        ),
        (
            "olympus_commit_latency_us",
            "microseconds from first seeing a block (proposing or voting) to committing it",
        ),
        (
            "olympus_verify_us",
            "microseconds to check the signatures of a peer message",
        ),
        (
            "olympus_batch_verify_us",
            "microseconds to check the signatures of a loop turn's frames in one batch",
        ),
        (
            "olympus_batch_txs",
            "transactions per batch taken by the leader half",
        ),
        (
            "olympus_persist_us",
            "microseconds to store the safety state (fdatasync)",
        ),
        (
            "olympus_chain_append_us",
            "microseconds to append a block to the chain log",
        ),
        (
            "olympus_chain_sync_us",
            "microseconds to write the chain log back (syncer thread, one per group of blocks)",
        ),
        (
            "olympus_loop_busy_us",
            "microseconds the main loop ran between two waits",
        ),
        (
            "olympus_frames_per_turn",
            "frames handled per main-loop turn",
        ),
        (
            "olympus_inbox_depth_sampled",
            "inbox depth at each main-loop turn",
        ),
    ];
    for &(name, help) in COUNTERS {
        metrics::describe_counter!(name, help);
    }
    for &(name, help) in GAUGES {
        metrics::describe_gauge!(name, help);
    }
    for &(name, help) in HISTOGRAMS {
        metrics::describe_histogram!(name, help);
    }
}

/// Every handle the node records into (see the module documentation).
pub struct Meters {
    proposals: Counter,
    proposal_batches: Histogram,
    votes: Counter,
    certificates: Counter,
    timeouts_sent: Counter,
    timeout_certificates: Counter,
    view_changes_by_certificate: Counter,
    view_changes_by_timeout: Counter,
    view: Gauge,
    buffered: Counter,
    conflicting_commits: Counter,

    commits: Counter,
    committed_txs: Counter,
    committed_batches: Counter,
    committed_height: Gauge,
    block_txs: Histogram,
    commit_interval_us: Histogram,
    commit_latency_us: Histogram,
    last_commit: Option<Instant>,
    first_seen: FirstSeen,

    peer_frames: Counter,
    client_frames: Counter,
    rejected_decode: Counter,
    rejected_signature: Counter,
    rejected_client_decode: Counter,
    rejected_client_submit: Counter,
    verify_us: Histogram,
    batch_verify_us: Histogram,
    signatures_batched: Counter,
    signature_batches_failed: Counter,
    batches_taken: Counter,
    batch_txs: Histogram,
    busy_txs: Counter,

    persist_us: Histogram,
    chain_append_us: Histogram,

    loop_busy_us: Histogram,
    loop_stalls: Counter,
    frames_per_turn: Histogram,
    inbox_depth: Gauge,
    inbox_depth_sampled: Histogram,
    peer_queue_depth: Gauge,
    peer_queue_max: Gauge,

    net: NetMirror,
}

impl Meters {
    /// Registers every handle (install the recorder first).
    pub fn new(net_stats: Arc<NetStats>) -> Self {
        describe();
        let rejected = |reason: &'static str| metrics::counter!("olympus_frames_rejected_total", "reason" => reason);
        let frames =
            |from: &'static str| metrics::counter!("olympus_frames_in_total", "from" => from);
        let view_changes =
            |cause: &'static str| metrics::counter!("olympus_view_changes_total", "cause" => cause);
        Meters {
            proposals: metrics::counter!("olympus_proposals_total"),
            proposal_batches: metrics::histogram!("olympus_proposal_batches"),
            votes: metrics::counter!("olympus_votes_total"),
            certificates: metrics::counter!("olympus_certificates_total"),
            timeouts_sent: metrics::counter!("olympus_timeouts_sent_total"),
            timeout_certificates: metrics::counter!("olympus_timeout_certificates_total"),
            view_changes_by_certificate: view_changes("certificate"),
            view_changes_by_timeout: view_changes("timeout"),
            view: metrics::gauge!("olympus_view"),
            buffered: metrics::counter!("olympus_buffered_blocks_total"),
            conflicting_commits: metrics::counter!("olympus_conflicting_commits_total"),
            commits: metrics::counter!("olympus_commits_total"),
            committed_txs: metrics::counter!("olympus_committed_txs_total"),
            committed_batches: metrics::counter!("olympus_committed_batches_total"),
            committed_height: metrics::gauge!("olympus_committed_height"),
            block_txs: metrics::histogram!("olympus_block_txs"),
            commit_interval_us: metrics::histogram!("olympus_commit_interval_us"),
            commit_latency_us: metrics::histogram!("olympus_commit_latency_us"),
            last_commit: None,
            first_seen: FirstSeen::default(),
            peer_frames: frames("peer"),
            client_frames: frames("client"),
            rejected_decode: rejected("decode"),
            rejected_signature: rejected("signature"),
            rejected_client_decode: rejected("client_decode"),
            rejected_client_submit: rejected("client_submit"),
            verify_us: metrics::histogram!("olympus_verify_us"),
            batch_verify_us: metrics::histogram!("olympus_batch_verify_us"),
            signatures_batched: metrics::counter!("olympus_signatures_batched_total"),
            signature_batches_failed: metrics::counter!("olympus_signature_batches_failed_total"),
            batches_taken: metrics::counter!("olympus_batches_taken_total"),
            batch_txs: metrics::histogram!("olympus_batch_txs"),
            busy_txs: metrics::counter!("olympus_busy_txs_total"),
            persist_us: metrics::histogram!("olympus_persist_us"),
            chain_append_us: metrics::histogram!("olympus_chain_append_us"),
            loop_busy_us: metrics::histogram!("olympus_loop_busy_us"),
            loop_stalls: metrics::counter!("olympus_loop_stalls_total"),
            frames_per_turn: metrics::histogram!("olympus_frames_per_turn"),
            inbox_depth: metrics::gauge!("olympus_inbox_depth"),
            inbox_depth_sampled: metrics::histogram!("olympus_inbox_depth_sampled"),
            peer_queue_depth: metrics::gauge!("olympus_peer_queue_depth"),
            peer_queue_max: metrics::gauge!("olympus_peer_queue_max"),
            net: NetMirror::new(net_stats),
        }
    }

    /// A protocol event.
    pub fn event(&mut self, e: &Event) {
        match e {
            Event::Proposed { block, batches, .. } => {
                self.proposals.increment(1);
                self.proposal_batches.record(*batches as f64);
                self.first_seen.see(*block, Instant::now());
            }
            Event::Voted { block, .. } => {
                self.votes.increment(1);
                self.first_seen.see(*block, Instant::now());
            }
            Event::CertificateFormed { .. } => self.certificates.increment(1),
            Event::TimeoutSent { .. } => self.timeouts_sent.increment(1),
            Event::TimeoutCertFormed { .. } => self.timeout_certificates.increment(1),
            Event::ViewChanged { to, by_timeout, .. } => {
                if *by_timeout {
                    self.view_changes_by_timeout.increment(1);
                } else {
                    self.view_changes_by_certificate.increment(1);
                }
                self.view.set(*to as f64);
            }
            Event::Ignored { kind, reason } => {
                // Rare: registered on use.
                metrics::counter!("olympus_ignored_total", "kind" => *kind, "reason" => *reason)
                    .increment(1);
            }
            Event::Buffered { .. } => self.buffered.increment(1),
            Event::ConflictingCommit { .. } => self.conflicting_commits.increment(1),
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// A block at `height` is committed, logged and about to be executed: its
    /// `batches` (inline or fetched by digest).
    pub fn committed(&mut self, digest: &Digest, height: u64, batches: &[&Batch]) {
        let now = Instant::now();
        self.commits.increment(1);
        self.committed_batches.increment(batches.len() as u64);
        self.committed_height.set(height as f64);
        let txs: usize = batches.iter().map(|b| b.txs.len()).sum();
        self.block_txs.record(txs as f64);
        if let Some(last) = self.last_commit.replace(now) {
            self.commit_interval_us.record(us(now - last));
        }
        if let Some(seen) = self.first_seen.take(digest) {
            self.commit_latency_us.record(us(now - seen));
        }
    }

    /// `txs` committed transactions were executed (new to the ledger).
    pub fn executed(&self, txs: u64) {
        self.committed_txs.increment(txs);
    }

    /// A frame arrived from a peer (`peer`) or a client.
    pub fn frame_in(&self, peer: bool) {
        if peer {
            self.peer_frames.increment(1);
        } else {
            self.client_frames.increment(1);
        }
    }

    pub fn rejected(&self, why: Reject) {
        match why {
            Reject::Decode => &self.rejected_decode,
            Reject::Signature => &self.rejected_signature,
            Reject::ClientDecode => &self.rejected_client_decode,
            Reject::ClientSubmit => &self.rejected_client_submit,
        }
        .increment(1);
    }

    /// One peer message's signatures were checked in `took`.
    pub fn verified(&self, took: Duration) {
        self.verify_us.record(us(took));
    }

    /// A batch check ([`Committee::prime`](olympus_crypto::Committee::prime)) took `took`
    /// and verified `primed` signatures (`Some(0)`: all were verified already, so nothing
    /// was checked; `None`: the batch did not hold).
    pub fn primed(&self, primed: Option<usize>, took: Duration) {
        match primed {
            // Everything was verified already (a forwarded copy): no batch was checked.
            Some(0) => {}
            Some(n) => {
                self.batch_verify_us.record(us(took));
                self.signatures_batched.increment(n as u64);
            }
            None => {
                self.batch_verify_us.record(us(took));
                self.signature_batches_failed.increment(1);
            }
        }
    }

    /// The leader half took a batch of `txs` transactions.
    pub fn batch_taken(&self, txs: usize) {
        self.batches_taken.increment(1);
        self.batch_txs.record(txs as f64);
    }

    pub fn busy(&self, txs: usize) {
        self.busy_txs.increment(txs as u64);
    }

    pub fn persisted(&self, took: Duration) {
        self.persist_us.record(us(took));
    }

    pub fn appended(&self, took: Duration) {
        self.chain_append_us.record(us(took));
    }

    /// The main loop ran `busy` since it last waited, and is about to wait.
    pub fn ran(&self, busy: Duration) {
        self.loop_busy_us.record(us(busy));
        if busy > STALL {
            self.loop_stalls.increment(1);
        }
    }

    /// A loop turn handled `frames` frames.
    pub fn handled(&self, frames: usize) {
        self.frames_per_turn.record(frames as f64);
    }

    /// Samples the queue gauges (every turn) and the transport's counters (every
    /// [`NET_SAMPLE`]).
    pub fn sample(&mut self, inbox: &Inbox, net: &NetHandle, n: usize) {
        let depth = inbox.len();
        self.inbox_depth.set(depth as f64);
        self.inbox_depth_sampled.record(depth as f64);
        let me = net.me();
        let (mut total, mut max) = (0, 0);
        for i in 0..n {
            let id = NodeId(i as u16);
            if id != me {
                let q = net.queue_len(id);
                total += q;
                max = max.max(q);
            }
        }
        self.peer_queue_depth.set(total as f64);
        self.peer_queue_max.set(max as f64);
        let now = Instant::now();
        if self.net.last.is_none_or(|t| now - t >= NET_SAMPLE) {
            self.net.last = Some(now);
            self.net.copy();
        }
    }

    /// Copies the transport's counters now (at shutdown).
    pub fn sample_net(&mut self) {
        self.net.copy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Registry;

    #[test]
    fn events_and_commits_land_in_their_metrics() {
        let r = Registry::new();
        metrics::with_local_recorder(&r, || {
            let mut m = Meters::new(Arc::new(NetStats::default()));
            let b = Digest([7; 32]);
            m.event(&Event::Voted { view: 3, block: b });
            m.event(&Event::ViewChanged {
                from: 3,
                to: 4,
                by_timeout: true,
            });
            m.event(&Event::Ignored {
                kind: "vote",
                reason: "stale",
            });
            let batch = |nonces: std::ops::Range<u64>| {
                Arc::new(Batch::new(
                    nonces
                        .map(|nonce| olympus_types::Transaction {
                            client: 1,
                            nonce,
                            payload: vec![],
                        })
                        .collect(),
                ))
            };
            m.committed(&b, 9, &[&batch(0..4), &batch(4..10)]);
            m.executed(10);
            m.committed(&Digest([8; 32]), 10, &[&batch(10..15)]);
            m.executed(4);
            m.rejected(Reject::Signature);
            m.ran(Duration::from_millis(20));
            m.ran(Duration::from_millis(2));
            m.handled(3);
            m.net
                .stats
                .frames_in
                .store(42, std::sync::atomic::Ordering::Relaxed);
            m.sample_net();
        });
        let s = r.snapshot();
        assert_eq!(s.counter("olympus_votes_total"), Some(1));
        assert_eq!(s.counter("olympus_commits_total"), Some(2));
        assert_eq!(s.counter("olympus_committed_txs_total"), Some(14));
        assert_eq!(s.counter("olympus_committed_batches_total"), Some(3));
        assert_eq!(s.counter("olympus_loop_stalls_total"), Some(1));
        assert_eq!(s.counter("olympus_net_frames_in_total"), Some(42));
        let c = |id: &str| {
            s.counters
                .iter()
                .find(|(i, _)| i.to_string() == id)
                .map(|(_, v)| *v)
        };
        assert_eq!(c("olympus_view_changes_total{cause=\"timeout\"}"), Some(1));
        assert_eq!(
            c("olympus_frames_rejected_total{reason=\"signature\"}"),
            Some(1)
        );
        assert_eq!(
            c("olympus_ignored_total{kind=\"vote\",reason=\"stale\"}"),
            Some(1)
        );
        assert_eq!(
            s.histogram("olympus_commit_latency_us").map(|h| h.count),
            Some(1)
        );
        assert_eq!(
            s.histogram("olympus_commit_interval_us").map(|h| h.count),
            Some(1)
        );
        assert_eq!(s.histogram("olympus_block_txs").map(|h| h.max), Some(10));
        assert!(
            s.help
                .iter()
                .any(|(n, h)| n == "olympus_verify_us" && h.contains("signatures")),
            "described: {:?}",
            s.help
        );
        let view = s.gauges.iter().find(|(i, _)| i.name == "olympus_view");
        assert_eq!(view.map(|(_, v)| *v), Some(4.0));
    }

    #[test]
    fn first_seen_stays_bounded() {
        let mut f = FirstSeen::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_BLOCKS as u32 + 10) {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            f.see(Digest(d), now);
        }
        assert_eq!(f.at.len(), MAX_TRACKED_BLOCKS);
        assert!(
            f.take(&Digest([0; 32])).is_none(),
            "the oldest was forgotten"
        );
    }
}
