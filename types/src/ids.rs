//! Identifiers and logical clocks.

use rkyv::{Archive, Deserialize, Serialize};

/// A replica's index in the committee, `0..n`.
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[rkyv(derive(Debug, PartialEq, Eq, Hash))]
pub struct NodeId(pub u16);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<ArchivedNodeId> for NodeId {
    fn from(a: ArchivedNodeId) -> Self {
        NodeId(a.0.to_native())
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A view (also called an epoch or a round by some protocols).
pub type View = u64;
/// The height of a block: its distance from genesis.
pub type Height = u64;
