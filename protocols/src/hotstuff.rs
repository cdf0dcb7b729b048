//! Chained HotStuff (Yin et al., PODC 2019): three-chain commit, with a pacemaker of
//! timeouts and timeout certificates.
//!
//! ## Rules
//!
//! - **Leaders.** `leader(v) = v mod n` ([`RoundRobin`]). The leader of view `v` proposes a
//!   block `B` with `B.parent = B.justify.block`, `B.height = B.justify.height + 1`,
//!   where `B.justify` is the highest QC it knows. It proposes in `v` on a QC for `v − 1`
//!   (formed from the votes sent to it, or carried by timeouts) or on a timeout
//!   certificate (TC) for `v − 1` (formed from the timeouts sent to it, or forwarded to
//!   it), which the proposal then carries.
//! - **Voting (the voter half).** A replica in view `v` votes for the first valid
//!   proposal `B` of `leader(v)` with `B.view = v > last_voted` if `B` extends the locked
//!   block, or `B.justify.view > locked.view` (the liveness escape). It persists
//!   `last_voted` and the signed vote itself (`Safety::last_vote`, with the lock) before
//!   the vote leaves, and sends the vote to `leader(v + 1)` only: the happy path stays
//!   linear, one vote signature to check per vote. A QC is 2f+1 votes on
//!   `(view, height, block)` aggregated into one BLS signature.
//! - **Locking and commit.** On every QC for a block `b''` with `b' = b''.justify.block`
//!   and `b = b'.justify.block`: lock on `b''.justify` if its view is higher than the
//!   lock's; if `b'' → b' → b` are direct parent links *in consecutive views*, commit `b`
//!   and all its uncommitted ancestors in height order. (In the paper a leader pads a
//!   failed view with dummy blocks so that heights equal views and "direct parent" means
//!   "consecutive view"; here every block's parent is its justify block, so the rule is
//!   stated on views directly, as in LibraBFT's three-chain.)
//! - **Timeouts.** On its view timer a replica stops voting in its view `v`
//!   (`last_voted := v`, persisted) and broadcasts a [`Timeout`] for `v`, signed over `v`,
//!   carrying
//!   1. its highest QC;
//!   2. its highest TC (`high_tc`: normally the TC that took it into `v`);
//!   3. its latest vote (`last_vote`): the signed vote of the highest view it voted in,
//!      exactly as it was persisted and sent.
//!
//!   [`HotStuff::verify`] checks all of it: the timeout's signature, the QC, the TC (2f+1
//!   signatures, for a view below `v`), and the vote's signature, which must be the
//!   timeout sender's own, for a view at most `v`. The timer re-sends the timeout while
//!   the view lasts (the first may have been lost).
//! - **QCs from timeouts.** Every leader half feeds the votes carried by the timeouts it
//!   receives into its vote collector (those above its highest QC), whichever leader they
//!   were first sent to. So when `leader(v + 1)` is silent or cut off, the votes of view
//!   `v` still make `QC(v)` at the next leader to collect timeouts: `leader(v + 2)`,
//!   proposing on `TC(v + 1)`, justifies its block by `QC(v)`, and the commit rule fires
//!   on that QC. (At n = 4 with a silent replica, the three-chain `b₁ ← b₂ ← b₃` of three
//!   consecutive honest leaders never got the QC on `b₃`, which its silent successor
//!   should form, so nothing ever committed.) A leader that completes `QC(v − 1)` this
//!   way for a view `v` it leads proposes in `v`, if it has not yet.
//! - **Views.** A replica enters `v + 1` on a QC or a TC for a view `v` at least its own:
//!   a QC in a proposal or a timeout; a TC it aggregated itself from 2f+1 timeouts for `v`,
//!   or found in a proposal, in a timeout's `high_tc`, or in a forwarded [`HsMsg::Tc`].
//!   A replica that enters a view by a TC that the view's leader may lack (one it formed
//!   itself or found in a timeout) forwards it to that leader, which proposes on it if it
//!   has not proposed in the view. Because timeouts carry the high TC, a replica that
//!   missed the TC others entered a view by catches up from their next timeout (at n = 7
//!   views deadlocked: the replicas that had entered `v + 1` by a TC were too few to make a
//!   TC for `v + 1` or to trigger the f+1 rule, and the others could never again collect
//!   2f+1 timeouts for `v`). Receiving f+1 timeouts for a view at least its own makes a
//!   replica time out too. The view timeout doubles after each view that ended by timeout
//!   and resets on progress ([`Pacemaker`]).
//! - **Restart.** `Safety` also holds the highest QC and TC and the last vote. They are
//!   written with every persist that happens anyway (before each vote and each first
//!   timeout of a view), never on their own. A restarted replica resumes in
//!   `max(last_voted, high_qc.view + 1, high_tc.view + 1)`: a view it can prove to the
//!   others, whose timeouts therefore bring them along.
//! - **Catch-up.** A proposal whose parent is unknown is buffered (bounded) and the
//!   parent is fetched from the sender and from one signer of the QC on the parent (an
//!   honest signer voted for the parent so it has it; a restarted proposer may not). A
//!   replica answers a fetch with up to [`MAX_FETCH_BLOCKS`] blocks ending at the asked
//!   block. Fetched blocks are self-certifying through the hash chain; the certificates
//!   inside them are still verified.
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
//! block committed later. This is the paper's argument. Persisting `last_voted` and the
//! lock before every vote keeps it true across crashes. The simulator checks it under
//! crashes, partitions and Twins.
//!
//! The argument uses only two facts about honest replicas: each signs at most one vote
//! per view, and only as the vote rule allows, after processing the proposal's justify
//! QC (its lock). It does not care who aggregates a QC, nor how a replica came to be in
//! the view it votes in. The liveness rules keep both facts:
//!
//! - **A vote carried by a timeout is not a new vote.** For an honest sender it is the
//!   very vote it signed, persisted (`last_voted` and `last_vote`, in one persist) and
//!   sent to `leader(v + 1)` before; `verify` accepts it only as the timeout sender's own
//!   signed vote. The set of honest signed votes is unchanged, so any QC made of carried
//!   votes could have been made by the vote's own leader; forming it elsewhere changes
//!   nothing in the argument. (The simulator's double-vote checker sees carried votes
//!   too: a timeout's [`Message::signed_vote`] is its carried vote.)
//! - **A TC changes no vote.** Neither `last_voted`, the lock, nor the vote rule look at
//!   TCs or at how a view was entered. Entering a higher view by a TC (formed, carried,
//!   forwarded or restored) only moves the one view a replica may vote in upwards; it
//!   still votes at most once per view, never in a view at or below `last_voted`, and
//!   only for a block that extends its lock or is justified by a higher QC. Forwarding a
//!   TC signs nothing. A TC needs 2f+1 timeout signatures, so f Byzantine replicas cannot
//!   forge one (and one would only skip views: liveness, not safety).
//! - **Restored certificates** only choose the view a restarted replica resumes in, at
//!   least `last_voted`, so it never votes again in a view it voted or timed out in.
//!
//! ## Why it is live
//!
//! After the network stabilises (GST): take the highest view `V` an honest replica is
//! in. It entered `V` by a certificate for `V − 1`, which it holds (persisted, across a
//! restart), or by the f+1 rule, i.e. after some honest replica that entered `V` by a
//! certificate. Its timeouts, re-sent every view timer, carry that certificate, so every
//! honest replica reaches `V`; their 2f+1 timeouts for `V` then form `TC(V)` everywhere
//! and all enter `V + 1` within one message delay, and `leader(V + 1)` has the TC
//! (its own, or forwarded). With n = 3f+1 and round-robin leaders, the f Byzantine
//! replicas split the 2f+1 honest ones into at most f runs of consecutive views, so some
//! run is at least three views long: three consecutive honest proposals, each certified
//! once the backed-off timeout exceeds the round trip; the QC on the third is formed by
//! the next leader, or, if it is silent, from the carried votes by the first honest
//! leader after it, and the commit rule fires on it.
//!
//! ## Leader and voter halves
//!
//! The [`Leader`] half only sees votes, timeouts and forwarded TCs: it builds QCs and TCs
//! and proposes. The [`Voter`] half sees proposals, timeouts, forwarded TCs and block
//! fetches: it keeps the block tree, the safety rules, the view and the signing of votes
//! and timeouts, and aggregates the TCs it enters views by. They never share state; a
//! voter sends its vote to its own leader half like to any other.
//!
//! ## Pacing
//!
//! A leader that holds a QC proposes at once when it has batches, or when a vote of the
//! quorum says the voted block or an uncommitted ancestor carries transactions (the
//! unsigned `busy` hint of [`Vote`]): such a block commits only after two more blocks
//! are certified, so they must follow quickly. Otherwise — an idle cluster — it waits
//! [`IDLE_PROPOSE_DELAY`] (at most a quarter of the view timeout) or until a batch
//! arrives before proposing an empty block. Views keep turning without timeouts, but
//! an idle cluster does not spin at full speed. Pacing decides only *when* a proposal
//! is made, never what is voted or committed, so it cannot affect safety; a Byzantine
//! voter lying in the hint costs idle CPU or a little latency.
//!
//! ## Where signatures are checked
//!
//! [`HotStuff::verify`] checks every signature and certificate of a message before a
//! half sees it — except a plain vote's: the leader aggregates a quorum of votes and
//! verifies the sum once (one pairing check instead of 2f+1, on the critical path of
//! every view), and only if that fails bisects to the bad votes, drops them (their
//! signers stay counted, so they cannot vote again) and waits for more. A vote reaches
//! the leader only over its voter's authenticated link (`verify` checks the sender), so
//! a bad signature is its own voter's fault. Votes carried inside timeouts are verified
//! in `verify` like everything else.
//!
//! A proposal's own signature is checked only when someone other than its proposer
//! delivers it: from the proposer, the peer link — authenticated at connect time with
//! the proposer's committee key — already says who sent it, and nothing in the safety
//! argument rests on the proposer's signature (it rests on votes, QCs and TCs, all
//! checked). That saves one pairing check per view on every replica.

