//! Refuses transfer codings other than `chunked`.
//!
//! hyper decodes a body whose last transfer coding is `chunked` and hands
//! the rest of the header on; a body sent as `gzip, chunked` would then
//! reach a handler still compressed. RFC 9112 says a server answers a
//! coding it does not implement with 501, which the edge does before any
//! handler runs (see [`crate::request_id::assign`]), in OpenAI's error shape.

use axum::{
    http::{HeaderMap, StatusCode, header::TRANSFER_ENCODING},
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

/// Whether `headers` name a transfer coding other than `chunked`.
pub fn is_unsupported(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .any(|coding| !coding.trim().eq_ignore_ascii_case("chunked"))
}

/// The 501 answer to such a request.
pub fn refusal() -> Response {
    ApiError::invalid_request_with_status(
        StatusCode::NOT_IMPLEMENTED,
        "Only the `chunked` transfer coding is supported.",
    )
    .into_response()
}
