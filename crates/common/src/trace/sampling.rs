//! Which traces are recorded, and where the failed spans of the others go.
//!
//! The decision is made once per hop, before any span exists: a trace is
//! sampled when its caller sampled it or when its id falls under the
//! ratio (the same test on every hop, as OpenTelemetry's
//! `TraceIdRatioBased` makes it). Only sampled traces get `tracing` spans;
//! the OpenTelemetry SDK therefore samples everything it is shown. The
//! other traces carry their ids from hop to hop, and a span of theirs that
//! fails is written straight to the exporter's processor by the [`Decider`].

use std::{fmt, sync::Arc, time::Duration};

use opentelemetry::{Context, InstrumentationScope, trace::TraceId};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{IdGenerator, RandomIdGenerator, Span, SpanData, SpanProcessor},
};
use tracing::Subscriber;
use tracing_subscriber::Layer;

/// The share of traces recorded: those whose id's low 63 bits fall under a
/// threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRatio {
    /// Trace ids whose low 63 bits are below this are sampled.
    threshold: u64,
}

impl TraceRatio {
    /// Samples `ratio` of traces (clamped to 0..=1).
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        // 2^63 is exact as an f64; the product saturates at u64::MAX.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let threshold = (ratio * 9_223_372_036_854_775_808.0) as u64;
        Self { threshold }
    }

    /// Whether the ratio alone samples `trace_id`.
    pub fn samples(&self, trace_id: TraceId) -> bool {
        let bytes = trace_id.to_bytes();
        let mut low = [0_u8; 8];
        low.copy_from_slice(&bytes[8..]);
        (u64::from_be_bytes(low) >> 1) < self.threshold
    }
}

/// What a hop needs to open a span: the ratio, fresh ids, and where the
/// failed spans of unsampled traces are sent.
pub(crate) struct Decider {
    /// The share of traces recorded.
    pub(crate) ratio: TraceRatio,
    /// Fresh trace and span ids.
    pub(crate) ids: RandomIdGenerator,
    /// The exporting processor, shared with the tracer provider.
    sink: Arc<dyn SpanProcessor>,
    /// The scope exported spans name.
    pub(crate) scope: InstrumentationScope,
}

impl fmt::Debug for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decider")
            .field("ratio", &self.ratio)
            .finish_non_exhaustive()
    }
}

impl Decider {
    /// Sends a finished span to the exporter.
    pub(crate) fn export(&self, span: SpanData) {
        self.sink.on_end(span);
    }

    /// A trace id for a trace that starts here.
    pub(crate) fn new_trace_id(&self) -> TraceId {
        self.ids.new_trace_id()
    }
}

/// A layer that records nothing: it carries the [`Decider`] in the
/// subscriber, where every hop finds it through the current dispatcher.
#[derive(Debug, Clone)]
pub struct Sampling(Arc<Decider>);

impl Sampling {
    /// Samples `ratio` of traces and sends failed unsampled spans to `sink`.
    pub(crate) fn new(
        ratio: f64,
        sink: Arc<dyn SpanProcessor>,
        scope: InstrumentationScope,
    ) -> Self {
        Self(Arc::new(Decider {
            ratio: TraceRatio::new(ratio),
            ids: RandomIdGenerator::default(),
            sink,
            scope,
        }))
    }

    /// The decider of the current subscriber; `None` when tracing is off.
    pub(crate) fn current() -> Option<Arc<Decider>> {
        tracing::dispatcher::get_default(|dispatch| {
            dispatch
                .downcast_ref::<Sampling>()
                .map(|sampling| Arc::clone(&sampling.0))
        })
    }
}

impl<S: Subscriber> Layer<S> for Sampling {}

/// Hands the tracer provider's spans to a processor the [`Decider`] shares.
#[derive(Debug)]
pub(crate) struct Shared(pub(crate) Arc<dyn SpanProcessor>);

impl SpanProcessor for Shared {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_bounds_the_low_bits_of_the_trace_id() {
        let low = TraceId::from_hex("ffffffffffffffff0000000000000001").expect("hex");
        let high = TraceId::from_hex("0000000000000000ffffffffffffffff").expect("hex");
        assert!(TraceRatio::new(0.5).samples(low));
        assert!(!TraceRatio::new(0.5).samples(high));
        assert!(TraceRatio::new(1.0).samples(high));
        assert!(!TraceRatio::new(0.0).samples(low));
        assert!(!TraceRatio::new(f64::NAN).samples(low));
    }
}
