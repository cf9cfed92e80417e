//! [`LatencyWindow`]: a deployment's recent latencies (time to first
//! token, or whole answers), for percentiles: the p95 a route's SLO holds
//! deployments to, and the delay a hedge may wait.
//!
//! The window keeps the newest [`SAMPLES`] measurements no older than
//! [`HORIZON`], so a percentile describes the last few minutes. Fewer than
//! [`MIN_SAMPLES`] say nothing: a deployment demoted for a slow p95 gets
//! little traffic, its old samples age out, and it is judged afresh on
//! what it does next.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// Measurements kept per window.
pub const SAMPLES: usize = 256;
/// The oldest measurement that still counts.
pub const HORIZON: Duration = Duration::from_secs(300);
/// Measurements needed before a percentile is believed.
pub const MIN_SAMPLES: usize = 10;

/// Recent latencies of one deployment.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    samples: VecDeque<(Instant, Duration)>,
}

impl LatencyWindow {
    /// Adds a measurement taken at `now`.
    pub fn record(&mut self, now: Instant, latency: Duration) {
        if self.samples.len() == SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, latency));
    }

    /// The `quantile` (0.95 for p95) of the measurements younger than
    /// [`HORIZON`] at `now`; `None` with fewer than [`MIN_SAMPLES`].
    pub fn percentile(&mut self, now: Instant, quantile: f64) -> Option<Duration> {
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > HORIZON)
        {
            self.samples.pop_front();
        }
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut latencies: Vec<Duration> =
            self.samples.iter().map(|(_, latency)| *latency).collect();
        // Nearest rank: the smallest value with at least `quantile` of them at or below it.
        let rank = ((quantile * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        let (_, value, _) = latencies.select_nth_unstable(rank - 1);
        Some(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_need_enough_recent_samples() {
        let mut window = LatencyWindow::default();
        let start = Instant::now();
        for millis in 1..=9 {
            window.record(start, Duration::from_millis(millis));
        }
        assert_eq!(window.percentile(start, 0.95), None, "nine say nothing");
        for millis in 10..=100 {
            window.record(start, Duration::from_millis(millis));
        }
        assert_eq!(
            window.percentile(start, 0.95),
            Some(Duration::from_millis(95))
        );
        assert_eq!(
            window.percentile(start, 0.5),
            Some(Duration::from_millis(50))
        );
        // Past the horizon they age out.
        assert_eq!(
            window.percentile(start + HORIZON + Duration::from_secs(1), 0.95),
            None
        );
    }

    #[test]
    fn only_the_newest_samples_are_kept() {
        let mut window = LatencyWindow::default();
        let start = Instant::now();
        for _ in 0..SAMPLES {
            window.record(start, Duration::from_secs(9));
        }
        for _ in 0..SAMPLES {
            window.record(start, Duration::from_millis(20));
        }
        assert_eq!(
            window.percentile(start, 0.95),
            Some(Duration::from_millis(20))
        );
    }
}
