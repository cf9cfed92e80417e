//! [`AdapterGrpc`]: the `AdapterService` implementation.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, stream::BoxStream};
use switchyard_common::{
    ErrorClass, ServiceError,
    memory::ByteBudget,
    snapshot::{STARTUP_PATIENCE, SnapshotHandle},
    trace::HopSpan,
};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, AdapterEmbedResponse,
    AttemptTimeouts, EmbedResponse, RequestContext, UpstreamTiming,
    adapter_service_server::AdapterService,
};
use tonic::{Request, Response, Status};

use crate::{
    api_keys::KeyRotation,
    classify,
    config::AdapterConfig,
    deadlines,
    deployments::DeploymentIndex,
    error::Result,
    http::{AttemptLimits, BodySizes, HttpClient, TraceHeaders},
    network::NetworkClients,
    provider::{Attempt, ProviderKind, Providers},
    rate_limits::LimitReport,
    secrets::SecretResolver,
    spans,
    timing::{self, Timed},
};

/// Serves attempts: looks the deployment up in its own snapshot, resolves
/// its provider's secrets, dispatches on the provider's kind and streams the
/// answer back as canonical chunks.
#[derive(Clone)]
pub struct AdapterGrpc {
    providers: Providers,
    deployments: SnapshotHandle<DeploymentIndex>,
    secrets: Arc<SecretResolver>,
    /// Timeout of providers that do not set one.
    default_timeout: Duration,
    /// Largest stream event and buffered answer an attempt may receive.
    sizes: BodySizes,
    /// Bytes of buffered answers all attempts may hold at once.
    answers_in_flight: ByteBudget,
    /// The clients of providers with their own proxy or CA bundle.
    network: Arc<NetworkClients>,
    /// Which of a provider's several keys the next attempt uses.
    keys: Arc<KeyRotation>,
}

/// The provider API key an attempt uses, when its provider has several.
#[derive(Debug, Clone)]
struct KeyInUse {
    provider: String,
    id: String,
}

impl std::fmt::Debug for AdapterGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterGrpc").finish_non_exhaustive()
    }
}

impl AdapterGrpc {
    /// Creates the service over its snapshot; keys are resolved by `secrets`.
    pub(crate) fn new(
        config: &AdapterConfig,
        deployments: SnapshotHandle<DeploymentIndex>,
        secrets: SecretResolver,
        keys: KeyRotation,
    ) -> Result<Self> {
        Ok(Self {
            providers: Providers::new(HttpClient::new(config)?),
            deployments,
            secrets: Arc::new(secrets),
            default_timeout: config.request_timeout,
            sizes: BodySizes {
                max_event_bytes: config.max_event_bytes,
                max_answer_bytes: config.max_answer_bytes,
            },
            answers_in_flight: ByteBudget::new(config.max_buffered_answer_bytes),
            network: NetworkClients::new(config),
            keys: Arc::new(keys),
        })
    }

    /// See [`failed`].
    fn failed(&self, key: Option<&KeyInUse>, error: ServiceError) -> ServiceError {
        failed(&self.keys, key, error)
    }

    /// Starts a chat attempt; returns its chunks, when its request was sent
    /// and the key it used.
    async fn start_attempt(
        &self,
        request: AdapterChatRequest,
        span: &HopSpan,
    ) -> Result<
        (
            crate::provider::ChunkStream,
            std::time::Instant,
            Option<KeyInUse>,
            LimitReport,
        ),
        ServiceError,
    > {
        let AdapterChatRequest {
            context,
            request,
            deployment_id,
            timeouts,
        } = request;
        let streamed = request.as_ref().is_some_and(|request| request.stream);
        let (kind, mut attempt, key) = self
            .attempt(
                "chat",
                context,
                &deployment_id,
                request,
                (timeouts, streamed),
                span,
            )
            .await?;
        attempt.request.model.clone_from(&attempt.upstream_model);
        let limits = attempt.limits.limit_report.clone();
        let sent = std::time::Instant::now();
        match self.providers.chat(kind, attempt).await {
            Ok(chunks) => Ok((chunks, sent, key, limits)),
            Err(error) => Err(self.failed(key.as_ref(), error)),
        }
    }

