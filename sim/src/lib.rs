//! The deterministic simulator of olympus: many seeded runs of a protocol under network
//! faults, crashes and Byzantine replicas, with checkers for its invariants.
//!
//! One run ([`run`]) drives `n` replicas of a [`Protocol`] — both halves of each, as
//! `Protocol::create` returns them — plus clients and per-replica mempools, through a
//! discrete-event simulation in virtual time, injects the faults of a [`SimConfig`], and
//! returns a [`RunReport`]: commits, transactions, message and fault counts, and every
//! violated invariant with the one-line command that reproduces it
//! ([`RunReport::repro`]). [`sweep`] runs a range of seeds; [`run_logged`] also tells a
//! callback everything that happens, for debugging one seed (`olympus sim --seed S
//! --trace`).
//!
//! ## Modules
//!
//! - [`rng`]: the only randomness, a SplitMix64-seeded xoshiro256**.
//! - [`queue`]: the event queue, ordered by (virtual time, insertion sequence).
//! - `network`: delays, partitions and twins worlds.
//! - `driver`: the world of a run — it feeds inputs to the halves and carries out their
//!   actions in order (sends, timers, persistence, commits), runs clients, mempools,
//!   crashes and restarts, and calls the checkers.
//! - `checker`: agreement, validity/at-most-once and double-vote checks.
//! - [`config`]: [`SimConfig`], and the standard fault mix [`SimConfig::standard`].
//! - [`report`]: [`RunReport`], [`Violation`], [`SweepSummary`].
//!
//! ## Determinism
//!
//! A run is a pure function of `(protocol, config, seed)`: two runs of one seed produce
//! equal reports, including [`RunReport::trace_hash`], a hash of every delivered
//! message, fired timer and commit in order. That holds because
//!
//! - time is virtual: nothing here reads a clock; a protocol's `Context::now` is the
//!   virtual time since its instance started;
//! - all randomness comes from [`rng::Rng`] streams derived from the seed (separate
//!   streams for the fault schedule, the network and the clients);
//! - the driver is single-threaded, events are totally ordered by (time, sequence), and
//!   no decision depends on the iteration order of a randomly seeded hash map;
//! - keys are derived from the seed ([`olympus_crypto::Scheme::Insecure`], fast and
//!   forgeable — it is the simulator's scheme only).
//!
//! Nothing under `sim/` uses threads, sockets, files, the wall clock or an unseeded
//! RNG. (The `olympus sim` command may run seeds on several threads; each run is still
//! single-threaded and independent.) A protocol that iterates a `std` `HashMap` to
//! decide what to do would break determinism; the determinism test catches that.
//!
//! ## The faults
//!
//! Within the fault window `[fault_start, fault_end)`: random delays with a long tail,
//! loss, duplication (reordering falls out of random delays), partitions that heal,
//! crashes with restarts (restoring only the last persisted safety state; timers,
//! mempool and in-flight messages are lost), and twins splits. Byzantine replicas are
//! [`ByzantineKind::Silent`] (no instance at all) or [`ByzantineKind::Twins`] (two
//! instances sharing one identity and key; clients' transactions for that replica are
//! split between them, so the twins build different blocks). Byzantine replicas and
//! crashed honest ones never exceed the fault budget at once (f = (n − 1) / 3 unless
//! configured); only a positive control configures more than f Byzantine replicas (the
//! standard configuration then makes them all Twins: a silent replica cannot break
//! safety).
//! At `fault_end` every partition heals, every crashed replica restarts, and the
//! network delivers every message within `delay_max` from then on.
//!
//! **Synchronous protocols** (`Protocol::SYNCHRONOUS`, n = 2f+1) run under the
//! synchronous model ([`SimConfig::synchronous`]; a configuration of the other model is
//! carried over by [`SimConfig::adapted`], which is how `olympus sim` runs them): f =
//! (n − 1) / 2; every message between honest replicas arrives strictly within Δ
//! (`replica.delta`), so there is no loss and no partition, and long-tail delays stay
//! below Δ; twins splits never cut two honest replicas apart (Byzantine leaders fork and
//! equivocate, the honest network stays synchronous) — except beyond f, in a positive
//! control, where the full Twins adversary applies; a restarted replica counts against
//! the fault budget for `recovery_grace` (4Δ) after its restart, the time it takes to
//! resynchronise.
//!
//! ## The checkers
//!
//! Violations are recorded as data, never panics. Byzantine instances are excluded from
//! every check.
//!
//! 1. **Agreement**: honest committed logs agree at every height (the first conflicting
//!    height is reported with both digests); each log grows by exactly one height per
//!    commit and links each block to the previous one. An honest replica reporting
//!    `Event::ConflictingCommit` (its commit rule fired against its committed chain) is
//!    a conflict too.
//! 2. **Validity and at-most-once**: every executed transaction was submitted by a
//!    client, with its payload; a transaction appears in one replica's raw committed log
//!    no more often than it was submitted (a duplicate only after a resubmission); each
//!    ledger executes a `(client, nonce)` once and counts the duplicates it skips.
//! 3. **No double vote**: no honest replica ever sends two different own signed votes
//!    (`Message::signed_vote`) for one view, across crashes and restarts.
//! 4. **Liveness**: let `H` be the highest height any honest replica has committed when
//!    the fault window ends. Every honest replica must commit a block above `H` within
//!    [`SimConfig::liveness_bound`] of `fault_end`: the system makes new progress and
//!    every replica — restarted ones included — catches up to it. The standard bound is
//!    10 s, ten times the standard maximum view timeout of 1 s (the pacemaker's
//!    backed-off timeout may have reached it during the faults, and a few views with
//!    Byzantine or out-of-sync leaders may pass before three consecutive honest views
//!    commit); with a fault-free network after the window, a correct protocol commits
//!    well within it (the reports' `recovery` field shows by how much). Liveness is
//!    checked only within the fault tolerance ([`SimConfig::checks_liveness`]): with
//!    more than f Byzantine replicas a run is judged on safety alone.
//!
//! [`Protocol`]: olympus_protocols::Protocol

