//! OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama,
//! DeepSeek, ...): `POST {base_url}/chat/completions` with a bearer key.
//! Each compatible server is a [`Flavor`] (see `compat`) that adjusts the
//! URL, the credentials header and the body; answers are read the same way.

mod compat;
mod embeddings;
mod request;
mod response;
mod stream;

use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use switchyard_common::{ServiceError, channel::MAX_GRPC_MESSAGE_BYTES};

pub use self::compat::Flavor;
use self::response::Completion;
use crate::{
    classify,
    http::{self, BodyReader, HttpClient},
    provider::{Attempt, ChunkStream},
};

/// Largest error body read from a provider; the rest is not needed to classify it.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The OpenAI-compatible provider.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    http: HttpClient,
}

impl OpenAiProvider {
    /// Creates the provider over the shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// Sends the attempt to OpenAI; returns its chunks once it was accepted.
    pub async fn chat(&self, attempt: Attempt) -> Result<ChunkStream, ServiceError> {
        self.chat_as(Flavor::OpenAi, attempt).await
    }

    /// Sends the attempt to a server of `flavor`; returns its chunks once
    /// the server accepted it.
    pub async fn chat_as(
        &self,
        flavor: Flavor,
        attempt: Attempt,
    ) -> Result<ChunkStream, ServiceError> {
        let provider = attempt.provider.as_str();
        let (url, body) = flavor
            .check(&attempt.request)
            .and_then(|()| {
                let dialect = flavor.dialect(&attempt)?;
                let body = request::chat_body_in(&attempt.request, dialect)?;
                Ok((flavor.url(&attempt, "chat/completions")?, body))
            })
            .map_err(|error| error.with_provider(provider))?;
        let request = flavor.post_json(&self.http, &url, attempt.api_key.as_ref(), body);
        let response = http::send(provider, request, attempt.timing).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = BodyReader::new(provider, response, attempt.timing);
        if !status.is_success() {
            // A body that fails to arrive still leaves the status to classify.
            let bytes = body
                .read_to_end(MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            let detail = response::error_detail(&bytes).unwrap_or_default();
            return Err(classify::upstream_error(
                provider,
                status.as_u16(),
                &headers,
                &detail,
                attempt.api_key.as_ref(),
            ));
        }
        let is_event_stream = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        if attempt.request.stream && is_event_stream {
            return Ok(stream::chunks(provider, body, attempt.api_key));
        }
        // Not streamed (or a server that ignored `stream`): one whole object.
        let bytes = body.read_to_end(MAX_GRPC_MESSAGE_BYTES).await?;
        let mut completion: Completion = serde_json::from_slice(&bytes).map_err(|_| {
            classify::malformed_response(provider, "a response that is not a chat completion")
        })?;
        if let Some(error) = completion.error.take() {
            return Err(classify::in_band_error(
                provider,
                &error.into_detail(),
                attempt.api_key.as_ref(),
            ));
        }
        let chunks = completion.into_chunks();
        Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
    }
}