    /// Starts an embeddings attempt and waits for its answer; returns it
    /// with how long the provider took and the key it used.
    async fn embed_attempt(
        &self,
        request: AdapterEmbedRequest,
        span: &HopSpan,
    ) -> Result<(EmbedResponse, UpstreamTiming, Option<KeyInUse>, LimitReport), ServiceError> {
        let AdapterEmbedRequest {
            context,
            request,
            deployment_id,
            timeouts,
        } = request;
        let (kind, mut attempt, key) = self
            .attempt(
                "embeddings",
                context,
                &deployment_id,
                request,
                (timeouts, false),
                span,
            )
            .await?;
        attempt.request.model.clone_from(&attempt.upstream_model);
        let limits = attempt.limits.limit_report.clone();
        let sent = std::time::Instant::now();
        match self.providers.embed(kind, attempt).await {
            Ok(response) => Ok((response, timing::whole(sent), key, limits)),
            Err(error) => Err(self.failed(key.as_ref(), error)),
        }
    }

    /// Resolves a deployment's provider, key, secrets and deadlines (from
    /// `timing`: the router's timeouts, and whether the answer is streamed)
    /// into an attempt, named on the call's `span`, with the key it uses
    /// when the provider has several. Refuses a deployment its snapshot
    /// does not declare. An error is final (classified, naming the key).
    async fn attempt<R>(
        &self,
        operation: &'static str,
        context: Option<RequestContext>,
        deployment_id: &str,
        request: Option<R>,
        timing: (Option<AttemptTimeouts>, bool),
        span: &HopSpan,
    ) -> Result<(ProviderKind, Attempt<R>, Option<KeyInUse>), ServiceError> {
        let request =
            request.ok_or_else(|| ServiceError::invalid_request("the attempt has no request"))?;
        let index = self
            .deployments
            .load_or_wait(STARTUP_PATIENCE)
            .await
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorClass::ServiceUnavailable,
                    "The gateway is starting; try again shortly.",
                )
            })?;
        let deployment = index.get(deployment_id).ok_or_else(|| {
            ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                format!("the adapters know no deployment `{deployment_id}`"),
            )
        })?;
        let provider = &deployment.provider;
        spans::addressed(span, operation, provider, &deployment.upstream_model);
        let kind = ProviderKind::from_name(&provider.kind).ok_or_else(|| {
            ServiceError::invalid_request(format!(
                "provider kind `{}` is not supported",
                provider.kind
            ))
            .with_provider(&provider.name)
        })?;
        let (api_key, key) = if deployment.key_ids.is_empty() {
            let reference = provider.api_key.as_ref();
            let api_key = self
                .secrets
                .resolve(&provider.name, reference, &index.credentials)
                .map_err(|error| self.failed(None, error))?;
            (api_key, None)
        } else {
            let id = self.keys.pick(&provider.name, &deployment.key_ids);
            let key = KeyInUse {
                provider: provider.name.clone(),
                id: id.to_owned(),
            };
            let api_key = self
                .secrets
                .resolve(
                    &provider.name,
                    provider.api_keys.get(id),
                    &index.credentials,
                )
                .map_err(|error| self.failed(Some(&key), error))?;
            (api_key, Some(key))
        };
        let secrets = provider
            .secrets
            .iter()
            .map(|(name, reference)| {
                let secret = self
                    .secrets
                    .resolve(&provider.name, Some(reference), &index.credentials)?
                    .ok_or_else(|| {
                        ServiceError::new(
                            ErrorClass::Authentication,
                            format!(
                                "secret `{name}` of provider `{}` has no source",
                                provider.name
                            ),
                        )
                        .with_provider(&provider.name)
                    })?;
                Ok((name.clone(), secret))
            })
            .collect::<Result<_, ServiceError>>()?;
        let timeout = match provider.timeout_ms {
            0 => self.default_timeout,
            milliseconds => Duration::from_millis(milliseconds),
        };
        let (timeouts, streamed) = timing;
        let deadlines = deadlines::of_attempt(
            timeout,
            timeouts.as_ref(),
            context.as_ref(),
            streamed,
            &provider.name,
        )?;
        let trace = context
            .filter(|_| provider.propagate_trace)
            .map(|mut context| {
                span.hand_on(&mut context);
                TraceHeaders {
                    traceparent: context.traceparent,
                    tracestate: context.tracestate,
                }
            });
        let limits = AttemptLimits {
            first_byte_deadline: deadlines.first_byte,
            idle_timeout: deadlines.idle,
            end: deadlines.end,
            limit_report: LimitReport::default(),
            sizes: self.sizes,
            answers_in_flight: self.answers_in_flight.clone(),
        };
        let attempt = Attempt {
            provider: provider.name.clone(),
            base_url: provider.base_url.clone(),
            upstream_model: deployment.upstream_model.clone(),
            api_key,
            options: provider.options.clone(),
            secrets,
            limits,
            trace,
            request,
            http: self.network.for_provider(provider, deadlines.connect)?,
        };
        Ok((kind, attempt, key))
    }
}

