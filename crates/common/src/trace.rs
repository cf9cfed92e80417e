//! Traces: one span per service hop and per upstream attempt, exported over
//! OTLP/gRPC when `telemetry.otlp_endpoint` is set, and nothing at all when
//! it is not.
//!
//! A hop opens its span as a [`HopSpan`]: it follows its caller's span from
//! the `traceparent` in the request's context (whichever way the call came:
//! gRPC or in process) and names its own span to the hops below with
//! [`HopSpan::hand_on`], so one trace crosses every service in both modes.
//!
//! Sampling is decided per trace, before any span exists (see
//! [`sampling`]): a trace is kept when its caller sampled it or when its id
//! falls under `telemetry.trace_sample_ratio`. Spans of sampled traces are
//! ordinary `tracing` spans with the target [`TARGET`], which the
//! OpenTelemetry layer turns into exported spans and the log lines never
//! show. The other traces carry only their ids; a span of theirs that fails
//! is exported anyway, so a failed request is visible whatever the ratio.

mod hop;
mod sampling;

use std::{sync::Arc, time::Duration};

use opentelemetry::{
    InstrumentationScope, KeyValue,
    trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanExporter as _,
        SpanProcessor,
    },
};

pub use hop::{HopSpan, Opening};
pub use opentelemetry::trace::SpanKind;

use sampling::{Sampling, Shared};

/// The `tracing` target of exported spans.
pub const TARGET: &str = "switchyard_span";

/// The instrumentation scope of every span.
const SCOPE: &str = "switchyard";

/// How spans leave the process.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceExport {
    /// The OTLP/gRPC endpoint (`http://localhost:4317`).
    pub endpoint: String,
    /// Share of traces kept, from 0 to 1; failed spans are kept regardless.
    pub sample_ratio: f64,
    /// How long finished spans wait before they are sent in a batch.
    pub batch_delay: Duration,
    /// `service.name` of this process's spans.
    pub service_name: String,
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The endpoint is not a URL the exporter accepts.
    #[error("telemetry.otlp_endpoint `{endpoint}` is not usable: {reason}")]
    Endpoint {
        /// The configured endpoint.
        endpoint: String,
        /// What the exporter said.
        reason: String,
    },
}

/// The tracer provider and the sampling decision of a process.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
    sampling: Sampling,
}

impl Tracing {
    /// Exports to `export.endpoint`. Call it inside a Tokio runtime: the
    /// gRPC channel lives on it.
    pub fn start(export: &TraceExport) -> Result<Self, TraceError> {
        let endpoint_error = |reason: String| TraceError::Endpoint {
            endpoint: export.endpoint.clone(),
            reason,
        };
        if !export.endpoint.starts_with("http://") && !export.endpoint.starts_with("https://") {
            return Err(endpoint_error(
                "it must start with http:// or https://".to_owned(),
            ));
        }
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(export.endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| endpoint_error(error.to_string()))?;
        let resource = Resource::builder_empty()
            .with_service_name(export.service_name.clone())
            .with_attribute(KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION").to_owned(),
            ))
            .build();
        // Set here: the processor is shared, and the provider cannot.
        exporter.set_resource(&resource);
        let batch = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(export.batch_delay)
                    .build(),
            )
            .build();
        Ok(Self::assemble(
            Arc::new(batch),
            export.sample_ratio,
            resource,
        ))
    }

    /// Sends spans to `sink`, sampling `ratio` of traces.
    pub fn assemble(sink: Arc<dyn SpanProcessor>, ratio: f64, resource: Resource) -> Self {
        let provider = SdkTracerProvider::builder()
            // Only sampled traces get spans: the decision is the hop's.
            .with_sampler(Sampler::AlwaysOn)
            .with_span_processor(Shared(Arc::clone(&sink)))
            .with_resource(resource)
            .build();
        let scope = InstrumentationScope::builder(SCOPE).build();
        Self {
            provider,
            sampling: Sampling::new(ratio, sink, scope),
        }
    }

    /// The `tracing` layer that turns [`TARGET`] spans into OpenTelemetry
    /// spans and lets hops find the sampling decision.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        use tracing_subscriber::Layer as _;
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(SCOPE))
            // Attributes name the request, not the code: no file, line or
            // thread, and no busy/idle timings (they cost per poll).
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .and_then(self.sampling.clone())
    }

    /// Sends the spans still queued and stops exporting.
    pub fn shutdown(&self) -> OTelSdkResult {
        self.provider.shutdown()
    }
}

/// A version-00 `traceparent` naming `span_context`.
fn traceparent(span_context: &SpanContext) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    fn hex(text: &mut [u8], bytes: &[u8]) {
        for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
    }
    let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex(&mut text[3..35], &span_context.trace_id().to_bytes());
    hex(&mut text[36..52], &span_context.span_id().to_bytes());
    hex(&mut text[53..55], &[span_context.trace_flags().to_u8()]);
    // Only ASCII digits and dashes were written.
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

/// Reads a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, ids
/// not all zero) as a remote span context.
pub fn parse(traceparent: &str, tracestate: &str) -> Option<SpanContext> {
    let text = traceparent.as_bytes();
    if text.len() != 55 || !text.starts_with(b"00-") || text[35] != b'-' || text[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_bytes(lower_hex(&text[3..35])?);
    let span_id = SpanId::from_bytes(lower_hex(&text[36..52])?);
    let [flags] = lower_hex(&text[53..55])?;
    let state = if tracestate.is_empty() {
        TraceState::default()
    } else {
        tracestate.parse::<TraceState>().unwrap_or_default()
    };
    let parent = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        state,
    );
    parent.is_valid().then_some(parent)
}

