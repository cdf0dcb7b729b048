//! Opt Sync (Shrestha, Abraham, Ren, Nayak, CCS 2020): [`crate::sync_hotstuff`] plus a
//! responsive commit path. Everything of Sync HotStuff holds (rules 1–8 there); what
//! differs is stated here. The machinery is in [`crate::sync_common`].
//!
//! ## Rules added to Sync HotStuff
//!
//! - **Responsive commit.** A replica that sees ⌊3n/4⌋+1 votes from distinct replicas for
//!   `B_k` in its current view v — a *commit certificate* CC(`B_k`), which it aggregates
//!   itself or receives — and has not quit v (nor is recovering from a restart) first
//!   broadcasts the CC, then commits `B_k` and its ancestors at once. The 2Δ synchronous
//!   commit stays. (Designed here, for cost: only v's leader aggregates CCs as votes
//!   arrive; the others commit by the CC it broadcasts, and aggregate theirs only when it
//!   has not come Δ/4 after their quorum completed. A leader that withholds CCs only
//!   delays their responsive commits by Δ/4. The leader also justifies its next block by
//!   the CC when it completes within Δ/10 of the f+1 quorum: one certificate summed and
//!   checked per block instead of two.)
//! - **Locks respect CCs.** On entering v+1 a replica that knows a CC of view v locks on
//!   the highest certificate that extends the highest such CC (the CC itself counts);
//!   without one, on the highest certificate (as in Sync HotStuff). Its status to the new
//!   leader carries that CC, which it also persists (`Safety::cc_prev`).
//! - **New view.** The leader of v+1 takes the highest CC of view v among the statuses
//!   (`N`) and re-proposes the highest lock that extends `N` (or `N` itself), attaching
//!   `N`. A replica votes for the re-proposal of certificate `C` iff
//!   - without `N`: it knows no CC of view v, and `C` ranks at least as high as its lock;
//!   - with `N`: `N` ranks at least as high as the CCs of view v it knows, `C` extends
//!     `N`, and if its lock extends `N`, `C` ranks at least as high as the lock.
//!
//! ## Why optimistic commits survive the view change
//!
//! Unlike Sync HotStuff, view v may hold certificates that conflict with a responsively
//! committed block: f+1 votes need only one honest voter, who may have voted for an
//! equivocating `B'_k` before `B_k` reached it. So the rank rule alone is not enough; the
//! argument instead rests on three facts.
//! 1. *CCs of one view never conflict with each other, nor with a synchronous commit of
//!    that view.* Two sets of ⌊3n/4⌋+1 voters share more than f replicas, hence an honest
//!    one, whose votes in a view form a chain. A synchronously committed `B_m` was voted by
//!    every honest replica (Sync HotStuff's argument), and a CC has an honest voter, again
//!    on one chain.
//! 2. *A responsively committed block's CC reaches every honest replica before it locks.*
//!    Honest h commits by CC of view v at time t while not having quit v; it broadcast the
//!    CC first, so everybody has it before t + Δ. No honest replica quit v before t − Δ (h
//!    would have had the forwarded blame certificate), so all lock after t + Δ, on a
//!    certificate extending their highest CC of view v, which extends `B_k` by fact 1.
//!    (A CC received after quitting is never committed by: it may be late; it still
//!    constrains the lock, which is safe by fact 1.)
//! 3. *The new-view rule keeps every honest vote on such chains.* With a CC `N` attached,
//!    an honest voter requires `N` to rank at least as high as its own CCs of view v (so,
//!    by fact 1, `N` extends every timely CC, in particular `B_k`), and `C` to extend `N`.
//!    Synchronously committed blocks of view v stay protected: either `N` extends them, or
//!    they extend `N` and every honest lock — of rank above them — then extends `N`, and
//!    then `C` must out-rank that lock, hence extend them (all view-v certificates of rank
//!    ≥ theirs do). Without `N`, the voter knows no CC of view v and the plain Sync
//!    HotStuff rule applies; since every honest replica knows each timely CC, a
//!    re-proposal without `N` gets no honest vote after a responsive commit in view v.
//!
//! By induction over views, as in Sync HotStuff, every certificate of a later view — and
//! so every later commit — extends every committed block. Only CCs of the view just quit
//! matter: a CC of an older view received later is never committed by and never used.
//!
//! ## Paper and design
//!
//! Following the paper: the ⌊3n/4⌋+1 responsive commit, the unchanged synchronous path,
//! and a view change in which the responsive commit certificate is what the new leader
//! must extend. The paper's text was not at hand while writing this: the precise rule
//! above — broadcasting the CC before committing, locking on the highest certificate
//! that extends the highest CC of the quit view, and the new-view vote rule with `N` —
//! is our reconstruction, with its own argument above. The simulator exercises it with
//! Twins leaders (forks at n = 5, 7), and a scripted schedule in `sim/tests/opt_sync.rs`
//! has one honest replica commit optimistically just before a view change.

use crate::contract::{Protocol, ReplicaConfig, Verified, VerifyError};
use crate::sync_common::{self, Leader, Safety, SyncMsg, Voter};
use olympus_crypto::{Committee, Keypair};
use olympus_types::NodeId;
use std::sync::Arc;

/// The Opt Sync protocol.
pub struct OptSync;

impl Protocol for OptSync {
    type Msg = SyncMsg;
    type Safety = Safety;
    type Leader = Leader;
    type Voter = Voter;
    const NAME: &'static str = "opt-sync";
    const SYNCHRONOUS: bool = true;
    // Keep the leader's CC and its next proposal in one write (see the contract).
    const DEFER_LOCAL: bool = false;

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
        let leader = Leader::new(cfg, true, key.clone(), committee.clone(), restored.as_ref());
        let voter = Voter::new(cfg, true, key, committee, restored);
        (leader, voter)
    }
}
