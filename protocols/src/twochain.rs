//! Two-chain HotStuff in the style of Jolteon (Gelashvili et al., FC 2022) and DiemBFT v4:
//! a two-chain commit rule, paid for with a view change whose timeouts carry each
//! sender's highest certified round.
//!
//! ## Rules
//!
//! "Round" and "view" mean the same thing here; the code says view, like the rest of
//! olympus.
//!
//! - **Leaders.** `leader(r) = r mod n` ([`RoundRobin`]). The leader of round `r` proposes
//!   a block `B` with `B.parent = B.justify.block` and `B.height = B.justify.height + 1`,
//!   where `B.justify` is the highest QC it knows. It proposes in `r` on a QC for `r − 1`
//!   (formed from the votes sent to it, or carried by timeouts), or on a timeout
//!   certificate (TC) for `r − 1` (formed from the timeouts sent to it, found in a
//!   timeout, or forwarded to it), which the proposal then carries.
//! - **Voting (the voter half).** A replica in round `r` votes for the first valid
//!   proposal `B` of `leader(r)` with `B.view = r` iff `r > last_voted` and either
//!   1. `B.justify.view + 1 = r`, or
//!   2. the proposal carries a TC for `r − 1` and `B.justify.view ≥ tc.high_qc_view()`,
//!      the highest of the QC rounds its signers reported.
//!
//!   It persists `last_voted = r` and the signed vote itself (`Safety::last_vote`, with
//!   its highest QC) before the vote leaves, and sends the vote to `leader(r + 1)` only
//!   (the happy path stays linear). A QC is 2f+1 votes on `(view, height, block)` under the
//!   domain tag `twochain/vote`, aggregated into one BLS signature.
//! - **Lock.** Every replica keeps the highest QC it has seen (`Safety::high_qc`, the
//!   highest certified block) and persists it before a vote or a timeout leaves. It is
//!   not consulted by the vote rule: it is what the replica's timeouts report, and that
//!   report is what makes rule 2 safe. (DiemBFT v4's safety module tracks only the QC
//!   rounds of blocks it voted for; the highest QC seen is at least that, which is all
//!   the argument below needs, and it lets a timeout hand the next leader the best QC.)
//! - **Commit.** On every QC for a block `b'` whose justify is a QC for `b = b'.parent`
//!   with `b'.view = b.view + 1` (a direct parent link in consecutive rounds): commit `b`
//!   and all its uncommitted ancestors in height order. The [`Commit::proof`] is the QC on
//!   the committed block (`b'.justify`), as in [`crate::hotstuff`].
//! - **Timeouts.** On its view timer a replica sets `last_voted := max(last_voted, r)`,
//!   persists it, and broadcasts a [`Timeout`] for its round `r` carrying
//!   1. its highest QC;
//!   2. its highest TC (`high_tc`, normally the TC that took it into `r`), kept only if
//!      every QC view it reports is at most the replica's highest QC's;
//!   3. its latest vote (`last_vote`): the signed vote of the highest round it voted in,
//!      exactly as it was persisted and sent.
//!
//!   The timeout's signature (tag `twochain/timeout`) binds `(r, high_qc.view)`, not the
//!   QC itself. 2f+1 timeouts for `r` are aggregated (by `leader(r + 1)` and by every
//!   voter) into a TC with one BLS signature over the distinct per-signer statements
//!   ([`Committee::aggregate_multi_unchecked`], checked by
//!   [`Committee::verify_aggregate_multi`]), listing each signer's `high_qc.view`.
//!   [`TwoChain::verify`] checks everything a timeout carries: the QC (below `r`), the TC
//!   (below `r`, reporting no QC view above the timeout's QC), and the vote, which must be
//!   the sender's own signed vote for a round at most `r`. A replica never votes in a
//!   round it timed out of (`last_voted` already covers it).
//! - **QCs from timeouts.** Every leader half feeds the votes carried by the timeouts it
//!   receives into its vote collector (those above its highest QC), whichever leader
//!   they were first sent to. When `leader(r + 1)` is silent, the votes of round `r`
//!   still make `QC(r)` at the next leader that collects timeouts, which extends it.
//! - **Views.** A replica enters `r + 1` on a QC or a TC for a round `r` at least its
//!   own: a QC in a proposal or a timeout; a TC it aggregated itself from 2f+1 timeouts
//!   for `r`, or found in a proposal, in a timeout's `high_tc`, or in a forwarded
//!   [`TcMsg::Tc`]. A replica that enters a round by a TC the round's leader may lack (one
//!   it formed, or found in a timeout) forwards it to that leader with its highest QC
//!   ([`ForwardedTc`], whose QC covers the TC's reports, so the leader can extend it);
//!   the leader proposes on it if it has not proposed in the round. Receiving f+1
//!   timeouts for a round at least its own makes a replica time out too. The view
//!   timeout doubles after each round that ended by timeout and resets on progress
//!   ([`Pacemaker`]).
//! - **Restart.** `Safety` holds `last_voted`, the highest QC, the highest TC and the
//!   last vote, all written with the persists that happen anyway (before each vote and
//!   each first timeout of a round, or on a new highest QC or commit). A restarted replica
//!   resumes in `max(last_voted, high_qc.view + 1, high_tc.view + 1)`: a round it can
//!   prove to the others, above its highest QC as its timeouts require.
//! - **Catch-up.** As in [`crate::hotstuff`]: a proposal whose parent is unknown is
//!   buffered (bounded) and the parent fetched from the sender and from one signer of the
//!   QC on the parent (an honest signer voted for it, so it has it); a replica answers
//!   with up to [`MAX_FETCH_BLOCKS`] blocks ending at the asked block.
//!
//! ## Why it is safe
//!
//! Let `b` (round `r`) be committed through `b ← b'` with `b'.view = r + 1`,
//! `b'.justify = QC(b)` and a QC on `b'`. Its 2f+1 voters include a set `S` of f+1 honest
//! replicas, each of which had processed `QC(b)` before voting in round `r + 1`, so each
//! had persisted a highest QC of round `≥ r` and `last_voted ≥ r + 1` before its vote
//! left. We show by induction on the round `r'' > r + 1` that every block `B` certified in
//! `r''` extends `b` (in round `r` the only certified block is `b`, in `r + 1` only `b'`,
//! by quorum intersection and one vote per round). Some honest replica voted for `B`. By
//! rule 1, `B.justify` is a QC of round `r'' − 1 ≥ r + 1`, on a block extending `b` by
//! induction. By rule 2, the proposal carried a TC for `r'' − 1` and `B.justify.view` is
//! at least every QC round the TC reports — among them one from a replica of `S` (2f+1
//! signers meet f+1 replicas in at least one). That replica timed out of
//! `r'' − 1 ≥ r + 1` after its vote in `r + 1` (timing out of a round raises `last_voted`
//! to it, after which no vote in `r + 1` is possible), so it reported a QC of round
//! `≥ r`. So `B.justify` is a QC of a round in `[r, r'' − 1]`: on `b`, or on a block
//! extending `b` by induction. Every certified block above round `r + 1` extends `b`, and
//! so does every block committed later (it is certified). Persisting `last_voted` and the
//! highest QC before any vote or timeout leaves keeps both facts true across crashes.
//! This is the safety argument of Jolteon and DiemBFT v4, restated on our views.
//!
//! The argument uses only these facts about an honest replica: it signs at most one vote
//! per round, only as the vote rule allows and only in a round above `last_voted`; it
//! has processed the QCs it votes on; and each timeout reports its true highest QC and
//! raises `last_voted` first. The liveness rules keep all of them:
//!
//! - **A vote carried by a timeout is not a new vote.** For an honest sender it is the
//!   very vote it signed, persisted (`last_voted` and `last_vote`, in one persist) and
//!   sent before; `verify` accepts it only as the timeout sender's own signed vote. The
//!   set of honest signed votes is unchanged, so a QC made of carried votes could have
//!   been made by the vote's own leader. (The simulator's double-vote checker sees
//!   carried votes too: a timeout's [`Message::signed_vote`] is its carried vote.)
//! - **A TC changes no vote.** Neither `last_voted`, the highest QC nor the vote rule
//!   depend on how a round was entered. Entering a higher round by a TC (formed, carried,
//!   forwarded or restored) only moves the one round a replica may vote in upwards; rule
//!   2 still needs the TC in the proposal itself, checked against its reports. Forwarding
//!   a TC signs nothing; a TC needs 2f+1 timeout signatures, so f Byzantine replicas
//!   cannot forge one. The timeout signature still binds the sender's actual highest QC
//!   view, which is what the reports in a TC rest on.
//! - **Restored certificates** only choose the round a restarted replica resumes in, at
//!   least `last_voted`, so it never votes again in a round it voted or timed out in.
//!
//! ## Why it is live
//!
//! After GST: the highest round `V` an honest replica is in was entered by a certificate
//! for `V − 1` it holds (persisted across a restart) or by the f+1 rule after an honest
//! replica that did. Its timeouts, re-sent on every view timer, carry that certificate,
//! so every honest replica reaches `V`; their 2f+1 timeouts form `TC(V)` everywhere and
//! `leader(V + 1)` gets it (its own, or forwarded with a covering QC). With round-robin
//! leaders the f Byzantine replicas leave a run of at least two consecutive honest
//! leaders; their two proposals in consecutive rounds are certified once the backed-off
//! timeout exceeds the round trip, and the QC on the second (formed by the next leader
//! or, if it is silent, from the votes carried by timeouts at the first honest leader
//! after it) commits the first.
//!
//! ## Pacing
//!
//! As in [`crate::hotstuff`]: a leader that holds a QC proposes at once when it has
//! batches, or when a vote of the quorum says the voted block or an uncommitted ancestor
//! carries transactions (the unsigned `busy` hint of [`Vote`]): such a block commits only
//! after one more block is certified, so it must follow quickly. Otherwise (an idle
//! cluster) it waits [`IDLE_PROPOSE_DELAY`] (at most a quarter of the view timeout) or
//! until a batch arrives before proposing an empty block. Pacing decides only *when* a
//! proposal is made, never what is voted or committed, so it cannot affect safety; a
//! Byzantine voter lying in the hint costs idle CPU or a little latency. Proposals on a
//! TC are never deferred.
//!
//! ## What follows the paper, what was decided here
//!
//! Following Jolteon / DiemBFT v4: the vote rule (DiemBFT's `safe_to_vote`), the two-chain
//! commit with consecutive rounds, timeouts signed over `(round, high_qc_round)` and
//! shipping the QC itself so the next leader can extend it, a TC listing each signer's
//! `high_qc_round`, votes sent to the next leader (linear happy path).
//!
//! Decided here:
//! - Every block's parent is its justify block (no dummy blocks); "consecutive rounds"
//!   is checked on views, as in DiemBFT.
//! - The TC lists the reported QC rounds in increasing signer order, aligned with its
//!   signer bitmap, so no signer can be listed twice and the list costs 8 bytes a signer.
//! - Timeouts carry the sender's highest TC (as DiemBFT's sync info does) and its last
//!   signed vote (not in the papers: it lets any leader form the QC a silent leader
//!   dropped), but not its highest commit QC; replicas also resynchronise through the f+1
//!   rule, QCs inside proposals and block fetch, as [`crate::hotstuff`] does. A TC does
//!   not include a QC; a forwarded TC travels with one that covers its reports
//!   ([`ForwardedTc`]), and a timeout's own QC covers its TC. A replica times out only
//!   of its current round with its own highest QC, so the safety conditions of DiemBFT's
//!   `safe_to_timeout` (QC not below its highest, round not below its last vote) hold by
//!   construction; its liveness condition (time out only of a round entered by a QC or
//!   TC) is relaxed by the f+1 join rule, as in [`crate::hotstuff`].
//! - After a restart the replica enters `max(last_voted, high_qc.view + 1,
//!   high_tc.view + 1)`, so that its next timeout's QC is below the timeout's round (a
//!   timeout whose QC is not below its round is refused by [`TwoChain::verify`]).
//!
//! ## Leader and voter halves
//!
//! As in [`crate::hotstuff`]: the [`Leader`] half sees votes, timeouts and forwarded TCs,
//! builds QCs and TCs and proposes; the [`Voter`] half sees proposals, timeouts,
//! forwarded TCs and block fetches, keeps the block tree, the safety rules and the view,
//! signs votes and timeouts, and aggregates the TCs it enters rounds by.

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
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
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

