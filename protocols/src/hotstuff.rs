//! Chained HotStuff (Yin et al., PODC 2019): three-chain commit, with a pacemaker of
//! timeouts and timeout certificates.
//!
//! ## Rules
//!
//! - **Leaders.** `leader(v) = v mod n` ([`RoundRobin`]). The leader of view `v` proposes a
//!   block `B` with `B.parent = B.justify.block`, `B.height = B.justify.height + 1`,
//!   where `B.justify` is the highest QC it knows. It proposes in `v` on a QC for `v − 1`
//!   (formed from the votes sent to it) or on a timeout certificate (TC) for `v − 1`,
//!   which the proposal then carries.
//! - **Voting (the voter half).** A replica in view `v` votes for the first valid
//!   proposal `B` of `leader(v)` with `B.view = v > last_voted` if `B` extends the locked
//!   block, or `B.justify.view > locked.view` (the liveness escape). It persists
//!   `last_voted` (and the lock) before the vote leaves, and sends the vote to
//!   `leader(v + 1)`. A QC is 2f+1 votes on `(view, height, block)` aggregated into one
//!   BLS signature.
//! - **Locking and commit.** On every QC for a block `b''` with `b' = b''.justify.block`
//!   and `b = b'.justify.block`: lock on `b''.justify` if its view is higher than the
//!   lock's; if `b'' → b' → b` are direct parent links *in consecutive views*, commit `b`
//!   and all its uncommitted ancestors in height order. (In the paper a leader pads a
//!   failed view with dummy blocks so that heights equal views and "direct parent" means
//!   "consecutive view"; here every block's parent is its justify block, so the rule is
//!   stated on views directly, as in LibraBFT's three-chain.)
//! - **Views.** A replica enters `v + 1` on a QC or a TC for `v`, or on a valid proposal
//!   for `v + 1` justified by one. On its view timer it broadcasts a signed timeout for
//!   its view carrying its highest QC and stops voting in that view (`last_voted := v`,
//!   persisted); 2f+1 timeouts for `v` form a TC. Receiving f+1 timeouts for a view at
//!   least its own makes a replica time out too (so views resynchronise after a
//!   partition). The view timeout doubles after each view that ended by timeout and
//!   resets on progress ([`Pacemaker`]).
//! - **Catch-up.** A proposal whose parent is unknown is buffered (bounded) and the
//!   parent is fetched from the sender, which answers with up to [`MAX_FETCH_BLOCKS`]
//!   blocks ending at it. Fetched blocks are self-certifying through the hash chain; the
//!   certificates inside them are still verified.
//!
//! ## Why it is safe
//!
//! Suppose `b` is committed through the chain `b ← b' ← b''` in consecutive views `v`,
//! `v+1`, `v+2`, with a QC on `b''`. The 2f+1 voters for `b''` include f+1 honest
//! replicas, each of which locked on `QC(b')` (view `v+1`) before voting. Take the
//! lowest-view QC, in a view above `v+2`, on a block that does not extend `b`: its 2f+1
//! voters intersect those f+1 honest replicas in an honest one, whose lock extends `b`;
//! it voted only because the block's justify QC had a view above `v+1` — a QC on a block
//! that does not extend `b` in a view in `(v+1, ...)` lower than our lowest one, or one
//! of views `v+1`/`v+2`, which are on `b` (one vote per view and quorum intersection).
//! Contradiction; so every certified block above `v+2` extends `b`, and so does every
//! block committed later. This is the paper's argument. Persisting `last_voted` and the lock before every vote keeps it true
//! across crashes. The simulator checks it under crashes, partitions and Twins.
//!
//! ## Leader and voter halves
//!
//! The [`Leader`] half only sees votes and timeouts: it builds QCs and TCs and proposes.
//! The [`Voter`] half sees proposals, timeouts and block fetches: it keeps the block tree,
//! the safety rules, the view and the signing of votes and timeouts. They never share
//! state; a voter sends its vote to its own leader half like to any other.

use crate::blocktree::{BlockTree, CommitError};
use crate::contract::{
    BatchRef, Commit, Context, Dest, Event, Half, Message, Protocol, ReplicaConfig, SignedVote,
    TimerId, Verified, VerifyError,
};
use crate::election::{LeaderElection, RoundRobin};
use crate::pacemaker::Pacemaker;
use crate::votes::Collector;
use olympus_crypto::{Committee, Keypair};
use olympus_types::{
    AggregateSignature, Block, Digest, Height, NodeId, Payload, QuorumCert, Signature, Statement,
    View,
};
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