use crate::blocktree::{BlockTree, CommitError};
use crate::certs::quorum;
use crate::contract::{
    BatchRef, Commit, Context, Dest, Event, Half, Message, Protocol, ReplicaConfig, SignedVote,
    TimerId, Verified, VerifyError,
};
use crate::election::{LeaderElection, RoundRobin};
use crate::pacemaker::Pacemaker;
use crate::votes::Collector;
use olympus_crypto::{Committee, Keypair};
use olympus_types::{
    AggregateSignature, Block, Digest, Height, NodeId, QuorumCert, Signature, Statement, View,
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
/// The leader half's timer for a deferred empty proposal.
const IDLE_TIMER: TimerId = TimerId(2);
/// Longest a leader with nothing to order waits before proposing an empty block.
pub const IDLE_PROPOSE_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

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
    /// Not signed, a hint for pacing: the voted block or an uncommitted ancestor carries
    /// transactions, so the next leader should not wait before proposing (see
    /// "Pacing" in the module docs). A lie costs only idle CPU or a little latency.
    pub busy: bool,
}

/// A signed timeout for `view`, carrying the sender's highest QC, its highest TC and its
/// latest vote. Only `view` is signed by the timeout itself: the QC and the TC are
/// certificates and the vote is the sender's own signed vote, each checked on its own.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Timeout {
    pub view: View,
    pub high_qc: QuorumCert,
    /// The highest TC the sender knows (view below `view`): normally the one that took
    /// it into `view`. Lets a receiver that missed it enter the view too.
    pub high_tc: Option<TimeoutCert>,
    /// The sender's vote in the highest view it voted in (view at most `view`), exactly
    /// as it was persisted and sent. Lets any leader form the QC that the vote's own
    /// leader (silent, or cut off) never formed.
    pub last_vote: Option<Vote>,
    pub sender: NodeId,
    pub signature: Signature,
}

