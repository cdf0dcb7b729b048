//! Apollo (Bhat et al., FC 2023): rotating round leaders that stream signed blocks,
//! "extending a block is a vote for it", and a commit f rounds deep — completed here with
//! blame, a quit-view, a view change and crash recovery, which the reference artifact
//! lacks (its blame path panics).
//!
//! n = 2f+1, at most f Byzantine, every message between honest replicas arrives within
//! Δ = [`ReplicaConfig::delta`].
//!
//! ## Rules
//!
//! **Views, roots and positions.** Views v = 1, 2, …; the view-change leader of v is
//! `L_v = v mod n`. Every view has a *root*: view 1's is genesis; view v > 1's is a block
//! `C` that `L_v` re-proposes and that f+1 replicas certify with a *root certificate*
//! `QC_v(C)`. A *steady block* of view v at *position* p ≥ 1 is a block with
//! `block.view = v` whose `justify` is the view's root certificate (genesis's for view 1)
//! and whose height is `root height + p`: the position is `height − justify.height`, a
//! function of the block alone. Its *round leader* is `leader(v, p) = (v + p) mod n`, so
//! any f+1 consecutive positions of a view have distinct round leaders, and a replica
//! owns different positions in consecutive views. The *rank* of a steady block is
//! `(v, p)`; a root certified in view v has rank `(v, 0)`; genesis `(0, 0)`.
//!
//! **Valid blocks.** A replica keeps a block tree of *valid* blocks only: a steady block
//! of view v at position p, signed by `leader(v, p)`, is valid when its parent is valid
//! and either p = 1, the parent is the certified root and the (verified) justify is a
//! root certificate of v, or p ≥ 2 and the parent is a valid steady block of v at p − 1
//! with the same justify. Every block that becomes valid at a replica is forwarded by it
//! to all but the block's signer, which holds it already (the first time only).
//!
//! 1. *Propose.* When a replica has delivered the block at position p − 1 of view v (the
//!    root for p = 1) and is `leader(v, p)`, its leader half signs and broadcasts a
//!    steady block extending it: at once if batches wait, otherwise after Δ/2.
//!
//!    *The next round leader does not wait for the check* (designed here, for the
//!    critical path). Checking a block's signature is most of the time between two
//!    positions. When a replica's voter has delivered position p − 1 and the replica
//!    leads p + 1, the voter tells its leader half to expect position p on the delivered
//!    block (`Ahead`); the leader half builds and signs p + 1 on the first block for p
//!    that arrives straight from `leader(v, p)` (the link says who sent it), extends the
//!    expected parent under the view's root and is well formed — before its signature
//!    is checked, while batches wait. The voter checks and delivers p as ever and never
//!    delivers anything resting on a block that fails. Signing p + 1 early is one
//!    signature for the position, as always; if p turns out bad (or another block is
//!    delivered at p), p + 1 never becomes valid anywhere, so position p + 1 stays empty
//!    and the view ends by blame — what a Byzantine round leader of p could cause by
//!    sending nothing. The argument below needs nothing more: it is about valid blocks.
//! 2. *Deliver.* A replica delivers, at position p of its current view, the first
//!    proposal for `(v, p)` it received, once it is valid and extends the block it
//!    delivered at p − 1 (the root's certificate for p = 1). A second, different proposal
//!    for `(v, p)` is an equivocation: blame with the two as proof.
//! 3. *Commit (Apollo).* On delivering position p ≥ f+1 of view v, if it has not quit v
//!    (nor is recovering), commit the block at position p − f and its ancestors.
//!
//! **Blame and quit view.**
//! 4. Blame (signed `blame(v)` to all) if the first position of the view is not
//!    delivered 8Δ after entering it, or a next position 4Δ after the previous one, or
//!    on an equivocation (steady, or two roots).
//! 5. f+1 blames form a blame certificate: forward it, quit v (no root vote, delivery
//!    commit or root commit in v any more), persist `quit_view = v`.
//!
//! **View change (Sync HotStuff's new-view step).**
//! 6. 2Δ after quitting, enter v+1: lock on the highest-ranked valid block or certified
//!    root known (never lowering the lock), persist, send the lock (with its proof) to
//!    `L_{v+1}` as a status.
//! 7. `L_{v+1}` waits 2Δ and re-proposes its own highest-ranked block `C` (statuses
//!    reached it within the wait), signed, with the root certificate proving a `(w, 0)`
//!    rank when that is C's rank.
//! 8. A replica votes (once per view, persisted) for the first re-proposal of its current
//!    view iff C is valid in its tree (fetched from the sender if missing) and ranks at
//!    least as high as its lock; it forwards the re-proposal and broadcasts the vote.
//!    f+1 votes form `QC_{v+1}(C)`, the root certificate.
//! 9. *Root commit (Sync HotStuff's 2Δ rule, applied to the root).* On first holding the
//!    root certificate of its current view (with C) while it has not quit the view, a
//!    replica forwards it, and 2Δ later commits C and its ancestors unless it has seen a
//!    second root of the view by then (a different re-proposal of `L_v` or certificate).
//!    Quitting the view in between does not cancel this commit (a steady equivocation
//!    often ends a view within 2Δ of its root).
//!
//! ## Why it is safe
//!
//! *Within a view, no timing is needed for rule 3.* Let honest i commit `B_q` (view v,
//! position q) on delivering positions q..q+f. Their round leaders are distinct, so one,
//! at position j, is honest; it signs one steady block per `(v, position)`, `B_j`. Every
//! valid view-v chain that reaches position ≥ j has, at position j, a block signed by
//! `leader(v, j)`: `B_j`. So every valid view-v block of rank ≥ (v, q+f) extends `B_j`
//! and hence `B_q` (whatever root it claims: the root is an ancestor of `B_j`). Two
//! commits of one view thus lie on one chain.
//!
//! *Locks after a window commit.* i had not quit v at commit time t, so no honest replica
//! quit before t − Δ (i would have had the forwarded blame certificate): they lock at
//! ≥ t + Δ. i forwarded every block of its chain (and the root and its certificate) when
//! they became valid, ≤ t; so every honest replica holds `B_{q+f}` valid when it locks,
//! and locks at rank ≥ (v, q+f) — on a block extending `B_q` by the paragraph above, or
//! on a later-view object (next paragraph).
//!
//! *Locks after a root commit.* i forwarded `QC_v(C)` at s = t − 2Δ, not having quit v
//! then; so no honest replica quit v before s − Δ (i would have had the forwarded blame
//! certificate), and all lock at ≥ s + Δ, by which time they hold `QC_v(C)` (and C): they
//! lock at rank ≥ (v, 0). No second root of v is certified: a certificate needs an honest
//! vote; one cast before t − Δ was forwarded with its re-proposal and i would have seen
//! two roots by t; one cast later would follow the receipt of `QC_v(C)`, and an honest
//! replica votes only for the first root it learns of. So every valid view-v object
//! ranked ≥ (v, 0) extends C.
//!
//! *Induction over later views.* A root of view w > v is certified only with an honest
//! vote, cast for a C' that is valid at the voter and ranks at least as high as its lock,
//! which is at least the lock it took on leaving v (locks never go down). So C' is a
//! view-v object above the bound (extends the committed block) or a later-view object
//! (by induction on the view, extends it); every steady block of w extends its root.
//! Hence every later commit, by either rule, extends the committed block.
//!
//! *Crashes.* The vote-once-per-view flag, `quit_view`, the view and the lock are
//! persisted before anything leaves. A leader half never signs twice for one
//! `(view, position)`, and a restarted replica proposes, re-proposes or root-commits
//! nothing in the view it restarted in (it may have missed a second root while down;
//! its round-leader positions of that view time out and the view changes). If it had
//! committed inside that view, it delivers on from its persisted committed block (what
//! lies below can no longer enter its tree); that mark is persisted lazily (see the
//! `contract` module), so it may deliver again up to `COMMIT_PERSIST_EVERY` blocks it had
//! delivered before the crash, which the engine ignores. A restarted replica is passive for 2Δ (no vote, commit or
//! proposal): it broadcasts a sync request, and every replica answers with its view, its
//! entry and quit certificates, its lock (with proof), its root certificate and the last
//! blocks it delivered (missing ancestors are then fetched). What an honest replica had
//! when the request arrived is thus in its reply, and what it forwards later reaches the
//! restarted replica directly. (The simulator counts a restarted replica as faulty for a
//! grace period of 4Δ, covering the resynchronisation.) Each peer's sync requests are
//! answered within a budget ([`crate::RequestBudget`]: a burst of
//! [`crate::contract::SYNC_REQUEST_BURST`], then one per Δ), so a peer asking in a loop
//! cannot make a replica build large replies over and over.
//!
//! ## Paper and design
//!
//! Following the paper/reference: rotating round leaders so that any f+1 consecutive
//! rounds have distinct leaders, one signed block per round extending the last
//! delivered block, delivery of the first valid proposal whose parent is delivered
//! (fetching a missing parent from the sender), equivocation = two blocks by one author at
//! one height, and the commit of round r − f on processing round r.
//!
//! Designed here: views, roots and positions (round leaders rotate with the position in
//! the view, `(v + p) mod n`, and the position is derived from the block's justify, so
//! that within-view safety needs no unique root); forwarding every valid block to all —
//! a deliberate change from the reference's one-hop relay to `leader(r+1)`: it is what
//! lets every honest replica hold a committed window before it locks (it costs n²
//! messages per block, each verified once by `verify`; copies of a block already held are
//! then dropped by digest; the signer is left out, or it would spend a pairing check on
//! its own signature); blame on a per-position timeout or on equivocation; the
//! quit-view and the Sync HotStuff-style view change with statuses, 2Δ waits and
//! re-proposal of the highest-ranked lock; the 2Δ root commit (without it, a view whose
//! f Byzantine round leaders sit between every f+1 honest ones — e.g. n = 5, silent
//! replicas 1 and 3 — could never commit: rule 3 needs f+1 consecutive positions, but
//! rule 9 commits what the previous view delivered); crash recovery; the idle Δ/2 pause.
//!
//! *Liveness.* With an honest view-change leader, every honest status arrives within its
//! 2Δ wait and every honest replica holds the re-proposed block (it was forwarded when it
//! became valid), so all honest replicas vote and the root is certified and committed 2Δ
//! later; the steady state then runs until a faulty round leader's position times out.
//! Each view thus commits at least what the previous one delivered. The simulator checks
//! liveness after the fault window.
//!
//! Cost per block in the steady state: one signature by the round leader, one
//! verification per received copy, no aggregate certificate (a steady block at position
//! ≥ 2 carries its view's root certificate, which `verify` does not check again: the
//! state machine only accepts it equal to its parent's, checked at position 1), O(1) work
//! per block, commit-based pruning in the block tree.
//!
//! [`ReplicaConfig::delta`]: crate::ReplicaConfig::delta

