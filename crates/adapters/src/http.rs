//! The HTTP client shared by all HTTP providers, and the limits of an
//! attempt: a provider has until the attempt's deadline to send response
//! headers and its first body bytes, and the whole of a buffered answer;
//! a stream may then run as long as it keeps producing, with no silence
//! longer than the idle timeout. Stream events and buffered answers are
//! bounded in size, so one attempt holds a bounded amount of memory.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{
    Response,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue},
};
use switchyard_common::{
    ErrorClass, Secret, ServiceError,
    memory::{BudgetExhausted, BudgetedBytes, ByteBudget, Reservation},
};
use tokio::time::{Instant, timeout_at};

use crate::{
    classify,
    config::AdapterConfig,
    error::{Error, Result},
    rate_limits::LimitReport,
    sse::{SseEvent, SseParser},
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
        let client = Self::builder(config).build().map_err(Error::HttpClient)?;
        Ok(Self { client })
    }

    /// A client for a provider reached through `proxy_url` (empty: directly)
    /// that also trusts the CA certificates in `ca_pem` (PEM, possibly empty).
    pub fn with_network(config: &AdapterConfig, proxy_url: &str, ca_pem: &[u8]) -> Result<Self> {
        let mut builder = Self::builder(config);
        if !proxy_url.is_empty() {
            let proxy = reqwest::Proxy::all(proxy_url).map_err(Error::HttpClient)?;
            builder = builder.proxy(proxy);
        }
        if !ca_pem.is_empty() {
            for certificate in
                reqwest::Certificate::from_pem_bundle(ca_pem).map_err(Error::HttpClient)?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            client: builder.build().map_err(Error::HttpClient)?,
        })
    }

    /// The settings every provider client shares.
    fn builder(config: &AdapterConfig) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            // Fixed windows, as on the gateway's own gRPC hops: a stream
            // the gateway has stopped reading (its client is slow) holds
            // only its own window, not the whole connection's.
            .http2_initial_stream_window_size(switchyard_common::channel::STREAM_WINDOW_BYTES)
            .http2_initial_connection_window_size(
                switchyard_common::channel::CONNECTION_WINDOW_BYTES,
            )
            // Provider URLs come from configuration; a redirect is a misconfiguration
            // and following one could send the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Only a provider's own `proxy` applies: never one from the
            // process environment (`HTTPS_PROXY`), which would route every
            // provider's keys through it unannounced.
            .no_proxy()
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

/// What an attempt may take: when the provider must have started
/// answering (and, for a buffered answer, finished), how long a stream may
/// then stay silent, how many bytes it may send, and the process's budget
/// its buffered answer is counted against.
#[derive(Debug, Clone)]
pub struct AttemptLimits {
    /// Deadline for response headers and the first body bytes, and for the
    /// whole of a buffered (non-streamed) answer: a provider that trickles
    /// its answer is cut here rather than held while it keeps sending.
    pub first_byte_deadline: Instant,
    /// Longest wait for each later read of a stream, and for each later
    /// event of an event stream.
    pub idle_timeout: Duration,
    /// When the attempt must be over, however it is going (its own total
    /// timeout, the request's deadline); `None` for no bound but the others.
    pub end: Option<Instant>,
    /// Where an accepted answer's rate-limit headers are reported.
    pub limit_report: LimitReport,
    /// Largest stream event and buffered answer.
    pub sizes: BodySizes,
    /// Bytes of buffered answers all attempts may hold at once.
    pub answers_in_flight: ByteBudget,
}

impl AttemptLimits {
    /// The deadline of a later read from now: the idle timeout, within the
    /// attempt's end.
    fn next_idle_deadline(&self) -> Instant {
        let idle = Instant::now() + self.idle_timeout;
        self.end.map_or(idle, |end| idle.min(end))
    }

    /// Limits with these deadlines, the default sizes and a budget of its
    /// own that nothing else shares, for tests and fuzzing (the service
    /// builds its limits with the process's budget).
    #[cfg(any(test, fuzzing))]
    pub fn new(first_byte_deadline: Instant, idle_timeout: Duration) -> Self {
        Self {
            first_byte_deadline,
            idle_timeout,
            end: None,
            limit_report: LimitReport::default(),
            sizes: BodySizes::default(),
            answers_in_flight: ByteBudget::new(usize::MAX),
        }
    }
}

/// How many bytes of a provider's answer one attempt may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySizes {
    /// Largest line or event of a stream.
    pub max_event_bytes: usize,
    /// Largest buffered (non-streamed) answer.
    pub max_answer_bytes: usize,
}

