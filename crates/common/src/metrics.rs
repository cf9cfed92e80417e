//! Prometheus metrics: one registry per process, shared bucket layouts,
//! and bounded labels.
//!
//! Each service registers its own series in the process's
//! [`MetricsRegistry`] while it is built (every name gets the `switchyard_`
//! prefix); the admin listener encodes the registry on each scrape. Series
//! that several services feed (the snapshot version every snapshot holder
//! reports) are registered here once, so an all-in-one process exports
//! each name once. Names, labels and the series later capabilities add are
//! listed in `docs/metrics.md`.
//!
//! Recording is a few atomic operations and, for a labelled family, one
//! hash lookup under a read lock; nothing waits for a scrape.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

pub use prometheus_client;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::gauge::ConstGauge,
    registry::Registry,
};

use crate::snapshot::SnapshotMetrics;

/// The prefix of every series name.
pub const PREFIX: &str = "switchyard";

/// The registry of one process, with the series several services share.
#[derive(Debug)]
pub struct MetricsRegistry {
    registry: Registry,
    snapshots: SnapshotMetrics,
    teams: Arc<BoundedLabel>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new(DEFAULT_TEAM_LABEL_LIMIT)
    }
}

/// How many teams get a label value of their own by default.
pub const DEFAULT_TEAM_LABEL_LIMIT: usize = 100;

impl MetricsRegistry {
    /// A registry holding only the shared series; at most
    /// `team_label_limit` teams get a `team` label value of their own.
    pub fn new(team_label_limit: usize) -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let snapshots = SnapshotMetrics::register(&mut registry);
        Self {
            registry,
            snapshots,
            teams: Arc::new(BoundedLabel::new(team_label_limit)),
        }
    }

    /// The process's `team` label, shared by every series that has one.
    pub fn team_label(&self) -> Arc<BoundedLabel> {
        self.teams.clone()
    }

    /// Where a service registers its own series.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The snapshot series, for each snapshot holder.
    pub fn snapshots(&self) -> SnapshotMetrics {
        self.snapshots.clone()
    }

    /// The finished registry, for the admin listener to encode.
    pub fn finish(self) -> Arc<Registry> {
        Arc::new(self.registry)
    }
}

/// Encodes `registry` in the Prometheus text format.
pub fn encode_text(registry: &Registry) -> String {
    let mut text = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
    text
}

/// The `Content-Type` of [`encode_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Buckets for request latencies, in seconds: 10 µs doubling to 84 s.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(10e-6, 2.0, 24)
}

/// Buckets for the gateway's own added time, in seconds: 1 µs growing by
/// half each step to 0.29 s, fine enough to tell 80 µs from 120 µs.
pub fn overhead_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(1e-6, 1.5, 32)
}

/// The label value for values past a [`BoundedLabel`]'s cap.
pub const OTHER: &str = "other";

/// A label whose values are capped: the first `cap` distinct values are
/// kept, every later one is reported as `other`, so a label fed by
/// configuration (teams) cannot grow the series without bound.
#[derive(Debug)]
pub struct BoundedLabel {
    cap: usize,
    seen: RwLock<HashSet<String>>,
}

impl BoundedLabel {
    /// A label keeping at most `cap` distinct values.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            seen: RwLock::new(HashSet::new()),
        }
    }

    /// The value to report for `value`: itself while it is one of the
    /// first `cap` seen, `other` after.
    pub fn value(&self, value: &str) -> String {
        let known = self
            .seen
            .read()
            .map(|seen| seen.contains(value))
            .unwrap_or(false);
        if known {
            return value.to_owned();
        }
        let Ok(mut seen) = self.seen.write() else {
            return OTHER.to_owned();
        };
        if seen.contains(value) || seen.len() < self.cap {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        OTHER.to_owned()
    }
}

/// A gauge read at scrape time from a function (a queue's length), so the
/// data path does no bookkeeping for it.
pub struct GaugeFn {
    name: &'static str,
    help: &'static str,
    read: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for GaugeFn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GaugeFn")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl GaugeFn {
    /// Registers a gauge `name` in `registry` whose value is `read()` at
    /// each scrape.
    pub fn register(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> i64 + Send + Sync + 'static,
    ) {
        registry.register_collector(Box::new(Self {
            name,
            help,
            read: Box::new(read),
        }));
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = ConstGauge::new((self.read)());
        let metric = encoder.encode_descriptor(self.name, self.help, None, gauge.metric_type())?;
        gauge.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn a_bounded_label_reports_values_past_its_cap_as_other() {
        let label = BoundedLabel::new(2);
        assert_eq!(label.value("a"), "a");
        assert_eq!(label.value("b"), "b");
        assert_eq!(label.value("c"), OTHER);
        // Values seen before the cap keep their own series.
        assert_eq!(label.value("a"), "a");
        assert_eq!(label.value("b"), "b");
    }

    #[test]
    fn series_carry_the_prefix_and_gauge_functions_are_read_at_scrape_time() {
        let mut metrics = MetricsRegistry::default();
        let counter: Counter = Counter::default();
        metrics
            .registry()
            .register("widgets", "Widgets made.", counter.clone());
        let depth = Arc::new(std::sync::atomic::AtomicI64::new(3));
        let read = depth.clone();
        GaugeFn::register(metrics.registry(), "queue_depth", "Waiting", move || {
            read.load(std::sync::atomic::Ordering::Relaxed)
        });
        counter.inc();
        let registry = metrics.finish();
        let text = encode_text(&registry);
        assert!(text.contains("switchyard_widgets_total 1"), "{text}");
        assert!(text.contains("switchyard_queue_depth 3"), "{text}");
        depth.store(9, std::sync::atomic::Ordering::Relaxed);
        assert!(encode_text(&registry).contains("switchyard_queue_depth 9"));
    }

    #[test]
    fn overhead_buckets_resolve_tens_of_microseconds() {
        let buckets: Vec<f64> = overhead_buckets().collect();
        let between = buckets
            .iter()
            .filter(|bound| (80e-6..=160e-6).contains(*bound))
            .count();
        assert!(between >= 2, "{buckets:?}");
        assert!(buckets.last().is_some_and(|last| *last > 0.25));
    }
}
