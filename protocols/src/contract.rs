//! The contract between a protocol and whatever drives it.
//!
//! A protocol is a type implementing [`Protocol`]. It provides a message type, a
//! persistent safety state, a stateless [`Protocol::verify`] that checks every signature
//! in a received message (so a driver can spread verification over cores, and so the
//! state machines only ever see [`Verified`] messages), and two state machines:
//!
//! - the **leader half** pulls batches ([`Half::on_batch`]), builds proposals, collects
//!   votes into certificates and drives its views;
//! - the **voter half** validates proposals, holds the safety rules and persists the
//!   state that makes a vote safe, votes, and commits.
//!
//! The halves of one replica talk only by messages: a message's [`Message::dest`] says
//! which half of the receiving node consumes it, and a replica sending to itself is just
//! a `Send` whose `to` is its own id. A driver delivers those locally.
//!
//! ## Ordering rules a driver must honour
//!
//! Actions are carried out in the order they were pushed. In particular every
//! [`Action::Persist`] must be durable before any later `Send`/`Broadcast` of the same
//! batch of actions leaves the node: that is what makes "persist, then vote" safe across
//! crashes. A restarted replica is created with the last persisted safety state and
//! nothing else.
//!
//! ## The committed mark is persisted lazily
//!
//! What makes a vote safe (views, votes cast, locks) is persisted before anything leaves.
//! The committed block, which only tells a restarted replica where to deliver on from,
//! is persisted by the synchronous protocols only when the committed height crosses a
//! multiple of [`COMMIT_PERSIST_EVERY`] ([`persist_commit_mark`]), or along with any
//! other persist. A restarted replica may therefore deliver again up to that many blocks
//! it had delivered: the engine's chain log keeps one copy of a block and its ledger
//! executes a transaction once, and the simulator accepts such repeats from a replica
//! that restarted. That takes an `fdatasync` off the path of every commit.

use olympus_crypto::{Committee, Keypair};
use olympus_types::{Block, Digest, NodeId, QuorumCert, View};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// A signature a message carries, for the driver to check in a batch: a member's
/// signature on a statement, or a certificate; see [`Protocol::claims`].
pub use olympus_crypto::Claim;

/// See "The committed mark is persisted lazily" in the module docs.
pub const COMMIT_PERSIST_EVERY: u64 = 32;

/// Whether a commit that took the committed height from `before` to `after` persists the
/// committed mark now: when it crosses a multiple of [`COMMIT_PERSIST_EVERY`].
pub fn persist_commit_mark(before: u64, after: u64) -> bool {
    before / COMMIT_PERSIST_EVERY != after / COMMIT_PERSIST_EVERY
}

/// A per-peer budget for requests whose answer is much larger than the request (a
/// restarted replica's sync request: views, certificates, the last blocks or votes).
/// Each peer may make `burst` requests at once and one more every `interval` after
/// that (the generic cell rate algorithm: a "theoretical arrival time" per peer, no
/// counters to refill). A replica that restarts asks once, and again every few Δ at
/// most, so an honest peer stays well inside it; a peer asking in a loop gets no more
/// answers than that, whatever it sends.
#[derive(Clone, Debug)]
pub struct RequestBudget {
    burst: u32,
    interval: Duration,
    /// Per peer: when its budget is full again (its theoretical arrival time).
    due: std::collections::HashMap<NodeId, Duration>,
}

impl RequestBudget {
    pub fn new(burst: u32, interval: Duration) -> Self {
        RequestBudget {
            burst: burst.max(1),
            interval,
            due: std::collections::HashMap::new(),
        }
    }

    /// Whether `peer` may have an answer now; if so, the answer is charged.
    pub fn allow(&mut self, peer: NodeId, now: Duration) -> bool {
        let due = self
            .due
            .get(&peer)
            .copied()
            .unwrap_or(Duration::ZERO)
            .max(now);
        if due > now + self.interval * (self.burst - 1) {
            return false;
        }
        self.due.insert(peer, due + self.interval);
        true
    }
}

