//! The event queue: a min-heap ordered by (virtual time, insertion sequence).
//!
//! The insertion sequence breaks ties between events scheduled for the same instant, in
//! the order they were scheduled. Together with a single-threaded driver and seeded
//! randomness, that makes the order of events — and so the whole run — a function of
//! the seed alone.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual time in nanoseconds since the start of the run.
pub type Time = u64;

/// A heap entry: small and `Copy`, so sifting moves 24 bytes, not whole events (a
/// message can be hundreds of bytes); the event itself waits in a slot.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    time: Time,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we pop the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// A deterministic priority queue of events.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }

    /// Schedules `event` at `time`; among events of equal time, first scheduled, first out.
    pub fn push(&mut self, time: Time, event: E) {
        let seq = self.seq;
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(event);
                s
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.heap.push(Entry { time, seq, slot });
    }

    /// The earliest event, with its time and sequence number.
    pub fn pop(&mut self) -> Option<(Time, u64, E)> {
        let e = self.heap.pop()?;
        let event = self.slots[e.slot as usize]
            .take()
            .expect("a queued slot holds its event");
        self.free.push(e.slot);
        Some((e.time, e.seq, event))
    }

    pub fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|e| e.time)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_insertion() {
        let mut q = EventQueue::new();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        q.push(3, "x");
        let out: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, _, e)| e)).collect();
        assert_eq!(out, vec!["a", "b", "x", "c", "d"]);
    }
}