use crate::blocktree::{BlockTree, CommitError};
use crate::contract::{
    payload_for_block, BatchRef, Commit, Context, Dest, Event, Half, Message, Protocol,
    ReplicaConfig, SignedVote, TimerId, Verified, VerifyError,
};
use crate::sync_common::{
    f_of, quorum, MAX_BUFFERED, MAX_COLLECTING, MAX_FETCH_BLOCKS, MAX_SYNC_ITEMS, MAX_VIEW_SLOTS,
};
/// A vote for a block as the root of a view, and f+1 blames for a view: the same
/// messages as Sync HotStuff's (over Apollo's own statements).
pub use crate::sync_common::{BlameCert, Vote};
use crate::votes::Collector;
use olympus_crypto::{Committee, Keypair};
use olympus_types::{Block, Digest, Height, NodeId, QuorumCert, Signature, Statement, View};
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Most messages of a later view kept until this replica enters it.
pub const MAX_EARLY: usize = 256;
/// Most root certificates (one per view) remembered for ranks.
pub const MAX_ROOT_QCS: usize = 16;
/// Most proposals buffered while their ancestry is fetched (a recovering replica
/// fetches chains backwards, 64 blocks at a time).
pub const MAX_PENDING_BLOCKS: usize = 512;
/// Commits between two sweeps of the block metadata.
const META_SWEEP_EVERY: u64 = 256;
/// Most positions beyond the delivered tip whose unchecked blocks a leader half keeps
/// for building on (see "The next round leader does not wait for the check").
pub const MAX_UNCHECKED: u64 = 16;

/// Whether two root certificates certify the same root (replicas may aggregate
/// different quorums for it).
fn same_root(a: &QuorumCert, b: &QuorumCert) -> bool {
    (a.view, a.height, a.block) == (b.view, b.height, b.block)
}

/// The position of a turn's parent (the tip it builds on) in its view.
fn spec_pos(t: &Turn) -> u64 {
    t.parent_height.saturating_sub(t.justify.height)
}

// Voter timers.
const BLAME_TIMER: TimerId = TimerId(1);
const QUIT_TIMER: TimerId = TimerId(2);
const RESYNC_TIMER: TimerId = TimerId(3);
const ROOT_TIMER: TimerId = TimerId(4);
const NEW_VIEW_TIMER: TimerId = TimerId(5);
// Leader timer.
const IDLE_TIMER: TimerId = TimerId(1);

/// A rank: view, then position (0 for a view's root, and for genesis).
pub type Rank = (View, u64);

/// The view-change leader of `view`.
pub fn view_leader(view: View, n: usize) -> NodeId {
    NodeId((view % n as u64) as u16)
}

/// The round leader of position `pos` of `view`.
pub fn round_leader(view: View, pos: u64, n: usize) -> NodeId {
    NodeId((view.wrapping_add(pos) % n as u64) as u16)
}

/// The position of a steady block in its view.
pub fn position(block: &Block) -> u64 {
    block.height.saturating_sub(block.justify.height)
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// A signed proposal: a steady block of `view` (signed by its round leader) or, with
/// `root`, `L_view`'s re-proposal of a block as the root of `view`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Proposal {
    pub view: View,
    pub block: Block,
    pub root: bool,
    /// Re-proposals only: a root certificate of an earlier view on `block` (its rank).
    pub rank_qc: Option<QuorumCert>,
    pub signature: Signature,
}

impl Proposal {
    /// Who must have signed it.
    pub fn signer(&self, n: usize) -> NodeId {
        if self.root {
            view_leader(self.view, n)
        } else {
            round_leader(self.view, position(&self.block), n)
        }
    }
}

/// Two proposals by one signer for one slot (a root of a view, or a position).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Equivocation {
    pub a: Proposal,
    pub b: Proposal,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Blame {
    pub view: View,
    pub sender: NodeId,
    pub signature: Signature,
    pub proof: Option<Box<Equivocation>>,
}

/// A replica's lock, for the view-change leader of `view`: the locked block's steady
/// proposal (none for genesis) and, for a root rank, its root certificate.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Status {
    pub view: View,
    pub lock: Option<Box<Proposal>>,
    pub lock_qc: Option<QuorumCert>,
}

/// A recovery reply (see the module docs).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SyncReply {
    pub view: View,
    pub entered_by: Option<BlameCert>,
    pub quit: Option<BlameCert>,
    pub lock: Option<Proposal>,
    pub lock_qc: Option<QuorumCert>,
    pub root_qc: Option<QuorumCert>,
    /// The last blocks the sender delivered in `view`, oldest first.
    pub tail: Vec<Proposal>,
    pub blame: Option<Blame>,
}

/// A voter's note to its own leader half: propose at the next position of `view` on
/// `parent`. Accepted only from the node itself.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Turn {
    pub view: View,
    pub parent: Digest,
    pub parent_height: Height,
    pub justify: QuorumCert,
}

/// Apollo's messages.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ApolloMsg {
    Propose(Box<Proposal>),
    Vote(Vote),
    RootCert(QuorumCert),
    Blame(Blame),
    BlameCert(BlameCert),
    Status(Status),
    Fetch(Digest),
    Blocks(Vec<Proposal>),
    SyncRequest,
    SyncReply(Box<SyncReply>),
    Turn(Turn),
    /// A voter's note to its own leader half: it leads the position after the next one,
    /// which extends `parent` (see "The next round leader does not wait for the check").
    /// Accepted only from the node itself.
    Ahead(Turn),
}

impl Message for ApolloMsg {
    fn dest(&self) -> Dest {
        match self {
            ApolloMsg::Turn(_) | ApolloMsg::Ahead(_) => Dest::Leader,
            _ => Dest::Voter,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            ApolloMsg::Propose(p) if p.root => "new_view",
            ApolloMsg::Propose(_) => "propose",
            ApolloMsg::Vote(_) => "vote",
            ApolloMsg::RootCert(_) => "root_cert",
            ApolloMsg::Blame(_) => "blame",
            ApolloMsg::BlameCert(_) => "blame_cert",
            ApolloMsg::Status(_) => "status",
            ApolloMsg::Fetch(_) => "fetch",
            ApolloMsg::Blocks(_) => "blocks",
            ApolloMsg::SyncRequest => "sync_request",
            ApolloMsg::SyncReply(_) => "sync_reply",
            ApolloMsg::Turn(_) => "turn",
            ApolloMsg::Ahead(_) => "ahead",
        }
    }
    fn signed_vote(&self) -> Option<SignedVote> {
        match self {
            ApolloMsg::Vote(v) => Some(SignedVote {
                signer: v.voter,
                view: v.view,
                block: v.block,
            }),
            _ => None,
        }
    }
}

/// What a valid block is, besides its body: its view, position and root certificate.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Meta {
    pub view: View,
    pub pos: u64,
    pub justify: QuorumCert,
}

/// What the voter persists.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Safety {
    pub view: View,
    /// Highest view quit.
    pub quit_view: View,
    /// Highest view in which this replica voted for a root.
    pub root_vote: View,
    /// The lock: rank and block; `lock_qc` proves a root rank.
    pub lock: (View, u64, Digest),
    pub lock_qc: Option<QuorumCert>,
    /// The last committed block (digest, height, view) and its metadata.
    pub committed: (Digest, Height, View),
    pub committed_meta: Meta,
}

// ---------------------------------------------------------------------------------------
// Statements and the stateless verifier
// ---------------------------------------------------------------------------------------

pub fn proposal_statement(view: View, root: bool, block: &Digest) -> Digest {
    Statement::new("apollo/proposal")
        .u64(view)
        .u64(root as u64)
        .digest(block)
        .finish()
}

pub fn vote_statement(view: View, height: Height, block: &Digest) -> Digest {
    Statement::new("apollo/root-vote")
        .u64(view)
        .u64(height)
        .digest(block)
        .finish()
}

pub fn blame_statement(view: View) -> Digest {
    Statement::new("apollo/blame").u64(view).finish()
}

fn malformed(s: &str) -> VerifyError {
    VerifyError::Malformed(s.to_string())
}

/// A root certificate: f+1 distinct root votes of one view (never genesis's).
pub fn verify_root_qc(qc: &QuorumCert, committee: &Committee) -> Result<(), VerifyError> {
    if qc.is_genesis() || qc.view == 0 {
        return Err(malformed("not a root certificate"));
    }
    committee
        .verify_aggregate(
            &vote_statement(qc.view, qc.height, &qc.block),
            &qc.sig,
            quorum(committee.size()),
        )
        .map_err(|e| VerifyError::BadCertificate(format!("root certificate: {e}")))
}