/// Sync requests a peer may make at once ([`RequestBudget`]): a restarted replica asks
/// when it starts, again when it retries (every 2Δ at most) and, in Artemis, when it
/// asks how far a view went — a few at once at most.
pub const SYNC_REQUEST_BURST: u32 = 4;

/// The synchronous protocols' budget for answering sync requests: a burst of
/// [`SYNC_REQUEST_BURST`], then one per Δ.
pub(crate) fn sync_budget(delta: Duration) -> RequestBudget {
    RequestBudget::new(SYNC_REQUEST_BURST, delta)
}

/// Whether to answer `from`'s sync request now (charged to its budget); a refused one
/// is reported as ignored.
pub(crate) fn answer_sync<M, S>(
    budget: &mut RequestBudget,
    from: NodeId,
    cx: &mut Context<M, S>,
) -> bool {
    let ok = budget.allow(from, cx.now);
    if !ok {
        cx.event(Event::Ignored {
            kind: "sync_request",
            reason: "over the peer's request budget",
        });
    }
    ok
}

/// Which half of the receiving node consumes a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    Leader,
    Voter,
    Both,
}

/// A vote as the checker sees it: `signer` signed a vote for `block` in `view`.
/// Honest replicas never sign two different votes for one view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignedVote {
    pub signer: NodeId,
    pub view: View,
    pub block: Digest,
}

/// A protocol message.
pub trait Message: Clone + Debug + Send + 'static {
    /// Which half of the receiver consumes it.
    fn dest(&self) -> Dest;
    /// A short static name (for metrics and simulator statistics).
    fn kind(&self) -> &'static str;
    /// The vote this message carries as its sender's own signed statement, if any.
    /// The simulator uses it to check that no honest replica votes twice in a view.
    fn signed_vote(&self) -> Option<SignedVote> {
        None
    }
}

/// A message whose signatures and certificates have all been checked by
/// [`Protocol::verify`]. State machines accept only these.
#[derive(Clone, Debug)]
pub struct Verified<M>(M);

impl<M> Verified<M> {
    /// Wraps a message without checking it. Only for messages a node produced itself
    /// (a voter half's vote to its own leader half) or in tests.
    pub fn assume_verified(msg: M) -> Self {
        Verified(msg)
    }
    pub fn inner(&self) -> &M {
        &self.0
    }
    pub fn into_inner(self) -> M {
        self.0
    }
}

impl<M> std::ops::Deref for Verified<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0
    }
}

/// Why a received message was refused before reaching a state machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum VerifyError {
    #[error("bad signature from {0}")]
    BadSignature(NodeId),
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    #[error("message is malformed: {0}")]
    Malformed(String),
    #[error("sender {sender} is not the signer {signer} the message claims")]
    WrongSender { sender: NodeId, signer: NodeId },
}

/// A timer, named by the protocol. Setting a timer with an id that is already armed
/// re-arms it; timers of the two halves are separate namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// A batch the mempool offers to the leader half.
#[derive(Clone, Debug)]
pub struct BatchRef {
    pub digest: Digest,
    pub batch: Arc<olympus_types::Batch>,
}

impl BatchRef {
    pub fn new(batch: olympus_types::Batch) -> Self {
        BatchRef {
            digest: batch.digest(),
            batch: Arc::new(batch),
        }
    }
}

/// A committed block, emitted in commit order (heights strictly increasing by one).
#[derive(Clone, Debug)]
pub struct Commit {
    pub digest: Digest,
    pub block: Arc<Block>,
    /// The certificate that proved the commit, where the protocol has one.
    pub proof: Option<QuorumCert>,
}

