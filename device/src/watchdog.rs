//! Frame watchdog: decides when a frame has run so much longer than usual that the pipeline
//! should be abandoned and rebuilt.
//!
//! "Usual" is the median of recent frame times, so the limit adapts to the board, the model
//! and thermal throttling; a floor keeps the first frames and microsecond-fast fixtures from
//! tripping it on scheduler noise.

use std::time::Duration;

use crate::latency::LatencyWindow;

/// Frames measured before the watchdog arms.
pub const WARM_UP: usize = 8;

#[derive(Debug, Clone)]
pub struct Watchdog {
    factor: u32,
    floor: Duration,
    window: LatencyWindow<64>,
    resets: u32,
}

impl Watchdog {
    /// Trip when a frame takes more than `factor` × the median, and at least `floor`.
    pub fn new(factor: u32, floor: Duration) -> Self {
        Self {
            factor: factor.max(1),
            floor,
            window: LatencyWindow::new(),
            resets: 0,
        }
    }

    /// Record a completed frame's time.
    pub fn record(&mut self, took: Duration) {
        self.window.record(took);
    }

    /// How long the frame in flight may take, or `None` while warming up.
    pub fn limit(&mut self) -> Option<Duration> {
        if self.window.len() < WARM_UP {
            return None;
        }
        let median = u64::from(self.window.percentile_us(50.0));
        let limit = Duration::from_micros(median.saturating_mul(u64::from(self.factor)));
        Some(limit.max(self.floor))
    }

    /// Whether a frame that has been running for `elapsed` should be abandoned; counts it.
    pub fn expired(&mut self, elapsed: Duration) -> bool {
        let expired = self.limit().is_some_and(|limit| elapsed > limit);
        if expired {
            self.resets = self.resets.wrapping_add(1);
        }
        expired
    }

    /// Pipeline resets triggered so far.
    pub fn resets(&self) -> u32 {
        self.resets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn arms_after_warm_up_and_trips_past_factor_times_median() {
        let mut w = Watchdog::new(4, Duration::ZERO);
        for _ in 0..WARM_UP - 1 {
            w.record(10 * MS);
        }
        assert_eq!(w.limit(), None);
        assert!(!w.expired(1000 * MS), "not armed yet");
        w.record(30 * MS);
        // Median of seven 10 ms and one 30 ms frame is 10 ms.
        assert_eq!(w.limit(), Some(40 * MS));
        assert!(!w.expired(40 * MS));
        assert!(w.expired(41 * MS));
        assert_eq!(w.resets(), 1);
    }

    #[test]
    fn floor_applies_to_fast_frames() {
        let mut w = Watchdog::new(3, 50 * MS);
        for _ in 0..WARM_UP {
            w.record(Duration::from_micros(100));
        }
        assert_eq!(w.limit(), Some(50 * MS));
        assert!(!w.expired(49 * MS));
    }
}
