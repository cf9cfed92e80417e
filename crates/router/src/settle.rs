//! `settle`: the one step after a response ends (or the caller leaves) that
//! records what happened.
//!
//! It turns the request's attempts into one usage event, each attempt
//! costed at its own deployment's price and the total rounded once, and
//! queues it for the ledger; for a completed cacheable answer it stores the
//! cache entry in a task tracked by `settles`, which shutdown waits for
//! before the usage batcher's last flush. Chat and embeddings settle here
//! alike.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use switchyard_common::{ErrorClass, client::CacheClient, trace::HopSpan};
use switchyard_proto::v1::{
    Attempt, CacheQuery, CachedResponse, ChatChunk, ChatRequest, Decision, Money, RequestContext,
    StoreRequest, Usage, UsageEvent,
};
use tokio_util::task::TaskTracker;

use crate::{
    attempt::AttemptRecord,
    metrics::RouterMetrics,
    pricing::{ExactCost, sum},
    shadow::Shadow,
    spans,
    usage::UsageEmitter,
};

/// Everything `settle` needs to know about one finished request.
#[derive(Debug)]
pub struct Settlement {
    /// Who asked.
    pub context: RequestContext,
    /// The route the request named.
    pub route: String,
    /// Snapshot version the plan was made from.
    pub snapshot_version: u64,
    /// The request's tags (OpenAI `metadata`).
    pub tags: BTreeMap<String, String>,
    /// `chat` or `embeddings`.
    pub operation: &'static str,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether the answer came from the cache.
    pub cache_hit: bool,
    /// Every attempt, in order; the answering one last.
    pub attempts: Vec<AttemptRecord>,
    /// Why the request failed, if it did.
    pub error_class: Option<ErrorClass>,
    /// When the request started.
    pub started: Instant,
    /// When its answer ended (or it failed, or the caller left): a shadow
    /// copy settled with it may end later.
    pub ended: Instant,
    /// When it started, Unix epoch milliseconds.
    pub created_at_unix_ms: u64,
    /// When its first chunk reached the caller.
    pub first_chunk_at: Option<Instant>,
    /// How the request was planned; `None` for a cache hit.
    pub decision: Option<Decision>,
    /// The request's span at the router; it ends once settled.
    pub span: HopSpan,
    /// Set when the caller left before the provider reported usage: what
    /// settling counts to charge the answering attempt.
    pub cut_short: Option<CutShort>,
}

/// A request whose caller left before the provider reported usage. The
/// provider still charges for the prompt it read and the tokens it wrote:
/// settling counts them with the tokenizer ([`crate::tokens`]).
#[derive(Debug)]
pub struct CutShort {
    /// The request, when still at hand (streams keep it): its prompt is
    /// counted.
    pub request: Option<ChatRequest>,
    /// The prompt's estimate by size, for when the request is not.
    pub prompt_tokens: u32,
    /// The text the provider streamed before the caller left.
    pub streamed: String,
}

impl CutShort {
    /// The usage the provider is owed for: the prompt (counted, else
    /// estimated) and the streamed text, counted.
    fn usage(&self) -> Usage {
        let prompt_tokens = self.request.as_ref().map_or(self.prompt_tokens, |request| {
            crate::estimate::Estimate::counted(request).prompt_tokens
        });
        let completion_tokens = crate::tokens::count(&self.streamed);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            ..Usage::default()
        }
    }
}

/// A completed answer to store in the cache.
pub struct CacheEntry {
    /// What it answers.
    pub query: CacheQuery,
    /// The answer.
    pub chunks: Vec<ChatChunk>,
    /// How long it may be served.
    pub ttl: Duration,
}

/// Settles requests: usage to the ledger, answers to the cache.
#[derive(Clone)]
pub struct Settler {
    usage: UsageEmitter,
    cache: CacheClient,
    settles: TaskTracker,
    metrics: Arc<RouterMetrics>,
}

impl Settler {
    /// Creates the settler; cache stores run on `settles`, and every
    /// settled request is recorded in `metrics`.
    pub fn new(
        usage: UsageEmitter,
        cache: CacheClient,
        settles: TaskTracker,
        metrics: Arc<RouterMetrics>,
    ) -> Self {
        Self {
            usage,
            cache,
            settles,
            metrics,
        }
    }

