//! The HTTP client shared by all HTTP providers, and the timing rules of an
//! attempt: a provider has until the attempt's deadline to send response
//! headers and its first body bytes; after that, a stream may run as long as
//! it keeps producing, with no silence longer than the idle timeout.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{
    Response,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue},
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

/// Sends a request, waiting for response headers until the first-byte deadline.
pub async fn send(
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
    pub fn new(provider: &str, response: Response, timing: Timing) -> Self {
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
