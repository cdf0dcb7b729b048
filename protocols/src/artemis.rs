//! Artemis: a view leader streams signed blocks without waiting for votes, and a
//! *chained vote* passes from one rotating round leader to the next (one hop). Complete
//! with blame, view change, skipping silent round leaders and crash recovery — where the
//! reference artifact's blame handler panics.
//!
//! n = 2f+1, at most f Byzantine, Δ = [`ReplicaConfig::delta`] bounds the delay of every
//! message between honest replicas. Certificates need f+1 signatures from *distinct*
//! replicas.
//!
//! ## Rules
//!
//! **Views.** View v = 1, 2, … is led by `L_v = v mod n`. Every view has a *root*: view
//! 1's is genesis; view v's is a block `C` that `L_v` re-proposes (`NewView`) and that
//! f+1 replicas certify with *root votes* (a `RootCert`). Steady blocks of view v are
//! signed by `L_v` (statement `(v, digest)`), each on a parent of its own choice; the
//! chained votes below decide which of them count.
//!
//! **Rounds.** Round r ≥ 1 of view v has one round leader `R(v, r)`: the replicas that
//! led none of the rounds `r−f .. r−1` are sorted by id and one is picked by a BLAKE3
//! hash of `(v, r)` (deterministic, no RNG), so any f+1 consecutive rounds have f+1
//! distinct leaders. A round's *outcome* is either a vote of the round or a skip
//! certificate (f+1 `skip(v, r)` signatures).
//!
//! 1. *Stream.* `L_v`, once its root is certified, proposes a block whenever it has
//!    batches, an empty block after an idle pause of Δ/2, and never more than
//!    [`RUN_AHEAD`] blocks above the highest of its blocks a round leader has voted for
//!    — and a block that is not full only while fewer than [`PARTIAL_AHEAD`] wait for
//!    a vote, so that under load blocks go out full.
//!    Non-leaders forward their batches to `L_v` (inline, or only the digests with
//!    `payload_by_digest`), and re-forward what no block has carried yet after a view
//!    change. A leader half watches every block its node receives and never queues a
//!    batch twice or one a block already carried, and learns of its root only once its
//!    voter holds the root block (so it has seen the batches of the root's ancestors).
//! 2. *Chained vote.* A vote `(v, r, X, height, prev_round p, prev)` names the block `X`
//!    and the vote (or root) of round p that it extends; rounds `p+1 .. r−1` must have
//!    skip certificates, which the vote carries. A replica *links* a vote when it holds
//!    the vote of `prev`, both blocks, `X` extends (or equals) the block of `prev`, and
//!    `X` is at most [`MAX_VOTE_GAP`] heights above it. A vote is *accepted* when it is
//!    linked and its whole chain down to a certified root is. Every replica forwards a
//!    vote to all when it links it.
//! 3. *Round leader.* `R(v, s)` votes once per `(v, s)` (persisted first) as soon as it
//!    has accepted an outcome of round s−1 and holds a view-v block newer than that
//!    outcome's block (or Δ/2 later with what it has), but never later than 4Δ after it
//!    first *saw* (signature-verified) any outcome of round s−1, and not once a skip
//!    certificate of s is known. It votes for its latest view-v block if that extends
//!    the outcome's block (cut down to [`MAX_VOTE_GAP`] above it), else for the
//!    outcome's block; `prev` is the highest accepted vote (or root) followed only by
//!    skip certificates up to s−1.
//! 4. *Skip.* A replica that accepted an outcome of round s−1 at time t and has seen no
//!    signed vote of round s (any branch) by t + 6Δ signs `skip(v, s)` to all. f+1
//!    skips form a skip certificate, forwarded and counted as round s's outcome.
//! 5. *Commit.* On linking vote r, if the f links below it connect votes (no skips) of
//!    rounds `r−f .. r`, commit the block of round `r−f` and its ancestors — unless the
//!    replica has quit view v.
//!
//! **Blame and view change.**
//! 6. Blame (a signed `blame(v)` to all) on proof of equivocation (two `L_v`-signed blocks
//!    of view v at one height, the proof travels with the blame), or when no vote of v
//!    with a higher block was linked for `(8 + 8f)Δ` (a silent or withholding view
//!    leader, a root that never got certified, a round stalled by an unusable vote).
//! 7. f+1 blames form a blame certificate: forward it and quit v (no votes, skips or
//!    commits in v; persisted). 4Δ later enter v+1 with the *lock* = the accepted vote
//!    (or root) of highest rank `(view, round)` it holds (persisted). Linking and
//!    accepting go on after quitting.
//! 8. `L_{v+1}` waits 4Δ after entering, then re-proposes the block of the highest-ranked
//!    vote (or root) it has accepted, naming it. A replica root-votes (once per view,
//!    persisted) iff it has itself accepted the named vote and its rank is at least its
//!    lock's.
//!
//! ## Why it is safe
//!
//! Honest messages take < Δ. Linking and accepting are objective (hash links, leader
//! signatures), so "accepted" means the same thing everywhere; an honest replica that
//! accepts something at t has forwarded every vote of its chain by t (it forwarded each
//! when it linked it), so every honest replica accepts it by t + 3Δ: it receives the
//! votes by t + Δ and fetches missing blocks from the forwarder (each vote at most
//! [`MAX_VOTE_GAP`] ≤ [`MAX_FETCH_BLOCKS`] heights above its `prev`, so one reply per
//! vote) by t + 3Δ. Call that bound D = 3Δ.
//!
//! - *An honest round leader is never skipped after voting.* Let h = `R(v, s)` be honest
//!   and p an honest skip signer of round s, which accepted an outcome of s−1 at t_p and
//!   forwarded it. h first saw an outcome of s−1 by t_p + Δ and (rule 3) votes no later
//!   than 4Δ after that first sight, so by t_p + 5Δ; p has the vote before t_p + 6Δ and
//!   does not skip. A skip certificate needs an honest signer, so none exists for a
//!   round whose honest leader voted. (An honest leader that misses its deadline does not
//!   vote at all: then its round may be skipped, and nothing depends on it.)
//! - *Within a view.* Rounds `r−f .. r` have f+1 distinct leaders, so one, h of round s,
//!   is honest and signed exactly one vote of `(v, s)`. Every chain of outcomes reaching
//!   a round ≥ s passes through round s, which is h's vote (no skip certificate exists),
//!   and that vote names one `prev`, so all such chains share their prefix up to s. h
//!   voted only on an accepted chain (so the links below s are valid), and a committer
//!   linked the f links above `r−f` itself: every linked vote of a round ≥ s extends
//!   `X_s`, which extends the committed `X_{r−f}`. Two commits in one view are therefore
//!   on one chain.
//! - *Across views.* Let honest A commit `X_{r−f}` in v at t. No honest replica quit v
//!   before t − Δ (A would have held the forwarded blame certificate and not
//!   committed), so each enters v+1 after t + 3Δ, by when it has accepted vote r (D): its
//!   lock ranks at least `(v, s)` and, by the previous point, extends `X_s`. A root of a
//!   later view needs f+1 root votes, so an honest one, whose voter accepted a vote of
//!   rank ≥ its lock — one of rank ≥ `(v, s)`, which extends `X_s` (within v by the
//!   previous point, in later views by induction: every later vote extends its view's
//!   root). Locks only grow, so every later root, vote and commit extends `X_{r−f}`.
//! - *Crashes.* Everything a signature depends on (`last_vote`, `quit_view`, the lock,
//!   `reach`) is persisted before the signature leaves, and a replica persists its
//!   initial state when it first starts, so one that crashes before its first signature
//!   comes back as restarted. The committed mark is persisted lazily (see the `contract`
//!   module): a restarted replica may deliver again up to `COMMIT_PERSIST_EVERY` blocks
//!   it had delivered, which the engine ignores. A restarted replica is passive for 2Δ
//!   while it asks everybody for its view (`SyncRequest`/`SyncReply`: the blame
//!   certificates that took the peer into and out of its view; each peer's requests are
//!   answered within a budget, [`crate::RequestBudget`]: a burst of
//!   [`crate::contract::SYNC_REQUEST_BURST`], then one per Δ — a restarted replica asks
//!   once, again every 2Δ at most, and once more for its floor); after that it knows every
//!   quit an honest replica made, so its commits obey "not after quit". It signs no vote
//!   or skip in the view `u` it reached by then (it may have missed votes and first
//!   sightings sent before it came back), and its leader half never proposes in it. (The
//!   replies also carry the sender's highest round, so that a replica restarted in a long
//!   view accepts votes more than [`MAX_ROUND_AHEAD`] rounds beyond what it has seen
//!   itself: the (f+1)-th highest claim is one an honest replica reached.)
//!
//!   *Accepting again.* The chain below the votes a restarted replica now receives is
//!   gone, so on its own it could accept nothing in `u`. Every reply carries the top of
//!   the sender's highest accepted chain ([`TAIL_LEN`] votes at most, and the certified
//!   root when the tail reaches down to it): a vote that f+1 replies vouch for was
//!   accepted by an honest replica, so its chain is linked down to a certified root, and
//!   the restarted replica accepts it without holding that chain (an *anchor*), then
//!   links newer votes on top of it as usual. It asks again every 2Δ while it holds no
//!   accepted vote or root of its current view.
//!
//!   *Root votes.* Its lock may still lack a commit of `u` made before it came back. It
//!   root-votes again (a) once it enters a view with a lock from a view after `u`:
//!   honest replicas entered those views after it restarted, so it saw all of their
//!   votes, and the root of any view after `u` extends every earlier commit; or (b) for a
//!   re-proposal it accepted of rank at least `(u, ρ)`, where ρ, the *floor*, is the
//!   highest answer it gets within 2Δ when, on entering the view after `u`, it asks
//!   everybody how far the rounds of `u` went. Each replica answers with its `reach`:
//!   the highest `(view, round)` it voted in, locked on or voted on with a floor —
//!   persisted, so it outlives the answerer's own crashes — or with "unbounded" once its
//!   knowledge is of a later view. Why (b) is safe: a commit of `X_{r−f}` in `u` rests on
//!   votes of rounds `r−f .. r`, whose f+1 distinct leaders each persisted a `reach` of
//!   at least its round before voting, and every honest replica quit `u` (and stopped
//!   voting in it) before the question leaves. At most f replicas are faulty at any
//!   instant and a restarted one counts as faulty for more than Δ after it comes back
//!   (4Δ in the simulator), so if every honest window leader missed the question (down
//!   when it arrived, all within Δ of each other) they would all be faulty at once, with
//!   the Byzantine window leaders: f+1. One answers, so ρ is at least an honest round s of
//!   the window; every accepted vote of rank ≥ `(u, s)` passes through s's vote and
//!   extends `X_{r−f}` (the within-view point). An answer that is too high (a Byzantine
//!   one) only withholds this replica's root vote.
//!
//!   Before anchors and floors, a restarted replica root-voted only by (a): when more than
//!   f replicas restarted within one view, too few could root-vote for any later view to
//!   get a root, and the cluster stopped committing (a third of the seeds of
//!   `olympus sim --protocol artemis -n 3 --byzantine 0`).
//!
//! ## Cost
//!
//! Steady state: one leader signature per block, one vote signature per round (rounds
//! are paced by blocks: a round leader waits up to Δ/2 for a block newer than its `prev`),
//! no certificate per block, blocks are not forwarded (only fetched when a vote needs
//! them), per-vote work is O(f) (the commit walk). Votes are forwarded once by each
//! replica to all but the voter (about n² small messages per round): a driver should drop duplicates by digest before
//! verifying them. Memory is bounded by the `MAX_*` constants; the block tree prunes on
//! commit.
//!
//! ## Reference and design
//!
//! Following the reference/paper card: the streaming view leader, round leaders drawn by
//! hash among those that led none of the last f rounds, the one-hop chained vote sent to
//! all and relayed, the commit of the round r−f block on processing the vote of round r.
//! Designed here (the reference's blame handler panics): rounds' outcomes and skip
//! certificates, the 4Δ vote deadline and the 6Δ skip rule, linking and acceptance,
//! forwarding of linked votes, the vote-gap bound and block fetch, equivocation and
//! progress blame, the quit-view/4Δ/lock/re-proposal view change (Sync HotStuff's shape,
//! with the lock ranked by (view, round) and checked against the voter's own accepted
//! votes instead of a certificate), batch forwarding, the run-ahead bound and the
//! recovery protocol. Waits are 4Δ (not Sync HotStuff's 2Δ) because acceptance may need a
//! block fetch (D = 3Δ).
//!
//! [`ReplicaConfig::delta`]: crate::ReplicaConfig::delta

use crate::blocktree::{BlockTree, CommitError};
use crate::contract::{
    payload_for_block, BatchRef, Commit, Context, Dest, Event, Half, Message, Protocol,
    ReplicaConfig, SignedVote, TimerId, Verified, VerifyError,
};
use crate::election::{LeaderElection, RoundRobin};
use crate::votes::Collector;
use olympus_crypto::{Committee, Keypair};
use olympus_types::{
    AggregateSignature, Batch, Block, Digest, Height, NodeId, QuorumCert, Signature, SignerSet,
    Statement, View,
};
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// A round number within a view (round 0 is the view's root).
pub type Round = u64;

/// Most heights a vote's block may lie above the block of the vote it extends.
pub const MAX_VOTE_GAP: u64 = 64;
/// Most blocks the view leader runs ahead of the highest of its blocks voted for.
pub const RUN_AHEAD: u64 = 64;
/// A leader sends a block that is not full only while fewer than this many of its blocks
/// wait for a vote (see `Leader::pump`).
pub const PARTIAL_AHEAD: u64 = 2;
/// Most blocks in one fetch reply (≥ [`MAX_VOTE_GAP`]: one reply covers one vote's gap).
pub const MAX_FETCH_BLOCKS: usize = 128;
/// Most skip certificates a vote carries (consecutive skipped rounds before it).
pub const MAX_SKIPS: usize = 64;
/// Most votes kept per view.
pub const MAX_VIEW_VOTES: usize = 8192;
/// Most views whose votes are kept (the lock may come from an earlier view).
pub const MAX_VIEWS_KEPT: usize = 4;
/// Most rounds a vote may lie ahead of the highest round with an outcome.
pub const MAX_ROUND_AHEAD: u64 = 1024;
/// Most blocks waiting for their parent.
pub const MAX_ORPHANS: usize = 1024;
/// Most block signatures kept (to serve fetches with signed blocks).
pub const MAX_SIGS: usize = 16384;
/// Most batches in one forward message.
pub const MAX_FORWARD: usize = olympus_types::limits::MAX_BATCHES_PER_BLOCK;
/// Most batch digests remembered as already carried by a block (duplicate filter).
pub const MAX_SEEN_BATCHES: usize = 16384;
/// Most outstanding fetch requests remembered (for de-duplication).
pub const MAX_REQUESTED: usize = 1024;
/// Most votes waiting for a block.
pub const MAX_WAITING: usize = 4096;
/// Most different votes kept for one round.
pub const MAX_VOTES_PER_ROUND: usize = 4;
/// Most votes of its accepted chain a replica sends in a recovery reply (see "Crashes").
pub const TAIL_LEN: usize = 8;
/// Most times a restarted replica that holds no accepted vote of its view asks again.
pub const MAX_RESYNC_TRIES: u32 = 16;

