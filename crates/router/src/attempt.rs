//! `attempt`: one request sent to one deployment through the adapters, and
//! the fallback loop over a plan's candidates.
//!
//! A chat attempt waits for its first message, so a failure before any
//! output can still go to the next deployment. Every attempt leaves an
//! [`AttemptRecord`] (deployment, outcome, timing, usage) for `settle`.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    capacity::Permit,
    health::{Health, Ticket},
    hedge::{self, Raced},
    plan::{Plan, skip},
    pricing::{ExactCost, exact_cost, sum},
    route_table::RetryRules,
    spans,
};
use futures::StreamExt;
use switchyard_common::{
    ErrorClass, ServiceError,
    client::{AdapterClient, ResponseStream, outbound},
    trace::HopSpan,
};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, AttemptTimeouts, ChatRequest,
    Deployment, EmbedRequest, EmbedResponse, Money, RequestContext, UpstreamTiming, Usage,
};

/// What one attempt did.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Where it went.
    pub deployment: Arc<Deployment>,
    /// When it started.
    pub started: Instant,
    /// When its first chunk arrived.
    pub first_chunk_at: Option<Instant>,
    /// When it ended; `None` while it is still streaming.
    pub ended: Option<Instant>,
    /// Why it failed; `None` when it answered.
    pub outcome: Option<ErrorClass>,
    /// Its usage, as the provider reported it.
    pub usage: Usage,
    /// How long the provider took, as the adapters measured it; `None` for
    /// a failed attempt (the router's own timing counts for it).
    pub upstream: Option<UpstreamTiming>,
    /// The id of the provider API key it used, as the adapters reported it;
    /// empty when the provider has one key.
    pub credential: String,
    /// Why it was made: `first`, `retry`, `fallback`, `hedge` or
    /// `successor`.
    pub reason: &'static str,
    /// Its share of its deployment's capacity, held while it may still be
    /// in flight (the answering attempt's until the request ends).
    pub permit: Option<Arc<Permit>>,
    /// The attempt's span while it is open.
    pub span: HopSpan,
}

impl AttemptRecord {
    /// Records that the attempt failed with `class` now, ends its span and
    /// gives back its capacity.
    pub fn fail(&mut self, class: ErrorClass) {
        self.outcome = Some(class);
        self.ended = Some(Instant::now());
        self.span.fail(class.as_str());
        self.span = HopSpan::none();
        self.permit = None;
    }

    /// The exact cost of its usage at its deployment's price; `None` when
    /// the deployment is unpriced.
    pub fn cost(&self) -> Option<ExactCost> {
        exact_cost(&self.usage, self.deployment.pricing.as_ref())
    }
}

/// What `records` cost together, each at its own deployment's price,
/// summed exactly and rounded once; `None` when none is priced. The usage
/// event's cost of the same attempts is the same to the nano-unit.
pub fn request_cost(records: &[AttemptRecord]) -> Option<Money> {
    let costs: Vec<ExactCost> = records.iter().filter_map(AttemptRecord::cost).collect();
    sum(&costs).map(|total| total.round())
}

/// The time a request spent at providers over `records`: each failed
/// attempt whole, as the router saw it, then the answering attempt as the
/// adapters measured it.
pub fn upstream_timing(records: &[AttemptRecord]) -> UpstreamTiming {
    let mut before = 0_u64;
    for (position, record) in records.iter().enumerate() {
        if let (true, Some(answer)) = (position + 1 == records.len(), record.upstream) {
            return UpstreamTiming {
                first_chunk_micros: before.saturating_add(answer.first_chunk_micros),
                total_micros: before.saturating_add(answer.total_micros),
            };
        }
        let ended = record.ended.unwrap_or_else(Instant::now);
        let spent = ended.saturating_duration_since(record.started).as_micros();
        before = before.saturating_add(u64::try_from(spent).unwrap_or(u64::MAX));
    }
    UpstreamTiming {
        first_chunk_micros: before,
        total_micros: before,
    }
}

/// The client side of the adapters.
#[derive(Clone)]
pub struct Adapters {
    client: AdapterClient,
}

/// An embeddings attempt's answer.
#[derive(Debug)]
pub struct EmbedAnswer {
    /// Milliseconds until the provider's used-up rate limit resets, as its
    /// headers said; 0 when none is used up.
    pub provider_exhausted_ms: u64,
    /// The provider's answer.
    pub response: EmbedResponse,
    /// How long the provider took, as the adapters measured it.
    pub upstream: Option<UpstreamTiming>,
    /// The id of the provider API key the attempt used; empty when the
    /// provider has one key.
    pub credential: String,
}

/// A chat attempt that has produced its first message.
pub struct OpenAttempt {
    /// The first message, already received.
    pub first: AdapterChatResponse,
    /// The rest of the stream.
    pub rest: ResponseStream<AdapterChatResponse>,
}

impl Adapters {
    /// Creates the client side over an adapter client.
    pub fn new(client: AdapterClient) -> Self {
        Self { client }
    }

