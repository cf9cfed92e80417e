//! Which spans are recorded and which are exported.

use std::time::Duration;

use opentelemetry::{
    Context, KeyValue,
    trace::{Link, SpanKind, Status, TraceContextExt, TraceId},
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanProcessor},
};

/// The head-sampling decision: a trace is sampled when the caller sampled
/// it or when its id falls under the ratio (the same test on every hop, as
/// OpenTelemetry's `TraceIdRatioBased` makes it). Spans of other traces are
/// recorded but not sampled, so [`KeepSampledAndFailed`] can still export
/// the ones that fail.
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

impl ShouldSample for TraceRatio {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|context| context.has_active_span())
            .map(|context| context.span().span_context().clone());
        let sampled =
            parent.as_ref().is_some_and(|parent| parent.is_sampled()) || self.samples(trace_id);
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::RecordOnly
            },
            attributes: Vec::new(),
            trace_state: parent
                .map(|parent| parent.trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

/// Passes on to `inner` the spans of sampled traces and the spans that
/// ended in error; drops the rest.
#[derive(Debug)]
pub struct KeepSampledAndFailed<P> {
    inner: P,
}

impl<P> KeepSampledAndFailed<P> {
    /// Filters what reaches `inner`.
    pub fn new(inner: P) -> Self {
        Self { inner }
    }
}

impl<P: SpanProcessor> SpanProcessor for KeepSampledAndFailed<P> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() || matches!(span.status, Status::Error { .. }) {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing::Span as TracingSpan;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::trace::{TARGET, fail, follow_remote, layer, propagation};

    /// Keeps every span it is handed.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl Kept {
        fn names(&self) -> Vec<String> {
            let spans = self.0.lock().expect("not poisoned");
            spans.iter().map(|span| span.name.to_string()).collect()
        }
    }

    impl SpanProcessor for Kept {
        fn on_start(&self, _span: &mut Span, _cx: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().expect("not poisoned").push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    fn traced(ratio: f64, run: impl FnOnce()) -> Kept {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(TraceRatio::new(ratio))
            .with_span_processor(KeepSampledAndFailed::new(kept.clone()))
            .build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, run);
        kept
    }

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

    #[test]
    fn unsampled_traces_export_only_their_failed_spans() {
        let kept = traced(0.0, || {
            let root = tracing::info_span!(target: TARGET, "root");
            let ok = tracing::info_span!(target: TARGET, parent: &root, "ok attempt");
            let failed = tracing::info_span!(target: TARGET, parent: &root, "failed attempt");
            fail(&failed, "rate_limited");
            fail(&root, "rate_limited");
            drop((ok, failed, root));
            let quiet = tracing::info_span!(target: TARGET, "quiet");
            drop(quiet);
        });
        let mut names = kept.names();
        names.sort();
        assert_eq!(names, ["failed attempt", "root"]);
    }

    #[test]
    fn a_sampled_caller_is_followed_and_its_trace_kept() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut handed_on = None;
        let kept = traced(0.0, || {
            let span = tracing::info_span!(target: TARGET, "hop");
            follow_remote(&span, parent, "");
            handed_on = propagation(&span);
            let unsampled = tracing::info_span!(target: TARGET, "unsampled hop");
            follow_remote(&unsampled, &parent.replace("-01", "-00"), "");
            drop((span, unsampled));
        });
        assert_eq!(kept.names(), ["hop"]);
        let spans = kept.0.lock().expect("not poisoned");
        let hop = &spans[0];
        assert_eq!(
            hop.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(hop.parent_span_id.to_string(), "00f067aa0ba902b7");
        let (traceparent, _) = handed_on.expect("a span of the trace");
        assert_eq!(
            traceparent,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                hop.span_context.span_id()
            )
        );
    }

    #[test]
    fn without_the_layer_spans_are_disabled() {
        let span = TracingSpan::none();
        assert!(propagation(&span).is_none());
    }
}