/// Chained HotStuff's messages.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum HsMsg {
    Propose(Box<Proposal>),
    Vote(Vote),
    Timeout(Box<Timeout>),
    /// A TC, forwarded to the leader of the view after it by a replica that entered that
    /// view by it.
    Tc(TimeoutCert),
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
            HsMsg::Timeout(_) | HsMsg::Tc(_) => Dest::Both,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            HsMsg::Propose(_) => "propose",
            HsMsg::Vote(_) => "vote",
            HsMsg::Timeout(_) => "timeout",
            HsMsg::Tc(_) => "tc",
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
            // The vote a timeout carries is its sender's own (`verify` checks it), the same
            // one it sent before: reporting it lets a checker see that it is.
            HsMsg::Timeout(t) => t.last_vote.map(|v| SignedVote {
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
    /// The highest QC seen (at least `locked`). Not a safety rule: it lets a restarted
    /// replica prove the view it resumes in (liveness).
    pub high_qc: QuorumCert,
    /// The highest TC seen, for the same reason.
    pub high_tc: Option<TimeoutCert>,
    /// This replica's vote in view `last_vote.view`, the highest view it voted in: what
    /// its timeouts carry. Set, with `last_voted`, before the vote leaves.
    pub last_vote: Option<Vote>,
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

/// Verifies a QC against the committee (the genesis QC is accepted by rule).
pub fn verify_qc(qc: &QuorumCert, committee: &Committee) -> Result<(), VerifyError> {
    crate::certs::verify_qc(qc, committee, vote_statement)
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
    crate::certs::verify_block(block, committee, vote_statement)
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
                // From its proposer, the authenticated link vouches for the proposal
                // (safety rests on votes and certificates, which are checked); relayed
                // by anyone else, its signature must.
                if from != p.block.proposer {
                    let d = p.block.digest();
                    committee
                        .verify(p.block.proposer, &proposal_statement(&d), &p.signature)
                        .map_err(|_| VerifyError::BadSignature(p.block.proposer))?;
                }
                if let Some(tc) = &p.tc {
                    if tc.view + 1 != p.block.view {
                        return Err(VerifyError::Malformed(
                            "TC is not for the previous view".into(),
                        ));
                    }
                    verify_tc(tc, committee)?;
                }
            }
            // A vote's signature is checked where it is used: the leader sums a
            // quorum of votes and verifies the sum once (one pairing check instead of
            // 2f+1), bisecting to the bad ones only if that fails (`Leader::on_vote`).
            // Here only the sender: the link is authenticated, so a vote can only be
            // its own voter's.
            HsMsg::Vote(v) => {
                if v.voter != from {
                    return Err(VerifyError::WrongSender {
                        sender: from,
                        signer: v.voter,
                    });
                }
            }
            HsMsg::Timeout(t) => {
                if t.high_qc.view >= t.view {
                    return Err(VerifyError::Malformed(
                        "timeout's QC not below its view".into(),
                    ));
                }
                if t.high_tc.is_some_and(|tc| tc.view >= t.view) {
                    return Err(VerifyError::Malformed(
                        "timeout's TC not below its view".into(),
                    ));
                }
                if let Some(v) = &t.last_vote {
                    if v.voter != t.sender {
                        return Err(VerifyError::Malformed(
                            "timeout carries another replica's vote".into(),
                        ));
                    }
                    if v.view > t.view || v.view == 0 {
                        return Err(VerifyError::Malformed(
                            "timeout's vote not in a view up to its own".into(),
                        ));
                    }
                }
                committee
                    .verify(t.sender, &timeout_statement(t.view), &t.signature)
                    .map_err(|_| VerifyError::BadSignature(t.sender))?;
                if let Some(v) = &t.last_vote {
                    committee
                        .verify(
                            v.voter,
                            &vote_statement(v.view, v.height, &v.block),
                            &v.signature,
                        )
                        .map_err(|_| VerifyError::BadSignature(v.voter))?;
                }
                verify_qc(&t.high_qc, committee)?;
                if let Some(tc) = &t.high_tc {
                    verify_tc(tc, committee)?;
                }
            }
            HsMsg::Tc(tc) => verify_tc(tc, committee)?,
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
            Voter::new(cfg, key, committee, restored),
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
    votes: Collector<(View, Height, Digest), (Signature, bool)>,
    timeouts: Collector<View, (Signature, QuorumCert)>,
    pending: VecDeque<BatchRef>,
    max_pending: usize,
    cfg: ReplicaConfig,
    /// A view this leader may propose in (it holds the QC) but waits in, because it has
    /// no batches and the chain nothing left to commit.
    deferred: Option<View>,
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
            cfg: cfg.clone(),
            deferred: None,
        }
    }

    /// How long a leader with nothing to order waits before it proposes an empty block:
    /// well inside the replicas' view timeout, so an idle cluster changes views without
    /// timeouts but without spinning either.
    pub fn idle_delay(&self) -> std::time::Duration {
        (self.cfg.view_timeout / 4).min(IDLE_PROPOSE_DELAY)
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

    /// Counts a vote (sent to this leader, or carried by a timeout); on a quorum, forms
    /// the QC and, if this replica leads the next view, proposes in it.
    fn on_vote(&mut self, v: Vote, cx: &mut Cx) {
        let key = (v.view, v.height, v.block);
        if let Some(mut q) = self.votes.add(key, v.voter, (v.signature, v.busy)) {
            // Aggregate-then-verify: the votes' signatures were not checked on arrival.
            let statement = vote_statement(v.view, v.height, &v.block);
            let (sig, busy) = loop {
                let sigs: Vec<_> = q.iter().map(|(n, (s, _))| (*n, *s)).collect();
                let busy = q.iter().any(|(_, (_, b))| *b);
                let (sig, bad) = self.committee.aggregate(&statement, &sigs);
                if bad.is_empty() {
                    break (sig, busy);
                }
                cx.event(Event::Ignored {
                    kind: "vote",
                    reason: "bad signature",
                });
                // Without the bad votes, and with those that arrived since, if enough.
                let good = q.into_iter().filter(|(n, _)| !bad.contains(n)).collect();
                match self.votes.reopen(&key, good) {
                    Some(next) => q = next,
                    None => return,
                }
            };
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
            if busy || !self.pending.is_empty() {
                self.propose(v.view + 1, None, cx);
            } else if self.election.leader(v.view + 1) == self.id && v.view + 1 > self.last_proposed
            {
                // Nothing to order and nothing to commit: wait a little, unless a batch
                // comes first.
                self.deferred = Some(v.view + 1);
                cx.set_timer(IDLE_TIMER, self.idle_delay());
            }
        }
    }

    /// A TC for `view − 1`, formed elsewhere: if this replica leads `view` and has not
    /// proposed in it, it proposes on the TC.
    fn on_tc(&mut self, tc: TimeoutCert, cx: &mut Cx) {
        self.propose(tc.view + 1, Some(tc), cx);
    }

    fn propose(&mut self, view: View, tc: Option<TimeoutCert>, cx: &mut Cx) {
        if view <= self.last_proposed || self.election.leader(view) != self.id {
            return;
        }
        if self.deferred.take().is_some() {
            cx.cancel_timer(IDLE_TIMER);
        }
        let (payload, take) = crate::contract::payload_for_block(&mut self.pending, &self.cfg);
        let justify = self.high_qc;
        let block = Block {
            parent: justify.block,
            view,
            height: justify.height + 1,
            proposer: self.id,
            justify,
            payload,
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
                self.on_vote(v, cx);
            }
            HsMsg::Timeout(t) => {
                self.raise_high_qc(&t.high_qc);
                // The sender's latest vote: any leader may complete a QC with it (the
                // vote's own leader may be silent). Only a QC above ours is of use.
                if let Some(v) = t.last_vote {
                    if v.view > self.high_qc.view {
                        self.on_vote(v, cx);
                    }
                }
                if let Some(tc) = t.high_tc {
                    self.on_tc(tc, cx);
                }
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
            HsMsg::Tc(tc) => self.on_tc(tc, cx),
            _ => {}
        }
    }

    fn on_timer(&mut self, id: TimerId, cx: &mut Cx) {
        if id == IDLE_TIMER {
            if let Some(view) = self.deferred.take() {
                self.propose(view, None, cx);
            }
        }
    }

    fn on_batch(&mut self, batch: BatchRef, cx: &mut Cx) -> bool {
        if self.pending.len() >= self.max_pending {
            return false;
        }
        self.pending.push_back(batch);
        if let Some(view) = self.deferred.take() {
            cx.cancel_timer(IDLE_TIMER);
            self.propose(view, None, cx);
        }
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
    committee: Arc<Committee>,
    election: RoundRobin,
    view: View,
    /// The safety rules' state, and the highest QC and TC and the last vote, which are
    /// persisted with it.
    safety: Safety,
    tree: BlockTree,
    /// Proposals waiting for an ancestor, by the digest they wait for.
    buffered: BTreeMap<View, (NodeId, Proposal)>,
    requested: HashSet<Digest>,
    /// Timeouts for views at least ours, aggregated into a TC on a quorum.
    timeouts: Collector<View, Signature>,
    pacemaker: Pacemaker,
}

impl Voter {
    pub fn new(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> Self {
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
                    high_qc: QuorumCert::genesis(),
                    high_tc: None,
                    last_vote: None,
                };
                (t, s)
            }
        };
        // Resume in the last view voted or timed out in, or the view after the highest
        // certificate if that is higher: a view this replica can prove to others (its
        // timeouts carry the certificate), and above its highest QC, as a timeout's
        // QC must be.
        let view = safety
            .last_voted
            .max(safety.high_qc.view + 1)
            .max(safety.high_tc.map_or(0, |tc| tc.view + 1))
            .max(1);
        Voter {
            id: cfg.id,
            n: cfg.n,
            key,
            committee,
            election: RoundRobin { n: cfg.n },
            view,
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
        if qc.view > self.safety.high_qc.view {
            self.safety.high_qc = *qc;
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
            // Ask the proposer, and one replica that certified the parent (an honest
            // signer voted for it, so it has it; the proposer may not, after a restart).
            let signers: Vec<NodeId> = p
                .block
                .justify
                .sig
                .signers
                .iter()
                .filter(|s| *s != self.id && *s != from)
                .collect();
            let also =
                (!signers.is_empty()).then(|| signers[(view % signers.len() as u64) as usize]);
            if self.requested.insert(p.block.parent) {
                cx.send(from, HsMsg::Fetch(p.block.parent));
                if let Some(s) = also {
                    cx.send(s, HsMsg::Fetch(p.block.parent));
                }
            }
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
            // It came from the leader of `tc.view + 1`: nobody to forward it to.
            self.on_tc(tc, false, cx);
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
        let signature = self
            .key
            .sign(&vote_statement(block.view, block.height, &digest));
        let vote = Vote {
            view: block.view,
            height: block.height,
            block: digest,
            voter: self.id,
            signature,
            busy: self.tree.uncommitted_payload(&digest),
        };
        self.safety.last_voted = block.view;
        self.safety.last_vote = Some(vote);
        cx.persist(self.safety);
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
        let s = &self.safety;
        cx.broadcast(HsMsg::Timeout(Box::new(Timeout {
            view,
            // `view` is at least ours, which is above both certificates and at least
            // the view of our last vote (the filters only restate it).
            high_qc: s.high_qc,
            high_tc: s.high_tc.filter(|tc| tc.view < view),
            last_vote: s.last_vote.filter(|v| v.view <= view),
            sender: self.id,
            signature,
        })));
    }

    /// Processes a TC: the highest TC, and the view after it. A replica that enters a
    /// view by a TC that its leader may not have (one it formed itself, or found in a
    /// timeout) forwards it to that leader, so that the leader can propose.
    fn on_tc(&mut self, tc: TimeoutCert, forward: bool, cx: &mut Cx) {
        if self.safety.high_tc.is_none_or(|h| tc.view > h.view) {
            self.safety.high_tc = Some(tc);
        }
        if tc.view >= self.view {
            self.enter_view(tc.view + 1, true, cx);
            let leader = self.election.leader(tc.view + 1);
            if forward && leader != self.id {
                cx.send(leader, HsMsg::Tc(tc));
            }
        }
    }

    fn on_timeout_msg(&mut self, t: Timeout, cx: &mut Cx) {
        self.on_qc(&t.high_qc, cx);
        if let Some(tc) = t.high_tc {
            self.on_tc(tc, true, cx);
        }
        if t.view < self.view {
            return;
        }
        let before = self.timeouts.count(&t.view);
        // The signatures were checked by `verify`. The TC formed here is what this
        // replica's own timeouts carry and what it forwards to the next leader.
        if let Some(q) = self.timeouts.add(t.view, t.sender, t.signature) {
            let tc = TimeoutCert {
                view: t.view,
                sig: self.committee.aggregate_unchecked(&q),
            };
            cx.event(Event::TimeoutCertFormed { view: t.view });
            self.on_tc(tc, true, cx);
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
            HsMsg::Timeout(t) => self.on_timeout_msg(*t, cx),
            // Forwarded to this replica as the next leader; the leader half proposes on
            // it, and the voter enters the view (nobody to forward it to).
            HsMsg::Tc(tc) => self.on_tc(tc, false, cx),
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
    use olympus_types::{Batch, Payload, Transaction};
    use std::collections::VecDeque;
    use std::time::Duration;

    struct Node {
        leader: Leader,
        voter: Voter,
        commits: Vec<Digest>,
        txs: Vec<(u64, u64)>,
        persisted: Option<Safety>,
    }

    /// A perfect network: FIFO delivery, every message verified; view timers fire only
    /// when a test says so, a leader's idle timer whenever the network is quiet.
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
            if self.queue.is_empty() {
                // Idle time passes (less than a view timeout): a leader that deferred an
                // empty proposal makes it now.
                for i in 0..self.nodes.len() {
                    let id = NodeId(i as u16);
                    if !silent.contains(&id) {
                        let mut cx = Cx::new(Duration::ZERO);
                        self.nodes[i].leader.on_timer(IDLE_TIMER, &mut cx);
                        self.apply(id, &mut cx);
                    }
                }
            }
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

    impl Net {
        fn run(&mut self, silent: &[NodeId], max_steps: usize) {
            for _ in 0..max_steps {
                if !self.step(silent) {
                    break;
                }
            }
        }

        /// Fires the view timer of every voter not in `silent`.
        fn fire_view_timers(&mut self, silent: &[NodeId]) {
            for i in 0..self.nodes.len() {
                let id = NodeId(i as u16);
                if silent.contains(&id) {
                    continue;
                }
                let mut cx = Cx::new(Duration::ZERO);
                self.nodes[i].voter.on_timer(VIEW_TIMER, &mut cx);
                self.apply(id, &mut cx);
            }
        }
    }

    fn keys(n: usize, scheme: Scheme) -> Vec<Keypair> {
        (0..n)
            .map(|i| Keypair::generate(scheme, &[7; 32], NodeId(i as u16)))
            .collect()
    }

    /// A TC for `view` signed by `signers`.
    fn tc(net: &Net, keys: &[Keypair], view: View, signers: &[u16]) -> TimeoutCert {
        let sigs: Vec<_> = signers
            .iter()
            .map(|i| (NodeId(*i), keys[*i as usize].sign(&timeout_statement(view))))
            .collect();
        TimeoutCert {
            view,
            sig: net.committee.aggregate_unchecked(&sigs),
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
    fn the_leader_after_a_silent_one_forms_the_last_qc_from_timeouts() {
        // Node 3 is silent: the votes of views 2, 6, 10, ... go to it and are lost, so
        // every chain of three consecutive views ends without the QC the commit rule
        // needs. The timeouts of views 2 and 3 carry those votes; leader(4) = 0 forms
        // QC(2) from them and proposes view 4 on TC(3) with it.
        let mut net = Net::new(4, Scheme::Insecure);
        for i in 0..3 {
            offer(&mut net, i, i as u64, 0..10);
        }
        let silent = [NodeId(3)];
        net.start();
        net.run(&silent, 10_000);
        assert_eq!(net.nodes[0].voter.view(), 2);
        net.fire_view_timers(&silent);
        net.run(&silent, 10_000);
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.view(), 3, "2f+1 timeouts for view 2");
        }
        assert_eq!(
            net.nodes[0].leader.high_qc.view, 2,
            "QC(2) from the timeouts"
        );
        net.fire_view_timers(&silent);
        net.run(&silent, 10_000);
        // Views 4, 5, 6 (leaders 0, 1, 2) follow; view 6's votes are lost again.
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.view(), 6);
            assert_eq!(net.nodes[i].voter.safety().locked.view, 4);
        }
        // QC(6), formed by node 0 from the timeouts of view 6, reaches everybody in the
        // proposal of view 8 and commits block 4 (6 <- 5 <- 4 are consecutive) and its
        // ancestors 2 and 1.
        net.fire_view_timers(&silent);
        net.run(&silent, 10_000);
        net.fire_view_timers(&silent);
        net.run(&silent, 10_000);
        for i in 0..3 {
            assert_eq!(net.nodes[i].commits.len(), 3, "node {i}");
            assert_eq!(net.nodes[i].commits, net.nodes[0].commits);
        }
        let mut txs = net.nodes[0].txs.clone();
        txs.sort();
        txs.dedup();
        assert_eq!(txs.len(), 30, "blocks 1, 2 and 4, of leaders 1, 2 and 0");
    }

    #[test]
    fn a_replica_that_missed_a_tc_enters_the_view_by_a_timeout_carrying_it() {
        let mut net = Net::new(4, Scheme::Insecure);
        let keys = keys(4, Scheme::Insecure);
        let tc1 = tc(&net, &keys, 1, &[0, 2, 3]);
        // Node 0, in view 2 by TC(1), times out of view 2; node 1 saw none of it.
        let t = Timeout {
            view: 2,
            high_qc: QuorumCert::genesis(),
            high_tc: Some(tc1),
            last_vote: None,
            sender: NodeId(0),
            signature: keys[0].sign(&timeout_statement(2)),
        };
        net.queue
            .push_back((NodeId(0), NodeId(1), HsMsg::Timeout(Box::new(t))));
        assert!(net.step(&[]));
        assert_eq!(net.nodes[1].voter.view(), 2, "entered view 2 by TC(1)");
        assert_eq!(net.nodes[1].voter.safety().high_tc, Some(tc1));
        // It forwards the TC to leader(2) = 2, which proposes on it.
        assert!(matches!(
            net.queue.back(),
            Some((NodeId(1), NodeId(2), HsMsg::Tc(c))) if *c == tc1
        ));
        assert!(net.step(&[]));
        assert!(net.queue.iter().any(|(from, _, m)| *from == NodeId(2)
            && matches!(m, HsMsg::Propose(p) if p.block.view == 2 && p.tc == Some(tc1))));
        // Node 1's own timeouts now carry TC(1).
        let mut cx = Cx::new(Duration::ZERO);
        net.nodes[1].voter.on_timer(VIEW_TIMER, &mut cx);
        assert!(cx.actions().iter().any(|a| matches!(
            a,
            Action::Broadcast { msg: HsMsg::Timeout(t) } if t.view == 2 && t.high_tc == Some(tc1)
        )));
    }

    #[test]
    fn a_timeout_carries_the_persisted_last_vote() {
        let mut net = Net::new(4, Scheme::Insecure);
        net.start();
        net.run(&[NodeId(3)], 10_000);
        let s = net.nodes[1].persisted.expect("persisted before voting");
        let v = s.last_vote.expect("voted");
        assert_eq!((v.view, s.last_voted), (2, 2));
        let mut cx = Cx::new(Duration::ZERO);
        net.nodes[1].voter.on_timer(VIEW_TIMER, &mut cx);
        let sent = cx.actions().iter().find_map(|a| match a {
            Action::Broadcast {
                msg: HsMsg::Timeout(t),
            } => Some(**t),
            _ => None,
        });
        assert_eq!(sent.unwrap().last_vote, Some(v), "the same signed vote");
    }

    #[test]
    fn a_restarted_replica_resumes_above_its_certificates() {
        let net = Net::new(4, Scheme::Insecure);
        let keys = keys(4, Scheme::Insecure);
        let mut high_qc = QuorumCert::genesis();
        high_qc.view = 5;
        let mut s = *net.nodes[0].voter.safety();
        s.last_voted = 3;
        s.high_qc = high_qc;
        let cfg = ReplicaConfig::new(NodeId(0), 4);
        let v = Voter::new(
            &cfg,
            Arc::new(keys[0].clone()),
            net.committee.clone(),
            Some(s),
        );
        assert_eq!(v.view(), 6);
        s.high_tc = Some(tc(&net, &keys, 8, &[0, 1, 2]));
        let v = Voter::new(
            &cfg,
            Arc::new(keys[0].clone()),
            net.committee.clone(),
            Some(s),
        );
        assert_eq!(v.view(), 9);
        s.last_voted = 12;
        let v = Voter::new(
            &cfg,
            Arc::new(keys[0].clone()),
            net.committee.clone(),
            Some(s),
        );
        assert_eq!(v.view(), 12);
    }

    #[test]
    fn verify_checks_what_a_timeout_carries() {
        let net = Net::new(4, Scheme::Bls);
        let keys = keys(4, Scheme::Bls);
        let d = Digest::of(b"x");
        let vote = |i: usize, view: View| Vote {
            view,
            height: 2,
            block: d,
            voter: NodeId(i as u16),
            signature: keys[i].sign(&vote_statement(view, 2, &d)),
            busy: true,
        };
        let timeout = |view: View, high_tc, last_vote| Timeout {
            view,
            high_qc: QuorumCert::genesis(),
            high_tc,
            last_vote,
            sender: NodeId(1),
            signature: keys[1].sign(&timeout_statement(view)),
        };
        let ok =
            |t: Timeout| HotStuff::verify(HsMsg::Timeout(Box::new(t)), NodeId(1), &net.committee);
        let tc4 = tc(&net, &keys, 4, &[0, 1, 2]);
        assert!(ok(timeout(5, Some(tc4), Some(vote(1, 5)))).is_ok());
        assert!(ok(timeout(5, None, Some(vote(1, 3)))).is_ok());
        assert!(
            ok(timeout(5, None, Some(vote(2, 3)))).is_err(),
            "another's vote"
        );
        assert!(
            ok(timeout(5, None, Some(vote(1, 6)))).is_err(),
            "vote above"
        );
        let mut forged = vote(1, 3);
        forged.block = Digest::of(b"y");
        assert!(
            ok(timeout(5, None, Some(forged))).is_err(),
            "bad vote signature"
        );
        assert!(ok(timeout(4, Some(tc4), None)).is_err(), "TC not below");
        let weak = tc(&net, &keys, 4, &[0, 1]);
        assert!(
            ok(timeout(5, Some(weak), None)).is_err(),
            "TC without a quorum"
        );
        let mut wrong = tc4;
        wrong.view = 3;
        assert!(
            ok(timeout(5, Some(wrong), None)).is_err(),
            "TC for another view"
        );
        assert!(HotStuff::verify(HsMsg::Tc(tc4), NodeId(3), &net.committee).is_ok());
        assert!(HotStuff::verify(HsMsg::Tc(weak), NodeId(3), &net.committee).is_err());
        assert!(HotStuff::verify(HsMsg::Tc(wrong), NodeId(3), &net.committee).is_err());
    }

    /// Pacing: with no batches and votes saying nothing is left to commit, the leader
    /// defers its empty proposal to its idle timer; a batch, or a busy vote, makes it
    /// propose at once.
    #[test]
    fn an_idle_leader_waits_and_a_batch_or_a_busy_chain_wakes_it() {
        let n = 4;
        let keys = keys(n, Scheme::Insecure);
        let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let committee = Arc::new(Committee::new(Scheme::Insecure, &pks).unwrap());
        let cfg = ReplicaConfig::new(NodeId(2), n);
        let (mut leader, _) =
            HotStuff::create(&cfg, Arc::new(keys[2].clone()), committee.clone(), None);
        let vote = |i: usize, view: View, busy: bool| {
            let d = Digest::of(&view.to_le_bytes());
            Vote {
                view,
                height: view,
                block: d,
                voter: NodeId(i as u16),
                signature: keys[i].sign(&vote_statement(view, view, &d)),
                busy,
            }
        };
        let proposed = |cx: &Cx| {
            cx.actions()
                .iter()
                .filter(|a| {
                    matches!(
                        a,
                        Action::Broadcast {
                            msg: HsMsg::Propose(_)
                        }
                    )
                })
                .count()
        };
        let idle_timer_set = |cx: &Cx| {
            cx.actions()
                .iter()
                .any(|a| matches!(a, Action::SetTimer { id, .. } if *id == IDLE_TIMER))
        };
        // Idle: a QC for view 1 (node 2 leads view 2), nothing pending, nothing busy.
        let mut cx = Cx::new(Duration::ZERO);
        for i in 0..3 {
            let v = Verified::assume_verified(HsMsg::Vote(vote(i, 1, false)));
            leader.on_message(NodeId(i as u16), v, &mut cx);
        }
        assert_eq!(proposed(&cx), 0, "an idle leader waits");
        assert!(idle_timer_set(&cx));
        // A batch arrives: it proposes at once, with the batch.
        let mut cx = Cx::new(Duration::ZERO);
        let tx = Transaction {
            client: 1,
            nonce: 1,
            payload: vec![],
        };
        assert!(leader.on_batch(BatchRef::new(Batch::new(vec![tx])), &mut cx));
        assert_eq!(proposed(&cx), 1, "a batch wakes the leader");
        // The idle timer after that changes nothing.
        let mut cx = Cx::new(Duration::ZERO);
        leader.on_timer(IDLE_TIMER, &mut cx);
        assert_eq!(proposed(&cx), 0);
        // Node 2 leads view 6 too: a busy vote there makes it propose without waiting.
        let mut cx = Cx::new(Duration::ZERO);
        for i in 0..3 {
            let v = Verified::assume_verified(HsMsg::Vote(vote(i, 5, i == 1)));
            leader.on_message(NodeId(i as u16), v, &mut cx);
        }
        assert_eq!(proposed(&cx), 1, "a busy chain is driven to its commit");
    }

    /// Votes are verified by aggregation at the leader: a quorum holding a vote with a
    /// bad signature forms no QC; the bad voter is dropped, and the next good vote
    /// completes the certificate, which verifies.
    #[test]
    fn a_bad_vote_is_caught_by_aggregation() {
        let n = 4;
        let keys: Vec<_> = (0..n)
            .map(|i| Keypair::generate(Scheme::Bls, &[7; 32], NodeId(i as u16)))
            .collect();
        let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
        let committee = Arc::new(Committee::new(Scheme::Bls, &pks).unwrap());
        // Node 2 leads view 2, so it collects the votes of view 1.
        let cfg = ReplicaConfig::new(NodeId(2), n);
        let (mut leader, _) =
            HotStuff::create(&cfg, Arc::new(keys[2].clone()), committee.clone(), None);
        let d = Digest::of(b"block of view 1");
        let vote = |i: usize, signer: usize| Vote {
            view: 1,
            height: 1,
            block: d,
            voter: NodeId(i as u16),
            signature: keys[signer].sign(&vote_statement(1, 1, &d)),
            busy: true,
        };
        let mut cx = Cx::new(std::time::Duration::ZERO);
        let proposals = |cx: &Cx| {
            cx.actions()
                .iter()
                .filter_map(|a| match a {
                    Action::Broadcast {
                        msg: HsMsg::Propose(p),
                    } => Some(p.block.justify),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        for (voter, signer) in [(0, 0), (1, 3), (2, 2)] {
            let v = HotStuff::verify(
                HsMsg::Vote(vote(voter, signer)),
                NodeId(voter as u16),
                &committee,
            )
            .unwrap();
            leader.on_message(NodeId(voter as u16), v, &mut cx);
        }
        assert!(
            proposals(&cx).is_empty(),
            "a QC formed over a bad signature"
        );
        let again = HotStuff::verify(HsMsg::Vote(vote(1, 1)), NodeId(1), &committee).unwrap();
        leader.on_message(NodeId(1), again, &mut cx);
        assert!(
            proposals(&cx).is_empty(),
            "the bad voter must not count twice"
        );
        let v = HotStuff::verify(HsMsg::Vote(vote(3, 3)), NodeId(3), &committee).unwrap();
        leader.on_message(NodeId(3), v, &mut cx);
        let qcs = proposals(&cx);
        assert_eq!(qcs.len(), 1, "the good votes form the QC");
        assert_eq!(qcs[0].view, 1);
        verify_qc(&qcs[0], &committee).unwrap();
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
            busy: true,
        };
        assert!(HotStuff::verify(HsMsg::Vote(good), NodeId(1), &net.committee).is_ok());
        let wrong_sender = HotStuff::verify(HsMsg::Vote(good), NodeId(2), &net.committee);
        assert!(matches!(wrong_sender, Err(VerifyError::WrongSender { .. })));
        // A vote's signature is checked when the leader aggregates it (see
        // `a_bad_vote_is_caught_by_aggregation`), not by `verify`.
        let mut bad = good;
        bad.view = 4;
        assert!(HotStuff::verify(HsMsg::Vote(bad), NodeId(1), &net.committee).is_ok());
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
            high_tc: None,
            last_vote: None,
            sender: NodeId(1),
            signature: k.sign(&timeout_statement(5)),
        };
        assert!(HotStuff::verify(HsMsg::Timeout(Box::new(t)), NodeId(1), &net.committee).is_err());
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
