//! Retry delays: exponential from a base (250 ms for reconnects) up to a
//! bound, each drawn in [½, 1] of its bound so many clients do not retry in
//! step, reset once an attempt works. The exchange connectors use it for
//! reconnects, the orchestrator for job retries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataflows::sim::Rng;

/// Jittered exponential retry delays.
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
    rng: Rng,
}

/// First reconnect delay bound.
const BACKOFF_BASE: Duration = Duration::from_millis(250);

impl Backoff {
    /// Reconnect delays from 250 ms up to `max`.
    pub fn new(max: Duration) -> Self {
        Self::with_base(BACKOFF_BASE, max)
    }

    /// Delays from `base` up to `max`.
    pub fn with_base(base: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Backoff {
            attempt: 0,
            base,
            max,
            rng: Rng::new(seed),
        }
    }

    /// The next delay: uniform in [½, 1] × min(max, base × 2^attempt).
    pub fn next_delay(&mut self) -> Duration {
        let bound = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        bound.mul_f64(0.5 + 0.5 * self.rng.uniform())
    }

    /// A connection worked: start again from the smallest delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(125) && d[0] <= BACKOFF_BASE);
        assert!(d[3] >= Duration::from_millis(1000));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        b.reset();
        assert!(b.next_delay() <= BACKOFF_BASE);
    }
}
