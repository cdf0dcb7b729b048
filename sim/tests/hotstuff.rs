//! Chained HotStuff in the simulator: the standard fault mix (delays with a long tail,
//! loss, duplication, partitions, crashes and restarts, Byzantine replicas) over many
//! seeds at n = 4 and n = 7, and the positive control with f + 1 Twins.
//!
//! A failing seed prints its report and the one-line command that replays it.

use olympus_protocols::hotstuff::HotStuff;
use olympus_sim::{
    run, sweep, ByzantineChoice, ByzantineKind, RunReport, SimConfig, ViolationKind,
};
use std::time::Duration;

/// Runs `seeds` seeds and returns the reports that fail `bad`.
fn failures(cfg: &SimConfig, seeds: u64, bad: impl Fn(&RunReport) -> bool) -> Vec<RunReport> {
    let mut out = Vec::new();
    sweep::<HotStuff>(cfg, 0..seeds, |r| {
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

fn assert_all_safe(cfg: &SimConfig, seeds: u64) {
    let fails = failures(cfg, seeds, |r| r.has_safety_violation());
    assert!(
        fails.is_empty(),
        "{} of {seeds} seeds unsafe:\n{}",
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

#[test]
fn n4_with_one_byzantine_replica_is_safe() {
    assert_all_safe(&SimConfig::standard(4, 1), 200);
}

#[test]
fn n7_with_two_byzantine_replicas_is_safe() {
    assert_all_safe(&SimConfig::standard(7, 2), 100);
}

#[test]
fn n4_with_one_twin_is_safe_and_live() {
    let mut c = SimConfig::standard(4, 1);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
    assert_all_ok(&c, 100);
}

// With a silent replica, HotStuff as written does not stay live: at n = 4 with
// round-robin leaders, the three-chain rule on consecutive views needs four consecutive
// honest leaders (three proposers and the leader that forms the last QC), which never
// occur with one silent replica (`olympus sim --protocol hotstuff -n 4 --byzantine 1
// --byzantine-kind silent --seed 0`); at n = 7 views can deadlock after the faults when
// some replicas entered view v + 1 by a TC that the others never see (`-n 7 --byzantine 1
// --seed 48`). Un-ignore once the protocol is fixed.
#[test]
#[ignore = "HotStuff liveness with a silent replica: see the comment above"]
fn n4_with_one_byzantine_replica_is_live() {
    assert_all_ok(&SimConfig::standard(4, 1), 200);
}

#[test]
#[ignore = "HotStuff liveness with silent replicas: see the comment above"]
fn n7_with_byzantine_replicas_is_live() {
    assert_all_ok(&SimConfig::standard(7, 1), 100);
    assert_all_ok(&SimConfig::standard(7, 2), 100);
}

#[test]
fn runs_are_deterministic() {
    let c = SimConfig::standard(4, 1);
    for seed in [3, 61] {
        let a = run::<HotStuff>(&c, seed);
        assert_eq!(a, run::<HotStuff>(&c, seed));
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
        .map(|seed| run::<HotStuff>(&c, seed))
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
        repro.starts_with("olympus sim --protocol hotstuff -n 4 --byzantine 2 --duration-ms 10000"),
        "{repro}"
    );
    println!("positive control fired: {}\n{r}", r.violations[0]);
}
