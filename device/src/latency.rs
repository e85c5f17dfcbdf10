//! Rolling per-frame latency statistics over a fixed window, without allocation.

use std::time::Duration;

/// The last `N` latencies in microseconds, with percentiles over them.
#[derive(Debug, Clone)]
pub struct LatencyWindow<const N: usize> {
    ring: [u32; N],
    /// Scratch for selecting percentiles, so queries never allocate.
    scratch: [u32; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Default for LatencyWindow<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LatencyWindow<N> {
    pub const fn new() -> Self {
        Self {
            ring: [0; N],
            scratch: [0; N],
            len: 0,
            next: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_us(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    pub fn record_us(&mut self, us: u32) {
        if N == 0 {
            return;
        }
        self.ring[self.next] = us;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    /// Samples in the window.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `p`-th percentile (nearest rank, `p` in 0..=100) in microseconds; 0 when empty.
    pub fn percentile_us(&mut self, p: f64) -> u32 {
        if self.len == 0 {
            return 0;
        }
        let samples = &mut self.scratch[..self.len];
        samples.copy_from_slice(&self.ring[..self.len]);
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * self.len as f64).ceil() as usize;
        let index = rank.clamp(1, self.len) - 1;
        *samples.select_nth_unstable(index).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut w = LatencyWindow::<100>::new();
        assert_eq!(w.percentile_us(50.0), 0);
        for us in (1..=100).rev() {
            w.record_us(us);
        }
        assert_eq!(w.percentile_us(50.0), 50);
        assert_eq!(w.percentile_us(99.0), 99);
        assert_eq!(w.percentile_us(100.0), 100);
        assert_eq!(w.percentile_us(0.0), 1);
    }

    #[test]
    fn window_forgets_old_samples() {
        let mut w = LatencyWindow::<4>::new();
        for us in [1000, 1000, 1000, 1000, 1, 2, 3] {
            w.record_us(us);
        }
        assert_eq!(w.len(), 4);
        // Window holds 1000, 1, 2, 3.
        assert_eq!(w.percentile_us(50.0), 2);
        assert_eq!(w.percentile_us(100.0), 1000);
        w.record(Duration::from_millis(5));
        assert_eq!(w.percentile_us(100.0), 5000);
    }
}
