//! The router's series: one record per settled request (count, latency,
//! time to first token, attempts, tokens, cost) and per cache lookup.
//!
//! Labels are bounded by configuration: routes, deployments, providers and
//! models come from the snapshot, statuses from the error classes, and the
//! team label is capped (`telemetry.team_label_limit`). Key ids, user ids
//! and request ids are never labels.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, RwLock, atomic::AtomicU64},
    time::Duration,
};

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
/// Labels of `deprecated_answers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeprecatedLabels {
    deployment: String,
}

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
    /// `first`, `retry`, `fallback`, `hedge` or `successor`.
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
    cost: Family<CostLabels, Counter<f64, AtomicU64>>,
    cache_lookups: Family<CacheLabels, Counter>,
    deprecated_answers: Family<DeprecatedLabels, Counter>,
    /// Deprecated deployments already logged by this process.
    deprecated_logged: std::sync::Mutex<std::collections::HashSet<String>>,
    teams: Arc<BoundedLabel>,
    /// The series of requests answered at their first attempt, resolved
    /// once per kind, by [`Answered::fingerprint`]: the common case costs
    /// one hash and no allocation instead of a labelled lookup per series.
    answered: RwLock<HashMap<u64, Arc<Answered>>>,
}

/// Most kinds of answered request [`RouterMetrics`] keeps resolved; past
/// it, the rest take the labelled lookups.
const MAX_ANSWERED_KINDS: usize = 4096;

/// The series one kind of request answered at its first attempt moves.
#[derive(Debug)]
struct Answered {
    /// What it was resolved for: operation, route, deployment, provider,
    /// model, team id and currency.
    key: [String; 7],
    requests: Counter,
    duration: Histogram,
    time_to_first_token: Histogram,
    first_attempt: Counter,
    input_tokens: Counter,
    output_tokens: Counter,
    cost: Counter<f64, AtomicU64>,
}

impl Answered {
    /// The fields of `event` a kind is told apart by.
    fn key_of(event: &UsageEvent) -> [&str; 7] {
        [
            &event.operation,
            &event.route_id,
            &event.deployment_id,
            &event.provider,
            &event.upstream_model,
            &event.team_id,
            event
                .cost
                .as_ref()
                .map_or("", |cost| cost.currency.as_str()),
        ]
    }

    fn fingerprint(key: &[&str; 7]) -> u64 {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        hasher.finish()
    }

