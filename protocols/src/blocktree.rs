//! The block tree: every known block above the committed root, their ancestry, and the
//! ordered commit of a chain.
//!
//! Invariants:
//! - a block is inserted only when its parent is known (the root counts as known), so
//!   every block in the tree has a complete ancestry down to the root;
//! - commits only move forward along one chain: [`BlockTree::commit_to`] refuses a target
//!   that does not extend the last committed block, and never commits a block twice;
//! - memory is bounded: uncommitted forks below the committed height are pruned and at
//!   most [`RETAINED_COMMITTED`] committed blocks are kept for peers that fetch them.

use olympus_types::{Block, Digest, Height, View};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Committed blocks kept for peers that fetch them (catch-up after a crash or a
/// partition). Older ones are dropped; a later block-sync layer serves those from disk.
pub const RETAINED_COMMITTED: usize = 4096;

/// Blocks above the committed height kept at most (a Byzantine leader could otherwise
/// grow the tree without bound with forks that never commit).
pub const MAX_UNCOMMITTED: usize = 8192;

/// A block with its digest, as the tree stores it.
#[derive(Clone, Debug)]
pub struct Node {
    pub digest: Digest,
    pub block: Arc<Block>,
}

/// Why a commit was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("block {0} is unknown")]
    Unknown(Digest),
    #[error("block {target} does not extend the committed block {committed}")]
    Conflict { target: Digest, committed: Digest },
}

/// Blocks above a committed root.
#[derive(Debug)]
pub struct BlockTree {
    blocks: HashMap<Digest, Arc<Block>>,
    /// The last committed block.
    committed: Digest,
    committed_height: Height,
    committed_view: View,
    /// Committed digests in order, for pruning.
    committed_log: VecDeque<Digest>,
    /// Commits since abandoned forks were last swept out.
    since_sweep: usize,
}

/// Every this many commits, blocks of abandoned forks (below the committed height and
/// not committed) are swept out; retained committed blocks leave one by one as they
/// fall out of the window. Sweeping on every commit cost a pass over the whole tree
/// per block.
pub const FORK_SWEEP_EVERY: usize = 256;

impl BlockTree {
    /// A tree whose root is genesis.
    pub fn from_genesis() -> Self {
        let g = Block::genesis();
        let d = g.digest();
        let mut t = Self::from_root(d, 0, 0);
        t.blocks.insert(d, Arc::new(g));
        t
    }

    /// A tree whose root is a committed block known only by digest, height and view
    /// (after a restart: what was persisted).
    pub fn from_root(digest: Digest, height: Height, view: View) -> Self {
        BlockTree {
            blocks: HashMap::new(),
            committed: digest,
            committed_height: height,
            committed_view: view,
            committed_log: VecDeque::new(),
            since_sweep: 0,
        }
    }

    pub fn committed(&self) -> (Digest, Height, View) {
        (self.committed, self.committed_height, self.committed_view)
    }

    pub fn get(&self, d: &Digest) -> Option<&Arc<Block>> {
        self.blocks.get(d)
    }