    /// Records `settlement` (and stores `entry`) once its `shadow` copy has
    /// ended, with the copy's record among its attempts (before the
    /// answering one, which stays last). The copy is cancelled first when
    /// the request did not reach its end (`completed`).
    pub fn settle_after(
        &self,
        shadow: Shadow,
        completed: bool,
        mut settlement: Settlement,
        entry: Option<CacheEntry>,
    ) {
        let settler = self.clone();
        // Tracked on `settles`: shutdown waits for it.
        self.settles.spawn(async move {
            if let Some(record) = shadow.finish(completed).await {
                let at = settlement.attempts.len().saturating_sub(1);
                settlement.attempts.insert(at, record);
            }
            settler.settle(settlement, entry);
        });
    }

    /// The tracker of work that outlives a response (cache stores, shadow
    /// copies): shutdown waits for it.
    pub fn tasks(&self) -> &TaskTracker {
        &self.settles
    }

    /// Returns the cache client, for lookups.
    pub fn cache(&self) -> &CacheClient {
        &self.cache
    }

    /// Returns the router's series.
    pub fn metrics(&self) -> &RouterMetrics {
        &self.metrics
    }

    /// Records `settlement` and stores `entry`, without waiting for either.
    pub fn settle(&self, mut settlement: Settlement, entry: Option<CacheEntry>) {
        if let Some(cut_short) = settlement.cut_short.take() {
            let settler = self.clone();
            // Counting is CPU work (loading the tokenizer, the first time,
            // more): a blocking thread's, never a runtime worker's.
            self.settles.spawn_blocking(move || {
                if let Some(answering) = settlement.attempts.last_mut() {
                    answering.usage = cut_short.usage();
                }
                settler.settle(settlement, entry);
            });
            return;
        }
        if let Some(entry) = entry {
            let cache = self.cache.clone();
            let mut context = settlement.context.clone();
            // The answer is complete; storing it is not bound by the
            // request's deadline (which may already have passed).
            context.deadline_unix_ms = 0;
            // Tracked on `settles`: shutdown waits for it.
            self.settles.spawn(async move {
                store(&cache, context, entry).await;
            });
        }
        // What the request line needs from the settlement, taken only when
        // the line will be written.
        let line = tracing::enabled!(tracing::Level::INFO).then(|| {
            let trace_id = trace_id(&settlement.context.traceparent).to_owned();
            let status = settlement.error_class.map_or("ok", ErrorClass::as_str);
            (trace_id, status)
        });
        let span = std::mem::replace(&mut settlement.span, HopSpan::none());
        let latency = settlement
            .ended
            .saturating_duration_since(settlement.started);
        let time_to_first_token = settlement
            .first_chunk_at
            .map(|at| at.saturating_duration_since(settlement.started));
        let status = settlement.error_class;
        let event = usage_event(settlement);
        self.metrics
            .record(&event, status, latency, time_to_first_token);
        // An unsampled span shows the cost only when it fails.
        let cost = if line.is_some() || span.is_sampled() || (status.is_some() && !span.is_off()) {
            event.cost.as_ref().map(cost_text)
        } else {
            None
        };
        spans::settled(&span, &event, status, cost.as_deref());
        if let Some((trace_id, status)) = line {
            log_request(&event, &trace_id, status, cost.as_deref());
        }
        self.usage.emit(event);
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
/// empty when there is none.
fn trace_id(traceparent: &str) -> &str {
    traceparent
        .split('-')
        .nth(1)
        .filter(|id| id.len() == 32)
        .unwrap_or_default()
}

/// An exact cost as text: `0.000150000 USD`.
fn cost_text(cost: &Money) -> String {
    format!(
        "{} {}",
        switchyard_common::money::decimal(cost.nanos),
        cost.currency
    )
}

/// The one line every request leaves at `info`, once its outcome is known:
/// ids, where it went, how it ended, how long it took and what it cost.
/// Never the prompt or the answer.
fn log_request(event: &UsageEvent, trace_id: &str, status: &str, cost: Option<&str>) {
    tracing::info!(
        request_id = %event.request_id,
        trace_id,
        operation = %event.operation,
        route = %event.route_id,
        deployment = %event.deployment_id,
        provider = %event.provider,
        status,
        latency_ms = event.latency_ms,
        attempts = event.attempts.len(),
        cache_hit = event.cache_hit,
        stream = event.stream,
        cost = cost.unwrap_or(""),
        "request"
    );
}

async fn store(cache: &CacheClient, context: RequestContext, entry: CacheEntry) {
    let request = StoreRequest {
        context: Some(context),
        query: Some(entry.query),
        response: Some(CachedResponse {
            chunks: entry.chunks,
            stored_at_unix_ms: unix_millis(),
        }),
        ttl_ms: millis(entry.ttl),
    };
    if let Err(status) = cache.store(request).await {
        tracing::warn!(code = ?status.code(), "cache store failed");
    }
}

/// Builds the usage event of a settled request.
pub fn usage_event(settlement: Settlement) -> UsageEvent {
    let Settlement {
        context,
        route,
        snapshot_version,
        tags,
        operation,
        stream,
        cache_hit,
        attempts,
        error_class,
        started,
        ended,
        created_at_unix_ms,
        first_chunk_at,
        decision,
        span: _,
        cut_short: _,
    } = settlement;
    // The attempt that answered, whole or until the caller left.
    let answered = attempts
        .last()
        .filter(|attempt| matches!(attempt.outcome, None | Some(ErrorClass::Cancelled)));
    let usage = answered.map_or_else(Usage::default, |attempt| attempt.usage);
    let (deployment_id, provider, upstream_model) = answered.map_or_else(Default::default, |a| {
        (
            a.deployment.id.clone(),
            a.deployment.provider.clone(),
            a.deployment.upstream_model.clone(),
        )
    });
    let costs: Vec<Option<ExactCost>> = attempts.iter().map(AttemptRecord::cost).collect();
    let cost = sum(costs.iter().flatten()).map(|total| total.round());
    let attempts = attempts
        .iter()
        .zip(&costs)
        .map(|(attempt, attempt_cost)| Attempt {
            deployment_id: attempt.deployment.id.clone(),
            provider: attempt.deployment.provider.clone(),
            outcome: attempt.outcome.map_or(0, |class| class.to_proto() as i32),
            latency_ms: millis(
                attempt
                    .ended
                    .unwrap_or_else(Instant::now)
                    .saturating_duration_since(attempt.started),
            ),
            ttft_ms: attempt.first_chunk_at.map_or(0, |at| {
                millis(at.saturating_duration_since(attempt.started))
            }),
            usage: Some(attempt.usage),
            cost: attempt_cost.as_ref().map(ExactCost::round),
            credential: attempt.credential.clone(),
            reason: attempt.reason.to_owned(),
        })
        .collect();
    UsageEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        request_id: context.request_id,
        key_id: context.key_id,
        team_id: context.team_id,
        end_user: context.end_user,
        user_id: context.user_id,
        model: route.clone(),
        route_id: route,
        provider,
        upstream_model,
        deployment_id,
        usage: Some(usage),
        cost,
        cache_hit,
        stream,
        error_class: error_class.map_or(0, |class| class.to_proto() as i32),
        latency_ms: millis(ended.saturating_duration_since(started)),
        ttft_ms: first_chunk_at.map_or(0, |at| millis(at.saturating_duration_since(started))),
        created_at_unix_ms,
        snapshot_version,
        tags,
        attempts,
        operation: operation.to_owned(),
        decision,
    }
}

/// Whole milliseconds of `duration`, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchyard_proto::v1::{Deployment, Money, Pricing};