/// Most blocks sent in answer to one fetch.
pub const MAX_FETCH_BLOCKS: usize = 64;
/// Most proposals buffered while their ancestry is fetched.
pub const MAX_BUFFERED_PROPOSALS: usize = 64;
/// Most views for which votes or timeouts are being collected at once.
pub const MAX_COLLECTING_VIEWS: usize = 64;

const VIEW_TIMER: TimerId = TimerId(1);

/// A timeout certificate: 2f+1 signed timeouts for `view`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct TimeoutCert {
    pub view: View,
    pub sig: AggregateSignature,
}

/// A leader's signed proposal.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Proposal {
    pub block: Block,
    /// The TC for `block.view − 1` when the leader entered its view by timeout.
    pub tc: Option<TimeoutCert>,
    /// The proposer's signature on the block digest.
    pub signature: Signature,
}

/// A vote for `block` at `(view, height)`, sent to `leader(view + 1)`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Vote {
    pub view: View,
    pub height: Height,
    pub block: Digest,
    pub voter: NodeId,
    pub signature: Signature,
}

/// A signed timeout for `view`, carrying the sender's highest QC.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Timeout {
    pub view: View,
    pub high_qc: QuorumCert,
    pub sender: NodeId,
    pub signature: Signature,
}

/// Chained HotStuff's messages.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum HsMsg {
    Propose(Box<Proposal>),
    Vote(Vote),
    Timeout(Timeout),
    /// Asks for the block with this digest and its ancestors.
    Fetch(Digest),
    /// Blocks answering a fetch, oldest first.
    Blocks(Vec<Block>),
}

impl Message for HsMsg {
    fn dest(&self) -> Dest {
        match self {
            HsMsg::Propose(_) | HsMsg::Fetch(_) | HsMsg::Blocks(_) => Dest::Voter,
            HsMsg::Vote(_) => Dest::Leader,
            HsMsg::Timeout(_) => Dest::Both,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            HsMsg::Propose(_) => "propose",
            HsMsg::Vote(_) => "vote",
            HsMsg::Timeout(_) => "timeout",
            HsMsg::Fetch(_) => "fetch",
            HsMsg::Blocks(_) => "blocks",
        }
    }
    fn signed_vote(&self) -> Option<SignedVote> {
        match self {
            HsMsg::Vote(v) => Some(SignedVote {
                signer: v.voter,
                view: v.view,
                block: v.block,
            }),
            _ => None,
        }
    }
}

/// What the voter persists before it votes or times out.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Safety {
    /// Highest view this replica voted in or timed out of.
    pub last_voted: View,
    /// The QC of the locked block.
    pub locked: QuorumCert,
    /// The last committed block (digest, height, view): where a restart resumes.
    pub committed: (Digest, Height, View),
}

/// The statement a vote signs.
pub fn vote_statement(view: View, height: Height, block: &Digest) -> Digest {
    Statement::new("hotstuff/vote")
        .u64(view)
        .u64(height)
        .digest(block)
        .finish()
}

/// The statement a timeout signs.
pub fn timeout_statement(view: View) -> Digest {
    Statement::new("hotstuff/timeout").u64(view).finish()
}

/// The statement a proposal signs.
pub fn proposal_statement(block: &Digest) -> Digest {
    Statement::new("hotstuff/proposal").digest(block).finish()
}

fn quorum(n: usize) -> usize {
    n - (n - 1) / 3
}

/// Verifies a QC against the committee (the genesis QC is accepted by rule).
pub fn verify_qc(qc: &QuorumCert, committee: &Committee) -> Result<(), VerifyError> {
    if qc.is_genesis() {
        return Ok(());
    }
    if qc.view == 0 || qc.height == 0 {
        return Err(VerifyError::BadCertificate(
            "non-genesis QC at view or height 0".into(),
        ));
    }
    committee
        .verify_aggregate(
            &vote_statement(qc.view, qc.height, &qc.block),
            &qc.sig,
            quorum(committee.size()),
        )
        .map_err(|e| VerifyError::BadCertificate(format!("QC for view {}: {e}", qc.view)))
}

