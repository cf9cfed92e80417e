//! The router's spans: one per request (the router's hop), and one per
//! attempt under it, so fallbacks show as sibling attempts. Each hands its
//! own `traceparent` on to the hop below it: the cache under the request,
//! the adapters under each attempt. With tracing off nothing is recorded;
//! of an unsampled trace only what a failure needs.

use std::sync::Arc;

use switchyard_common::{
    ErrorClass,
    trace::{HopSpan, Opening, SpanKind},
};
use switchyard_proto::v1::{Deployment, RequestContext, UsageEvent};

/// Opens the span of one request for `model`, as the child of the caller's
/// span, and makes `context` name it to the hops below.
pub fn request(operation: &'static str, context: &mut RequestContext, model: &str) -> HopSpan {
    let span = HopSpan::follow_context(context, move || {
        let name = match operation {
            "chat" => "route chat",
            "embeddings" => "route embeddings",
            _ => "route",
        };
        Opening::new(name, SpanKind::Server).with("gen_ai.operation.name", operation)
    });
    // An unsampled span gets the model when it fails (`settled`).
    if span.is_sampled() {
        span.record("gen_ai.request.model", model.to_owned());
    }
    span.hand_on(context);
    span
}

/// Names the plan's candidates on the request's span, in the order they
/// would be tried.
pub fn planned(span: &HopSpan, route: &str, snapshot_version: u64, candidates: &[&str]) {
    // An unsampled span is exported only if it fails, and `settled` names
    // the route then.
    if !span.is_sampled() {
        return;
    }
    span.record("switchyard.route", route.to_owned());
    span.record(
        "switchyard.snapshot_version",
        i64::try_from(snapshot_version).unwrap_or(i64::MAX),
    );
    span.record_strings(
        "switchyard.candidates",
        candidates.iter().map(|&id| id.to_owned()).collect(),
    );
}

/// Opens the span of an attempt at `deployment` under the request's span
/// `parent`, made for `reason`; `position` counts from 0 (the first).
pub fn attempt(
    parent: &HopSpan,
    deployment: &Arc<Deployment>,
    position: usize,
    reason: &'static str,
) -> HopSpan {
    let deployment = Arc::clone(deployment);
    parent.child(move || {
        Opening::new(format!("attempt {}", deployment.id), SpanKind::Internal)
            .with("switchyard.deployment", deployment.id.clone())
            .with("switchyard.provider", deployment.provider.clone())
            .with("gen_ai.request.model", deployment.upstream_model.clone())
            .with("switchyard.attempt.reason", reason)
            .with(
                "switchyard.attempt.position",
                i64::try_from(position).unwrap_or(i64::MAX),
            )
    })
}

/// Records the settled request on its span: where it went, what it used
/// and cost, and how it ended. An unsampled request that answered records
/// nothing: its span is not exported.
pub fn settled(span: &HopSpan, event: &UsageEvent, status: Option<ErrorClass>, cost: Option<&str>) {
    if !span.is_sampled() && status.is_none() {
        return;
    }
    if !span.is_sampled() {
        span.record("gen_ai.request.model", event.model.clone());
        span.record("switchyard.route", event.route_id.clone());
    }
    if !event.deployment_id.is_empty() {
        span.record("switchyard.deployment", event.deployment_id.clone());
        span.record("switchyard.provider", event.provider.clone());
        span.record("gen_ai.response.model", event.upstream_model.clone());
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
        span.record("switchyard.cost", cost.to_owned());
    }
    if let Some(class) = status {
        span.fail(class.as_str());
    }
}