    /// Sends the request to `deployment` under `timeouts` and waits for its
    /// first message.
    pub async fn open_chat(
        &self,
        context: RequestContext,
        deployment: &Deployment,
        request: ChatRequest,
        timeouts: Option<AttemptTimeouts>,
    ) -> Result<OpenAttempt, ServiceError> {
        let mut rest = self
            .client
            .chat(AdapterChatRequest {
                context: Some(context),
                request: Some(request),
                deployment_id: deployment.id.clone(),
                timeouts,
            })
            .await
            .map_err(|status| as_gateway_error(ServiceError::from_status(&status)))?;
        match rest.next().await {
            Some(Ok(first)) => Ok(OpenAttempt { first, rest }),
            None => Err(ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                "the provider returned an empty response",
            )
            .with_provider(&deployment.provider)),
            Some(Err(status)) => Err(as_gateway_error(ServiceError::from_status(&status))),
        }
    }

    /// Sends an embeddings request to `deployment` under `timeouts` and
    /// returns its answer.
    pub async fn embed(
        &self,
        context: RequestContext,
        deployment: &Deployment,
        request: EmbedRequest,
        timeouts: Option<AttemptTimeouts>,
    ) -> Result<EmbedAnswer, ServiceError> {
        let response = self
            .client
            .embed(AdapterEmbedRequest {
                context: Some(context),
                request: Some(request),
                deployment_id: deployment.id.clone(),
                timeouts,
            })
            .await
            .map_err(|status| as_gateway_error(ServiceError::from_status(&status)))?;
        let answer = response.response.ok_or_else(|| {
            ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                "the provider returned an empty response",
            )
            .with_provider(&deployment.provider)
        })?;
        Ok(EmbedAnswer {
            provider_exhausted_ms: response.provider_exhausted_ms,
            response: answer,
            upstream: response.upstream,
            credential: response.credential,
        })
    }
}

/// A provider refusing the gateway's own credentials (`provider_auth`, as
/// the adapters report it) is the gateway's problem, not the client's: it
/// is logged here (and the attempt falls back like any other).
fn as_gateway_error(error: ServiceError) -> ServiceError {
    if error.class == ErrorClass::ProviderAuth
        && let Some(provider) = error.provider.as_deref()
    {
        tracing::warn!(%provider, class = %error.class, "provider refused the gateway's credentials");
    }
    error
}

/// A provider not knowing `deployment`'s upstream model is the gateway's
/// problem too: the model is gone or misconfigured. It is logged so the
/// operator learns of it, and becomes `upstream_unavailable` (502, and
/// another deployment may be tried) rather than a 404 the client would
/// take for its own model. Returns the error, and whether that was it.
fn unknown_model(error: ServiceError, deployment: &Deployment) -> (ServiceError, bool) {
    let (ErrorClass::NotFound, Some(provider)) = (error.class, error.provider.clone()) else {
        return (error, false);
    };
    tracing::warn!(
        %provider,
        deployment = %deployment.id,
        model = %deployment.upstream_model,
        "the provider does not know this deployment's model: it may be retired; give the deployment a successor or fix its model"
    );
    let error = ServiceError::new(
        ErrorClass::UpstreamUnavailable,
        format!(
            "The provider `{provider}` does not know the configured model; check its configuration."
        ),
    )
    .with_provider(provider);
    (error, true)
}

