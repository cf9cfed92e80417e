//! Percentiles of recorded samples.

/// Summary of a sample set, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
    /// Number of samples.
    pub count: usize,
}

/// Computes percentiles (nearest rank) of `samples`, sorting them.
pub fn percentiles(samples: &mut [u64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let rank = |fraction: f64| {
        let index = ((samples.len() as f64) * fraction).ceil() as usize;
        samples[index.clamp(1, samples.len()) - 1]
    };
    Percentiles {
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: samples[samples.len() - 1],
        count: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let summary = percentiles(&mut samples);
        assert_eq!(
            (summary.p50, summary.p90, summary.p99, summary.max),
            (50, 90, 99, 100)
        );
        assert_eq!(summary.count, 100);
        assert_eq!(percentiles(&mut []), Percentiles::default());
    }
}