/// A timeout certificate: 2f+1 signed timeouts for `view`, one aggregate signature over
/// each signer's statement `(view, its high_qc view)`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct TimeoutCert {
    pub view: View,
    /// Each signer's reported highest QC view, in increasing signer order (the order of
    /// `sig.signers.iter()`).
    pub high_qc_views: Vec<View>,
    pub sig: AggregateSignature,
}

impl TimeoutCert {
    /// The highest QC view any signer reported: a block extending a TC must be justified
    /// by a QC at least this high.
    pub fn high_qc_view(&self) -> View {
        self.high_qc_views.iter().copied().max().unwrap_or(0)
    }

    /// `(signer, reported high_qc view)` pairs.
    pub fn members(&self) -> impl Iterator<Item = (NodeId, View)> + '_ {
        self.sig
            .signers
            .iter()
            .zip(self.high_qc_views.iter().copied())
    }
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
    /// transactions, so the next leader should not wait before proposing (see "Pacing"
    /// in the module docs). A lie costs only idle CPU or a little latency.
    pub busy: bool,
}

/// A signed timeout for `view`, carrying the sender's highest QC, its highest TC and its
/// latest vote. The signature binds `(view, high_qc.view)`; the QC travels so the next
/// leader can extend it; the TC and the vote are checked on their own.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Timeout {
    pub view: View,
    pub high_qc: QuorumCert,
    /// The highest TC the sender knows (view below `view`, every reported QC view at most
    /// `high_qc.view`): normally the one that took it into `view`.
    pub high_tc: Option<TimeoutCert>,
    /// The sender's vote in the highest view it voted in (view at most `view`), exactly
    /// as it was persisted and sent: lets any leader form the QC that the vote's own
    /// leader (silent, or cut off) never formed.
    pub last_vote: Option<Vote>,
    pub sender: NodeId,
    pub signature: Signature,
}

