//! The invariant checkers. They watch the driver — every outgoing message of an honest
//! instance, every commit of an honest replica — and record [`Violation`]s as data;
//! they never panic and never change the run.
//!
//! 1. **Agreement (prefix consistency).** The committed logs of honest replicas agree
//!    at every height: the first honest commit at a height fixes the digest there, and
//!    any other honest commit at that height with another digest is a `conflict`,
//!    reported once per replica with both digests. Each replica's own log must also go
//!    up by exactly one height per commit, link each block to the previous one, and
//!    carry the block's true digest (`commit-order`). The one exception: a replica that
//!    restarted may deliver again the last `COMMIT_PERSIST_EVERY` blocks its log holds,
//!    each at its own height (protocols persist their committed mark lazily; the
//!    engine's chain log and ledger ignore such repeats).
//! 2. **Validity and at-most-once.** Every transaction a ledger executes was created by
//!    a client, with that payload (`unknown-tx`); a transaction appears in one
//!    replica's raw committed log at most as many times as its client submitted it
//!    (`duplicate-tx`: a duplicate is allowed only if the client resubmitted, or if a
//!    Twins replica runs — a Byzantine leader may replay any transaction it was
//!    forwarded, and only at-most-once *execution* can be promised then). The
//!    ledger itself executes each `(client, nonce)` once and counts the duplicates it
//!    skipped.
//! 3. **No double vote.** Across the whole run — crashes and restarts included — no
//!    honest replica sends two messages whose [`Message::signed_vote`] are its own
//!    signed votes for two different blocks in one view (`double-vote`). A restarted
//!    replica that forgot its persisted state is caught here. Only votes whose signer
//!    is the sending replica count (relaying another's vote is not voting).
//! 4. **Liveness** (checked by the driver, see the crate docs): after the fault window,
//!    every honest replica commits above the highest height any honest replica had when
//!    the faults stopped, within the liveness bound.
//!
//! [`Message::signed_vote`]: olympus_protocols::Message::signed_vote

use crate::report::{Violation, ViolationKind};
use olympus_protocols::SignedVote;
use olympus_types::{Digest, NodeId, View};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::time::Duration;

/// A hash map with a fixed hasher: iteration order is a function of the insertions, so
/// iterating one can never make two runs of a seed differ.
pub(crate) type DetMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;
pub(crate) type DetSet<K> = HashSet<K, BuildHasherDefault<DefaultHasher>>;

/// Collects violations, bounded.
pub(crate) struct Violations {
    pub kept: Vec<Violation>,
    pub dropped: u64,
    max: usize,
}

impl Violations {
    pub fn new(max: usize) -> Self {
        Violations {
            kept: Vec::new(),
            dropped: 0,
            max,
        }
    }

    pub fn record(&mut self, kind: ViolationKind, at: Duration, description: String) {
        if self.kept.len() < self.max {
            self.kept.push(Violation {
                kind,
                at,
                description,
            });
        } else {
            self.dropped += 1;
        }
    }
}

/// Checker 1 (agreement across replicas) and checker 3 (double votes).
pub(crate) struct Checker {
    /// The digest first committed by an honest replica at each height (index h − 1),
    /// and by whom.
    canonical: Vec<(Digest, NodeId)>,
    /// Replicas already reported as conflicting (reported once each).
    diverged: DetSet<NodeId>,
    /// Every honest signed vote seen: (signer, view) → block.
    votes: DetMap<(NodeId, View), Digest>,
    /// (signer, view) pairs already reported.
    double_reported: DetSet<(NodeId, View)>,
}

impl Checker {
    pub fn new() -> Self {
        Checker {
            canonical: Vec::new(),
            diverged: DetSet::default(),
            votes: DetMap::default(),
            double_reported: DetSet::default(),
        }
    }

    /// An honest replica committed `digest` at `height` (its own log is contiguous).
    pub fn on_commit(
        &mut self,
        at: Duration,
        node: NodeId,
        height: u64,
        digest: Digest,
        out: &mut Violations,
    ) {
        let h = height as usize;
        debug_assert!(h >= 1);
        if h <= self.canonical.len() {
            let (first, by) = self.canonical[h - 1];
            if first != digest && self.diverged.insert(node) {
                out.record(
                    ViolationKind::Conflict,
                    at,
                    format!(
                        "height {height}: {node} committed {digest} but {by} committed {first}"
                    ),
                );
            }
        } else if h == self.canonical.len() + 1 {
            self.canonical.push((digest, node));
        } else {
            // A replica's log is contiguous from 1, and the canonical log is at least as
            // long as every replica's; the driver refuses gaps before calling us.
            debug_assert!(
                false,
                "commit at {height} beyond canonical {}",
                self.canonical.len()
            );
        }
    }

    /// An honest instance sent a message carrying `vote`, signed by `sender` itself.
    pub fn on_vote(&mut self, at: Duration, vote: SignedVote, out: &mut Violations) {
        let key = (vote.signer, vote.view);
        match self.votes.get(&key) {
            None => {
                self.votes.insert(key, vote.block);
            }
            Some(first) if *first != vote.block => {
                if self.double_reported.insert(key) {
                    out.record(
                        ViolationKind::DoubleVote,
                        at,
                        format!(
                            "{} voted for {} and for {} in view {}",
                            vote.signer, first, vote.block, vote.view
                        ),
                    );
                }
            }
            Some(_) => {}
        }
    }

    /// Highest height committed by any honest replica.
    pub fn highest(&self) -> u64 {
        self.canonical.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_double_votes_are_reported_once() {
        let mut c = Checker::new();
        let mut v = Violations::new(10);
        let (a, b) = (Digest([1; 32]), Digest([2; 32]));
        let t = Duration::ZERO;
        c.on_commit(t, NodeId(0), 1, a, &mut v);
        c.on_commit(t, NodeId(1), 1, a, &mut v);
        assert!(v.kept.is_empty());
        c.on_commit(t, NodeId(2), 1, b, &mut v);
        c.on_commit(t, NodeId(2), 2, b, &mut v);
        assert_eq!(v.kept.len(), 1);
        assert_eq!(v.kept[0].kind, ViolationKind::Conflict);
        let vote = |block| SignedVote {
            signer: NodeId(3),
            view: 7,
            block,
        };
        c.on_vote(t, vote(a), &mut v);
        c.on_vote(t, vote(a), &mut v);
        assert_eq!(v.kept.len(), 1);
        c.on_vote(t, vote(b), &mut v);
        c.on_vote(t, vote(b), &mut v);
        assert_eq!(v.kept.len(), 2);
        assert_eq!(v.kept[1].kind, ViolationKind::DoubleVote);
    }

    #[test]
    fn violations_are_bounded() {
        let mut v = Violations::new(1);
        v.record(ViolationKind::Liveness, Duration::ZERO, "a".into());
        v.record(ViolationKind::Liveness, Duration::ZERO, "b".into());
        assert_eq!((v.kept.len(), v.dropped), (1, 1));
    }
}
