//! The view-timeout policy shared by the partially synchronous protocols: a base timeout
//! doubled after every view that ended without progress, capped, and reset by progress.

use std::time::Duration;

/// Exponential-backoff view timer policy.
#[derive(Clone, Debug)]
pub struct Pacemaker {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Pacemaker {
    pub fn new(base: Duration, max: Duration) -> Self {
        Pacemaker {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// How long the current view may last.
    pub fn timeout(&self) -> Duration {
        let factor = 1u32 << self.failures.min(16);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A view ended by a certificate: back to the base timeout.
    pub fn on_progress(&mut self) {
        self.failures = 0;
    }

    /// A view ended by timeout: double the next one.
    pub fn on_timeout(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    pub fn consecutive_timeouts(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_caps_and_resets() {
        let mut p = Pacemaker::new(Duration::from_millis(100), Duration::from_millis(500));
        assert_eq!(p.timeout(), Duration::from_millis(100));
        p.on_timeout();
        assert_eq!(p.timeout(), Duration::from_millis(200));
        p.on_timeout();
        p.on_timeout();
        assert_eq!(p.timeout(), Duration::from_millis(500));
        for _ in 0..100 {
            p.on_timeout();
        }
        assert_eq!(p.timeout(), Duration::from_millis(500));
        p.on_progress();
        assert_eq!(p.timeout(), Duration::from_millis(100));
    }
}