/// Things observers may want to know; they change nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Proposed {
        view: View,
        height: u64,
        block: Digest,
        batches: usize,
    },
    Voted {
        view: View,
        block: Digest,
    },
    CertificateFormed {
        view: View,
        block: Digest,
    },
    TimeoutSent {
        view: View,
    },
    TimeoutCertFormed {
        view: View,
    },
    ViewChanged {
        from: View,
        to: View,
        by_timeout: bool,
    },
    /// A message was valid but not usable (stale, from a non-leader, ...).
    Ignored {
        kind: &'static str,
        reason: &'static str,
    },
    /// A block arrived whose parent is unknown; it waits while the parent is fetched.
    Buffered {
        block: Digest,
    },
    /// The protocol's commit rule fired for a block that does not extend what this
    /// replica already committed. It is not committed; an honest replica seeing this
    /// means more than f replicas are Byzantine (or a bug): the simulator counts it as a
    /// safety violation.
    ConflictingCommit {
        committed: Digest,
        target: Digest,
    },
}

/// What a state machine asks its driver to do.
#[derive(Clone, Debug)]
pub enum Action<M, S> {
    /// Deliver `msg` to node `to` (possibly this node).
    Send {
        to: NodeId,
        msg: M,
    },
    /// Deliver `msg` to every node, this one included.
    Broadcast {
        msg: M,
    },
    /// Fire [`Half::on_timer`] with `id` after `after` (replacing a timer of that id).
    SetTimer {
        id: TimerId,
        after: Duration,
    },
    CancelTimer {
        id: TimerId,
    },
    /// Make this safety state durable before any later send leaves.
    Persist(S),
    /// A block is committed.
    Commit(Commit),
    /// Fetch the batch with `digest` from node `from`.
    FetchBatch {
        digest: Digest,
        from: NodeId,
    },
    Event(Event),
}

/// The argument every input carries: the current time and the action queue.
pub struct Context<M, S> {
    /// Time since the node started, as told by the driver.
    pub now: Duration,
    actions: Vec<Action<M, S>>,
}

impl<M, S> Context<M, S> {
    pub fn new(now: Duration) -> Self {
        Context {
            now,
            actions: Vec::new(),
        }
    }
    pub fn push(&mut self, a: Action<M, S>) {
        self.actions.push(a);
    }
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.actions.push(Action::Send { to, msg });
    }
    pub fn broadcast(&mut self, msg: M) {
        self.actions.push(Action::Broadcast { msg });
    }
    /// Sends `msg` to each of the `n` nodes except those in `skip`: for forwarding,
    /// where this node and the message's signer hold it already.
    pub fn send_all_but(&mut self, n: usize, skip: &[NodeId], msg: M)
    where
        M: Clone,
    {
        for to in (0..n).map(|i| NodeId(i as u16)) {
            if !skip.contains(&to) {
                self.send(to, msg.clone());
            }
        }
    }
    pub fn set_timer(&mut self, id: TimerId, after: Duration) {
        self.actions.push(Action::SetTimer { id, after });
    }
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.actions.push(Action::CancelTimer { id });
    }
    pub fn persist(&mut self, s: S) {
        self.actions.push(Action::Persist(s));
    }
    pub fn commit(&mut self, c: Commit) {
        self.actions.push(Action::Commit(c));
    }
    pub fn event(&mut self, e: Event) {
        self.actions.push(Action::Event(e));
    }
    pub fn actions(&self) -> &[Action<M, S>] {
        &self.actions
    }
    /// Takes the queued actions, leaving the context empty.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Action<M, S>> {
        self.actions.drain(..)
    }
}

/// Parameters every protocol understands; protocol-specific knobs have defaults.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub id: NodeId,
    pub n: usize,
    /// Base view timeout of the pacemaker (partially synchronous protocols).
    pub view_timeout: Duration,
    /// Upper bound for the backed-off view timeout.
    pub max_view_timeout: Duration,
    /// Δ, the assumed delay bound (synchronous protocols).
    pub delta: Duration,
    /// Most batches a leader puts in one block.
    pub max_batches_per_block: usize,
    /// Most transactions a leader puts in one block (it always takes at least one
    /// batch, so a single larger batch still goes out).
    pub max_block_txs: usize,
    /// Proposals carry batch digests instead of the batches (the driver disseminates
    /// the batches itself, before proposing, and fetches missing ones).
    pub payload_by_digest: bool,
    /// Most batches the leader half holds waiting to be proposed; more are refused.
    pub max_pending_batches: usize,
}

