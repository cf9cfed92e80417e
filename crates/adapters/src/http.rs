//! The HTTP client shared by all HTTP providers, and the timing rules of an
//! attempt: a provider has until the attempt's deadline to send response
//! headers and its first body bytes; after that, a stream may run as long as
//! it keeps producing, with no silence longer than the idle timeout.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{
    Response,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue},
};
use switchyard_common::{Secret, ServiceError};
use tokio::time::{Instant, timeout_at};

use crate::{
    classify,
    config::AdapterConfig,
    error::{Error, Result},
};

/// A pooled, keep-alive HTTP/1.1 and HTTP/2 client for provider APIs.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// Creates the client. Per-attempt timeouts are applied by callers (see
    /// [`send`] and [`BodyReader`]), not here, so long streams are not cut.
    pub fn new(config: &AdapterConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .http2_adaptive_window(true)
            // Provider URLs come from configuration; a redirect is a misconfiguration
            // and following one could send the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Self { client })
    }

    /// Starts a JSON `POST` to `url`, with a bearer token when a key is given.
    pub fn post_json(
        &self,
        url: &str,
        bearer: Option<&Secret>,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        if let Some(key) = bearer
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
        {
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        request
    }
}

/// Joins a base URL (`http://host/v1`, with or without a trailing slash) and
/// a path below it.
pub fn endpoint(base_url: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// When an attempt must have started answering, and how long it may then
/// stay silent.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Deadline for response headers and the first body bytes.
    pub first_byte_deadline: Instant,
    /// Longest wait for each later read.
    pub idle_timeout: Duration,
}

/// Largest error body read from a provider; the rest is not needed to classify it.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// A provider's answer with a success status.
#[derive(Debug)]
pub struct Accepted {
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, still to be read.
    pub body: BodyReader,
}

impl Accepted {
    /// Whether the `content-type` header starts with `media_type`.
    pub fn has_content_type(&self, media_type: &str) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with(media_type))
    }
}

/// A provider's answer with an error status, for the provider to classify.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers (`retry-after`, request ids).
    pub headers: &'a HeaderMap,
    /// The start of the body; empty when it failed to arrive, since the
    /// status alone can still be classified.
    pub body: &'a [u8],
}

/// Sends a request under the attempt's timing. A success status returns the
/// headers and the unread body; any other status is read and handed to
/// `refuse`, whose error is returned.
pub async fn exchange(
    provider: &str,
    request: reqwest::RequestBuilder,
    timing: Timing,
    refuse: impl FnOnce(Refusal<'_>) -> ServiceError,
) -> Result<Accepted, ServiceError> {
    let mut response = send(provider, request, timing).await?;
    let status = response.status();
    // Moved out rather than cloned: reading the body does not need them.
    let headers = std::mem::take(response.headers_mut());
    let body = BodyReader::new(provider, response, timing);
    if status.is_success() {
        return Ok(Accepted { headers, body });
    }
    let bytes = body
        .read_to_end(MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    Err(refuse(Refusal {
        status: status.as_u16(),
        headers: &headers,
        body: &bytes,
    }))
}

/// Sends a request, waiting for response headers until the first-byte deadline.
async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    timing: Timing,
) -> Result<Response, ServiceError> {
    match timeout_at(timing.first_byte_deadline, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(classify::transport_error(provider, &error)),
        Err(_elapsed) => Err(classify::timeout(provider)),
    }
}

/// Reads a response body piece by piece under the attempt's timing.
#[derive(Debug)]
pub struct BodyReader {
    response: Response,
    provider: String,
    /// Deadline of the next read: the first-byte deadline, then idle timeouts.
    next_deadline: Option<Instant>,
    idle_timeout: Duration,
}

impl BodyReader {
    /// Wraps a response whose headers have arrived.
    fn new(provider: &str, response: Response, timing: Timing) -> Self {
        Self {
            response,
            provider: provider.to_owned(),
            next_deadline: Some(timing.first_byte_deadline),
            idle_timeout: timing.idle_timeout,
        }
    }

    /// Returns the next piece of the body, `None` at its end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ServiceError> {
        let deadline = self
            .next_deadline
            .take()
            .unwrap_or_else(|| Instant::now() + self.idle_timeout);
        match timeout_at(deadline, self.response.chunk()).await {
            Ok(Ok(piece)) => Ok(piece),
            Ok(Err(error)) => Err(classify::transport_error(&self.provider, &error)),
            Err(_elapsed) => Err(classify::timeout(&self.provider)),
        }
    }

    /// Reads the rest of the body, failing once it exceeds `limit` bytes.
    pub async fn read_to_end(mut self, limit: usize) -> Result<Bytes, ServiceError> {
        let mut body = BytesMut::new();
        while let Some(piece) = self.next().await? {
            if body.len() + piece.len() > limit {
                return Err(classify::malformed_response(
                    &self.provider,
                    "a response larger than the adapter accepts",
                ));
            }
            body.extend_from_slice(&piece);
        }
        Ok(body.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_joins_with_exactly_one_slash() {
        assert_eq!(
            endpoint("http://h:1/v1", "chat/completions"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://h:1/v1/", "/chat/completions"),
            "http://h:1/v1/chat/completions"
        );
    }
}
