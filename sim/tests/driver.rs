//! Scenario tests of the simulator itself, driven by the `Seq` test protocol
//! (tests/common): the driver, faults, crashes and restarts, determinism, and each
//! checker firing on a deliberately broken variant.

mod common;

use common::{bugs, Seq};
use olympus_sim::{
    run, sweep, ByzantineChoice, ByzantineKind, RunReport, SimConfig, ViolationKind,
};
use olympus_types::NodeId;
use std::time::Duration;

type Correct = Seq<{ bugs::NONE }>;

/// The standard fault mix, with Byzantine replicas (if any) kept off the primary.
fn cfg(n: usize, byzantine: usize) -> SimConfig {
    let mut c = SimConfig::standard(n, byzantine);
    c.byzantine_nodes = Some((0..byzantine).map(|i| NodeId((n - 1 - i) as u16)).collect());
    c
}

fn kinds(r: &RunReport) -> Vec<ViolationKind> {
    r.violations.iter().map(|v| v.kind).collect()
}

fn assert_ok(r: &RunReport) {
    assert!(r.ok(), "seed {} failed:\n{r}", r.seed);
}

#[test]
fn correct_protocol_is_safe_and_live_under_the_standard_fault_mix() {
    let c = cfg(4, 0);
    let mut crashes = 0;
    let s = sweep::<Correct>(&c, 0..40, |r| {
        assert_ok(r);
        assert!(r.commits.min_height > 50, "{r}");
        assert!(r.txs_executed > 0 && r.txs_confirmed > 0, "{r}");
        assert!(r.commits.max_recovery.is_some());
        crashes += r.faults.get("crash").copied().unwrap_or(0);
    });
    assert_eq!(s.seeds, 40);
    assert!(s.ok());
    for kind in [
        "loss",
        "duplicate",
        "long_delay",
        "partition",
        "partition_cut",
        "crash",
        "restart",
    ] {
        assert!(
            s.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} injected: {:?}",
            s.faults
        );
    }
    assert!(crashes > 0);
    // Retries happen (crashes lose mempools) and the ledgers dedup them.
    assert!(s.txs_executed > 0);
}

#[test]
fn same_seed_same_run_and_different_seeds_differ() {
    let c = cfg(4, 1);
    let a = run::<Correct>(&c, 1234);
    let b = run::<Correct>(&c, 1234);
    assert_eq!(a, b);
    assert_eq!(a.to_string(), b.to_string());
    let other = run::<Correct>(&c, 1235);
    assert_ne!(a.trace_hash, other.trace_hash);
    // A Twins run is deterministic too (two instances of one identity).
    let mut t = cfg(4, 1);
    t.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
    assert_eq!(run::<Correct>(&t, 9), run::<Correct>(&t, 9));
}

#[test]
fn byzantine_non_primaries_do_not_break_the_sequencer() {
    for choice in [
        ByzantineChoice::All(ByzantineKind::Silent),
        ByzantineChoice::All(ByzantineKind::Twins),
        ByzantineChoice::Mixed,
    ] {
        let mut c = cfg(7, 2);
        c.byzantine_choice = choice;
        c.clients.clients = 7; // every replica is some client's home
        for seed in 0..10 {
            let r = run::<Correct>(&c, seed);
            assert_ok(&r);
            assert_eq!(r.byzantine.len(), 2);
            if choice == ByzantineChoice::All(ByzantineKind::Twins) {
                assert!(r.faults.get("twins_split").copied().unwrap_or(0) > 0, "{r}");
                assert!(
                    r.events.get("byzantine_commit").copied().unwrap_or(0) > 0,
                    "{r}"
                );
            }
            if choice == ByzantineChoice::All(ByzantineKind::Silent) {
                assert!(
                    r.events.get("tx_to_silent_node").copied().unwrap_or(0) > 0,
                    "{r}"
                );
            }
        }
    }
}

#[test]
fn crashes_respect_the_fault_budget() {
    // n = 4, one Byzantine replica: f = 1 is used up, so no honest replica may crash.
    let mut c = cfg(4, 1);
    c.faults.crashes = 5;
    for seed in 0..10 {
        let r = run::<Correct>(&c, seed);
        assert_ok(&r);
        assert_eq!(r.faults.get("crash"), None);
        assert_eq!(r.events.get("crash_skipped_budget"), Some(&5));
    }
    // n = 7 with no Byzantine replica: at most 2 down at once, and they all come back.
    let mut c = cfg(7, 0);
    c.faults.crashes = 8;
    for seed in 0..10 {
        let r = run::<Correct>(&c, seed);
        assert_ok(&r);
        let crashes = r.faults.get("crash").copied().unwrap_or(0);
        assert!(crashes > 0);
        assert_eq!(r.faults.get("restart").copied().unwrap_or(0), crashes);
        assert_eq!(r.commits.heights.len(), 7);
    }
}

