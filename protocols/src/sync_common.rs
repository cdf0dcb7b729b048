//! The machinery shared by the synchronous protocols [`crate::sync_hotstuff`] and
//! [`crate::opt_sync`]: messages, the stateless verifier, and the leader and voter halves
//! of Sync HotStuff with an optional responsive (optimistic) commit path.
//!
//! n = 2f+1 replicas, at most f Byzantine, every message between honest replicas arrives
//! within Δ = [`ReplicaConfig::delta`]. A certificate (QC) is f+1 votes from *distinct*
//! replicas on one statement `(view, height, block)`; a *commit certificate* (CC, Opt Sync
//! only) is ⌊3n/4⌋+1 such votes. The rules and the safety arguments are in the docs of
//! the two protocol modules; this module states the mechanics.
//!
//! ## Messages
//!
//! - `Propose`: a leader-signed proposal `(view, block)`. Either a *steady-state* block
//!   of the view (`block.view = view`, justified by a QC of the same view on its parent),
//!   or a *new-view* re-proposal: the first proposal of a view re-proposes a block that
//!   was certified in an earlier view (`reproposal` carries that QC) so that it gets a
//!   certificate of the new view; in Opt Sync it also carries the highest CC of the
//!   previous view the leader knows. View 1 starts with the re-proposal of genesis.
//!   Replicas forward every proposal they vote for to everybody but its signer.
//! - `Vote`: broadcast to all; every replica aggregates certificates itself.
//! - `Blame`, `BlameCert`: signed blames for a view (with an optional equivocation proof:
//!   two leader-signed proposals for one `(view, height)`), and f+1 of them aggregated.
//! - `Status`: a replica's lock (and Opt Sync's CC) for the new leader.
//! - `CommitCert` (Opt Sync): a CC, broadcast by every replica before it commits by it.
//! - `Fetch`/`Blocks`: block catch-up. `SyncRequest`/`SyncReply`: recovery after a
//!   restart (see "Crash recovery" below).
//! - `Batches`: client batches on their way to the view's leader (see "Batches").
//!
//! ## Votes are checked by aggregation
//!
//! [`verify`] checks who sent a vote but not its signature: a vote is only ever used
//! inside a certificate, so a half checks the *sum* of a quorum (one pairing), bisecting
//! to the bad votes only if the sum fails and completing the quorum from votes that came
//! later (the collection keeps them). Only the view's leader sums at once — it needs the
//! certificate to propose the next block. Everybody else keeps the quorum unsummed: the
//! next proposal carries the leader's certificate for the same statement, which is
//! checked anyway, and the quorum is dropped. What is left when a view ends is summed
//! before the lock is chosen (and before replying to a restarted replica), so the lock
//! rule sees every certificate it saw before: the commit rule's argument — every honest
//! replica holds a certificate for a committed block by the time it quits — is unchanged.
//! Opt Sync's commit certificates are summed at once by the view's leader, which
//! broadcasts each (`CommitCert`); the others commit by that one, and sum a CC quorum
//! themselves if the leader's CC has not come Δ/4 after it completed, or at once when the
//! view shows trouble (an equivocation, a blame, a blame certificate — before quitting,
//! so a replica commits by every CC quorum it completed before it quit, as if it had
//! summed each at once). One pairing less per block for each of them while the leader
//! sends its CCs; a message delay more on the responsive commit, Δ/4 more when it
//! withholds them. The view's leader also holds the certificate quorum on its latest
//! block for up to Δ/10 while that block's CC completes, and justifies the next block by
//! the CC: a CC is a QC of more signers, the leader's voter half sums it anyway, and the
//! others check it once for both uses (`CommitCert` and the justify are the same bytes,
//! which the committee's verified cache recognises). A leader whose wait ran out stops
//! waiting until a CC comes in time again. A proposal that
//! reaches a replica n − 1 times (every other replica forwards it) costs one signature
//! check; it is not forwarded back to its signer, which would pay a check for nothing.
//!
//! ## Batches
//!
//! A stable leader proposes everything, but every replica's mempool batches the
//! transactions of its own clients. A leader half that does not lead the current view
//! forwards each batch it is given to the view's leader (`Batches`), which queues it
//! once (duplicates suppressed by digest). A forwarded batch reaching a replica that no
//! longer leads is passed on at most [`MAX_FORWARD_HOPS`] times, then kept; on entering
//! a view it does not lead, a leader half forwards whatever it still queues to the new
//! leader. Batches held by a replica that crashes are lost with it; clients resend what
//! does not commit. A Byzantine leader can drop forwarded batches (censorship) while
//! proposing empty blocks; the blame rules do not catch that — clients resending to
//! another replica do not help while it leads, only the next view change does.
//!
//! ## Slots and the double-vote checker
//!
//! A synchronous replica votes once per *height* of a view, not once per view. Its vote
//! slot is `(view, height)`, reported to the simulator's checker as the single number
//! `view · 2³² + height` ([`vote_slot`]): no honest replica signs two different votes for
//! one slot, and `Safety::last_vote` (persisted before the vote leaves) only grows.
//!
//! ## Crash recovery (designed here)
//!
//! The synchronous arguments assume every honest replica saw every message of the
//! current view. A replica that restarts (with only its persisted [`Safety`]) has missed
//! some, so for 2Δ it is *passive*: it broadcasts `SyncRequest`, processes everything it
//! receives, but neither votes nor commits. Every replica answers with its current view,
//! the blame certificates that took it into and out of that view, its highest QC, its
//! highest CC, and the proposals and its own votes of that view (bounded). Any message an
//! honest replica sent before the request arrived is thereby summarised in its reply, and
//! anything sent after reaches the restarted replica directly; after 2Δ it has seen
//! what it would have seen had it never crashed, so the arguments hold for it again.
//! (The simulator still counts a restarted replica against the fault budget for a short
//! grace period, covering that window.) Replies are large and requests small, so each
//! peer's requests are answered within a budget ([`crate::RequestBudget`]: a burst of
//! [`crate::contract::SYNC_REQUEST_BURST`], then one per Δ) — ample for a replica that
//! restarts, nothing for one that asks in a loop. A restarted leader half never proposes in the
//! view it restarted in, so it cannot equivocate with what it proposed before the crash.
//! The committed mark in [`Safety`] is persisted lazily (see the `contract` module): it
//! only says where a restarted replica delivers on from, so it may restart up to
//! `COMMIT_PERSIST_EVERY` blocks below what it had committed and deliver those again
//! (the engine ignores the repeats); nothing a vote depends on is persisted lazily.

use crate::blocktree::{BlockTree, CommitError};
use crate::contract::{
    take_for_block, BatchRef, Commit, Context, Dest, Event, Half, Message, ReplicaConfig,
    SignedVote, TimerId, Verified, VerifyError,
};
use crate::election::{LeaderElection, RoundRobin};
use crate::votes::Collector;
use olympus_crypto::{Committee, Keypair};
use olympus_types::{
    AggregateSignature, Batch, Block, Digest, Height, NodeId, Payload, QuorumCert, Signature,
    Statement, View,
};
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Most blocks sent in answer to one fetch.
pub const MAX_FETCH_BLOCKS: usize = 64;
/// Most proposals buffered while their ancestry is fetched or their view is not yet
/// entered.
pub const MAX_BUFFERED: usize = 128;
/// Most `(view, height, block)` statements whose votes are collected at once.
pub const MAX_COLLECTING: usize = 1024;
/// Most heights of the current view whose proposals are remembered (for equivocation
/// detection and recovery replies).
pub const MAX_VIEW_SLOTS: usize = 4096;
/// Most blocks waiting for their synchronous commit timer.
pub const MAX_PENDING_COMMITS: usize = 1024;
/// Most batch digests a leader half remembers having queued (duplicate suppression).
pub const MAX_SEEN_BATCHES: usize = 16 * 1024;
/// An honest leader's next proposal reaches a replica within 3.5Δ of its last vote
/// (votes Δ, certificate, idle pause Δ/2, proposal Δ); a replica blames after this many Δ
/// without a vote.
pub const STALL_DELTAS: u32 = 6;
/// Most batches in one forwarding message.
pub const MAX_FORWARD_BATCHES: usize = 64;
/// A forwarded batch is passed on at most this many times on receipt (a replica that
/// has moved to a later view than its sender passes it to that view's leader); after
/// that it waits in the receiver's queue until the receiver enters its next view.
pub const MAX_FORWARD_HOPS: u8 = 2;
/// Most proposals and votes in one recovery reply.
pub const MAX_SYNC_ITEMS: usize = 32;
/// Most blocks the leader half keeps (for new-view re-proposals).
pub const MAX_LEADER_BLOCKS: usize = 4096;
/// Most certificates whose block is unknown kept for later, and most certificates kept
/// for choosing a lock.
pub const MAX_KEPT_QCS: usize = 256;
/// Most views whose statuses a leader keeps.
pub const MAX_STATUS_VIEWS: usize = 4;

// Voter timers.
const BLAME_TIMER: TimerId = TimerId(1);
const QUIT_TIMER: TimerId = TimerId(2);
const RESYNC_TIMER: TimerId = TimerId(3);
const CC_TIMER: TimerId = TimerId(4);
/// A replica that does not lead the view sums a commit-certificate quorum itself when the
/// leader's CC has not come within Δ / this.
const CC_WAIT_DIVISOR: u32 = 4;
const COMMIT_TIMER_BASE: u64 = 1 << 32;
// Leader timers.
const ENTER_TIMER: TimerId = TimerId(1);
const NEW_VIEW_TIMER: TimerId = TimerId(2);
const IDLE_TIMER: TimerId = TimerId(3);
const JUSTIFY_TIMER: TimerId = TimerId(4);
/// Opt Sync: a leader whose certificate quorum for its latest block is complete waits up
/// to Δ / this for the commit certificate before proposing on the smaller quorum.
const JUSTIFY_WAIT_DIVISOR: u32 = 10;

/// The rank of a certificate: view, then height.
pub fn rank(qc: &QuorumCert) -> (View, Height) {
    (qc.view, qc.height)
}

/// The vote slot `(view, height)` as one number for [`SignedVote::view`].
pub fn vote_slot(view: View, height: Height) -> u64 {
    (view << 32) | (height & 0xffff_ffff)
}

/// f for n = 2f+1.
pub fn f_of(n: usize) -> usize {
    n.saturating_sub(1) / 2
}

/// Certificate threshold f+1.
pub fn quorum(n: usize) -> usize {
    f_of(n) + 1
}

/// Opt Sync's responsive commit threshold ⌊3n/4⌋+1.
pub fn cc_quorum(n: usize) -> usize {
    3 * n / 4 + 1
}

fn leader_of(view: View, n: usize) -> NodeId {
    RoundRobin { n }.leader(view)
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// A leader's signed proposal for `view`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Proposal {
    pub view: View,
    /// The proposed block; for a re-proposal, the certified block itself.
    pub block: Block,
    /// New-view re-proposal: a QC on `block` from an earlier view.
    pub reproposal: Option<QuorumCert>,
    /// Opt Sync new-view only: the highest CC of view `view − 1` the leader knows.
    pub cc: Option<QuorumCert>,
    /// `leader(view)`'s signature on [`proposal_statement`].
    pub signature: Signature,
}

impl Proposal {
    pub fn height(&self) -> Height {
        self.block.height
    }
}

/// A vote for `block` at `(view, height)`, broadcast to everybody.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Vote {
    pub view: View,
    pub height: Height,
    pub block: Digest,
    pub voter: NodeId,
    pub signature: Signature,
}

/// Two leader-signed proposals for one `(view, height)` with different blocks.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Equivocation {
    pub a: Proposal,
    pub b: Proposal,
}

