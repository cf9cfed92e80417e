//! The request id: given to every request before anything else runs, and
//! returned in `x-request-id` on every answer, whatever produced it (a
//! handler, an error, the unknown-route fallback or a caught panic), so any
//! failed request can be matched to its logs and usage event.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

use crate::transfer_coding;

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
/// `x-request-id`.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = RequestId(Uuid::now_v7());
    let mut response = if transfer_coding::is_unsupported(request.headers()) {
        transfer_coding::refusal()
    } else {
        request.extensions_mut().insert(id);
        next.run(request).await
    };
    let mut text = Uuid::encode_buffer();
    if let Ok(value) = HeaderValue::from_str(id.0.hyphenated().encode_lower(&mut text)) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}