// Voter timers.
const PROGRESS_TIMER: TimerId = TimerId(1);
const QUIT_TIMER: TimerId = TimerId(2);
const RESYNC_TIMER: TimerId = TimerId(3);
const NEW_VIEW_TIMER: TimerId = TimerId(4);
const FLOOR_TIMER: TimerId = TimerId(5);
const RETRY_SYNC_TIMER: TimerId = TimerId(6);
const SKIP_TIMER_BASE: u64 = 1 << 40;
const VOTE_TIMER_BASE: u64 = 2 << 40;
const ROUND_MASK: u64 = (1 << 40) - 1;
// Leader timers.
const IDLE_TIMER: TimerId = TimerId(1);

fn leader_of(view: View, n: usize) -> NodeId {
    RoundRobin { n }.leader(view)
}

/// f for n = 2f+1.
pub fn f_of(n: usize) -> usize {
    n.saturating_sub(1) / 2
}

/// Certificate threshold f+1.
pub fn quorum(n: usize) -> usize {
    f_of(n) + 1
}

/// The vote slot `(view, round)` as one number for [`SignedVote::view`].
pub fn vote_slot(view: View, round: Round) -> u64 {
    (view << 32) | (round & 0xffff_ffff)
}

// ---------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------

pub fn block_statement(view: View, block: &Digest) -> Digest {
    Statement::new("artemis/block")
        .u64(view)
        .digest(block)
        .finish()
}

/// The identity of the root `(view, block)`: what root votes sign.
pub fn root_id(view: View, block: &Digest, height: Height) -> Digest {
    Statement::new("artemis/root")
        .u64(view)
        .digest(block)
        .u64(height)
        .finish()
}

/// The identity of a chained vote: what its round leader signs.
pub fn vote_id(
    view: View,
    round: Round,
    block: &Digest,
    height: Height,
    prev_round: Round,
    prev: &Digest,
) -> Digest {
    Statement::new("artemis/vote")
        .u64(view)
        .u64(round)
        .digest(block)
        .u64(height)
        .u64(prev_round)
        .digest(prev)
        .finish()
}

pub fn skip_statement(view: View, round: Round) -> Digest {
    Statement::new("artemis/skip").u64(view).u64(round).finish()
}

pub fn blame_statement(view: View) -> Digest {
    Statement::new("artemis/blame").u64(view).finish()
}

pub fn new_view_statement(view: View, justify: &Digest, block: &Digest) -> Digest {
    Statement::new("artemis/new-view")
        .u64(view)
        .digest(justify)
        .digest(block)
        .finish()
}

/// The leader of round `round` of `view` given the leaders of the f rounds before it
/// (fewer near the start of the view), oldest first.
pub fn pick_round_leader(view: View, round: Round, recent: &[NodeId], n: usize) -> NodeId {
    let eligible: Vec<NodeId> = (0..n as u16)
        .map(NodeId)
        .filter(|id| !recent.contains(id))
        .collect();
    let h = Statement::new("artemis/round-leader")
        .u64(view)
        .u64(round)
        .finish();
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    let x = u64::from_le_bytes(b);
    match eligible.len() {
        0 => NodeId((round % n as u64) as u16),
        k => eligible[(x % k as u64) as usize],
    }
}

/// The round-leader schedule of one view, computed incrementally and kept for a window
/// of recent rounds (a leader depends on the f leaders before it).
#[derive(Debug, Clone)]
pub struct Schedule {
    view: View,
    n: usize,
    f: usize,
    /// Round of `leaders[0]`.
    start: Round,
    leaders: VecDeque<NodeId>,
}

impl Schedule {
    const KEEP: usize = 8192;

    pub fn new(view: View, n: usize) -> Self {
        Schedule {
            view,
            n,
            f: f_of(n),
            start: 1,
            leaders: VecDeque::new(),
        }
    }

    /// `R(view, round)`, or None for round 0 or a round that fell out of the window.
    pub fn leader(&mut self, round: Round) -> Option<NodeId> {
        if round < self.start {
            return None;
        }
        while self.start + (self.leaders.len() as u64) <= round {
            let next = self.start + self.leaders.len() as u64;
            let k = self.leaders.len().min(self.f);
            let recent: Vec<NodeId> = self
                .leaders
                .iter()
                .skip(self.leaders.len() - k)
                .copied()
                .collect();
            let l = pick_round_leader(self.view, next, &recent, self.n);
            self.leaders.push_back(l);
            if self.leaders.len() > Self::KEEP {
                self.leaders.pop_front();
                self.start += 1;
            }
        }
        self.leaders.get((round - self.start) as usize).copied()
    }
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// A block with its view leader's signature on `(block.view, digest)`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SignedBlock {
    pub block: Block,
    pub signature: Signature,
}

/// A lock: an accepted vote (round ≥ 1) or root (round 0) and its block. Rank = (view,
/// round).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Lock {
    pub view: View,
    pub round: Round,
    /// The vote id (or root id).
    pub id: Digest,
    pub block: Digest,
    pub height: Height,
}

impl Lock {
    pub fn genesis() -> Self {
        let g = Block::genesis_digest();
        Lock {
            view: 0,
            round: 0,
            id: root_id(0, &g, 0),
            block: g,
            height: 0,
        }
    }
    pub fn rank(&self) -> (View, Round) {
        (self.view, self.round)
    }
}

/// The view leader's re-proposal of the block of `justify` as the root of `view`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct NewView {
    pub view: View,
    pub justify: Lock,
    /// The block (None: genesis).
    pub block: Option<SignedBlock>,
    /// `L_view`'s signature on [`new_view_statement`].
    pub signature: Signature,
}

/// A root vote for `block` as the root of `view`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RootVote {
    pub view: View,
    pub block: Digest,
    pub height: Height,
    pub voter: NodeId,
    pub signature: Signature,
}

/// f+1 root votes.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RootCert {
    pub view: View,
    pub block: Digest,
    pub height: Height,
    pub sig: AggregateSignature,
}

/// f+1 skips of `(view, round)`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SkipCert {
    pub view: View,
    pub round: Round,
    pub sig: AggregateSignature,
}

/// A chained vote of round `round ≥ 1` by `R(view, round)`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ChainVote {
    pub view: View,
    pub round: Round,
    pub block: Digest,
    pub height: Height,
    pub prev_round: Round,
    /// The vote id of round `prev_round` (the root id when it is 0).
    pub prev: Digest,
    pub voter: NodeId,
    pub signature: Signature,
    /// Skip certificates of rounds `prev_round + 1 .. round − 1`, in order.
    pub skips: Vec<SkipCert>,
}

impl ChainVote {
    pub fn id(&self) -> Digest {
        vote_id(
            self.view,
            self.round,
            &self.block,
            self.height,
            self.prev_round,
            &self.prev,
        )
    }
}

#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Skip {
    pub view: View,
    pub round: Round,
    pub voter: NodeId,
    pub signature: Signature,
}

/// Two blocks of one view and height, both signed by the view's leader.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Equivocation {
    pub a: SignedBlock,
    pub b: SignedBlock,
}

#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Blame {
    pub view: View,
    pub sender: NodeId,
    pub signature: Signature,
    pub proof: Option<Box<Equivocation>>,
}

#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct BlameCert {
    pub view: View,
    pub sig: AggregateSignature,
}

/// What a replica's voter half tells its own leader half (accepted only from itself).
/// Boxed inside [`ArtemisMsg`], so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Local {
    /// The voter is in `view` (and has quit it when `quitting`).
    View { view: View, quitting: bool },
    /// The root of `view` is certified.
    Root {
        view: View,
        block: Digest,
        height: Height,
    },
    /// Re-propose this as the root of `view`.
    Plan {
        view: View,
        justify: Lock,
        block: Option<SignedBlock>,
    },
}

/// A recovery reply: the sender's view and the blame certificates around it, what it
/// knows of the asked view's rounds, and the top of its accepted chain.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SyncReply {
    pub view: View,
    pub entered_by: Option<BlameCert>,
    pub quit: Option<BlameCert>,
    /// The highest round of `view` with an accepted outcome at the sender (lets a
    /// restarted replica accept votes of a long view: see [`MAX_ROUND_AHEAD`]).
    pub round: Round,
    /// The view the request asked about.
    pub reach_view: View,
    /// The highest round of `reach_view` the sender knows some replica reached: its own
    /// persisted vote or lock, what it accepted, what it learned when it recovered;
    /// `Round::MAX` when it no longer knows (its lock or votes are of a later view).
    pub reach: Round,
    /// The last (at most [`TAIL_LEN`]) votes of the sender's highest accepted chain,
    /// oldest first: the sender vouches that it accepted each.
    pub tail: Vec<ChainVote>,
    /// The certified root the tail starts from, when the tail reaches down to it.
    pub root: Option<RootCert>,
}

/// Artemis's messages.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ArtemisMsg {
    Propose(Box<SignedBlock>),
    NewView(Box<NewView>),
    RootVote(RootVote),
    RootCert(RootCert),
    Vote(Box<ChainVote>),
    Skip(Skip),
    SkipCert(SkipCert),
    Blame(Blame),
    BlameCert(BlameCert),
    /// Batches for the view leader: inline, or only digests (`payload_by_digest`).
    Forward {
        batches: Vec<Batch>,
        digests: Vec<Digest>,
    },
    Local(Box<Local>),
    Fetch(Digest),
    Blocks(Vec<SignedBlock>),
    /// A restarted replica asks for the peers' views and what they know of the rounds
    /// of the given view (see "Crashes").
    SyncRequest(View),
    SyncReply(Box<SyncReply>),
}

impl Message for ArtemisMsg {
    fn dest(&self) -> Dest {
        match self {
            ArtemisMsg::Propose(_)
            | ArtemisMsg::NewView(_)
            | ArtemisMsg::Blocks(_)
            | ArtemisMsg::Vote(_)
            | ArtemisMsg::RootCert(_) => Dest::Both,
            ArtemisMsg::Forward { .. } | ArtemisMsg::Local(_) => Dest::Leader,
            _ => Dest::Voter,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            ArtemisMsg::Propose(_) => "propose",
            ArtemisMsg::NewView(_) => "new_view",
            ArtemisMsg::RootVote(_) => "root_vote",
            ArtemisMsg::RootCert(_) => "root_cert",
            ArtemisMsg::Vote(_) => "vote",
            ArtemisMsg::Skip(_) => "skip",
            ArtemisMsg::SkipCert(_) => "skip_cert",
            ArtemisMsg::Blame(_) => "blame",
            ArtemisMsg::BlameCert(_) => "blame_cert",
            ArtemisMsg::Forward { .. } => "forward",
            ArtemisMsg::Local(_) => "local",
            ArtemisMsg::Fetch(_) => "fetch",
            ArtemisMsg::Blocks(_) => "blocks",
            ArtemisMsg::SyncRequest(_) => "sync_request",
            ArtemisMsg::SyncReply(_) => "sync_reply",
        }
    }
    fn signed_vote(&self) -> Option<SignedVote> {
        match self {
            ArtemisMsg::Vote(v) => Some(SignedVote {
                signer: v.voter,
                view: vote_slot(v.view, v.round),
                block: v.block,
            }),
            ArtemisMsg::RootVote(v) => Some(SignedVote {
                signer: v.voter,
                view: vote_slot(v.view, 0),
                block: v.block,
            }),
            _ => None,
        }
    }
}

/// What the voter persists before a signature leaves.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Safety {
    pub view: View,
    /// Highest view quit: no votes, skips or commits in a view at or below it.
    pub quit_view: View,
    /// Highest `(view, round)` signed (root votes are round 0).
    pub last_vote: (View, Round),
    pub lock: Lock,
    /// The highest `(view, round)` this replica knows a round leader reached: its own
    /// votes, its lock, and what it learned when it recovered (see "Crashes"). Others ask
    /// for it after a restart, so it must survive this replica's own crashes.
    pub reach: (View, Round),
    /// The last committed block (digest, height, view).
    pub committed: (Digest, Height, View),
}

// ---------------------------------------------------------------------------------------
// The stateless verifier
// ---------------------------------------------------------------------------------------

fn malformed(s: &str) -> VerifyError {
    VerifyError::Malformed(s.to_string())
}

fn bad_cert(what: &str, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::BadCertificate(format!("{what}: {e}"))
}

fn verify_signed_block(sb: &SignedBlock, c: &Committee) -> Result<(), VerifyError> {
    let b = &sb.block;
    if b.is_genesis() || b.view == 0 || b.height == 0 {
        return Err(malformed("steady block at view or height 0"));
    }
    b.validate()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let leader = leader_of(b.view, c.size());
    if b.proposer != leader || !b.justify.is_genesis() {
        return Err(malformed("block not by its view's leader"));
    }
    c.verify(leader, &block_statement(b.view, &b.digest()), &sb.signature)
        .map_err(|_| VerifyError::BadSignature(leader))
}

fn verify_root_cert(r: &RootCert, c: &Committee) -> Result<(), VerifyError> {
    c.verify_aggregate(
        &root_id(r.view, &r.block, r.height),
        &r.sig,
        quorum(c.size()),
    )
    .map_err(|e| bad_cert("root certificate", e))
}

fn verify_skip_cert(s: &SkipCert, c: &Committee) -> Result<(), VerifyError> {
    if s.round == 0 {
        return Err(malformed("skip of round 0"));
    }
    c.verify_aggregate(&skip_statement(s.view, s.round), &s.sig, quorum(c.size()))
        .map_err(|e| bad_cert("skip certificate", e))
}

fn verify_blame_cert(b: &BlameCert, c: &Committee) -> Result<(), VerifyError> {
    c.verify_aggregate(&blame_statement(b.view), &b.sig, quorum(c.size()))
        .map_err(|e| bad_cert("blame certificate", e))
}

