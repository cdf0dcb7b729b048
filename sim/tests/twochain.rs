//! Two-chain HotStuff in the simulator: the standard fault mix (delays with a long tail,
//! loss, duplication, partitions, crashes and restarts, Byzantine replicas) over a few
//! hundred seeds at n = 4 and n = 7, and the positive control with f + 1 Twins. The CLI sweeps
//! (`olympus sim --protocol twochain --seeds 1000`, ...) cover many more seeds.
//!
//! A failing seed prints its report and the one-line command that replays it.

use olympus_protocols::twochain::TwoChain;
use olympus_sim::{
    run, sweep, ByzantineChoice, ByzantineKind, RunReport, SimConfig, ViolationKind,
};
use std::time::Duration;

/// Runs `seeds` seeds and returns the reports that fail `bad`.
fn failures(cfg: &SimConfig, seeds: u64, bad: impl Fn(&RunReport) -> bool) -> Vec<RunReport> {
    let mut out = Vec::new();
    sweep::<TwoChain>(cfg, 0..seeds, |r| {
        if bad(r) {
            out.push(r.clone());
        }
    });
    out
}

fn show(fails: &[RunReport]) -> String {
    fails.iter().take(3).map(|r| format!("{r}\n")).collect()
}

fn assert_all_ok(cfg: &SimConfig, seeds: u64) {
    let fails = failures(cfg, seeds, |r| !r.ok());
    assert!(
        fails.is_empty(),
        "{} of {seeds} seeds failed:\n{}",
        fails.len(),
        show(&fails)
    );
}

#[test]
fn n4_without_byzantine_replicas_is_safe_and_live() {
    assert_all_ok(&SimConfig::standard(4, 0), 200);
}

#[test]
fn n7_without_byzantine_replicas_is_safe_and_live() {
    assert_all_ok(&SimConfig::standard(7, 0), 100);
}

/// Silent or Twins, drawn per replica: a silent replica leads every n-th view, and the
/// QC its silence would have lost comes from the votes carried by timeouts.
#[test]
fn n4_with_one_byzantine_replica_is_safe_and_live() {
    assert_all_ok(&SimConfig::standard(4, 1), 200);
}

#[test]
fn n4_with_one_twin_is_safe_and_live() {
    let mut c = SimConfig::standard(4, 1);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
    assert_all_ok(&c, 100);
}

/// Only silent Byzantine replicas, f of them: every run must commit through the views
/// the silent ones lead.
#[test]
fn silent_byzantine_replicas_are_tolerated() {
    for (n, b, seeds) in [(4, 1, 200), (7, 2, 100)] {
        let mut c = SimConfig::standard(n, b);
        c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Silent);
        assert_all_ok(&c, seeds);
    }
}

/// f = 2 Byzantine replicas at n = 7, mixed and all Twins.
#[test]
fn n7_with_f_byzantine_replicas_is_safe_and_live() {
    assert_all_ok(&SimConfig::standard(7, 2), 100);
    let mut c = SimConfig::standard(7, 2);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
    assert_all_ok(&c, 50);
}

/// The two seeds that showed the liveness bug before timeouts carried votes and TCs:
/// one Byzantine replica (mixed), and one silent replica, at n = 4.
#[test]
fn the_seeds_that_once_stalled_are_live() {
    let mut silent = SimConfig::standard(4, 1);
    silent.byzantine_choice = ByzantineChoice::All(ByzantineKind::Silent);
    for (c, seed) in [(SimConfig::standard(4, 1), 146), (silent, 96)] {
        let r = run::<TwoChain>(&c, seed);
        assert!(r.ok(), "{r}");
        assert!(r.commits.min_height > 0, "{r}");
    }
}

#[test]
fn runs_are_deterministic() {
    let c = SimConfig::standard(4, 1);
    for seed in [3, 61] {
        let a = run::<TwoChain>(&c, seed);
        assert_eq!(a, run::<TwoChain>(&c, seed));
    }
}

/// The positive control: with f + 1 = 2 Twins at n = 4 the two worlds of a twins split
/// can each gather a quorum (one honest replica plus both twins), and the checkers must
/// find the resulting safety violation within a bounded number of seeds.
#[test]
fn positive_control_f_plus_one_twins_break_safety() {
    let mut c = SimConfig::standard(4, 2);
    assert_eq!(
        c.byzantine_choice,
        ByzantineChoice::All(ByzantineKind::Twins)
    );
    c.set_fault_end(Duration::from_millis(10_000));
    c.stop_at_first_violation = true;
    assert!(!c.checks_liveness());
    let found = (0..300)
        .map(|seed| run::<TwoChain>(&c, seed))
        .find(|r| r.has_safety_violation());
    let r = found.expect("f + 1 Twins must make the checkers fire within 300 seeds");
    let kinds: Vec<ViolationKind> = r.violations.iter().map(|v| v.kind).collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ViolationKind::Conflict | ViolationKind::DoubleVote)),
        "{r}"
    );
    let repro = r.repro();
    assert!(
        repro.starts_with("olympus sim --protocol twochain -n 4 --byzantine 2 --duration-ms 10000"),
        "{repro}"
    );
    println!("positive control fired: {}\n{r}", r.violations[0]);
}
