//! Attempts: one request sent to one target through the adapters, and the
//! fallback over a route's targets.

use std::future::Future;

use futures::StreamExt;
use switchyard_common::{
    ErrorClass, ServiceError,
    direct::{AdapterClient, ResponseStream},
};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, ChatRequest, EmbedRequest,
    EmbedResponse, RequestContext, Target,
};

/// The client side of the adapters.
#[derive(Clone)]
pub struct Adapters {
    client: AdapterClient,
}

/// An attempt that has produced its first message.
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

    /// Sends the request to `target` and waits for its first message, so a
    /// failure before any output can still be retried elsewhere.
    pub async fn open(
        &self,
        context: RequestContext,
        target: Target,
        request: ChatRequest,
    ) -> Result<OpenAttempt, ServiceError> {
        let provider = target.provider.clone();
        let mut rest = self
            .client
            .chat(AdapterChatRequest {
                context: Some(context),
                target: Some(target),
                request: Some(request),
            })
            .await
            .map_err(|status| as_gateway_error(ServiceError::from_status(&status)))?;
        match rest.next().await {
            Some(Ok(first)) => Ok(OpenAttempt { first, rest }),
            None => Err(ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                "the provider returned an empty response",
            )
            .with_provider(provider)),
            Some(Err(status)) => Err(as_gateway_error(ServiceError::from_status(&status))),
        }
    }
}

impl Adapters {
    /// Sends an embeddings request to `target` and returns its answer.
    pub async fn embed(
        &self,
        context: RequestContext,
        target: Target,
        request: EmbedRequest,
    ) -> Result<EmbedResponse, ServiceError> {
        let provider = target.provider.clone();
        let response = self
            .client
            .embed(AdapterEmbedRequest {
                context: Some(context),
                target: Some(target),
                request: Some(request),
            })
            .await
            .map_err(|status| as_gateway_error(ServiceError::from_status(&status)))?;
        response.response.ok_or_else(|| {
            ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                "the provider returned an empty response",
            )
            .with_provider(provider)
        })
    }
}

/// A provider refusing the gateway's own credentials, or not knowing the
/// configured upstream model, is the gateway's problem, not the client's: it
/// becomes `upstream_unavailable` (502, and another target may be tried)
/// rather than a 401/403/404 the client would take for its own key or model.
fn as_gateway_error(error: ServiceError) -> ServiceError {
    let class = error.class;
    let Some(provider) = error.provider.clone() else {
        return error;
    };
    if !matches!(
        class,
        ErrorClass::Authentication | ErrorClass::Permission | ErrorClass::NotFound
    ) {
        return error;
    }
    tracing::warn!(%provider, %class, "provider refused the gateway's request");
    ServiceError::new(
        ErrorClass::UpstreamUnavailable,
        format!(
            "The provider `{provider}` refused the gateway's request ({class}); check its configuration."
        ),
    )
    .with_provider(provider)
}

/// Tries `targets` in order with `attempt` (given each target and whether it
/// is the last) until one succeeds; moves on only after a retryable failure.
/// Returns the target that answered and its answer, or the last error.
pub async fn try_targets<'t, T, F, Fut>(
    targets: &'t [Target],
    mut attempt: F,
) -> Result<(&'t Target, T), ServiceError>
where
    F: FnMut(&'t Target, bool) -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let last = targets.len().saturating_sub(1);
    let mut last_error = None;
    for (position, target) in targets.iter().enumerate() {
        match attempt(target, position == last).await {
            Ok(answer) => return Ok((target, answer)),
            Err(error) if error.class.is_retryable() && position < last => {
                tracing::info!(provider = %target.provider, class = %error.class, "attempt failed; trying next target");
                last_error = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| ServiceError::internal("no target was attempted")))
}
