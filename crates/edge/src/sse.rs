//! Server-sent event framing for chat streams.

use switchyard_common::ServiceError;

use crate::error::error_json;

/// The event that ends a successful stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Appends an error event (`data: {"error": …}`), which OpenAI SDKs raise as
/// an API error, to `out`. It ends a stream that failed after it started.
pub fn write_error_event(error: &ServiceError, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&error_json(error));
    out.extend_from_slice(b"\n\n");
}
