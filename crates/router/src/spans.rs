//! The router's spans: one per request (the router's hop), and one per
//! attempt under it, so fallbacks show as sibling attempts. Each hands its
//! own `traceparent` on to the hop below it: the cache under the request,
//! the adapters under each attempt. With tracing off every span is
//! disabled and nothing is recorded.

use switchyard_common::{ErrorClass, trace};
use switchyard_proto::v1::{Deployment, RequestContext, UsageEvent};
use tracing::{Span, field::Empty};

/// Opens the span of one request for `model`, as the child of the caller's
/// span, and makes `context` name it to the hops below.
pub fn request(operation: &'static str, context: &mut RequestContext, model: &str) -> Span {
    let span = tracing::info_span!(
        target: trace::TARGET,
        "router",
        otel.name = %format_args!("route {operation}"),
        otel.kind = "server",
        gen_ai.operation.name = operation,
        gen_ai.request.model = model,
        switchyard.request_id = %context.request_id,
        switchyard.route = Empty,
        switchyard.snapshot_version = Empty,
        switchyard.deployment = Empty,
        switchyard.provider = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        switchyard.cache.hit = Empty,
        switchyard.attempts = Empty,
        switchyard.cost = Empty,
    );
    trace::follow(&span, context);
    trace::hand_on(&span, context);
    span
}

/// Names the plan's candidates on the request's span, in the order they
/// would be tried.
pub fn planned(span: &Span, route: &str, snapshot_version: u64, candidates: &[&str]) {
    if span.is_disabled() {
        return;
    }
    span.record("switchyard.route", route);
    span.record(
        "switchyard.snapshot_version",
        i64::try_from(snapshot_version).unwrap_or(i64::MAX),
    );
    trace::set_strings(
        span,
        "switchyard.candidates",
        candidates.iter().map(|&id| id.to_owned()).collect(),
    );
}

/// Opens the span of an attempt at `deployment` under the request's span
/// `parent`; `position` counts from 0 (the first choice).
pub fn attempt(parent: &Span, deployment: &Deployment, position: usize) -> Span {
    tracing::info_span!(
        target: trace::TARGET,
        parent: parent,
        "attempt",
        otel.name = %format_args!("attempt {}", deployment.id),
        otel.kind = "internal",
        switchyard.deployment = %deployment.id,
        switchyard.provider = %deployment.provider,
        gen_ai.request.model = %deployment.upstream_model,
        switchyard.attempt.reason = if position == 0 { "first" } else { "fallback" },
        switchyard.attempt.position = i64::try_from(position).unwrap_or(i64::MAX),
    )
}

/// Records the settled request on its span: where it went, what it used
/// and cost, and how it ended.
pub fn settled(span: &Span, event: &UsageEvent, status: Option<ErrorClass>, cost: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if !event.deployment_id.is_empty() {
        span.record("switchyard.deployment", event.deployment_id.as_str());
        span.record("switchyard.provider", event.provider.as_str());
        span.record("gen_ai.response.model", event.upstream_model.as_str());
    }
    if let Some(usage) = &event.usage {
        span.record("gen_ai.usage.input_tokens", i64::from(usage.prompt_tokens));
        span.record(
            "gen_ai.usage.output_tokens",
            i64::from(usage.completion_tokens),
        );
    }
    span.record("switchyard.cache.hit", event.cache_hit);
    span.record(
        "switchyard.attempts",
        i64::try_from(event.attempts.len()).unwrap_or(i64::MAX),
    );
    if let Some(cost) = cost {
        span.record("switchyard.cost", cost);
    }
    if let Some(class) = status {
        trace::fail(span, class.as_str());
    }
}
