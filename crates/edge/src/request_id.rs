//! The request id: given to every request before anything else runs, and
//! returned in `x-request-id` on every answer, whatever produced it (a
//! handler, an error, the unknown-route fallback or a caught panic), so any
//! failed request can be matched to its logs and usage event.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{Request, State},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

use crate::{
    EdgeState,
    error::ErrorAnswer,
    overhead::{self, X_SWITCHYARD_OVERHEAD_MS},
    request_span::{self, RequestSpan},
    transfer_coding,
};

/// The response header naming the request id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One request's id, a request extension set by [`assign`]; time-ordered,
/// so ids sort by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

/// Middleware, the first every request meets: gives the request a new
/// [`RequestId`], refuses a body in a transfer coding hyper does not decode
/// (see [`transfer_coding`]; one middleware rather than two, as each costs
/// a boxed future per request), and puts the id in the answer's
/// `x-request-id`. Every error answer is counted by class here, gets its
/// `x-switchyard-overhead-ms`, and one
/// that no service logged (a bad key, a malformed body, an unknown path)
/// gets its request line here. The request's span (see [`request_span`])
/// opens and closes here too.
pub async fn assign(
    State(state): State<Arc<EdgeState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let id = RequestId(Uuid::now_v7());
    let span = request_span::start(&request, id.0);
    let response = if transfer_coding::is_unsupported(request.headers()) {
        transfer_coding::refusal()
    } else {
        request.extensions_mut().insert(id);
        request.extensions_mut().insert(RequestSpan(span.clone()));
        next.run(request).await
    };
    let mut response = request_span::finish(span, response);
    if let Some(answer) = response.extensions().get::<ErrorAnswer>().copied() {
        // An error answer's overhead counts from the request's arrival: the
        // handler that reads the body may not have run.
        if !response.headers().contains_key(X_SWITCHYARD_OVERHEAD_MS) {
            let overhead = overhead::added(arrived.elapsed(), answer.upstream_micros);
            response
                .headers_mut()
                .insert(X_SWITCHYARD_OVERHEAD_MS, overhead::header_value(overhead));
        }
        state.metrics.error(answer.class);
        if !answer.logged {
            tracing::info!(
                request_id = %id.0,
                status = response.status().as_u16(),
                class = %answer.class,
                "request refused"
            );
        }
    }
    let mut text = Uuid::encode_buffer();
    if let Ok(value) = HeaderValue::from_str(id.0.hyphenated().encode_lower(&mut text)) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}