/// Tries the plan's candidates in order with `attempt` (given each
/// deployment, whether it is the last, and the context to send it, naming
/// the attempt's span under `parent`) until one answers. It moves on only
/// after a retryable failure, and never once the request's deadline (in
/// `context`) has passed: the next deployment could only fail the same way.
///
/// After a retryable failure the same deployment may be tried again (the
/// route's `per_deployment`, else one more try after an overload), after
/// the provider's `Retry-After` or a full-jitter exponential backoff, when
/// that wait ends before the deadline; the route's `fallback_delay` is
/// waited before moving on, and its `max_attempts` bounds them all.
///
/// Each deployment's breaker must admit the attempt (a refusal is recorded
/// in the plan's decision), and hears how it ended. Appends one record per
/// attempt to `records` (the answering one left open for the caller to
/// close). Returns the answer, or the error that explains the most: a
/// fallback's refusal of what it cannot express does not hide the outage
/// before it.
pub async fn try_in_order<T, F, Fut>(
    context: &RequestContext,
    parent: &HopSpan,
    plan: &mut Plan,
    health: &Health,
    records: &mut Vec<AttemptRecord>,
    mut attempt: F,
) -> Result<T, ServiceError>
where
    F: FnMut(Arc<Deployment>, bool, RequestContext) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let rules = plan.route.retry;
    let (hedge_after, hedge_after_p95) = (plan.route.hedge_after, plan.route.hedge_after_p95);
    // The hedge delay at a deployment: its observed p95 when the route
    // asks for that and it is known, else the route's fixed delay.
    let hedge_delay = |deployment: &Deployment| {
        hedge_after_p95
            .then(|| health.first_token_p95(deployment))
            .flatten()
            .or(hedge_after)
    };
    // Disjoint borrows: the candidates are read (and a successor may join
    // them) while the decision grows.
    let Plan {
        candidates,
        decision,
        successors,
        estimated_tokens,
        ..
    } = plan;
    let tokens = *estimated_tokens;
    let mut last = candidates.len().saturating_sub(1);
    let mut first_outage: Option<ServiceError> = None;
    let mut last_error = None;
    let mut made = 0_u32;
    // Candidates up to this position are done with (a hedge tried the
    // next one; a prompt too long skipped those no larger).
    let mut done_through = None;
    let mut successor_at = None;
    let mut position = 0;
    while position < candidates.len() {
        let deployment = &Arc::clone(&candidates[position]);
        position += 1;
        let position = position - 1;
        if done_through.is_some_and(|past| position <= past) {
            continue;
        }
        let mut tries = 0_u32;
        loop {
            if rules.max_attempts.is_some_and(|most| made >= most) {
                return Err(ended(first_outage, last_error));
            }
            let permit = match health.capacity(deployment) {
                None => None,
                Some(capacity) => {
                    match capacity.reserve(tokens, outbound::remaining(context)).await {
                        Some(permit) => Some(permit),
                        None => {
                            // Full, and its queue (if any) did not free up in time.
                            health.passed_over(deployment);
                            skip(decision, &deployment.id, "attempt", "capacity");
                            break;
                        }
                    }
                }
            };
            let Some(ticket) = health.admit(deployment) else {
                // Its breaker opened since the plan was made.
                if let Some(permit) = permit {
                    permit.unused();
                }
                skip(decision, &deployment.id, "attempt", "breaker_open");
                break;
            };
            made += 1;
            tries += 1;
            let reason = match (records.is_empty(), tries) {
                (true, 1) => "first",
                (_, 1) if successor_at == Some(position) => "successor",
                (_, 1) => "fallback",
                _ => "retry",
            };
            let (mut record, sent) =
                open_record(context, parent, deployment, records.len(), reason);
            record.permit = permit.map(Arc::new);
            let started = record.started;
            let backup = hedge_delay(deployment)
                .filter(|_| tries == 1 && position < last && another_fits(&rules, made))
                .map(|after| (after, Arc::clone(&candidates[position + 1])));
            let result = match backup {
                None => {
                    let is_last = position == last && !may_retry_here(&rules, tries, None);
                    attempt(Arc::clone(deployment), is_last, sent).await
                }
                Some((after, backup)) => {
                    let first = (deployment, ticket, record, sent);
                    // Its attempts are boxed inside, so it stays small.
                    let hedging = hedged(
                        context,
                        parent,
                        health,
                        records,
                        &mut attempt,
                        first,
                        backup,
                        (after, tokens),
                    );
                    match hedging.await {
                        Hedged::Alone(result, returned) => {
                            record = returned;
                            result
                        }
                        Hedged::Answered(answer) => return Ok(answer),
                        Hedged::BothFailed(first_error, backup_error) => {
                            made += 1;
                            done_through = Some(position + 1);
                            let remaining = outbound::remaining(context);
                            let stop = !backup_error.class.is_retryable()
                                || remaining == Some(Duration::ZERO)
                                || position + 1 >= last;
                            keep(&mut first_outage, &mut last_error, first_error);
                            if stop {
                                return Err(explaining(first_outage, backup_error));
                            }
                            keep(&mut first_outage, &mut last_error, backup_error);
                            break;
                        }
                    }
                }
            };
            let error = match result {
                Ok(answer) => {
                    health.record(deployment, ticket, Ok(started.elapsed()));
                    record.first_chunk_at = Some(std::time::Instant::now());
                    records.push(record);
                    return Ok(answer);
                }
                Err(error) => error,
            };
            let (error, gone) = unknown_model(error, deployment);
            if gone
                && let Some(successor) = successor_of(successors, deployment)
                && !candidates.iter().any(|planned| planned.id == successor.id)
            {
                // Its successor is tried next, before the rest of the plan.
                candidates.insert(position + 1, Arc::clone(successor));
                let at = decision.order.len().min(position + 1);
                decision.order.insert(at, successor.id.clone());
                last = candidates.len() - 1;
                successor_at = Some(position + 1);
            }
            health.record(deployment, ticket, Err(error.class));
            if let (ErrorClass::RateLimited, Some(wait)) = (error.class, error.retry_after) {
                // The provider said when its limit frees up.
                let credential = error.credential.as_deref().unwrap_or_default();
                health.rest(deployment, wait, credential);
            }
            record.fail(error.class);
            record.credential = error.credential.as_deref().unwrap_or_default().to_owned();
            records.push(record);
            let remaining = outbound::remaining(context);
            if error.class == ErrorClass::ContextLengthExceeded
                && rules.larger_window
                && remaining != Some(Duration::ZERO)
                && let Some(larger) = larger_window_after(candidates, position)
            {
                for smaller in &candidates[position + 1..larger] {
                    skip(decision, &smaller.id, "attempt", "context_window");
                }
                tracing::info!(deployment = %deployment.id, "prompt too long; trying a deployment with a larger context window");
                keep(&mut first_outage, &mut last_error, error);
                done_through = Some(larger - 1);
                break;
            }
            if !error.class.is_retryable() || remaining == Some(Duration::ZERO) {
                return Err(explaining(first_outage, error));
            }
            // A model the provider does not know is not waited out in place.
            let retry_here = (!gone && may_retry_here(&rules, tries, Some(error.class)))
                .then(|| wait_before_retry(&error, tries))
                .filter(|wait| remaining.is_none_or(|left| *wait < left));
            if let Some(wait) = retry_here
                && another_fits(&rules, made)
            {
                tracing::info!(deployment = %deployment.id, class = %error.class, wait_ms = wait.as_millis(), "attempt failed; trying the same deployment again");
                keep(&mut first_outage, &mut last_error, error);
                tokio::time::sleep(wait).await;
                continue;
            }
            if position == last {
                return Err(explaining(first_outage, error));
            }
            tracing::info!(deployment = %deployment.id, class = %error.class, "attempt failed; trying the next deployment");
            keep(&mut first_outage, &mut last_error, error);
            if !rules.fallback_delay.is_zero()
                && remaining.is_none_or(|left| rules.fallback_delay < left)
            {
                tokio::time::sleep(rules.fallback_delay).await;
            }
            break;
        }
    }
    Err(ended(first_outage, last_error))
}

/// Opens the record (and span) of an attempt at `deployment`, the
/// `position`th of the request, made for `reason`, and the context to send
/// it with.
pub(crate) fn open_record(
    context: &RequestContext,
    parent: &HopSpan,
    deployment: &Arc<Deployment>,
    position: usize,
    reason: &'static str,
) -> (AttemptRecord, RequestContext) {
    let span = spans::attempt(parent, deployment, position, reason);
    let mut sent = context.clone();
    span.hand_on(&mut sent);
    let record = AttemptRecord {
        deployment: Arc::clone(deployment),
        started: Instant::now(),
        first_chunk_at: None,
        ended: None,
        outcome: None,
        usage: Usage::default(),
        upstream: None,
        credential: String::new(),
        reason,
        span,
        permit: None,
    };
    (record, sent)
}

/// What a hedged first try came to.
enum Hedged<T> {
    /// No backup was sent: the first attempt's result and its record, to
    /// be handled as any attempt's.
    Alone(Result<T, ServiceError>, AttemptRecord),
    /// One answered (both records kept, the answering one last).
    Answered(T),
    /// Both failed (both records kept): the first's error, the backup's.
    BothFailed(ServiceError, ServiceError),
}