fn verify_proposal(p: &Proposal, committee: &Committee) -> Result<(), VerifyError> {
    let n = committee.size();
    let b = &p.block;
    if p.view == 0 {
        return Err(malformed("view 0"));
    }
    let digest = b.digest();
    if p.root {
        if let Some(qc) = &p.rank_qc {
            if qc.block != digest || qc.height != b.height || qc.view >= p.view {
                return Err(malformed("rank certificate is not on the block"));
            }
            verify_root_qc(qc, committee)?;
        }
        if !b.is_genesis() {
            b.validate().map_err(|e| malformed(&e.to_string()))?;
            if b.view >= p.view {
                return Err(malformed("re-proposal of a block not from an earlier view"));
            }
        }
    } else {
        if b.is_genesis() || p.rank_qc.is_some() || b.view != p.view {
            return Err(malformed("steady proposal must be a block of its view"));
        }
        b.validate().map_err(|e| malformed(&e.to_string()))?;
        if b.height <= b.justify.height || b.proposer.index() >= n {
            return Err(malformed("steady block below its root"));
        }
        if b.proposer != p.signer(n) {
            return Err(malformed("steady block not by its round leader"));
        }
        let j = &b.justify;
        if p.view == 1 {
            if !j.is_genesis() {
                return Err(malformed("view 1 is rooted at genesis"));
            }
        } else if j.view != p.view || j.is_genesis() {
            return Err(malformed("justify is not a root certificate of the view"));
        }
        if position(b) == 1 {
            if b.parent != j.block {
                return Err(malformed("first steady block does not extend the root"));
            }
            if p.view > 1 {
                verify_root_qc(j, committee)?;
            }
        }
    }
    let signer = p.signer(n);
    committee
        .verify(
            signer,
            &proposal_statement(p.view, p.root, &digest),
            &p.signature,
        )
        .map_err(|_| VerifyError::BadSignature(signer))
}

/// [`Protocol::claims`]: a proposal's signature (steady block or re-proposal).
pub fn claims(msg: &ApolloMsg, committee: &Committee, out: &mut Vec<crate::Claim>) {
    if let ApolloMsg::Propose(p) = msg {
        let statement = proposal_statement(p.view, p.root, &p.block.digest());
        out.push(crate::Claim::Single(
            p.signer(committee.size()),
            statement,
            p.signature,
        ));
    }
}

fn verify_blame(b: &Blame, committee: &Committee) -> Result<(), VerifyError> {
    committee
        .verify(b.sender, &blame_statement(b.view), &b.signature)
        .map_err(|_| VerifyError::BadSignature(b.sender))?;
    if let Some(e) = &b.proof {
        let same_slot =
            e.a.root == e.b.root && (e.a.root || position(&e.a.block) == position(&e.b.block));
        if e.a.view != b.view
            || e.b.view != b.view
            || !same_slot
            || e.a.block.digest() == e.b.block.digest()
        {
            return Err(malformed("equivocation proof is not one"));
        }
        verify_proposal(&e.a, committee)?;
        verify_proposal(&e.b, committee)?;
    }
    Ok(())
}

fn verify_blame_cert(c: &BlameCert, committee: &Committee) -> Result<(), VerifyError> {
    committee
        .verify_aggregate(&blame_statement(c.view), &c.sig, quorum(committee.size()))
        .map_err(|e| VerifyError::BadCertificate(format!("blame certificate: {e}")))
}

fn verify_steady(p: &Proposal, committee: &Committee) -> Result<(), VerifyError> {
    if p.root {
        return Err(malformed("expected a steady block"));
    }
    verify_proposal(p, committee)
}

fn verify_lock(
    lock: Option<&Proposal>,
    qc: Option<&QuorumCert>,
    committee: &Committee,
) -> Result<(), VerifyError> {
    if let Some(p) = lock {
        verify_steady(p, committee)?;
    }
    if let Some(qc) = qc {
        verify_root_qc(qc, committee)?;
    }
    Ok(())
}

