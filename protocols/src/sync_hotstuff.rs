//! Sync HotStuff (Abraham, Malkhi, Nayak, Ren, Yin, S&P 2020), the standard version with
//! its blame, quit-view and view change — complete, where the FC 2023 reference artifact
//! panics. The machinery is in [`crate::sync_common`]; this module states the rules and
//! the argument.
//!
//! n = 2f+1, certificates of f+1 votes from distinct replicas, Δ = [`ReplicaConfig::delta`]
//! bounds the delay of every message between honest replicas.
//!
//! ## Rules
//!
//! **Steady state of view v, leader L = v mod n.**
//! 1. *Propose.* L proposes `B_k` extending the block certified by `C_v(B_{k−1})`, a
//!    certificate of view v, which `B_k` carries as its justify; L proposes `B_{k+1}` as
//!    soon as it has `C_v(B_k)` (at once when batches wait, else after Δ/2).
//! 2. *Vote.* On the first proposal for height k of view v (from L or forwarded by
//!    anybody) — if no equivocation of view v is known and the block extends the block
//!    this replica last voted for in view v — persist the vote slot
//!    `(v, k)`, forward the proposal to all, broadcast the vote, and start a commit timer
//!    of 2Δ for `B_k`.
//! 3. *Commit.* When the timer of `B_k` expires, if the replica is still in view v, has
//!    not quit it and has seen no equivocation in it, commit `B_k` and its ancestors.
//!
//! **Blame and quit view.**
//! 4. Blame (a signed `blame(v)` to all) if the p-th vote of the view has not happened by
//!    `(2p + 4)Δ` after entering it, or no vote for `6Δ` since the last one (an honest
//!    leader's next proposal arrives within 3.5Δ of a vote), or on an equivocation: two leader-signed proposals
//!    for one `(v, height)` (the proof travels with the blame and every receiver blames
//!    too), or a certificate of view v that contradicts a proposal.
//! 5. f+1 blames form a blame certificate: forward it, quit view v (no more votes or
//!    commits in v; commit timers cancelled), persist `quit_view = v`.
//!
//! **View change.**
//! 6. *Status.* 2Δ after quitting, enter v+1: lock on the highest-ranked certified block
//!    known (rank = view, then height), persist, send the lock to L' = leader(v+1).
//! 7. *New view.* L' waits 2Δ after entering v+1, then re-proposes the highest-ranked
//!    certified block among the statuses (and its own knowledge), carrying its
//!    certificate.
//! 8. *First vote.* A replica votes for the re-proposed block in view v+1 (no commit
//!    timer for this vote) iff its certificate ranks at least as high as its lock; the
//!    f+1 votes give `C_{v+1}` on it, which the first
//!    steady block of v+1 carries. View 1 starts the same way with genesis.
//!
//! ## Why it is safe
//!
//! Messages between honest replicas take < Δ. Let honest h commit `B_k` of view v at
//! time t; it voted and forwarded `B_k` at t − 2Δ.
//! - *No honest replica votes for another block at height k of view v.* One that did at
//!   time s < t − Δ forwarded it; h would have seen the equivocation before t. One voting
//!   at s ≥ t − Δ had already received `B_k` from h (sent at t − 2Δ), so its first
//!   proposal at k was `B_k` or it saw the equivocation. Hence no certificate of view v
//!   conflicts with `B_k` at height k, and, since votes of one view form a chain and need
//!   a view-v certificate of the parent, none at any height ≥ k.
//! - *Every honest replica holds `C_v(B_k)` before it locks.* No honest replica quit v
//!   before t − Δ (h would have had the forwarded blame certificate before t and aborted),
//!   so all were in v at t − Δ, had `B_k`, saw no equivocation (else h would have) and
//!   voted for it by t − Δ; all votes arrive by t. They lock ≥ 2Δ after quitting, after
//!   t + Δ, on a certificate of rank ≥ (v, k) — which extends `B_k` by the first point.
//! - *Induction over later views.* A re-proposal in v' > v gets an honest vote only if it
//!   ranks at least as high as that replica's lock, so it is a view-v certificate of
//!   height ≥ k or one of a later view — both extend `B_k` (by induction); steady blocks
//!   extend their view's re-proposal. So every certified block of rank ≥ (v, k), and
//!   every later commit, extends `B_k`.
//! - Persisting the vote slot, `quit_view` and the lock before anything leaves keeps this
//!   across crashes; a restarted replica is passive for 2Δ while it resynchronises (see
//!   [`crate::sync_common`]).
//!
//! ## Paper and design
//!
//! Following the paper: steps 1–8, the (2p+4)Δ blame rule (to which we add the 6Δ
//! stall rule: the cumulative budget alone lets a leader that ran fast in a long view
//! stall for as long as it ran), forwarding for equivocation
//! detection, the 2Δ waits, rank-based locks. Decided here: votes are broadcast and every
//! replica aggregates certificates; a re-proposal carries the certified block (so nobody
//! has to fetch it); votes of one view must
//! form a chain (implied in the paper by "extends the highest certified block", stated
//! explicitly here); a contradicting certificate also counts as equivocation (blame
//! without proof); the idle leader's Δ/2 pause; the recovery protocol for restarts; no
//! commit timer on the new-view vote (the paper's new-view vote only re-certifies).
//! We deliberately add no "must extend the committed block" check to the vote rules:
//! under the assumptions the rank rule implies it, and without it the positive controls
//! show what the paper's rules alone do when the assumptions break.
//!
//! [`ReplicaConfig::delta`]: crate::ReplicaConfig::delta

use crate::contract::{Protocol, ReplicaConfig, Verified, VerifyError};
use crate::sync_common::{self, Leader, Safety, SyncMsg, Voter};
use olympus_crypto::{Committee, Keypair};
use olympus_types::NodeId;
use std::sync::Arc;

/// The Sync HotStuff protocol.
pub struct SyncHotStuff;

impl Protocol for SyncHotStuff {
    type Msg = SyncMsg;
    type Safety = Safety;
    type Leader = Leader;
    type Voter = Voter;
    const NAME: &'static str = "sync-hotstuff";
    const SYNCHRONOUS: bool = true;

    fn verify(
        msg: SyncMsg,
        from: NodeId,
        committee: &Committee,
    ) -> Result<Verified<SyncMsg>, VerifyError> {
        sync_common::verify(msg, from, committee)
    }

    fn claims(msg: &SyncMsg, committee: &Committee, out: &mut Vec<crate::Claim>) {
        sync_common::claims(msg, committee, out);
    }

    fn create(
        cfg: &ReplicaConfig,
        key: Arc<Keypair>,
        committee: Arc<Committee>,
        restored: Option<Safety>,
    ) -> (Leader, Voter) {
        let leader = Leader::new(
            cfg,
            false,
            key.clone(),
            committee.clone(),
            restored.as_ref(),
        );
        let voter = Voter::new(cfg, false, key, committee, restored);
        (leader, voter)
    }
}