/// Sends `first` (its deployment, breaker ticket, record and context) and,
/// when it has not answered after `after`, a backup to `backup`; serves
/// whichever answers first and drops the other (which closes its upstream
/// connection), keeping it in the records as `cancelled`.
#[allow(clippy::too_many_arguments)]
async fn hedged<T, F, Fut>(
    context: &RequestContext,
    parent: &HopSpan,
    health: &Health,
    records: &mut Vec<AttemptRecord>,
    attempt: &mut F,
    first: (&Arc<Deployment>, Ticket, AttemptRecord, RequestContext),
    backup: Arc<Deployment>,
    (after, tokens): (Duration, u32),
) -> Hedged<T>
where
    F: FnMut(Arc<Deployment>, bool, RequestContext) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let (deployment, ticket, mut record, sent) = first;
    let position = records.len() + 1;
    // Each attempt is boxed where it is made: an attempt's future is large
    // (in-process, it holds the adapters' whole call), and racing two of
    // them inline made a future that was copied whole into its box on
    // every hedged request, hedge sent or not.
    let first_attempt = Box::pin(attempt(Arc::clone(deployment), false, sent));
    let mut opened = None;
    let raced = hedge::race(first_attempt, after, || {
        let permit = match health.capacity(&backup) {
            Some(capacity) => Some(capacity.reserve_now(tokens)?),
            None => None,
        };
        let Some(backup_ticket) = health.admit(&backup) else {
            if let Some(permit) = permit {
                permit.unused();
            }
            return None;
        };
        let permit = permit.map(Arc::new);
        let (mut backup_record, backup_sent) =
            open_record(context, parent, &backup, position, "hedge");
        backup_record.permit = permit;
        opened = Some((backup_record, backup_ticket));
        Some(Box::pin(attempt(Arc::clone(&backup), false, backup_sent)))
    })
    .await;
    let Some((mut backup_record, backup_ticket)) = opened else {
        let Raced::Alone(result) = raced else {
            unreachable!("a race without a backup is the first attempt alone");
        };
        return Hedged::Alone(result, record);
    };
    let gateway_view =
        |error: ServiceError, deployment: &Deployment| unknown_model(error, deployment).0;
    match raced {
        Raced::Alone(result) => Hedged::Alone(result, record),
        Raced::Answered {
            by_backup,
            answer,
            at,
            other,
        } => {
            let (mut winner, mut loser) = (
                (deployment, ticket, record),
                (&backup, backup_ticket, backup_record),
            );
            if by_backup {
                std::mem::swap(&mut winner, &mut loser);
            }
            let (winner_deployment, winner_ticket, mut winner_record) = winner;
            let (loser_deployment, loser_ticket, mut loser_record) = loser;
            let (class, ended) = other.map_or((ErrorClass::Cancelled, at), |(error, ended)| {
                (gateway_view(error, loser_deployment).class, ended)
            });
            // A cancelled attempt says nothing of its deployment's health.
            health.record(loser_deployment, loser_ticket, Err(class));
            loser_record.fail(class);
            loser_record.ended = Some(ended);
            health.record(
                winner_deployment,
                winner_ticket,
                Ok(at.saturating_duration_since(winner_record.started)),
            );
            winner_record.first_chunk_at = Some(at);
            records.push(loser_record);
            records.push(winner_record);
            Hedged::Answered(answer)
        }
        Raced::BothFailed {
            first: (first_error, first_ended),
            backup: (backup_error, backup_ended),
        } => {
            let first_error = gateway_view(first_error, deployment);
            let backup_error = gateway_view(backup_error, &backup);
            health.record(deployment, ticket, Err(first_error.class));
            record.fail(first_error.class);
            record.ended = Some(first_ended);
            health.record(&backup, backup_ticket, Err(backup_error.class));
            backup_record.fail(backup_error.class);
            backup_record.ended = Some(backup_ended);
            records.push(record);
            records.push(backup_record);
            Hedged::BothFailed(first_error, backup_error)
        }
    }
}

/// The successor the plan holds for `deployment`, for when its provider no
/// longer knows its model.
fn successor_of<'a>(
    successors: &'a [(Arc<Deployment>, Arc<Deployment>)],
    deployment: &Deployment,
) -> Option<&'a Arc<Deployment>> {
    successors
        .iter()
        .find(|(of, _)| of.id == deployment.id)
        .map(|(_, successor)| successor)
}

/// The position of the first candidate after `position` with a larger
/// context window than it (an unknown window, 0, is never larger).
fn larger_window_after(candidates: &[Arc<Deployment>], position: usize) -> Option<usize> {
    let window = candidates[position].context_window;
    candidates
        .iter()
        .enumerate()
        .skip(position + 1)
        .find(|(_, candidate)| candidate.context_window > window)
        .map(|(at, _)| at)
}

/// Whether another attempt fits under the route's `max_attempts` after
/// `made` of them.
fn another_fits(rules: &RetryRules, made: u32) -> bool {
    rules.max_attempts.is_none_or(|most| made < most)
}

/// Whether a deployment tried `tries` times may be tried again after a
/// failure of `class` (`None`: whether it may at all).
fn may_retry_here(rules: &RetryRules, tries: u32, class: Option<ErrorClass>) -> bool {
    let allowed = match (rules.per_deployment, class) {
        (Some(retries), _) => retries,
        // By default only an overload is worth waiting out in place.
        (None, Some(ErrorClass::Overloaded)) | (None, None) => 1,
        (None, Some(_)) => 0,
    };
    tries <= allowed
}

/// How long to wait before trying a deployment again after its `tries`th
/// failure: the provider's `Retry-After` when it gave one, else full
/// jitter over an exponential backoff (250 ms doubling, at most 4 s).
fn wait_before_retry(error: &ServiceError, tries: u32) -> Duration {
    if let Some(wait) = error.retry_after {
        return wait;
    }
    const BASE: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(4);
    let ceiling = BASE
        .saturating_mul(1_u32 << tries.saturating_sub(1).min(8))
        .min(CAP);
    // The random low bits of a version-7 UUID.
    let random = uuid::Uuid::now_v7().as_u128() as u64;
    let fraction = (random >> 11) as f64 / (1_u64 << 53) as f64;
    ceiling.mul_f64(fraction)
}