impl Default for BodySizes {
    fn default() -> Self {
        Self {
            max_event_bytes: crate::sse::DEFAULT_MAX_EVENT_BYTES,
            max_answer_bytes: switchyard_common::channel::MAX_GRPC_MESSAGE_BYTES,
        }
    }
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

/// The W3C trace context an attempt hands its provider: the adapters'
/// span as the parent of the provider's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    /// `traceparent`.
    pub traceparent: String,
    /// `tracestate`; not sent when empty.
    pub tracestate: String,
}

impl TraceHeaders {
    /// Adds the headers to `request`.
    fn apply(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, value) in [
            ("traceparent", &self.traceparent),
            ("tracestate", &self.tracestate),
        ] {
            if let Ok(value) = HeaderValue::from_str(value)
                && !value.is_empty()
            {
                request = request.header(name, value);
            }
        }
        request
    }
}

/// Sends a request under the attempt's limits, with `trace` headers when
/// the provider may have them. A success status returns the headers and
/// the unread body; any other status is read and handed to `refuse`, whose
/// error is returned.
pub async fn exchange(
    provider: &str,
    request: reqwest::RequestBuilder,
    limits: AttemptLimits,
    trace: Option<&TraceHeaders>,
    refuse: impl FnOnce(Refusal<'_>) -> ServiceError,
) -> Result<Accepted, ServiceError> {
    let request = match trace {
        Some(trace) => trace.apply(request),
        None => request,
    };
    let mut response = send(provider, request, limits.first_byte_deadline).await?;
    let status = response.status();
    // Moved out rather than cloned: reading the body does not need them.
    let headers = std::mem::take(response.headers_mut());
    if status.is_success() {
        if let Some(wait) =
            crate::rate_limits::exhausted_for(&headers, std::time::SystemTime::now())
        {
            limits.limit_report.used_up_for(wait);
        }
        let body = BodyReader::new(provider, response, limits);
        return Ok(Accepted { headers, body });
    }
    let body = BodyReader::new(provider, response, limits);
    let mut reservation = body.limits.answers_in_flight.reservation();
    let bytes = body
        .read_whole(MAX_ERROR_BODY_BYTES, &mut reservation)
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
    first_byte_deadline: Instant,
) -> Result<Response, ServiceError> {
    match timeout_at(first_byte_deadline, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => Err(classify::transport_error(provider, &error)),
        Err(_elapsed) => Err(classify::timeout(provider)),
    }
}

/// Reads a response body piece by piece under the attempt's limits.
#[derive(Debug)]
pub struct BodyReader {
    response: Response,
    provider: String,
    /// Deadline of the next read: the first-byte deadline, then idle timeouts.
    next_deadline: Option<Instant>,
    limits: AttemptLimits,
}

impl BodyReader {
    /// Wraps a response whose headers have arrived.
    pub(crate) fn new(provider: &str, response: Response, limits: AttemptLimits) -> Self {
        Self {
            response,
            provider: provider.to_owned(),
            next_deadline: Some(limits.first_byte_deadline),
            limits,
        }
    }

    /// Reads the body as server-sent events.
    pub fn into_events(self) -> EventReader {
        let parser = SseParser::new(self.limits.sizes.max_event_bytes);
        self.into_decoded(parser)
    }

    /// Reads the body as the units `decoder` cuts it into (AWS event-stream
    /// messages, say), under the same per-event deadlines as
    /// [`Self::into_events`].
    pub fn into_decoded<D: StreamDecoder>(self, decoder: D) -> EventReader<D> {
        EventReader {
            decoder,
            body: self,
        }
    }

    /// Largest stream event the attempt accepts, in bytes.
    pub fn max_event_bytes(&self) -> usize {
        self.limits.sizes.max_event_bytes
    }

    async fn next_by(&mut self, deadline: Instant) -> Result<Option<Bytes>, ServiceError> {
        match timeout_at(deadline, self.response.chunk()).await {
            Ok(Ok(piece)) => Ok(piece),
            Ok(Err(error)) => Err(classify::transport_error(&self.provider, &error)),
            Err(_elapsed) => Err(classify::timeout(&self.provider)),
        }
    }

    /// Reads a whole buffered answer: it must arrive by the first-byte
    /// deadline, fit the attempt's answer size, and fit the process's
    /// budget of buffered answers, which it holds until dropped.
    pub async fn read_to_end(self) -> Result<BudgetedBytes, ServiceError> {
        let limit = self.limits.sizes.max_answer_bytes;
        let mut reservation = self.limits.answers_in_flight.reservation();
        let bytes = self.read_whole(limit, &mut reservation).await?;
        Ok(BudgetedBytes::new(bytes, reservation))
    }

    /// Reads the rest of the body by the first-byte deadline, failing once
    /// it exceeds `limit` bytes (checked against `content-length` first) or
    /// `reservation` cannot grow to cover it.
    async fn read_whole(
        mut self,
        limit: usize,
        reservation: &mut Reservation,
    ) -> Result<Bytes, ServiceError> {
        let too_large = |provider: &str| {
            classify::malformed_response(
                provider,
                &format!("an answer larger than the {limit} bytes an attempt may buffer"),
            )
        };
        let over_budget = |provider: &str, error: BudgetExhausted| {
            ServiceError::new(
                ErrorClass::Overloaded,
                format!("the gateway is buffering too many answers at once: {error}"),
            )
            .with_provider(provider)
        };
        let announced = self.response.content_length().unwrap_or(0);
        if usize::try_from(announced).map_or(true, |announced| announced > limit) {
            return Err(too_large(&self.provider));
        }
        let announced = usize::try_from(announced).unwrap_or(0);
        reservation
            .grow(announced)
            .map_err(|error| over_budget(&self.provider, error))?;
        let deadline = self.limits.first_byte_deadline;
        let mut body = BytesMut::with_capacity(announced);
        while let Some(piece) = self.next_by(deadline).await? {
            let length = body.len() + piece.len();
            if length > limit {
                return Err(too_large(&self.provider));
            }
            if length > reservation.bytes() {
                reservation
                    .grow(length - reservation.bytes())
                    .map_err(|error| over_budget(&self.provider, error))?;
            }
            body.extend_from_slice(&piece);
        }
        Ok(body.freeze())
    }
}

/// Cuts a streamed body into the units a provider sends: server-sent
/// events, or AWS event-stream messages. Bytes are pushed as they arrive;
/// complete units are pulled out one at a time.
pub trait StreamDecoder {
    /// One complete unit.
    type Item;
    /// Why the stream cannot be decoded further; its text goes into the
    /// client's error, so it names the fault, never the stream's content.
    type Error: std::fmt::Display;
    /// Appends bytes received from the network.
    fn push(&mut self, bytes: &[u8]);
    /// The next complete unit, `Ok(None)` until more bytes arrive.
    fn next_item(&mut self) -> Result<Option<Self::Item>, Self::Error>;
    /// Whether bytes of an incomplete unit are waiting.
    fn has_partial_item(&self) -> bool;
}

impl StreamDecoder for SseParser {
    type Item = SseEvent;
    type Error = crate::sse::SseError;

    fn push(&mut self, bytes: &[u8]) {
        SseParser::push(self, bytes);
    }

    fn next_item(&mut self) -> Result<Option<SseEvent>, Self::Error> {
        self.next_event()
    }

    fn has_partial_item(&self) -> bool {
        self.has_partial_event()
    }
}

/// Feeds `pieces` to `decoder`, pulling every complete unit after each, and
/// calls `check` with the decoder and the piece after each push; returns
/// the units and the error that stopped the decoder, if any. Shared by the
/// decoders' property tests and the fuzz targets.
#[cfg(any(test, fuzzing))]
pub(crate) fn decode_pieces<D: StreamDecoder>(
    mut decoder: D,
    pieces: &[&[u8]],
    mut check: impl FnMut(&D, &[u8]),
) -> (Vec<D::Item>, Option<D::Error>) {
    let mut items = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        check(&decoder, piece);
        loop {
            match decoder.next_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => return (items, Some(error)),
            }
        }
    }
    (items, None)
}

/// A streamed body read as events, under the attempt's limits.
#[derive(Debug)]
pub struct EventReader<D = SseParser> {
    body: BodyReader,
    decoder: D,
}

impl<D: StreamDecoder> EventReader<D> {
    /// Returns the next event, `None` when the body ends. The first event
    /// must arrive by the first-byte deadline and each later one within the
    /// idle timeout, however the bytes trickle in between. A read that
    /// fails or times out, and an event the decoder refuses (over the size
    /// limit, say), are errors; the stream cannot go on after one.
    pub async fn next(&mut self) -> Result<Option<D::Item>, ServiceError> {
        let deadline = self
            .body
            .next_deadline
            .take()
            .unwrap_or_else(|| self.body.limits.next_idle_deadline());
        loop {
            match self.decoder.next_item() {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(error) => {
                    return Err(classify::malformed_response(
                        &self.body.provider,
                        &error.to_string(),
                    ));
                }
            }
            match self.body.next_by(deadline).await? {
                Some(bytes) => self.decoder.push(&bytes),
                None => return Ok(None),
            }
        }
    }

    /// Whether the body ended inside an event.
    pub fn ended_mid_event(&self) -> bool {
        self.decoder.has_partial_item()
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