impl ReplicaConfig {
    pub fn new(id: NodeId, n: usize) -> Self {
        ReplicaConfig {
            id,
            n,
            view_timeout: Duration::from_millis(1000),
            max_view_timeout: Duration::from_secs(30),
            delta: Duration::from_millis(50),
            max_batches_per_block: 16,
            max_block_txs: usize::MAX,
            payload_by_digest: false,
            max_pending_batches: 4096,
        }
    }
    /// Byzantine replicas tolerated with n = 3f+1.
    pub fn f_partial(&self) -> usize {
        (self.n - 1) / 3
    }
    /// Quorum 2f+1 of the partially synchronous protocols (n − f in general).
    pub fn quorum_partial(&self) -> usize {
        self.n - self.f_partial()
    }
    /// Byzantine replicas tolerated with n = 2f+1.
    pub fn f_sync(&self) -> usize {
        (self.n - 1) / 2
    }
}

/// Takes the batches for the next block from the front of `pending`: at most
/// `cfg.max_batches_per_block` of them, and no more transactions than
/// `cfg.max_block_txs` — except that a first batch is always taken, so a leader never
/// proposes an empty block while batches wait.
pub fn take_for_block(
    pending: &mut std::collections::VecDeque<BatchRef>,
    cfg: &ReplicaConfig,
) -> Vec<BatchRef> {
    let max_batches = cfg
        .max_batches_per_block
        .min(olympus_types::limits::MAX_BATCHES_PER_BLOCK);
    let mut out: Vec<BatchRef> = Vec::new();
    let mut txs = 0usize;
    while let Some(b) = pending.front() {
        let k = b.batch.txs.len();
        if out.len() >= max_batches || (!out.is_empty() && txs + k > cfg.max_block_txs) {
            break;
        }
        txs += k;
        out.extend(pending.pop_front());
    }
    out
}

/// The payload of the next block, from the front of `pending` (see [`take_for_block`]):
/// the batches inline, or their digests when `cfg.payload_by_digest`. Also returns how
/// many batches it holds.
pub fn payload_for_block(
    pending: &mut std::collections::VecDeque<BatchRef>,
    cfg: &ReplicaConfig,
) -> (olympus_types::Payload, usize) {
    let taken = take_for_block(pending, cfg);
    let k = taken.len();
    let payload = if cfg.payload_by_digest {
        olympus_types::Payload::Digests(taken.iter().map(|b| b.digest).collect())
    } else {
        olympus_types::Payload::Inline(taken.into_iter().map(|b| (*b.batch).clone()).collect())
    };
    (payload, k)
}

/// One half of a replica.
pub trait Half<M, S> {
    /// Called once, before any other input.
    fn on_start(&mut self, cx: &mut Context<M, S>);
    /// A verified message from `from` (possibly this node's other half).
    fn on_message(&mut self, from: NodeId, msg: Verified<M>, cx: &mut Context<M, S>);
    /// A message from another node whose signatures are *not* checked yet; it is checked
    /// next and, if it holds, delivered by [`Half::on_message`]. Called only on the
    /// leader half and only for a protocol with [`Protocol::PEEKS`]. Only the sender is
    /// certain (the link is authenticated): a half may act on it only in ways that stay
    /// safe whatever the check finds — Apollo's next round leader builds on a block
    /// while its signature is being checked (see the `apollo` module).
    fn on_unverified(&mut self, _from: NodeId, _msg: &M, _cx: &mut Context<M, S>) {}
    /// A timer this half set has fired.
    fn on_timer(&mut self, id: TimerId, cx: &mut Context<M, S>);
    /// The mempool offers a batch. Returns false if the half refuses it (full).
    fn on_batch(&mut self, _batch: BatchRef, _cx: &mut Context<M, S>) -> bool {
        false
    }
}

