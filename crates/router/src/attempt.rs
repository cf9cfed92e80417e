//! Attempts: one request sent to one target through the adapters.

use switchyard_common::{GrpcChannel, ServiceError, channel::MAX_GRPC_MESSAGE_BYTES};
use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, ChatRequest, RequestContext, Target,
    adapter_service_client::AdapterServiceClient,
};
use tonic::Streaming;

/// The client side of the adapters.
#[derive(Clone)]
pub struct Adapters {
    client: AdapterServiceClient<GrpcChannel>,
}

/// An attempt that has produced its first message.
pub struct OpenAttempt {
    /// The first message, already received.
    pub first: AdapterChatResponse,
    /// The rest of the stream.
    pub rest: Streaming<AdapterChatResponse>,
}

impl Adapters {
    /// Creates the client over a channel to the adapters.
    pub fn new(channel: GrpcChannel) -> Self {
        let client = AdapterServiceClient::new(channel)
            .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
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
        let mut client = self.client.clone();
        let response = client
            .chat(AdapterChatRequest {
                context: Some(context),
                target: Some(target),
                request: Some(request),
            })
            .await
            .map_err(|status| ServiceError::from_status(&status))?;
        let mut rest = response.into_inner();
        match rest.message().await {
            Ok(Some(first)) => Ok(OpenAttempt { first, rest }),
            Ok(None) => Err(ServiceError::new(
                switchyard_common::ErrorClass::UpstreamUnavailable,
                "the provider returned an empty response",
            )
            .with_provider(provider)),
            Err(status) => Err(ServiceError::from_status(&status)),
        }
    }
}