    /// Whether `d` is known: in the tree or the committed root.
    pub fn knows(&self, d: &Digest) -> bool {
        *d == self.committed || self.blocks.contains_key(d)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Inserts a block whose parent is known. Returns false (and stores nothing) when the
    /// parent is unknown, the block is below the committed height, or the tree is full.
    pub fn insert(&mut self, digest: Digest, block: Arc<Block>) -> bool {
        if self.blocks.contains_key(&digest) {
            return true;
        }
        if block.height <= self.committed_height || !self.knows(&block.parent) {
            return false;
        }
        if let Some(p) = self.blocks.get(&block.parent) {
            // A parent at or below the committed height must be the committed block
            // itself: anything else is an abandoned fork not yet swept out.
            if p.height + 1 != block.height
                || (p.height <= self.committed_height && block.parent != self.committed)
            {
                return false;
            }
        } else if block.height != self.committed_height + 1 {
            return false;
        }
        if self.blocks.len() >= MAX_UNCOMMITTED + RETAINED_COMMITTED {
            return false;
        }
        self.blocks.insert(digest, block);
        true
    }

    /// Whether `descendant` is `ancestor` or extends it. Blocks at or below the
    /// committed root count as ancestors of everything in the tree when they are the root;
    /// an ancestor below the root cannot be checked and is assumed on the committed
    /// chain (callers only ask about locks, which never fall below the committed block on
    /// another branch).
    pub fn extends(&self, descendant: &Digest, ancestor: &Digest, ancestor_height: Height) -> bool {
        if ancestor_height <= self.committed_height && !self.blocks.contains_key(ancestor) {
            return true;
        }
        let mut cur = *descendant;
        loop {
            if cur == *ancestor {
                return true;
            }
            match self.blocks.get(&cur) {
                Some(b) if b.height > ancestor_height => cur = b.parent,
                _ => return false,
            }
        }
    }

    /// Commits `target` and every uncommitted ancestor, returned in commit order.
    pub fn commit_to(&mut self, target: &Digest) -> Result<Vec<Node>, CommitError> {
        if *target == self.committed {
            return Ok(Vec::new());
        }
        let mut chain = Vec::new();
        let mut cur = *target;
        let conflict = CommitError::Conflict {
            target: *target,
            committed: self.committed,
        };
        while cur != self.committed {
            let b = self.blocks.get(&cur).ok_or(CommitError::Unknown(cur))?;
            if b.height <= self.committed_height
                || (b.height == self.committed_height + 1 && b.parent != self.committed)
            {
                return Err(conflict);
            }
            chain.push(Node {
                digest: cur,
                block: b.clone(),
            });
            cur = b.parent;
        }
        chain.reverse();
        if let Some(last) = chain.last() {
            self.committed = last.digest;
            self.committed_height = last.block.height;
            self.committed_view = last.block.view;
        }
        self.committed_log.extend(chain.iter().map(|n| n.digest));
        self.prune();
        Ok(chain)
    }

    /// Drops forks that can never commit and the oldest retained committed blocks.
    fn prune(&mut self) {
        while self.committed_log.len() > RETAINED_COMMITTED {
            if let Some(d) = self.committed_log.pop_front() {
                if self.blocks.get(&d).is_some_and(|b| !b.is_genesis()) {
                    self.blocks.remove(&d);
                }
            }
        }
        self.since_sweep += 1;
        if self.since_sweep >= FORK_SWEEP_EVERY {
            self.since_sweep = 0;
            let h = self.committed_height;
            let retained: std::collections::HashSet<Digest> =
                self.committed_log.iter().copied().collect();
            self.blocks
                .retain(|d, b| b.height > h || retained.contains(d) || b.is_genesis());
        }
    }

    /// Whether `d` or one of its uncommitted ancestors carries a payload: then blocks
    /// must keep coming until it commits. Looks at most [`MAX_UNCOMMITTED`] blocks back
    /// (and says yes beyond that).
    pub fn uncommitted_payload(&self, d: &Digest) -> bool {
        let mut cur = *d;
        for _ in 0..MAX_UNCOMMITTED {
            match self.blocks.get(&cur) {
                Some(b) if b.height > self.committed_height => {
                    if !b.payload.is_empty() {
                        return true;
                    }
                    cur = b.parent;
                }
                _ => return false,
            }
        }
        true
    }

    /// `d` and up to `max - 1` of its ancestors, oldest first (for a peer catching up).
    pub fn chain_ending_at(&self, d: &Digest, max: usize) -> Vec<Arc<Block>> {
        let mut out = Vec::new();
        let mut cur = *d;
        while out.len() < max {
            match self.blocks.get(&cur) {
                Some(b) if !b.is_genesis() => {
                    out.push(b.clone());
                    cur = b.parent;
                }
                _ => break,
            }
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olympus_types::{NodeId, Payload, QuorumCert};

    fn child(parent: &Block, view: View) -> Block {
        Block {
            parent: parent.digest(),
            view,
            height: parent.height + 1,
            proposer: NodeId(0),
            justify: QuorumCert::genesis(),
            payload: Payload::empty(),
        }
    }

    #[test]
    fn insert_extend_commit_in_order() {
        let mut t = BlockTree::from_genesis();
        let g = Block::genesis();
        let a = child(&g, 1);
        let b = child(&a, 2);
        let c = child(&b, 3);
        let fork = child(&a, 4);
        let fork2 = child(&fork, 5);
        assert!(!t.insert(b.digest(), Arc::new(b.clone())), "parent unknown");
        for blk in [&a, &b, &c, &fork, &fork2] {
            assert!(t.insert(blk.digest(), Arc::new(blk.clone())));
        }
        assert!(t.extends(&c.digest(), &a.digest(), a.height));
        assert!(!t.extends(&c.digest(), &fork.digest(), fork.height));
        let committed = t.commit_to(&b.digest()).unwrap();
        let hs: Vec<_> = committed.iter().map(|n| n.block.height).collect();
        assert_eq!(hs, vec![1, 2]);
        assert!(t.commit_to(&b.digest()).unwrap().is_empty(), "never twice");
        // The dead fork below the committed height is swept out later, but nothing can
        // build on it meanwhile.
        let stale = child(&fork, 7);
        assert!(
            !t.insert(stale.digest(), Arc::new(stale)),
            "a child of a dead fork block"
        );
        assert_eq!(
            t.commit_to(&fork2.digest()).unwrap_err(),
            CommitError::Conflict {
                target: fork2.digest(),
                committed: b.digest()
            }
        );
        assert_eq!(t.commit_to(&c.digest()).unwrap().len(), 1);
        assert_eq!(t.chain_ending_at(&c.digest(), 2).len(), 2);
    }

    #[test]
    fn dead_forks_are_swept_and_old_committed_blocks_leave_the_window() {
        let mut t = BlockTree::from_genesis();
        let g = Block::genesis();
        let a = child(&g, 1);
        let fork = child(&g, 2);
        t.insert(a.digest(), Arc::new(a.clone()));
        t.insert(fork.digest(), Arc::new(fork.clone()));
        let mut tip = a.clone();
        t.commit_to(&a.digest()).unwrap();
        for v in 3..(3 + FORK_SWEEP_EVERY as u64) {
            let next = child(&tip, v);
            assert!(t.insert(next.digest(), Arc::new(next.clone())));
            t.commit_to(&next.digest()).unwrap();
            tip = next;
        }
        assert!(t.get(&fork.digest()).is_none(), "swept");
        assert!(t.get(&a.digest()).is_some(), "still in the retained window");
        assert!(t.len() <= RETAINED_COMMITTED + 1);
    }

    #[test]
    fn tree_from_a_root_accepts_its_children_only() {
        let g = Block::genesis();
        let a = child(&g, 1);
        let b = child(&a, 2);
        let mut t = BlockTree::from_root(a.digest(), 1, 1);
        assert!(
            !t.insert(a.digest(), Arc::new(a.clone())),
            "at the root height"
        );
        assert!(t.insert(b.digest(), Arc::new(b.clone())));
        assert_eq!(t.commit_to(&b.digest()).unwrap().len(), 1);
    }
}