/// A signed blame of `view`'s leader.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Blame {
    pub view: View,
    pub sender: NodeId,
    pub signature: Signature,
    pub proof: Option<Box<Equivocation>>,
}

/// f+1 blames for `view` from distinct replicas.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct BlameCert {
    pub view: View,
    pub sig: AggregateSignature,
}

/// What a replica tells the leader of the view it enters.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Status {
    pub view: View,
    pub lock: QuorumCert,
    /// Opt Sync: the highest CC of view `view − 1` the replica knows.
    pub cc: Option<QuorumCert>,
}

/// A recovery reply (see the module docs).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SyncReply {
    pub view: View,
    /// The blame certificate for `view − 1` that took the sender into `view`.
    pub entered_by: Option<BlameCert>,
    /// The blame certificate for `view`, if the sender has quit it.
    pub quit: Option<BlameCert>,
    pub high_qc: QuorumCert,
    pub high_block: Option<Block>,
    pub cc: Option<QuorumCert>,
    pub proposals: Vec<Proposal>,
    /// The sender's own votes in `view`.
    pub votes: Vec<Vote>,
    pub blame: Option<Blame>,
}

/// The synchronous family's messages.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum SyncMsg {
    Propose(Box<Proposal>),
    Vote(Vote),
    Blame(Blame),
    BlameCert(BlameCert),
    Status(Status),
    CommitCert(QuorumCert),
    Fetch(Digest),
    Blocks(Vec<Block>),
    SyncRequest,
    SyncReply(Box<SyncReply>),
    /// Client batches a replica's mempool gave its leader half while another replica
    /// leads the view: forwarded to the view's leader, which proposes them (see
    /// "Batches" in the module docs). `hops` counts the forwards so far.
    Batches {
        hops: u8,
        batches: Vec<Batch>,
    },
}

impl Message for SyncMsg {
    fn dest(&self) -> Dest {
        match self {
            SyncMsg::Propose(_)
            | SyncMsg::Vote(_)
            | SyncMsg::Blame(_)
            | SyncMsg::BlameCert(_)
            | SyncMsg::CommitCert(_) => Dest::Both,
            SyncMsg::Status(_) | SyncMsg::Batches { .. } => Dest::Leader,
            SyncMsg::Fetch(_)
            | SyncMsg::Blocks(_)
            | SyncMsg::SyncRequest
            | SyncMsg::SyncReply(_) => Dest::Voter,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            SyncMsg::Propose(_) => "propose",
            SyncMsg::Vote(_) => "vote",
            SyncMsg::Blame(_) => "blame",
            SyncMsg::BlameCert(_) => "blame_cert",
            SyncMsg::Status(_) => "status",
            SyncMsg::CommitCert(_) => "commit_cert",
            SyncMsg::Fetch(_) => "fetch",
            SyncMsg::Blocks(_) => "blocks",
            SyncMsg::SyncRequest => "sync_request",
            SyncMsg::SyncReply(_) => "sync_reply",
            SyncMsg::Batches { .. } => "batches",
        }
    }
    fn signed_vote(&self) -> Option<SignedVote> {
        match self {
            SyncMsg::Vote(v) => Some(SignedVote {
                signer: v.voter,
                view: vote_slot(v.view, v.height),
                block: v.block,
            }),
            _ => None,
        }
    }
}

/// What the voter persists before a vote leaves (and when it quits or enters a view).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Safety {
    /// The view the replica is in.
    pub view: View,
    /// Highest view it quit: it never votes in a view at or below it.
    pub quit_view: View,
    /// Highest vote slot `(view, height)` it voted in.
    pub last_vote: (View, Height),
    /// The lock: a new-view re-proposal must rank at least as high (see the docs).
    pub lock: QuorumCert,
    /// Opt Sync: the highest CC of view `view − 1` known when entering `view`.
    pub cc_prev: Option<QuorumCert>,
    /// The last committed block (digest, height, view).
    pub committed: (Digest, Height, View),
}

// ---------------------------------------------------------------------------------------
// Statements and the stateless verifier
// ---------------------------------------------------------------------------------------

pub fn vote_statement(view: View, height: Height, block: &Digest) -> Digest {
    Statement::new("sync/vote")
        .u64(view)
        .u64(height)
        .digest(block)
        .finish()
}

pub fn proposal_statement(view: View, block: &Digest) -> Digest {
    Statement::new("sync/proposal")
        .u64(view)
        .digest(block)
        .finish()
}

pub fn blame_statement(view: View) -> Digest {
    Statement::new("sync/blame").u64(view).finish()
}

fn bad_cert(what: &str, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::BadCertificate(format!("{what}: {e}"))
}

/// Verifies a QC (f+1 distinct signers) or, with `threshold`, a CC.
pub fn verify_qc_with(
    qc: &QuorumCert,
    committee: &Committee,
    threshold: usize,
) -> Result<(), VerifyError> {
    if qc.is_genesis() {
        return Ok(());
    }
    if qc.view == 0 {
        return Err(VerifyError::BadCertificate(
            "non-genesis QC at view 0".into(),
        ));
    }
    committee
        .verify_aggregate(
            &vote_statement(qc.view, qc.height, &qc.block),
            &qc.sig,
            threshold,
        )
        .map_err(|e| bad_cert("QC", e))
}

pub fn verify_qc(qc: &QuorumCert, committee: &Committee) -> Result<(), VerifyError> {
    verify_qc_with(qc, committee, quorum(committee.size()))
}

fn verify_cc(cc: &QuorumCert, committee: &Committee) -> Result<(), VerifyError> {
    if cc.is_genesis() {
        return Err(VerifyError::BadCertificate("genesis is not a CC".into()));
    }
    verify_qc_with(cc, committee, cc_quorum(committee.size()))
}

fn malformed(s: &str) -> VerifyError {
    VerifyError::Malformed(s.to_string())
}

/// A block's own structure: within limits, extends its justify QC, verified QC.
fn verify_block(block: &Block, committee: &Committee) -> Result<(), VerifyError> {
    if block.is_genesis() {
        return Ok(());
    }
    block
        .validate()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if block.proposer.index() >= committee.size() {
        return Err(malformed("unknown proposer"));
    }
    if block.parent != block.justify.block || block.height != block.justify.height + 1 {
        return Err(malformed("block does not extend its justify QC"));
    }
    if block.view < block.justify.view || block.view == 0 {
        return Err(malformed("block view below its justify view"));
    }
    verify_qc(&block.justify, committee)
}

fn verify_proposal(p: &Proposal, committee: &Committee) -> Result<(), VerifyError> {
    let n = committee.size();
    let digest = p.block.digest();
    verify_block(&p.block, committee)?;
    match &p.reproposal {
        Some(c) => {
            if c.block != digest || c.height != p.block.height {
                return Err(malformed("re-proposal QC is not on the block"));
            }
            if c.view >= p.view || (!p.block.is_genesis() && c.view < p.block.view) {
                return Err(malformed("re-proposal QC not from an earlier view"));
            }
            verify_qc(c, committee)?;
            if let Some(cc) = &p.cc {
                if cc.view + 1 != p.view {
                    return Err(malformed("new-view CC not from the previous view"));
                }
                verify_cc(cc, committee)?;
            }
        }
        None => {
            if p.block.is_genesis()
                || p.block.view != p.view
                || p.block.justify.view != p.view
                || p.block.proposer != leader_of(p.view, n)
            {
                return Err(malformed(
                    "steady proposal must be the leader's block of its view on a QC of its view",
                ));
            }
            if p.cc.is_some() {
                return Err(malformed("CC on a steady proposal"));
            }
        }
    }
    committee
        .verify(
            leader_of(p.view, n),
            &proposal_statement(p.view, &digest),
            &p.signature,
        )
        .map_err(|_| VerifyError::BadSignature(leader_of(p.view, n)))
}

/// [`Protocol::claims`](crate::Protocol::claims) for both protocols: a proposal's
/// leader signature and the certificate its block carries (votes are checked by
/// aggregation).
pub fn claims(msg: &SyncMsg, committee: &Committee, out: &mut Vec<crate::Claim>) {
    if let SyncMsg::Propose(p) = msg {
        let statement = proposal_statement(p.view, &p.block.digest());
        out.push(crate::Claim::Single(
            leader_of(p.view, committee.size()),
            statement,
            p.signature,
        ));
        // The certificate it carries: a voter checks both on every block, and in one
        // batch they cost about half as much.
        let j = &p.block.justify;
        if !p.block.is_genesis() && !j.is_genesis() {
            out.push(crate::Claim::Certificate(
                vote_statement(j.view, j.height, &j.block),
                j.sig,
            ));
        }
    }
}

fn verify_vote(v: &Vote, committee: &Committee) -> Result<(), VerifyError> {
    committee
        .verify(
            v.voter,
            &vote_statement(v.view, v.height, &v.block),
            &v.signature,
        )
        .map_err(|_| VerifyError::BadSignature(v.voter))
}

