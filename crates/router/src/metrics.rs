//! The router's series: one record per settled request (count, latency,
//! time to first token, attempts, tokens, cost) and per cache lookup.
//!
//! Labels are bounded by configuration: routes, deployments, providers and
//! models come from the snapshot, statuses from the error classes, and the
//! team label is capped (`telemetry.team_label_limit`). Key ids, user ids
//! and request ids are never labels.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use switchyard_common::{
    ErrorClass,
    metrics::{BoundedLabel, latency_buckets},
};
use switchyard_proto::v1::UsageEvent;

/// Where a request went and how it ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    route: String,
    deployment: String,
    provider: String,
    model: String,
    status: &'static str,
}

/// The deployment a stream came from.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    route: String,
    deployment: String,
    provider: String,
    model: String,
}

/// One upstream attempt: why it was made and how it ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    route: String,
    deployment: String,
    provider: String,
    /// `first`, `fallback` (later: `retry`, `hedge`, `shadow`).
    reason: &'static str,
    status: &'static str,
}

/// Tokens by kind, with the team that used them.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    deployment: String,
    provider: String,
    model: String,
    team: String,
    /// `input` or `output`.
    kind: &'static str,
}

/// Cost in one currency, with the team that spent it.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CostLabels {
    deployment: String,
    provider: String,
    model: String,
    team: String,
    currency: String,
}

/// A cache lookup's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    route: String,
    /// `exact` (later: `semantic`).
    kind: &'static str,
    /// `hit` or `miss`.
    result: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The router's series.
#[derive(Debug)]
pub struct RouterMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Histograms<RequestLabels>,
    time_to_first_token: Histograms<DeploymentLabels>,
    attempts: Family<AttemptLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<CostLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    cache_lookups: Family<CacheLabels, Counter>,
    teams: Arc<BoundedLabel>,
}

impl RouterMetrics {
    /// Registers the router's series in `registry`; team labels are
    /// capped by `teams`.
    pub fn register(registry: &mut Registry, teams: Arc<BoundedLabel>) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            time_to_first_token: Family::new_with_constructor(latency_histogram),
            attempts: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            cache_lookups: Family::default(),
            teams,
        };
        registry.register(
            "requests",
            "Requests the router settled, by route, answering deployment and status (`ok` or the error class)",
            metrics.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the router receiving a request to its last chunk",
            metrics.duration.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time from the router receiving a streamed request to its first chunk",
            metrics.time_to_first_token.clone(),
        );
        registry.register(
            "upstream_attempts",
            "Attempts at deployments, by why they were made and how they ended",
            metrics.attempts.clone(),
        );
        registry.register(
            "tokens",
            "Tokens of answering attempts, by kind (`input`, `output`)",
            metrics.tokens.clone(),
        );
        registry.register(
            "cost",
            "Cost of every attempt, in units of `currency`",
            metrics.cost.clone(),
        );
        registry.register(
            "cache_lookups",
            "Response cache lookups, by kind and result",
            metrics.cache_lookups.clone(),
        );
        metrics
    }

    /// Counts one exact-cache lookup of `route`.
    pub fn cache_lookup(&self, route: &str, hit: bool) {
        let labels = CacheLabels {
            route: route.to_owned(),
            kind: "exact",
            result: if hit { "hit" } else { "miss" },
        };
        self.cache_lookups.get_or_create(&labels).inc();
    }

    /// Records one settled request from its usage event; `latency` and
    /// `time_to_first_token` are measured at microsecond precision (the
    /// event keeps milliseconds).
    pub fn record(
        &self,
        event: &UsageEvent,
        status: Option<ErrorClass>,
        latency: Duration,
        time_to_first_token: Option<Duration>,
    ) {
        let status = status.map_or("ok", ErrorClass::as_str);
        let labels = RequestLabels {
            operation: event.operation.clone(),
            route: event.route_id.clone(),
            deployment: event.deployment_id.clone(),
            provider: event.provider.clone(),
            model: event.upstream_model.clone(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        if event.stream
            && let Some(first) = time_to_first_token
        {
            let RequestLabels {
                route,
                deployment,
                provider,
                model,
                ..
            } = labels;
            let deployment = DeploymentLabels {
                route,
                deployment,
                provider,
                model,
            };
            self.time_to_first_token
                .get_or_create(&deployment)
                .observe(first.as_secs_f64());
        }
        for (index, attempt) in event.attempts.iter().enumerate() {
            let status = ErrorClass::from_proto(attempt.outcome).map_or("ok", ErrorClass::as_str);
            let labels = AttemptLabels {
                route: event.route_id.clone(),
                deployment: attempt.deployment_id.clone(),
                provider: attempt.provider.clone(),
                reason: if index == 0 { "first" } else { "fallback" },
                status,
            };
            self.attempts.get_or_create(&labels).inc();
        }
        self.record_usage(event);
    }

    fn record_usage(&self, event: &UsageEvent) {
        let team = self.teams.value(&event.team_id);
        if let Some(usage) = &event.usage {
            for (kind, count) in [
                ("input", usage.prompt_tokens),
                ("output", usage.completion_tokens),
            ] {
                if count == 0 {
                    continue;
                }
                let labels = TokenLabels {
                    deployment: event.deployment_id.clone(),
                    provider: event.provider.clone(),
                    model: event.upstream_model.clone(),
                    team: team.clone(),
                    kind,
                };
                self.tokens.get_or_create(&labels).inc_by(u64::from(count));
            }
        }
        if let Some(cost) = &event.cost
            && cost.nanos != 0
        {
            let labels = CostLabels {
                deployment: event.deployment_id.clone(),
                provider: event.provider.clone(),
                model: event.upstream_model.clone(),
                team,
                currency: cost.currency.clone(),
            };
            // Counters only grow; a negative cost (a refund) is not one.
            #[allow(clippy::cast_precision_loss)]
            let units = cost.nanos.max(0) as f64 / 1e9;
            self.cost.get_or_create(&labels).inc_by(units);
        }
    }
}