#[test]
fn a_calm_network_loses_nothing() {
    let c = SimConfig::calm(4);
    let r = run::<Correct>(&c, 5);
    assert_ok(&r);
    assert!(r.faults.is_empty(), "{r}");
    let block = r.messages["block"];
    // Everything sent arrived, except what was still in flight when the run stopped.
    assert_eq!(block.dropped, 0);
    assert!(
        block.delivered <= block.sent && block.delivered + 10 > block.sent,
        "{block:?}"
    );
    assert_eq!(r.duplicates_suppressed, 0);
    // The run stopped early, once everyone had committed after the window.
    assert!(r.virtual_time < c.duration);
    assert_eq!(
        r.commits.min_height,
        r.commits.max_height.min(r.commits.min_height)
    );
}

#[test]
fn forgetting_the_persisted_state_is_caught() {
    let mut c = cfg(4, 0);
    c.faults.crashes = 4;
    let found = (0..20)
        .map(|s| run::<Seq<{ bugs::NO_PERSIST }>>(&c, s))
        .find(|r| kinds(r).contains(&ViolationKind::CommitOrder));
    let r = found.expect("a restart without persisted state re-commits from height 1");
    let v = r
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::CommitOrder)
        .unwrap();
    assert!(
        v.description.contains("committed height 1 after height"),
        "{v}"
    );
    assert!(r
        .repro()
        .starts_with("olympus sim --protocol seq -n 4 --byzantine 0"));
}

#[test]
fn a_forking_primary_is_caught() {
    let r = run::<Seq<{ bugs::FORK }>>(&cfg(4, 0), 3);
    let v = r
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::Conflict)
        .expect("conflict");
    assert!(v.description.starts_with("height 1: "), "{v}");
    assert!(r.has_safety_violation());
}

#[test]
fn a_double_vote_is_caught() {
    let found = (0..10)
        .map(|s| run::<Seq<{ bugs::DOUBLE_VOTE }>>(&cfg(4, 0), s))
        .find(|r| kinds(r).contains(&ViolationKind::DoubleVote));
    let r = found.expect("duplicated blocks make the broken voter vote twice");
    let v = r
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::DoubleVote)
        .unwrap();
    assert!(v.description.contains(" voted for "), "{v}");
}

#[test]
fn phantom_and_repeated_transactions_are_caught() {
    let r = run::<Seq<{ bugs::PHANTOM_TX }>>(&cfg(4, 0), 1);
    assert!(
        kinds(&r).contains(&ViolationKind::UnknownTransaction),
        "{r}"
    );
    assert!(
        r.violations_dropped > 0,
        "violations are bounded and counted"
    );

    let r = run::<Seq<{ bugs::REPEAT_TX }>>(&SimConfig::calm(4), 1);
    assert!(
        kinds(&r).contains(&ViolationKind::DuplicateTransaction),
        "{r}"
    );
    assert!(r.duplicates_suppressed > 0, "the ledgers skip the repeats");
    assert_eq!(r.txs_executed, r.txs_submitted.min(r.txs_executed));
}

#[test]
fn a_stalled_protocol_is_caught_by_the_liveness_checker() {
    let mut c = cfg(4, 0);
    c.faults.crashes = 0;
    let r = run::<Seq<{ bugs::STALL }>>(&c, 2);
    let live: Vec<_> = r
        .violations
        .iter()
        .filter(|v| v.kind == ViolationKind::Liveness)
        .collect();
    assert_eq!(live.len(), 4, "{r}");
    assert!(
        live[0].description.contains("did not commit above height"),
        "{}",
        live[0]
    );
    assert_eq!(
        r.virtual_time, c.duration,
        "a stalled run is not stopped early"
    );
    assert!(!r.has_safety_violation());
}

#[test]
fn forged_messages_are_rejected_before_the_protocol_sees_them() {
    let r = run::<Seq<{ bugs::SPOOF }>>(&SimConfig::calm(4), 1);
    assert_ok(&r);
    let ack = r.messages["ack"];
    assert!(ack.rejected > 0 && ack.delivered == 0, "{ack:?}");
}

#[test]
fn reports_print_a_repro_line() {
    let c = cfg(4, 0);
    let r = run::<Seq<{ bugs::FORK }>>(&c, 77);
    let text = r.to_string();
    assert!(text.contains("violations:"));
    assert!(
        text.contains("repro: olympus sim --protocol seq -n 4 --byzantine 0"),
        "{text}"
    );
    // Pinned Byzantine nodes are not expressible on the command line, and say so.
    let r = run::<Correct>(&cfg(4, 1), 1);
    assert!(r.repro().contains("custom"), "{}", r.repro());
    let r = run::<Correct>(&SimConfig::standard(4, 0), 1);
    assert_eq!(
        r.repro(),
        "olympus sim --protocol seq -n 4 --byzantine 0 --seed 1"
    );
    assert!(r.virtual_time > Duration::from_secs(3));
}
