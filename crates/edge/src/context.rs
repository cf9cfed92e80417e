//! The request context the edge fills once per request: who is calling,
//! the W3C trace context and the deadline every hop honours.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use switchyard_common::trace;
use switchyard_proto::v1::RequestContext;
use uuid::Uuid;

use crate::routes::shared::Caller;

/// Returns the context of a request `request_id` from `caller`, taking the
/// client's `traceparent` when it is well formed (else starting a trace
/// whose id is the request id) and setting the deadline `timeout` from now.
pub fn request_context(
    caller: Caller,
    headers: &HeaderMap,
    request_id: Uuid,
    end_user: String,
    timeout: Duration,
) -> RequestContext {
    let client = headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_traceparent(value));
    let traceparent = client.map_or_else(|| new_traceparent(request_id), str::to_owned);
    // Passed on as the client sent it, with its `traceparent`.
    let tracestate = client
        .and(headers.get("tracestate"))
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // A sticky weighted route keeps callers with one value on one
    // deployment; the value is hashed, never logged. Bounded like a key id.
    let affinity = headers
        .get(AFFINITY_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(MAX_AFFINITY_CHARS).collect())
        .unwrap_or_default();
    let deadline = SystemTime::now() + timeout;
    let deadline_unix_ms = deadline.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    });
    RequestContext {
        request_id: request_id.to_string(),
        debug: caller.debug,
        key_id: caller.key_id,
        team_id: caller.team_id,
        user_id: caller.user_id,
        traceparent,
        tracestate,
        deadline_unix_ms,
        end_user,
        affinity,
        ..RequestContext::default()
    }
}

/// The header a client names its affinity in, for routes sticky by header.
pub const AFFINITY_HEADER: &str = "x-switchyard-affinity";
/// The longest affinity value kept.
const MAX_AFFINITY_CHARS: usize = 256;

/// A `traceparent` for a new trace: version 00, the request id as trace id,
/// its low eight bytes as span id, sampled.
fn new_traceparent(request_id: Uuid) -> String {
    let trace_id = request_id.simple().to_string();
    format!("00-{trace_id}-{}-01", &trace_id[16..])
}

/// Whether `value` is a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`
/// with non-zero ids.
fn is_traceparent(value: &str) -> bool {
    trace::parse(value, "").is_some()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn caller() -> Caller {
        Caller {
            key_id: "k".to_owned(),
            team_id: "t".to_owned(),
            user_id: "u".to_owned(),
            debug: false,
        }
    }

    #[test]
    fn a_valid_client_traceparent_is_kept_and_the_deadline_set() {
        let mut headers = HeaderMap::new();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", HeaderValue::from_static(parent));
        let before = SystemTime::now();
        let context = request_context(
            caller(),
            &headers,
            Uuid::now_v7(),
            String::new(),
            Duration::from_secs(30),
        );
        assert_eq!(context.traceparent, parent);
        let deadline = UNIX_EPOCH + Duration::from_millis(context.deadline_unix_ms);
        let ahead = deadline.duration_since(before).expect("in the future");
        assert!(ahead > Duration::from_secs(29) && ahead <= Duration::from_secs(31));
        assert_eq!(
            (context.key_id.as_str(), context.user_id.as_str()),
            ("k", "u")
        );
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-zz-11-01"));
        let request_id = Uuid::now_v7();
        let context = request_context(
            caller(),
            &headers,
            request_id,
            String::new(),
            Duration::from_secs(1),
        );
        assert!(
            is_traceparent(&context.traceparent),
            "{}",
            context.traceparent
        );
        assert!(
            context
                .traceparent
                .contains(&request_id.simple().to_string())
        );
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
    }
}
