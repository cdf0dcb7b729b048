//! Collecting signed statements from distinct replicas until a quorum is reached.

use olympus_types::{NodeId, SignerSet};
use std::collections::BTreeMap;

/// Collects `(signer, value)` pairs per key (a statement: a view, a (view, block) pair,
/// ...), counting each signer once per key, and yields the pairs exactly once, when the
/// key first reaches the threshold. Keys are ordered so old ones can be pruned, and the
/// number of live keys is bounded (the oldest is evicted first).
///
/// Values that arrive after the quorum was yielded are kept (at most one per member), so
/// that a quorum found bad later — summed lazily, long after the last vote arrived — can
/// be completed from them ([`Collector::reopen`]).
#[derive(Debug)]
pub struct Collector<K: Ord + Clone, V> {
    threshold: usize,
    max_keys: usize,
    entries: BTreeMap<K, Entry<V>>,
}

#[derive(Debug)]
struct Entry<V> {
    signers: SignerSet,
    values: Vec<(NodeId, V)>,
    /// Values added after the quorum was yielded.
    late: Vec<(NodeId, V)>,
    done: bool,
}

impl<K: Ord + Clone, V: Clone> Collector<K, V> {
    pub fn new(threshold: usize, max_keys: usize) -> Self {
        Collector {
            threshold,
            max_keys: max_keys.max(1),
            entries: BTreeMap::new(),
        }
    }

    /// Adds a value; returns the quorum the first time `key` reaches the threshold.
    pub fn add(&mut self, key: K, signer: NodeId, value: V) -> Option<Vec<(NodeId, V)>> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_keys {
            let oldest = self.entries.keys().next().cloned()?;
            if oldest > key {
                return None; // older than everything we keep: not worth a slot
            }
            self.entries.remove(&oldest);
        }
        let e = self.entries.entry(key).or_insert_with(|| Entry {
            signers: SignerSet::new(),
            values: Vec::new(),
            late: Vec::new(),
            done: false,
        });
        if !e.signers.insert(signer) {
            return None;
        }
        if e.done {
            e.late.push((signer, value));
            return None;
        }
        e.values.push((signer, value));
        if e.values.len() >= self.threshold {
            e.done = true;
            return Some(std::mem::take(&mut e.values));
        }
        None
    }

    /// Re-opens `key` after the quorum it yielded turned out to hold invalid values
    /// (signatures that failed to aggregate): keeps `good` and the values that arrived
    /// since the quorum was yielded, and keeps every signer seen so far counted, so the
    /// ones whose values were bad cannot be added again. Returns the next quorum at once
    /// if those already reach the threshold; otherwise the key yields again once new
    /// signers bring it there.
    pub fn reopen(&mut self, key: &K, good: Vec<(NodeId, V)>) -> Option<Vec<(NodeId, V)>> {
        let e = self.entries.get_mut(key)?;
        e.values = good;
        e.values.append(&mut e.late);
        if e.values.len() >= self.threshold {
            return Some(std::mem::take(&mut e.values));
        }
        e.done = false;
        None
    }

    /// Distinct signers seen so far for `key` (0 once it completed).
    pub fn count(&self, key: &K) -> usize {
        self.entries.get(key).map_or(0, |e| e.values.len())
    }

    /// Forgets every key below `key`.
    pub fn prune_below(&mut self, key: &K) {
        self.entries = self.entries.split_off(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_once_at_threshold_counting_distinct_signers() {
        let mut c: Collector<u64, u8> = Collector::new(3, 8);
        assert!(c.add(1, NodeId(0), 0).is_none());
        assert!(c.add(1, NodeId(0), 9).is_none(), "duplicate signer ignored");
        assert!(c.add(1, NodeId(1), 1).is_none());
        let q = c.add(1, NodeId(2), 2).expect("quorum");
        assert_eq!(
            q.iter().map(|(n, _)| n.0).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(c.add(1, NodeId(3), 3).is_none(), "yielded only once");
    }

    #[test]
    fn a_reopened_key_yields_again_without_the_bad_signer() {
        let mut c: Collector<u64, u8> = Collector::new(2, 8);
        c.add(1, NodeId(0), 0);
        let q = c.add(1, NodeId(1), 66).expect("quorum");
        assert_eq!(q.len(), 2);
        assert!(c.reopen(&1, vec![(NodeId(0), 0)]).is_none());
        assert!(
            c.add(1, NodeId(1), 1).is_none(),
            "the bad signer stays counted"
        );
        let q = c.add(1, NodeId(2), 2).expect("quorum again");
        assert_eq!(q, vec![(NodeId(0), 0), (NodeId(2), 2)]);
    }

    /// A quorum summed late (after every vote arrived) and found bad is completed from the
    /// votes that came after it, without waiting for more.
    #[test]
    fn a_reopened_key_completes_from_votes_that_arrived_after_the_quorum() {
        let mut c: Collector<u64, u8> = Collector::new(2, 8);
        c.add(1, NodeId(0), 66);
        let q = c.add(1, NodeId(1), 1).expect("quorum");
        assert_eq!(q.len(), 2);
        assert!(c.add(1, NodeId(2), 2).is_none(), "late: kept, not yielded");
        assert!(
            c.add(1, NodeId(2), 9).is_none(),
            "still one value per signer"
        );
        let q = c
            .reopen(&1, vec![(NodeId(1), 1)])
            .expect("completed at once");
        assert_eq!(q, vec![(NodeId(1), 1), (NodeId(2), 2)]);
        assert!(c.add(1, NodeId(3), 3).is_none(), "yielded: done again");
        let q = c
            .reopen(&1, vec![(NodeId(2), 2)])
            .expect("with the later one");
        assert_eq!(q, vec![(NodeId(2), 2), (NodeId(3), 3)]);
        assert!(c.reopen(&1, vec![]).is_none(), "too few left: open again");
        assert!(c.add(1, NodeId(4), 4).is_none());
        assert_eq!(c.count(&1), 1);
    }

    #[test]
    fn bounded_and_prunable() {
        let mut c: Collector<u64, ()> = Collector::new(2, 2);
        c.add(1, NodeId(0), ());
        c.add(2, NodeId(0), ());
        c.add(3, NodeId(0), ());
        assert_eq!(c.len(), 2);
        assert_eq!(c.count(&1), 0, "oldest evicted");
        assert!(c.add(0, NodeId(1), ()).is_none(), "too old to take a slot");
        c.prune_below(&3);
        assert_eq!(c.len(), 1);
    }
}