    fn is_for(&self, key: &[&str; 7]) -> bool {
        self.key.iter().zip(key).all(|(held, asked)| held == asked)
    }
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
            deprecated_answers: Family::default(),
            deprecated_logged: std::sync::Mutex::default(),
            teams,
            answered: RwLock::new(HashMap::new()),
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
            "deprecated_answers",
            "Answers from deprecated deployments (sent with Deprecation and Sunset headers)",
            metrics.deprecated_answers.clone(),
        );
        registry.register(
            "cache_lookups",
            "Response cache lookups, by kind and result",
            metrics.cache_lookups.clone(),
        );
        metrics
    }

    /// Counts an answer from a deprecated `deployment`; logs a warning the
    /// first time this process sees one from it.
    pub fn deprecated_answer(&self, deployment: &switchyard_proto::v1::Deployment) {
        self.deprecated_answers
            .get_or_create(&DeprecatedLabels {
                deployment: deployment.id.clone(),
            })
            .inc();
        let first = self
            .deprecated_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(deployment.id.clone());
        if first {
            let lifecycle = deployment.lifecycle.clone().unwrap_or_default();
            tracing::warn!(
                deployment = %deployment.id,
                sunset = %lifecycle.sunset_date,
                successor = %lifecycle.successor,
                "a deprecated deployment is still answering; move its routes to the successor before the sunset"
            );
        }
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
        // The resolved series count a first attempt; a probe's is labelled
        // as what it is.
        let at_first_attempt = status.is_none()
            && matches!(event.attempts.as_slice(), [only]
                if only.outcome == 0 && (only.reason.is_empty() || only.reason == "first"));
        if at_first_attempt && let Some(answered) = self.answered(event) {
            answered.requests.inc();
            answered.duration.observe(latency.as_secs_f64());
            if event.stream
                && let Some(first) = time_to_first_token
            {
                answered.time_to_first_token.observe(first.as_secs_f64());
            }
            answered.first_attempt.inc();
            if let Some(usage) = &event.usage {
                answered.input_tokens.inc_by(u64::from(usage.prompt_tokens));
                answered
                    .output_tokens
                    .inc_by(u64::from(usage.completion_tokens));
            }
            if let Some(cost) = &event.cost {
                answered.cost.inc_by(currency_units(cost.nanos));
            }
            return;
        }
        self.record_labelled(event, status, latency, time_to_first_token);
    }

    /// The resolved series of `event`'s kind, resolving them the first
    /// time; `None` once [`MAX_ANSWERED_KINDS`] are held.
    fn answered(&self, event: &UsageEvent) -> Option<Arc<Answered>> {
        let key = Answered::key_of(event);
        let fingerprint = Answered::fingerprint(&key);
        if let Ok(held) = self.answered.read()
            && let Some(answered) = held.get(&fingerprint)
        {
            // A fingerprint shared by two kinds keeps the first one's.
            return answered.is_for(&key).then(|| Arc::clone(answered));
        }
        let mut held = self.answered.write().ok()?;
        if held.len() >= MAX_ANSWERED_KINDS {
            return None;
        }
        let answered = held
            .entry(fingerprint)
            .or_insert_with(|| Arc::new(self.resolve(event, key)));
        answered.is_for(&key).then(|| Arc::clone(answered))
    }

    /// Looks up (creating) every series an answered request of `event`'s
    /// kind moves, with the same labels [`RouterMetrics::record_labelled`]
    /// gives them.
    fn resolve(&self, event: &UsageEvent, key: [&str; 7]) -> Answered {
        let request = RequestLabels {
            operation: event.operation.clone(),
            route: event.route_id.clone(),
            deployment: event.deployment_id.clone(),
            provider: event.provider.clone(),
            model: event.upstream_model.clone(),
            status: "ok",
        };
        let deployment = DeploymentLabels {
            route: event.route_id.clone(),
            deployment: event.deployment_id.clone(),
            provider: event.provider.clone(),
            model: event.upstream_model.clone(),
        };
        let attempt = AttemptLabels {
            route: event.route_id.clone(),
            deployment: event.deployment_id.clone(),
            provider: event.provider.clone(),
            reason: "first",
            status: "ok",
        };
        let team = self.teams.value(&event.team_id);
        let tokens = |kind| TokenLabels {
            deployment: event.deployment_id.clone(),
            provider: event.provider.clone(),
            model: event.upstream_model.clone(),
            team: team.clone(),
            kind,
        };
        let cost = CostLabels {
            deployment: event.deployment_id.clone(),
            provider: event.provider.clone(),
            model: event.upstream_model.clone(),
            team: team.clone(),
            currency: key[6].to_owned(),
        };
        Answered {
            key: key.map(str::to_owned),
            requests: self.requests.get_or_create_owned(&request),
            duration: self.duration.get_or_create_owned(&request),
            time_to_first_token: self.time_to_first_token.get_or_create_owned(&deployment),
            first_attempt: self.attempts.get_or_create_owned(&attempt),
            input_tokens: self.tokens.get_or_create_owned(&tokens("input")),
            output_tokens: self.tokens.get_or_create_owned(&tokens("output")),
            cost: self.cost.get_or_create_owned(&cost),
        }
    }

    /// Records a request through a labelled lookup per series: failures,
    /// fallbacks, cache hits, and kinds past [`MAX_ANSWERED_KINDS`].
    fn record_labelled(
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
                reason: match attempt.reason.as_str() {
                    "retry" => "retry",
                    "hedge" => "hedge",
                    "successor" => "successor",
                    "shadow" => "shadow",
                    "probe" => "probe",
                    "fallback" => "fallback",
                    "first" => "first",
                    _ if index == 0 => "first",
                    _ => "fallback",
                },
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
            self.cost
                .get_or_create(&labels)
                .inc_by(currency_units(cost.nanos));
        }
    }
}

