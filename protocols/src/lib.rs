//! The sans-IO protocol contract and the consensus protocols of olympus.
//!
//! Every protocol is a pair of deterministic state machines — a **leader half** and a
//! **voter half** — that consume inputs (messages, timers, batches, start) and push [`contract::Action`]s into
//! a [`contract::Context`]. Nothing here touches a socket, a file, a thread, the wall
//! clock or an unseeded RNG: time arrives as `cx.now`, and effects leave as actions that
//! a driver (the simulator in `olympus-sim`, or the engine) carries out. The same code
//! therefore runs in the deterministic simulator, where we check that it is safe, and in
//! the engine, where we measure that it is fast.
//!
//! Shared building blocks that protocols compose rather than copy:
//! [`blocktree`] (blocks, ancestry, ordered commit), [`election`] (who leads a view) and
//! [`pacemaker`] (view timeouts with exponential backoff), [`certs`] (quorum, QC and
//! block checks of the partially synchronous family), [`votes`] (collecting
//! signatures into certificates).

pub mod apollo;
pub mod artemis;
pub mod blocktree;
pub mod certs;
pub mod contract;
pub mod election;
pub mod hotstuff;
pub mod opt_sync;
pub mod pacemaker;
pub mod sync_common;
pub mod sync_hotstuff;
pub mod twochain;
pub mod votes;

pub use contract::{
    Action, BatchRef, Claim, Commit, Context, Dest, Event, Half, Message, Protocol, ReplicaConfig,
    RequestBudget, SignedVote, TimerId, Verified, VerifyError,
};
