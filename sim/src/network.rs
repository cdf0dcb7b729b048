//! The simulated network: who can reach whom right now, and how long a message takes.
//!
//! - **Delays** are uniform in `[delay_min, delay_max]`; during the fault window a
//!   message takes a long-tail delay in `(delay_max, long_tail_max]` with probability
//!   `long_tail_prob`. Reordering falls out of independent random delays.
//! - **Partitions** split the nodes (by id) into two non-empty groups; a message sent
//!   across the cut is dropped.
//! - **Twins worlds**: during a twins split, every honest node is on side A or B, twin
//!   A instances live in world A and twin B instances in world B, and a message that
//!   would cross worlds is dropped. Outside splits every world is one.
//!
//! Reachability is decided when a message is sent: a message already in flight when a
//! partition starts still arrives (it left before the link broke). Loss and
//! duplication are decided by the driver with the same network random stream.

use crate::config::FaultConfig;
use crate::queue::Time;
use crate::rng::Rng;

/// The side of a twins split an instance lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum World {
    /// An honest instance: its side is its node's side of the current split.
    Honest,
    TwinA,
    TwinB,
}

/// Why a message cannot be delivered right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    Partition,
    Worlds,
}

/// The current connectivity.
#[derive(Default)]
pub(crate) struct Connectivity {
    /// Group (0 or 1) of each node while a partition is active.
    pub partition: Option<Vec<u8>>,
    /// Side (0 = A, 1 = B) of each node while a twins split is active (meaningful for
    /// honest nodes only).
    pub sides: Option<Vec<u8>>,
    /// The synchronous model: a twins split never cuts two honest instances apart.
    pub honest_connected: bool,
}

impl Connectivity {
    fn side(&self, node: usize, world: World) -> Option<u8> {
        match world {
            World::TwinA => Some(0),
            World::TwinB => Some(1),
            World::Honest => self.sides.as_ref().map(|s| s[node]),
        }
    }

    /// Whether an instance of `from` in world `fw` can reach an instance of `to` in `tw`.
    pub fn check(&self, from: usize, fw: World, to: usize, tw: World) -> Result<(), Cut> {
        let both_honest = fw == World::Honest && tw == World::Honest;
        if self.sides.is_some()
            && !(self.honest_connected && both_honest)
            && self.side(from, fw) != self.side(to, tw)
        {
            return Err(Cut::Worlds);
        }
        if let Some(p) = &self.partition {
            if p[from] != p[to] {
                return Err(Cut::Partition);
            }
        }
        Ok(())
    }
}

/// A random split of `members` into two non-empty groups (when there are at least two):
/// returns the group of each of the `n` nodes; nodes not in `members` get group 0.
pub(crate) fn random_split(rng: &mut Rng, n: usize, members: &[usize]) -> Vec<u8> {
    let mut g = vec![0u8; n];
    if members.len() < 2 {
        return g;
    }
    // A uniformly random proper non-empty subset: draw until both sides are non-empty
    // (at most a few draws in expectation for any size >= 2).
    loop {
        for &m in members {
            g[m] = rng.below(2) as u8;
        }
        let ones = members.iter().filter(|&&m| g[m] == 1).count();
        if ones > 0 && ones < members.len() {
            return g;
        }
    }
}

/// The delay of one message, and whether it was a long-tail one.
pub(crate) fn delay(rng: &mut Rng, f: &FaultConfig, faulty: bool) -> (Time, bool) {
    let lo = f.delay_min.as_nanos() as u64;
    let hi = f.delay_max.as_nanos() as u64;
    if faulty && rng.chance(f.long_tail_prob) {
        let tail = (f.long_tail_max.as_nanos() as u64).max(hi);
        return (rng.range(hi, tail), true);
    }
    (rng.range(lo, hi), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_proper_and_worlds_cut() {
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let g = random_split(&mut rng, 5, &[0, 2, 4]);
            let ones = [0, 2, 4].iter().filter(|&&m| g[m] == 1).count();
            assert!(ones == 1 || ones == 2);
            assert_eq!((g[1], g[3]), (0, 0));
        }
        let mut c = Connectivity {
            partition: None,
            sides: Some(vec![0, 1, 0, 0]),
            honest_connected: false,
        };
        assert_eq!(c.check(0, World::Honest, 2, World::Honest), Ok(()));
        assert_eq!(
            c.check(0, World::Honest, 1, World::Honest),
            Err(Cut::Worlds)
        );
        assert_eq!(c.check(3, World::TwinB, 1, World::Honest), Ok(()));
        assert_eq!(c.check(3, World::TwinA, 3, World::TwinB), Err(Cut::Worlds));
        c.honest_connected = true;
        assert_eq!(c.check(0, World::Honest, 1, World::Honest), Ok(()));
        assert_eq!(c.check(3, World::TwinA, 1, World::Honest), Err(Cut::Worlds));
        assert_eq!(c.check(3, World::TwinA, 3, World::TwinB), Err(Cut::Worlds));
        let c = Connectivity {
            partition: Some(vec![0, 0, 1, 1]),
            sides: None,
            honest_connected: false,
        };
        assert_eq!(c.check(3, World::TwinA, 3, World::TwinB), Ok(()));
        assert_eq!(
            c.check(0, World::Honest, 3, World::TwinB),
            Err(Cut::Partition)
        );
    }
}
