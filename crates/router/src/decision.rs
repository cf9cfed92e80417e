//! The decision record in the compact form of the `x-switchyard-decision`
//! header, for keys allowed to see it:
//!
//! `strategy=latency,priority; order=a,b,c; skipped=d(health:breaker_open);
//! attempts=a(rate_limited,12ms),b(upstream_unavailable,30ms),c(ok,45ms)`
//!
//! An attempt's time is until it failed, or until its first message. The
//! whole record is in the usage event.

use std::{fmt::Write, time::Instant};

use switchyard_proto::v1::{Decision, RouteDecision};

use crate::{attempt::AttemptRecord, lifecycle, metrics::RouterMetrics};

/// What the client's answer says of how `route` was served: the answering
/// (last) attempt's deployment, how many attempts were made, its lifecycle
/// (a deprecated deployment's answers are counted and, once per process
/// and deployment, logged), and the compact decision record when the
/// caller may see it (`debug`).
pub fn route_decision(
    route: &str,
    decision: Option<&Decision>,
    attempts: &[AttemptRecord],
    debug: bool,
    metrics: &RouterMetrics,
) -> Option<RouteDecision> {
    let deployment = &attempts.last()?.deployment;
    let deprecation = lifecycle::deprecation(deployment);
    if deprecation.is_some() {
        metrics.deprecated_answer(deployment);
    }
    Some(RouteDecision {
        model: route.to_owned(),
        provider: deployment.provider.clone(),
        upstream_model: deployment.upstream_model.clone(),
        cache_hit: false,
        deployment_id: deployment.id.clone(),
        attempts: u32::try_from(attempts.len()).unwrap_or(u32::MAX),
        decision: match decision {
            Some(decision) if debug => compact(decision, attempts),
            _ => String::new(),
        },
        deprecated: deprecation.is_some(),
        sunset_unix: deprecation.flatten().unwrap_or(0),
    })
}

/// The compact form of `decision` and the attempts made so far.
pub fn compact(decision: &Decision, attempts: &[AttemptRecord]) -> String {
    let mut text = String::new();
    if !decision.rule.is_empty() {
        let _ = write!(text, "rule={}; ", decision.rule);
    }
    if !decision.policy.is_empty() {
        let _ = write!(text, "policy={}; ", decision.policy);
    }
    let _ = write!(
        text,
        "strategy={}; order={}",
        decision.strategies.join(","),
        decision.order.join(",")
    );
    if !decision.demoted.is_empty() {
        let _ = write!(text, "; demoted={}", decision.demoted.join(","));
    }
    if !decision.skipped.is_empty() {
        text.push_str("; skipped=");
        for (index, skipped) in decision.skipped.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            let _ = write!(
                text,
                "{}({}:{})",
                skipped.deployment_id, skipped.step, skipped.reason
            );
        }
    }
    if !attempts.is_empty() {
        text.push_str("; attempts=");
        for (index, attempt) in attempts.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            let until = attempt
                .ended
                .or(attempt.first_chunk_at)
                .unwrap_or_else(Instant::now);
            let outcome = attempt.outcome.map_or("ok", |class| class.as_str());
            let _ = write!(
                text,
                "{}({outcome},{}ms)",
                attempt.deployment.id,
                until.saturating_duration_since(attempt.started).as_millis()
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use switchyard_common::{ErrorClass, trace::HopSpan};
    use switchyard_proto::v1::{Deployment, SkippedDeployment, Usage};

    use super::*;

    fn attempt(id: &str, outcome: Option<ErrorClass>, millis: u64) -> AttemptRecord {
        let started = Instant::now();
        let at = started + Duration::from_millis(millis);
        AttemptRecord {
            deployment: Arc::new(Deployment {
                id: id.to_owned(),
                ..Deployment::default()
            }),
            started,
            first_chunk_at: outcome.is_none().then_some(at),
            ended: outcome.map(|_| at),
            outcome,
            usage: Usage::default(),
            upstream: None,
            credential: String::new(),
            reason: "first",
            span: HopSpan::none(),
            permit: None,
        }
    }

    #[test]
    fn names_the_strategies_order_skips_and_attempts() {
        let decision = Decision {
            strategies: vec!["latency".to_owned(), "priority".to_owned()],
            order: vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
            skipped: vec![SkippedDeployment {
                deployment_id: "d".to_owned(),
                step: "health".to_owned(),
                reason: "breaker_open".to_owned(),
            }],
            rule: String::new(),
            policy: "tier:free->cheap".to_owned(),
            demoted: vec!["c:first_token_p95=612ms".to_owned()],
        };
        let attempts = [
            attempt("a", Some(ErrorClass::RateLimited), 12),
            attempt("b", Some(ErrorClass::UpstreamUnavailable), 30),
            attempt("c", None, 45),
        ];
        assert_eq!(
            compact(&decision, &attempts),
            "policy=tier:free->cheap; strategy=latency,priority; order=a,b,c; \
             demoted=c:first_token_p95=612ms; skipped=d(health:breaker_open); \
             attempts=a(rate_limited,12ms),b(upstream_unavailable,30ms),c(ok,45ms)"
        );
    }
}