/// A TC forwarded to the leader of the view after it, with a QC at least as high as every
/// QC view the TC reports (so the leader can extend it).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ForwardedTc {
    pub tc: TimeoutCert,
    pub high_qc: QuorumCert,
}

/// Two-chain HotStuff's messages.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum TcMsg {
    Propose(Box<Proposal>),
    Vote(Vote),
    Timeout(Box<Timeout>),
    /// A TC, forwarded to the leader of the view after it by a replica that entered that
    /// view by it.
    Tc(Box<ForwardedTc>),
    /// Asks for the block with this digest and its ancestors.
    Fetch(Digest),
    /// Blocks answering a fetch, oldest first.
    Blocks(Vec<Block>),
}

impl Message for TcMsg {
    fn dest(&self) -> Dest {
        match self {
            TcMsg::Propose(_) | TcMsg::Fetch(_) | TcMsg::Blocks(_) => Dest::Voter,
            TcMsg::Vote(_) => Dest::Leader,
            TcMsg::Timeout(_) | TcMsg::Tc(_) => Dest::Both,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            TcMsg::Propose(_) => "propose",
            TcMsg::Vote(_) => "vote",
            TcMsg::Timeout(_) => "timeout",
            TcMsg::Tc(_) => "tc",
            TcMsg::Fetch(_) => "fetch",
            TcMsg::Blocks(_) => "blocks",
        }
    }
    fn signed_vote(&self) -> Option<SignedVote> {
        match self {
            TcMsg::Vote(v) => Some(SignedVote {
                signer: v.voter,
                view: v.view,
                block: v.block,
            }),
            // The vote a timeout carries is its sender's own (`verify` checks it), the same
            // one it sent before: reporting it lets a checker see that it is.
            TcMsg::Timeout(t) => t.last_vote.map(|v| SignedVote {
                signer: v.voter,
                view: v.view,
                block: v.block,
            }),
            _ => None,
        }
    }
}

/// What the voter persists before it votes or times out.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Safety {
    /// Highest view this replica voted in or timed out of.
    pub last_voted: View,
    /// The highest QC this replica has seen (the lock): what its timeouts report.
    pub high_qc: QuorumCert,
    /// The last committed block (digest, height, view): where a restart resumes.
    pub committed: (Digest, Height, View),
    /// The highest TC seen whose reported QC views are all at most `high_qc.view` (not a
    /// safety rule: it lets a restarted replica prove the view it resumes in, and lets
    /// the replica's timeouts bring others into its view).
    pub high_tc: Option<TimeoutCert>,
    /// This replica's vote in view `last_vote.view`, the highest view it voted in: what
    /// its timeouts carry. Set, with `last_voted`, before the vote leaves.
    pub last_vote: Option<Vote>,
}

/// The statement a vote signs.
pub fn vote_statement(view: View, height: Height, block: &Digest) -> Digest {
    Statement::new("twochain/vote")
        .u64(view)
        .u64(height)
        .digest(block)
        .finish()
}

/// The statement a timeout signs: its view and the view of the sender's highest QC.
pub fn timeout_statement(view: View, high_qc_view: View) -> Digest {
    Statement::new("twochain/timeout")
        .u64(view)
        .u64(high_qc_view)
        .finish()
}

/// The statement a proposal signs.
pub fn proposal_statement(block: &Digest) -> Digest {
    Statement::new("twochain/proposal").digest(block).finish()
}

/// Verifies a QC against the committee (the genesis QC is accepted by rule).
pub fn verify_qc(qc: &QuorumCert, committee: &Committee) -> Result<(), VerifyError> {
    crate::certs::verify_qc(qc, committee, vote_statement)
}

/// Verifies a TC: one reported QC view per signer, each below the TC's view, 2f+1
/// distinct members, and the aggregate signature over their `(view, high_qc_view)`
/// statements.
pub fn verify_tc(tc: &TimeoutCert, committee: &Committee) -> Result<(), VerifyError> {
    if tc.high_qc_views.len() != tc.sig.signers.len() {
        return Err(VerifyError::Malformed(
            "TC lists a different number of QC views than signers".into(),
        ));
    }
    if tc.high_qc_views.iter().any(|h| *h >= tc.view) {
        return Err(VerifyError::Malformed(
            "TC reports a QC view not below its view".into(),
        ));
    }
    let msgs: Vec<(NodeId, Digest)> = tc
        .members()
        .map(|(id, h)| (id, timeout_statement(tc.view, h)))
        .collect();
    committee
        .verify_aggregate_multi(&msgs, &tc.sig, quorum(committee.size()))
        .map_err(|e| VerifyError::BadCertificate(format!("TC for view {}: {e}", tc.view)))
}

fn verify_block(block: &Block, committee: &Committee) -> Result<(), VerifyError> {
    crate::certs::verify_block(block, committee, vote_statement)
}

/// Two-chain HotStuff (Jolteon / DiemBFT v4 style).
pub struct TwoChain;

impl Protocol for TwoChain {
    type Msg = TcMsg;
    type Safety = Safety;
    type Leader = Leader;
    type Voter = Voter;
    const NAME: &'static str = "twochain";