/// Apollo's stateless verifier.
pub fn verify(
    msg: ApolloMsg,
    from: NodeId,
    committee: &Committee,
) -> Result<Verified<ApolloMsg>, VerifyError> {
    match &msg {
        ApolloMsg::Propose(p) => verify_proposal(p, committee)?,
        ApolloMsg::Vote(v) => {
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
        ApolloMsg::RootCert(qc) => verify_root_qc(qc, committee)?,
        ApolloMsg::Blame(b) => verify_blame(b, committee)?,
        ApolloMsg::BlameCert(c) => verify_blame_cert(c, committee)?,
        ApolloMsg::Status(s) => verify_lock(s.lock.as_deref(), s.lock_qc.as_ref(), committee)?,
        ApolloMsg::Fetch(_) | ApolloMsg::SyncRequest | ApolloMsg::Turn(_) | ApolloMsg::Ahead(_) => {
        }
        ApolloMsg::Blocks(ps) => {
            if ps.len() > MAX_FETCH_BLOCKS {
                return Err(malformed("too many blocks"));
            }
            for p in ps {
                verify_steady(p, committee)?;
            }
        }
        ApolloMsg::SyncReply(r) => {
            if r.tail.len() > MAX_SYNC_ITEMS {
                return Err(malformed("recovery reply too long"));
            }
            if let Some(c) = &r.entered_by {
                if c.view + 1 != r.view {
                    return Err(malformed("entry certificate not for the previous view"));
                }
                verify_blame_cert(c, committee)?;
            }
            if let Some(c) = &r.quit {
                if c.view != r.view {
                    return Err(malformed("quit certificate not for the view"));
                }
                verify_blame_cert(c, committee)?;
            }
            verify_lock(r.lock.as_ref(), r.lock_qc.as_ref(), committee)?;
            if let Some(qc) = &r.root_qc {
                verify_root_qc(qc, committee)?;
            }
            for p in &r.tail {
                verify_steady(p, committee)?;
            }
            if let Some(b) = &r.blame {
                if b.sender != from {
                    return Err(malformed("recovery reply carries another's blame"));
                }
                verify_blame(b, committee)?;
            }
        }
    }
    Ok(Verified::assume_verified(msg))
}

type Cx = Context<ApolloMsg, Safety>;

// ---------------------------------------------------------------------------------------
// Leader half
// ---------------------------------------------------------------------------------------

/// The leader half: holds the batches and, when its voter says it is the round leader of
/// the next position, builds, signs and broadcasts the block. It never signs two blocks
/// for one `(view, position)`.
pub struct Leader {
    id: NodeId,
    cfg: ReplicaConfig,
    key: Arc<Keypair>,
    pending: VecDeque<BatchRef>,
    turn: Option<Turn>,
    /// The chain this half builds on before the voter has checked it (see "The next
    /// round leader does not wait for the check"): its voter's delivered tip, extended
    /// by the unchecked blocks that came straight from their round leaders.
    spec: Option<Turn>,
    /// Unchecked blocks of `spec`'s view by position: (digest, parent, height).
    unchecked: BTreeMap<u64, (Digest, Digest, Height)>,
    signed: Rank,
}

impl Leader {
    pub fn new(cfg: &ReplicaConfig, key: Arc<Keypair>) -> Self {
        Leader {
            id: cfg.id,
            cfg: cfg.clone(),
            key,
            pending: VecDeque::new(),
            turn: None,
            spec: None,
            unchecked: BTreeMap::new(),
            signed: (0, 0),
        }
    }

    /// Takes the turn to propose at the position after `t.parent`: at once if batches
    /// wait, otherwise after Δ/2.
    fn take_turn(&mut self, t: Turn, cx: &mut Cx) {
        if (t.view, spec_pos(&t) + 1) <= self.signed {
            return;
        }
        self.turn = Some(t);
        if self.pending.is_empty() {
            // Idle: an empty block after Δ/2, so commits advance without spinning.
            cx.set_timer(IDLE_TIMER, self.cfg.delta / 2);
        } else {
            self.propose(cx);
        }
    }

    /// The voter delivered `t.parent` (or handed over the turn on it): the speculative
    /// chain restarts from there (a block it did not deliver is dropped with the rest).
    fn delivered(&mut self, t: Turn) {
        if self
            .spec
            .is_some_and(|s| s.view != t.view || !same_root(&s.justify, &t.justify))
        {
            self.unchecked.clear();
        }
        let pos = spec_pos(&t);
        self.unchecked = self.unchecked.split_off(&(pos + 1));
        self.spec = Some(t);
    }

    /// Follows the unchecked blocks that extend the chain, and builds on its end when
    /// this replica leads the next position and batches wait.
    fn speculate(&mut self, cx: &mut Cx) {
        let Some(mut s) = self.spec else { return };
        let delivered = spec_pos(&s);
        while let Some((d, parent, h)) = self.unchecked.get(&(spec_pos(&s) + 1)).copied() {
            if parent != s.parent {
                break;
            }
            s.parent = d;
            s.parent_height = h;
        }
        if round_leader(s.view, spec_pos(&s) + 1, self.cfg.n) == self.id
            && !self.pending.is_empty()
            && spec_pos(&s) > delivered
        {
            self.take_turn(s, cx);
        }
    }

    fn propose(&mut self, cx: &mut Cx) {
        let Some(t) = self.turn.take() else { return };
        cx.cancel_timer(IDLE_TIMER);
        let (payload, batches) = payload_for_block(&mut self.pending, &self.cfg);
        let block = Block {
            parent: t.parent,
            view: t.view,
            height: t.parent_height + 1,
            proposer: self.id,
            justify: t.justify,
            payload,
        };
        let pos = position(&block);
        if (t.view, pos) <= self.signed {
            return;
        }
        self.signed = (t.view, pos);
        let digest = block.digest();
        cx.event(Event::Proposed {
            view: t.view,
            height: block.height,
            block: digest,
            batches,
        });
        let signature = self.key.sign(&proposal_statement(t.view, false, &digest));
        cx.broadcast(ApolloMsg::Propose(Box::new(Proposal {
            view: t.view,
            block,
            root: false,
            rank_qc: None,
            signature,
        })));
    }
}

impl Half<ApolloMsg, Safety> for Leader {
    fn on_start(&mut self, _cx: &mut Cx) {}

    fn on_message(&mut self, from: NodeId, msg: Verified<ApolloMsg>, cx: &mut Cx) {
        if from != self.id {
            return;
        }
        match msg.into_inner() {
            ApolloMsg::Turn(t) => {
                self.delivered(t);
                self.take_turn(t, cx);
            }
            ApolloMsg::Ahead(t) => {
                self.delivered(t);
                self.speculate(cx);
            }
            _ => {}
        }
    }

    /// An unchecked steady block straight from its round leader, under the root of the
    /// view this half speculates in, beyond the delivered tip: kept (bounded), and built
    /// on if it extends the chain and this replica leads the position after it.
    fn on_unverified(&mut self, from: NodeId, msg: &ApolloMsg, cx: &mut Cx) {
        let (ApolloMsg::Propose(p), Some(s)) = (msg, self.spec) else {
            return;
        };
        let b = &p.block;
        let pos = position(b);
        if p.root
            || p.view != s.view
            || b.view != s.view
            || !same_root(&b.justify, &s.justify)
            || pos <= spec_pos(&s)
            || pos > spec_pos(&s) + MAX_UNCHECKED
            || from != b.proposer
            || from != round_leader(s.view, pos, self.cfg.n)
            || b.validate().is_err()
        {
            return;
        }
        self.unchecked
            .entry(pos)
            .or_insert((b.digest(), b.parent, b.height));
        self.speculate(cx);
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        if id == IDLE_TIMER {
            self.propose(cx);
        }
    }

    fn on_batch(&mut self, batch: BatchRef, cx: &mut Cx) -> bool {
        if self.pending.len() >= self.cfg.max_pending_batches {
            return false;
        }
        self.pending.push_back(batch);
        if self.turn.is_some() {
            self.propose(cx);
        }
        true
    }
}

// ---------------------------------------------------------------------------------------
// Voter half
// ---------------------------------------------------------------------------------------

/// The voter half: validity, delivery, both commit rules, blame, quit-view, the view
/// change (including the view-change leader's re-proposal) and recovery.
pub struct Voter {
    id: NodeId,
    n: usize,
    f: usize,
    delta: Duration,
    key: Arc<Keypair>,
    committee: Arc<Committee>,
    safety: Safety,
    tree: BlockTree,
    /// Metadata and signature of every valid block (the signature is absent for the
    /// committed root restored after a restart, and for genesis).
    meta: HashMap<Digest, (Meta, Option<Signature>)>,
    /// The highest-ranked valid block or certified root known.
    high: (View, u64, Digest),
    root_qcs: BTreeMap<View, QuorumCert>,
    buffered: BTreeMap<(Height, Digest), (NodeId, Proposal)>,
    requested: HashSet<Digest>,
    early: VecDeque<(NodeId, ApolloMsg)>,
    commits: u64,
    // The current view.
    quitting: bool,
    quit_cert: Option<BlameCert>,
    entered_by: Option<BlameCert>,
    root: Option<QuorumCert>,
    root_prop: Option<(NodeId, Proposal)>,
    root_equivocated: bool,
    /// The root to commit by rule 9, and when.
    root_commit: Option<(Digest, Duration)>,
    slots: BTreeMap<u64, (Digest, Proposal)>,
    /// The delivered chain of the view: position and digest of the tip, and the last
    /// f+1 delivered digests.
    tip: (u64, Digest, Height),
    window: VecDeque<Digest>,
    my_blame: Option<Blame>,
    view_start: Duration,
    // Votes and blames.
    votes: Collector<(View, Height, Digest), Signature>,
    blames: Collector<View, Signature>,
    // Recovery.
    passive: bool,
    restarted: bool,
    passive_through: View,
    now: Duration,
    /// Answers to sync requests, per peer (see [`crate::RequestBudget`]).
    sync_budget: crate::RequestBudget,
}

impl Voter {
    pub fn new(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> Self {
        let restarted = restored.is_some();
        let genesis_meta = Meta {
            view: 0,
            pos: 0,
            justify: QuorumCert::genesis(),
        };
        let (tree, safety) = match restored {
            Some(s) => (
                BlockTree::from_root(s.committed.0, s.committed.1, s.committed.2),
                s,
            ),
            None => {
                let t = BlockTree::from_genesis();
                let s = Safety {
                    view: 1,
                    quit_view: 0,
                    root_vote: 0,
                    lock: (0, 0, Block::genesis_digest()),
                    lock_qc: None,
                    committed: t.committed(),
                    committed_meta: genesis_meta,
                };
                (t, s)
            }
        };
        let mut meta = HashMap::new();
        meta.insert(safety.committed.0, (safety.committed_meta, None));
        Voter {
            id: cfg.id,
            n: cfg.n,
            f: f_of(cfg.n),
            delta: cfg.delta,
            key,
            committee,
            tree,
            meta,
            high: safety.lock,
            root_qcs: BTreeMap::new(),
            buffered: BTreeMap::new(),
            requested: HashSet::new(),
            early: VecDeque::new(),
            commits: 0,
            quitting: safety.quit_view >= safety.view,
            quit_cert: None,
            entered_by: None,
            root: None,
            root_prop: None,
            root_equivocated: false,
            root_commit: None,
            slots: BTreeMap::new(),
            tip: (0, Digest::ZERO, 0),
            window: VecDeque::new(),
            my_blame: None,
            view_start: Duration::ZERO,
            votes: Collector::new(quorum(cfg.n), MAX_COLLECTING),
            blames: Collector::new(quorum(cfg.n), MAX_COLLECTING),
            passive: restarted,
            restarted,
            passive_through: if restarted { safety.view } else { 0 },
            safety,
            now: Duration::ZERO,
            sync_budget: crate::contract::sync_budget(cfg.delta),
        }
    }

    pub fn view(&self) -> View {
        self.safety.view
    }

    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    pub fn committed_height(&self) -> Height {
        self.tree.committed().1
    }

    fn can_act(&self) -> bool {
        !self.passive && !self.quitting && self.safety.view > self.safety.quit_view
    }

    fn knows(&self, d: &Digest) -> bool {
        self.meta.contains_key(d) && self.tree.knows(d)
    }

    /// Sends to every other replica (this one already holds what it forwards).
    fn to_others(&self, msg: ApolloMsg, cx: &mut Cx) {
        cx.send_all_but(self.n, &[self.id], msg);
    }

    /// Forwards a proposal to every other replica but its signer, which holds it already
    /// (and would spend a pairing check on its own signature).
    fn forward(&self, p: &Proposal, cx: &mut Cx) {
        let msg = ApolloMsg::Propose(Box::new(p.clone()));
        cx.send_all_but(self.n, &[self.id, p.signer(self.n)], msg);
    }

    fn raise_high(&mut self, r: (View, u64, Digest)) {
        if (r.0, r.1) > (self.high.0, self.high.1) {
            self.high = r;
        }
    }

    /// The rank of a valid block as this replica knows it.
    fn rank_of(&self, d: &Digest, qc: Option<&QuorumCert>) -> Option<Rank> {
        let (m, _) = self.meta.get(d)?;
        let mut r = (m.view, m.pos);
        for q in self.root_qcs.values().chain(qc) {
            if q.block == *d && (q.view, 0) > r {
                r = (q.view, 0);
            }
        }
        if self.safety.lock.2 == *d && (self.safety.lock.0, self.safety.lock.1) > r {
            r = (self.safety.lock.0, self.safety.lock.1);
        }
        Some(r)
    }

    /// The first position of a view is due 8Δ after entering it (statuses, the leader's
    /// 2Δ wait, re-proposal, votes, proposal, with Δ of entry skew); each next one 4Δ
    /// after the previous was delivered (the next round leader has it within Δ, pauses
    /// at most Δ/2, and its block takes Δ).
    fn arm_blame_timer(&self, cx: &mut Cx) {
        let deadline = if self.tip.0 == 0 {
            self.view_start + self.delta * 8
        } else {
            self.now + self.delta * 4
        };
        cx.set_timer(BLAME_TIMER, deadline.saturating_sub(self.now));
    }

    fn request(&mut self, digest: Digest, from: NodeId, cx: &mut Cx) {
        if self.requested.len() >= MAX_BUFFERED {
            self.requested.clear();
        }
        if from != self.id && self.requested.insert(digest) {
            cx.send(from, ApolloMsg::Fetch(digest));
        }
    }

    // --- valid blocks -------------------------------------------------------------------

    /// A steady proposal from anybody: make it valid if it is (buffering it while its
    /// parent is fetched), forward it the first time, and use it in the current view.
    fn on_steady(&mut self, from: NodeId, p: Proposal, cx: &mut Cx) {
        let digest = p.block.digest();
        if self.knows(&digest) {
            if p.view == self.safety.view {
                self.on_current(p, digest, cx);
            }
            return;
        }
        if p.block.height <= self.tree.committed().1 {
            return;
        }
        let pos = position(&p.block);
        let parent = p.block.parent;
        let Some((pm, _)) = self.meta.get(&parent).copied() else {
            cx.event(Event::Buffered { block: digest });
            // Fetch the parent unless it is itself waiting (a chain arriving backwards),
            // or it is the next position of the current view, on its way from its round
            // leader: the block after it was built before it was checked (see "The next
            // round leader does not wait for the check") and may overtake it. Should it
            // never come, the next block's parent is fetched.
            let next_on_its_way = p.view == self.safety.view && pos == self.tip.0 + 2;
            if !next_on_its_way
                && !self
                    .buffered
                    .contains_key(&(p.block.height.saturating_sub(1), parent))
            {
                self.request(parent, from, cx);
            }
            self.buffered.insert((p.block.height, digest), (from, p));
            while self.buffered.len() > MAX_PENDING_BLOCKS {
                self.buffered.pop_last();
            }
            return;
        };
        let j = &p.block.justify;
        let ok = if pos == 1 {
            true // parent == justify.block, and the justify, were checked by `verify`
        } else {
            pm.view == p.view
                && pm.pos + 1 == pos
                && (pm.justify.view, pm.justify.height, pm.justify.block)
                    == (j.view, j.height, j.block)
        };
        if !ok || !self.tree.insert(digest, Arc::new(p.block.clone())) {
            cx.event(Event::Ignored {
                kind: "propose",
                reason: "not a valid chain block",
            });
            return;
        }
        let m = Meta {
            view: p.view,
            pos,
            justify: *j,
        };
        self.meta.insert(digest, (m, Some(p.signature)));
        self.requested.remove(&digest);
        self.raise_high((p.view, pos, digest));
        let roots: Vec<View> = self
            .root_qcs
            .values()
            .filter(|q| q.block == digest)
            .map(|q| q.view)
            .collect();
        for v in roots {
            self.raise_high((v, 0, digest));
        }
        if p.block.proposer != self.id {
            self.forward(&p, cx);
        }
        if pos == 1 && p.view > 1 {
            self.on_root_qc(from, *j, cx);
        }
        if p.view == self.safety.view {
            self.on_current(p, digest, cx);
        } else if p.view > self.safety.view {
            self.stash(from, ApolloMsg::Propose(Box::new(p)));
        }
        self.on_known(digest, cx);
    }

    /// A block became valid: retry what waited for it.
    fn on_known(&mut self, digest: Digest, cx: &mut Cx) {
        if !self.buffered.is_empty() {
            let ready: Vec<(Height, Digest)> = self
                .buffered
                .iter()
                .filter(|(_, (_, p))| p.block.parent == digest)
                .map(|(k, _)| *k)
                .collect();
            for k in ready {
                if let Some((from, p)) = self.buffered.remove(&k) {
                    self.on_steady(from, p, cx);
                }
            }
        }
        if let Some(r) = self.root {
            if r.block == digest {
                self.start_root(cx);
            }
        }
        if let Some((from, p)) = self.root_prop.clone() {
            if p.block.digest() == digest {
                self.try_vote_root(from, &p, cx);
            }
        }
    }

    fn stash(&mut self, from: NodeId, msg: ApolloMsg) {
        self.early.push_back((from, msg));
        while self.early.len() > MAX_EARLY {
            self.early.pop_front();
        }
    }

    // --- the current view: delivery and the Apollo commit -----------------------------

    fn on_current(&mut self, p: Proposal, digest: Digest, cx: &mut Cx) {
        let pos = position(&p.block);
        match self.slots.get(&pos) {
            Some((d, a)) => {
                if *d != digest {
                    let proof = Box::new(Equivocation { a: a.clone(), b: p });
                    self.blame(Some(proof), cx);
                }
            }
            None => {
                if pos <= self.tip.0 || self.slots.len() >= MAX_VIEW_SLOTS {
                    return;
                }
                self.slots.insert(pos, (digest, p));
                self.try_deliver(cx);
            }
        }
    }

    fn try_deliver(&mut self, cx: &mut Cx) {
        let Some(root) = self.root else { return };
        if self.quitting || (self.tip.0 == 0 && self.tip.1 != root.block) {
            return; // not started (the root block is not held yet)
        }
        let root_key = (root.view, root.height, root.block);
        // A replica that committed inside this view (before a restart) goes on from its
        // committed block: what lies below it can no longer enter the tree.
        let (cd, ch, _) = self.tree.committed();
        let cm = self.safety.committed_meta;
        if cm.view == self.safety.view
            && cm.pos > self.tip.0
            && (cm.justify.view, cm.justify.height, cm.justify.block) == root_key
        {
            self.tip = (cm.pos, cd, ch);
            self.window.clear();
            self.window.push_back(cd);
        }
        loop {
            let next = self.tip.0 + 1;
            let Some((d, p)) = self.slots.get(&next) else {
                return;
            };
            let d = *d;
            let j = &p.block.justify;
            if p.block.parent != self.tip.1
                || !self.knows(&d)
                || (j.view, j.height, j.block) != root_key
            {
                return;
            }
            let height = p.block.height;
            self.tip = (next, d, height);
            self.window.push_back(d);
            while self.window.len() > self.f + 1 {
                self.window.pop_front();
            }
            // Forget old positions (equivocation there no longer matters).
            if next > MAX_SYNC_ITEMS as u64 {
                let keep = next - MAX_SYNC_ITEMS as u64;
                if self.slots.first_key_value().is_some_and(|(k, _)| *k < keep) {
                    self.slots = self.slots.split_off(&keep);
                }
            }
            self.arm_blame_timer(cx);
            if next > self.f as u64 && self.window.len() == self.f + 1 && self.can_act() {
                let target = self.window[0];
                self.commit_to(target, cx);
            }
            self.give_turn(cx);
        }
    }

    /// Tells the leader half what it delivered: with the turn when this replica leads
    /// the next position (`Turn`), otherwise as the base of the chain the leader half
    /// may build on before the voter has checked it (`Ahead`).
    fn give_turn(&self, cx: &mut Cx) {
        let view = self.safety.view;
        let Some(root) = self.root else { return };
        if view <= self.passive_through || !self.can_act() {
            return;
        }
        let turn = Turn {
            view,
            parent: self.tip.1,
            parent_height: self.tip.2,
            justify: root,
        };
        if round_leader(view, self.tip.0 + 1, self.n) == self.id {
            cx.send(self.id, ApolloMsg::Turn(turn));
        } else {
            cx.send(self.id, ApolloMsg::Ahead(turn));
        }
    }

    fn commit_to(&mut self, target: Digest, cx: &mut Cx) {
        let (committed, committed_h, _) = self.tree.committed();
        if let Some(b) = self.tree.get(&target) {
            if b.height <= committed_h {
                if !self.tree.extends(&committed, &target, b.height) {
                    cx.event(Event::ConflictingCommit { committed, target });
                }
                return;
            }
        }
        match self.tree.commit_to(&target) {
            Ok(chain) => {
                if chain.is_empty() {
                    return;
                }
                for node in chain {
                    cx.commit(Commit {
                        digest: node.digest,
                        block: node.block,
                        proof: None,
                    });
                }
                self.safety.committed = self.tree.committed();
                if let Some((m, _)) = self.meta.get(&self.safety.committed.0) {
                    self.safety.committed_meta = *m;
                }
                self.commits += 1;
                if self.commits.is_multiple_of(META_SWEEP_EVERY) {
                    let tree = &self.tree;
                    self.meta.retain(|d, _| tree.knows(d));
                }
                if crate::contract::persist_commit_mark(committed_h, self.safety.committed.1) {
                    cx.persist(self.safety);
                }
            }
            Err(CommitError::Unknown(_)) => {}
            Err(CommitError::Conflict { target, committed }) => {
                cx.event(Event::ConflictingCommit { committed, target });
            }
        }
    }

    // --- roots --------------------------------------------------------------------------

    fn on_root_proposal(&mut self, from: NodeId, p: Proposal, cx: &mut Cx) {
        let view = self.safety.view;
        if let Some(qc) = p.rank_qc {
            self.note_root_qc(qc);
        }
        if p.view < view {
            return;
        }
        if p.view > view {
            self.stash(from, ApolloMsg::Propose(Box::new(p)));
            return;
        }
        let digest = p.block.digest();
        if let Some((_, a)) = &self.root_prop {
            if a.block.digest() != digest {
                let proof = Box::new(Equivocation { a: a.clone(), b: p });
                self.on_root_equivocation(Some(proof), cx);
            }
            return;
        }
        if let Some(r) = self.root {
            if r.block != digest {
                self.on_root_equivocation(None, cx);
                return;
            }
        }
        self.root_prop = Some((from, p.clone()));
        if !self.knows(&digest) {
            self.request(digest, from, cx);
            return;
        }
        self.try_vote_root(from, &p, cx);
    }

    fn try_vote_root(&mut self, from: NodeId, p: &Proposal, cx: &mut Cx) {
        let view = self.safety.view;
        if !self.can_act()
            || self.root_equivocated
            || p.view != view
            || self.safety.root_vote >= view
        {
            return;
        }
        let digest = p.block.digest();
        let Some(rank) = self.rank_of(&digest, p.rank_qc.as_ref()) else {
            self.request(digest, from, cx);
            return;
        };
        if rank < (self.safety.lock.0, self.safety.lock.1) {
            cx.event(Event::Ignored {
                kind: "new_view",
                reason: "re-proposal ranks below the lock",
            });
            return;
        }
        self.safety.root_vote = view;
        cx.persist(self.safety);
        let height = p.block.height;
        let vote = Vote {
            view,
            height,
            block: digest,
            voter: self.id,
            signature: self.key.sign(&vote_statement(view, height, &digest)),
        };
        cx.event(Event::Voted {
            view,
            block: digest,
        });
        self.forward(p, cx);
        cx.broadcast(ApolloMsg::Vote(vote));
    }

    fn on_vote(&mut self, from: NodeId, v: Vote, cx: &mut Cx) {
        if v.view < self.safety.view {
            return;
        }
        let key = (v.view, v.height, v.block);
        if let Some(q) = self.votes.add(key, v.voter, v.signature) {
            let qc = QuorumCert {
                view: v.view,
                height: v.height,
                block: v.block,
                sig: self.committee.aggregate_unchecked(&q),
            };
            cx.event(Event::CertificateFormed {
                view: v.view,
                block: v.block,
            });
            self.on_root_qc(from, qc, cx);
        }
    }

    fn note_root_qc(&mut self, qc: QuorumCert) {
        if qc.is_genesis() {
            return;
        }
        self.root_qcs.entry(qc.view).or_insert(qc);
        while self.root_qcs.len() > MAX_ROOT_QCS {
            self.root_qcs.pop_first();
        }
        if self.knows(&qc.block) {
            self.raise_high((qc.view, 0, qc.block));
        }
    }

    /// A root certificate (from votes, a forwarded one, or a first steady block).
    fn on_root_qc(&mut self, from: NodeId, qc: QuorumCert, cx: &mut Cx) {
        if qc.is_genesis() {
            return;
        }
        self.note_root_qc(qc);
        let view = self.safety.view;
        if qc.view != view {
            return;
        }
        let conflicts_prop = self
            .root_prop
            .as_ref()
            .is_some_and(|(_, p)| p.block.digest() != qc.block);
        match self.root {
            Some(r) if r.block != qc.block => {
                self.on_root_equivocation(None, cx);
                return;
            }
            Some(_) => return,
            None if conflicts_prop => {
                self.on_root_equivocation(None, cx);
                return;
            }
            None => {}
        }
        self.root = Some(qc);
        if !self.knows(&qc.block) {
            self.request(qc.block, from, cx);
            return;
        }
        self.start_root(cx);
    }

    /// The root of the current view is certified and held: forward its certificate,
    /// start the 2Δ root commit, and start delivering.
    fn start_root(&mut self, cx: &mut Cx) {
        let Some(root) = self.root else { return };
        if self.tip.0 > 0 || self.tip.1 == root.block {
            return;
        }
        self.tip = (0, root.block, root.height);
        if !root.is_genesis() {
            self.raise_high((root.view, 0, root.block));
            self.to_others(ApolloMsg::RootCert(root), cx);
            if !self.quitting {
                // Rule 9: due 2Δ from now, even if the view is quit meanwhile.
                self.root_commit = Some((root.block, self.now + self.delta * 2));
                cx.set_timer(ROOT_TIMER, self.delta * 2);
            }
        }
        self.give_turn(cx);
        self.try_deliver(cx);
    }

    /// Rule 9, 2Δ after the root certificate was first held (and forwarded) while the
    /// view was not quit: commit the root unless a second root of the view was seen. Not
    /// in the view a replica restarted in (it may have missed a second root while down).
    fn root_commit_due(&mut self, cx: &mut Cx) {
        let Some((d, _)) = self.root_commit.take() else {
            return;
        };
        if self.root_equivocated || self.passive || self.safety.view <= self.passive_through {
            return;
        }
        if self.root.is_some_and(|r| r.block == d) && self.knows(&d) {
            self.commit_to(d, cx);
        }
    }

    fn on_root_equivocation(&mut self, proof: Option<Box<Equivocation>>, cx: &mut Cx) {
        if !self.root_equivocated {
            self.root_equivocated = true;
            self.root_commit = None;
            cx.cancel_timer(ROOT_TIMER);
        }
        self.blame(proof, cx);
    }

    /// `L_v`'s re-proposal: its highest-ranked block.
    fn propose_new_view(&mut self, cx: &mut Cx) {
        let view = self.safety.view;
        if self.quitting || view_leader(view, self.n) != self.id || view <= self.passive_through {
            return;
        }
        let (lv, lp, d) = if (self.high.0, self.high.1) > (self.safety.lock.0, self.safety.lock.1) {
            self.high
        } else {
            self.safety.lock
        };
        let block = if d == Block::genesis_digest() {
            Block::genesis()
        } else {
            match self.tree.get(&d) {
                Some(b) => (**b).clone(),
                None => return,
            }
        };
        let rank_qc = if lp == 0 && lv > 0 {
            self.root_qcs
                .get(&lv)
                .copied()
                .filter(|q| q.block == d)
                .or(self.safety.lock_qc.filter(|q| q.block == d && q.view == lv))
        } else {
            None
        };
        let signature = self.key.sign(&proposal_statement(view, true, &d));
        cx.event(Event::Proposed {
            view,
            height: block.height,
            block: d,
            batches: 0,
        });
        cx.broadcast(ApolloMsg::Propose(Box::new(Proposal {
            view,
            block,
            root: true,
            rank_qc,
            signature,
        })));
    }

    // --- blame, quit, view change -------------------------------------------------------

    fn blame(&mut self, proof: Option<Box<Equivocation>>, cx: &mut Cx) {
        if self.my_blame.is_some() || self.passive || self.quitting {
            return;
        }
        let view = self.safety.view;
        let b = Blame {
            view,
            sender: self.id,
            signature: self.key.sign(&blame_statement(view)),
            proof,
        };
        self.my_blame = Some(b.clone());
        cx.broadcast(ApolloMsg::Blame(b));
    }

    fn on_blame(&mut self, b: Blame, cx: &mut Cx) {
        if b.view < self.safety.view {
            return;
        }
        if b.view == self.safety.view && !self.quitting {
            if let Some(e) = &b.proof {
                if e.a.root {
                    self.on_root_equivocation(b.proof.clone(), cx);
                } else {
                    self.blame(b.proof.clone(), cx);
                }
            }
        }
        if let Some(q) = self.blames.add(b.view, b.sender, b.signature) {
            let c = BlameCert {
                view: b.view,
                sig: self.committee.aggregate_unchecked(&q),
            };
            self.on_blame_cert(c, cx);
        }
    }

    fn reset_view_state(&mut self) {
        self.root = None;
        self.root_commit = None;
        self.root_prop = None;
        self.root_equivocated = false;
        self.slots.clear();
        self.tip = (0, Digest::ZERO, 0);
        self.window.clear();
        self.my_blame = None;
        self.quit_cert = None;
    }

    fn on_blame_cert(&mut self, c: BlameCert, cx: &mut Cx) {
        let view = self.safety.view;
        if c.view < view || (c.view == view && self.quitting) {
            return;
        }
        if c.view > view {
            self.reset_view_state();
            self.safety.view = c.view;
        }
        self.quitting = true;
        self.quit_cert = Some(c);
        self.safety.quit_view = self.safety.quit_view.max(c.view);
        cx.persist(self.safety);
        cx.broadcast(ApolloMsg::BlameCert(c));
        cx.cancel_timer(BLAME_TIMER);
        cx.cancel_timer(NEW_VIEW_TIMER);
        cx.set_timer(QUIT_TIMER, self.delta * 2);
    }

    fn lock_proof(&self) -> (Option<Proposal>, Option<QuorumCert>) {
        let (_, _, d) = self.safety.lock;
        let prop = match (self.tree.get(&d), self.meta.get(&d)) {
            (Some(b), Some((m, Some(sig)))) if !b.is_genesis() => Some(Proposal {
                view: m.view,
                block: (**b).clone(),
                root: false,
                rank_qc: None,
                signature: *sig,
            }),
            _ => None,
        };
        (prop, self.safety.lock_qc)
    }

    fn enter_next_view(&mut self, cx: &mut Cx) {
        // A root commit due by now (its timer and the quit timer may fire together).
        if self.root_commit.is_some_and(|(_, at)| at <= self.now) {
            self.root_commit_due(cx);
        }
        let from = self.safety.view;
        if (self.high.0, self.high.1) > (self.safety.lock.0, self.safety.lock.1) {
            self.safety.lock = self.high;
            self.safety.lock_qc = if self.high.1 == 0 {
                self.root_qcs
                    .get(&self.high.0)
                    .copied()
                    .filter(|q| q.block == self.high.2)
            } else {
                None
            };
        }
        let entered_by = self.quit_cert;
        self.reset_view_state();
        self.entered_by = entered_by;
        self.quitting = false;
        let view = from + 1;
        self.safety.view = view;
        cx.persist(self.safety);
        cx.event(Event::ViewChanged {
            from,
            to: view,
            by_timeout: true,
        });
        let (lock, lock_qc) = self.lock_proof();
        cx.send(
            view_leader(view, self.n),
            ApolloMsg::Status(Status {
                view,
                lock: lock.map(Box::new),
                lock_qc,
            }),
        );
        self.view_start = self.now;
        self.arm_blame_timer(cx);
        if view_leader(view, self.n) == self.id && view > self.passive_through {
            // Wait 2Δ so that every honest replica's status has arrived.
            cx.set_timer(NEW_VIEW_TIMER, self.delta * 2);
        }
        self.votes.prune_below(&(view, 0, Digest::ZERO));
        self.blames.prune_below(&view);
        self.replay_early(cx);
    }

    fn replay_early(&mut self, cx: &mut Cx) {
        let view = self.safety.view;
        if let Some(qc) = self.root_qcs.get(&view).copied() {
            self.on_root_qc(self.id, qc, cx);
        }
        let early: Vec<(NodeId, ApolloMsg)> = self.early.drain(..).collect();
        for (from, msg) in early {
            match &msg {
                ApolloMsg::Propose(p) if p.view > view => self.stash(from, msg),
                ApolloMsg::Propose(p) if p.view == view => {
                    if let ApolloMsg::Propose(p) = msg {
                        self.on_propose(from, *p, cx);
                    }
                }
                _ => {}
            }
        }
    }

    fn on_propose(&mut self, from: NodeId, p: Proposal, cx: &mut Cx) {
        if p.root {
            self.on_root_proposal(from, p, cx);
        } else {
            self.on_steady(from, p, cx);
        }
    }

    // --- catch-up and recovery ----------------------------------------------------------

    fn on_fetch(&mut self, from: NodeId, d: Digest, cx: &mut Cx) {
        let chain = self.tree.chain_ending_at(&d, MAX_FETCH_BLOCKS);
        let props: Vec<Proposal> = chain
            .iter()
            .filter_map(|b| {
                let (m, sig) = self.meta.get(&b.digest())?;
                Some(Proposal {
                    view: m.view,
                    block: (**b).clone(),
                    root: false,
                    rank_qc: None,
                    signature: (*sig)?,
                })
            })
            .collect();
        if !props.is_empty() {
            cx.send(from, ApolloMsg::Blocks(props));
        }
    }

    fn on_blocks(&mut self, from: NodeId, props: Vec<Proposal>, cx: &mut Cx) {
        for p in props {
            self.on_steady(from, p, cx);
        }
    }

    fn sync_reply(&self) -> SyncReply {
        let (lock, lock_qc) = self.lock_proof();
        let delivered: Vec<&Proposal> = self
            .slots
            .range(..=self.tip.0)
            .map(|(_, (_, p))| p)
            .collect();
        let skip = delivered.len().saturating_sub(MAX_SYNC_ITEMS);
        SyncReply {
            view: self.safety.view,
            entered_by: self.entered_by,
            quit: if self.quitting { self.quit_cert } else { None },
            lock,
            lock_qc,
            root_qc: self.root.filter(|r| !r.is_genesis()),
            tail: delivered.into_iter().skip(skip).cloned().collect(),
            blame: self.my_blame.clone(),
        }
    }

    fn on_sync_reply(&mut self, from: NodeId, r: SyncReply, cx: &mut Cx) {
        if let Some(c) = r.entered_by {
            self.on_blame_cert(c, cx);
        }
        if let Some(c) = r.quit {
            self.on_blame_cert(c, cx);
        }
        if let Some(p) = r.lock {
            self.on_steady(from, p, cx);
        }
        if let Some(qc) = r.lock_qc {
            self.on_root_qc(from, qc, cx);
        }
        if let Some(qc) = r.root_qc {
            self.on_root_qc(from, qc, cx);
        }
        for p in r.tail {
            self.on_steady(from, p, cx);
        }
        if let Some(b) = r.blame {
            self.on_blame(b, cx);
        }
    }

    fn end_resync(&mut self, cx: &mut Cx) {
        self.passive = false;
        if self.quitting {
            return;
        }
        self.view_start = self.now;
        self.arm_blame_timer(cx);
        if let Some((from, p)) = self.root_prop.clone() {
            self.try_vote_root(from, &p, cx);
        }
    }
}

impl Half<ApolloMsg, Safety> for Voter {
    fn on_start(&mut self, cx: &mut Cx) {
        self.now = cx.now;
        self.view_start = cx.now;
        if self.restarted {
            cx.broadcast(ApolloMsg::SyncRequest);
            cx.set_timer(RESYNC_TIMER, self.delta * 2);
        }
        if self.quitting {
            cx.set_timer(QUIT_TIMER, self.delta * 2);
            return;
        }
        self.arm_blame_timer(cx);
        if self.safety.view == 1 {
            // View 1 is rooted at genesis.
            self.root = Some(QuorumCert::genesis());
            self.start_root(cx);
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Verified<ApolloMsg>, cx: &mut Cx) {
        self.now = cx.now;
        match msg.into_inner() {
            ApolloMsg::Propose(p) => self.on_propose(from, *p, cx),
            ApolloMsg::Vote(v) => self.on_vote(from, v, cx),
            ApolloMsg::RootCert(qc) => self.on_root_qc(from, qc, cx),
            ApolloMsg::Blame(b) => self.on_blame(b, cx),
            ApolloMsg::BlameCert(c) => self.on_blame_cert(c, cx),
            ApolloMsg::Status(s) => {
                if let Some(p) = s.lock {
                    self.on_steady(from, *p, cx);
                }
                if let Some(qc) = s.lock_qc {
                    self.note_root_qc(qc);
                }
            }
            ApolloMsg::Fetch(d) => self.on_fetch(from, d, cx),
            ApolloMsg::Blocks(ps) => self.on_blocks(from, ps, cx),
            ApolloMsg::SyncRequest => {
                if from != self.id && crate::contract::answer_sync(&mut self.sync_budget, from, cx)
                {
                    cx.send(from, ApolloMsg::SyncReply(Box::new(self.sync_reply())));
                }
            }
            ApolloMsg::SyncReply(r) => self.on_sync_reply(from, *r, cx),
            ApolloMsg::Turn(_) | ApolloMsg::Ahead(_) => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        self.now = cx.now;
        match id {
            BLAME_TIMER => {
                if !self.quitting {
                    self.blame(None, cx);
                }
                // Retry fetches that went unanswered (a peer that crashed).
                self.requested.clear();
                let wanted: Vec<(Digest, NodeId)> = self
                    .buffered
                    .values()
                    .map(|(from, p)| (p.block.parent, *from))
                    .collect();
                for (d, from) in wanted {
                    self.request(d, from, cx);
                }
                if let (Some((from, _)), Some(r)) = (self.root_prop.as_ref(), self.root) {
                    if !self.knows(&r.block) {
                        let from = *from;
                        self.request(r.block, from, cx);
                    }
                }
                cx.set_timer(BLAME_TIMER, self.delta * 4);
            }
            QUIT_TIMER if self.quitting => self.enter_next_view(cx),
            RESYNC_TIMER => self.end_resync(cx),
            ROOT_TIMER => self.root_commit_due(cx),
            NEW_VIEW_TIMER => self.propose_new_view(cx),
            _ => {}
        }
    }
}

/// The Apollo protocol.
pub struct Apollo;

impl Protocol for Apollo {
    type Msg = ApolloMsg;
    type Safety = Safety;
    type Leader = Leader;
    type Voter = Voter;
    const NAME: &'static str = "apollo";
    const SYNCHRONOUS: bool = true;
    const PEEKS: bool = true;
    // Its messages to itself are the voter's notes to its leader half (`Ahead`,
    // `Turn`), one per block: nothing waits on the wire behind them, and the block a
    // round leader proposes left already (the peek above).
    const DEFER_LOCAL: bool = false;

    fn verify(
        msg: ApolloMsg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<ApolloMsg>, VerifyError> {
        verify(msg, from, committee)
    }

    fn claims(msg: &ApolloMsg, committee: &Committee, out: &mut Vec<crate::Claim>) {
        claims(msg, committee, out);
    }

    fn create(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> (Leader, Voter) {
        (
            Leader::new(cfg, key.clone()),
            Voter::new(cfg, key, committee, restored),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Action;
    use olympus_crypto::Scheme;
    use olympus_types::{Batch, Payload, Transaction};

    fn setup(n: usize) -> (Vec<Arc<Keypair>>, Arc<Committee>) {
        let keys: Vec<_> = (0..n)
            .map(|i| Arc::new(Keypair::generate(Scheme::Bls, &[5; 32], NodeId(i as u16))))
            .collect();
        let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        (keys, Arc::new(Committee::new(Scheme::Bls, &pks).unwrap()))
    }

    /// A steady block of view 1 (rooted at genesis) at `height`, on `parent`.
    fn steady(keys: &[Arc<Keypair>], parent: Digest, height: u64, tag: u8) -> Proposal {
        let n = keys.len();
        let proposer = round_leader(1, height, n);
        let block = Block {
            parent,
            view: 1,
            height,
            proposer,
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 1,
                nonce: tag as u64,
                payload: vec![tag],
            }])]),
        };
        let signature = keys[proposer.index()].sign(&proposal_statement(1, false, &block.digest()));
        Proposal {
            view: 1,
            block,
            root: false,
            rank_qc: None,
            signature,
        }
    }

    fn propose(p: &Proposal) -> ApolloMsg {
        ApolloMsg::Propose(Box::new(p.clone()))
    }

    /// The blocks a leader half broadcast among `cx`'s actions.
    fn proposed_blocks(cx: &Cx) -> Vec<Block> {
        cx.actions()
            .iter()
            .filter_map(|a| match a {
                Action::Broadcast {
                    msg: ApolloMsg::Propose(p),
                } => Some(p.block.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn verify_accepts_round_leader_blocks_and_rejects_forgeries() {
        let (keys, c) = setup(3);
        let g = Block::genesis_digest();
        let p = steady(&keys, g, 1, 1);
        assert!(verify(propose(&p), NodeId(0), &c).is_ok());
        // Signed by someone else than the round leader of its position.
        let mut forged = p.clone();
        forged.signature = keys[0].sign(&proposal_statement(1, false, &p.block.digest()));
        assert!(verify(propose(&forged), NodeId(0), &c).is_err());
        // Claims another proposer than the round leader.
        let mut wrong = p.clone();
        wrong.block.proposer = NodeId(0);
        assert!(verify(propose(&wrong), NodeId(0), &c).is_err());
        // A first steady block of view 2 needs a root certificate of f + 1 signers.
        let d = p.block.digest();
        let one = QuorumCert {
            view: 2,
            height: 1,
            block: d,
            sig: c.aggregate_unchecked(&[(NodeId(0), keys[0].sign(&vote_statement(2, 1, &d)))]),
        };
        let two = QuorumCert {
            sig: c.aggregate_unchecked(&[
                (NodeId(0), keys[0].sign(&vote_statement(2, 1, &d))),
                (NodeId(1), keys[1].sign(&vote_statement(2, 1, &d))),
            ]),
            ..one
        };
        let in_view_2 = |qc: QuorumCert| {
            let block = Block {
                parent: d,
                view: 2,
                height: 2,
                proposer: round_leader(2, 1, 3),
                justify: qc,
                payload: Payload::empty(),
            };
            let signature = keys[round_leader(2, 1, 3).index()].sign(&proposal_statement(
                2,
                false,
                &block.digest(),
            ));
            Proposal {
                view: 2,
                block,
                root: false,
                rank_qc: None,
                signature,
            }
        };
        assert!(verify(propose(&in_view_2(one)), NodeId(1), &c).is_err());
        assert!(verify(propose(&in_view_2(two)), NodeId(1), &c).is_ok());
        // Equivocation proofs: two different blocks for one position only.
        let p2 = steady(&keys, g, 1, 2);
        let blame = |a: &Proposal, b: &Proposal| {
            ApolloMsg::Blame(Blame {
                view: 1,
                sender: NodeId(0),
                signature: keys[0].sign(&blame_statement(1)),
                proof: Some(Box::new(Equivocation {
                    a: a.clone(),
                    b: b.clone(),
                })),
            })
        };
        assert!(verify(blame(&p, &p2), NodeId(0), &c).is_ok());
        assert!(verify(blame(&p, &p), NodeId(0), &c).is_err());
        let next = steady(&keys, d, 2, 3);
        assert!(verify(blame(&p, &next), NodeId(0), &c).is_err());
        // Bounded fetch replies.
        let many = ApolloMsg::Blocks(vec![p.clone(); MAX_FETCH_BLOCKS + 1]);
        assert!(verify(many, NodeId(0), &c).is_err());
    }

    #[test]
    fn messages_round_trip_through_the_frame_codec() {
        let (keys, _) = setup(3);
        let msg = propose(&steady(&keys, Block::genesis_digest(), 1, 1));
        let bytes = olympus_types::frame::encode(&msg).unwrap();
        assert_eq!(
            olympus_types::frame::decode::<ApolloMsg>(&bytes).unwrap(),
            msg
        );
    }

    #[test]
    fn the_leader_half_signs_once_per_position() {
        let (keys, _) = setup(3);
        let cfg = ReplicaConfig::new(NodeId(2), 3);
        let mut l = Leader::new(&cfg, keys[2].clone());
        let turn = ApolloMsg::Turn(Turn {
            view: 1,
            parent: Block::genesis_digest(),
            parent_height: 0,
            justify: QuorumCert::genesis(),
        });
        let mut cx = Cx::new(Duration::ZERO);
        let b = BatchRef::new(Batch::new(vec![Transaction {
            client: 1,
            nonce: 1,
            payload: vec![1],
        }]));
        assert!(l.on_batch(b.clone(), &mut cx));
        // A turn from another node is ignored.
        l.on_message(NodeId(1), Verified::assume_verified(turn.clone()), &mut cx);
        assert!(cx.actions().is_empty());
        l.on_message(NodeId(2), Verified::assume_verified(turn.clone()), &mut cx);
        assert!(l.on_batch(b, &mut cx));
        l.on_message(NodeId(2), Verified::assume_verified(turn), &mut cx);
        l.on_timer(IDLE_TIMER, &mut cx);
        let proposals = cx
            .actions()
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Broadcast {
                        msg: ApolloMsg::Propose(_)
                    }
                )
            })
            .count();
        assert_eq!(proposals, 1);
    }

    /// The round leader of position 2 builds on the block of position 1 before its
    /// signature is checked only as its voter told it to expect (`Ahead`): the right
    /// parent and root, straight from that position's round leader, with batches
    /// waiting; and the voter's turn for the same position afterwards signs nothing more.
    #[test]
    fn the_next_round_leader_builds_on_an_unchecked_block_only_as_expected() {
        let (keys, _) = setup(3);
        assert_eq!(
            (round_leader(1, 1, 3), round_leader(1, 2, 3)),
            (NodeId(2), NodeId(0))
        );
        let cfg = ReplicaConfig::new(NodeId(0), 3);
        let g = Block::genesis_digest();
        let ahead = Turn {
            view: 1,
            parent: g,
            parent_height: 0,
            justify: QuorumCert::genesis(),
        };
        let p1 = steady(&keys, g, 1, 1);
        let batch = || {
            BatchRef::new(Batch::new(vec![Transaction {
                client: 1,
                nonce: 9,
                payload: vec![9],
            }]))
        };
        // (expected by the voter, with batches, from, block): speculates?
        let other_parent = steady(&keys, Digest([1; 32]), 1, 1);
        let cases = [
            (true, true, NodeId(2), &p1, true),
            (false, true, NodeId(2), &p1, false),
            (true, false, NodeId(2), &p1, false),
            (true, true, NodeId(1), &p1, false),
            (true, true, NodeId(2), &other_parent, false),
        ];
        for (i, (told, batches, from, p, speculates)) in cases.into_iter().enumerate() {
            let mut l = Leader::new(&cfg, keys[0].clone());
            let mut cx = Cx::new(Duration::ZERO);
            if batches {
                assert!(l.on_batch(batch(), &mut cx));
            }
            if told {
                let m = Verified::assume_verified(ApolloMsg::Ahead(ahead));
                l.on_message(NodeId(0), m, &mut cx);
            }
            l.on_unverified(from, &propose(p), &mut cx);
            let blocks = proposed_blocks(&cx);
            assert_eq!(blocks.len(), usize::from(speculates), "case {i}");
            if speculates {
                assert_eq!((blocks[0].parent, blocks[0].height), (p.block.digest(), 2));
                // The voter delivers position 1 and hands over the turn: already done.
                let turn = Turn {
                    parent: p.block.digest(),
                    parent_height: 1,
                    ..ahead
                };
                assert!(l.on_batch(batch(), &mut cx));
                l.on_message(
                    NodeId(0),
                    Verified::assume_verified(ApolloMsg::Turn(turn)),
                    &mut cx,
                );
                l.on_timer(IDLE_TIMER, &mut cx);
                assert_eq!(proposed_blocks(&cx).len(), 1, "one block per position");
            }
        }
    }

    /// The speculative chain follows unchecked blocks in any order of arrival: the
    /// round leader of position 3 builds on 1 ← 2 once both came, whichever first, and
    /// whatever quorum the root certificate they carry was aggregated from (replicas
    /// may hold different certificates for one root).
    #[test]
    fn the_speculative_chain_follows_unchecked_blocks_in_any_order() {
        let (keys, c) = setup(3);
        assert_eq!(round_leader(1, 3, 3), NodeId(1));
        let cfg = ReplicaConfig::new(NodeId(1), 3);
        let g = Block::genesis_digest();
        let p1 = steady(&keys, g, 1, 1);
        let p2 = steady(&keys, p1.block.digest(), 2, 2);
        let tip = Turn {
            view: 1,
            parent: g,
            parent_height: 0,
            justify: QuorumCert::genesis(),
        };
        let mut other_cert = tip;
        other_cert.justify.sig =
            c.aggregate_unchecked(&[(NodeId(1), keys[1].sign(&Digest([2; 32])))]);
        for (order, tip) in [
            ([&p1, &p2], tip),
            ([&p2, &p1], tip),
            ([&p1, &p2], other_cert),
        ] {
            let mut l = Leader::new(&cfg, keys[1].clone());
            let mut cx = Cx::new(Duration::ZERO);
            let b = BatchRef::new(Batch::new(vec![Transaction {
                client: 1,
                nonce: 7,
                payload: vec![7],
            }]));
            assert!(l.on_batch(b, &mut cx));
            l.on_message(
                NodeId(1),
                Verified::assume_verified(ApolloMsg::Ahead(tip)),
                &mut cx,
            );
            for p in order {
                l.on_unverified(p.block.proposer, &propose(p), &mut cx);
            }
            let blocks = proposed_blocks(&cx);
            assert_eq!(blocks.len(), 1);
            assert_eq!((blocks[0].parent, blocks[0].height), (p2.block.digest(), 3));
        }
    }

    #[test]
    fn a_voter_commits_f_deep_and_blames_an_equivocating_round_leader() {
        let (keys, c) = setup(3);
        let cfg = ReplicaConfig::new(NodeId(1), 3);
        let mut v = Voter::new(&cfg, keys[1].clone(), c, None);
        let mut cx = Cx::new(Duration::ZERO);
        v.on_start(&mut cx);
        let g = Block::genesis_digest();
        let b1 = steady(&keys, g, 1, 1);
        let b2 = steady(&keys, b1.block.digest(), 2, 2);
        let m = |p: &Proposal| Verified::assume_verified(propose(p));
        v.on_message(round_leader(1, 1, 3), m(&b1), &mut cx);
        assert_eq!(v.committed_height(), 0, "one position is not a window");
        v.on_message(round_leader(1, 2, 3), m(&b2), &mut cx);
        // f + 1 = 2 positions with distinct round leaders: position 1 commits.
        assert_eq!(v.committed_height(), 1);
        // Replica 1 leads position 3 of view 1: it tells its leader half.
        assert_eq!(round_leader(1, 3, 3), NodeId(1));
        let turned = cx.actions().iter().any(|a| {
            matches!(a, Action::Send { to, msg: ApolloMsg::Turn(t) }
                if *to == NodeId(1) && t.parent == b2.block.digest())
        });
        assert!(turned);
        // A second block for position 2 by its round leader: blame with the proof.
        let b2x = steady(&keys, b1.block.digest(), 2, 9);
        v.on_message(NodeId(0), m(&b2x), &mut cx);
        let blamed = cx.actions().iter().any(
            |a| matches!(a, Action::Broadcast { msg: ApolloMsg::Blame(b) } if b.proof.is_some()),
        );
        assert!(blamed);
        // The committed mark is persisted lazily: height 1 crosses no multiple of
        // COMMIT_PERSIST_EVERY, so no persist carries it yet.
        assert!(!cx
            .actions()
            .iter()
            .any(|a| matches!(a, Action::Persist(s) if s.committed.1 == 1)));
    }
}
