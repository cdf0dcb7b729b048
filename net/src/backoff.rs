//! Reconnect backoff: exponential, bounded, with jitter from a seeded generator.
//!
//! The n-th consecutive failure waits a random time in `[d/2, d]` where
//! `d = min(max, min · 2^n)` ("equal jitter"): never less than half the nominal delay,
//! so a dead peer is not hammered, and spread so that a restarted node is not dialled by
//! every peer at the same instant. The generator is xorshift64*, seeded by the caller
//! (from the kernel's randomness in the network, from a constant in tests).

use std::time::Duration;

/// The first delay after a failure (configurable in [`NetConfig`](crate::NetConfig)).
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The largest delay between two attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The delays between connection attempts to one peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            failures: 0,
            rng: seed | 1,
        }
    }

    /// The delay to wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let shift = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let nominal = self.min.saturating_mul(1u32 << shift).min(self.max);
        let half = nominal / 2;
        let span = (nominal - half).as_nanos() as u64;
        half + Duration::from_nanos(if span == 0 {
            0
        } else {
            self.next_u64() % (span + 1)
        })
    }

    /// Back to the shortest delay (after a link was established).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_jitters_and_stays_bounded() {
        let min = Duration::from_millis(10);
        let max = Duration::from_millis(1000);
        let mut b = Backoff::new(min, max, 42);
        let mut nominal = min;
        for _ in 0..40 {
            let d = b.next_delay();
            assert!(
                d >= nominal / 2 && d <= nominal,
                "{d:?} outside [{:?}, {nominal:?}]",
                nominal / 2
            );
            nominal = (nominal * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay() <= min);
        // Same seed, same delays; another seed, other delays.
        let seq = |s| {
            let mut b = Backoff::new(min, max, s);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(seq(1), seq(1));
        assert_ne!(seq(1), seq(2));
    }
}