/// Nano-units as currency units. Counters only grow: a negative cost (a
/// refund) counts as none.
fn currency_units(nanos: i64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let units = nanos.max(0) as f64 / 1e9;
    units
}

#[cfg(test)]
mod tests {
    use switchyard_common::metrics::{MetricsRegistry, encode_text};
    use switchyard_proto::v1::{Attempt, Money, Usage};

    use super::*;

    fn answered(route: &str, team: &str) -> UsageEvent {
        UsageEvent {
            operation: "chat".to_owned(),
            route_id: route.to_owned(),
            deployment_id: "d1".to_owned(),
            provider: "p1".to_owned(),
            upstream_model: "m1".to_owned(),
            team_id: team.to_owned(),
            stream: true,
            usage: Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 4,
                ..Usage::default()
            }),
            cost: Some(Money {
                currency: "USD".to_owned(),
                nanos: 1_500_000_000,
            }),
            attempts: vec![Attempt {
                deployment_id: "d1".to_owned(),
                provider: "p1".to_owned(),
                ..Attempt::default()
            }],
            ..UsageEvent::default()
        }
    }

    /// Records `events` through `record` (resolved series) or through the
    /// labelled lookups alone, and returns the scrape.
    fn scrape(events: &[UsageEvent], resolved: bool) -> String {
        let mut registry = MetricsRegistry::default();
        let teams = registry.team_label();
        let metrics = RouterMetrics::register(registry.registry(), teams);
        for event in events {
            let (latency, first) = (Duration::from_micros(700), Some(Duration::from_micros(300)));
            if resolved {
                metrics.record(event, None, latency, first);
            } else {
                metrics.record_labelled(event, None, latency, first);
            }
        }
        encode_text(&registry.finish())
    }

    #[test]
    fn resolved_series_are_the_labelled_ones() {
        let events = [
            answered("r1", "t1"),
            answered("r1", "t1"),
            answered("r2", "t1"),
            answered("r1", "t2"),
        ];
        let resolved = scrape(&events, true);
        // The same samples; a family's series come out in no fixed order.
        let sorted = |text: &str| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let labelled = scrape(&events, false);
        let (ours, theirs) = (sorted(&resolved), sorted(&labelled));
        let differ: Vec<_> = ours.iter().filter(|line| !theirs.contains(line)).collect();
        assert!(
            differ.is_empty() && ours.len() == theirs.len(),
            "{differ:?}"
        );
        assert!(resolved.contains(r#"switchyard_requests_total{operation="chat",route="r1",deployment="d1",provider="p1",model="m1",status="ok"} 3"#), "{resolved}");
        assert!(resolved.contains(r#"switchyard_cost_total{deployment="d1",provider="p1",model="m1",team="t1",currency="USD"} 4.5"#), "{resolved}");
    }

    #[test]
    fn a_failure_or_a_fallback_takes_the_labelled_series() {
        let mut registry = MetricsRegistry::default();
        let teams = registry.team_label();
        let metrics = RouterMetrics::register(registry.registry(), teams);
        let mut fallback = answered("r1", "t1");
        fallback.attempts.insert(
            0,
            Attempt {
                deployment_id: "d0".to_owned(),
                provider: "p0".to_owned(),
                outcome: ErrorClass::RateLimited.to_proto() as i32,
                ..Attempt::default()
            },
        );
        metrics.record(&fallback, None, Duration::ZERO, None);
        metrics.record(
            &answered("r1", "t1"),
            Some(ErrorClass::Cancelled),
            Duration::ZERO,
            None,
        );
        assert!(metrics.answered.read().expect("not poisoned").is_empty());
        let text = encode_text(&registry.finish());
        assert!(
            text.contains(r#"reason="fallback",status="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"reason="first",status="rate_limited"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"status="cancelled"} 1"#), "{text}");
    }
}