fn verify_vote(v: &ChainVote, c: &Committee) -> Result<(), VerifyError> {
    if v.round == 0 || v.view == 0 || v.prev_round >= v.round {
        return Err(malformed("vote rounds"));
    }
    if v.voter.index() >= c.size() {
        return Err(malformed("unknown voter"));
    }
    let gap = v.round - v.prev_round - 1;
    if gap > MAX_SKIPS as u64 || v.skips.len() as u64 != gap {
        return Err(malformed("vote does not carry the skips of its gap"));
    }
    for (i, s) in v.skips.iter().enumerate() {
        if s.view != v.view || s.round != v.prev_round + 1 + i as u64 {
            return Err(malformed("vote carries a skip of another round"));
        }
        verify_skip_cert(s, c)?;
    }
    c.verify(v.voter, &v.id(), &v.signature)
        .map_err(|_| VerifyError::BadSignature(v.voter))
}

fn verify_new_view(nv: &NewView, c: &Committee) -> Result<(), VerifyError> {
    let j = &nv.justify;
    if j.view >= nv.view || nv.view == 0 {
        return Err(malformed("new-view justification not from an earlier view"));
    }
    match &nv.block {
        Some(sb) => {
            verify_signed_block(sb, c)?;
            if sb.block.digest() != j.block || sb.block.height != j.height {
                return Err(malformed("new-view block is not the justified one"));
            }
        }
        None => {
            if j.block != Block::genesis_digest() || j.height != 0 {
                return Err(malformed("new-view without block must re-propose genesis"));
            }
        }
    }
    if j.round == 0 && j.id != root_id(j.view, &j.block, j.height) {
        return Err(malformed("root justification id"));
    }
    let leader = leader_of(nv.view, c.size());
    c.verify(
        leader,
        &new_view_statement(nv.view, &j.id, &j.block),
        &nv.signature,
    )
    .map_err(|_| VerifyError::BadSignature(leader))
}

fn wrong_sender(from: NodeId, signer: NodeId) -> Result<(), VerifyError> {
    if from != signer {
        return Err(VerifyError::WrongSender {
            sender: from,
            signer,
        });
    }
    Ok(())
}

/// [`Protocol::claims`]: the leader's signature on a streamed block and a round
/// leader's on its chained vote (the two messages of every round).
pub fn claims(msg: &ArtemisMsg, c: &Committee, out: &mut Vec<crate::Claim>) {
    match msg {
        ArtemisMsg::Propose(sb) => {
            let b = &sb.block;
            let statement = block_statement(b.view, &b.digest());
            out.push(crate::Claim::Single(
                leader_of(b.view, c.size()),
                statement,
                sb.signature,
            ));
        }
        ArtemisMsg::Vote(v) => out.push(crate::Claim::Single(v.voter, v.id(), v.signature)),
        _ => {}
    }
}

/// Checks every signature and bound of a message (stateless).
pub fn verify(
    msg: ArtemisMsg,
    from: NodeId,
    c: &Committee,
) -> Result<Verified<ArtemisMsg>, VerifyError> {
    match &msg {
        ArtemisMsg::Propose(sb) => verify_signed_block(sb, c)?,
        ArtemisMsg::NewView(nv) => verify_new_view(nv, c)?,
        ArtemisMsg::RootVote(v) => {
            wrong_sender(from, v.voter)?;
            c.verify(v.voter, &root_id(v.view, &v.block, v.height), &v.signature)
                .map_err(|_| VerifyError::BadSignature(v.voter))?;
        }
        ArtemisMsg::RootCert(r) => verify_root_cert(r, c)?,
        ArtemisMsg::Vote(v) => verify_vote(v, c)?,
        ArtemisMsg::Skip(s) => {
            wrong_sender(from, s.voter)?;
            if s.round == 0 {
                return Err(malformed("skip of round 0"));
            }
            c.verify(s.voter, &skip_statement(s.view, s.round), &s.signature)
                .map_err(|_| VerifyError::BadSignature(s.voter))?;
        }
        ArtemisMsg::SkipCert(s) => verify_skip_cert(s, c)?,
        ArtemisMsg::Blame(b) => {
            c.verify(b.sender, &blame_statement(b.view), &b.signature)
                .map_err(|_| VerifyError::BadSignature(b.sender))?;
            if let Some(e) = &b.proof {
                if e.a.block.view != b.view
                    || e.b.block.view != b.view
                    || e.a.block.height != e.b.block.height
                    || e.a.block.digest() == e.b.block.digest()
                {
                    return Err(malformed("equivocation proof is not one"));
                }
                verify_signed_block(&e.a, c)?;
                verify_signed_block(&e.b, c)?;
            }
        }
        ArtemisMsg::BlameCert(b) => verify_blame_cert(b, c)?,
        ArtemisMsg::Forward { batches, digests } => {
            if batches.len() + digests.len() > MAX_FORWARD {
                return Err(malformed("too many forwarded batches"));
            }
            for b in batches {
                b.validate()
                    .map_err(|e| VerifyError::Malformed(e.to_string()))?;
            }
        }
        ArtemisMsg::Local(l) => {
            if let Local::Plan {
                block: Some(sb), ..
            } = &**l
            {
                verify_signed_block(sb, c)?;
            }
        }
        ArtemisMsg::Fetch(_) | ArtemisMsg::SyncRequest(_) => {}
        ArtemisMsg::Blocks(bs) => {
            if bs.len() > MAX_FETCH_BLOCKS {
                return Err(malformed("too many blocks"));
            }
            for b in bs {
                verify_signed_block(b, c)?;
            }
        }
        ArtemisMsg::SyncReply(r) => {
            if let Some(e) = &r.entered_by {
                if e.view + 1 != r.view {
                    return Err(malformed("entry certificate not for the previous view"));
                }
                verify_blame_cert(e, c)?;
            }
            if let Some(q) = &r.quit {
                if q.view != r.view {
                    return Err(malformed("quit certificate not for the view"));
                }
                verify_blame_cert(q, c)?;
            }
            if r.tail.len() > TAIL_LEN {
                return Err(malformed("recovery tail too long"));
            }
            for v in &r.tail {
                verify_vote(v, c)?;
            }
            if let Some(rc) = &r.root {
                verify_root_cert(rc, c)?;
            }
        }
    }
    Ok(Verified::assume_verified(msg))
}

type Cx = Context<ArtemisMsg, Safety>;

// ---------------------------------------------------------------------------------------
// Leader half
// ---------------------------------------------------------------------------------------

/// The leader half: streams blocks when it leads the view, forwards batches to the view
/// leader otherwise. It follows the view through its own voter half ([`Local`]).
pub struct Leader {
    id: NodeId,
    n: usize,
    delta: Duration,
    key: Arc<Keypair>,
    cfg: ReplicaConfig,
    view: View,
    quitting: bool,
    /// After a restart: never propose in a view at or below this one.
    passive_through: View,
    proposed_new_view: bool,
    /// The certified root of the view (digest, height).
    root: Option<(Digest, Height)>,
    /// The latest block proposed in this view.
    tip: Option<(Digest, Height)>,
    /// Highest height of one of this view's own blocks that a round leader voted for.
    voted_height: Height,
    /// This view's own blocks by height (pruned below `voted_height`).
    own: BTreeMap<Height, Digest>,
    idle_armed: bool,
    pending: VecDeque<BatchRef>,
    /// Digests in `pending` (a batch is never pending twice).
    pending_set: HashSet<Digest>,
    /// Batches forwarded to the view leader and not yet seen in a block, in order.
    forwarded: BTreeMap<u64, BatchRef>,
    forwarded_index: HashMap<Digest, u64>,
    next_seq: u64,
    /// Batch digests already proposed or seen in a block (bounded).
    seen: HashSet<Digest>,
    seen_order: VecDeque<Digest>,
}