fn verify_tc(tc: &TimeoutCert, committee: &Committee) -> Result<(), VerifyError> {
    committee
        .verify_aggregate(
            &timeout_statement(tc.view),
            &tc.sig,
            quorum(committee.size()),
        )
        .map_err(|e| VerifyError::BadCertificate(format!("TC for view {}: {e}", tc.view)))
}

fn verify_block(block: &Block, committee: &Committee) -> Result<(), VerifyError> {
    block
        .validate()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if block.proposer.index() >= committee.size() {
        return Err(VerifyError::Malformed(format!(
            "unknown proposer {}",
            block.proposer
        )));
    }
    if block.parent != block.justify.block || block.height != block.justify.height + 1 {
        return Err(VerifyError::Malformed(
            "block does not extend its justify QC".into(),
        ));
    }
    if block.view <= block.justify.view {
        return Err(VerifyError::Malformed(
            "block view not above its justify view".into(),
        ));
    }
    verify_qc(&block.justify, committee)
}

/// The chained HotStuff protocol.
pub struct HotStuff;

impl Protocol for HotStuff {
    type Msg = HsMsg;
    type Safety = Safety;
    type Leader = Leader;
    type Voter = Voter;
    const NAME: &'static str = "hotstuff";

    fn verify(
        msg: HsMsg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<HsMsg>, VerifyError> {
        match &msg {
            HsMsg::Propose(p) => {
                verify_block(&p.block, committee)?;
                let d = p.block.digest();
                committee
                    .verify(p.block.proposer, &proposal_statement(&d), &p.signature)
                    .map_err(|_| VerifyError::BadSignature(p.block.proposer))?;
                if let Some(tc) = &p.tc {
                    if tc.view + 1 != p.block.view {
                        return Err(VerifyError::Malformed(
                            "TC is not for the previous view".into(),
                        ));
                    }
                    verify_tc(tc, committee)?;
                }
            }
            HsMsg::Vote(v) => {
                if v.voter != from {
                    return Err(VerifyError::WrongSender {
                        sender: from,
                        signer: v.voter,
                    });
                }
                committee
                    .verify(
                        v.voter,
                        &vote_statement(v.view, v.height, &v.block),
                        &v.signature,
                    )
                    .map_err(|_| VerifyError::BadSignature(v.voter))?;
            }
            HsMsg::Timeout(t) => {
                if t.high_qc.view >= t.view {
                    return Err(VerifyError::Malformed(
                        "timeout's QC not below its view".into(),
                    ));
                }
                committee
                    .verify(t.sender, &timeout_statement(t.view), &t.signature)
                    .map_err(|_| VerifyError::BadSignature(t.sender))?;
                verify_qc(&t.high_qc, committee)?;
            }
            HsMsg::Fetch(_) => {}
            HsMsg::Blocks(blocks) => {
                if blocks.len() > MAX_FETCH_BLOCKS {
                    return Err(VerifyError::Malformed("too many blocks".into()));
                }
                for b in blocks {
                    verify_block(b, committee)?;
                }
            }
        }
        Ok(Verified::assume_verified(msg))
    }

    fn create(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> (Leader, Voter) {
        (
            Leader::new(cfg, key.clone(), committee.clone()),
            Voter::new(cfg, key, restored),
        )
    }
}

type Cx = Context<HsMsg, Safety>;

// ---------------------------------------------------------------------------------------
// Leader half
// ---------------------------------------------------------------------------------------

/// The leader half: turns votes into QCs and timeouts into TCs, and proposes.
pub struct Leader {
    id: NodeId,
    key: Arc<Keypair>,
    committee: Arc<Committee>,
    election: RoundRobin,
    high_qc: QuorumCert,
    last_proposed: View,
    votes: Collector<(View, Height, Digest), Signature>,
    timeouts: Collector<View, (Signature, QuorumCert)>,
    pending: VecDeque<BatchRef>,
    max_pending: usize,
    max_batches: usize,
}

impl Leader {
    pub fn new(cfg: &ReplicaConfig, key: Arc<Keypair>, committee: Arc<Committee>) -> Self {
        let q = quorum(cfg.n);
        Leader {
            id: cfg.id,
            key,
            committee,
            election: RoundRobin { n: cfg.n },
            high_qc: QuorumCert::genesis(),
            last_proposed: 0,
            votes: Collector::new(q, MAX_COLLECTING_VIEWS),
            timeouts: Collector::new(q, MAX_COLLECTING_VIEWS),
            pending: VecDeque::new(),
            max_pending: cfg.max_pending_batches,
            max_batches: cfg
                .max_batches_per_block
                .min(olympus_types::limits::MAX_BATCHES_PER_BLOCK),
        }
    }

    /// Batches waiting to be proposed.
    pub fn pending_batches(&self) -> usize {
        self.pending.len()
    }

    fn raise_high_qc(&mut self, qc: &QuorumCert) {
        if qc.view > self.high_qc.view {
            self.high_qc = *qc;
        }
    }

    fn propose(&mut self, view: View, tc: Option<TimeoutCert>, cx: &mut Cx) {
        if view <= self.last_proposed || self.election.leader(view) != self.id {
            return;
        }
        let take = self.pending.len().min(self.max_batches);
        let batches: Vec<_> = self
            .pending
            .drain(..take)
            .map(|b| (*b.batch).clone())
            .collect();
        let justify = self.high_qc;
        let block = Block {
            parent: justify.block,
            view,
            height: justify.height + 1,
            proposer: self.id,
            justify,
            payload: Payload::Inline(batches),
        };
        let digest = block.digest();
        let signature = self.key.sign(&proposal_statement(&digest));
        self.last_proposed = view;
        self.votes
            .prune_below(&(view.saturating_sub(1), 0, Digest::ZERO));
        self.timeouts.prune_below(&view.saturating_sub(1));
        cx.event(Event::Proposed {
            view,
            height: block.height,
            block: digest,
            batches: take,
        });
        cx.broadcast(HsMsg::Propose(Box::new(Proposal {
            block,
            tc,
            signature,
        })));
    }
}

impl Half<HsMsg, Safety> for Leader {
    fn on_start(&mut self, cx: &mut Cx) {
        self.propose(1, None, cx);
    }

    fn on_message(&mut self, _from: NodeId, msg: Verified<HsMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            HsMsg::Vote(v) => {
                if self.election.leader(v.view + 1) != self.id || v.view < self.last_proposed {
                    return;
                }
                let key = (v.view, v.height, v.block);
                if let Some(q) = self.votes.add(key, v.voter, v.signature) {
                    let sig = self.committee.aggregate_unchecked(&q);
                    let qc = QuorumCert {
                        view: v.view,
                        height: v.height,
                        block: v.block,
                        sig,
                    };
                    cx.event(Event::CertificateFormed {
                        view: v.view,
                        block: v.block,
                    });
                    self.raise_high_qc(&qc);
                    self.propose(v.view + 1, None, cx);
                }
            }
            HsMsg::Timeout(t) => {
                self.raise_high_qc(&t.high_qc);
                if self.election.leader(t.view + 1) != self.id || t.view < self.last_proposed {
                    return;
                }
                if let Some(q) = self
                    .timeouts
                    .add(t.view, t.sender, (t.signature, t.high_qc))
                {
                    let sigs: Vec<_> = q.iter().map(|(n, (s, _))| (*n, *s)).collect();
                    let tc = TimeoutCert {
                        view: t.view,
                        sig: self.committee.aggregate_unchecked(&sigs),
                    };
                    self.propose(t.view + 1, Some(tc), cx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, _id: TimerId, _cx: &mut Cx) {}

    fn on_batch(&mut self, batch: BatchRef, _cx: &mut Cx) -> bool {
        if self.pending.len() >= self.max_pending {
            return false;
        }
        self.pending.push_back(batch);
        true
    }
}

// ---------------------------------------------------------------------------------------
// Voter half
// ---------------------------------------------------------------------------------------

/// The voter half: safety rules, block tree, view synchronisation, votes and commits.
pub struct Voter {
    id: NodeId,
    n: usize,
    key: Arc<Keypair>,
    election: RoundRobin,
    view: View,
    safety: Safety,
    high_qc: QuorumCert,
    tree: BlockTree,
    /// Proposals waiting for an ancestor, by the digest they wait for.
    buffered: BTreeMap<View, (NodeId, Proposal)>,
    requested: HashSet<Digest>,
    timeouts: Collector<View, ()>,
    pacemaker: Pacemaker,
}

impl Voter {
    pub fn new(cfg: &ReplicaConfig, key: Arc<Keypair>, restored: Option<Safety>) -> Self {
        let (tree, safety) = match restored {
            Some(s) => (
                BlockTree::from_root(s.committed.0, s.committed.1, s.committed.2),
                s,
            ),
            None => {
                let t = BlockTree::from_genesis();
                let s = Safety {
                    last_voted: 0,
                    locked: QuorumCert::genesis(),
                    committed: t.committed(),
                };
                (t, s)
            }
        };
        Voter {
            id: cfg.id,
            n: cfg.n,
            key,
            election: RoundRobin { n: cfg.n },
            view: safety.last_voted.max(1),
            high_qc: safety.locked,
            safety,
            tree,
            buffered: BTreeMap::new(),
            requested: HashSet::new(),
            timeouts: Collector::new(quorum(cfg.n), MAX_COLLECTING_VIEWS),
            pacemaker: Pacemaker::new(cfg.view_timeout, cfg.max_view_timeout),
        }
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    fn f(&self) -> usize {
        (self.n - 1) / 3
    }

    fn enter_view(&mut self, view: View, by_timeout: bool, cx: &mut Cx) {
        if view <= self.view {
            return;
        }
        if by_timeout {
            self.pacemaker.on_timeout();
        } else {
            self.pacemaker.on_progress();
        }
        cx.event(Event::ViewChanged {
            from: self.view,
            to: view,
            by_timeout,
        });
        self.view = view;
        self.timeouts.prune_below(&view);
        cx.set_timer(VIEW_TIMER, self.pacemaker.timeout());
    }

    /// Processes a QC: high QC, view, lock and the three-chain commit rule.
    fn on_qc(&mut self, qc: &QuorumCert, cx: &mut Cx) {
        if qc.view > self.high_qc.view {
            self.high_qc = *qc;
        }
        if qc.view >= self.view {
            self.enter_view(qc.view + 1, false, cx);
        }
        let Some(b2) = self.tree.get(&qc.block).cloned() else {
            return;
        };
        let mut dirty = false;
        if b2.justify.view > self.safety.locked.view {
            self.safety.locked = b2.justify;
            dirty = true;
        }
        let Some(b1) = self.tree.get(&b2.justify.block).cloned() else {
            if dirty {
                cx.persist(self.safety);
            }
            return;
        };
        let consecutive = b2.parent == b2.justify.block
            && b1.parent == b1.justify.block
            && b2.view == b1.view + 1
            && b1.view == b1.justify.view + 1;
        if consecutive {
            let target = b1.justify.block;
            let (_, committed_h, _) = self.tree.committed();
            if b1.justify.height > committed_h {
                match self.tree.commit_to(&target) {
                    Ok(chain) => {
                        for node in chain {
                            cx.commit(Commit {
                                digest: node.digest,
                                block: node.block,
                                proof: Some(b1.justify),
                            });
                        }
                        self.safety.committed = self.tree.committed();
                        dirty = true;
                    }
                    Err(CommitError::Unknown(_)) => {}
                    Err(CommitError::Conflict { target, committed }) => {
                        cx.event(Event::ConflictingCommit { committed, target });
                    }
                }
            }
        }
        if dirty {
            cx.persist(self.safety);
        }
    }

    fn on_proposal(&mut self, from: NodeId, p: Proposal, cx: &mut Cx) {
        let digest = p.block.digest();
        let view = p.block.view;
        if self.election.leader(view) != p.block.proposer {
            cx.event(Event::Ignored {
                kind: "propose",
                reason: "proposer is not the view's leader",
            });
            return;
        }
        if !self.tree.knows(&p.block.parent) {
            let (_, committed_h, _) = self.tree.committed();
            if p.block.height <= committed_h {
                return;
            }
            cx.event(Event::Buffered { block: digest });
            self.request(p.block.parent, from, cx);
            self.buffered.insert(view, (from, p));
            while self.buffered.len() > MAX_BUFFERED_PROPOSALS {
                self.buffered.pop_first();
            }
            return;
        }
        let block = Arc::new(p.block);
        if !self.tree.insert(digest, block.clone()) {
            return;
        }
        if let Some(tc) = p.tc {
            if tc.view >= self.view {
                self.enter_view(tc.view + 1, true, cx);
            }
        }
        self.on_qc(&block.justify, cx);
        self.try_vote(digest, &block, cx);
    }

    fn try_vote(&mut self, digest: Digest, block: &Block, cx: &mut Cx) {
        let safe = self.tree.extends(
            &digest,
            &self.safety.locked.block,
            self.safety.locked.height,
        ) || block.justify.view > self.safety.locked.view;
        if block.view != self.view || block.view <= self.safety.last_voted || !safe {
            return;
        }
        self.safety.last_voted = block.view;
        cx.persist(self.safety);
        let signature = self
            .key
            .sign(&vote_statement(block.view, block.height, &digest));
        let vote = Vote {
            view: block.view,
            height: block.height,
            block: digest,
            voter: self.id,
            signature,
        };
        cx.event(Event::Voted {
            view: block.view,
            block: digest,
        });
        cx.send(self.election.leader(block.view + 1), HsMsg::Vote(vote));
    }

    fn request(&mut self, digest: Digest, from: NodeId, cx: &mut Cx) {
        if self.requested.insert(digest) {
            cx.send(from, HsMsg::Fetch(digest));
        }
    }

    fn on_blocks(&mut self, from: NodeId, blocks: Vec<Block>, cx: &mut Cx) {
        let Some(first) = blocks.first() else { return };
        if !self.tree.knows(&first.parent) {
            let (_, committed_h, _) = self.tree.committed();
            if first.height > committed_h + 1 {
                self.requested.remove(&first.parent);
                self.request(first.parent, from, cx);
            }
        }
        for b in blocks {
            let d = b.digest();
            self.requested.remove(&d);
            let b = Arc::new(b);
            if self.tree.insert(d, b.clone()) {
                self.on_qc(&b.justify, cx);
            }
        }
        // Retry buffered proposals whose parents are now known, oldest first.
        let ready: Vec<View> = self
            .buffered
            .iter()
            .filter(|(_, (_, p))| self.tree.knows(&p.block.parent))
            .map(|(v, _)| *v)
            .collect();
        for v in ready {
            if let Some((from, p)) = self.buffered.remove(&v) {
                self.on_proposal(from, p, cx);
            }
        }
    }

    fn send_timeout(&mut self, view: View, cx: &mut Cx) {
        if view > self.safety.last_voted {
            self.safety.last_voted = view;
            cx.persist(self.safety);
        }
        let signature = self.key.sign(&timeout_statement(view));
        cx.event(Event::TimeoutSent { view });
        cx.broadcast(HsMsg::Timeout(Timeout {
            view,
            high_qc: self.high_qc,
            sender: self.id,
            signature,
        }));
    }

    fn on_timeout_msg(&mut self, t: Timeout, cx: &mut Cx) {
        self.on_qc(&t.high_qc, cx);
        if t.view < self.view {
            return;
        }
        let before = self.timeouts.count(&t.view);
        // The signatures were checked by `verify`; the voter only needs the count (the
        // next leader aggregates its own TC and ships it in its proposal).
        if self.timeouts.add(t.view, t.sender, ()).is_some() {
            cx.event(Event::TimeoutCertFormed { view: t.view });
            self.enter_view(t.view + 1, true, cx);
            return;
        }
        // f+1 timeouts for a view at least ours: an honest replica gave up on it; join, so
        // that views resynchronise after a partition.
        let after = self.timeouts.count(&t.view);
        if before <= self.f() && after > self.f() && t.view > self.safety.last_voted {
            self.enter_view(t.view, true, cx);
            self.send_timeout(t.view, cx);
        }
    }
}

impl Half<HsMsg, Safety> for Voter {
    fn on_start(&mut self, cx: &mut Cx) {
        cx.set_timer(VIEW_TIMER, self.pacemaker.timeout());
    }

    fn on_message(&mut self, from: NodeId, msg: Verified<HsMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            HsMsg::Propose(p) => self.on_proposal(from, *p, cx),
            HsMsg::Timeout(t) => self.on_timeout_msg(t, cx),
            HsMsg::Fetch(d) => {
                let chain = self.tree.chain_ending_at(&d, MAX_FETCH_BLOCKS);
                if !chain.is_empty() {
                    let blocks = chain.iter().map(|b| (**b).clone()).collect();
                    cx.send(from, HsMsg::Blocks(blocks));
                }
            }
            HsMsg::Blocks(blocks) => self.on_blocks(from, blocks, cx),
            HsMsg::Vote(_) => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        if id != VIEW_TIMER {
            return;
        }
        // Give up on this view (again, if the first timeout was lost). The backoff grows
        // when the view actually ends by a TC (`enter_view`).
        self.send_timeout(self.view, cx);
        self.requested.clear();
        cx.set_timer(VIEW_TIMER, self.pacemaker.timeout());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Action;
    use olympus_crypto::Scheme;
    use olympus_types::{Batch, Transaction};
    use std::collections::VecDeque;
    use std::time::Duration;

    struct Node {
        leader: Leader,
        voter: Voter,
        commits: Vec<Digest>,
        txs: Vec<(u64, u64)>,
        persisted: Option<Safety>,
    }

    /// A perfect network: FIFO delivery, every message verified, timers never fire.
    struct Net {
        nodes: Vec<Node>,
        committee: Arc<Committee>,
        queue: VecDeque<(NodeId, NodeId, HsMsg)>,
        votes: std::collections::HashMap<(NodeId, View), Digest>,
    }

    impl Net {
        fn new(n: usize, scheme: Scheme) -> Net {
            let keys: Vec<_> = (0..n)
                .map(|i| Arc::new(Keypair::generate(scheme, &[7; 32], NodeId(i as u16))))
                .collect();
            let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
            let committee = Arc::new(Committee::new(scheme, &pks).unwrap());
            let nodes = keys
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    let cfg = ReplicaConfig::new(NodeId(i as u16), n);
                    let (leader, voter) = HotStuff::create(&cfg, k, committee.clone(), None);
                    Node {
                        leader,
                        voter,
                        commits: vec![],
                        txs: vec![],
                        persisted: None,
                    }
                })
                .collect();
            Net {
                nodes,
                committee,
                queue: VecDeque::new(),
                votes: Default::default(),
            }
        }

        fn apply(&mut self, me: NodeId, cx: &mut Cx) {
            let n = self.nodes.len();
            for a in cx.drain() {
                match a {
                    Action::Send { to, msg } => self.queue.push_back((me, to, msg)),
                    Action::Broadcast { msg } => {
                        for i in 0..n {
                            self.queue.push_back((me, NodeId(i as u16), msg.clone()));
                        }
                    }
                    Action::Persist(s) => self.nodes[me.index()].persisted = Some(s),
                    Action::Commit(c) => {
                        let node = &mut self.nodes[me.index()];
                        assert_eq!(
                            c.block.height as usize,
                            node.commits.len() + 1,
                            "heights in order"
                        );
                        node.commits.push(c.digest);
                        node.txs
                            .extend(c.block.inline_txs().map(|t| (t.client, t.nonce)));
                    }
                    _ => {}
                }
            }
        }

        fn start(&mut self) {
            for i in 0..self.nodes.len() {
                let mut cx = Cx::new(Duration::ZERO);
                self.nodes[i].voter.on_start(&mut cx);
                self.nodes[i].leader.on_start(&mut cx);
                self.apply(NodeId(i as u16), &mut cx);
            }
        }

        fn step(&mut self, silent: &[NodeId]) -> bool {
            let Some((from, to, msg)) = self.queue.pop_front() else {
                return false;
            };
            if silent.contains(&to) || silent.contains(&from) {
                return true;
            }
            if let Some(v) = msg.signed_vote() {
                let prev = self.votes.insert((v.signer, v.view), v.block);
                assert!(prev.is_none() || prev == Some(v.block), "double vote");
                assert!(
                    self.nodes[v.signer.index()]
                        .persisted
                        .map_or(0, |s| s.last_voted)
                        >= v.view,
                    "vote left before its view was persisted"
                );
            }
            let dest = msg.dest();
            let verified =
                HotStuff::verify(msg, from, &self.committee).expect("honest messages verify");
            let mut cx = Cx::new(Duration::ZERO);
            let node = &mut self.nodes[to.index()];
            if matches!(dest, Dest::Leader | Dest::Both) {
                node.leader.on_message(from, verified.clone(), &mut cx);
            }
            if matches!(dest, Dest::Voter | Dest::Both) {
                node.voter.on_message(from, verified, &mut cx);
            }
            self.apply(to, &mut cx);
            true
        }
    }

    fn offer(net: &mut Net, node: usize, client: u64, nonces: std::ops::Range<u64>) {
        let txs = nonces
            .map(|nonce| Transaction {
                client,
                nonce,
                payload: vec![1; 4],
            })
            .collect();
        let mut cx = Cx::new(Duration::ZERO);
        assert!(net.nodes[node]
            .leader
            .on_batch(BatchRef::new(Batch::new(txs)), &mut cx));
    }

    #[test]
    fn four_replicas_commit_the_same_chain_with_every_transaction() {
        let mut net = Net::new(4, Scheme::Insecure);
        for i in 0..4 {
            offer(&mut net, i, i as u64, 0..10);
        }
        net.start();
        for _ in 0..20_000 {
            if !net.step(&[]) {
                break;
            }
        }
        let c0 = net.nodes[0].commits.clone();
        assert!(c0.len() > 20, "progress: {} commits", c0.len());
        for node in &net.nodes {
            let k = node.commits.len().min(c0.len());
            assert_eq!(node.commits[..k], c0[..k]);
        }
        let mut txs = net.nodes[0].txs.clone();
        txs.sort();
        assert_eq!(txs.len(), 40, "each transaction committed exactly once");
        txs.dedup();
        assert_eq!(txs.len(), 40);
    }

    #[test]
    fn real_bls_certificates_work_too() {
        let mut net = Net::new(4, Scheme::Bls);
        net.start();
        for _ in 0..600 {
            net.step(&[]);
        }
        assert!(net.nodes[1].commits.len() >= 3);
    }

    #[test]
    fn a_silent_replica_does_not_stop_the_others_until_it_leads() {
        // With node 3 silent, view 2's votes go to leader(3) = 3 and are lost: without
        // timers progress stops in view 2, and what was committed agrees.
        let mut net = Net::new(4, Scheme::Insecure);
        net.start();
        for _ in 0..10_000 {
            if !net.step(&[NodeId(3)]) {
                break;
            }
        }
        assert_eq!(net.nodes[0].commits, net.nodes[1].commits);
        assert_eq!(net.nodes[0].voter.view(), 2);
        assert_eq!(net.nodes[0].voter.safety().last_voted, 2);
    }

    #[test]
    fn verify_rejects_forgeries() {
        let net = Net::new(4, Scheme::Bls);
        let k = Keypair::generate(Scheme::Bls, &[7; 32], NodeId(1));
        let d = Digest::of(b"x");
        let good = Vote {
            view: 3,
            height: 2,
            block: d,
            voter: NodeId(1),
            signature: k.sign(&vote_statement(3, 2, &d)),
        };
        assert!(HotStuff::verify(HsMsg::Vote(good), NodeId(1), &net.committee).is_ok());
        let wrong_sender = HotStuff::verify(HsMsg::Vote(good), NodeId(2), &net.committee);
        assert!(matches!(wrong_sender, Err(VerifyError::WrongSender { .. })));
        let mut bad = good;
        bad.view = 4;
        assert!(HotStuff::verify(HsMsg::Vote(bad), NodeId(1), &net.committee).is_err());
        // A QC with too few signers.
        let sig = net
            .committee
            .aggregate_unchecked(&[(NodeId(1), good.signature)]);
        let qc = QuorumCert {
            view: 3,
            height: 2,
            block: d,
            sig,
        };
        assert!(verify_qc(&qc, &net.committee).is_err());
        let t = Timeout {
            view: 5,
            high_qc: qc,
            sender: NodeId(1),
            signature: k.sign(&timeout_statement(5)),
        };
        assert!(HotStuff::verify(HsMsg::Timeout(t), NodeId(1), &net.committee).is_err());
    }

    #[test]
    fn messages_round_trip_through_the_frame_codec() {
        let k = Keypair::generate(Scheme::Bls, &[1; 32], NodeId(0));
        let block = Block {
            parent: Block::genesis_digest(),
            view: 1,
            height: 1,
            proposer: NodeId(1),
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 1,
                nonce: 2,
                payload: vec![3],
            }])]),
        };
        let msg = HsMsg::Propose(Box::new(Proposal {
            block,
            tc: None,
            signature: k.sign(&Digest::ZERO),
        }));
        let bytes = olympus_types::frame::encode(&msg).unwrap();
        assert_eq!(olympus_types::frame::decode::<HsMsg>(&bytes).unwrap(), msg);
    }
}
