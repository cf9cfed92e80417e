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

use crate::{health::Health, plan::skip, spans};
use futures::StreamExt;
use switchyard_common::{
    ErrorClass, ServiceError,
    client::{AdapterClient, ResponseStream, outbound},
    trace::HopSpan,
};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, ChatRequest, Decision,
    Deployment, EmbedRequest, EmbedResponse, RequestContext, UpstreamTiming, Usage,
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
    /// The attempt's span while it is open.
    pub span: HopSpan,
}

impl AttemptRecord {
    /// Records that the attempt failed with `class` now, and ends its span.
    pub fn fail(&mut self, class: ErrorClass) {
        self.outcome = Some(class);
        self.ended = Some(Instant::now());
        self.span.fail(class.as_str());
        self.span = HopSpan::none();
    }
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

    /// Sends the request to `deployment` and waits for its first message.
    pub async fn open_chat(
        &self,
        context: RequestContext,
        deployment: &Deployment,
        request: ChatRequest,
    ) -> Result<OpenAttempt, ServiceError> {
        let mut rest = self
            .client
            .chat(AdapterChatRequest {
                context: Some(context),
                request: Some(request),
                deployment_id: deployment.id.clone(),
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

    /// Sends an embeddings request to `deployment` and returns its answer.
    pub async fn embed(
        &self,
        context: RequestContext,
        deployment: &Deployment,
        request: EmbedRequest,
    ) -> Result<EmbedAnswer, ServiceError> {
        let response = self
            .client
            .embed(AdapterEmbedRequest {
                context: Some(context),
                request: Some(request),
                deployment_id: deployment.id.clone(),
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
            response: answer,
            upstream: response.upstream,
            credential: response.credential,
        })
    }
}

/// A provider refusing the gateway's own credentials (`provider_auth`, as
/// the adapters report it) or not knowing the configured upstream model is
/// the gateway's problem, not the client's: it is logged here, and an
/// unknown upstream model becomes `upstream_unavailable` (502, and another
/// deployment may be tried) rather than a 404 the client would take for
/// its own model.
fn as_gateway_error(error: ServiceError) -> ServiceError {
    let Some(provider) = error.provider.clone() else {
        return error;
    };
    match error.class {
        ErrorClass::ProviderAuth => {
            tracing::warn!(%provider, class = %error.class, "provider refused the gateway's credentials");
            error
        }
        ErrorClass::NotFound => {
            tracing::warn!(%provider, class = %error.class, "provider does not know the configured model");
            ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                format!(
                    "The provider `{provider}` does not know the configured model; check its configuration."
                ),
            )
            .with_provider(provider)
        }
        _ => error,
    }
}

/// Tries `candidates` in order with `attempt` (given each deployment,
/// whether it is the last, and the context to send it, naming the
/// attempt's span under `parent`) until one answers; moves on only after a
/// retryable failure, and never once the request's deadline (in `context`)
/// has passed: the next deployment could only fail the same way. Each
/// deployment's breaker must admit the attempt (a refusal is recorded in
/// `decision`), and hears how it ended. Appends one record per attempt to
/// `records` (the answering one left open for the caller to close).
/// Returns the answer, or the error that explains the most: a fallback's
/// refusal of what it cannot express does not hide the outage before it.
pub async fn try_in_order<T, F, Fut>(
    context: &RequestContext,
    parent: &HopSpan,
    candidates: &[Arc<Deployment>],
    health: &Health,
    decision: &mut Decision,
    records: &mut Vec<AttemptRecord>,
    mut attempt: F,
) -> Result<T, ServiceError>
where
    F: FnMut(Arc<Deployment>, bool, RequestContext) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let last = candidates.len().saturating_sub(1);
    let mut first_outage: Option<ServiceError> = None;
    let mut last_error = None;
    for (position, deployment) in candidates.iter().enumerate() {
        let Some(ticket) = health.admit(deployment) else {
            // Its breaker opened since the plan was made.
            skip(decision, &deployment.id, "attempt", "breaker_open");
            continue;
        };
        let span = spans::attempt(parent, deployment, position);
        let mut sent = context.clone();
        span.hand_on(&mut sent);
        let started = Instant::now();
        let result = attempt(Arc::clone(deployment), position == last, sent).await;
        let mut record = AttemptRecord {
            deployment: Arc::clone(deployment),
            started,
            first_chunk_at: None,
            ended: None,
            outcome: None,
            usage: Usage::default(),
            upstream: None,
            credential: String::new(),
            span,
        };
        match result {
            Ok(answer) => {
                health.record(deployment, ticket, Ok(started.elapsed()));
                record.first_chunk_at = Some(Instant::now());
                records.push(record);
                return Ok(answer);
            }
            Err(error) => {
                health.record(deployment, ticket, Err(error.class));
                record.fail(error.class);
                record.credential = error.credential.as_deref().unwrap_or_default().to_owned();
                records.push(record);
                let out_of_time = outbound::remaining(context) == Some(Duration::ZERO);
                if !(error.class.is_retryable() && position < last) || out_of_time {
                    return Err(explaining(first_outage, error));
                }
                tracing::info!(deployment = %deployment.id, class = %error.class, "attempt failed; trying the next deployment");
                if first_outage.is_none() {
                    first_outage = Some(error);
                } else {
                    last_error = Some(error);
                }
            }
        }
    }
    Err(first_outage.or(last_error).unwrap_or_else(|| {
        ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            "Every deployment of this model is unavailable right now (circuit breakers open); try again shortly.",
        )
    }))
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
                }),
                Ok(AdapterChatResponse {
                    chunk: None,
                    upstream: Some(UpstreamTiming {
                        first_chunk_micros: 1_000,
                        total_micros: 2_000,
                    }),
                    credential: FAKE_KEY_ID.to_owned(),
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
        run_within(&RequestContext::default(), script).await
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
        let fake = FakeAdapters::new(script);
        let adapters = Adapters::new(AdapterClient::direct(Arc::clone(&fake)));
        let candidates: Vec<_> = script.iter().map(|(id, _)| deployment(id)).collect();
        let mut records = Vec::new();
        let parent = HopSpan::none();
        let attempt = |deployment: Arc<Deployment>, _, context| {
            let adapters = adapters.clone();
            async move {
                let open = adapters
                    .open_chat(context, &deployment, ChatRequest::default())
                    .await?;
                Ok(open
                    .first
                    .chunk
                    .map(|chunk| chunk.content)
                    .unwrap_or_default())
            }
        };
        let health = Health::new(crate::breaker::BreakerConfig::default());
        let mut decision = Decision::default();
        let result = try_in_order(
            context,
            &parent,
            &candidates,
            &health,
            &mut decision,
            &mut records,
            attempt,
        )
        .await;
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
            span: HopSpan::none(),
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
            let (result, records, calls) = run(&[("a", Err(class)), ("b", Ok("from b"))]).await;
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
        let (result, records, _) = run(&[
            ("a", Err(ErrorClass::RateLimited)),
            ("b", Err(ErrorClass::Overloaded)),
        ])
        .await;
        assert_eq!(
            result.expect_err("all failed").class,
            ErrorClass::Overloaded
        );
        let outcomes: Vec<_> = records.iter().map(|record| record.outcome).collect();
        assert_eq!(
            outcomes,
            [Some(ErrorClass::RateLimited), Some(ErrorClass::Overloaded)]
        );
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
}