/// Keeps the first outage, and the latest error after it.
fn keep(
    first_outage: &mut Option<ServiceError>,
    last: &mut Option<ServiceError>,
    error: ServiceError,
) {
    if first_outage.is_none() {
        *first_outage = Some(error);
    } else {
        *last = Some(error);
    }
}

/// The error of a request whose attempts ran out.
fn ended(first_outage: Option<ServiceError>, last: Option<ServiceError>) -> ServiceError {
    last.or(first_outage).unwrap_or_else(|| {
        ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            "Every deployment of this model is unavailable right now (circuit breakers open); try again shortly.",
        )
    })
}

/// The error a request ends with: `last`, unless it is a fallback's
/// refusal of the request (`invalid_request`) after an outage, which would
/// read as the client's fault; then the outage.
fn explaining(first_outage: Option<ServiceError>, last: ServiceError) -> ServiceError {
    match first_outage {
        Some(outage) if last.class == ErrorClass::InvalidRequest => outage,
        _ => last,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    use switchyard_proto::v1::{
        AdapterEmbedResponse, ChatChunk, FinishReason, adapter_service_server::AdapterService,
    };
    use tonic::{Request, Response, Status};

    use super::*;

    /// The provider key id every answer of [`FakeAdapters`] reports.
    pub(crate) const FAKE_KEY_ID: &str = "primary";

    /// A scripted adapter service: each deployment id answers with text or
    /// fails with a class; every call is recorded.
    #[derive(Default)]
    pub(crate) struct FakeAdapters {
        pub(crate) script: HashMap<String, Result<&'static str, ErrorClass>>,
        pub(crate) calls: Mutex<Vec<String>>,
    }

    impl FakeAdapters {
        pub(crate) fn new(script: &[(&str, Result<&'static str, ErrorClass>)]) -> Arc<Self> {
            Arc::new(Self {
                script: script
                    .iter()
                    .map(|(id, answer)| ((*id).to_owned(), *answer))
                    .collect(),
                calls: Mutex::new(Vec::new()),
            })
        }

        pub(crate) fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("not poisoned").clone()
        }

        fn answer(&self, deployment_id: &str) -> Result<&'static str, Status> {
            self.calls
                .lock()
                .expect("not poisoned")
                .push(deployment_id.to_owned());
            match self.script.get(deployment_id) {
                Some(Ok(text)) => Ok(text),
                Some(Err(class)) => Err(ServiceError::new(*class, "scripted failure")
                    .with_provider("fake")
                    .to_status()),
                None => {
                    Err(ServiceError::new(ErrorClass::UpstreamUnavailable, "unknown").to_status())
                }
            }
        }
    }

    #[tonic::async_trait]
    impl AdapterService for FakeAdapters {
        type ChatStream = ResponseStream<AdapterChatResponse>;

        async fn chat(
            &self,
            request: Request<AdapterChatRequest>,
        ) -> Result<Response<Self::ChatStream>, Status> {
            let text = self.answer(&request.get_ref().deployment_id)?;
            let chunks = vec![
                Ok(AdapterChatResponse {
                    chunk: Some(ChatChunk {
                        content: text.to_owned(),
                        ..ChatChunk::default()
                    }),
                    upstream: None,
                    credential: String::new(),
                    provider_exhausted_ms: 0,
                }),
                Ok(AdapterChatResponse {
                    chunk: Some(ChatChunk {
                        finish_reason: FinishReason::Stop as i32,
                        usage: Some(Usage {
                            prompt_tokens: 10,
                            completion_tokens: 2,
                            total_tokens: 12,
                            ..Usage::default()
                        }),
                        ..ChatChunk::default()
                    }),
                    upstream: None,
                    credential: String::new(),
                    provider_exhausted_ms: 0,
                }),
                Ok(AdapterChatResponse {
                    chunk: None,
                    upstream: Some(UpstreamTiming {
                        first_chunk_micros: 1_000,
                        total_micros: 2_000,
                    }),
                    credential: FAKE_KEY_ID.to_owned(),
                    provider_exhausted_ms: 0,
                }),
            ];
            Ok(Response::new(futures::stream::iter(chunks).boxed()))
        }

        async fn embed(
            &self,
            request: Request<AdapterEmbedRequest>,
        ) -> Result<Response<AdapterEmbedResponse>, Status> {
            self.answer(&request.get_ref().deployment_id)?;
            Ok(Response::new(AdapterEmbedResponse {
                credential: FAKE_KEY_ID.to_owned(),
                provider_exhausted_ms: 0,
                upstream: Some(UpstreamTiming {
                    first_chunk_micros: 3_000,
                    total_micros: 3_000,
                }),
                response: Some(EmbedResponse {
                    usage: Some(Usage {
                        prompt_tokens: 4,
                        total_tokens: 4,
                        ..Usage::default()
                    }),
                    ..EmbedResponse::default()
                }),
            }))
        }
    }

    fn deployment(id: &str) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: id.to_owned(),
            provider: "fake".to_owned(),
            ..Deployment::default()
        })
    }

    async fn run(
        script: &[(&str, Result<&'static str, ErrorClass>)],
    ) -> (
        Result<String, ServiceError>,
        Vec<AttemptRecord>,
        Vec<String>,
    ) {
        run_with(&RequestContext::default(), Setup::default(), script).await
    }

    /// How a test route retries and hedges, and how long each scripted
    /// deployment takes to answer.
    #[derive(Default)]
    struct Setup {
        retry: RetryRules,
        hedge_after: Option<Duration>,
        delays: HashMap<&'static str, Duration>,
        /// (deployment, successor): each successor is scripted but left
        /// out of the planned candidates.
        successors: Vec<(&'static str, &'static str)>,
        /// Whether the route hedges after the observed p95, and the times
        /// to first token each deployment answered in before.
        hedge_after_p95: bool,
        seen: Vec<(&'static str, Duration)>,
        /// Context windows of scripted deployments (unknown when absent).
        windows: HashMap<&'static str, u32>,
    }

    impl From<RetryRules> for Setup {
        fn from(retry: RetryRules) -> Self {
            Self {
                retry,
                ..Self::default()
            }
        }
    }

    /// Runs the fallback loop for a request with `context`'s deadline.
    async fn run_within(
        context: &RequestContext,
        script: &[(&str, Result<&'static str, ErrorClass>)],
    ) -> (
        Result<String, ServiceError>,
        Vec<AttemptRecord>,
        Vec<String>,
    ) {
        run_with(context, Setup::default(), script).await
    }

    /// Runs the fallback loop for a request with `context`'s deadline on a
    /// route retrying by `retry`.
    async fn run_with(
        context: &RequestContext,
        setup: impl Into<Setup>,
        script: &[(&str, Result<&'static str, ErrorClass>)],
    ) -> (
        Result<String, ServiceError>,
        Vec<AttemptRecord>,
        Vec<String>,
    ) {
        let fake = FakeAdapters::new(script);
        let adapters = Adapters::new(AdapterClient::direct(Arc::clone(&fake)));
        let Setup {
            retry,
            hedge_after,
            delays,
            successors,
            hedge_after_p95,
            seen,
            windows,
        } = setup.into();
        let candidates: Vec<_> = script
            .iter()
            .filter(|(id, _)| !successors.iter().any(|(_, successor)| successor == id))
            .map(|(id, _)| {
                let mut deployment = deployment(id);
                Arc::make_mut(&mut deployment).context_window =
                    windows.get(id).copied().unwrap_or(0);
                deployment
            })
            .collect();
        let successors = successors
            .iter()
            .map(|(of, successor)| (deployment(of), deployment(successor)))
            .collect();
        let mut records = Vec::new();
        let parent = HopSpan::none();
        let attempt = |deployment: Arc<Deployment>, _, context| {
            let adapters = adapters.clone();
            let delay = delays.get(deployment.id.as_str()).copied();
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let open = adapters
                    .open_chat(context, &deployment, ChatRequest::default(), None)
                    .await?;
                Ok(open
                    .first
                    .chunk
                    .map(|chunk| chunk.content)
                    .unwrap_or_default())
            }
        };
        let health = Health::new(crate::breaker::BreakerConfig::default());
        for (id, first_token) in seen {
            let seen_at = deployment(id);
            for _ in 0..crate::latency::MIN_SAMPLES {
                let ticket = health.admit(&seen_at).expect("closed");
                health.record(&seen_at, ticket, Ok(first_token));
            }
        }
        let mut plan = Plan {
            route: Arc::new(crate::route_table::Route {
                name: "r".to_owned(),
                tiers: Vec::new(),
                cache_ttl: None,
                retry,
                hedge_after,
                hedge_after_p95,
                slo: crate::route_table::Slo::default(),
                shadow: None,
                rules: Vec::new(),
                timeouts: crate::timeouts::Timeouts::default(),
                cost_ceiling: None,
                tier_routes: std::collections::HashMap::new(),
            }),
            candidates,
            snapshot_version: 1,
            decision: switchyard_proto::v1::Decision::default(),
            successors,
            estimated_tokens: 0,
            prompt_tokens: 0,
            shadow: None,
        };
        let result =
            try_in_order(context, &parent, &mut plan, &health, &mut records, attempt).await;
        (result, records, fake.calls())
    }

    #[test]
    fn upstream_time_counts_failed_attempts_whole_and_the_answer_as_measured() {
        let started = Instant::now();
        let record = |spent_ms: u64, upstream: Option<UpstreamTiming>| AttemptRecord {
            deployment: deployment("d"),
            started,
            first_chunk_at: None,
            ended: Some(started + Duration::from_millis(spent_ms)),
            outcome: upstream
                .is_none()
                .then_some(ErrorClass::UpstreamUnavailable),
            usage: Usage::default(),
            upstream,
            credential: String::new(),
            reason: "first",
            span: HopSpan::none(),
            permit: None,
        };
        let answer = UpstreamTiming {
            first_chunk_micros: 300,
            total_micros: 900,
        };
        let timing = upstream_timing(&[record(2, None), record(50, Some(answer))]);
        assert_eq!(
            (timing.first_chunk_micros, timing.total_micros),
            (2_300, 2_900)
        );
        let failed = upstream_timing(&[record(2, None), record(3, None)]);
        assert_eq!(
            (failed.first_chunk_micros, failed.total_micros),
            (5_000, 5_000)
        );
        assert_eq!(upstream_timing(&[]).total_micros, 0);
    }

    #[tokio::test]
    async fn retryable_failures_go_to_the_next_deployment() {
        for class in [
            ErrorClass::RateLimited,
            ErrorClass::Overloaded,
            ErrorClass::UpstreamUnavailable,
            ErrorClass::Timeout,
        ] {
            let no_retries = RetryRules {
                per_deployment: Some(0),
                ..RetryRules::default()
            };
            let (result, records, calls) = run_with(
                &RequestContext::default(),
                no_retries,
                &[("a", Err(class)), ("b", Ok("from b"))],
            )
            .await;
            assert_eq!(result.expect("b answers"), "from b", "{class}");
            assert_eq!(calls, ["a", "b"]);
            assert_eq!(records.len(), 2);
            assert_eq!(records[0].outcome, Some(class));
            assert!(records[0].ended.is_some());
            assert_eq!(records[1].outcome, None);
            assert!(records[1].first_chunk_at.is_some() && records[1].ended.is_none());
        }
    }

    #[tokio::test]
    async fn nothing_is_tried_once_the_request_deadline_has_passed() {
        let expired = RequestContext {
            deadline_unix_ms: 1,
            ..RequestContext::default()
        };
        let (result, records, calls) = run_within(
            &expired,
            &[("a", Err(ErrorClass::Timeout)), ("b", Ok("late"))],
        )
        .await;
        assert_eq!(result.expect_err("out of time").class, ErrorClass::Timeout);
        assert_eq!(calls, ["a"], "b could only fail the same way");
        assert_eq!(records.len(), 1);
    }

    #[tokio::test]
    async fn a_fallbacks_refusal_does_not_hide_the_primarys_outage() {
        let (result, records, calls) = run(&[
            ("a", Err(ErrorClass::UpstreamUnavailable)),
            ("b", Err(ErrorClass::InvalidRequest)),
            ("c", Ok("never")),
        ])
        .await;
        assert_eq!(
            result.expect_err("both failed").class,
            ErrorClass::UpstreamUnavailable
        );
        assert_eq!(calls, ["a", "b"]);
        assert_eq!(records[1].outcome, Some(ErrorClass::InvalidRequest));
    }

    #[tokio::test]
    async fn a_prompt_too_long_goes_to_a_larger_window_only_when_the_route_allows() {
        let script = [
            ("small", Err(ErrorClass::ContextLengthExceeded)),
            ("same", Ok("never")),
            ("large", Ok("fits")),
        ];
        let windows = HashMap::from([("small", 8_000), ("same", 8_000), ("large", 128_000)]);
        let setup = |larger_window| Setup {
            retry: RetryRules {
                larger_window,
                ..RetryRules::default()
            },
            windows: windows.clone(),
            ..Setup::default()
        };
        let (result, records, calls) =
            run_with(&RequestContext::default(), setup(true), &script).await;
        assert_eq!(result.expect("the larger window answers"), "fits");
        assert_eq!(calls, ["small", "large"], "one no larger is skipped");
        assert_eq!(records.len(), 2);

        let (result, _, calls) = run_with(&RequestContext::default(), setup(false), &script).await;
        assert_eq!(
            result.expect_err("the client's error").class,
            ErrorClass::ContextLengthExceeded
        );
        assert_eq!(calls, ["small"]);
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried_elsewhere() {
        let (result, records, calls) =
            run(&[("a", Err(ErrorClass::InvalidRequest)), ("b", Ok("never"))]).await;
        assert_eq!(
            result.expect_err("400 stops").class,
            ErrorClass::InvalidRequest
        );
        assert_eq!(calls, ["a"], "b was never called");
        assert_eq!(records.len(), 1);
    }

    #[tokio::test]
    async fn the_last_error_is_returned_when_every_deployment_fails() {
        let (result, records, calls) = run(&[
            ("a", Err(ErrorClass::RateLimited)),
            ("b", Err(ErrorClass::Overloaded)),
        ])
        .await;
        assert_eq!(
            result.expect_err("all failed").class,
            ErrorClass::Overloaded
        );
        // By default a 429 goes elsewhere at once, and an overload is
        // waited out once in place.
        assert_eq!(calls, ["a", "b", "b"]);
        let outcomes: Vec<_> = records.iter().map(|record| record.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Some(ErrorClass::RateLimited),
                Some(ErrorClass::Overloaded),
                Some(ErrorClass::Overloaded)
            ]
        );
    }

    #[tokio::test]
    async fn retries_in_place_are_bounded_by_the_route_and_the_deadline() {
        let context = RequestContext::default();
        let twice = RetryRules {
            per_deployment: Some(2),
            ..RetryRules::default()
        };
        let script = [
            ("a", Err(ErrorClass::UpstreamUnavailable)),
            ("b", Ok("from b")),
        ];
        let (result, _, calls) = run_with(&context, twice, &script).await;
        assert_eq!(result.expect("b answers"), "from b");
        assert_eq!(calls, ["a", "a", "a", "b"]);
        // `max_attempts` counts every attempt.
        let capped = RetryRules {
            max_attempts: Some(2),
            ..twice
        };
        let (result, _, calls) = run_with(&context, capped, &script).await;
        assert_eq!(
            result.expect_err("out of attempts").class,
            ErrorClass::UpstreamUnavailable
        );
        assert_eq!(calls, ["a", "a"]);
        // A wait that would end after the deadline is not waited.
        let soon = RequestContext {
            deadline_unix_ms: u64::try_from(
                (std::time::SystemTime::now() + Duration::from_millis(150))
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after the epoch")
                    .as_millis(),
            )
            .expect("fits"),
            ..RequestContext::default()
        };
        let started = Instant::now();
        let (result, _, calls) = run_with(&soon, twice, &script).await;
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "no wait ran past the deadline: {:?}",
            started.elapsed()
        );
        assert!(calls.len() <= 4);
        if result.is_ok() {
            assert_eq!(calls.last().map(String::as_str), Some("b"));
        }
    }

    #[tokio::test]
    async fn the_fallback_delay_is_waited_before_the_next_deployment() {
        let delayed = RetryRules {
            per_deployment: Some(0),
            fallback_delay: Duration::from_millis(120),
            ..RetryRules::default()
        };
        let started = Instant::now();
        let (result, _, calls) = run_with(
            &RequestContext::default(),
            delayed,
            &[("a", Err(ErrorClass::RateLimited)), ("b", Ok("from b"))],
        )
        .await;
        assert_eq!(result.expect("b answers"), "from b");
        assert_eq!(calls, ["a", "b"]);
        assert!(started.elapsed() >= Duration::from_millis(120));
    }

    #[tokio::test]
    async fn a_slow_first_attempt_is_hedged_and_the_faster_answer_served() {
        let hedged = Setup {
            hedge_after: Some(Duration::from_millis(50)),
            delays: HashMap::from([("a", Duration::from_secs(5))]),
            ..Setup::default()
        };
        let started = Instant::now();
        let (result, records, calls) = run_with(
            &RequestContext::default(),
            hedged,
            &[
                ("a", Ok("slow a")),
                ("b", Ok("quick b")),
                ("c", Ok("never")),
            ],
        )
        .await;
        assert_eq!(result.expect("b answers"), "quick b");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a was not waited for"
        );
        assert_eq!(
            calls,
            ["b"],
            "a was cancelled before it reached the adapters"
        );
        // Both are recorded, the answering one last.
        let kept: Vec<_> = records
            .iter()
            .map(|record| (record.deployment.id.as_str(), record.outcome))
            .collect();
        assert_eq!(kept, [("a", Some(ErrorClass::Cancelled)), ("b", None)]);
        // After its observed p95 instead (40 ms here), when the route asks.
        let by_p95 = Setup {
            hedge_after: Some(Duration::from_secs(3)),
            hedge_after_p95: true,
            seen: vec![("a", Duration::from_millis(40))],
            delays: HashMap::from([("a", Duration::from_secs(5))]),
            ..Setup::default()
        };
        let started = Instant::now();
        let (result, _, _) = run_with(
            &RequestContext::default(),
            by_p95,
            &[("a", Ok("slow a")), ("b", Ok("quick b"))],
        )
        .await;
        assert_eq!(result.expect("b answers"), "quick b");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "hedged after a's p95, not the fixed 3 s"
        );
        // A first attempt that answers within the delay is never hedged.
        let not_needed = Setup {
            hedge_after: Some(Duration::from_millis(500)),
            ..Setup::default()
        };
        let (result, records, calls) = run_with(
            &RequestContext::default(),
            not_needed,
            &[("a", Ok("from a")), ("b", Ok("never"))],
        )
        .await;
        assert_eq!(result.expect("a answers"), "from a");
        assert_eq!((calls.len(), records.len()), (1, 1));
    }

    #[tokio::test]
    async fn when_both_hedged_attempts_fail_the_next_deployment_is_tried() {
        let hedged = Setup {
            hedge_after: Some(Duration::from_millis(20)),
            delays: HashMap::from([("a", Duration::from_millis(100))]),
            retry: RetryRules {
                per_deployment: Some(0),
                ..RetryRules::default()
            },
            ..Setup::default()
        };
        let (result, records, calls) = run_with(
            &RequestContext::default(),
            hedged,
            &[
                ("a", Err(ErrorClass::Timeout)),
                ("b", Err(ErrorClass::UpstreamUnavailable)),
                ("c", Ok("from c")),
            ],
        )
        .await;
        assert_eq!(result.expect("c answers"), "from c");
        assert_eq!(calls, ["b", "a", "c"]);
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].deployment.id, "c");
    }

    #[test]
    fn a_retry_waits_the_providers_retry_after_else_a_jittered_backoff() {
        let told = ServiceError::new(ErrorClass::RateLimited, "slow down")
            .with_retry_after(Duration::from_millis(700));
        assert_eq!(wait_before_retry(&told, 1), Duration::from_millis(700));
        let untold = ServiceError::new(ErrorClass::Overloaded, "busy");
        for tries in 1..6 {
            let ceiling = Duration::from_millis(250 << (tries - 1)).min(Duration::from_secs(4));
            let waits: Vec<Duration> = (0..50).map(|_| wait_before_retry(&untold, tries)).collect();
            assert!(
                waits.iter().all(|wait| *wait <= ceiling),
                "{tries}: {waits:?}"
            );
            assert!(waits.iter().any(|wait| *wait != waits[0]), "jittered");
        }
    }

    #[tokio::test]
    async fn a_provider_refusing_the_gateway_goes_to_the_next_deployment() {
        let (result, records, calls) =
            run(&[("a", Err(ErrorClass::ProviderAuth)), ("b", Ok("from b"))]).await;
        assert_eq!(result.expect("b answers"), "from b");
        assert_eq!(calls, ["a", "b"]);
        assert_eq!(records[0].outcome, Some(ErrorClass::ProviderAuth));
    }

    #[tokio::test]
    async fn an_upstream_model_the_provider_does_not_know_is_the_gateways_problem() {
        let (result, records, calls) =
            run(&[("a", Err(ErrorClass::NotFound)), ("b", Ok("from b"))]).await;
        assert_eq!(result.expect("b answers"), "from b");
        assert_eq!(calls, ["a", "b"]);
        assert_eq!(records[0].outcome, Some(ErrorClass::UpstreamUnavailable));
    }

    #[tokio::test]
    async fn a_model_the_provider_no_longer_knows_goes_to_its_successor_first() {
        // Even where the route retries in place: a missing model is not
        // waited out.
        let setup = Setup {
            successors: vec![("old", "new")],
            retry: RetryRules {
                per_deployment: Some(2),
                ..RetryRules::default()
            },
            ..Setup::default()
        };
        let (result, records, calls) = run_with(
            &RequestContext::default(),
            setup,
            &[
                ("old", Err(ErrorClass::NotFound)),
                ("other", Ok("from other")),
                ("new", Ok("from new")),
            ],
        )
        .await;
        assert_eq!(result.expect("the successor answers"), "from new");
        assert_eq!(calls, ["old", "new"]);
        let reasons: Vec<_> = records.iter().map(|record| record.reason).collect();
        assert_eq!(reasons, ["first", "successor"]);

        // Any other failure falls back as planned.
        let setup = Setup {
            successors: vec![("old", "new")],
            ..Setup::default()
        };
        let (result, _, calls) = run_with(
            &RequestContext::default(),
            setup,
            &[
                ("old", Err(ErrorClass::UpstreamUnavailable)),
                ("other", Ok("from other")),
                ("new", Ok("from new")),
            ],
        )
        .await;
        assert_eq!(result.expect("the plan's next answers"), "from other");
        assert_eq!(calls, ["old", "other"]);
    }
}