mod checker;
pub mod config;
mod driver;
mod network;
pub mod queue;
pub mod report;
pub mod rng;

pub use config::{
    ByzantineChoice, ByzantineKind, ClientConfig, ConfigError, FaultConfig, MempoolConfig,
    SimConfig,
};
pub use driver::LOCAL_DELAY;
pub use report::{CommitStats, MessageCounts, RunReport, SweepSummary, Violation, ViolationKind};

use olympus_protocols::Protocol;
use std::ops::Range;
use std::time::Duration;

/// Runs protocol `P` once under `cfg` with `seed`, and reports what happened.
///
/// # Panics
///
/// If `cfg` is invalid ([`SimConfig::validate`]); check it first where it comes from a
/// user. A protocol's own panic propagates.
pub fn run<P: Protocol>(cfg: &SimConfig, seed: u64) -> RunReport {
    driver::Sim::<P>::new(cfg, seed, None).run()
}

/// Like [`run`], and also tells `log` about everything that happens, in order, with its
/// virtual time: starts, crashes and restarts, partitions and twins splits, every
/// delivered (or rejected) message with its contents (long ones cut), every fired
/// timer, every commit, and at the end the violations. For debugging one seed; the
/// report is the same as [`run`]'s.
pub fn run_logged<P: Protocol>(
    cfg: &SimConfig,
    seed: u64,
    log: &mut dyn FnMut(Duration, &str),
) -> RunReport {
    driver::Sim::<P>::new(cfg, seed, Some(log)).run()
}

/// Runs every seed of `seeds` in order, calling `on_seed` with each report (for a
/// progress bar), and returns the totals.
pub fn sweep<P: Protocol>(
    cfg: &SimConfig,
    seeds: Range<u64>,
    mut on_seed: impl FnMut(&RunReport),
) -> SweepSummary {
    let mut summary = SweepSummary::default();
    for seed in seeds {
        let r = run::<P>(cfg, seed);
        on_seed(&r);
        summary.add(&r);
    }
    summary
}
