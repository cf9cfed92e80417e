//! OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama,
//! DeepSeek, ...): `POST {base_url}/chat/completions` with a bearer key.
//! Each compatible server is a [`Flavor`] (see `compat`) that adjusts the
//! URL, the credentials header and the body; answers are read the same way.

mod compat;
mod embeddings;
mod request;
mod response;
pub(crate) mod stream;

use futures::StreamExt;
use switchyard_common::ServiceError;

pub use self::compat::Flavor;
use self::response::Completion;
use crate::{
    classify,
    http::{self, HttpClient},
    provider::{Attempt, ChunkStream},
    sse,
};

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
        let request = flavor.post_json(
            attempt.client(&self.http),
            &url,
            attempt.api_key.as_ref(),
            body,
        );
        let api_key = attempt.api_key.as_ref();
        let answer = http::exchange(
            provider,
            request,
            attempt.limits,
            attempt.trace.as_ref(),
            |refusal| {
                let detail = response::error_detail(refusal.body).unwrap_or_default();
                classify::upstream_error(
                    provider,
                    refusal.status,
                    refusal.headers,
                    &detail,
                    api_key,
                )
            },
        )
        .await?;
        if attempt.request.stream && answer.has_content_type(sse::MEDIA_TYPE) {
            return Ok(stream::chunks(provider, answer.body, attempt.api_key));
        }
        // Not streamed (or a server that ignored `stream`): one whole object.
        let bytes = answer.body.read_to_end().await?;
        let chunks = whole_answer(provider, &bytes, attempt.api_key.as_ref())?;
        Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
    }
}

/// Translates a non-streamed answer: one chat completion, or the error a
/// server put in a success status.
pub(crate) fn whole_answer(
    provider: &str,
    bytes: &[u8],
    api_key: Option<&switchyard_common::Secret>,
) -> Result<Vec<switchyard_proto::v1::ChatChunk>, ServiceError> {
    let mut completion: Completion = serde_json::from_slice(bytes).map_err(|_| {
        classify::malformed_response(provider, "a response that is not a chat completion")
    })?;
    if let Some(error) = completion.error.take() {
        return Err(classify::in_band_error(
            provider,
            &error.into_detail(),
            api_key,
        ));
    }
    Ok(completion.into_chunks())
}
