//! The request's span at the edge: the root of the gateway's part of a
//! trace, the child of the client's span when it sent a `traceparent`.
//!
//! [`start`] opens it before anything else runs; handlers name the
//! operation and model on it and hand it on to the router in the request
//! context. [`finish`] records the answer's status (an error answer marks
//! it failed, so it is exported whatever the sampling) and makes the
//! response body hold it, so a streamed answer's span ends with its last
//! chunk, not when the handler returns. With tracing off the span is
//! disabled and none of this costs more than a check.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::{body::Body, extract::Request, http::HeaderMap, response::Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use switchyard_common::trace::{HopSpan, Opening, SpanKind};
use uuid::Uuid;

use crate::error::ErrorAnswer;

/// The request's span, a request extension set by the outermost middleware.
#[derive(Debug, Clone)]
pub struct RequestSpan(pub HopSpan);

impl RequestSpan {
    /// Names what the request asks: `gen_ai.operation.name` and
    /// `gen_ai.request.model`.
    pub fn asks(&self, operation: &'static str, model: &str) {
        // An unsampled span does without: the router's span names the model.
        if self.0.is_sampled() {
            self.0.record("gen_ai.operation.name", operation);
            self.0.record("gen_ai.request.model", model.to_owned());
        }
    }

    /// Marks the request failed after its answer started (a stream cut by
    /// an error): the status was already sent as 200.
    pub fn fail(&self, class: &str) {
        self.0.fail(class);
    }
}

/// The API routes, as `http.route` and the span's name; any other path is
/// named by its method alone, so span names stay a bounded set.
fn route_of(path: &str) -> Option<&'static str> {
    match path {
        "/v1/chat/completions" => Some("/v1/chat/completions"),
        "/v1/embeddings" => Some("/v1/embeddings"),
        "/v1/models" => Some("/v1/models"),
        _ => None,
    }
}

/// Opens the span of `request`, whose id is `id`, as the child of the
/// client's `traceparent` when it sent a well-formed one.
pub fn start(request: &Request, id: Uuid) -> HopSpan {
    let headers = request.headers();
    let method = request.method().clone();
    let route = route_of(request.uri().path());
    HopSpan::follow(
        header(headers, "traceparent"),
        header(headers, "tracestate"),
        move || {
            let name =
                route.map_or_else(|| method.to_string(), |route| format!("{method} {route}"));
            Opening::new(name, SpanKind::Server)
                .with("http.request.method", method.to_string())
                .with("http.route", route.unwrap_or(""))
                .with("switchyard.request_id", id.to_string())
        },
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// Records the answer on `span` and ties the span's end to the end of the
/// response body.
pub fn finish(span: HopSpan, response: Response) -> Response {
    if span.is_off() {
        return response;
    }
    let status = response.status();
    let failure = match response.extensions().get::<ErrorAnswer>() {
        Some(answer) => Some(answer.class.as_str()),
        None => status.is_server_error().then(|| status.as_str()),
    };
    if span.is_sampled() || failure.is_some() {
        span.record("http.response.status_code", i64::from(status.as_u16()));
    }
    if let Some(class) = failure {
        span.fail(class);
    }
    response.map(|body| Body::new(SpannedBody { body, _span: span }))
}

/// A response body that keeps its request's span open until it is read to
/// the end or dropped.
struct SpannedBody {
    body: Body,
    _span: HopSpan,
}

impl HttpBody for SpannedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
