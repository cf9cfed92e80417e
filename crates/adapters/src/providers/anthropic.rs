//! Anthropic Messages API: `POST {base_url}/v1/messages` with an
//! `x-api-key` header (kind `anthropic`).
//!
//! `base_url` defaults to `https://api.anthropic.com` when empty; a base URL
//! that already ends in `/v1` is accepted too.
//!
//! Options (`providers[].options`):
//! - `anthropic_version`: the `anthropic-version` header (default `2023-06-01`).
//! - `anthropic_beta`: an `anthropic-beta` header, sent when set.
//! - `default_max_tokens`: `max_tokens` of requests that set none (Anthropic
//!   requires one; default 4096).
//!
//! Translation (see the submodules): system and developer messages become
//! `system`; consecutive same-role messages merge so roles alternate; tool
//! messages become `tool_result` blocks; `response_format` json_object and
//! json_schema become a forced tool whose input is returned as the message
//! content. `n` > 1, `seed`, non-zero penalties and passthrough fields other
//! than `top_k`, `thinking` and `service_tier` (e.g. `logprobs`) fail with
//! `invalid_request` naming them.

mod messages;
pub(crate) mod request;
mod response;
pub(crate) mod stream;
mod tools;

use futures::StreamExt;
use reqwest::header::HeaderValue;
use switchyard_common::{ErrorClass, ServiceError};

use self::response::WireResponse;
use crate::{
    classify,
    http::{self, HttpClient},
    provider::{Attempt, ChunkStream},
    sse,
};

/// Base URL used when a target sets none.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// `anthropic-version` sent when the `anthropic_version` option is not set.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// `max_tokens` of requests that set none, unless `default_max_tokens` says otherwise.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The Anthropic provider.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    http: HttpClient,
}

impl AnthropicProvider {
    /// Creates the provider over the shared HTTP client.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// Sends the attempt; returns its chunks once Anthropic accepted it.
    pub async fn chat(&self, attempt: Attempt) -> Result<ChunkStream, ServiceError> {
        let provider = attempt.provider.as_str();
        let with_provider = |error: ServiceError| error.with_provider(provider);
        let default_max_tokens = default_max_tokens(&attempt).map_err(with_provider)?;
        let translated =
            request::translate(&attempt.request, default_max_tokens).map_err(with_provider)?;
        let request = attempt.client(&self.http).post_json(
            &messages_url(&attempt.base_url),
            None,
            translated.body,
        );
        let request = with_headers(request, &attempt).map_err(with_provider)?;
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
        if answer.has_content_type(sse::MEDIA_TYPE) {
            return Ok(stream::chunks(
                provider,
                answer.body,
                attempt.api_key,
                translated.structured_tool,
            ));
        }
        let bytes = answer.body.read_to_end().await?;
        let chunk = whole_answer(provider, &bytes, translated.structured_tool.as_deref())?;
        Ok(futures::stream::iter([Ok(chunk)]).boxed())
    }
}

/// Translates a non-streamed answer, one message; with `structured_tool`,
/// that tool's input is the answer's content.
pub(crate) fn whole_answer(
    provider: &str,
    bytes: &[u8],
    structured_tool: Option<&str>,
) -> Result<switchyard_proto::v1::ChatChunk, ServiceError> {
    let message: WireResponse = serde_json::from_slice(bytes)
        .map_err(|_| classify::malformed_response(provider, "a response that is not a message"))?;
    Ok(message.into_chunk(structured_tool))
}

/// Returns `{base_url}/v1/messages`, tolerating a base URL ending in `/v1`.
fn messages_url(base_url: &str) -> String {
    let base = base_url.trim();
    let base = if base.is_empty() {
        DEFAULT_BASE_URL
    } else {
        base
    };
    if base.trim_end_matches('/').ends_with("/v1") {
        http::endpoint(base, "messages")
    } else {
        http::endpoint(base, "v1/messages")
    }
}

/// Adds the key, version and beta headers.
fn with_headers(
    mut request: reqwest::RequestBuilder,
    attempt: &Attempt,
) -> Result<reqwest::RequestBuilder, ServiceError> {
    if let Some(key) = &attempt.api_key {
        // The error never shows the value: it is the key.
        let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
            ServiceError::new(
                ErrorClass::Authentication,
                "the configured API key is not a valid header value",
            )
        })?;
        value.set_sensitive(true);
        request = request.header("x-api-key", value);
    }
    let option_header = |name: &str, value: &str| {
        HeaderValue::from_str(value).map_err(|_| {
            ServiceError::internal(format!(
                "the provider option `{name}` is not a valid header value"
            ))
        })
    };
    let version = attempt
        .options
        .get("anthropic_version")
        .map_or(DEFAULT_VERSION, String::as_str);
    request = request.header(
        "anthropic-version",
        option_header("anthropic_version", version)?,
    );
    if let Some(beta) = attempt
        .options
        .get("anthropic_beta")
        .filter(|beta| !beta.is_empty())
    {
        request = request.header("anthropic-beta", option_header("anthropic_beta", beta)?);
    }
    Ok(request)
}

/// Reads the `default_max_tokens` option.
fn default_max_tokens(attempt: &Attempt) -> Result<u32, ServiceError> {
    match attempt.options.get("default_max_tokens") {
        None => Ok(DEFAULT_MAX_TOKENS),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|limit| *limit > 0)
            .ok_or_else(|| {
                ServiceError::internal(
                    "the provider option `default_max_tokens` is not a positive integer",
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_url_defaults_and_accepts_v1() {
        assert_eq!(messages_url(""), "https://api.anthropic.com/v1/messages");
        assert_eq!(messages_url("http://h:1/"), "http://h:1/v1/messages");
        assert_eq!(
            messages_url("https://gw.example/anthropic/v1"),
            "https://gw.example/anthropic/v1/messages"
        );
    }
}
