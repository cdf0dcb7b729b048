//! Sync HotStuff in the simulator: the synchronous fault mix (delays within Δ,
//! duplication, crashes and restarts, silent and Twins Byzantine replicas up to
//! f = (n − 1) / 2) at n = 3, 5 and 7, and the positive controls: f + 1 Twins, and
//! messages delayed beyond Δ.

mod sync_suite;

use olympus_protocols::sync_hotstuff::SyncHotStuff;
use olympus_sim::{ByzantineChoice, ByzantineKind, SimConfig};
use sync_suite::*;

type P = SyncHotStuff;

#[test]
fn n5_without_byzantine_replicas_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(5, 0), 12);
}

#[test]
fn n3_with_one_byzantine_replica_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(3, 1), 12);
}

#[test]
fn n5_with_two_byzantine_replicas_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(5, 2), 12);
}

#[test]
fn n5_with_two_twins_is_safe_and_live() {
    let mut c = SimConfig::synchronous(5, 2);
    c.byzantine_choice = ByzantineChoice::All(ByzantineKind::Twins);
    assert_all_ok::<P>(&c, 10);
}

#[test]
fn n7_with_three_byzantine_replicas_is_safe_and_live() {
    assert_all_ok::<P>(&SimConfig::synchronous(7, 3), 5);
}

#[test]
fn silent_first_leaders_are_replaced() {
    assert_silent_first_leader_is_replaced::<P>(4);
}

#[test]
fn runs_are_deterministic_and_the_cli_config_is_adapted() {
    assert_deterministic::<P>(5, 2);
    assert_cli_config_is_adapted::<P>();
}

#[test]
fn positive_control_f_plus_one_twins_break_safety() {
    let r = positive_control_f_plus_one::<P>(5, 40);
    println!("positive control fired: {}\n{r}", r.violations[0]);
}

#[test]
fn positive_control_delays_beyond_delta_break_safety() {
    let r = positive_control_beyond_delta::<P>(5, 40);
    println!("positive control fired: {}\n{r}", r.violations[0]);
}