    use super::*;

    fn deployment(id: &str, input_nanos: i64, output_nanos: i64) -> Arc<Deployment> {
        let usd = |nanos| {
            Some(Money {
                nanos,
                currency: "USD".to_owned(),
            })
        };
        Arc::new(Deployment {
            id: id.to_owned(),
            provider: format!("{id}-provider"),
            upstream_model: format!("{id}-model"),
            pricing: Some(Pricing {
                input_per_million: usd(input_nanos),
                output_per_million: usd(output_nanos),
                ..Pricing::default()
            }),
            ..Deployment::default()
        })
    }

    fn record(
        deployment: Arc<Deployment>,
        outcome: Option<ErrorClass>,
        usage: Usage,
    ) -> AttemptRecord {
        let started = Instant::now();
        AttemptRecord {
            deployment,
            started,
            first_chunk_at: outcome.is_none().then_some(started),
            ended: Some(started),
            outcome,
            usage,
            upstream: None,
            credential: String::new(),
            reason: "first",
            span: HopSpan::none(),
            permit: None,
        }
    }

    fn settlement(attempts: Vec<AttemptRecord>, error_class: Option<ErrorClass>) -> Settlement {
        Settlement {
            context: RequestContext {
                request_id: "req-1".to_owned(),
                key_id: "key-1".to_owned(),
                user_id: "alice".to_owned(),
                ..RequestContext::default()
            },
            route: "smart".to_owned(),
            snapshot_version: 9,
            tags: BTreeMap::from([("feature".to_owned(), "search".to_owned())]),
            operation: "chat",
            stream: true,
            cache_hit: false,
            attempts,
            error_class,
            started: Instant::now(),
            ended: Instant::now(),
            created_at_unix_ms: 1_700_000_000_000,
            first_chunk_at: None,
            decision: Some(Decision {
                strategies: vec!["priority".to_owned()],
                order: vec!["primary".to_owned(), "backup".to_owned()],
                skipped: Vec::new(),
                rule: String::new(),
                policy: String::new(),
                demoted: Vec::new(),
            }),
            span: HopSpan::none(),
            cut_short: None,
        }
    }