/// The bytes `text` spells in lowercase hex, two digits a byte.
fn lower_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    fn digit(symbol: u8) -> Option<u8> {
        match symbol {
            b'0'..=b'9' => Some(symbol - b'0'),
            b'a'..=b'f' => Some(symbol - b'a' + 10),
            _ => None,
        }
    }
    if text.len() != 2 * N {
        return None;
    }
    let mut bytes = [0_u8; N];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry_sdk::trace::SpanData;
    use switchyard_proto::v1::RequestContext;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_traceparent_reads_back_as_it_was_written() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = parse(text, "vendor=1").expect("valid");
        assert_eq!(traceparent(&parsed), text);
        assert!(parsed.is_sampled() && parsed.is_remote());
        assert_eq!(parsed.trace_state().header(), "vendor=1");
        let unsampled = parse(&text.replace("-01", "-00"), "").expect("valid");
        assert!(!unsampled.is_sampled());
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for text in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            "00-zz-00f067aa0ba902b7-01",
        ] {
            assert!(parse(text, "").is_none(), "{text}");
        }
    }

    #[test]
    fn with_tracing_off_no_context_changes() {
        let mut context = RequestContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ..RequestContext::default()
        };
        let before = context.clone();
        let span = HopSpan::follow_context(&context, || Opening::new("hop", SpanKind::Server));
        assert!(span.is_off());
        span.hand_on(&mut context);
        assert_eq!(context, before);
        assert!(span.propagation().is_none());
        assert!(
            span.child(|| Opening::new("child", SpanKind::Internal))
                .is_off()
        );
    }

    /// Keeps every span it is handed.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl Kept {
        fn spans(&self) -> Vec<SpanData> {
            self.0.lock().expect("not poisoned").clone()
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = self
                .spans()
                .iter()
                .map(|span| span.name.to_string())
                .collect();
            names.sort();
            names
        }
    }

    impl SpanProcessor for Kept {
        fn on_start(
            &self,
            _span: &mut opentelemetry_sdk::trace::Span,
            _cx: &opentelemetry::Context,
        ) {
        }
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
        let tracing = Tracing::assemble(
            Arc::new(kept.clone()),
            ratio,
            Resource::builder_empty().build(),
        );
        let subscriber = tracing_subscriber::registry().with(tracing.layer());
        tracing::subscriber::with_default(subscriber, run);
        kept
    }

    fn server(name: &'static str) -> impl FnOnce() -> Opening {
        move || Opening::new(name, SpanKind::Server)
    }

    #[test]
    fn unsampled_traces_export_only_their_failed_spans_under_their_parents() {
        let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let mut handed_on = RequestContext::default();
        let kept = traced(0.0, || {
            let root = HopSpan::follow(client, "vendor=1", server("root"));
            root.record("http.route", "/v1/chat/completions");
            root.hand_on(&mut handed_on);
            let ok = root.child(|| Opening::new("ok attempt", SpanKind::Internal));
            let failed = root.child(|| {
                Opening::new("failed attempt", SpanKind::Internal)
                    .with("switchyard.deployment", "primary")
            });
            failed.fail("rate_limited");
            failed.fail("rate_limited");
            root.fail("rate_limited");
            drop((ok, failed, root));
            let quiet = HopSpan::follow("", "", server("quiet"));
            assert!(!quiet.is_off());
            drop(quiet);
        });
        assert_eq!(kept.names(), ["failed attempt", "root"]);
        let spans = kept.spans();
        let root = spans.iter().find(|span| span.name == "root").expect("root");
        let attempt = spans
            .iter()
            .find(|span| span.name != "root")
            .expect("attempt");
        assert_eq!(
            root.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(root.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert!(root.parent_span_is_remote);
        assert_eq!(attempt.parent_span_id, root.span_context.span_id());
        assert_eq!(
            attempt.span_context.trace_id(),
            root.span_context.trace_id()
        );
        assert!(matches!(
            attempt.status,
            opentelemetry::trace::Status::Error { .. }
        ));
        let attribute = |span: &SpanData, key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(
            attribute(attempt, "error.type").as_deref(),
            Some("rate_limited")
        );
        assert_eq!(
            attribute(attempt, "switchyard.deployment").as_deref(),
            Some("primary")
        );
        assert_eq!(
            attribute(root, "http.route").as_deref(),
            Some("/v1/chat/completions")
        );
        // The hops below see the unsampled root as their parent.
        assert_eq!(
            handed_on.traceparent,
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-00",
                root.span_context.span_id()
            )
        );
        assert_eq!(handed_on.tracestate, "vendor=1");
    }

    #[test]
    fn a_sampled_caller_is_followed_and_its_trace_kept() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut handed_on = None;
        let kept = traced(0.0, || {
            let span = HopSpan::follow(parent, "", server("hop"));
            let child = span
                .child(|| Opening::new("child", SpanKind::Client).with("gen_ai.system", "openai"));
            handed_on = span.propagation();
            drop((child, span));
        });
        assert_eq!(kept.names(), ["child", "hop"]);
        let spans = kept.spans();
        let hop = spans.iter().find(|span| span.name == "hop").expect("hop");
        let child = spans
            .iter()
            .find(|span| span.name == "child")
            .expect("child");
        assert_eq!(
            hop.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(hop.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(child.parent_span_id, hop.span_context.span_id());
        assert_eq!(child.span_kind, SpanKind::Client);
        assert!(
            child
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == "gen_ai.system")
        );
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
    fn the_ratio_starts_traces_of_its_own() {
        let kept = traced(1.0, || {
            let span = HopSpan::follow("", "", server("root"));
            let (traceparent, _) = span.propagation().expect("recorded");
            assert!(traceparent.ends_with("-01"), "{traceparent}");
        });
        assert_eq!(kept.names(), ["root"]);
    }
}