impl Leader {
    pub fn new(cfg: &ReplicaConfig, key: Arc<Keypair>, restored: Option<&Safety>) -> Self {
        let (view, passive_through, quitting) = match restored {
            Some(s) => (s.view, s.view, s.quit_view >= s.view),
            None => (1, 0, false),
        };
        Leader {
            id: cfg.id,
            n: cfg.n,
            delta: cfg.delta,
            key,
            cfg: cfg.clone(),
            view,
            quitting,
            passive_through,
            proposed_new_view: false,
            root: None,
            tip: None,
            voted_height: 0,
            own: BTreeMap::new(),
            idle_armed: false,
            pending: VecDeque::new(),
            pending_set: HashSet::new(),
            forwarded: BTreeMap::new(),
            forwarded_index: HashMap::new(),
            next_seq: 0,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    fn leads(&self) -> bool {
        leader_of(self.view, self.n) == self.id && self.view > self.passive_through
    }

    fn mark_seen(&mut self, d: Digest) {
        if let Some(seq) = self.forwarded_index.remove(&d) {
            self.forwarded.remove(&seq);
        }
        if self.seen.insert(d) {
            self.seen_order.push_back(d);
            while self.seen_order.len() > MAX_SEEN_BATCHES {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// Queues a batch for a block unless it is queued already, was already carried by a
    /// block, or the queue is full.
    fn push_pending(&mut self, b: BatchRef) -> bool {
        if self.seen.contains(&b.digest)
            || self.pending_set.contains(&b.digest)
            || self.pending.len() >= self.cfg.max_pending_batches
        {
            return false;
        }
        self.pending_set.insert(b.digest);
        self.pending.push_back(b);
        true
    }

    fn mark_block(&mut self, b: &Block) {
        for d in b.payload.batch_digests() {
            self.mark_seen(d);
        }
    }

    fn forward_msg(&self, batches: &[BatchRef]) -> ArtemisMsg {
        if self.cfg.payload_by_digest {
            ArtemisMsg::Forward {
                batches: Vec::new(),
                digests: batches.iter().map(|b| b.digest).collect(),
            }
        } else {
            ArtemisMsg::Forward {
                batches: batches.iter().map(|b| (*b.batch).clone()).collect(),
                digests: Vec::new(),
            }
        }
    }

    fn remember_forwarded(&mut self, b: BatchRef) -> bool {
        if self.forwarded.len() >= self.cfg.max_pending_batches
            || self.forwarded_index.contains_key(&b.digest)
        {
            return false;
        }
        self.forwarded_index.insert(b.digest, self.next_seq);
        self.forwarded.insert(self.next_seq, b);
        self.next_seq += 1;
        true
    }

    /// After a view change: hand everything not yet in a block to the new view leader
    /// (or keep it, when that is this replica).
    fn reforward(&mut self, cx: &mut Cx) {
        let mine = leader_of(self.view, self.n) == self.id;
        if mine && self.leads() {
            let fwd: Vec<BatchRef> = std::mem::take(&mut self.forwarded).into_values().collect();
            self.forwarded_index.clear();
            for b in fwd {
                self.push_pending(b);
            }
            return;
        }
        // Own pending batches go to the new leader too.
        let own: Vec<BatchRef> = self.pending.drain(..).collect();
        self.pending_set.clear();
        for b in own {
            self.remember_forwarded(b);
        }
        if mine {
            return; // restarted in this view: keep them for the next one
        }
        let to = leader_of(self.view, self.n);
        let all: Vec<BatchRef> = self.forwarded.values().cloned().collect();
        for chunk in all.chunks(MAX_FORWARD) {
            cx.send(to, self.forward_msg(chunk));
        }
    }

    /// Whether the waiting batches fill a block.
    fn block_is_full(&self) -> bool {
        if self.pending.len() >= self.cfg.max_batches_per_block {
            return true;
        }
        let mut txs = 0usize;
        for b in &self.pending {
            txs += b.batch.txs.len();
            if txs >= self.cfg.max_block_txs {
                return true;
            }
        }
        false
    }

    fn base_height(&self) -> Height {
        self.root.map_or(0, |r| r.1).max(self.voted_height)
    }

    fn can_stream(&self) -> bool {
        self.leads() && !self.quitting && self.root.is_some()
    }

    /// Proposes while batches wait and the run-ahead bound allows; otherwise arms the
    /// idle timer for an empty block.
    fn pump(&mut self, cx: &mut Cx) {
        if !self.can_stream() {
            return;
        }
        loop {
            let tip_h = self.tip.map_or(0, |t| t.1);
            if tip_h >= self.base_height() + RUN_AHEAD {
                return;
            }
            if self.pending.is_empty() {
                if !self.idle_armed {
                    self.idle_armed = true;
                    cx.set_timer(IDLE_TIMER, self.delta / 2);
                }
                return;
            }
            // Under load, blocks go out full: a partial block only while fewer than
            // PARTIAL_AHEAD blocks wait for a vote; otherwise the batches wait for more
            // (or for a vote, which pumps again).
            if tip_h >= self.base_height() + PARTIAL_AHEAD && !self.block_is_full() {
                return;
            }
            self.propose(false, cx);
        }
    }

    fn propose(&mut self, idle: bool, cx: &mut Cx) {
        let Some(root) = self.root else { return };
        let (parent, ph) = self.tip.unwrap_or(root);
        if !self.seen.is_empty() {
            let seen = &self.seen;
            let set = &mut self.pending_set;
            self.pending.retain(|b| {
                let keep = !seen.contains(&b.digest);
                if !keep {
                    set.remove(&b.digest);
                }
                keep
            });
        }
        if self.pending.is_empty() && !idle {
            return;
        }
        let (payload, count) = payload_for_block(&mut self.pending, &self.cfg);
        for d in payload.batch_digests() {
            self.pending_set.remove(&d);
        }
        for d in payload.batch_digests() {
            self.mark_seen(d);
        }
        let block = Block {
            parent,
            view: self.view,
            height: ph + 1,
            proposer: self.id,
            justify: QuorumCert::genesis(),
            payload,
        };
        let digest = block.digest();
        cx.event(Event::Proposed {
            view: self.view,
            height: block.height,
            block: digest,
            batches: count,
        });
        self.tip = Some((digest, block.height));
        self.own.insert(block.height, digest);
        let signature = self.key.sign(&block_statement(self.view, &digest));
        cx.broadcast(ArtemisMsg::Propose(Box::new(SignedBlock {
            block,
            signature,
        })));
    }

    fn on_local(&mut self, l: Local, cx: &mut Cx) {
        match l {
            Local::View { view, quitting } => {
                if view < self.view || (view == self.view && quitting == self.quitting) {
                    return;
                }
                if view == self.view && !quitting {
                    return; // never un-quit a view
                }
                let new_view = view > self.view;
                self.view = view;
                self.quitting = quitting;
                if new_view {
                    self.proposed_new_view = false;
                    self.root = None;
                    self.tip = None;
                    self.voted_height = 0;
                    self.own.clear();
                }
                if self.quitting {
                    self.idle_armed = false;
                    cx.cancel_timer(IDLE_TIMER);
                } else {
                    self.reforward(cx);
                }
            }
            Local::Root {
                view,
                block,
                height,
            } => {
                if view == self.view && self.root.is_none() {
                    self.root = Some((block, height));
                    self.pump(cx);
                }
            }
            Local::Plan {
                view,
                justify,
                block,
            } => {
                if view != self.view || self.quitting || !self.leads() || self.proposed_new_view {
                    return;
                }
                self.proposed_new_view = true;
                let signature =
                    self.key
                        .sign(&new_view_statement(view, &justify.id, &justify.block));
                cx.event(Event::Proposed {
                    view,
                    height: justify.height,
                    block: justify.block,
                    batches: 0,
                });
                cx.broadcast(ArtemisMsg::NewView(Box::new(NewView {
                    view,
                    justify,
                    block,
                    signature,
                })));
            }
        }
    }
}

impl Half<ArtemisMsg, Safety> for Leader {
    fn on_start(&mut self, _cx: &mut Cx) {}

    fn on_message(&mut self, from: NodeId, msg: Verified<ArtemisMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            ArtemisMsg::Local(l) if from == self.id => self.on_local(*l, cx),
            // Batches already in a block (one this replica may build on) are never
            // proposed again: the leader half watches every block its node receives.
            ArtemisMsg::Propose(sb) => self.mark_block(&sb.block),
            ArtemisMsg::NewView(nv) => {
                if let Some(sb) = &nv.block {
                    self.mark_block(&sb.block);
                }
            }
            ArtemisMsg::Blocks(bs) => {
                for sb in &bs {
                    self.mark_block(&sb.block);
                }
            }
            ArtemisMsg::Vote(v)
                if v.view == self.view && self.own.get(&v.height) == Some(&v.block) =>
            {
                if v.height > self.voted_height {
                    self.voted_height = v.height;
                    self.own = self.own.split_off(&v.height);
                }
                self.pump(cx);
            }
            ArtemisMsg::RootCert(_) => {}
            ArtemisMsg::Forward { batches, digests } => {
                // Accept for this view, or the next when the sender entered it first.
                let next = leader_of(self.view + 1, self.n) == self.id;
                if !(self.leads() || next) {
                    return;
                }
                let mut refs: Vec<BatchRef> = batches.into_iter().map(BatchRef::new).collect();
                // Digest mode: the engine fetches the bodies; the block carries digests only.
                refs.extend(digests.into_iter().map(|d| BatchRef {
                    digest: d,
                    batch: Arc::new(Batch::new(Vec::new())),
                }));
                for b in refs {
                    self.push_pending(b);
                }
                self.pump(cx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        if id == IDLE_TIMER {
            self.idle_armed = false;
            if self.can_stream() {
                let tip_h = self.tip.map_or(0, |t| t.1);
                if tip_h < self.base_height() + RUN_AHEAD {
                    self.propose(true, cx);
                }
                self.pump(cx);
            }
        }
    }

    fn on_batch(&mut self, batch: BatchRef, cx: &mut Cx) -> bool {
        if self.leads() && !self.quitting {
            if !self.push_pending(batch) {
                return false;
            }
            self.pump(cx);
            return true;
        }
        let b = batch.clone();
        if !self.remember_forwarded(batch) {
            return false;
        }
        if !self.quitting && leader_of(self.view, self.n) != self.id {
            cx.send(leader_of(self.view, self.n), self.forward_msg(&[b]));
        }
        true
    }
}

// ---------------------------------------------------------------------------------------
// Voter half
// ---------------------------------------------------------------------------------------

/// A vote (round ≥ 1) or a certified root (round 0) as a voter keeps it.
#[derive(Debug, Clone)]
struct Entry {
    round: Round,
    block: Digest,
    height: Height,
    prev_round: Round,
    prev: Digest,
    /// The link to `prev` checked.
    linked: bool,
    /// Linked all the way down to a certified root.
    full: bool,
    msg: Option<Box<ChainVote>>,
}

/// What a voter knows of one view's votes, skips and outcomes.
#[derive(Debug)]
struct ViewVotes {
    entries: HashMap<Digest, Entry>,
    by_round: BTreeMap<Round, Vec<Digest>>,
    children: HashMap<Digest, Vec<Digest>>,
    /// Rounds of which a signed vote was seen (any branch, linked or not).
    seen_rounds: BTreeSet<Round>,
    /// When an outcome of a round (a vote or a skip certificate) was first seen.
    first_seen: BTreeMap<Round, Duration>,
    skip_certs: BTreeMap<Round, SkipCert>,
    /// Rounds with an accepted outcome.
    outcomes: BTreeSet<Round>,
    /// The accepted entry of highest rank.
    best: Option<Lock>,
    /// Highest block height of a linked vote.
    progress: Height,
    /// The view's certified roots (one, unless f Byzantine replicas root-voted twice).
    roots: Vec<RootCert>,
    sched: Schedule,
}

impl ViewVotes {
    fn new(view: View, n: usize) -> Self {
        ViewVotes {
            entries: HashMap::new(),
            by_round: BTreeMap::new(),
            children: HashMap::new(),
            seen_rounds: BTreeSet::new(),
            first_seen: BTreeMap::new(),
            skip_certs: BTreeMap::new(),
            outcomes: BTreeSet::new(),
            best: None,
            progress: 0,
            roots: Vec::new(),
            sched: Schedule::new(view, n),
        }
    }

    fn max_outcome(&self) -> Round {
        self.outcomes.last().copied().unwrap_or(0)
    }

    /// Forgets the lowest round (bounded memory in a long view).
    fn prune_lowest(&mut self) {
        if let Some((r, ids)) = self.by_round.pop_first() {
            for id in ids {
                if let Some(e) = self.entries.remove(&id) {
                    if let Some(c) = self.children.get_mut(&e.prev) {
                        c.retain(|x| *x != id);
                        if c.is_empty() {
                            self.children.remove(&e.prev);
                        }
                    }
                }
            }
            self.seen_rounds = self.seen_rounds.split_off(&r);
            self.first_seen = self.first_seen.split_off(&r);
            self.skip_certs = self.skip_certs.split_off(&r);
        }
    }
}

/// The voter half: block validation and equivocation detection, chained votes, skips,
/// the commit rule, blame and the view change, catch-up and recovery.
pub struct Voter {
    id: NodeId,
    n: usize,
    f: usize,
    delta: Duration,
    key: Arc<Keypair>,
    committee: Arc<Committee>,
    safety: Safety,
    quitting: bool,
    quit_cert: Option<BlameCert>,
    entered_by: Option<BlameCert>,
    tree: BlockTree,
    sigs: HashMap<Digest, Signature>,
    sig_order: VecDeque<Digest>,
    orphans: BTreeMap<(Height, Digest), (NodeId, SignedBlock)>,
    views: BTreeMap<View, ViewVotes>,
    /// Votes (view, id) waiting for a block, and who to ask for it.
    waiting: HashMap<Digest, (NodeId, Vec<(View, Digest)>)>,
    requested: HashSet<(Digest, NodeId)>,
    /// Recovery replies' `(view, round)` per sender.
    round_claims: BTreeMap<NodeId, (View, Round)>,
    /// Who vouched, in a recovery reply's tail, for having accepted a vote `(view, id)`.
    vouches: BTreeMap<(View, Digest), SignerSet>,
    /// An open question about the reach of view `.0` (the view this replica recovered
    /// in), with the highest answer so far; closed 2Δ after it was asked.
    floor_query: Option<(View, Round)>,
    /// The answer: every round of view `.0` that a commit may rest on is at most `.1`.
    floor: Option<(View, Round)>,
    resync_tries: u32,
    // Current view.
    slots: BTreeMap<Height, Digest>,
    tip: Option<(Digest, Height)>,
    equivocated: bool,
    my_blame: Option<Blame>,
    skip_armed: BTreeSet<Round>,
    my_skips: BTreeSet<Round>,
    vote_wait: BTreeSet<Round>,
    new_view: Option<(NodeId, NewView)>,
    // Collections.
    root_votes: Collector<(View, Digest, Height), Signature>,
    skips: Collector<(View, Round), Signature>,
    blames: Collector<View, Signature>,
    // Recovery.
    passive: bool,
    restarted: bool,
    recover_view: View,
    lock_synced: bool,
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
                    lock: Lock::genesis(),
                    reach: (0, 0),
                    committed: t.committed(),
                };
                (t, s)
            }
        };
        let n = cfg.n;
        Voter {
            id: cfg.id,
            n,
            f: f_of(n),
            delta: cfg.delta,
            key,
            committee,
            quitting: safety.quit_view >= safety.view,
            quit_cert: None,
            entered_by: None,
            tree,
            sigs: HashMap::new(),
            sig_order: VecDeque::new(),
            orphans: BTreeMap::new(),
            views: BTreeMap::new(),
            waiting: HashMap::new(),
            requested: HashSet::new(),
            round_claims: BTreeMap::new(),
            vouches: BTreeMap::new(),
            floor_query: None,
            floor: None,
            resync_tries: 0,
            slots: BTreeMap::new(),
            tip: None,
            equivocated: false,
            my_blame: None,
            skip_armed: BTreeSet::new(),
            my_skips: BTreeSet::new(),
            vote_wait: BTreeSet::new(),
            new_view: None,
            root_votes: Collector::new(quorum(n), 64),
            skips: Collector::new(quorum(n), 1024),
            blames: Collector::new(quorum(n), 64),
            passive: restarted,
            restarted,
            recover_view: 0,
            lock_synced: !restarted,
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

    /// A round of view `w` that some honest replica had reached, by the recovery
    /// replies: the (f+1)-th highest claim (at most f claims are Byzantine).
    fn round_floor(&self, w: View) -> Round {
        let mut claims: Vec<Round> = self
            .round_claims
            .values()
            .filter(|(v, _)| *v == w)
            .map(|(_, r)| *r)
            .collect();
        claims.sort_unstable_by(|a, b| b.cmp(a));
        claims.get(self.f).copied().unwrap_or(0)
    }

    fn view_ok(&self, w: View) -> bool {
        w >= 1 && w <= self.safety.view + 1 && w + MAX_VIEWS_KEPT as u64 > self.safety.view
    }

    fn vv(&mut self, w: View) -> &mut ViewVotes {
        let n = self.n;
        while self.views.len() >= MAX_VIEWS_KEPT
            && !self.views.contains_key(&w)
            && self.views.first_key_value().is_some_and(|(k, _)| *k < w)
        {
            self.views.pop_first();
        }
        self.views.entry(w).or_insert_with(|| ViewVotes::new(w, n))
    }

    /// May sign votes and skips in the current view.
    fn can_sign(&self) -> bool {
        !self.passive
            && !self.quitting
            && self.safety.view > self.safety.quit_view
            && self.safety.view > self.recover_view
    }

    fn progress_period(&self) -> Duration {
        self.delta * (8 + 8 * self.f as u32)
    }

    fn arm_progress(&self, cx: &mut Cx) {
        cx.set_timer(PROGRESS_TIMER, self.progress_period());
    }

    fn request(&mut self, d: Digest, from: NodeId, cx: &mut Cx) {
        if from == self.id {
            return;
        }
        if self.requested.len() >= MAX_REQUESTED {
            self.requested.clear();
        }
        if self.requested.insert((d, from)) {
            cx.send(from, ArtemisMsg::Fetch(d));
        }
    }

    fn block_height(&self, d: &Digest) -> Option<Height> {
        let (c, ch, _) = self.tree.committed();
        if *d == c {
            return Some(ch);
        }
        self.tree.get(d).map(|b| b.height)
    }

    // --- blocks -----------------------------------------------------------------------

    fn keep_sig(&mut self, d: Digest, s: Signature) {
        if self.sigs.insert(d, s).is_none() {
            self.sig_order.push_back(d);
            while self.sig_order.len() > MAX_SIGS {
                if let Some(old) = self.sig_order.pop_front() {
                    self.sigs.remove(&old);
                }
            }
        }
    }

    fn signed(&self, d: &Digest) -> Option<SignedBlock> {
        let b = self.tree.get(d)?;
        let s = self.sigs.get(d)?;
        Some(SignedBlock {
            block: (**b).clone(),
            signature: *s,
        })
    }

    fn add_block(&mut self, from: NodeId, sb: SignedBlock, fetched: bool, cx: &mut Cx) {
        let d = sb.block.digest();
        let h = sb.block.height;
        if sb.block.view == self.safety.view {
            match self.slots.get(&h) {
                Some(other) if *other != d => {
                    let other = *other;
                    let proof = self
                        .signed(&other)
                        .map(|a| Box::new(Equivocation { a, b: sb.clone() }));
                    self.on_equivocation(proof, cx);
                }
                Some(_) => {}
                None => {
                    if h > self.tree.committed().1 && self.slots.len() < MAX_VIEW_VOTES {
                        self.slots.insert(h, d);
                    }
                }
            }
        }
        if self.tree.knows(&d) || h <= self.tree.committed().1 {
            return;
        }
        if !self.tree.knows(&sb.block.parent) {
            let parent = sb.block.parent;
            self.orphans.insert((h, d), (from, sb));
            while self.orphans.len() > MAX_ORPHANS {
                self.orphans.pop_last();
            }
            cx.event(Event::Buffered { block: d });
            // A reordered proposal's parent is normally on its way; fetch only to
            // continue a fetched chain (a vote that needs a block fetches it itself).
            if fetched {
                self.request(parent, from, cx);
            }
            return;
        }
        let mut work = vec![sb];
        while let Some(sb) = work.pop() {
            let d = sb.block.digest();
            let h = sb.block.height;
            let view = sb.block.view;
            if !self.tree.insert(d, Arc::new(sb.block)) {
                continue;
            }
            self.keep_sig(d, sb.signature);
            self.on_block_inserted(d, view, h, cx);
            let kids: Vec<(Height, Digest)> = self
                .orphans
                .range((h + 1, Digest::ZERO)..(h + 2, Digest::ZERO))
                .filter(|(_, (_, o))| o.block.parent == d)
                .map(|(k, _)| *k)
                .collect();
            for k in kids {
                if let Some((_, o)) = self.orphans.remove(&k) {
                    work.push(o);
                }
            }
        }
    }

    fn on_block_inserted(&mut self, d: Digest, view: View, h: Height, cx: &mut Cx) {
        if view == self.safety.view && self.tip.is_none_or(|t| h > t.1) {
            self.tip = Some((d, h));
            let rounds: Vec<Round> = self.vote_wait.iter().copied().collect();
            for s in rounds {
                self.try_vote(s, false, cx);
            }
        }
        let is_root = self
            .views
            .get(&self.safety.view)
            .and_then(|v| v.by_round.get(&0).map(|ids| (v, ids)))
            .is_some_and(|(v, ids)| {
                ids.iter()
                    .any(|id| v.entries.get(id).is_some_and(|e| e.block == d))
            });
        if is_root {
            self.tell_root(d, h, cx);
        }
        if let Some((_, list)) = self.waiting.remove(&d) {
            for (w, id) in list {
                self.process(w, id, cx);
            }
        }
        if self
            .new_view
            .as_ref()
            .is_some_and(|(_, nv)| nv.justify.block == d)
        {
            self.retry_new_view(cx);
        }
    }

    fn wait_for_block(&mut self, block: Digest, w: View, id: Digest, from: NodeId, cx: &mut Cx) {
        if self.waiting.len() >= MAX_WAITING && !self.waiting.contains_key(&block) {
            return;
        }
        let e = self.waiting.entry(block).or_insert((from, Vec::new()));
        e.0 = from;
        if !e.1.contains(&(w, id)) && e.1.len() < 64 {
            e.1.push((w, id));
        }
        self.request(block, from, cx);
    }

    // --- votes ------------------------------------------------------------------------

    fn on_vote(&mut self, from: NodeId, cv: ChainVote, cx: &mut Cx) {
        self.add_vote(from, cv, true, cx);
    }

    /// Takes a vote in; `bounded`: refuse one too far ahead of the rounds known (a
    /// recovery reply's tail is bounded by its length instead).
    fn add_vote(&mut self, from: NodeId, cv: ChainVote, bounded: bool, cx: &mut Cx) {
        let w = cv.view;
        if !self.view_ok(w) {
            return;
        }
        let now = self.now;
        let floor = self.round_floor(w);
        let vv = self.vv(w);
        if bounded && cv.round > vv.max_outcome().max(floor) + MAX_ROUND_AHEAD {
            return;
        }
        if vv.sched.leader(cv.round) != Some(cv.voter) {
            cx.event(Event::Ignored {
                kind: "vote",
                reason: "not the round leader",
            });
            return;
        }
        vv.seen_rounds.insert(cv.round);
        vv.first_seen.entry(cv.round).or_insert(now);
        let id = cv.id();
        if vv.entries.contains_key(&id) {
            return;
        }
        // An honest round leader signs one vote per round (Twins two): more is a
        // Byzantine leader filling memory, and the round is stalled anyway.
        if vv
            .by_round
            .get(&cv.round)
            .is_some_and(|ids| ids.len() >= MAX_VOTES_PER_ROUND)
        {
            return;
        }
        if vv.entries.len() >= MAX_VIEW_VOTES {
            match vv.by_round.first_key_value() {
                Some((r, _)) if *r < cv.round => vv.prune_lowest(),
                _ => return,
            }
        }
        let block = cv.block;
        vv.entries.insert(
            id,
            Entry {
                round: cv.round,
                block,
                height: cv.height,
                prev_round: cv.prev_round,
                prev: cv.prev,
                linked: false,
                full: false,
                msg: None,
            },
        );
        vv.by_round.entry(cv.round).or_default().push(id);
        vv.children.entry(cv.prev).or_default().push(id);
        let skips = cv.skips.clone();
        if let Some(e) = vv.entries.get_mut(&id) {
            e.msg = Some(Box::new(cv));
        }
        for s in skips {
            self.on_skip_cert(s, cx);
        }
        if !self.tree.knows(&block) {
            self.wait_for_block(block, w, id, from, cx);
        }
        self.process(w, id, cx);
    }

    /// Links and accepts `id` and whatever hangs below it.
    fn process(&mut self, w: View, id: Digest, cx: &mut Cx) {
        let mut work = vec![id];
        let mut first = true;
        while let Some(id) = work.pop() {
            let Some(vv) = self.views.get(&w) else { return };
            let Some(e) = vv.entries.get(&id).cloned() else {
                continue;
            };
            let mut changed = first;
            first = false;
            let prev = vv.entries.get(&e.prev).cloned();
            if !e.linked {
                let Some(p) = prev.as_ref() else { continue };
                if !self.link_ok(&e, p) {
                    if !self.tree.knows(&p.block) {
                        // The prev's own block is missing: it is waited for already.
                    }
                    continue;
                }
                if let Some(x) = self.views.get_mut(&w).and_then(|v| v.entries.get_mut(&id)) {
                    x.linked = true;
                }
                changed = true;
                self.on_linked(w, id, &e, cx);
            }
            let prev_full = prev.as_ref().is_some_and(|p| p.full);
            let now_full = self
                .views
                .get(&w)
                .and_then(|v| v.entries.get(&id))
                .is_some_and(|x| x.full);
            if !now_full && prev_full {
                if let Some(x) = self.views.get_mut(&w).and_then(|v| v.entries.get_mut(&id)) {
                    x.full = true;
                }
                changed = true;
                self.on_full(w, id, cx);
            }
            if changed {
                if let Some(kids) = self.views.get(&w).and_then(|v| v.children.get(&id)) {
                    work.extend(kids.iter().copied());
                }
            }
        }
    }

    fn link_ok(&self, e: &Entry, p: &Entry) -> bool {
        if p.round != e.prev_round {
            return false;
        }
        let (Some(eh), Some(ph)) = (self.block_height(&e.block), self.block_height(&p.block))
        else {
            return false;
        };
        eh == e.height
            && ph == p.height
            && e.height >= p.height
            && e.height <= p.height + MAX_VOTE_GAP
            && self.tree.extends(&e.block, &p.block, p.height)
    }

    fn on_linked(&mut self, w: View, id: Digest, e: &Entry, cx: &mut Cx) {
        // Forward every vote this replica links (the timing argument needs it).
        if let Some(m) = self
            .views
            .get(&w)
            .and_then(|v| v.entries.get(&id))
            .and_then(|x| x.msg.clone())
        {
            // Not back to its voter, which holds it (and would spend a pairing check on
            // its own signature), nor to this replica.
            if m.voter != self.id {
                let skip = [self.id, m.voter];
                cx.send_all_but(self.n, &skip, ArtemisMsg::Vote(m));
            }
        }
        if w == self.safety.view && !self.quitting {
            let vv = self.vv(w);
            if e.height > vv.progress {
                vv.progress = e.height;
                self.arm_progress(cx);
            }
        }
        self.commit_check(w, id, cx);
    }

    /// The commit rule: the f links below vote r connect votes of rounds r−f .. r.
    fn commit_check(&mut self, w: View, id: Digest, cx: &mut Cx) {
        if w != self.safety.view || self.quitting || self.passive {
            return;
        }
        let Some(vv) = self.views.get(&w) else { return };
        let mut cur = id;
        for _ in 0..self.f {
            match vv.entries.get(&cur) {
                Some(e) if e.linked && e.round >= 1 && e.prev_round + 1 == e.round => cur = e.prev,
                _ => return,
            }
        }
        let Some(t) = vv.entries.get(&cur) else {
            return;
        };
        if t.round == 0 {
            return;
        }
        let target = t.block;
        self.commit_to(target, cx);
    }

    fn commit_to(&mut self, target: Digest, cx: &mut Cx) {
        let (committed, committed_h, _) = self.tree.committed();
        if let Some(h) = self.block_height(&target) {
            if h <= committed_h {
                if !self.tree.extends(&committed, &target, h) {
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
                let h = self.safety.committed.1;
                self.slots = self.slots.split_off(&(h + 1));
                if crate::contract::persist_commit_mark(committed_h, h) {
                    cx.persist(self.safety);
                }
            }
            Err(CommitError::Unknown(d)) => {
                // Ancestors missing (catching up): fetched by whoever sent the votes.
                let _ = d;
            }
            Err(CommitError::Conflict { target, committed }) => {
                cx.event(Event::ConflictingCommit { committed, target });
            }
        }
    }

    fn on_full(&mut self, w: View, id: Digest, cx: &mut Cx) {
        let Some(e) = self.views.get(&w).and_then(|v| v.entries.get(&id)).cloned() else {
            return;
        };
        let lock = Lock {
            view: w,
            round: e.round,
            id,
            block: e.block,
            height: e.height,
        };
        let vv = self.vv(w);
        if vv.best.is_none_or(|b| b.rank() < lock.rank()) {
            vv.best = Some(lock);
        }
        if w == self.safety.view {
            self.advance_outcomes(e.round, cx);
        }
        if self
            .new_view
            .as_ref()
            .is_some_and(|(_, nv)| nv.justify.id == id)
        {
            self.retry_new_view(cx);
        }
    }

    /// Round `r` of the current view has an accepted outcome; so do the skipped rounds
    /// right after it.
    fn advance_outcomes(&mut self, r: Round, cx: &mut Cx) {
        let w = self.safety.view;
        let mut k = r;
        loop {
            let vv = self.vv(w);
            let new = vv.outcomes.insert(k);
            if new {
                self.on_outcome(k, cx);
            }
            let vv = self.vv(w);
            if vv.skip_certs.contains_key(&(k + 1)) {
                k += 1;
            } else {
                break;
            }
        }
    }

    fn on_outcome(&mut self, k: Round, cx: &mut Cx) {
        let w = self.safety.view;
        let next = k + 1;
        let leader = self.vv(w).sched.leader(next);
        if leader == Some(self.id) {
            self.try_vote(next, false, cx);
        } else if self.can_sign() && self.skip_armed.insert(next) {
            cx.set_timer(
                TimerId(SKIP_TIMER_BASE + (next & ROUND_MASK)),
                self.delta * 6,
            );
        }
    }

    /// The latest accepted chain end usable as round `s`'s `prev`: the highest round
    /// p < s with an accepted vote (or root) and skip certificates for p+1 .. s−1.
    fn chain_end(&self, s: Round) -> Option<(Round, Digest, Entry, Vec<SkipCert>)> {
        let vv = self.views.get(&self.safety.view)?;
        let mut k = s.checked_sub(1)?;
        let mut skips = Vec::new();
        loop {
            if let Some(ids) = vv.by_round.get(&k) {
                for id in ids {
                    if let Some(e) = vv.entries.get(id) {
                        if e.full {
                            skips.reverse();
                            return Some((k, *id, e.clone(), skips));
                        }
                    }
                }
            }
            let c = vv.skip_certs.get(&k)?;
            if skips.len() >= MAX_SKIPS || k == 0 {
                return None;
            }
            skips.push(*c);
            k -= 1;
        }
    }

    /// Round leader: vote in round `s` (see rule 3).
    fn try_vote(&mut self, s: Round, force: bool, cx: &mut Cx) {
        let view = self.safety.view;
        if !self.can_sign() || (view, s) <= self.safety.last_vote {
            self.vote_wait.remove(&s);
            return;
        }
        let Some(vv) = self.views.get(&view) else {
            return;
        };
        if !vv.outcomes.contains(&(s - 1)) || vv.skip_certs.contains_key(&s) {
            return;
        }
        let Some(seen) = vv.first_seen.get(&(s - 1)).copied() else {
            return;
        };
        if self.now > seen + self.delta * 4 {
            self.vote_wait.remove(&s);
            cx.event(Event::Ignored {
                kind: "vote",
                reason: "past the round leader's deadline",
            });
            return;
        }
        let Some((p, pid, pe, skips)) = self.chain_end(s) else {
            return;
        };
        let mut x = (pe.block, pe.height);
        if let Some((td, th)) = self.tip {
            if th > pe.height && self.tree.extends(&td, &pe.block, pe.height) {
                let mut cur = (td, th);
                while cur.1 > pe.height + MAX_VOTE_GAP {
                    match self.tree.get(&cur.0) {
                        Some(b) => cur = (b.parent, b.height - 1),
                        None => break,
                    }
                }
                x = cur;
            }
        }
        if x.1 == pe.height && !force {
            // Nothing newer yet: wait a little for the next block.
            if self.vote_wait.insert(s) {
                cx.set_timer(TimerId(VOTE_TIMER_BASE + (s & ROUND_MASK)), self.delta / 2);
            }
            return;
        }
        self.vote_wait.remove(&s);
        self.safety.last_vote = (view, s);
        self.safety.reach = self.safety.reach.max((view, s));
        cx.persist(self.safety);
        let id = vote_id(view, s, &x.0, x.1, p, &pid);
        let vote = ChainVote {
            view,
            round: s,
            block: x.0,
            height: x.1,
            prev_round: p,
            prev: pid,
            voter: self.id,
            signature: self.key.sign(&id),
            skips,
        };
        cx.event(Event::Voted { view, block: x.0 });
        cx.broadcast(ArtemisMsg::Vote(Box::new(vote)));
    }

    // --- skips ------------------------------------------------------------------------

    fn on_skip_timer(&mut self, s: Round, cx: &mut Cx) {
        if !self.skip_armed.remove(&s) || !self.can_sign() {
            return;
        }
        let view = self.safety.view;
        let seen = self
            .views
            .get(&view)
            .is_some_and(|v| v.seen_rounds.contains(&s) || v.skip_certs.contains_key(&s));
        if seen || !self.my_skips.insert(s) {
            return;
        }
        let skip = Skip {
            view,
            round: s,
            voter: self.id,
            signature: self.key.sign(&skip_statement(view, s)),
        };
        cx.broadcast(ArtemisMsg::Skip(skip));
    }

    fn on_skip(&mut self, s: Skip, cx: &mut Cx) {
        if !self.view_ok(s.view) {
            return;
        }
        if let Some(q) = self.skips.add((s.view, s.round), s.voter, s.signature) {
            let cert = SkipCert {
                view: s.view,
                round: s.round,
                sig: self.committee.aggregate_unchecked(&q),
            };
            self.on_skip_cert(cert, cx);
        }
    }

    fn on_skip_cert(&mut self, c: SkipCert, cx: &mut Cx) {
        if !self.view_ok(c.view) {
            return;
        }
        let now = self.now;
        let floor = self.round_floor(c.view);
        let vv = self.vv(c.view);
        if vv.skip_certs.contains_key(&c.round)
            || c.round > vv.max_outcome().max(floor) + MAX_ROUND_AHEAD
        {
            return;
        }
        vv.skip_certs.insert(c.round, c);
        vv.first_seen.entry(c.round).or_insert(now);
        let prior = vv.outcomes.contains(&(c.round - 1));
        cx.broadcast(ArtemisMsg::SkipCert(c));
        if c.view == self.safety.view && prior {
            self.advance_outcomes(c.round, cx);
        }
    }

    // --- roots and the new view ---------------------------------------------------------

    fn on_root_vote(&mut self, v: RootVote, cx: &mut Cx) {
        if !self.view_ok(v.view) {
            return;
        }
        let key = (v.view, v.block, v.height);
        if let Some(q) = self.root_votes.add(key, v.voter, v.signature) {
            let rc = RootCert {
                view: v.view,
                block: v.block,
                height: v.height,
                sig: self.committee.aggregate_unchecked(&q),
            };
            cx.event(Event::CertificateFormed {
                view: v.view,
                block: v.block,
            });
            self.on_root_cert(self.id, rc, cx);
        }
    }

    fn on_root_cert(&mut self, from: NodeId, rc: RootCert, cx: &mut Cx) {
        let w = rc.view;
        if !self.view_ok(w) {
            return;
        }
        let rid = root_id(w, &rc.block, rc.height);
        let now = self.now;
        let vv = self.vv(w);
        if vv.entries.contains_key(&rid) {
            return;
        }
        vv.entries.insert(
            rid,
            Entry {
                round: 0,
                block: rc.block,
                height: rc.height,
                prev_round: 0,
                prev: Digest::ZERO,
                linked: true,
                full: true,
                msg: None,
            },
        );
        vv.by_round.entry(0).or_default().push(rid);
        vv.first_seen.entry(0).or_insert(now);
        if vv.roots.len() < MAX_VOTES_PER_ROUND {
            vv.roots.push(rc);
        }
        cx.broadcast(ArtemisMsg::RootCert(rc));
        if !self.tree.knows(&rc.block) {
            self.wait_for_block(rc.block, w, rid, from, cx);
        }
        if w == self.safety.view && self.tree.knows(&rc.block) {
            self.tell_root(rc.block, rc.height, cx);
        }
        self.on_full(w, rid, cx);
        self.process(w, rid, cx);
    }

    /// Tells the leader half that the current view's root is certified — once the root
    /// block (and so, through the leader half's view of every block message, each of its
    /// ancestors' batches) is held here.
    fn tell_root(&self, block: Digest, height: Height, cx: &mut Cx) {
        cx.send(
            self.id,
            ArtemisMsg::Local(Box::new(Local::Root {
                view: self.safety.view,
                block,
                height,
            })),
        );
    }

    fn on_new_view(&mut self, from: NodeId, nv: NewView, cx: &mut Cx) {
        if nv.view < self.safety.view || nv.view > self.safety.view + 1 {
            return;
        }
        if let Some(sb) = nv.block.clone() {
            self.add_block(from, sb, false, cx);
        }
        if self.new_view.as_ref().is_none_or(|(_, p)| p.view < nv.view) {
            self.new_view = Some((from, nv));
        }
        self.retry_new_view(cx);
    }

    /// Root-votes the pending re-proposal if rule 8 allows it now.
    fn retry_new_view(&mut self, cx: &mut Cx) {
        let Some((from, nv)) = self.new_view.clone() else {
            return;
        };
        let view = self.safety.view;
        if nv.view != view || !self.can_sign() || self.safety.last_vote >= (view, 0) {
            return;
        }
        let j = nv.justify;
        let lock = self.safety.lock;
        if j.rank() < lock.rank() {
            return;
        }
        // A restarted replica whose lock may lag behind a commit it missed: only with a
        // lock from a view it saw whole, or above every round a commit may rest on.
        let above_floor = self
            .floor
            .is_some_and(|(u, r)| u == self.recover_view && j.rank() >= (u, r));
        if !self.lock_synced && !above_floor {
            return;
        }
        let accepted = (j.id == lock.id && j.block == lock.block)
            || self
                .views
                .get(&j.view)
                .and_then(|v| v.entries.get(&j.id))
                .is_some_and(|e| {
                    e.full && e.block == j.block && e.round == j.round && e.height == j.height
                });
        if !accepted {
            return;
        }
        if !self.tree.knows(&j.block) {
            self.request(j.block, from, cx);
            return;
        }
        self.safety.last_vote = (view, 0);
        if let Some(f) = self
            .floor
            .filter(|_| above_floor && j.view == self.recover_view)
        {
            // What this vote rests on outlives a crash (others may ask for it).
            self.safety.reach = self.safety.reach.max(f);
        }
        cx.persist(self.safety);
        let signature = self.key.sign(&root_id(view, &j.block, j.height));
        cx.event(Event::Voted {
            view,
            block: j.block,
        });
        cx.broadcast(ArtemisMsg::RootVote(RootVote {
            view,
            block: j.block,
            height: j.height,
            voter: self.id,
            signature,
        }));
    }

    /// The highest-ranked accepted entry this replica holds (or its lock).
    fn best_lock(&self) -> Lock {
        let mut best = self.safety.lock;
        for vv in self.views.values() {
            if let Some(b) = vv.best {
                if b.rank() > best.rank() {
                    best = b;
                }
            }
        }
        best
    }

    fn send_plan(&mut self, cx: &mut Cx) {
        let view = self.safety.view;
        if self.quitting || leader_of(view, self.n) != self.id {
            return;
        }
        let justify = self.best_lock();
        let block = if justify.block == Block::genesis_digest() {
            None
        } else {
            match self.signed(&justify.block) {
                Some(sb) => Some(sb),
                None => {
                    cx.event(Event::Ignored {
                        kind: "new_view",
                        reason: "the block to re-propose is not held",
                    });
                    return;
                }
            }
        };
        cx.send(
            self.id,
            ArtemisMsg::Local(Box::new(Local::Plan {
                view,
                justify,
                block,
            })),
        );
    }

    // --- blame, quit, view change -------------------------------------------------------

    fn on_equivocation(&mut self, proof: Option<Box<Equivocation>>, cx: &mut Cx) {
        if self.quitting {
            return;
        }
        self.equivocated = true;
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
        cx.broadcast(ArtemisMsg::Blame(b));
    }

    fn on_blame(&mut self, b: Blame, cx: &mut Cx) {
        if b.view < self.safety.view {
            return;
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

    fn reset_view_state(&mut self) {
        self.slots.clear();
        self.tip = None;
        self.equivocated = false;
        self.my_blame = None;
        self.quit_cert = None;
        self.skip_armed.clear();
        self.my_skips.clear();
        self.vote_wait.clear();
    }

    fn notify_leader(&self, cx: &mut Cx) {
        cx.send(
            self.id,
            ArtemisMsg::Local(Box::new(Local::View {
                view: self.safety.view,
                quitting: self.quitting,
            })),
        );
    }

    /// Quit view `c.view` (jumping to it if ahead): no more votes, skips or commits in it;
    /// forward the certificate; enter the next view after 4Δ.
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
        self.vote_wait.clear();
        self.skip_armed.clear();
        self.safety.quit_view = self.safety.quit_view.max(c.view);
        cx.persist(self.safety);
        cx.broadcast(ArtemisMsg::BlameCert(c));
        cx.cancel_timer(PROGRESS_TIMER);
        cx.set_timer(QUIT_TIMER, self.delta * 4);
        self.notify_leader(cx);
    }

    fn enter_next_view(&mut self, cx: &mut Cx) {
        let from = self.safety.view;
        let lock = self.best_lock();
        let entered_by = self.quit_cert;
        self.reset_view_state();
        self.entered_by = entered_by;
        self.quitting = false;
        let view = from + 1;
        self.safety.view = view;
        self.safety.lock = lock;
        self.safety.reach = self.safety.reach.max(lock.rank());
        // A restarted replica root-votes again only with a lock from a view it saw whole,
        // or one above the floor it asks for now (see "Crashes" in the module docs).
        if !self.passive && lock.view > self.recover_view {
            self.lock_synced = true;
        }
        if !self.lock_synced && !self.passive && self.floor.is_none() && self.floor_query.is_none()
        {
            let u = self.recover_view;
            self.floor_query = Some((u, self.reach_of(u)));
            cx.broadcast(ArtemisMsg::SyncRequest(u));
            cx.set_timer(FLOOR_TIMER, self.delta * 2);
        }
        cx.persist(self.safety);
        cx.event(Event::ViewChanged {
            from,
            to: view,
            by_timeout: true,
        });
        self.notify_leader(cx);
        self.arm_progress(cx);
        if leader_of(view, self.n) == self.id {
            cx.set_timer(NEW_VIEW_TIMER, self.delta * 4);
        }
        if self.restarted {
            // A restarted replica may enter a view whose root was certified long ago
            // (it learned of the view late): if it still holds no root by the time one
            // is normally certified, it asks.
            cx.set_timer(RETRY_SYNC_TIMER, self.delta * 8);
        }
        self.blames.prune_below(&view);
        let oldest = view.saturating_sub(MAX_VIEWS_KEPT as u64 - 1);
        self.waiting.retain(|_, (_, list)| {
            list.retain(|(w, _)| *w >= oldest);
            !list.is_empty()
        });
        self.root_votes.prune_below(&(view, Digest::ZERO, 0));
        self.vouches = self.vouches.split_off(&(oldest, Digest::ZERO));
        self.skips.prune_below(&(view, 0));
        self.rescan(cx);
        self.retry_new_view(cx);
    }

    /// Entering a view whose root or votes arrived early: replay their acceptance.
    fn rescan(&mut self, cx: &mut Cx) {
        let view = self.safety.view;
        let Some(vv) = self.views.get(&view) else {
            return;
        };
        let roots: Vec<(Digest, Height)> = vv
            .by_round
            .get(&0)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| vv.entries.get(id).map(|e| (e.block, e.height)))
                    .collect()
            })
            .unwrap_or_default();
        let full_rounds: Vec<Round> = vv
            .by_round
            .iter()
            .filter(|(_, ids)| {
                ids.iter()
                    .any(|id| vv.entries.get(id).is_some_and(|e| e.full))
            })
            .map(|(r, _)| *r)
            .collect();
        if let Some((block, height)) = roots.iter().find(|(b, _)| self.tree.knows(b)) {
            self.tell_root(*block, *height, cx);
        }
        for r in full_rounds {
            self.advance_outcomes(r, cx);
        }
    }

    // --- recovery -----------------------------------------------------------------------

    /// The answer to "how far did the rounds of view `u` go?": the highest round of `u`
    /// this replica knows a round leader reached, or `Round::MAX` once its own persisted
    /// knowledge is of a later view (it can no longer bound `u`).
    fn reach_of(&self, u: View) -> Round {
        let s = &self.safety;
        if s.reach.0 > u || s.lock.view > u {
            return Round::MAX;
        }
        let mut r = 0;
        for (v, x) in [s.reach, s.last_vote, s.lock.rank()] {
            if v == u {
                r = r.max(x);
            }
        }
        if let Some(b) = self.views.get(&u).and_then(|vv| vv.best) {
            r = r.max(b.round);
        }
        if let Some((v, x)) = self.floor {
            if v == u {
                r = r.max(x);
            }
        }
        r
    }

    /// The top of the highest accepted chain this replica holds (oldest first, at most
    /// [`TAIL_LEN`] votes, only accepted ones) and the certified root below it when the
    /// tail reaches down to it.
    fn tail(&self) -> (Vec<ChainVote>, Option<RootCert>) {
        let best = self.best_lock();
        let Some(vv) = self.views.get(&best.view) else {
            return (Vec::new(), None);
        };
        let mut out = Vec::new();
        let mut id = best.id;
        let mut root = None;
        while out.len() < TAIL_LEN {
            let Some(e) = vv.entries.get(&id).filter(|e| e.full) else {
                break;
            };
            if e.round == 0 {
                root = vv
                    .roots
                    .iter()
                    .find(|rc| root_id(rc.view, &rc.block, rc.height) == id)
                    .copied();
                break;
            }
            let Some(m) = &e.msg else { break };
            out.push((**m).clone());
            id = e.prev;
        }
        out.reverse();
        (out, root)
    }

    fn sync_reply(&self, asked: View) -> SyncReply {
        let view = self.safety.view;
        let (tail, root) = self.tail();
        SyncReply {
            view,
            entered_by: self.entered_by.filter(|c| c.view + 1 == view),
            quit: if self.quitting { self.quit_cert } else { None },
            round: self.views.get(&view).map_or(0, |v| v.max_outcome()),
            reach_view: asked,
            reach: self.reach_of(asked),
            tail,
            root,
        }
    }

    fn on_sync_reply(&mut self, from: NodeId, r: SyncReply, cx: &mut Cx) {
        if self.round_claims.len() < self.n || self.round_claims.contains_key(&from) {
            self.round_claims.insert(from, (r.view, r.round));
        }
        if let Some((u, acc)) = self.floor_query.as_mut() {
            if *u == r.reach_view {
                *acc = (*acc).max(r.reach);
            }
        }
        if let Some(c) = r.entered_by {
            self.on_blame_cert(c, cx);
        }
        if let Some(c) = r.quit {
            self.on_blame_cert(c, cx);
        }
        if let Some(rc) = r.root {
            self.on_root_cert(from, rc, cx);
        }
        let mut vouched = Vec::new();
        for v in r.tail {
            let key = (v.view, v.id());
            if self.vouches.len() < MAX_VIEW_VOTES || self.vouches.contains_key(&key) {
                self.vouches.entry(key).or_default().insert(from);
                vouched.push(key);
            }
            self.add_vote(from, v, false, cx);
        }
        self.anchor(&vouched, cx);
    }

    /// Accepts every vote among `keys` that f+1 replicas vouched for — one of them is
    /// honest, so its chain is linked down to a certified root — without holding the
    /// chain below it: what lets a restarted replica accept the votes of the view it
    /// restarted in (see "Crashes").
    fn anchor(&mut self, keys: &[(View, Digest)], cx: &mut Cx) {
        for &(w, id) in keys {
            if self.vouches.get(&(w, id)).map_or(0, |s| s.len()) <= self.f {
                continue;
            }
            let Some(e) = self.views.get_mut(&w).and_then(|v| v.entries.get_mut(&id)) else {
                continue;
            };
            if e.full {
                continue;
            }
            e.linked = true;
            e.full = true;
            self.on_full(w, id, cx);
            self.process(w, id, cx);
        }
    }

    /// Whether this replica holds no accepted vote or root of its current view.
    fn blind(&self) -> bool {
        self.views
            .get(&self.safety.view)
            .is_none_or(|vv| vv.best.is_none())
    }

    fn end_resync(&mut self, cx: &mut Cx) {
        self.passive = false;
        self.recover_view = self.safety.view;
        if !self.quitting {
            self.arm_progress(cx);
        }
        if self.blind() {
            cx.set_timer(RETRY_SYNC_TIMER, self.delta * 2);
        }
        self.notify_leader(cx);
    }

    fn serve_fetch(&self, from: NodeId, d: Digest, cx: &mut Cx) {
        let chain = self.tree.chain_ending_at(&d, MAX_FETCH_BLOCKS);
        let mut out = Vec::new();
        for b in chain {
            let bd = b.digest();
            match self.sigs.get(&bd) {
                Some(s) => out.push(SignedBlock {
                    block: (*b).clone(),
                    signature: *s,
                }),
                None => out.clear(),
            }
        }
        if !out.is_empty() {
            cx.send(from, ArtemisMsg::Blocks(out));
        }
    }
}

impl Half<ArtemisMsg, Safety> for Voter {
    fn on_start(&mut self, cx: &mut Cx) {
        self.now = cx.now;
        if self.restarted {
            cx.broadcast(ArtemisMsg::SyncRequest(self.safety.view));
            cx.set_timer(RESYNC_TIMER, self.delta * 2);
        } else {
            // Durable from the start: a replica that crashes before its first signature
            // must come back as restarted (and catch up), not as a fresh replica of
            // view 1 that never hears of the views it missed.
            cx.persist(self.safety);
        }
        if !self.restarted && leader_of(1, self.n) == self.id {
            // View 1's root is genesis, re-proposed at once.
            cx.send(
                self.id,
                ArtemisMsg::Local(Box::new(Local::Plan {
                    view: 1,
                    justify: Lock::genesis(),
                    block: None,
                })),
            );
        }
        if self.quitting {
            cx.set_timer(QUIT_TIMER, self.delta * 4);
        } else {
            self.arm_progress(cx);
        }
        self.notify_leader(cx);
    }

    fn on_message(&mut self, from: NodeId, msg: Verified<ArtemisMsg>, cx: &mut Cx) {
        self.now = cx.now;
        match msg.into_inner() {
            ArtemisMsg::Propose(sb) => self.add_block(from, *sb, false, cx),
            ArtemisMsg::NewView(nv) => self.on_new_view(from, *nv, cx),
            ArtemisMsg::RootVote(v) => self.on_root_vote(v, cx),
            ArtemisMsg::RootCert(rc) => self.on_root_cert(from, rc, cx),
            ArtemisMsg::Vote(v) => self.on_vote(from, *v, cx),
            ArtemisMsg::Skip(s) => self.on_skip(s, cx),
            ArtemisMsg::SkipCert(c) => self.on_skip_cert(c, cx),
            ArtemisMsg::Blame(b) => self.on_blame(b, cx),
            ArtemisMsg::BlameCert(c) => self.on_blame_cert(c, cx),
            ArtemisMsg::Fetch(d) => self.serve_fetch(from, d, cx),
            ArtemisMsg::Blocks(bs) => {
                for sb in bs {
                    self.add_block(from, sb, true, cx);
                }
            }
            ArtemisMsg::SyncRequest(asked) => {
                if from != self.id && crate::contract::answer_sync(&mut self.sync_budget, from, cx)
                {
                    let reply = self.sync_reply(asked);
                    cx.send(from, ArtemisMsg::SyncReply(Box::new(reply)));
                }
            }
            ArtemisMsg::SyncReply(r) => self.on_sync_reply(from, *r, cx),
            ArtemisMsg::Forward { .. } | ArtemisMsg::Local(_) => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        self.now = cx.now;
        match id {
            PROGRESS_TIMER => {
                if !self.quitting {
                    self.blame(None, cx);
                }
                // Retry fetches that went unanswered.
                self.requested.clear();
                let wanted: Vec<(Digest, NodeId)> = {
                    let mut v: Vec<(Digest, NodeId)> = self
                        .waiting
                        .iter()
                        .map(|(d, (from, _))| (*d, *from))
                        .collect();
                    v.sort();
                    v.truncate(64);
                    v
                };
                for (d, from) in wanted {
                    self.request(d, from, cx);
                }
                cx.set_timer(PROGRESS_TIMER, self.progress_period());
            }
            QUIT_TIMER if self.quitting => self.enter_next_view(cx),
            RESYNC_TIMER => self.end_resync(cx),
            RETRY_SYNC_TIMER => {
                // Still no accepted vote or root of its view: ask again (the tails of the
                // first replies may not have overlapped, or the view's root was
                // certified while this replica was down).
                if !self.blind() {
                    self.resync_tries = 0;
                } else if self.resync_tries < MAX_RESYNC_TRIES {
                    self.resync_tries += 1;
                    cx.broadcast(ArtemisMsg::SyncRequest(self.safety.view));
                    cx.set_timer(RETRY_SYNC_TIMER, self.delta * 2);
                }
            }
            FLOOR_TIMER => {
                if let Some(f) = self.floor_query.take() {
                    self.floor = Some(f);
                    self.retry_new_view(cx);
                }
            }
            NEW_VIEW_TIMER => self.send_plan(cx),
            TimerId(t) if t >= VOTE_TIMER_BASE => {
                let s = t & ROUND_MASK;
                if self.vote_wait.contains(&s) {
                    self.try_vote(s, true, cx);
                }
            }
            TimerId(t) if t >= SKIP_TIMER_BASE => self.on_skip_timer(t & ROUND_MASK, cx),
            _ => {}
        }
    }
}

/// The Artemis protocol.
pub struct Artemis;

impl Protocol for Artemis {
    type Msg = ArtemisMsg;
    type Safety = Safety;
    type Leader = Leader;
    type Voter = Voter;
    const NAME: &'static str = "artemis";
    const SYNCHRONOUS: bool = true;

    fn verify(
        msg: ArtemisMsg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<ArtemisMsg>, VerifyError> {
        verify(msg, from, committee)
    }

    fn claims(msg: &ArtemisMsg, committee: &Committee, out: &mut Vec<crate::Claim>) {
        claims(msg, committee, out);
    }

    fn create(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> (Leader, Voter) {
        let leader = Leader::new(cfg, key.clone(), restored.as_ref());
        let voter = Voter::new(cfg, key, committee, restored);
        (leader, voter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Action;
    use olympus_crypto::Scheme;
    use olympus_types::{Payload, Transaction};

    fn setup(n: usize) -> (Vec<Arc<Keypair>>, Arc<Committee>) {
        let keys: Vec<_> = (0..n)
            .map(|i| Arc::new(Keypair::generate(Scheme::Bls, &[5; 32], NodeId(i as u16))))
            .collect();
        let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        (keys, Arc::new(Committee::new(Scheme::Bls, &pks).unwrap()))
    }

    fn block(
        keys: &[Arc<Keypair>],
        view: View,
        parent: Digest,
        height: Height,
        tag: u8,
    ) -> SignedBlock {
        let n = keys.len();
        let block = Block {
            parent,
            view,
            height,
            proposer: leader_of(view, n),
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 1,
                nonce: tag as u64,
                payload: vec![tag],
            }])]),
        };
        let signature =
            keys[leader_of(view, n).index()].sign(&block_statement(view, &block.digest()));
        SignedBlock { block, signature }
    }

    fn skip_cert(
        keys: &[Arc<Keypair>],
        c: &Committee,
        view: View,
        round: Round,
        by: &[usize],
    ) -> SkipCert {
        let sigs: Vec<_> = by
            .iter()
            .map(|&i| (NodeId(i as u16), keys[i].sign(&skip_statement(view, round))))
            .collect();
        SkipCert {
            view,
            round,
            sig: c.aggregate_unchecked(&sigs),
        }
    }

    #[test]
    fn any_f_plus_one_consecutive_round_leaders_are_distinct() {
        for n in [3usize, 5, 7, 10] {
            let f = f_of(n);
            let mut s = Schedule::new(9, n);
            let ls: Vec<NodeId> = (1..=2000).map(|r| s.leader(r).unwrap()).collect();
            for w in ls.windows(f + 1) {
                let set: BTreeSet<_> = w.iter().collect();
                assert_eq!(set.len(), f + 1, "n {n}: {w:?}");
            }
            // Everybody leads some round, and another view draws another schedule.
            let all: BTreeSet<_> = ls.iter().collect();
            assert_eq!(all.len(), n);
            let mut t = Schedule::new(10, n);
            let other: Vec<NodeId> = (1..=2000).map(|r| t.leader(r).unwrap()).collect();
            assert_ne!(ls, other);
            assert_eq!(s.leader(0), None);
        }
    }

    #[test]
    fn verify_accepts_good_messages_and_rejects_forgeries() {
        let (keys, c) = setup(5);
        let g = Block::genesis_digest();
        let b1 = block(&keys, 1, g, 1, 1);
        assert!(verify(ArtemisMsg::Propose(Box::new(b1.clone())), NodeId(3), &c).is_ok());
        // Signed by a replica that does not lead the view.
        let mut forged = b1.clone();
        forged.signature = keys[2].sign(&block_statement(1, &b1.block.digest()));
        assert!(verify(ArtemisMsg::Propose(Box::new(forged)), NodeId(3), &c).is_err());
        // A vote: by its voter, with exactly the skips of its gap.
        let d = b1.block.digest();
        let prev = root_id(1, &g, 0);
        let mk = |round: Round, prev_round: Round, skips: Vec<SkipCert>, signer: usize| {
            let id = vote_id(1, round, &d, 1, prev_round, &prev);
            ChainVote {
                view: 1,
                round,
                block: d,
                height: 1,
                prev_round,
                prev,
                voter: NodeId(signer as u16),
                signature: keys[signer].sign(&id),
                skips,
            }
        };
        assert!(verify(
            ArtemisMsg::Vote(Box::new(mk(1, 0, vec![], 2))),
            NodeId(4),
            &c
        )
        .is_ok());
        let mut wrong = mk(1, 0, vec![], 2);
        wrong.voter = NodeId(3);
        assert!(verify(ArtemisMsg::Vote(Box::new(wrong)), NodeId(3), &c).is_err());
        // Round 3 after round 0 needs skip certificates of rounds 1 and 2.
        assert!(verify(
            ArtemisMsg::Vote(Box::new(mk(3, 0, vec![], 2))),
            NodeId(2),
            &c
        )
        .is_err());
        let s1 = skip_cert(&keys, &c, 1, 1, &[0, 1, 3]);
        let s2 = skip_cert(&keys, &c, 1, 2, &[0, 1, 3]);
        let ok = mk(3, 0, vec![s1, s2], 2);
        assert!(verify(ArtemisMsg::Vote(Box::new(ok)), NodeId(2), &c).is_ok());
        let swapped = mk(3, 0, vec![s2, s1], 2);
        assert!(verify(ArtemisMsg::Vote(Box::new(swapped)), NodeId(2), &c).is_err());
        // A skip certificate needs f + 1 = 3 distinct signers.
        let weak = skip_cert(&keys, &c, 1, 2, &[0, 1]);
        assert!(verify(ArtemisMsg::SkipCert(weak), NodeId(0), &c).is_err());
        // A skip relayed by someone else is refused.
        let sk = Skip {
            view: 1,
            round: 1,
            voter: NodeId(0),
            signature: keys[0].sign(&skip_statement(1, 1)),
        };
        assert!(verify(ArtemisMsg::Skip(sk), NodeId(0), &c).is_ok());
        assert!(verify(ArtemisMsg::Skip(sk), NodeId(1), &c).is_err());
        // An equivocation proof holds two different blocks of one (view, height).
        let b1x = block(&keys, 1, g, 1, 2);
        let blame = |a: SignedBlock, b: SignedBlock| Blame {
            view: 1,
            sender: NodeId(0),
            signature: keys[0].sign(&blame_statement(1)),
            proof: Some(Box::new(Equivocation { a, b })),
        };
        assert!(verify(ArtemisMsg::Blame(blame(b1.clone(), b1x)), NodeId(0), &c).is_ok());
        assert!(verify(
            ArtemisMsg::Blame(blame(b1.clone(), b1.clone())),
            NodeId(0),
            &c
        )
        .is_err());
        // Too many forwarded batches.
        let many = ArtemisMsg::Forward {
            batches: Vec::new(),
            digests: vec![d; MAX_FORWARD + 1],
        };
        assert!(verify(many, NodeId(0), &c).is_err());
        // A new view must re-propose the block it names.
        let nv = |justify: Lock, block: Option<SignedBlock>| {
            let signature = keys[2].sign(&new_view_statement(2, &justify.id, &justify.block));
            ArtemisMsg::NewView(Box::new(NewView {
                view: 2,
                justify,
                block,
                signature,
            }))
        };
        let j = Lock {
            view: 1,
            round: 4,
            id: Digest::of(b"x"),
            block: d,
            height: 1,
        };
        assert!(verify(nv(j, Some(b1.clone())), NodeId(2), &c).is_ok());
        assert!(verify(nv(j, None), NodeId(2), &c).is_err());
    }

    #[test]
    fn messages_round_trip_through_the_frame_codec() {
        let (keys, _) = setup(3);
        let b = block(&keys, 1, Block::genesis_digest(), 1, 1);
        let msg = ArtemisMsg::Propose(Box::new(b));
        let bytes = olympus_types::frame::encode(&msg).unwrap();
        assert_eq!(
            olympus_types::frame::decode::<ArtemisMsg>(&bytes).unwrap(),
            msg
        );
        let s = Safety {
            view: 3,
            quit_view: 2,
            last_vote: (3, 7),
            lock: Lock::genesis(),
            reach: (3, 7),
            committed: (Block::genesis_digest(), 0, 0),
        };
        let bytes = olympus_types::frame::encode(&s).unwrap();
        assert_eq!(olympus_types::frame::decode::<Safety>(&bytes).unwrap(), s);
    }

    /// Drives one voter through view 1: root, a block, and the round it leads; checks it
    /// persists before voting, votes once per round, and blames an equivocation.
    #[test]
    fn a_round_leader_votes_once_after_persisting_and_blames_equivocation() {
        let n = 3;
        let (keys, c) = setup(n);
        let g = Block::genesis_digest();
        let mut sched = Schedule::new(1, n);
        let r1 = sched.leader(1).unwrap();
        let me = r1.index();
        let cfg = ReplicaConfig::new(r1, n);
        let mut v = Voter::new(&cfg, keys[me].clone(), c.clone(), None);
        let mut cx = Cx::new(Duration::ZERO);
        v.on_start(&mut cx);
        let m = |x: ArtemisMsg| Verified::assume_verified(x);
        // A block of view 1 first, then the root certificate (genesis).
        let b1 = block(&keys, 1, g, 1, 1);
        v.on_message(
            NodeId(1),
            m(ArtemisMsg::Propose(Box::new(b1.clone()))),
            &mut cx,
        );
        let sigs: Vec<_> = [0usize, 2]
            .iter()
            .map(|&i| (NodeId(i as u16), keys[i].sign(&root_id(1, &g, 0))))
            .collect();
        let rc = RootCert {
            view: 1,
            block: g,
            height: 0,
            sig: c.aggregate_unchecked(&sigs),
        };
        v.on_message(NodeId(0), m(ArtemisMsg::RootCert(rc)), &mut cx);
        let votes: Vec<(usize, ChainVote)> = cx
            .actions()
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::Broadcast {
                    msg: ArtemisMsg::Vote(v),
                } => Some((i, (**v).clone())),
                _ => None,
            })
            .collect();
        assert_eq!(votes.len(), 1, "round 1's leader votes once");
        let (at, vote) = &votes[0];
        assert_eq!(
            (vote.round, vote.block, vote.prev_round),
            (1, b1.block.digest(), 0)
        );
        let persisted = cx.actions()[..*at]
            .iter()
            .any(|a| matches!(a, Action::Persist(s) if s.last_vote == (1, 1)));
        assert!(persisted, "the vote slot is durable before the vote leaves");
        // The same round again (its own vote echoed back, a newer block): no second vote.
        let mut cx2 = Cx::new(Duration::from_millis(1));
        v.on_message(r1, m(ArtemisMsg::Vote(Box::new(vote.clone()))), &mut cx2);
        let b2 = block(&keys, 1, b1.block.digest(), 2, 2);
        v.on_message(NodeId(1), m(ArtemisMsg::Propose(Box::new(b2))), &mut cx2);
        assert!(!cx2.actions().iter().any(|a| matches!(
            a,
            Action::Broadcast { msg: ArtemisMsg::Vote(x) } if x.round == 1
        )));
        // A second block of view 1 at height 1: blame with the proof.
        let b1x = block(&keys, 1, g, 1, 9);
        let mut cx3 = Cx::new(Duration::from_millis(2));
        v.on_message(NodeId(1), m(ArtemisMsg::Propose(Box::new(b1x))), &mut cx3);
        assert!(cx3.actions().iter().any(|a| matches!(
            a,
            Action::Broadcast { msg: ArtemisMsg::Blame(b) } if b.proof.is_some()
        )));
    }

    /// A replica restarted in view 1 holds none of its votes: it accepts the top of the
    /// chain once f + 1 peers vouch for it in their recovery replies (one is not enough),
    /// and in the next view root-votes only for a lock at or above the floor its peers
    /// report — the round a missed commit may rest on.
    #[test]
    fn a_restarted_replica_accepts_vouched_votes_and_root_votes_only_above_the_floor() {
        let n = 3;
        let (keys, c) = setup(n);
        let g = Block::genesis_digest();
        let m = |x: ArtemisMsg| Verified::assume_verified(x);
        // View 1: blocks at heights 1..=3, one vote per round on each, chained to the root.
        let mut sched = Schedule::new(1, n);
        let blocks: Vec<SignedBlock> = (1..=3u64).fold(Vec::new(), |mut bs, h| {
            let parent = bs.last().map_or(g, |b: &SignedBlock| b.block.digest());
            bs.push(block(&keys, 1, parent, h, h as u8));
            bs
        });
        let mut votes: Vec<ChainVote> = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let round = i as Round + 1;
            let prev = votes.last().map_or(root_id(1, &g, 0), |v| v.id());
            let voter = sched.leader(round).unwrap();
            let d = b.block.digest();
            let id = vote_id(1, round, &d, b.block.height, round - 1, &prev);
            votes.push(ChainVote {
                view: 1,
                round,
                block: d,
                height: b.block.height,
                prev_round: round - 1,
                prev,
                voter,
                signature: keys[voter.index()].sign(&id),
                skips: Vec::new(),
            });
        }
        let tail = votes[1..].to_vec();
        let reply = |reach: Round, tail: Vec<ChainVote>| {
            ArtemisMsg::SyncReply(Box::new(SyncReply {
                view: 1,
                entered_by: None,
                quit: None,
                round: 3,
                reach_view: 1,
                reach,
                tail,
                root: None,
            }))
        };
        let blame_cert = BlameCert {
            view: 1,
            sig: c.aggregate_unchecked(
                &[1usize, 2].map(|i| (NodeId(i as u16), keys[i].sign(&blame_statement(1)))),
            ),
        };
        let new_view = NewView {
            view: 2,
            justify: Lock {
                view: 1,
                round: 3,
                id: votes[2].id(),
                block: votes[2].block,
                height: 3,
            },
            block: Some(blocks[2].clone()),
            signature: keys[leader_of(2, n).index()].sign(&new_view_statement(
                2,
                &votes[2].id(),
                &votes[2].block,
            )),
        };
        let restored = Safety {
            view: 1,
            quit_view: 0,
            last_vote: (0, 0),
            lock: Lock::genesis(),
            reach: (0, 0),
            committed: (g, 0, 0),
        };
        let root_voted = |cx: &Cx| {
            cx.actions().iter().any(
                |a| matches!(a, Action::Broadcast { msg: ArtemisMsg::RootVote(v) } if v.view == 2),
            )
        };
        for (floor, expect_root_vote) in [(5, false), (3, true)] {
            let cfg = ReplicaConfig::new(NodeId(0), n);
            let mut v = Voter::new(&cfg, keys[0].clone(), c.clone(), Some(restored));
            let mut cx = Cx::new(Duration::ZERO);
            v.on_start(&mut cx);
            for b in &blocks {
                v.on_message(
                    NodeId(1),
                    m(ArtemisMsg::Propose(Box::new(b.clone()))),
                    &mut cx,
                );
            }
            v.on_message(NodeId(1), m(reply(3, tail.clone())), &mut cx);
            assert_eq!(v.best_lock(), Lock::genesis(), "one voucher is not enough");
            v.on_message(NodeId(2), m(reply(3, tail.clone())), &mut cx);
            assert_eq!(v.best_lock().rank(), (1, 3), "f + 1 vouchers: accepted");
            v.on_timer(RESYNC_TIMER, &mut cx);
            // View 1 ends; entering view 2 with a lock of view 1, it asks for the floor.
            v.on_message(NodeId(1), m(ArtemisMsg::BlameCert(blame_cert)), &mut cx);
            let mut cx = Cx::new(Duration::from_secs(1));
            v.on_timer(QUIT_TIMER, &mut cx);
            assert_eq!(v.safety().view, 2);
            assert!(cx.actions().iter().any(|a| matches!(
                a,
                Action::Broadcast {
                    msg: ArtemisMsg::SyncRequest(1)
                }
            )));
            v.on_message(NodeId(1), m(reply(floor, Vec::new())), &mut cx);
            v.on_message(NodeId(2), m(reply(1, Vec::new())), &mut cx);
            let nv = ArtemisMsg::NewView(Box::new(new_view.clone()));
            v.on_message(leader_of(2, n), m(nv), &mut cx);
            assert!(!root_voted(&cx), "no root vote before the floor is known");
            v.on_timer(FLOOR_TIMER, &mut cx);
            assert_eq!(root_voted(&cx), expect_root_vote, "floor {floor}");
            if expect_root_vote {
                assert!(
                    cx.actions().iter().any(|a| matches!(
                        a,
                        Action::Persist(s) if s.reach >= (1, 3) && s.last_vote == (2, 0)
                    )),
                    "the floor it voted on is durable"
                );
            }
        }
    }

    /// A replica restarted in a long view learns from the recovery replies how far the
    /// rounds went, so it accepts the current votes (and can commit again); without
    /// f + 1 such claims, a far-ahead round is refused.
    #[test]
    fn a_restarted_replica_accepts_votes_of_a_long_view() {
        let n = 3;
        let (keys, c) = setup(n);
        let cfg = ReplicaConfig::new(NodeId(0), n);
        let restored = Safety {
            view: 1,
            quit_view: 0,
            last_vote: (1, 0),
            lock: Lock::genesis(),
            reach: (0, 0),
            committed: (Block::genesis_digest(), 0, 0),
        };
        let round = 5000;
        let r = Schedule::new(1, n).leader(round).unwrap();
        let d = Digest::of(b"some block");
        let prev = Digest::of(b"some vote");
        let vote = ChainVote {
            view: 1,
            round,
            block: d,
            height: 900,
            prev_round: round - 1,
            prev,
            voter: r,
            signature: keys[r.index()].sign(&vote_id(1, round, &d, 900, round - 1, &prev)),
            skips: Vec::new(),
        };
        let m = |x: ArtemisMsg| Verified::assume_verified(x);
        for claims in [false, true] {
            let mut v = Voter::new(&cfg, keys[0].clone(), c.clone(), Some(restored));
            let mut cx = Cx::new(Duration::ZERO);
            v.on_start(&mut cx);
            if claims {
                for from in [1u16, 2] {
                    let reply = SyncReply {
                        view: 1,
                        entered_by: None,
                        quit: None,
                        round: round - 3,
                        reach_view: 1,
                        reach: round - 3,
                        tail: Vec::new(),
                        root: None,
                    };
                    let reply = ArtemisMsg::SyncReply(Box::new(reply));
                    v.on_message(NodeId(from), m(reply), &mut cx);
                }
            }
            v.on_message(r, m(ArtemisMsg::Vote(Box::new(vote.clone()))), &mut cx);
            let kept = v
                .views
                .get(&1)
                .is_some_and(|x| x.entries.contains_key(&vote.id()));
            assert_eq!(kept, claims);
        }
    }

    #[test]
    fn a_leader_half_forwards_batches_when_it_does_not_lead() {
        let n = 3;
        let (keys, _) = setup(n);
        // Replica 0 does not lead view 1 (replica 1 does).
        let cfg = ReplicaConfig::new(NodeId(0), n);
        let mut l = Leader::new(&cfg, keys[0].clone(), None);
        let mut cx = Cx::new(Duration::ZERO);
        let batch = BatchRef::new(Batch::new(vec![Transaction {
            client: 1,
            nonce: 1,
            payload: vec![1],
        }]));
        assert!(l.on_batch(batch.clone(), &mut cx));
        assert!(cx.actions().iter().any(|a| matches!(
            a,
            Action::Send { to, msg: ArtemisMsg::Forward { batches, .. } } if *to == NodeId(1) && batches.len() == 1
        )));
        // After a view change to view 2 (replica 2 leads) the batch is forwarded again.
        let mut cx = Cx::new(Duration::from_millis(1));
        let local = |x: Local| Verified::assume_verified(ArtemisMsg::Local(Box::new(x)));
        l.on_message(
            NodeId(0),
            local(Local::View {
                view: 1,
                quitting: true,
            }),
            &mut cx,
        );
        l.on_message(
            NodeId(0),
            local(Local::View {
                view: 2,
                quitting: false,
            }),
            &mut cx,
        );
        assert!(cx.actions().iter().any(|a| matches!(
            a,
            Action::Send { to, msg: ArtemisMsg::Forward { .. } } if *to == NodeId(2)
        )));
        // A peer cannot pose as the voter half.
        let mut cx = Cx::new(Duration::from_millis(2));
        l.on_message(
            NodeId(2),
            local(Local::View {
                view: 3,
                quitting: false,
            }),
            &mut cx,
        );
        assert_eq!(l.view, 2);
        // Once a block carries the batch, it is not re-forwarded.
        let b = SignedBlock {
            block: Block {
                parent: Block::genesis_digest(),
                view: 2,
                height: 1,
                proposer: NodeId(2),
                justify: QuorumCert::genesis(),
                payload: Payload::Digests(vec![batch.digest]),
            },
            signature: Signature::EMPTY,
        };
        l.on_message(
            NodeId(2),
            Verified::assume_verified(ArtemisMsg::Propose(Box::new(b))),
            &mut cx,
        );
        let mut cx = Cx::new(Duration::from_millis(3));
        l.on_message(
            NodeId(0),
            local(Local::View {
                view: 2,
                quitting: true,
            }),
            &mut cx,
        );
        l.on_message(
            NodeId(0),
            local(Local::View {
                view: 3,
                quitting: false,
            }),
            &mut cx,
        );
        assert!(!cx.actions().iter().any(|a| matches!(
            a,
            Action::Send {
                msg: ArtemisMsg::Forward { .. },
                ..
            }
        )));
    }

    /// Node 1's leader half, leading view 1 with genesis as its root, batches taking
    /// `batches_per_block` to fill a block.
    fn streaming_leader(batches_per_block: usize) -> (Leader, Cx) {
        let n = 3;
        let (keys, _) = setup(n);
        let mut cfg = ReplicaConfig::new(NodeId(1), n);
        cfg.max_batches_per_block = batches_per_block;
        let mut l = Leader::new(&cfg, keys[1].clone(), None);
        let mut cx = Cx::new(Duration::ZERO);
        let root = Local::Root {
            view: 1,
            block: Block::genesis_digest(),
            height: 0,
        };
        let msg = Verified::assume_verified(ArtemisMsg::Local(Box::new(root)));
        l.on_message(NodeId(1), msg, &mut cx);
        (l, cx)
    }

    /// Offers the leader a one-transaction batch.
    fn offer(l: &mut Leader, nonce: u64, cx: &mut Cx) {
        let b = BatchRef::new(Batch::new(vec![Transaction {
            client: 2,
            nonce,
            payload: vec![0],
        }]));
        assert!(l.on_batch(b, cx));
    }

    fn proposals(cx: &Cx) -> u64 {
        cx.actions()
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Broadcast {
                        msg: ArtemisMsg::Propose(_)
                    }
                )
            })
            .count() as u64
    }

    #[test]
    fn a_streaming_leader_stops_at_the_run_ahead_bound() {
        let (mut l, mut cx) = streaming_leader(1); // every batch fills a block
        for i in 0..(RUN_AHEAD + 20) {
            offer(&mut l, i, &mut cx);
        }
        assert_eq!(
            proposals(&cx),
            RUN_AHEAD,
            "no more than RUN_AHEAD blocks ahead of the last vote"
        );
    }

    /// Blocks that are not full go out only while fewer than PARTIAL_AHEAD blocks wait
    /// for a vote; the rest of the batches wait until they fill a block.
    #[test]
    fn partial_blocks_wait_while_enough_are_in_flight() {
        let (mut l, mut cx) = streaming_leader(4);
        for i in 0..PARTIAL_AHEAD + 3 {
            offer(&mut l, i, &mut cx);
        }
        // PARTIAL_AHEAD one-batch blocks, then three batches wait (a block takes four).
        assert_eq!(proposals(&cx), PARTIAL_AHEAD);
        offer(&mut l, 99, &mut cx);
        assert_eq!(proposals(&cx), PARTIAL_AHEAD + 1, "a full block goes out");
    }
}