    #[test]
    fn every_request_leaves_one_json_line_with_its_ids_outcome_and_cost() {
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            total_tokens: 1_100,
            ..Usage::default()
        };
        let text = switchyard_common::telemetry::capture_lines(|| {
            let mut answered = settlement(
                vec![record(
                    deployment("backup", 150_000_000, 600_000_000),
                    None,
                    usage,
                )],
                None,
            );
            answered.context.traceparent =
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned();
            let trace = trace_id(&answered.context.traceparent).to_owned();
            let event = usage_event(answered);
            let cost = event.cost.as_ref().map(cost_text);
            log_request(&event, &trace, "ok", cost.as_deref());
            let failed = usage_event(settlement(Vec::new(), Some(ErrorClass::Timeout)));
            log_request(&failed, "", ErrorClass::Timeout.as_str(), None);
        });
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let line = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["route"], "smart");
        assert_eq!(line["deployment"], "backup");
        assert_eq!(line["status"], "ok");
        assert_eq!(line["cost"], "0.000210000 USD");
        assert!(line["latency_ms"].is_u64());
        assert_eq!(lines[1]["status"], "timeout");
        assert_eq!(lines[1]["cost"], "");
        // Ids and numbers only: no key, user or tag values.
        assert!(!text.contains("key-1") && !text.contains("alice") && !text.contains("search"));
    }

    #[test]
    fn the_trace_id_is_read_from_a_valid_traceparent_only() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(trace_id(""), "");
        assert_eq!(trace_id("00-short-00f067aa0ba902b7-01"), "");
    }

    #[test]
    fn a_fallback_is_costed_at_the_answering_deployments_price() {
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            total_tokens: 1_100,
            ..Usage::default()
        };
        let event = usage_event(settlement(
            vec![
                // Expensive primary failed before any output: no usage, no cost.
                record(
                    deployment("primary", 10_000_000_000, 30_000_000_000),
                    Some(ErrorClass::RateLimited),
                    Usage::default(),
                ),
                record(deployment("backup", 150_000_000, 600_000_000), None, usage),
            ],
            None,
        ));
        // 1000 × 150 + 100 × 600 nano-dollars, at the backup's price.
        assert_eq!(event.cost.as_ref().map(|cost| cost.nanos), Some(210_000));
        assert_eq!(
            (
                event.deployment_id.as_str(),
                event.provider.as_str(),
                event.upstream_model.as_str()
            ),
            ("backup", "backup-provider", "backup-model")
        );
        assert_eq!(event.attempts.len(), 2);
        assert_eq!(
            event.attempts[0].outcome,
            ErrorClass::RateLimited.to_proto() as i32
        );
        assert_eq!(event.attempts[0].cost.as_ref().map(|c| c.nanos), Some(0));
        assert_eq!(
            event.attempts[1].cost.as_ref().map(|c| c.nanos),
            Some(210_000)
        );
        assert_eq!(
            (event.route_id.as_str(), event.snapshot_version),
            ("smart", 9)
        );
        assert_eq!(event.tags["feature"], "search");
        assert_eq!(event.user_id, "alice");
        assert_eq!(event.usage.map(|u| u.prompt_tokens), Some(1_000));
    }

    #[test]
    fn a_failed_request_names_no_deployment_and_keeps_every_attempt() {
        let event = usage_event(settlement(
            vec![
                record(
                    deployment("a", 1, 1),
                    Some(ErrorClass::Overloaded),
                    Usage::default(),
                ),
                record(
                    deployment("b", 1, 1),
                    Some(ErrorClass::Timeout),
                    Usage::default(),
                ),
            ],
            Some(ErrorClass::Timeout),
        ));
        assert_eq!(event.deployment_id, "");
        assert_eq!(event.error_class, ErrorClass::Timeout.to_proto() as i32);
        assert_eq!(event.attempts.len(), 2);
        assert_eq!(event.cost.map(|cost| cost.nanos), Some(0));
    }

    #[test]
    fn a_cache_hit_has_no_attempt_and_no_cost() {
        let mut settlement = settlement(Vec::new(), None);
        settlement.cache_hit = true;
        let event = usage_event(settlement);
        assert!(event.cache_hit && event.attempts.is_empty());
        assert_eq!(event.cost, None);
    }
}