/// A consensus protocol: its message and safety-state types, its stateless verifier,
/// and the constructor of its two halves.
pub trait Protocol: 'static {
    type Msg: Message;
    /// What the voter half persists before voting; restored after a crash.
    type Safety: Clone + Debug + Send + 'static;
    type Leader: Half<Self::Msg, Self::Safety>;
    type Voter: Half<Self::Msg, Self::Safety>;

    /// The protocol's command-line name.
    const NAME: &'static str;

    /// Whether the protocol assumes synchrony (every message between honest replicas
    /// arrives within `ReplicaConfig::delta`; n = 2f+1). The simulator then injects only
    /// the faults synchrony allows.
    const SYNCHRONOUS: bool = false;

    /// Whether a runtime should let what an input sent leave before this node handles
    /// its messages to itself (a leader's own vote on its proposal: a persist and a
    /// signature). Scheduling only: either way every message is handled, in order, and
    /// before the next input. Opt Sync keeps them together: its leader's CC and next
    /// proposal then reach the others in one write, and they check both in one batch.
    /// Apollo too: its only messages to itself are the voter's notes to the leader half.
    const DEFER_LOCAL: bool = true;

    /// Whether the leader half wants messages before their signatures are checked
    /// ([`Half::on_unverified`]). Drivers then hand each received message to it first.
    const PEEKS: bool = false;

    /// Checks every signature and certificate in `msg`, claimed to come from `from`.
    /// Stateless: it depends only on the committee.
    fn verify(
        msg: Self::Msg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<Self::Msg>, VerifyError>;

    /// Signatures [`Protocol::verify`] will check in `msg`, pushed onto `out` (a member's
    /// signature on a statement, or a certificate). A driver that holds several received
    /// messages checks all of theirs in one batch first ([`Committee::prime`]); each
    /// `verify` then finds them in the committee's cache. A hint only: naming none (the
    /// default) or a wrong one costs time, never safety, since `verify` still checks
    /// everything itself.
    fn claims(_msg: &Self::Msg, _committee: &Committee, _out: &mut Vec<Claim>) {}

    /// Creates the two halves of a replica; `restored` is the last persisted safety
    /// state after a restart, `None` on first start.
    fn create(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Self::Safety>,
    ) -> (Self::Leader, Self::Voter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_budget_allows_a_burst_then_one_per_interval() {
        let ms = Duration::from_millis;
        let mut b = RequestBudget::new(3, ms(10));
        let (p, q) = (NodeId(1), NodeId(2));
        // A burst of three, then nothing until the interval has passed.
        assert!(b.allow(p, ms(0)));
        assert!(b.allow(p, ms(0)));
        assert!(b.allow(p, ms(1)));
        assert!(!b.allow(p, ms(2)));
        assert!(!b.allow(p, ms(9)));
        // Another peer has its own budget.
        assert!(b.allow(q, ms(9)));
        assert!(b.allow(p, ms(10)));
        assert!(!b.allow(p, ms(11)));
        // A peer that keeps asking gets one answer per interval, refused ones cost it
        // nothing more.
        let answered = (12..112).filter(|t| b.allow(p, ms(*t))).count();
        assert_eq!(answered, 10);
        // After a quiet spell the whole burst is back.
        assert!((0..3).all(|_| b.allow(p, ms(1000))));
        assert!(!b.allow(p, ms(1000)));
    }

    #[test]
    fn the_committed_mark_is_persisted_when_the_height_crosses_a_multiple() {
        let k = COMMIT_PERSIST_EVERY;
        assert!(!persist_commit_mark(0, 1));
        assert!(!persist_commit_mark(1, k - 1));
        assert!(persist_commit_mark(k - 1, k));
        // A chain committed at once that jumps over a multiple persists too.
        assert!(persist_commit_mark(k - 2, k + 3));
        assert!(!persist_commit_mark(k, 2 * k - 1));
        assert!(persist_commit_mark(k + 1, 5 * k));
    }
}