    fn verify(
        msg: TcMsg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<TcMsg>, VerifyError> {
        match &msg {
            TcMsg::Propose(p) => {
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
            TcMsg::Vote(v) => {
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
            TcMsg::Timeout(t) => {
                if t.high_qc.view >= t.view {
                    return Err(VerifyError::Malformed(
                        "timeout's QC not below its view".into(),
                    ));
                }
                if let Some(tc) = &t.high_tc {
                    if tc.view >= t.view || tc.high_qc_view() > t.high_qc.view {
                        return Err(VerifyError::Malformed(
                            "timeout's TC not below its view, or above its QC".into(),
                        ));
                    }
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
                    .verify(
                        t.sender,
                        &timeout_statement(t.view, t.high_qc.view),
                        &t.signature,
                    )
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
            TcMsg::Tc(f) => {
                if f.tc.high_qc_view() > f.high_qc.view {
                    return Err(VerifyError::Malformed(
                        "forwarded TC's QC below its reported QCs".into(),
                    ));
                }
                verify_tc(&f.tc, committee)?;
                verify_qc(&f.high_qc, committee)?;
            }
            TcMsg::Fetch(_) => {}
            TcMsg::Blocks(blocks) => {
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

type Cx = Context<TcMsg, Safety>;

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
    /// A view this leader may propose in (it holds the QC) but waits in, because it has
    /// no batches and the chain nothing left to commit.
    deferred: Option<View>,
    /// Per view: each sender's timeout signature and reported QC view.
    timeouts: Collector<View, (Signature, View)>,
    pending: VecDeque<BatchRef>,
    max_pending: usize,
    cfg: ReplicaConfig,
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
            deferred: None,
            timeouts: Collector::new(q, MAX_COLLECTING_VIEWS),
            pending: VecDeque::new(),
            max_pending: cfg.max_pending_batches,
            cfg: cfg.clone(),
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

    fn propose(&mut self, view: View, tc: Option<TimeoutCert>, cx: &mut Cx) {
        if view <= self.last_proposed || self.election.leader(view) != self.id {
            return;
        }
        let justify = self.high_qc;
        if let Some(tc) = &tc {
            // Every timeout in a TC formed here raised `high_qc` first, and a carried or
            // forwarded TC comes with a QC covering it, so this cannot happen; a proposal
            // below the TC's QC round would get no honest vote anyway.
            if justify.view < tc.high_qc_view() {
                return;
            }
        }
        if self.deferred.take().is_some() {
            cx.cancel_timer(IDLE_TIMER);
        }
        let (payload, take) = crate::contract::payload_for_block(&mut self.pending, &self.cfg);
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
        cx.broadcast(TcMsg::Propose(Box::new(Proposal {
            block,
            tc,
            signature,
        })));
    }

    /// Counts a vote (sent to this leader, or carried by a timeout); on a quorum, forms
    /// the QC and, if this replica leads the next view, proposes in it.
    fn on_vote(&mut self, v: Vote, cx: &mut Cx) {
        let key = (v.view, v.height, v.block);
        if let Some(q) = self.votes.add(key, v.voter, (v.signature, v.busy)) {
            let sigs: Vec<_> = q.iter().map(|(n, (s, _))| (*n, *s)).collect();
            let busy = q.iter().any(|(_, (_, b))| *b);
            let sig = self.committee.aggregate_unchecked(&sigs);
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
}

/// Aggregates a quorum of timeouts for `view` (signature and reported QC view each) into
/// a TC.
fn timeout_cert(
    committee: &Committee,
    view: View,
    quorum: &[(NodeId, (Signature, View))],
) -> TimeoutCert {
    let msgs: Vec<(NodeId, Digest, Signature)> = quorum
        .iter()
        .map(|(n, (s, h))| (*n, timeout_statement(view, *h), *s))
        .collect();
    let sig = committee.aggregate_multi_unchecked(&msgs);
    let reported: HashMap<NodeId, View> = quorum.iter().map(|(n, (_, h))| (*n, *h)).collect();
    let high_qc_views = sig.signers.iter().map(|n| reported[&n]).collect();
    TimeoutCert {
        view,
        high_qc_views,
        sig,
    }
}

impl Half<TcMsg, Safety> for Leader {
    fn on_start(&mut self, cx: &mut Cx) {
        self.propose(1, None, cx);
    }

    fn on_message(&mut self, _from: NodeId, msg: Verified<TcMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            TcMsg::Vote(v) => {
                if self.election.leader(v.view + 1) != self.id || v.view < self.last_proposed {
                    return;
                }
                self.on_vote(v, cx);
            }
            TcMsg::Timeout(t) => {
                // Before anything else: the TC's highest reported QC must be in hand.
                self.raise_high_qc(&t.high_qc);
                // The sender's latest vote: any leader may complete a QC with it (the
                // vote's own leader may be silent). Only a QC above ours is of use.
                if let Some(v) = t.last_vote {
                    if v.view > self.high_qc.view {
                        self.on_vote(v, cx);
                    }
                }
                // `verify` made the timeout's QC at least every QC view its TC reports.
                if let Some(tc) = t.high_tc {
                    self.propose(tc.view + 1, Some(tc), cx);
                }
                if self.election.leader(t.view + 1) != self.id || t.view < self.last_proposed {
                    return;
                }
                if let Some(q) = self
                    .timeouts
                    .add(t.view, t.sender, (t.signature, t.high_qc.view))
                {
                    let tc = timeout_cert(&self.committee, t.view, &q);
                    self.propose(t.view + 1, Some(tc), cx);
                }
            }
            TcMsg::Tc(f) => {
                let ForwardedTc { tc, high_qc } = *f;
                self.raise_high_qc(&high_qc);
                self.propose(tc.view + 1, Some(tc), cx);
            }
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
    safety: Safety,
    tree: BlockTree,
    /// Proposals waiting for an ancestor, by view.
    buffered: BTreeMap<View, (NodeId, Proposal)>,
    requested: HashSet<Digest>,
    /// Timeouts for views at least ours (signature and reported QC view), aggregated into
    /// a TC on a quorum.
    timeouts: Collector<View, (Signature, View)>,
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
                    high_qc: QuorumCert::genesis(),
                    committed: t.committed(),
                    high_tc: None,
                    last_vote: None,
                };
                (t, s)
            }
        };
        // Resume in the last view voted or timed out in, or the view after the highest
        // certificate if that is higher: a view this replica can prove to others (its
        // timeouts carry the certificate), and above its highest QC, as a timeout's QC
        // must be.
        let view = safety
            .last_voted
            .max(safety.high_qc.view + 1)
            .max(safety.high_tc.as_ref().map_or(0, |tc| tc.view + 1))
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

    /// Processes a QC: highest QC (the lock), view, and the two-chain commit rule.
    fn on_qc(&mut self, qc: &QuorumCert, cx: &mut Cx) {
        let mut dirty = false;
        if qc.view > self.safety.high_qc.view {
            self.safety.high_qc = *qc;
            dirty = true;
        }
        if qc.view >= self.view {
            self.enter_view(qc.view + 1, false, cx);
        }
        if let Some(b1) = self.tree.get(&qc.block).cloned() {
            // `verify_block` made `b1.parent == b1.justify.block`.
            let consecutive = b1.parent == b1.justify.block && b1.view == b1.justify.view + 1;
            let (_, committed_h, _) = self.tree.committed();
            if consecutive && b1.justify.height > committed_h {
                match self.tree.commit_to(&b1.justify.block) {
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
            cx.persist(self.safety.clone());
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
                cx.send(from, TcMsg::Fetch(p.block.parent));
                if let Some(s) = also {
                    cx.send(s, TcMsg::Fetch(p.block.parent));
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
        // The justify first, so that a TC it covers is kept as the highest TC.
        self.on_qc(&block.justify, cx);
        if let Some(tc) = &p.tc {
            // It came from the leader of `tc.view + 1`: nobody to forward it to.
            self.on_tc(tc, false, cx);
        }
        self.try_vote(digest, &block, p.tc.as_ref(), cx);
    }

    /// The two-chain vote rule (DiemBFT v4's `safe_to_vote`).
    fn try_vote(&mut self, digest: Digest, block: &Block, tc: Option<&TimeoutCert>, cx: &mut Cx) {
        let r = block.view;
        if r != self.view || r <= self.safety.last_voted {
            return;
        }
        let qc_view = block.justify.view;
        let safe = qc_view + 1 == r
            || tc.is_some_and(|tc| tc.view + 1 == r && qc_view >= tc.high_qc_view());
        if !safe {
            cx.event(Event::Ignored {
                kind: "propose",
                reason: "justify below the round before it and below its TC's QCs",
            });
            return;
        }
        let signature = self.key.sign(&vote_statement(r, block.height, &digest));
        let vote = Vote {
            view: r,
            height: block.height,
            block: digest,
            voter: self.id,
            signature,
            busy: self.tree.uncommitted_payload(&digest),
        };
        self.safety.last_voted = r;
        self.safety.last_vote = Some(vote);
        cx.persist(self.safety.clone());
        cx.event(Event::Voted {
            view: r,
            block: digest,
        });
        cx.send(self.election.leader(r + 1), TcMsg::Vote(vote));
    }

    fn request(&mut self, digest: Digest, from: NodeId, cx: &mut Cx) {
        if self.requested.insert(digest) {
            cx.send(from, TcMsg::Fetch(digest));
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
        // `on_qc` keeps the view above the highest QC; a timeout not above its QC would be
        // refused by every receiver.
        if self.safety.high_qc.view >= view {
            return;
        }
        if view > self.safety.last_voted {
            self.safety.last_voted = view;
            cx.persist(self.safety.clone());
        }
        let s = &self.safety;
        let high_qc = s.high_qc;
        let signature = self.key.sign(&timeout_statement(view, high_qc.view));
        cx.event(Event::TimeoutSent { view });
        cx.broadcast(TcMsg::Timeout(Box::new(Timeout {
            view,
            high_qc,
            // `on_tc` keeps the TC's reported QC views at most `high_qc.view`; `view` is
            // at least ours, above the TC and at least our last vote's view.
            high_tc: s
                .high_tc
                .clone()
                .filter(|tc| tc.view < view && tc.high_qc_view() <= high_qc.view),
            last_vote: s.last_vote.filter(|v| v.view <= view),
            sender: self.id,
            signature,
        })));
    }

    /// Processes a TC: the highest TC, and the view after it. A replica that enters a
    /// view by a TC that its leader may not have (one it formed itself, or found in a
    /// timeout) forwards it, with a QC covering its reports, to that leader.
    fn on_tc(&mut self, tc: &TimeoutCert, forward: bool, cx: &mut Cx) {
        // Only a TC whose reported QCs we hold is kept and passed on: the leader it
        // reaches must be able to extend it.
        let covered = tc.high_qc_view() <= self.safety.high_qc.view;
        if covered
            && self
                .safety
                .high_tc
                .as_ref()
                .is_none_or(|h| tc.view > h.view)
        {
            self.safety.high_tc = Some(tc.clone());
        }
        if tc.view >= self.view {
            self.enter_view(tc.view + 1, true, cx);
            let leader = self.election.leader(tc.view + 1);
            if forward && covered && leader != self.id {
                cx.send(
                    leader,
                    TcMsg::Tc(Box::new(ForwardedTc {
                        tc: tc.clone(),
                        high_qc: self.safety.high_qc,
                    })),
                );
            }
        }
    }

    fn on_timeout_msg(&mut self, t: Timeout, cx: &mut Cx) {
        self.on_qc(&t.high_qc, cx);
        if let Some(tc) = &t.high_tc {
            self.on_tc(tc, true, cx);
        }
        if t.view < self.view {
            return;
        }
        let before = self.timeouts.count(&t.view);
        // The signatures were checked by `verify`. The TC formed here is what this
        // replica's own timeouts carry and what it forwards to the next leader; every
        // timeout's QC went through `on_qc` first, so its reports are covered.
        if let Some(q) = self
            .timeouts
            .add(t.view, t.sender, (t.signature, t.high_qc.view))
        {
            let tc = timeout_cert(&self.committee, t.view, &q);
            cx.event(Event::TimeoutCertFormed { view: t.view });
            self.on_tc(&tc, true, cx);
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

impl Half<TcMsg, Safety> for Voter {
    fn on_start(&mut self, cx: &mut Cx) {
        cx.set_timer(VIEW_TIMER, self.pacemaker.timeout());
    }

    fn on_message(&mut self, from: NodeId, msg: Verified<TcMsg>, cx: &mut Cx) {
        match msg.into_inner() {
            TcMsg::Propose(p) => self.on_proposal(from, *p, cx),
            TcMsg::Timeout(t) => self.on_timeout_msg(*t, cx),
            // Forwarded to this replica as the next leader; the leader half proposes on
            // it, and the voter enters the view (nobody to forward it to).
            TcMsg::Tc(f) => {
                self.on_qc(&f.high_qc, cx);
                self.on_tc(&f.tc, false, cx);
            }
            TcMsg::Fetch(d) => {
                let chain = self.tree.chain_ending_at(&d, MAX_FETCH_BLOCKS);
                if !chain.is_empty() {
                    let blocks = chain.iter().map(|b| (**b).clone()).collect();
                    cx.send(from, TcMsg::Blocks(blocks));
                }
            }
            TcMsg::Blocks(blocks) => self.on_blocks(from, blocks, cx),
            TcMsg::Vote(_) => {}
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

    /// A perfect network: FIFO delivery, every message verified, timers fire only when a
    /// test fires them.
    struct Net {
        nodes: Vec<Node>,
        keys: Vec<Arc<Keypair>>,
        committee: Arc<Committee>,
        queue: VecDeque<(NodeId, NodeId, TcMsg)>,
        votes: std::collections::HashMap<(NodeId, View), Digest>,
        /// Every delivered proposal that carried a TC.
        tc_proposals: Vec<Proposal>,
        /// Fetch requests delivered, by requester.
        fetches: Vec<usize>,
    }

    impl Net {
        fn new(n: usize, scheme: Scheme) -> Net {
            let keys: Vec<_> = (0..n)
                .map(|i| Arc::new(Keypair::generate(scheme, &[7; 32], NodeId(i as u16))))
                .collect();
            let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
            let committee = Arc::new(Committee::new(scheme, &pks).unwrap());
            let nodes = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let cfg = ReplicaConfig::new(NodeId(i as u16), n);
                    let (leader, voter) =
                        TwoChain::create(&cfg, k.clone(), committee.clone(), None);
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
                keys,
                committee,
                queue: VecDeque::new(),
                votes: Default::default(),
                tc_proposals: vec![],
                fetches: vec![0; n],
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
                    Action::Persist(s) => {
                        let node = &mut self.nodes[me.index()];
                        if let Some(old) = &node.persisted {
                            assert!(s.last_voted >= old.last_voted, "last_voted went back");
                            assert!(s.high_qc.view >= old.high_qc.view, "lock went back");
                        }
                        node.persisted = Some(s);
                    }
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
                    Action::Event(Event::ConflictingCommit { .. }) => {
                        panic!("conflicting commit")
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
                        .as_ref()
                        .map_or(0, |s| s.last_voted)
                        >= v.view,
                    "vote left before its view was persisted"
                );
            }
            if let TcMsg::Timeout(t) = &msg {
                assert!(
                    self.nodes[t.sender.index()]
                        .persisted
                        .as_ref()
                        .map_or(0, |s| s.last_voted)
                        >= t.view,
                    "timeout left before its view was persisted"
                );
            }
            if let TcMsg::Fetch(_) = &msg {
                self.fetches[from.index()] += 1;
            }
            if let TcMsg::Propose(p) = &msg {
                if p.tc.is_some() && to == from {
                    self.tc_proposals.push((**p).clone());
                }
            }
            let dest = msg.dest();
            let verified =
                TwoChain::verify(msg, from, &self.committee).expect("honest messages verify");
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

        fn assert_agree(&self, nodes: &[usize]) {
            let longest = nodes
                .iter()
                .map(|i| &self.nodes[*i].commits)
                .max_by_key(|c| c.len())
                .unwrap();
            for i in nodes {
                let c = &self.nodes[*i].commits;
                assert_eq!(
                    c[..],
                    longest[..c.len()],
                    "node {i} committed another chain"
                );
            }
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

    fn sorted_unique(txs: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut t = txs.to_vec();
        t.sort();
        let len = t.len();
        t.dedup();
        assert_eq!(t.len(), len, "a transaction committed twice");
        t
    }

    #[test]
    fn four_replicas_commit_the_same_chain_with_every_transaction() {
        let mut net = Net::new(4, Scheme::Insecure);
        for i in 0..4 {
            offer(&mut net, i, i as u64, 0..10);
        }
        net.start();
        net.run(&[], 20_000);
        let c0 = net.nodes[0].commits.clone();
        assert!(c0.len() > 20, "progress: {} commits", c0.len());
        net.assert_agree(&[0, 1, 2, 3]);
        for node in &net.nodes {
            assert_eq!(sorted_unique(&node.txs).len(), 40, "every transaction once");
        }
    }

    #[test]
    fn two_chain_commits_one_round_earlier_than_three_chain() {
        // Node 0 silent: views 1, 2 and 3 (leaders 1, 2, 3) run, and view 3's votes go to
        // leader(4) = 0 and are lost. QC(2), seen inside block 3, is a QC on block 2
        // whose justify is QC(1) from the previous view: block 1 commits. Three-chain
        // HotStuff would need QC(3) for that.
        let mut net = Net::new(4, Scheme::Insecure);
        net.start();
        net.run(&[NodeId(0)], 10_000);
        assert_eq!(net.nodes[1].voter.view(), 3);
        assert_eq!(net.nodes[1].commits.len(), 1, "block 1 committed by QC(2)");
        net.assert_agree(&[1, 2, 3]);
    }

    #[test]
    fn real_bls_certificates_work_too() {
        let mut net = Net::new(4, Scheme::Bls);
        net.start();
        net.run(&[], 600);
        assert!(net.nodes[1].commits.len() >= 3);
        net.assert_agree(&[0, 1, 2, 3]);
    }

    #[test]
    fn real_bls_timeout_certificates_work_too() {
        let mut net = Net::new(4, Scheme::Bls);
        let silent = [NodeId(3)];
        net.start();
        net.run(&silent, 10_000);
        net.fire_view_timers(&silent);
        net.run(&silent, 10_000);
        net.fire_view_timers(&silent);
        net.run(&silent, 10_000);
        assert_eq!(net.tc_proposals.len(), 1);
        assert!(net.nodes[0].commits.len() >= 2);
        net.assert_agree(&[0, 1, 2]);
    }

    /// Node 3 silent: view 1 (leader 1) is certified by leader 2, view 2's votes go to
    /// leader(3) = 3 and are lost. Timers fire: 2f+1 timeouts for view 2 move everybody to
    /// view 3, whose leader is silent too; timers fire again, and leader(4) = 0 forms a TC
    /// for view 3 (reported QC views [1, 1, 1]) and proposes in view 4 on it, extending
    /// QC(1). Returns with that proposal at the front of the queue.
    fn drive_to_tc(net: &mut Net, silent: &[NodeId]) {
        net.start();
        net.run(silent, 10_000);
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.view(), 2);
            assert_eq!(net.nodes[i].voter.safety().last_voted, 2);
            assert_eq!(net.nodes[i].voter.safety().high_qc.view, 1);
        }
        assert!(net.nodes[0].commits.is_empty());
        net.fire_view_timers(silent);
        net.run(silent, 10_000);
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.view(), 3, "2f+1 timeouts for view 2");
            assert_eq!(net.nodes[i].voter.safety().last_voted, 2);
        }
        assert!(net.tc_proposals.is_empty(), "leader(3) is silent");
        net.fire_view_timers(silent);
        loop {
            match net.queue.front() {
                Some((_, _, TcMsg::Propose(p))) if p.tc.is_some() => break,
                Some(_) => assert!(net.step(silent)),
                None => panic!("no TC proposal"),
            }
        }
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.safety().last_voted, 3, "timed out of 3");
        }
    }

    #[test]
    fn a_silent_leader_is_replaced_through_a_timeout_certificate() {
        let mut net = Net::new(4, Scheme::Insecure);
        // Leaders of views 1 (node 1) and 4 (node 0) propose these.
        offer(&mut net, 0, 0, 0..10);
        offer(&mut net, 1, 1, 0..10);
        let silent = [NodeId(3)];
        drive_to_tc(&mut net, &silent);
        // Block 4 carries QC(2), on block 2 justified by QC(1) (consecutive): block 1
        // commits. Block 5 carries QC(4), on block 4 (view 4) justified by QC(2): not
        // consecutive views, so nothing more commits yet.
        while net.nodes[0].voter.view() < 5 {
            assert!(net.step(&silent));
        }
        assert_eq!(
            net.nodes[0].commits.len(),
            1,
            "QC(2) commits block 1, QC(4) nothing"
        );
        net.run(&silent, 10_000);

        assert_eq!(net.tc_proposals.len(), 1);
        let p = &net.tc_proposals[0];
        let tc = p.tc.as_ref().unwrap();
        assert_eq!((p.block.view, tc.view), (4, 3));
        assert_eq!(tc.high_qc_views, vec![1, 1, 1]);
        assert_eq!(tc.sig.signers.len(), 3);
        // The timeouts of view 2 carried their senders' votes of view 2, which leader(3)
        // never collected: leader 0 formed QC(2) from them and extends it (rule 2: 2 ≥ 1).
        assert_eq!(
            p.block.justify.view, 2,
            "extends QC(2), formed from timeouts"
        );
        // Views 4 and 5 are certified (leaders 1 and 2 collect), view 6's votes go to the
        // silent node 3. QC(5) on block 5 (justified by QC(4), consecutive) commits block
        // 4 and its ancestors blocks 2 and 1.
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.view(), 6);
            assert_eq!(net.nodes[i].commits.len(), 3, "node {i}");
            assert_eq!(net.nodes[i].commits[2], p.block.digest());
            assert_eq!(sorted_unique(&net.nodes[i].txs).len(), 20);
        }
        net.assert_agree(&[0, 1, 2]);
    }

    #[test]
    fn a_proposal_below_its_tc_high_qc_gets_no_vote() {
        let mut net = Net::new(4, Scheme::Insecure);
        let silent = [NodeId(3)];
        drive_to_tc(&mut net, &silent);
        let Some((_, _, TcMsg::Propose(good))) = net.queue.front().cloned() else {
            unreachable!()
        };
        // Leader 0 equivocates with a block extending genesis (QC view 0) on the same TC,
        // whose signers reported QC view 1: rule 2 refuses it.
        let block = Block {
            parent: Block::genesis_digest(),
            view: 4,
            height: 1,
            proposer: NodeId(0),
            justify: QuorumCert::genesis(),
            payload: Payload::empty(),
        };
        let bad = Proposal {
            signature: net.keys[0].sign(&proposal_statement(&block.digest())),
            block,
            tc: good.tc.clone(),
        };
        for i in 0..3 {
            net.queue
                .push_front((NodeId(0), NodeId(i), TcMsg::Propose(Box::new(bad.clone()))));
        }
        for _ in 0..3 {
            net.step(&silent);
        }
        for i in 0..3 {
            assert_eq!(net.nodes[i].voter.view(), 4, "entered by the TC");
            assert_eq!(net.nodes[i].voter.safety().last_voted, 3, "no vote");
        }
        assert!(net
            .queue
            .iter()
            .all(|(_, _, m)| !matches!(m, TcMsg::Vote(_))));
        // The honest proposal still gets its votes and the chain resumes.
        net.run(&silent, 10_000);
        assert_eq!(net.nodes[0].commits.len(), 3);
        net.assert_agree(&[0, 1, 2]);
    }

    #[test]
    fn no_vote_in_a_view_after_timing_out_of_it() {
        let mut net = Net::new(4, Scheme::Insecure);
        net.start();
        // Node 2 times out of view 1 before the proposal reaches it.
        let mut cx = Cx::new(Duration::ZERO);
        net.nodes[2].voter.on_timer(VIEW_TIMER, &mut cx);
        net.apply(NodeId(2), &mut cx);
        net.run(&[], 2_000);
        assert!(
            !net.votes.contains_key(&(NodeId(2), 1)),
            "voted after timeout"
        );
        assert!(net.votes.contains_key(&(NodeId(2), 2)), "votes again later");
        assert!(net.nodes[2].commits.len() > 5);
        net.assert_agree(&[0, 1, 2, 3]);
    }

    #[test]
    fn a_restarted_replica_resumes_from_its_persisted_state() {
        let mut net = Net::new(4, Scheme::Insecure);
        net.start();
        net.run(&[], 300);
        let before = net.nodes[1].commits.len();
        assert!(before > 3);
        let restored = net.nodes[1].persisted.clone().unwrap();
        let cfg = ReplicaConfig::new(NodeId(1), 4);
        let (leader, voter) = TwoChain::create(
            &cfg,
            net.keys[1].clone(),
            net.committee.clone(),
            Some(restored.clone()),
        );
        assert!(voter.view() > restored.high_qc.view);
        assert_eq!(voter.safety(), &restored);
        net.nodes[1].leader = leader;
        net.nodes[1].voter = voter;
        let mut cx = Cx::new(Duration::ZERO);
        net.nodes[1].voter.on_start(&mut cx);
        net.apply(NodeId(1), &mut cx);
        // The double-vote check of `step` covers the votes of the old and new instance.
        net.run(&[], 3_000);
        assert!(
            net.fetches[1] > 0,
            "the restarted replica fetched its missing ancestry"
        );
        assert_eq!(net.fetches.iter().sum::<usize>(), net.fetches[1]);
        assert!(net.nodes[1].commits.len() > before + 10);
        net.assert_agree(&[0, 1, 2, 3]);
    }

    /// A TC for `view` signed by `(signer, reported QC view)` pairs.
    fn make_tc(net: &Net, view: View, reports: &[(u16, View)]) -> TimeoutCert {
        let q: Vec<_> = reports
            .iter()
            .map(|(i, h)| {
                let sig = net.keys[*i as usize].sign(&timeout_statement(view, *h));
                (NodeId(*i), (sig, *h))
            })
            .collect();
        timeout_cert(&net.committee, view, &q)
    }

    #[test]
    fn verify_checks_what_a_timeout_carries() {
        let net = Net::new(4, Scheme::Bls);
        let k = &net.keys;
        let c = &net.committee;
        let d = Digest::of(b"x");
        let vote = |i: usize, view: View| Vote {
            view,
            height: 2,
            block: d,
            voter: NodeId(i as u16),
            signature: k[i].sign(&vote_statement(view, 2, &d)),
            busy: true,
        };
        let timeout = |view: View, high_tc, last_vote| Timeout {
            view,
            high_qc: QuorumCert::genesis(),
            high_tc,
            last_vote,
            sender: NodeId(1),
            signature: k[1].sign(&timeout_statement(view, 0)),
        };
        let ok = |t: Timeout| TwoChain::verify(TcMsg::Timeout(Box::new(t)), NodeId(1), c);
        let tc4 = make_tc(&net, 4, &[(0, 0), (1, 0), (2, 0)]);
        assert!(ok(timeout(5, Some(tc4.clone()), Some(vote(1, 5)))).is_ok());
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
        assert!(
            ok(timeout(4, Some(tc4.clone()), None)).is_err(),
            "TC not below"
        );
        let weak = make_tc(&net, 4, &[(0, 0), (1, 0)]);
        assert!(
            ok(timeout(5, Some(weak.clone()), None)).is_err(),
            "TC without a quorum"
        );
        // A TC reporting a QC view above the timeout's own QC (genesis): refused, the
        // receiver could not extend it.
        let high = make_tc(&net, 4, &[(0, 2), (1, 0), (2, 0)]);
        assert!(
            ok(timeout(5, Some(high.clone()), None)).is_err(),
            "TC above the QC"
        );
        // Forwarded TCs: a quorum, and a QC covering the reports.
        let fwd = |tc: TimeoutCert| {
            TwoChain::verify(
                TcMsg::Tc(Box::new(ForwardedTc {
                    tc,
                    high_qc: QuorumCert::genesis(),
                })),
                NodeId(3),
                c,
            )
        };
        assert!(fwd(tc4).is_ok());
        assert!(fwd(weak).is_err());
        assert!(fwd(high).is_err(), "QC below the TC's reports");
    }

    /// Pacing: with no batches and votes saying nothing is left to commit, the leader
    /// defers its empty proposal to its idle timer; a batch, or a busy vote, makes it
    /// propose at once.
    #[test]
    fn an_idle_leader_waits_and_a_batch_or_a_busy_chain_wakes_it() {
        let net = Net::new(4, Scheme::Insecure);
        let keys = &net.keys;
        let cfg = ReplicaConfig::new(NodeId(2), 4);
        let (mut leader, _) = TwoChain::create(&cfg, keys[2].clone(), net.committee.clone(), None);
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
                            msg: TcMsg::Propose(_)
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
            let v = Verified::assume_verified(TcMsg::Vote(vote(i, 1, false)));
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
            let v = Verified::assume_verified(TcMsg::Vote(vote(i, 5, i == 1)));
            leader.on_message(NodeId(i as u16), v, &mut cx);
        }
        assert_eq!(proposed(&cx), 1, "a busy chain is driven to its commit");
    }

    #[test]
    fn verify_rejects_forgeries() {
        let net = Net::new(4, Scheme::Bls);
        let k = &net.keys;
        let c = &net.committee;
        let d = Digest::of(b"x");
        let good = Vote {
            view: 3,
            height: 2,
            block: d,
            voter: NodeId(1),
            signature: k[1].sign(&vote_statement(3, 2, &d)),
            busy: true,
        };
        assert!(TwoChain::verify(TcMsg::Vote(good), NodeId(1), c).is_ok());
        let wrong_sender = TwoChain::verify(TcMsg::Vote(good), NodeId(2), c);
        assert!(matches!(wrong_sender, Err(VerifyError::WrongSender { .. })));
        let mut bad = good;
        bad.view = 4;
        assert!(TwoChain::verify(TcMsg::Vote(bad), NodeId(1), c).is_err());
        // A HotStuff vote on the same block does not pass as a two-chain vote.
        let mut cross = good;
        cross.signature = k[1].sign(&crate::hotstuff::vote_statement(3, 2, &d));
        assert!(TwoChain::verify(TcMsg::Vote(cross), NodeId(1), c).is_err());

        // QCs: a real one, and one with too few signers.
        let votes: Vec<_> = (0..3)
            .map(|i| (NodeId(i), k[i as usize].sign(&vote_statement(3, 2, &d))))
            .collect();
        let qc = QuorumCert {
            view: 3,
            height: 2,
            block: d,
            sig: c.aggregate_unchecked(&votes),
        };
        assert!(verify_qc(&qc, c).is_ok());
        let thin = QuorumCert {
            sig: c.aggregate_unchecked(&votes[..1]),
            ..qc
        };
        assert!(verify_qc(&thin, c).is_err());

        // Timeouts: the signature binds the reported QC view.
        let t = Timeout {
            view: 5,
            high_qc: qc,
            high_tc: None,
            last_vote: None,
            sender: NodeId(1),
            signature: k[1].sign(&timeout_statement(5, 3)),
        };
        assert!(TwoChain::verify(TcMsg::Timeout(Box::new(t.clone())), NodeId(1), c).is_ok());
        let lie = Timeout {
            signature: k[1].sign(&timeout_statement(5, 2)),
            ..t.clone()
        };
        assert!(TwoChain::verify(TcMsg::Timeout(Box::new(lie.clone())), NodeId(1), c).is_err());
        let thin_qc = Timeout {
            high_qc: thin,
            ..t.clone()
        };
        assert!(TwoChain::verify(TcMsg::Timeout(Box::new(thin_qc.clone())), NodeId(1), c).is_err());
        let stale = Timeout {
            view: 3,
            signature: k[1].sign(&timeout_statement(3, 3)),
            ..t.clone()
        };
        assert!(matches!(
            TwoChain::verify(TcMsg::Timeout(Box::new(stale.clone())), NodeId(1), c),
            Err(VerifyError::Malformed(_))
        ));
        let hs_timeout = Timeout {
            signature: k[1].sign(&crate::hotstuff::timeout_statement(5)),
            ..t.clone()
        };
        assert!(
            TwoChain::verify(TcMsg::Timeout(Box::new(hs_timeout.clone())), NodeId(1), c).is_err()
        );

        // TCs: signers 0, 1, 3 reporting QC views 3, 1, 2 for view 5.
        let reports = [(0u16, 3u64), (1, 1), (3, 2)];
        let msgs: Vec<_> = reports
            .iter()
            .map(|(i, h)| {
                let m = timeout_statement(5, *h);
                (NodeId(*i), m, k[*i as usize].sign(&m))
            })
            .collect();
        let tc = TimeoutCert {
            view: 5,
            high_qc_views: vec![3, 1, 2],
            sig: c.aggregate_multi_unchecked(&msgs),
        };
        assert_eq!(verify_tc(&tc, c), Ok(()));
        assert_eq!(tc.high_qc_view(), 3);
        // One member's reported view changed (raising it, as an attacker would).
        let mut raised = tc.clone();
        raised.high_qc_views[1] = 3;
        assert!(matches!(
            verify_tc(&raised, c),
            Err(VerifyError::BadCertificate(_))
        ));
        // Two members' views swapped.
        let mut swapped = tc.clone();
        swapped.high_qc_views.swap(0, 2);
        assert!(verify_tc(&swapped, c).is_err());
        // A list that does not match the signers.
        let mut short = tc.clone();
        short.high_qc_views.pop();
        assert!(matches!(
            verify_tc(&short, c),
            Err(VerifyError::Malformed(_))
        ));
        // A reported view not below the TC's view.
        let mut above = tc.clone();
        above.high_qc_views[0] = 5;
        assert!(verify_tc(&above, c).is_err());
        // Too few signers: two valid timeouts.
        let two = TimeoutCert {
            view: 5,
            high_qc_views: vec![3, 1],
            sig: c.aggregate_multi_unchecked(&msgs[..2]),
        };
        assert!(matches!(
            verify_tc(&two, c),
            Err(VerifyError::BadCertificate(_))
        ));
        // A signer added to the bitmap without its signature.
        let mut padded = tc.clone();
        padded.sig.signers.insert(NodeId(2));
        padded.high_qc_views = vec![3, 1, 0, 2];
        assert!(verify_tc(&padded, c).is_err());

        // In a proposal: the TC must be for the previous view, and valid.
        let block = Block {
            parent: d,
            view: 6,
            height: 3,
            proposer: NodeId(2),
            justify: qc,
            payload: Payload::empty(),
        };
        let sign = |b: &Block| k[2].sign(&proposal_statement(&b.digest()));
        let p = Proposal {
            signature: sign(&block),
            block: block.clone(),
            tc: Some(tc.clone()),
        };
        let ok = TwoChain::verify(TcMsg::Propose(Box::new(p.clone())), NodeId(2), c);
        assert!(ok.is_ok());
        let with_raised = Proposal {
            tc: Some(raised),
            ..p.clone()
        };
        assert!(TwoChain::verify(TcMsg::Propose(Box::new(with_raised)), NodeId(2), c).is_err());
        let late = Block { view: 7, ..block };
        let p_late = Proposal {
            signature: sign(&late),
            block: late,
            tc: Some(tc),
        };
        assert!(matches!(
            TwoChain::verify(TcMsg::Propose(Box::new(p_late)), NodeId(2), c),
            Err(VerifyError::Malformed(_))
        ));
        let forged = Proposal {
            signature: k[1].sign(&proposal_statement(&p.block.digest())),
            ..p.clone()
        };
        // A forged signature is caught when someone other than the proposer relays the
        // proposal; from the proposer itself the authenticated link vouches for it.
        assert_eq!(forged.block.proposer, NodeId(2));
        let relayed = NodeId(3);
        assert!(TwoChain::verify(TcMsg::Propose(Box::new(forged)), relayed, c).is_err());
        assert!(TwoChain::verify(TcMsg::Propose(Box::new(p)), relayed, c).is_ok());
    }

    #[test]
    fn messages_round_trip_through_the_frame_codec() {
        let k = Keypair::generate(Scheme::Bls, &[1; 32], NodeId(0));
        let block = Block {
            parent: Block::genesis_digest(),
            view: 2,
            height: 1,
            proposer: NodeId(1),
            justify: QuorumCert::genesis(),
            payload: Payload::Inline(vec![Batch::new(vec![Transaction {
                client: 1,
                nonce: 2,
                payload: vec![3],
            }])]),
        };
        let mut signers = olympus_types::SignerSet::new();
        signers.insert(NodeId(0));
        signers.insert(NodeId(2));
        let msg = TcMsg::Propose(Box::new(Proposal {
            block,
            tc: Some(TimeoutCert {
                view: 1,
                high_qc_views: vec![0, 0],
                sig: AggregateSignature {
                    signers,
                    signature: k.sign(&Digest::ZERO),
                },
            }),
            signature: k.sign(&Digest::ZERO),
        }));
        let bytes = olympus_types::frame::encode(&msg).unwrap();
        assert_eq!(olympus_types::frame::decode::<TcMsg>(&bytes).unwrap(), msg);
    }
}
