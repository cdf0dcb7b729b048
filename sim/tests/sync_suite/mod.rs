//! The simulator suite shared by the synchronous protocols' scenario tests
//! (`sync_hotstuff.rs`, `opt_sync.rs`): sweeps of the synchronous fault mix
//! ([`SimConfig::synchronous`]), determinism, and the two positive controls.

#![allow(dead_code)]

use olympus_protocols::Protocol;
use olympus_sim::{
    run, sweep, ByzantineChoice, ByzantineKind, RunReport, SimConfig, ViolationKind,
};
use std::time::Duration;

/// Runs `seeds` seeds and returns the reports that fail `bad`.
pub fn failures<P: Protocol>(
    cfg: &SimConfig,
    seeds: u64,
    bad: impl Fn(&RunReport) -> bool,
) -> Vec<RunReport> {
    let mut out = Vec::new();
    sweep::<P>(cfg, 0..seeds, |r| {
        if bad(r) {
            out.push(r.clone());
        }
    });
    out
}

fn show(fails: &[RunReport]) -> String {
    fails.iter().take(3).map(|r| format!("{r}\n")).collect()
}

/// Every seed safe and live, and every run committed something.
pub fn assert_all_ok<P: Protocol>(cfg: &SimConfig, seeds: u64) {
    let fails = failures::<P>(cfg, seeds, |r| !r.ok() || r.commits.min_height == 0);
    assert!(
        fails.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        fails.len(),
        show(&fails)
    );
}

/// The same seed twice gives the same report.
pub fn assert_deterministic<P: Protocol>(n: usize, byzantine: usize) {
    let c = SimConfig::synchronous(n, byzantine);
    for seed in [3, 61] {
        let a = run::<P>(&c, seed);
        assert_eq!(a, run::<P>(&c, seed));
    }
}

/// A protocol run under the standard (partially synchronous) configuration, as
/// `olympus sim` builds it, is carried over to the synchronous model.
pub fn assert_cli_config_is_adapted<P: Protocol>() {
    let std = SimConfig::standard(5, 2);
    let r = run::<P>(&std, 7);
    assert_eq!(r, run::<P>(&SimConfig::synchronous(5, 2), 7));
    assert!(r.ok(), "{r}");
    assert_eq!(
        r.repro(),
        format!(
            "olympus sim --protocol {} -n 5 --byzantine 2 --seed 7",
            P::NAME
        )
    );
}

/// The first seed whose run breaks agreement (a conflict or a double vote; other safety
/// violations, such as a duplicated transaction, do not count here).
fn first_unsafe<P: Protocol>(c: &SimConfig, seeds: u64) -> Option<RunReport> {
    (0..seeds).map(|s| run::<P>(c, s)).find(breaks_agreement)
}

fn breaks_agreement(r: &RunReport) -> bool {
    r.violations
        .iter()
        .any(|v| matches!(v.kind, ViolationKind::Conflict | ViolationKind::DoubleVote))
}

fn assert_conflict(r: &RunReport) {
    assert!(breaks_agreement(r), "{r}");
}

/// Positive control 1: f + 1 Byzantine replicas (all Twins). Beyond f the twins splits
/// may cut honest replicas apart too (the full Twins adversary); the checkers must find a
/// conflict within `seeds` seeds.
pub fn positive_control_f_plus_one<P: Protocol>(n: usize, seeds: u64) -> RunReport {
    let f = (n - 1) / 2;
    let mut c = SimConfig::synchronous(n, f + 1);
    assert_eq!(
        c.byzantine_choice,
        ByzantineChoice::All(ByzantineKind::Twins)
    );
    assert!(!c.checks_liveness());
    c.stop_at_first_violation = true;
    let r = first_unsafe::<P>(&c, seeds)
        .unwrap_or_else(|| panic!("f + 1 Twins must break safety within {seeds} seeds"));
    assert_conflict(&r);
    assert!(
        r.repro().starts_with(&format!(
            "olympus sim --protocol {} -n {n} --byzantine {}",
            P::NAME,
            f + 1
        )),
        "{}",
        r.repro()
    );
    r
}

/// The synchronous fault mix with the synchrony assumption broken: 20 % of the messages
/// in the fault window take up to 15Δ, and partitions (messages across the cut never
/// arrive) come back. No Byzantine replica at all.
pub fn beyond_delta(n: usize) -> SimConfig {
    let mut c = SimConfig::synchronous(n, 0);
    c.faults.long_tail_prob = 0.2;
    c.faults.long_tail_max = c.replica.delta * 15;
    c.faults.partitions = 3;
    c.faults.partition_min = Duration::from_millis(50);
    c.faults.partition_max = Duration::from_millis(200);
    c.stop_at_first_violation = true;
    c
}

/// Positive control 2: messages delayed beyond Δ must break safety within `seeds` seeds.
pub fn positive_control_beyond_delta<P: Protocol>(n: usize, seeds: u64) -> RunReport {
    let c = beyond_delta(n);
    let r = first_unsafe::<P>(&c, seeds)
        .unwrap_or_else(|| panic!("delays beyond Δ must break safety within {seeds} seeds"));
    assert_conflict(&r);
    r
}

/// The leader of view 1 (replica 1) is silent, so the first view change happens before
/// anything but genesis was certified: the next leader must re-propose genesis on its
/// view-1 certificate. (A regression: `olympus sim --protocol sync-hotstuff -n 5
/// --byzantine 2 --seed 110` once stalled at height 0.)
pub fn assert_silent_first_leader_is_replaced<P: Protocol>(seeds: u64) {
    let mut c = SimConfig::synchronous(5, 2);
    c.byzantine_nodes = Some(vec![olympus_types::NodeId(1), olympus_types::NodeId(2)]);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Silent);
    assert_all_ok::<P>(&c, seeds);
    let r = run::<P>(&SimConfig::synchronous(5, 2), 110);
    assert!(r.ok() && r.commits.min_height > 0, "{r}");
}
