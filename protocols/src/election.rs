//! Leader election: who leads a view. Pluggable; protocols hold a `Box<dyn
//! LeaderElection>` or a concrete type.

use olympus_types::{NodeId, View};

/// Maps a view to its leader. Must be deterministic and identical on every replica.
pub trait LeaderElection: Send + Sync + std::fmt::Debug {
    fn leader(&self, view: View) -> NodeId;
}

/// `leader(v) = v mod n`: any n consecutive views have distinct leaders.
#[derive(Clone, Copy, Debug)]
pub struct RoundRobin {
    pub n: usize,
}

impl LeaderElection for RoundRobin {
    fn leader(&self, view: View) -> NodeId {
        NodeId((view % self.n as u64) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_rotates_through_everyone() {
        let e = RoundRobin { n: 4 };
        let ls: Vec<_> = (4..8).map(|v| e.leader(v).0).collect();
        assert_eq!(ls, vec![0, 1, 2, 3]);
    }
}