fn verify_blame(b: &Blame, committee: &Committee) -> Result<(), VerifyError> {
    committee
        .verify(b.sender, &blame_statement(b.view), &b.signature)
        .map_err(|_| VerifyError::BadSignature(b.sender))?;
    if let Some(e) = &b.proof {
        if e.a.view != b.view
            || e.b.view != b.view
            || e.a.height() != e.b.height()
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
        .map_err(|e| bad_cert("blame certificate", e))
}

/// The stateless verifier shared by the synchronous protocols.
pub fn verify(
    msg: SyncMsg,
    from: NodeId,
    committee: &Committee,
) -> Result<Verified<SyncMsg>, VerifyError> {
    match &msg {
        SyncMsg::Propose(p) => verify_proposal(p, committee)?,
        SyncMsg::Vote(v) => {
            // The signature is checked when a quorum is aggregated (`aggregate_qc`): one
            // pairing per certificate instead of one per vote. A vote is only ever used
            // inside a certificate, so a bad one costs its sender nothing but the slot.
            if v.voter != from {
                return Err(VerifyError::WrongSender {
                    sender: from,
                    signer: v.voter,
                });
            }
            if committee.public(v.voter).is_none() {
                return Err(VerifyError::BadSignature(v.voter));
            }
        }
        SyncMsg::Blame(b) => verify_blame(b, committee)?,
        SyncMsg::BlameCert(c) => verify_blame_cert(c, committee)?,
        SyncMsg::Status(s) => {
            if s.lock.view >= s.view {
                return Err(malformed("status lock not below its view"));
            }
            verify_qc(&s.lock, committee)?;
            if let Some(cc) = &s.cc {
                if cc.view + 1 != s.view {
                    return Err(malformed("status CC not from the previous view"));
                }
                verify_cc(cc, committee)?;
            }
        }
        SyncMsg::CommitCert(cc) => verify_cc(cc, committee)?,
        SyncMsg::Fetch(_) | SyncMsg::SyncRequest => {}
        SyncMsg::Batches { batches, .. } => {
            if batches.is_empty() || batches.len() > MAX_FORWARD_BATCHES {
                return Err(malformed("forwarded batches: empty or too many"));
            }
            for b in batches {
                b.validate()
                    .map_err(|e| VerifyError::Malformed(format!("forwarded batch: {e}")))?;
            }
        }
        SyncMsg::Blocks(blocks) => {
            if blocks.len() > MAX_FETCH_BLOCKS {
                return Err(malformed("too many blocks"));
            }
            for b in blocks {
                verify_block(b, committee)?;
            }
        }
        SyncMsg::SyncReply(r) => {
            if r.proposals.len() > MAX_SYNC_ITEMS || r.votes.len() > MAX_SYNC_ITEMS {
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
            verify_qc(&r.high_qc, committee)?;
            if let Some(b) = &r.high_block {
                if b.digest() != r.high_qc.block {
                    return Err(malformed("high block is not the high QC's"));
                }
                verify_block(b, committee)?;
            }
            if let Some(cc) = &r.cc {
                verify_cc(cc, committee)?;
            }
            for p in &r.proposals {
                verify_proposal(p, committee)?;
            }
            for v in &r.votes {
                if v.voter != from {
                    return Err(malformed("recovery reply carries another's vote"));
                }
                verify_vote(v, committee)?;
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

type Cx = Context<SyncMsg, Safety>;

/// Aggregates a quorum of votes whose signatures were not checked on arrival (see
/// [`verify`]): one pairing check of the sum — none when the other half of this replica
/// already checked the same sum (the committee's verified cache) — and only if it fails,
/// a bisection to the bad votes. Returns the certificate, or the good votes to put back
/// into the collection when some were bad.
fn aggregate_qc(
    committee: &Committee,
    (view, height, block): (View, Height, Digest),
    votes: Vec<(NodeId, Signature)>,
) -> Result<QuorumCert, Vec<(NodeId, Signature)>> {
    let (sig, bad) = committee.aggregate(&vote_statement(view, height, &block), &votes);
    if !bad.is_empty() {
        return Err(votes
            .into_iter()
            .filter(|(id, _)| !bad.contains(id))
            .collect());
    }
    Ok(QuorumCert {
        view,
        height,
        block,
        sig,
    })
}

const BAD_VOTE: Event = Event::Ignored {
    kind: "vote",
    reason: "bad signature",
};

type VoteKey = (View, Height, Digest);

/// Sums the quorum `q` of `key` into a certificate. Bad votes are dropped and the quorum
/// is completed from the votes that arrived since, while enough are left; `None` when too
/// few good ones are (the collection is open again and yields once more arrive).
fn certify(
    committee: &Committee,
    votes: &mut Collector<VoteKey, Signature>,
    key: VoteKey,
    mut q: Vec<(NodeId, Signature)>,
    cx: &mut Cx,
) -> Option<QuorumCert> {
    loop {
        match aggregate_qc(committee, key, q) {
            Ok(qc) => {
                cx.event(Event::CertificateFormed {
                    view: key.0,
                    block: key.2,
                });
                return Some(qc);
            }
            Err(good) => {
                cx.event(BAD_VOTE);
                q = votes.reopen(&key, good)?;
            }
        }
    }
}

/// Quorums of votes a half collected but has not summed (see "Votes are checked by
/// aggregation"): the next proposal normally brings the leader's certificate for the same
/// statement, checked anyway, and then the quorum is dropped unsummed. What is left is
/// summed when a view ends, before the lock is chosen ([`Unsummed::take`]). Bounded: the
/// lowest-ranked go first.
#[derive(Debug, Default)]
struct Unsummed(BTreeMap<VoteKey, (Duration, Vec<(NodeId, Signature)>)>);

impl Unsummed {
    /// Keeps the quorum of `key`, completed at `now`.
    fn keep(&mut self, key: VoteKey, votes: Vec<(NodeId, Signature)>, now: Duration) {
        self.0.insert(key, (now, votes));
        while self.0.len() > MAX_COLLECTING {
            self.0.pop_first();
        }
    }

    /// A certificate for `qc`'s statement is held: its quorum need not be summed.
    fn certified(&mut self, qc: &QuorumCert) {
        self.0.remove(&(qc.view, qc.height, qc.block));
    }

    /// Sums the quorums completed at or before `cutoff` (all of them with `None`) into
    /// certificates, and forgets them (see [`certify`] for bad votes).
    fn sum(
        &mut self,
        cutoff: Option<Duration>,
        committee: &Committee,
        votes: &mut Collector<VoteKey, Signature>,
        cx: &mut Cx,
    ) -> Vec<QuorumCert> {
        let due: Vec<VoteKey> = self
            .0
            .iter()
            .filter(|(_, (t, _))| cutoff.is_none_or(|c| *t <= c))
            .map(|(k, _)| *k)
            .collect();
        due.into_iter()
            .filter_map(|k| {
                let (_, q) = self.0.remove(&k)?;
                certify(committee, votes, k, q, cx)
            })
            .collect()
    }

    /// When the oldest quorum kept was completed.
    fn oldest(&self) -> Option<Duration> {
        self.0.values().map(|(t, _)| *t).min()
    }
}

// ---------------------------------------------------------------------------------------
// Leader half
// ---------------------------------------------------------------------------------------

/// The leader half: proposes (new-view re-proposals and steady-state blocks), forms
/// certificates from the broadcast votes to know when to propose the next block, and
/// follows the views through blame certificates.
pub struct Leader {
    id: NodeId,
    n: usize,
    opt: bool,
    delta: Duration,
    key: Arc<Keypair>,
    committee: Arc<Committee>,
    cfg: ReplicaConfig,
    view: View,
    quitting: bool,
    /// After a restart: never propose in a view at or below this one.
    passive_through: View,
    /// Height of this view's latest proposal (0: none yet).
    proposed_height: Height,
    proposed_new_view: bool,
    /// A QC of this view on the latest proposal: the next block extends it.
    ready: Option<QuorumCert>,
    /// Opt Sync: the unsummed certificate quorum on the latest proposal, held while the
    /// commit certificate for it may still come (see [`Leader::holds_for_cc`]).
    held: Option<(VoteKey, Vec<(NodeId, Signature)>)>,
    /// Opt Sync: whether the last wait for a commit certificate ended by the CC (a leader
    /// stops waiting after one that did not, until a CC comes again).
    cc_in_time: bool,
    votes: Collector<(View, Height, Digest), Signature>,
    /// Quorums of views this half does not lead, summed only when a view ends.
    unsummed: Unsummed,
    blames: Collector<View, Signature>,
    statuses: BTreeMap<View, BTreeMap<NodeId, Status>>,
    blocks: HashMap<Digest, Arc<Block>>,
    block_order: VecDeque<Digest>,
    /// Parent links of every block seen (bounded like `blocks`), for ancestry checks.
    parents: HashMap<Digest, (Digest, Height)>,
    high_qc: QuorumCert,
    /// The highest CC seen per view (the last few views).
    ccs: BTreeMap<View, QuorumCert>,
    pending: VecDeque<BatchRef>,
    /// Digests of the batches queued here lately (bounded): a forwarded batch that
    /// arrives twice (a duplicating network, a resend) is queued once.
    seen_batches: HashSet<Digest>,
    seen_order: VecDeque<Digest>,
}

impl Leader {
    pub fn new(
        cfg: &ReplicaConfig,
        opt: bool,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<&Safety>,
    ) -> Self {
        let (view, passive_through) = match restored {
            Some(s) => (s.view, s.view),
            None => (1, 0),
        };
        Leader {
            id: cfg.id,
            n: cfg.n,
            opt,
            delta: cfg.delta,
            key,
            committee,
            cfg: cfg.clone(),
            view,
            quitting: restored.is_some_and(|s| s.quit_view >= s.view),
            passive_through,
            proposed_height: 0,
            proposed_new_view: false,
            ready: None,
            held: None,
            cc_in_time: true,
            votes: Collector::new(quorum(cfg.n), MAX_COLLECTING),
            unsummed: Unsummed::default(),
            blames: Collector::new(quorum(cfg.n), MAX_COLLECTING),
            statuses: BTreeMap::new(),
            blocks: HashMap::new(),
            block_order: VecDeque::new(),
            parents: HashMap::new(),
            high_qc: QuorumCert::genesis(),
            ccs: BTreeMap::new(),
            pending: VecDeque::new(),
            seen_batches: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    fn leads(&self, view: View) -> bool {
        leader_of(view, self.n) == self.id && view > self.passive_through
    }

    /// Whether batches given to this half stay here: it is the current view's leader.
    fn keeps_batches(&self) -> bool {
        leader_of(self.view, self.n) == self.id
    }

    /// Sends `batches` to the current view's leader, `hops` being the forwards so far.
    fn forward(&self, hops: u8, batches: Vec<Batch>, cx: &mut Cx) {
        let to = leader_of(self.view, self.n);
        for chunk in batches.chunks(MAX_FORWARD_BATCHES) {
            cx.send(
                to,
                SyncMsg::Batches {
                    hops,
                    batches: chunk.to_vec(),
                },
            );
        }
    }

    /// Queues `batch` for proposing; false when the queue is full. A batch queued here
    /// lately is not queued again.
    fn enqueue(&mut self, batch: BatchRef, cx: &mut Cx) -> bool {
        if self.pending.len() >= self.cfg.max_pending_batches {
            return false;
        }
        if !self.seen_batches.insert(batch.digest) {
            return true;
        }
        self.seen_order.push_back(batch.digest);
        if self.seen_order.len() > MAX_SEEN_BATCHES {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_batches.remove(&old);
            }
        }
        self.pending.push_back(batch);
        if let Some(qc) = self.ready {
            if !self.quitting && qc.view == self.view {
                self.propose_block(qc, cx);
            }
        }
        true
    }

    /// Sums the quorums left unsummed (see [`Unsummed`]), and a held one.
    fn settle(&mut self, cx: &mut Cx) {
        self.release_held(cx);
        for qc in self
            .unsummed
            .sum(None, &self.committee, &mut self.votes, cx)
        {
            self.on_qc(qc, cx);
        }
    }

    fn remember(&mut self, block: &Block) {
        let d = block.digest();
        if self.blocks.contains_key(&d) {
            return;
        }
        if self.block_order.len() >= MAX_LEADER_BLOCKS {
            if let Some(old) = self.block_order.pop_front() {
                self.blocks.remove(&old);
                self.parents.remove(&old);
            }
        }
        self.block_order.push_back(d);
        self.parents.insert(d, (block.parent, block.height));
        self.blocks.insert(d, Arc::new(block.clone()));
    }

    /// Whether `desc` is `anc` or descends from it, by the blocks this half has seen.
    fn extends(&self, desc: &Digest, anc: &Digest, anc_height: Height) -> bool {
        let mut cur = *desc;
        loop {
            if cur == *anc {
                return true;
            }
            match self.parents.get(&cur) {
                Some((p, h)) if *h > anc_height => cur = *p,
                _ => return false,
            }
        }
    }

    fn on_qc(&mut self, qc: QuorumCert, cx: &mut Cx) {
        self.unsummed.certified(&qc);
        if self
            .held
            .as_ref()
            .is_some_and(|(k, _)| *k == (qc.view, qc.height, qc.block))
        {
            // The CC came: the held quorum is not needed.
            self.take_held(cx);
        }
        if rank(&qc) > rank(&self.high_qc) {
            self.high_qc = qc;
        }
        if qc.view == self.view
            && !self.quitting
            && self.leads(self.view)
            && qc.height >= self.proposed_height
            && self.proposed_new_view
        {
            self.ready = Some(qc);
            self.propose_next(cx);
        }
    }

    /// Proposes the next steady block on `ready`: at once when batches wait, otherwise
    /// after an idle pause of Δ/2 (well inside the 2Δ per proposal the blame rule
    /// allows), so an idle leader does not spin out empty blocks at network speed.
    fn propose_next(&mut self, cx: &mut Cx) {
        let Some(qc) = self.ready else { return };
        if self.pending.is_empty() {
            cx.set_timer(IDLE_TIMER, self.delta / 2);
            return;
        }
        self.propose_block(qc, cx);
    }

    /// Opt Sync (designed here, for cost): whether to hold the certificate quorum that
    /// just completed for `key` instead of summing it at once. The commit certificate of
    /// the same block usually completes a moment later, and the voter half of this
    /// replica sums it anyway (the view's leader commits by it and broadcasts it); the
    /// next block justified by that CC rather than by the smaller quorum saves this
    /// replica one pairing, and every other one the separate check of the certificate:
    /// the proposal carries the very CC they check when it comes as `CommitCert` (the
    /// committee's verified cache). A CC is a QC of more signers, so nothing in the rules
    /// changes. The wait is bounded by Δ / [`JUSTIFY_WAIT_DIVISOR`], and skipped after a
    /// wait that ran out until a CC comes again (a crashed replica leaves every CC
    /// incomplete).
    fn holds_for_cc(&self, key: &VoteKey) -> bool {
        self.opt
            && self.cc_in_time
            && cc_quorum(self.n) > quorum(self.n)
            && key.0 == self.view
            && !self.quitting
            && key.1 >= self.proposed_height
    }

    /// The held quorum (see [`Leader::holds_for_cc`]), no longer waited for.
    fn take_held(&mut self, cx: &mut Cx) -> Option<(VoteKey, Vec<(NodeId, Signature)>)> {
        let held = self.held.take();
        if held.is_some() {
            cx.cancel_timer(JUSTIFY_TIMER);
        }
        held
    }

    /// Sums the held quorum, if any, and goes on with it.
    fn release_held(&mut self, cx: &mut Cx) {
        if let Some((key, q)) = self.take_held(cx) {
            if let Some(qc) = certify(&self.committee, &mut self.votes, key, q, cx) {
                self.on_qc(qc, cx);
            }
        }
    }

    fn propose_block(&mut self, qc: QuorumCert, cx: &mut Cx) {
        self.ready = None;
        self.take_held(cx);
        cx.cancel_timer(IDLE_TIMER);
        let batches = take_for_block(&mut self.pending, &self.cfg);
        let count = batches.len();
        let block = Block {
            parent: qc.block,
            view: self.view,
            height: qc.height + 1,
            proposer: self.id,
            justify: qc,
            payload: Payload::Inline(batches.iter().map(|b| (*b.batch).clone()).collect()),
        };
        let digest = block.digest();
        self.proposed_height = block.height;
        cx.event(Event::Proposed {
            view: self.view,
            height: block.height,
            block: digest,
            batches: count,
        });
        let signature = self.key.sign(&proposal_statement(self.view, &digest));
        self.remember(&block);
        cx.broadcast(SyncMsg::Propose(Box::new(Proposal {
            view: self.view,
            block,
            reproposal: None,
            cc: None,
            signature,
        })));
    }

    /// The new-view re-proposal: the highest CC of the previous view among the statuses
    /// (Opt Sync), and the highest-ranked lock that extends it (or any lock without one).
    fn propose_new_view(&mut self, cx: &mut Cx) {
        if self.proposed_new_view || self.quitting || !self.leads(self.view) {
            return;
        }
        let view = self.view;
        let statuses: Vec<Status> = self
            .statuses
            .get(&view)
            .map(|m| m.values().copied().collect())
            .unwrap_or_default();
        let mut cc: Option<QuorumCert> = if self.opt {
            self.ccs.get(&(view - 1)).copied()
        } else {
            None
        };
        for s in &statuses {
            if let Some(c) = s.cc {
                if self.opt && cc.is_none_or(|x| rank(&c) > rank(&x)) {
                    cc = Some(c);
                }
            }
        }
        let mut candidates: Vec<QuorumCert> = statuses.iter().map(|s| s.lock).collect();
        candidates.push(self.high_qc);
        if let Some(c) = cc {
            candidates.push(c);
        }
        candidates.sort_by_key(|q| std::cmp::Reverse(rank(q)));
        let genesis = Block::genesis_digest();
        let chosen = candidates.into_iter().find(|q| {
            q.view < view
                && (q.block == genesis || self.blocks.contains_key(&q.block))
                && cc.is_none_or(|c| self.extends(&q.block, &c.block, c.height))
        });
        let Some(qc) = chosen else {
            cx.event(Event::Ignored {
                kind: "new_view",
                reason: "no re-proposable certificate known",
            });
            return;
        };
        let block = if qc.block == genesis {
            Block::genesis()
        } else {
            match self.blocks.get(&qc.block) {
                Some(b) => (**b).clone(),
                None => return,
            }
        };
        self.proposed_new_view = true;
        self.proposed_height = qc.height;
        let digest = block.digest();
        let signature = self.key.sign(&proposal_statement(view, &digest));
        cx.event(Event::Proposed {
            view,
            height: qc.height,
            block: digest,
            batches: 0,
        });
        cx.broadcast(SyncMsg::Propose(Box::new(Proposal {
            view,
            block,
            reproposal: Some(qc),
            cc,
            signature,
        })));
    }

    fn on_blame_cert(&mut self, c: BlameCert, cx: &mut Cx) {
        if c.view < self.view || (c.view == self.view && self.quitting) {
            return;
        }
        self.view = c.view;
        self.quitting = true;
        self.ready = None;
        cx.cancel_timer(IDLE_TIMER);
        cx.cancel_timer(NEW_VIEW_TIMER);
        cx.set_timer(ENTER_TIMER, self.delta * 2);
    }
}

impl Half<SyncMsg, Safety> for Leader {
    fn on_start(&mut self, cx: &mut Cx) {
        if self.view == 1 && self.leads(1) {
            // View 1 starts with the re-proposal of genesis, at once.
            self.propose_new_view(cx);
        }
        if self.quitting {
            cx.set_timer(ENTER_TIMER, self.delta * 2);
        }
    }

    fn on_message(&mut self, _from: NodeId, msg: Verified<SyncMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            SyncMsg::Propose(p) => {
                if !p.block.is_genesis() {
                    self.remember(&p.block);
                }
                if let Some(c) = p.reproposal {
                    self.on_qc(c, cx);
                }
                if !p.block.is_genesis() {
                    self.on_qc(p.block.justify, cx);
                }
            }
            SyncMsg::Vote(v) => {
                if v.view < self.view {
                    return;
                }
                let key = (v.view, v.height, v.block);
                if let Some(q) = self.votes.add(key, v.voter, v.signature) {
                    // The leader needs the certificate to propose the next block; any
                    // other leader half gets it with that proposal.
                    if self.leads(key.0) && self.holds_for_cc(&key) {
                        self.held = Some((key, q));
                        cx.set_timer(JUSTIFY_TIMER, self.delta / JUSTIFY_WAIT_DIVISOR);
                    } else if self.leads(key.0) {
                        if let Some(qc) = certify(&self.committee, &mut self.votes, key, q, cx) {
                            self.on_qc(qc, cx);
                        }
                    } else {
                        self.unsummed.keep(key, q, Duration::ZERO);
                    }
                }
            }
            SyncMsg::Blame(b) => {
                if b.view < self.view {
                    return;
                }
                if let Some(q) = self.blames.add(b.view, b.sender, b.signature) {
                    let c = BlameCert {
                        view: b.view,
                        sig: self.committee.aggregate_unchecked(&q),
                    };
                    self.on_blame_cert(c, cx);
                }
            }
            SyncMsg::BlameCert(c) => self.on_blame_cert(c, cx),
            SyncMsg::Batches { hops, batches } => {
                if !self.keeps_batches() && hops < MAX_FORWARD_HOPS {
                    self.forward(hops + 1, batches, cx);
                    return;
                }
                let mut dropped = false;
                for b in batches {
                    dropped |= !self.enqueue(BatchRef::new(b), cx);
                }
                if dropped {
                    cx.event(Event::Ignored {
                        kind: "batches",
                        reason: "leader queue full",
                    });
                }
            }
            SyncMsg::Status(s) => {
                if s.view < self.view {
                    return;
                }
                self.statuses.entry(s.view).or_default().insert(_from, s);
                while self.statuses.len() > MAX_STATUS_VIEWS {
                    self.statuses.pop_first();
                }
                if rank(&s.lock) > rank(&self.high_qc) {
                    self.high_qc = s.lock;
                }
            }
            SyncMsg::CommitCert(cc) => {
                if cc.view == self.view {
                    self.cc_in_time = true;
                }
                let e = self.ccs.entry(cc.view).or_insert(cc);
                if rank(&cc) > rank(e) {
                    *e = cc;
                }
                while self.ccs.len() > MAX_STATUS_VIEWS {
                    self.ccs.pop_first();
                }
                self.on_qc(cc, cx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        match id {
            ENTER_TIMER => {
                if !self.quitting {
                    return;
                }
                self.settle(cx);
                self.view += 1;
                self.quitting = false;
                self.proposed_height = 0;
                self.proposed_new_view = false;
                self.ready = None;
                self.cc_in_time = true;
                self.votes.prune_below(&(self.view, 0, Digest::ZERO));
                self.blames.prune_below(&self.view);
                if !self.keeps_batches() && !self.pending.is_empty() {
                    // Passed on, not proposed here: should they come back, they are new.
                    let queued: Vec<Batch> = self
                        .pending
                        .drain(..)
                        .map(|b| {
                            self.seen_batches.remove(&b.digest);
                            (*b.batch).clone()
                        })
                        .collect();
                    self.forward(0, queued, cx);
                }
                if self.leads(self.view) {
                    // Wait 2Δ so that every honest replica's status has arrived.
                    cx.set_timer(NEW_VIEW_TIMER, self.delta * 2);
                }
            }
            NEW_VIEW_TIMER => self.propose_new_view(cx),
            // The CC did not come in time: propose on the smaller quorum.
            JUSTIFY_TIMER if self.held.is_some() => {
                self.cc_in_time = false;
                self.release_held(cx);
            }
            IDLE_TIMER => {
                if let Some(qc) = self.ready {
                    if !self.quitting && qc.view == self.view {
                        self.propose_block(qc, cx);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_batch(&mut self, batch: BatchRef, cx: &mut Cx) -> bool {
        if self.keeps_batches() {
            return self.enqueue(batch, cx);
        }
        self.forward(0, vec![(*batch.batch).clone()], cx);
        true
    }
}

// ---------------------------------------------------------------------------------------
// Voter half
// ---------------------------------------------------------------------------------------

/// The voter half: the vote rules, equivocation detection, blame and quit-view, the
/// view change, the synchronous (2Δ) commit and — in Opt Sync — the responsive commit.
pub struct Voter {
    id: NodeId,
    n: usize,
    opt: bool,
    delta: Duration,
    key: Arc<Keypair>,
    committee: Arc<Committee>,
    safety: Safety,
    /// Quit the current view; entering the next one when [`QUIT_TIMER`] fires.
    quitting: bool,
    quit_cert: Option<BlameCert>,
    entered_by: Option<BlameCert>,
    tree: BlockTree,
    high_qc: QuorumCert,
    /// Certificates seen with a known block, for choosing the lock (bounded).
    certs: BTreeMap<(View, Height, Digest), QuorumCert>,
    /// Certificates whose block is not known yet (bounded).
    waiting_qcs: VecDeque<QuorumCert>,
    /// Highest CC of the current view.
    cc_cur: Option<QuorumCert>,
    // State of the current view.
    slots: BTreeMap<Height, Digest>,
    props: BTreeMap<Height, Proposal>,
    equivocated: bool,
    my_blame: Option<Blame>,
    last_voted_block: Option<(Height, Digest)>,
    my_votes: VecDeque<Vote>,
    votes_in_view: u32,
    view_start: Duration,
    /// When this replica last voted in the current view.
    last_vote_at: Duration,
    pending_commits: BTreeMap<Height, Digest>,
    // Collections.
    votes: Collector<(View, Height, Digest), Signature>,
    /// Quorums summed only when needed (see [`Unsummed`]).
    unsummed: Unsummed,
    cc_votes: Collector<(View, Height, Digest), Signature>,
    /// Commit-certificate quorums of a view this replica does not lead: its leader sums
    /// them and broadcasts the CC; what is left is summed when the view ends.
    cc_unsummed: Unsummed,
    blames: Collector<View, Signature>,
    buffered: BTreeMap<(View, Height, Digest), (NodeId, Proposal)>,
    requested: HashSet<Digest>,
    /// Restarted: passive (no votes, no commits) until the resync timer fires.
    passive: bool,
    restarted: bool,
    now: Duration,
    /// Answers to sync requests, per peer (see [`crate::RequestBudget`]).
    sync_budget: crate::RequestBudget,
}

impl Voter {
    pub fn new(
        cfg: &ReplicaConfig,
        opt: bool,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> Self {
        let restarted = restored.is_some();
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
                    last_vote: (0, 0),
                    lock: QuorumCert::genesis(),
                    cc_prev: None,
                    committed: t.committed(),
                };
                (t, s)
            }
        };
        Voter {
            id: cfg.id,
            n: cfg.n,
            opt,
            delta: cfg.delta,
            key,
            committee,
            quitting: safety.quit_view >= safety.view,
            quit_cert: None,
            entered_by: None,
            tree,
            high_qc: safety.lock,
            certs: BTreeMap::new(),
            waiting_qcs: VecDeque::new(),
            cc_cur: None,
            slots: BTreeMap::new(),
            props: BTreeMap::new(),
            equivocated: false,
            my_blame: None,
            last_voted_block: None,
            my_votes: VecDeque::new(),
            votes_in_view: 0,
            view_start: Duration::ZERO,
            last_vote_at: Duration::ZERO,
            pending_commits: BTreeMap::new(),
            votes: Collector::new(quorum(cfg.n), MAX_COLLECTING),
            unsummed: Unsummed::default(),
            cc_votes: Collector::new(cc_quorum(cfg.n), MAX_COLLECTING),
            cc_unsummed: Unsummed::default(),
            blames: Collector::new(quorum(cfg.n), MAX_COLLECTING),
            buffered: BTreeMap::new(),
            requested: HashSet::new(),
            passive: restarted,
            restarted,
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

    fn arm_blame_timer(&self, cx: &mut Cx) {
        // The p-th proposal of a view must have been voted by view_start + (2p + 4)Δ
        // (the paper's rule), and — designed here — the next one within STALL_DELTAS·Δ
        // of the last vote: otherwise a leader that ran ahead of the cumulative budget
        // in a long view could stall for as long as it had run.
        let p = self.votes_in_view.saturating_add(1);
        let budget = self.view_start + self.delta * (2 * p.min(1 << 20) + 4);
        let stall = self.view_start.max(self.last_vote_at) + self.delta * STALL_DELTAS;
        cx.set_timer(BLAME_TIMER, budget.min(stall).saturating_sub(self.now));
    }

    fn reset_view_state(&mut self) {
        self.slots.clear();
        self.props.clear();
        self.equivocated = false;
        self.my_blame = None;
        self.last_voted_block = None;
        self.my_votes.clear();
        self.votes_in_view = 0;
        self.pending_commits.clear();
        self.cc_cur = None;
        self.quit_cert = None;
    }

    fn can_act(&self) -> bool {
        !self.passive && !self.quitting && self.safety.view > self.safety.quit_view
    }

    // --- certificates -----------------------------------------------------------------

    fn on_qc(&mut self, qc: QuorumCert, cx: &mut Cx) {
        if qc.is_genesis() {
            return;
        }
        self.unsummed.certified(&qc);
        if qc.view == self.safety.view {
            match self.slots.get(&qc.height) {
                Some(d) if *d != qc.block => self.on_equivocation(None, cx),
                Some(_) => {}
                None => {
                    if self.slots.len() < MAX_VIEW_SLOTS {
                        self.slots.insert(qc.height, qc.block);
                    }
                }
            }
        }
        if !self.tree.knows(&qc.block) {
            if !self.waiting_qcs.contains(&qc) {
                self.waiting_qcs.push_back(qc);
                while self.waiting_qcs.len() > MAX_KEPT_QCS {
                    self.waiting_qcs.pop_front();
                }
            }
            return;
        }
        self.keep_qc(qc);
    }

    fn keep_qc(&mut self, qc: QuorumCert) {
        if rank(&qc) > rank(&self.high_qc) {
            self.high_qc = qc;
        }
        self.certs.insert((qc.view, qc.height, qc.block), qc);
        while self.certs.len() > MAX_KEPT_QCS {
            self.certs.pop_first();
        }
    }

    fn retry_waiting_qcs(&mut self) {
        let waiting: Vec<QuorumCert> = self.waiting_qcs.drain(..).collect();
        for qc in waiting {
            if self.tree.knows(&qc.block) {
                self.keep_qc(qc);
            } else {
                self.waiting_qcs.push_back(qc);
            }
        }
    }

    fn on_vote(&mut self, v: Vote, cx: &mut Cx) {
        if v.view + 1 < self.safety.view {
            return;
        }
        let key = (v.view, v.height, v.block);
        if let Some(q) = self.votes.add(key, v.voter, v.signature) {
            self.unsummed.keep(key, q, self.now);
        }
        if self.opt {
            if let Some(q) = self.cc_votes.add(key, v.voter, v.signature) {
                if leader_of(key.0, self.n) == self.id {
                    if let Some(cc) = certify(&self.committee, &mut self.cc_votes, key, q, cx) {
                        self.on_cc(cc, cx);
                    }
                } else {
                    // The leader's CC normally arrives first; if it does not within
                    // CC_WAIT, this replica sums its own.
                    if self.cc_unsummed.oldest().is_none() {
                        cx.set_timer(CC_TIMER, self.cc_wait());
                    }
                    self.cc_unsummed.keep(key, q, self.now);
                }
            }
        }
    }

    /// How long a replica waits for its leader's commit certificate before summing the
    /// quorum it holds itself.
    fn cc_wait(&self) -> Duration {
        self.delta / CC_WAIT_DIVISOR
    }

    /// Sums every commit-certificate quorum held unsummed: the view is in trouble (an
    /// equivocation, a blame, its end), so this replica stops waiting for its leader's
    /// CCs — it would have committed by them had it summed them at once.
    fn settle_ccs(&mut self, cx: &mut Cx) {
        self.sum_ccs(None, cx);
    }

    /// Sums the commit-certificate quorums completed at or before `cutoff` (all with
    /// `None`) and commits by them.
    fn sum_ccs(&mut self, cutoff: Option<Duration>, cx: &mut Cx) {
        let ccs = self
            .cc_unsummed
            .sum(cutoff, &self.committee, &mut self.cc_votes, cx);
        for cc in ccs {
            self.on_cc(cc, cx);
        }
    }

    /// Sums the commit-certificate quorums whose CC the leader has not sent within
    /// [`Voter::cc_wait`], and waits for the next.
    fn on_cc_timer(&mut self, cx: &mut Cx) {
        let wait = self.cc_wait();
        self.sum_ccs(Some(self.now.saturating_sub(wait)), cx);
        if let Some(t) = self.cc_unsummed.oldest() {
            cx.set_timer(CC_TIMER, (t + wait).saturating_sub(self.now));
        }
    }

    /// Sums the quorums left unsummed (see [`Unsummed`]): before the lock is chosen, and
    /// before this replica's certificates are reported to a restarted one.
    fn settle(&mut self, cx: &mut Cx) {
        self.settle_ccs(cx);
        for qc in self
            .unsummed
            .sum(None, &self.committee, &mut self.votes, cx)
        {
            self.on_qc(qc, cx);
        }
    }

    /// Opt Sync: a commit certificate. Kept as the view's highest CC (it constrains the
    /// lock at the next view change); committed by at once if it is of the current view
    /// and this replica has not quit it (nor is recovering), after broadcasting it.
    fn on_cc(&mut self, cc: QuorumCert, cx: &mut Cx) {
        if !self.opt {
            return;
        }
        self.cc_unsummed.certified(&cc);
        self.on_qc(cc, cx);
        if cc.view != self.safety.view {
            return;
        }
        if self.cc_cur.is_none_or(|c| rank(&cc) > rank(&c)) {
            self.cc_cur = Some(cc);
        }
        if !self.can_act() || !self.tree.knows(&cc.block) {
            return;
        }
        if cc.height <= self.tree.committed().1 {
            return;
        }
        // The broadcast first: every honest replica must hold the CC before it locks.
        cx.broadcast(SyncMsg::CommitCert(cc));
        self.commit_to(cc.block, Some(cc), cx);
    }

    fn commit_to(&mut self, target: Digest, proof: Option<QuorumCert>, cx: &mut Cx) {
        let (committed, committed_h, _) = self.tree.committed();
        if let Some(b) = self.tree.get(&target) {
            if b.height <= committed_h {
                // Already committed, or a conflict with what was.
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
                        proof,
                    });
                }
                self.safety.committed = self.tree.committed();
                let h = self.safety.committed.1;
                self.pending_commits.retain(|k, _| *k > h);
                // Heights at or below the committed one need no equivocation detection
                // any more (this replica voted above them in this view, so it never votes
                // there again): forget them, so that a long view stays within bounds.
                self.slots = self.slots.split_off(&(h + 1));
                self.props = self.props.split_off(&(h + 1));
                if crate::contract::persist_commit_mark(committed_h, h) {
                    cx.persist(self.safety);
                }
            }
            Err(CommitError::Unknown(_)) => {}
            Err(CommitError::Conflict { target, committed }) => {
                cx.event(Event::ConflictingCommit { committed, target });
            }
        }
    }

    // --- proposals and votes ------------------------------------------------------------

    fn on_proposal(&mut self, from: NodeId, p: Proposal, cx: &mut Cx) {
        let view = self.safety.view;
        let digest = p.block.digest();
        let height = p.height();
        if p.view < view {
            return;
        }
        if p.view > view {
            self.buffer(from, p);
            return;
        }
        // One leader-signed block per (view, height): a second one is an equivocation.
        match self.slots.get(&height) {
            Some(d) if *d != digest => {
                let proof = self.props.get(&height).map(|a| {
                    Box::new(Equivocation {
                        a: a.clone(),
                        b: p.clone(),
                    })
                });
                self.on_equivocation(proof, cx);
                return;
            }
            Some(_) => {}
            None => {
                if self.slots.len() < MAX_VIEW_SLOTS {
                    self.slots.insert(height, digest);
                }
            }
        }
        if !self.props.contains_key(&height) && self.props.len() < MAX_VIEW_SLOTS {
            self.props.insert(height, p.clone());
        }
        if !p.block.is_genesis() && !self.tree.knows(&digest) {
            if !self.tree.knows(&p.block.parent) {
                if height <= self.tree.committed().1 {
                    return;
                }
                cx.event(Event::Buffered { block: digest });
                self.request(p.block.parent, from, cx);
                self.buffer(from, p);
                return;
            }
            if !self.tree.insert(digest, Arc::new(p.block.clone())) {
                return;
            }
            self.retry_waiting_qcs();
        }
        if !p.block.is_genesis() {
            self.on_qc(p.block.justify, cx);
        }
        if let Some(c) = p.reproposal {
            self.on_qc(c, cx);
        }
        if let Some(cc) = p.cc {
            // A CC of the previous view: knowledge for the lock rule only.
            self.on_qc(cc, cx);
        }
        self.try_vote(from, &p, digest, cx);
    }

    fn buffer(&mut self, from: NodeId, p: Proposal) {
        let key = (p.view, p.height(), p.block.digest());
        self.buffered.insert(key, (from, p));
        while self.buffered.len() > MAX_BUFFERED {
            self.buffered.pop_first();
        }
    }

    /// The new-view vote rule (see the protocol docs) for the re-proposed QC `c`:
    /// - without a CC: rank at least as high as the lock, and this replica must know no
    ///   CC of the previous view;
    /// - with a CC `N` of the previous view: `N` ranks at least as high as every CC of
    ///   that view this replica knows, `c` extends `N`, and if the lock extends `N`, `c`
    ///   ranks at least as high as the lock.
    fn new_view_ok(&mut self, from: NodeId, p: &Proposal, c: &QuorumCert, cx: &mut Cx) -> bool {
        let k = self
            .safety
            .cc_prev
            .filter(|k| k.view + 1 == self.safety.view);
        let lock = self.safety.lock;
        match p.cc {
            None => k.is_none() && rank(c) >= rank(&lock),
            Some(n) => {
                if k.is_some_and(|k| rank(&k) > rank(&n)) {
                    return false;
                }
                if !self.tree.knows(&n.block) && n.height > self.tree.committed().1 {
                    // Decide again once the CC's block has arrived.
                    self.request(n.block, from, cx);
                    self.buffer(from, p.clone());
                    return false;
                }
                if !self.tree.extends(&c.block, &n.block, n.height) {
                    return false;
                }
                let lock_extends_n = self.tree.knows(&lock.block)
                    && self.tree.extends(&lock.block, &n.block, n.height);
                !lock_extends_n || rank(c) >= rank(&lock)
            }
        }
    }

    fn try_vote(&mut self, from: NodeId, p: &Proposal, digest: Digest, cx: &mut Cx) {
        let view = self.safety.view;
        let height = p.height();
        if !self.can_act() || self.equivocated || p.view != view {
            return;
        }
        if (view, height) <= self.safety.last_vote {
            return;
        }
        let committed_h = self.tree.committed().1;
        if p.block.is_genesis() && committed_h > 0 {
            return;
        }
        match p.reproposal {
            Some(c) => {
                if self.last_voted_block.is_some() || !self.new_view_ok(from, p, &c, cx) {
                    return;
                }
            }
            None => {
                // A committed height needs no steady vote (and its slot may be forgotten).
                if height <= committed_h {
                    return;
                }
                // Votes of one view form a chain.
                match self.last_voted_block {
                    Some((h, d)) if self.tree.extends(&digest, &d, h) => {}
                    Some(_) => return,
                    None => {}
                }
            }
        }
        self.safety.last_vote = (view, height);
        cx.persist(self.safety);
        let signature = self.key.sign(&vote_statement(view, height, &digest));
        let vote = Vote {
            view,
            height,
            block: digest,
            voter: self.id,
            signature,
        };
        cx.event(Event::Voted {
            view,
            block: digest,
        });
        // Forward the proposal (equivocation detection) to every other replica but its
        // signer, which holds it already (and would spend a pairing check on its own
        // signature); then vote to everybody.
        let skip = [self.id, leader_of(p.view, self.n)];
        cx.send_all_but(self.n, &skip, SyncMsg::Propose(Box::new(p.clone())));
        cx.broadcast(SyncMsg::Vote(vote));
        self.last_voted_block = Some((height, digest));
        self.my_votes.push_back(vote);
        while self.my_votes.len() > MAX_SYNC_ITEMS {
            self.my_votes.pop_front();
        }
        self.votes_in_view = self.votes_in_view.saturating_add(1);
        self.last_vote_at = self.now;
        self.arm_blame_timer(cx);
        if p.reproposal.is_none() && self.pending_commits.len() < MAX_PENDING_COMMITS {
            self.pending_commits.insert(height, digest);
            cx.set_timer(TimerId(COMMIT_TIMER_BASE + height), self.delta * 2);
        }
    }

    // --- blame, quit, view change -------------------------------------------------------

    fn on_equivocation(&mut self, proof: Option<Box<Equivocation>>, cx: &mut Cx) {
        if self.quitting {
            return;
        }
        self.settle_ccs(cx);
        if !self.equivocated {
            self.equivocated = true;
            self.pending_commits.clear();
        }
        self.blame(proof, cx);
    }

    fn blame(&mut self, proof: Option<Box<Equivocation>>, cx: &mut Cx) {
        if self.my_blame.is_some() || self.passive {
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
        cx.broadcast(SyncMsg::Blame(b));
    }

    fn on_blame(&mut self, b: Blame, cx: &mut Cx) {
        if b.view < self.safety.view {
            return;
        }
        if b.view == self.safety.view {
            self.settle_ccs(cx);
        }
        if b.view == self.safety.view && b.proof.is_some() && !self.equivocated {
            self.on_equivocation(b.proof.clone(), cx);
        }
        if let Some(q) = self.blames.add(b.view, b.sender, b.signature) {
            let c = BlameCert {
                view: b.view,
                sig: self.committee.aggregate_unchecked(&q),
            };
            self.on_blame_cert(c, cx);
        }
    }

    /// Quit view `c.view` (jumping to it if it is ahead): stop voting and committing in
    /// it, forward the certificate, and enter the next view after 2Δ.
    fn on_blame_cert(&mut self, c: BlameCert, cx: &mut Cx) {
        let view = self.safety.view;
        if c.view < view || (c.view == view && self.quitting) {
            return;
        }
        if c.view == view {
            // What it would have committed by had it summed its quorums at once, it
            // commits by now, before quitting (see `settle_ccs`).
            self.settle_ccs(cx);
        }
        if c.view > view {
            self.reset_view_state();
            self.safety.view = c.view;
        }
        self.quitting = true;
        self.quit_cert = Some(c);
        self.pending_commits.clear();
        self.safety.quit_view = self.safety.quit_view.max(c.view);
        cx.persist(self.safety);
        cx.broadcast(SyncMsg::BlameCert(c));
        cx.cancel_timer(BLAME_TIMER);
        cx.set_timer(QUIT_TIMER, self.delta * 2);
    }

    /// The lock on entering a new view: with a CC of the view just quit, the highest
    /// certificate that extends the highest such CC; otherwise the highest certificate.
    fn choose_lock(&self, k: Option<QuorumCert>) -> QuorumCert {
        let mut lock = self.safety.lock;
        match k {
            Some(k) => {
                lock = k;
                for qc in self.certs.values() {
                    if rank(qc) > rank(&lock) && self.tree.extends(&qc.block, &k.block, k.height) {
                        lock = *qc;
                    }
                }
            }
            None => {
                if rank(&self.high_qc) > rank(&lock) {
                    lock = self.high_qc;
                }
            }
        }
        lock
    }

    fn enter_next_view(&mut self, cx: &mut Cx) {
        self.settle(cx);
        let from = self.safety.view;
        let k = self.cc_cur.filter(|c| c.view == from);
        let lock = self.choose_lock(k);
        let entered_by = self.quit_cert;
        self.reset_view_state();
        self.entered_by = entered_by;
        self.quitting = false;
        let view = from + 1;
        self.safety.view = view;
        self.safety.lock = lock;
        self.safety.cc_prev = k;
        cx.persist(self.safety);
        cx.event(Event::ViewChanged {
            from,
            to: view,
            by_timeout: true,
        });
        cx.send(
            leader_of(view, self.n),
            SyncMsg::Status(Status { view, lock, cc: k }),
        );
        self.view_start = self.now;
        self.arm_blame_timer(cx);
        self.votes.prune_below(&(from, 0, Digest::ZERO));
        self.cc_votes.prune_below(&(view, 0, Digest::ZERO));
        self.blames.prune_below(&view);
        self.retry_buffered(cx);
    }

    fn retry_buffered(&mut self, cx: &mut Cx) {
        let view = self.safety.view;
        let ready: Vec<(View, Height, Digest)> = self
            .buffered
            .iter()
            .filter(|((v, _, _), (_, p))| {
                *v < view
                    || (*v == view && (p.block.is_genesis() || self.tree.knows(&p.block.parent)))
            })
            .map(|(k, _)| *k)
            .collect();
        for k in ready {
            if let Some((from, p)) = self.buffered.remove(&k) {
                if k.0 == view {
                    self.on_proposal(from, p, cx);
                }
            }
        }
    }

    // --- catch-up and recovery ----------------------------------------------------------

    fn request(&mut self, digest: Digest, from: NodeId, cx: &mut Cx) {
        if self.requested.len() >= MAX_BUFFERED {
            self.requested.clear();
        }
        if from != self.id && self.requested.insert(digest) {
            cx.send(from, SyncMsg::Fetch(digest));
        }
    }

    fn on_blocks(&mut self, from: NodeId, blocks: Vec<Block>, cx: &mut Cx) {
        let Some(first) = blocks.first() else { return };
        if !self.tree.knows(&first.parent) && first.height > self.tree.committed().1 + 1 {
            self.requested.remove(&first.parent);
            self.request(first.parent, from, cx);
        }
        for b in blocks {
            let d = b.digest();
            self.requested.remove(&d);
            let justify = b.justify;
            if self.tree.insert(d, Arc::new(b)) {
                self.on_qc(justify, cx);
            }
        }
        self.retry_waiting_qcs();
        self.retry_buffered(cx);
    }

    fn sync_reply(&self) -> SyncReply {
        let high_qc = if rank(&self.high_qc) > rank(&self.safety.lock) {
            self.high_qc
        } else {
            self.safety.lock
        };
        let high_block = self
            .tree
            .get(&high_qc.block)
            .filter(|b| !b.is_genesis())
            .map(|b| (**b).clone());
        let skip = self.props.len().saturating_sub(MAX_SYNC_ITEMS);
        SyncReply {
            view: self.safety.view,
            entered_by: self.entered_by,
            quit: if self.quitting { self.quit_cert } else { None },
            high_qc,
            high_block,
            cc: self.cc_cur,
            proposals: self.props.values().skip(skip).cloned().collect(),
            votes: self.my_votes.iter().copied().collect(),
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
        if let Some(b) = r.high_block {
            let d = b.digest();
            if !self.tree.knows(&d) {
                if self.tree.knows(&b.parent) {
                    self.tree.insert(d, Arc::new(b));
                } else {
                    self.request(d, from, cx);
                }
            }
        }
        self.on_qc(r.high_qc, cx);
        self.retry_waiting_qcs();
        for p in r.proposals {
            self.on_proposal(from, p, cx);
        }
        for v in r.votes {
            self.on_vote(v, cx);
        }
        if let Some(cc) = r.cc {
            self.on_cc(cc, cx);
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
        // Vote now for what arrived while passive, lowest height first.
        let props: Vec<Proposal> = self.props.values().cloned().collect();
        for p in props {
            let d = p.block.digest();
            if self.tree.knows(&d) || p.block.is_genesis() {
                self.try_vote(self.id, &p, d, cx);
            }
        }
    }
}

impl Half<SyncMsg, Safety> for Voter {
    fn on_start(&mut self, cx: &mut Cx) {
        self.now = cx.now;
        self.view_start = cx.now;
        if self.restarted {
            cx.broadcast(SyncMsg::SyncRequest);
            cx.set_timer(RESYNC_TIMER, self.delta * 2);
        }
        if self.quitting {
            cx.set_timer(QUIT_TIMER, self.delta * 2);
        } else {
            self.arm_blame_timer(cx);
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Verified<SyncMsg>, cx: &mut Cx) {
        self.now = cx.now;
        match msg.into_inner() {
            SyncMsg::Propose(p) => self.on_proposal(from, *p, cx),
            SyncMsg::Vote(v) => self.on_vote(v, cx),
            SyncMsg::Blame(b) => self.on_blame(b, cx),
            SyncMsg::BlameCert(c) => self.on_blame_cert(c, cx),
            SyncMsg::CommitCert(cc) => self.on_cc(cc, cx),
            SyncMsg::Fetch(d) => {
                let chain = self.tree.chain_ending_at(&d, MAX_FETCH_BLOCKS);
                if !chain.is_empty() {
                    let blocks = chain.iter().map(|b| (**b).clone()).collect();
                    cx.send(from, SyncMsg::Blocks(blocks));
                }
            }
            SyncMsg::Blocks(blocks) => self.on_blocks(from, blocks, cx),
            SyncMsg::SyncRequest => {
                if from != self.id && crate::contract::answer_sync(&mut self.sync_budget, from, cx)
                {
                    self.settle(cx);
                    cx.send(from, SyncMsg::SyncReply(Box::new(self.sync_reply())));
                }
            }
            SyncMsg::SyncReply(r) => self.on_sync_reply(from, *r, cx),
            SyncMsg::Status(_) | SyncMsg::Batches { .. } => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        self.now = cx.now;
        match id {
            BLAME_TIMER => {
                // Too few proposals in this view: blame its leader (again later if the
                // view still does not change).
                if !self.quitting {
                    self.blame(None, cx);
                }
                // Retry fetches that went unanswered (a peer that crashed), and keep
                // checking.
                self.requested.clear();
                let wanted: Vec<(Digest, NodeId)> = self
                    .buffered
                    .values()
                    .filter(|(_, p)| !self.tree.knows(&p.block.parent))
                    .map(|(from, p)| (p.block.parent, *from))
                    .collect();
                for (d, from) in wanted {
                    self.request(d, from, cx);
                }
                cx.set_timer(BLAME_TIMER, self.delta * 4);
            }
            QUIT_TIMER if self.quitting => self.enter_next_view(cx),
            RESYNC_TIMER => self.end_resync(cx),
            CC_TIMER => self.on_cc_timer(cx),
            TimerId(t) if t >= COMMIT_TIMER_BASE => {
                let height = t - COMMIT_TIMER_BASE;
                if self.quitting || self.equivocated || self.passive {
                    return;
                }
                if let Some(d) = self.pending_commits.remove(&height) {
                    self.commit_to(d, None, cx);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olympus_crypto::Scheme;
    use olympus_types::{Batch, Transaction};

    /// Certificates a voter formed (summed) among `cx`'s actions.
    fn formed(cx: &Cx) -> usize {
        events(cx, |e| matches!(e, Event::CertificateFormed { .. }))
    }

    /// Quorums found to hold a bad vote among `cx`'s actions.
    fn bad_votes(cx: &Cx) -> usize {
        events(cx, |e| *e == BAD_VOTE)
    }

    fn events(cx: &Cx, pick: impl Fn(&Event) -> bool) -> usize {
        cx.actions()
            .iter()
            .filter(|a| matches!(a, crate::contract::Action::Event(e) if pick(e)))
            .count()
    }

    fn setup(n: usize) -> (Vec<Arc<Keypair>>, Committee) {
        let keys: Vec<_> = (0..n)
            .map(|i| Arc::new(Keypair::generate(Scheme::Bls, &[3; 32], NodeId(i as u16))))
            .collect();
        let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let committee = Committee::new(Scheme::Bls, &pks).unwrap();
        (keys, committee)
    }

    fn qc(
        keys: &[Arc<Keypair>],
        c: &Committee,
        view: View,
        h: Height,
        d: Digest,
        by: &[usize],
    ) -> QuorumCert {
        let sigs: Vec<_> = by
            .iter()
            .map(|&i| (NodeId(i as u16), keys[i].sign(&vote_statement(view, h, &d))))
            .collect();
        QuorumCert {
            view,
            height: h,
            block: d,
            sig: c.aggregate_unchecked(&sigs),
        }
    }

    fn steady(keys: &[Arc<Keypair>], c: &Committee, view: View, tag: u8) -> Proposal {
        let justify = qc(keys, c, view, 0, Block::genesis_digest(), &[0, 1]);
        let block = Block {
            parent: justify.block,
            view,
            height: 1,
            proposer: leader_of(view, keys.len()),
            justify,
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 1,
                nonce: tag as u64,
                payload: vec![tag],
            }])]),
        };
        let signature = keys[leader_of(view, keys.len()).index()]
            .sign(&proposal_statement(view, &block.digest()));
        Proposal {
            view,
            block,
            reproposal: None,
            cc: None,
            signature,
        }
    }

    /// A peer's sync requests are answered within its budget only: a burst of
    /// [`crate::contract::SYNC_REQUEST_BURST`], then one per Δ; the rest are ignored.
    #[test]
    fn sync_requests_beyond_a_peers_budget_are_not_answered() {
        let (keys, c) = setup(3);
        let c = Arc::new(c);
        let cfg = ReplicaConfig::new(NodeId(0), 3);
        let mut v = Voter::new(&cfg, false, keys[0].clone(), c, None);
        // Asks `times` at `at` as `peer`; how many replies it got.
        let ask = |v: &mut Voter, peer: NodeId, at: Duration, times: usize| {
            let mut cx = Cx::new(at);
            for _ in 0..times {
                v.on_message(
                    peer,
                    Verified::assume_verified(SyncMsg::SyncRequest),
                    &mut cx,
                );
            }
            cx.actions()
                .iter()
                .filter(|a| {
                    matches!(a, crate::contract::Action::Send { to, msg: SyncMsg::SyncReply(_) } if *to == peer)
                })
                .count()
        };
        let burst = crate::contract::SYNC_REQUEST_BURST as usize;
        let p = NodeId(1);
        assert_eq!(ask(&mut v, p, Duration::ZERO, 10), burst);
        assert_eq!(ask(&mut v, p, cfg.delta / 2, 10), 0);
        assert_eq!(ask(&mut v, p, cfg.delta, 10), 1);
        // Another peer is not held back by the first one.
        assert_eq!(ask(&mut v, NodeId(2), cfg.delta, 1), 1);
    }

    #[test]
    fn thresholds_for_n_is_2f_plus_1() {
        assert_eq!((f_of(3), quorum(3), cc_quorum(3)), (1, 2, 3));
        assert_eq!((f_of(5), quorum(5), cc_quorum(5)), (2, 3, 4));
        assert_eq!((f_of(7), quorum(7), cc_quorum(7)), (3, 4, 6));
        assert!(vote_slot(2, 1) > vote_slot(1, 1_000_000));
    }

    #[test]
    fn verify_accepts_good_messages_and_rejects_forgeries() {
        let (keys, c) = setup(3);
        let p = steady(&keys, &c, 1, 1);
        assert!(verify(SyncMsg::Propose(Box::new(p.clone())), NodeId(2), &c).is_ok());
        // Signed by a replica that does not lead the view.
        let mut forged = p.clone();
        forged.signature = keys[2].sign(&proposal_statement(1, &p.block.digest()));
        assert!(verify(SyncMsg::Propose(Box::new(forged)), NodeId(2), &c).is_err());
        // A justify QC with one signer: certificates need f + 1 distinct signers.
        let mut weak = steady(&keys, &c, 1, 1);
        weak.block.justify = qc(&keys, &c, 1, 0, Block::genesis_digest(), &[0]);
        weak.signature = keys[1].sign(&proposal_statement(1, &weak.block.digest()));
        assert!(verify(SyncMsg::Propose(Box::new(weak)), NodeId(1), &c).is_err());
        // A vote relayed by someone else is refused.
        let d = p.block.digest();
        let v = Vote {
            view: 1,
            height: 1,
            block: d,
            voter: NodeId(0),
            signature: keys[0].sign(&vote_statement(1, 1, &d)),
        };
        assert!(verify(SyncMsg::Vote(v), NodeId(0), &c).is_ok());
        assert!(matches!(
            verify(SyncMsg::Vote(v), NodeId(1), &c),
            Err(VerifyError::WrongSender { .. })
        ));
        // An equivocation proof must hold two different blocks of one (view, height).
        let p2 = steady(&keys, &c, 1, 2);
        let blame = |proof: Equivocation| Blame {
            view: 1,
            sender: NodeId(0),
            signature: keys[0].sign(&blame_statement(1)),
            proof: Some(Box::new(proof)),
        };
        let good = blame(Equivocation {
            a: p.clone(),
            b: p2.clone(),
        });
        assert!(verify(SyncMsg::Blame(good), NodeId(0), &c).is_ok());
        let same = blame(Equivocation {
            a: p.clone(),
            b: p.clone(),
        });
        assert!(verify(SyncMsg::Blame(same), NodeId(0), &c).is_err());
        // A blame certificate of f signers is not one; a CC needs ⌊3n/4⌋+1.
        let sig = c.aggregate_unchecked(&[(NodeId(0), keys[0].sign(&blame_statement(1)))]);
        assert!(verify(
            SyncMsg::BlameCert(BlameCert { view: 1, sig }),
            NodeId(0),
            &c
        )
        .is_err());
        let two = qc(&keys, &c, 1, 1, d, &[0, 1]);
        assert!(verify(SyncMsg::CommitCert(two), NodeId(0), &c).is_err());
        let three = qc(&keys, &c, 1, 1, d, &[0, 1, 2]);
        assert!(verify(SyncMsg::CommitCert(three), NodeId(0), &c).is_ok());
    }

    /// Opt Sync: a replica that does not lead the view waits for its leader's commit
    /// certificate instead of summing its own CC quorum; it sums the quorum itself only
    /// when the leader's CC has not come Δ/4 later.
    #[test]
    fn a_non_leader_sums_its_cc_quorum_only_when_the_leaders_cc_is_late() {
        let (keys, c) = setup(3);
        let c = Arc::new(c);
        assert_eq!((cc_quorum(3), leader_of(1, 3)), (3, NodeId(1)));
        let cfg = ReplicaConfig::new(NodeId(0), 3);
        let d = Digest([9; 32]);
        let vote = |i: usize| Vote {
            view: 1,
            height: 1,
            block: d,
            voter: NodeId(i as u16),
            signature: keys[i].sign(&vote_statement(1, 1, &d)),
        };
        let wait = cfg.delta / CC_WAIT_DIVISOR;
        for leader_sends in [false, true] {
            let mut v = Voter::new(&cfg, true, keys[0].clone(), c.clone(), None);
            let mut cx = Cx::new(Duration::ZERO);
            for i in 0..3 {
                v.on_vote(vote(i), &mut cx);
            }
            assert_eq!(formed(&cx), 0, "nothing summed yet");
            assert!(v.cc_cur.is_none());
            assert!(cx.actions().iter().any(|a| matches!(
                a,
                crate::contract::Action::SetTimer { id, after } if *id == CC_TIMER && *after == wait
            )));
            if leader_sends {
                let cc = QuorumCert {
                    view: 1,
                    height: 1,
                    block: d,
                    sig: c.aggregate_unchecked(
                        &(0..3)
                            .map(|i| (NodeId(i as u16), vote(i).signature))
                            .collect::<Vec<_>>(),
                    ),
                };
                v.on_cc(cc, &mut cx);
            }
            let mut cx = Cx::new(wait);
            v.now = wait;
            v.on_timer(CC_TIMER, &mut cx);
            // Summed here only when the leader's CC did not come.
            assert_eq!(
                formed(&cx),
                usize::from(!leader_sends),
                "leader sends: {leader_sends}"
            );
            assert!(v.cc_cur.is_some());
        }
    }

    /// Opt Sync: the view's leader holds the certificate quorum on its latest block for
    /// the commit certificate, and justifies the next block by the CC when it comes in
    /// time (no sum of its own); when it does not, it sums the quorum and proposes on it,
    /// and does not hold the next quorum.
    #[test]
    fn an_opt_sync_leader_justifies_its_next_block_by_a_cc_that_comes_in_time() {
        let (keys, c) = setup(3);
        let c = Arc::new(c);
        let cfg = ReplicaConfig::new(NodeId(1), 3);
        assert_eq!(leader_of(1, 3), NodeId(1));
        let g = Block::genesis_digest();
        let vote = |i: usize, height: Height, block: Digest| Vote {
            view: 1,
            height,
            block,
            voter: NodeId(i as u16),
            signature: keys[i].sign(&vote_statement(1, height, &block)),
        };
        let batch = |nonce: u64| {
            BatchRef::new(Batch {
                txs: vec![Transaction {
                    client: 1,
                    nonce,
                    payload: Vec::new(),
                }],
            })
        };
        let proposed = |cx: &Cx| -> Vec<Block> {
            cx.actions()
                .iter()
                .filter_map(|a| match a {
                    crate::contract::Action::Broadcast {
                        msg: SyncMsg::Propose(p),
                    } if p.reproposal.is_none() => Some(p.block.clone()),
                    _ => None,
                })
                .collect()
        };
        let msg = |m: SyncMsg| Verified::assume_verified(m);
        let send_votes = |l: &mut Leader, cx: &mut Cx, by: [u16; 2], h: Height, d: Digest| {
            for i in by {
                let v = vote(i as usize, h, d);
                l.on_message(NodeId(i), msg(SyncMsg::Vote(v)), cx);
            }
        };
        for cc_comes in [true, false] {
            let mut l = Leader::new(&cfg, true, keys[1].clone(), c.clone(), None);
            let mut cx = Cx::new(Duration::ZERO);
            l.on_start(&mut cx); // re-proposes genesis
            assert!(l.on_batch(batch(1), &mut cx));
            assert!(l.on_batch(batch(2), &mut cx));
            let mut cx = Cx::new(Duration::ZERO);
            send_votes(&mut l, &mut cx, [1, 0], 0, g);
            // A quorum, held: nothing summed, nothing proposed, the wait armed.
            assert_eq!((formed(&cx), proposed(&cx).len()), (0, 0));
            let wait = cfg.delta / JUSTIFY_WAIT_DIVISOR;
            assert!(cx.actions().iter().any(|a| matches!(
                a,
                crate::contract::Action::SetTimer { id, after } if *id == JUSTIFY_TIMER && *after == wait
            )));
            let mut cx = Cx::new(wait);
            if cc_comes {
                let cc = qc(&keys, &c, 1, 0, g, &[0, 1, 2]);
                l.on_message(NodeId(1), msg(SyncMsg::CommitCert(cc)), &mut cx);
                let blocks = proposed(&cx);
                assert_eq!(blocks.len(), 1);
                assert_eq!(blocks[0].justify, cc, "justified by the CC");
                assert_eq!(formed(&cx), 0, "the leader half summed nothing");
                // A late timer changes nothing.
                l.on_timer(JUSTIFY_TIMER, &mut cx);
                assert_eq!((formed(&cx), proposed(&cx).len()), (0, 1));
            } else {
                l.on_timer(JUSTIFY_TIMER, &mut cx);
                let blocks = proposed(&cx);
                assert_eq!((formed(&cx), blocks.len()), (1, 1));
                assert_eq!(blocks[0].justify.sig.signers.len(), 2);
                // The wait ran out: the next quorum is summed at once.
                let d = blocks[0].digest();
                let mut cx = Cx::new(wait);
                assert!(l.on_batch(batch(3), &mut cx));
                send_votes(&mut l, &mut cx, [1, 2], 1, d);
                assert_eq!((formed(&cx), proposed(&cx).len()), (1, 1));
            }
        }
    }

    /// Votes are checked when a quorum is aggregated, not by `verify`: a quorum that
    /// holds a forged vote forms no certificate, the forged vote is dropped, and the next
    /// good vote completes the certificate.
    #[test]
    fn a_bad_vote_is_caught_by_aggregation() {
        let (keys, c) = setup(3);
        let c = Arc::new(c);
        let cfg = ReplicaConfig::new(NodeId(0), 3);
        let mut v = Voter::new(&cfg, false, keys[0].clone(), c.clone(), None);
        let d = Digest([7; 32]);
        let vote = |signer: usize, key: usize| Vote {
            view: 1,
            height: 1,
            block: d,
            voter: NodeId(signer as u16),
            signature: keys[key].sign(&vote_statement(1, 1, &d)),
        };
        // `verify` lets a forged vote through (cheaply) but not another's vote.
        assert!(verify(SyncMsg::Vote(vote(1, 2)), NodeId(1), &c).is_ok());
        assert!(verify(SyncMsg::Vote(vote(1, 1)), NodeId(2), &c).is_err());
        let mut cx = Cx::new(Duration::ZERO);
        v.on_vote(vote(0, 0), &mut cx);
        v.on_vote(vote(1, 2), &mut cx); // forged: signed with replica 2's key
                                        // A voter sums its quorums lazily: nothing is checked yet.
        assert_eq!((formed(&cx), bad_votes(&cx)), (0, 0));
        v.on_vote(vote(2, 2), &mut cx); // after the quorum: kept, not yielded
        assert_eq!(formed(&cx), 0);
        // The view ends (or a restarted replica asks): the sum fails, the forged vote is
        // dropped and the quorum completed from the vote that came after it.
        v.settle(&mut cx);
        assert_eq!((formed(&cx), bad_votes(&cx)), (1, 1));
        // The block is unknown, so the certificate waits for it.
        let qc = *v.waiting_qcs.back().expect("the certificate is kept");
        assert_eq!((qc.view, qc.height, qc.block), (1, 1, d));
        assert!(verify_qc(&qc, &c).is_ok());
        assert!(!qc.sig.signers.contains(NodeId(1)));
        // A certificate for the statement (the next proposal's justify) makes the quorum
        // unneeded: it is never summed.
        let mut v = Voter::new(&cfg, false, keys[0].clone(), c.clone(), None);
        let mut cx = Cx::new(Duration::ZERO);
        v.on_vote(vote(0, 0), &mut cx);
        v.on_vote(vote(1, 2), &mut cx);
        v.on_qc(qc, &mut cx);
        v.settle(&mut cx);
        assert_eq!((formed(&cx), bad_votes(&cx)), (0, 0));
    }

    /// A leader half that does not lead the view forwards its batches to the view's
    /// leader, which queues them; a forwarded batch that reaches a replica that moved on
    /// is passed on at most [`MAX_FORWARD_HOPS`] times.
    #[test]
    fn batches_are_forwarded_to_the_view_leader() {
        let (keys, c) = setup(3);
        let c = Arc::new(c);
        let batch = olympus_types::Batch {
            txs: vec![olympus_types::Transaction {
                client: 1,
                nonce: 1,
                payload: Vec::new(),
            }],
        };
        let forwarded = |cx: &Cx| -> Vec<(NodeId, u8)> {
            cx.actions()
                .iter()
                .filter_map(|a| match a {
                    crate::contract::Action::Send {
                        to,
                        msg: SyncMsg::Batches { hops, .. },
                    } => Some((*to, *hops)),
                    _ => None,
                })
                .collect()
        };
        // Replica 0 does not lead view 1 (replica 1 does).
        let mut l0 = Leader::new(
            &ReplicaConfig::new(NodeId(0), 3),
            false,
            keys[0].clone(),
            c.clone(),
            None,
        );
        let mut cx = Cx::new(Duration::ZERO);
        assert!(l0.on_batch(BatchRef::new(batch.clone()), &mut cx));
        assert_eq!(forwarded(&cx), vec![(NodeId(1), 0)]);
        assert!(l0.pending.is_empty());
        // The leader keeps what it is sent.
        let mut l1 = Leader::new(
            &ReplicaConfig::new(NodeId(1), 3),
            false,
            keys[1].clone(),
            c.clone(),
            None,
        );
        let mut cx = Cx::new(Duration::ZERO);
        let msg = |hops| {
            Verified::assume_verified(SyncMsg::Batches {
                hops,
                batches: vec![batch.clone()],
            })
        };
        l1.on_message(NodeId(0), msg(0), &mut cx);
        assert_eq!(l1.pending.len(), 1);
        assert!(forwarded(&cx).is_empty());
        // A non-leader passes a forwarded batch on, up to the hop limit; then keeps it.
        let mut cx = Cx::new(Duration::ZERO);
        l0.on_message(NodeId(2), msg(0), &mut cx);
        assert_eq!(forwarded(&cx), vec![(NodeId(1), 1)]);
        let mut cx = Cx::new(Duration::ZERO);
        l0.on_message(NodeId(2), msg(MAX_FORWARD_HOPS), &mut cx);
        assert!(forwarded(&cx).is_empty());
        assert_eq!(l0.pending.len(), 1);
        // Malformed forwards are refused by `verify`.
        let empty = SyncMsg::Batches {
            hops: 0,
            batches: Vec::new(),
        };
        assert!(verify(empty, NodeId(0), &c).is_err());
    }

    #[test]
    fn messages_round_trip_through_the_frame_codec() {
        let (keys, c) = setup(3);
        let p = steady(&keys, &c, 1, 1);
        let msg = SyncMsg::Propose(Box::new(p));
        let bytes = olympus_types::frame::encode(&msg).unwrap();
        assert_eq!(
            olympus_types::frame::decode::<SyncMsg>(&bytes).unwrap(),
            msg
        );
        let s = Safety {
            view: 3,
            quit_view: 2,
            last_vote: (3, 7),
            lock: QuorumCert::genesis(),
            cc_prev: None,
            committed: (Block::genesis_digest(), 0, 0),
        };
        let bytes = olympus_types::frame::encode(&s).unwrap();
        assert_eq!(olympus_types::frame::decode::<Safety>(&bytes).unwrap(), s);
    }

    #[test]
    fn a_voter_detects_equivocation_and_never_votes_twice_per_slot() {
        let (keys, c) = setup(3);
        let c = Arc::new(c);
        let cfg = ReplicaConfig::new(NodeId(0), 3);
        let mut v = Voter::new(&cfg, false, keys[0].clone(), c.clone(), None);
        let mut cx = Cx::new(Duration::ZERO);
        v.on_start(&mut cx);
        // View 1 starts with genesis; then two different blocks at height 1.
        let g = Proposal {
            view: 1,
            block: Block::genesis(),
            reproposal: Some(QuorumCert::genesis()),
            cc: None,
            signature: keys[1].sign(&proposal_statement(1, &Block::genesis_digest())),
        };
        let m = |p: Proposal| Verified::assume_verified(SyncMsg::Propose(Box::new(p)));
        v.on_message(NodeId(1), m(g), &mut cx);
        v.on_message(NodeId(1), m(steady(&keys, &c, 1, 1)), &mut cx);
        v.on_message(NodeId(1), m(steady(&keys, &c, 1, 2)), &mut cx);
        let votes: Vec<_> = cx
            .actions()
            .iter()
            .filter_map(|a| match a {
                crate::contract::Action::Broadcast {
                    msg: SyncMsg::Vote(v),
                } => Some(*v),
                _ => None,
            })
            .collect();
        assert_eq!(
            votes.len(),
            2,
            "genesis re-proposal and the first block only"
        );
        let blamed = cx.actions().iter().any(|a| {
            matches!(a, crate::contract::Action::Broadcast { msg: SyncMsg::Blame(b) } if b.proof.is_some())
        });
        assert!(blamed, "equivocation blamed with its proof");
        assert_eq!(v.safety().last_vote, (1, 1));
        // Every vote follows a persist of its slot.
        let first_persist = cx
            .actions()
            .iter()
            .position(|a| matches!(a, crate::contract::Action::Persist(_)));
        let first_vote = cx.actions().iter().position(|a| {
            matches!(
                a,
                crate::contract::Action::Broadcast {
                    msg: SyncMsg::Vote(_)
                }
            )
        });
        assert!(first_persist < first_vote);
    }
}
