//! Traces: one span per service hop and per upstream attempt, exported over
//! OTLP/gRPC when `telemetry.otlp_endpoint` is set, and nothing at all when
//! it is not.
//!
//! Spans are ordinary `tracing` spans with the target [`TARGET`]: the
//! OpenTelemetry layer sees only those, and the log lines never do. A hop
//! names its caller's span with [`follow`] (from the `traceparent` in the
//! request's context, whichever way the call came: gRPC or in process),
//! and names its own span to the hops below with [`hand_on`], so one trace
//! crosses every service in both modes.
//!
//! Sampling is decided per trace: a trace is kept when its caller sampled
//! it (the `traceparent`'s flag) or when its id falls under
//! `telemetry.trace_sample_ratio`; every hop decides the same from the id.
//! Spans of the other traces are still recorded, and the ones that end in
//! error are exported anyway ([`KeepSampledAndFailed`]), so a failed request
//! is visible whatever the ratio.

mod sampling;

use std::time::Duration;

use opentelemetry::{
    Context, KeyValue,
    trace::{
        SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
        TracerProvider as _,
    },
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider},
};
use switchyard_proto::v1::RequestContext;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use sampling::{KeepSampledAndFailed, TraceRatio};

/// The `tracing` target of exported spans.
pub const TARGET: &str = "switchyard_span";

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

/// Builds the tracer provider exporting to `export.endpoint`. Call it inside
/// a Tokio runtime: the gRPC channel lives on it.
pub fn provider(export: &TraceExport) -> Result<SdkTracerProvider, TraceError> {
    let endpoint_error = |reason: String| TraceError::Endpoint {
        endpoint: export.endpoint.clone(),
        reason,
    };
    if !export.endpoint.starts_with("http://") && !export.endpoint.starts_with("https://") {
        return Err(endpoint_error(
            "it must start with http:// or https://".to_owned(),
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(export.endpoint.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|error| endpoint_error(error.to_string()))?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(export.batch_delay)
                .build(),
        )
        .build();
    Ok(SdkTracerProvider::builder()
        .with_sampler(TraceRatio::new(export.sample_ratio))
        .with_span_processor(KeepSampledAndFailed::new(batch))
        .with_resource(
            Resource::builder_empty()
                .with_service_name(export.service_name.clone())
                .with_attribute(KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION").to_owned(),
                ))
                .build(),
        )
        .build())
}

/// The `tracing` layer that turns [`TARGET`] spans into OpenTelemetry spans
/// of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("switchyard"))
        // Attributes name the request, not the code: no file, line or
        // thread, and no busy/idle timings (they cost per poll).
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
}

/// Makes `span` the child of the span `context` names: the caller's, across
/// a gRPC or in-process call. Nothing happens when the span is disabled
/// (tracing is off) or the context names no span.
pub fn follow(span: &Span, context: &RequestContext) {
    follow_remote(span, &context.traceparent, &context.tracestate);
}

/// Makes `span` the child of the span a W3C `traceparent` (with its
/// `tracestate`) names; a malformed or empty one is ignored, and `span`
/// starts a trace of its own.
pub fn follow_remote(span: &Span, traceparent: &str, tracestate: &str) {
    if span.is_disabled() {
        return;
    }
    if let Some(parent) = parse(traceparent, tracestate) {
        // Fails only when the span is disabled or already started; then
        // it keeps the parent it has.
        let _kept = span.set_parent(Context::new().with_remote_span_context(parent));
    }
}

/// Makes `context` name `span` as the parent of the hops below. Nothing
/// happens when the span is disabled: the context keeps what it carries.
pub fn hand_on(span: &Span, context: &mut RequestContext) {
    if let Some((traceparent, tracestate)) = propagation(span) {
        context.traceparent = traceparent;
        context.tracestate = tracestate;
    }
}

/// The W3C `traceparent` and `tracestate` naming `span`; `None` when the
/// span is disabled.
pub fn propagation(span: &Span) -> Option<(String, String)> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        (
            traceparent(&span_context),
            span_context.trace_state().header(),
        )
    })
}

/// Marks `span` failed with an error class (`error.type`): its status is
/// `ERROR`, so it is exported whatever the sampling.
pub fn fail(span: &Span, class: &str) {
    if span.is_disabled() {
        return;
    }
    span.set_attribute("error.type", class.to_owned());
    span.set_status(Status::error(class.to_owned()));
}

/// Sets a string-array attribute on `span` (such as
/// `gen_ai.response.finish_reasons`), which `tracing` fields cannot carry.
pub fn set_strings(span: &Span, key: &'static str, values: Vec<String>) {
    if span.is_disabled() {
        return;
    }
    let values = values.into_iter().map(Into::into).collect();
    span.set_attribute(
        key,
        opentelemetry::Value::Array(opentelemetry::Array::String(values)),
    );
}

/// A version-00 `traceparent` naming `span_context`.
fn traceparent(span_context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    )
}

/// Reads a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, ids
/// not all zero) as a remote span context.
pub fn parse(traceparent: &str, tracestate: &str) -> Option<SpanContext> {
    let mut parts = traceparent.split('-');
    let (Some("00"), Some(trace_id), Some(span_id), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let lower_hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !(lower_hex(trace_id, 32) && lower_hex(span_id, 16) && lower_hex(flags, 2)) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let state = tracestate.parse::<TraceState>().unwrap_or_default();
    let parent = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()),
        true,
        state,
    );
    parent.is_valid().then_some(parent)
}

#[cfg(test)]
mod tests {
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
    fn a_disabled_span_changes_no_context() {
        let mut context = RequestContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ..RequestContext::default()
        };
        let before = context.clone();
        hand_on(&Span::none(), &mut context);
        assert_eq!(context, before);
        assert!(propagation(&Span::none()).is_none());
    }
}