/// Returns the error a failed attempt leaves the adapters with (see
/// [`classify::at_boundary`]), naming the key it used; rests that key when
/// the provider refused it.
fn failed(keys: &KeyRotation, key: Option<&KeyInUse>, error: ServiceError) -> ServiceError {
    let error = classify::at_boundary(error);
    let Some(key) = key else {
        return error;
    };
    keys.failed(&key.provider, &key.id, &error);
    error.with_credential(&key.id)
}

#[tonic::async_trait]
impl AdapterService for AdapterGrpc {
    type ChatStream = BoxStream<'static, Result<AdapterChatResponse, Status>>;

    async fn chat(
        &self,
        request: Request<AdapterChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        // Errors are logged at debug level only: the router decides what a
        // failed attempt means and logs the request's outcome once.
        let request = request.into_inner();
        let span = spans::open("chat", request.context.as_ref());
        let (chunks, sent, key, limits) = self.start_attempt(request, &span).await.map_err(|error| {
            let error = classify::at_boundary(error);
            tracing::debug!(class = %error.class, provider = ?error.provider, "attempt refused");
            span.fail(error.class.as_str());
            error.to_status()
        })?;
        let keys = Arc::clone(&self.keys);
        let failed_key = key.clone();
        let chunks =
            chunks.map(move |item| item.map_err(|error| failed(&keys, failed_key.as_ref(), error)));
        let credential = key.map(|key| key.id).unwrap_or_default();
        let responses = Timed::new(chunks, sent, span, credential, limits).map(|item| {
            item.map_err(|error| {
                tracing::debug!(class = %error.class, provider = ?error.provider, "attempt failed mid-stream");
                error.to_status()
            })
        });
        Ok(Response::new(responses.boxed()))
    }

    async fn embed(
        &self,
        request: Request<AdapterEmbedRequest>,
    ) -> Result<Response<AdapterEmbedResponse>, Status> {
        let request = request.into_inner();
        let span = spans::open("embeddings", request.context.as_ref());
        let (response, upstream, key, limits) = self
            .embed_attempt(request, &span)
            .await
            .map_err(|error| {
                let error = classify::at_boundary(error);
                tracing::debug!(class = %error.class, provider = ?error.provider, "embeddings attempt failed");
                span.fail(error.class.as_str());
                error.to_status()
            })?;
        if span.is_sampled()
            && let Some(usage) = &response.usage
        {
            span.record("gen_ai.usage.input_tokens", i64::from(usage.prompt_tokens));
        }
        Ok(Response::new(AdapterEmbedResponse {
            response: Some(response),
            upstream: Some(upstream),
            credential: key.map(|key| key.id).unwrap_or_default(),
            provider_exhausted_ms: limits.exhausted_ms(),
        }))
    }
}
