//! The layer every call over a [`GrpcChannel`](crate::GrpcChannel) crosses
//! (direct in-process calls skip it: the callee reads the message itself).
//!
//! [`call`] turns a message into a `tonic::Request` whose metadata carries
//! the request id (`x-request-id`) and W3C trace context (`traceparent`,
//! `tracestate`)
//! from the message's `RequestContext`, and bounds the call by the request's
//! deadline (`deadline_unix_ms`, set by the edge from its request timeout).
//! Each hop enforces the deadline itself (the adapters bound every upstream
//! wait by it, the router stops falling back); this layer is the backstop:
//! a call still waiting [`GRACE`] after the deadline fails with
//! `DEADLINE_EXCEEDED` (error class `timeout`), late enough that the hop
//! below has classified and settled its own timeout first. For a streamed
//! call the bound covers opening the stream (up to its first message);
//! after that, the adapters' per-read timeouts apply. The server side reads
//! the values back with [`request_id`] and [`traceparent`].

use std::{
    future::Future,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use switchyard_proto::v1::{
    AdapterChatRequest, AdapterEmbedRequest, LookupRequest, RequestContext, RouterChatRequest,
    RouterEmbedRequest, StoreRequest,
};
use tonic::{Request, Status, metadata::MetadataValue};

use crate::{ErrorClass, ServiceError};

/// Metadata key of the request id.
pub const REQUEST_ID: &str = "x-request-id";
/// Metadata key of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// Metadata key of the W3C vendor trace state.
pub const TRACESTATE: &str = "tracestate";

/// How long after the deadline a call is abandoned, so that the hop being
/// called reports (and settles) the timeout itself first.
pub const GRACE: Duration = Duration::from_millis(250);

/// A message that may carry the request's context.
pub trait Contextual {
    /// The request's context, if the message has one.
    fn context(&self) -> Option<&RequestContext>;
}

macro_rules! contextual {
    ($($message:ty),* $(,)?) => {
        $(impl Contextual for $message {
            fn context(&self) -> Option<&RequestContext> {
                self.context.as_ref()
            }
        })*
    };
}

contextual!(
    RouterChatRequest,
    RouterEmbedRequest,
    AdapterChatRequest,
    AdapterEmbedRequest,
    LookupRequest,
    StoreRequest,
);

/// Wraps `message` in a request carrying its context's metadata.
fn request<T: Contextual>(message: T) -> Request<T> {
    let metadata: Vec<(&'static str, MetadataValue<_>)> = message
        .context()
        .map(|context| {
            [
                (REQUEST_ID, context.request_id.as_str()),
                (TRACEPARENT, context.traceparent.as_str()),
                (TRACESTATE, context.tracestate.as_str()),
            ]
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .filter_map(|(key, value)| Some((key, value.parse().ok()?)))
            .collect()
        })
        .unwrap_or_default();
    let mut request = Request::new(message);
    for (key, value) in metadata {
        request.metadata_mut().insert(key, value);
    }
    request
}

/// Time left until the context's deadline; `None` when it has none.
pub fn remaining(context: &RequestContext) -> Option<Duration> {
    if context.deadline_unix_ms == 0 {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Some(Duration::from_millis(context.deadline_unix_ms).saturating_sub(now))
}

/// Sends `message` through `send`, with its context's metadata, failing with
/// `DEADLINE_EXCEEDED` if it is still waiting [`GRACE`] after the request's
/// deadline.
pub async fn call<T, R, F>(message: T, send: impl FnOnce(Request<T>) -> F) -> Result<R, Status>
where
    T: Contextual,
    F: Future<Output = Result<R, Status>>,
{
    let left = message.context().and_then(remaining);
    let response = send(request(message));
    match left {
        None => response.await,
        Some(left) => tokio::time::timeout(left + GRACE, response)
            .await
            .unwrap_or_else(|_| {
                Err(ServiceError::new(ErrorClass::Timeout, "the request deadline passed").into())
            }),
    }
}

/// The request id a caller sent, read on the server side.
pub fn request_id<T>(request: &Request<T>) -> Option<&str> {
    request.metadata().get(REQUEST_ID)?.to_str().ok()
}

/// The trace context a caller sent, read on the server side.
pub fn traceparent<T>(request: &Request<T>) -> Option<&str> {
    request.metadata().get(TRACEPARENT)?.to_str().ok()
}
