//! Google API errors (`{"error": {"code", "message", "status", "details"}}`),
//! classified by their canonical status name first and the HTTP status second:
//!
//! | Google status | class |
//! |---|---|
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE` | `invalid_request`; token-limit messages `context_length_exceeded`; an `ErrorInfo` reason `API_KEY_INVALID` `authentication` |
//! | `UNAUTHENTICATED` / `PERMISSION_DENIED` | `authentication` / `permission` |
//! | `NOT_FOUND` | `not_found` |
//! | `RESOURCE_EXHAUSTED` | `rate_limited`, retry-after from `RetryInfo.retryDelay`, else `Retry-After` |
//! | `INTERNAL`, `UNAVAILABLE`, `UNKNOWN` | `upstream_unavailable` |
//! | `DEADLINE_EXCEEDED` | `timeout` |

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::Deserialize;
use switchyard_common::{ErrorClass, Secret, ServiceError};

use crate::classify::{self, UpstreamErrorDetail};

/// The `error` object of a Google error body or stream event.
#[derive(Debug, Default, Deserialize)]
pub struct GoogleError {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    Object { error: GoogleError },
    // `streamGenerateContent` without `alt=sse` answers a JSON array.
    Array([ErrorObject; 1]),
}

#[derive(Deserialize)]
struct ErrorObject {
    error: GoogleError,
}

impl GoogleError {
    /// Parses an error response body; `None` when it is not Google-shaped.
    pub fn parse(body: &[u8]) -> Option<Self> {
        match serde_json::from_slice::<ErrorBody>(body).ok()? {
            ErrorBody::Object { error } => Some(error),
            ErrorBody::Array([ErrorObject { error }]) => Some(error),
        }
    }

    /// Returns the class of this error, given the HTTP status when there is one.
    fn class(&self, http_status: Option<u16>) -> ErrorClass {
        let named = match self.status.as_deref() {
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
                Some(ErrorClass::InvalidRequest)
            }
            Some("UNAUTHENTICATED") => Some(ErrorClass::Authentication),
            Some("PERMISSION_DENIED") => Some(ErrorClass::Permission),
            Some("NOT_FOUND") => Some(ErrorClass::NotFound),
            Some("RESOURCE_EXHAUSTED") => Some(ErrorClass::RateLimited),
            Some("INTERNAL" | "UNAVAILABLE" | "UNKNOWN" | "DATA_LOSS" | "CANCELLED") => {
                Some(ErrorClass::UpstreamUnavailable)
            }
            Some("DEADLINE_EXCEEDED") => Some(ErrorClass::Timeout),
            _ => None,
        };
        let class = named
            .or_else(|| http_status.or(self.code).map(classify::class_for_status))
            .unwrap_or(ErrorClass::UpstreamUnavailable);
        if self.has_reason(&["API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED"]) {
            return ErrorClass::Authentication;
        }
        if class == ErrorClass::InvalidRequest && self.is_about_token_limit() {
            return ErrorClass::ContextLengthExceeded;
        }
        class
    }

    /// Whether an `ErrorInfo` detail gives one of `reasons`.
    fn has_reason(&self, reasons: &[&str]) -> bool {
        self.details.iter().any(|detail| {
            is_detail_type(detail, "google.rpc.ErrorInfo")
                && detail["reason"]
                    .as_str()
                    .is_some_and(|reason| reasons.contains(&reason))
        })
    }

    /// Whether the message says the input is over the model's token limit
    /// (Gemini API: "The input token count (N) exceeds the maximum number of
    /// tokens allowed (M)."; Vertex: "... the input token count is N but model
    /// only supports up to M").
    fn is_about_token_limit(&self) -> bool {
        let Some(message) = self.message.as_deref() else {
            return false;
        };
        let message = message.to_ascii_lowercase();
        message.contains("token")
            && (message.contains("exceeds the maximum")
                || message.contains("only supports up to")
                || message.contains("too long")
                || message.contains("context window"))
    }

    /// Returns the `RetryInfo.retryDelay` of the details (`"7s"`, `"0.5s"`).
    fn retry_delay(&self) -> Option<Duration> {
        self.details
            .iter()
            .filter(|detail| is_detail_type(detail, "google.rpc.RetryInfo"))
            .find_map(|detail| parse_duration(detail["retryDelay"].as_str()?))
    }

    fn into_detail(self) -> UpstreamErrorDetail {
        UpstreamErrorDetail {
            message: self.message,
            kind: self.status,
            code: self.code.map(|code| code.to_string()),
            param: None,
        }
    }
}

fn is_detail_type(detail: &serde_json::Value, name: &str) -> bool {
    detail["@type"]
        .as_str()
        .is_some_and(|kind| kind.strip_prefix("type.googleapis.com/") == Some(name))
}

/// Parses a protobuf `Duration` in JSON form: decimal seconds and an `s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    // Bounded so `Duration::from_secs_f64` cannot panic on absurd values.
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(86_400.0 * 365.0)))
}

/// Builds the error for a failed upstream HTTP response.
pub fn upstream_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    api_key: Option<&Secret>,
) -> ServiceError {
    let error = GoogleError::parse(body).unwrap_or_default();
    let class = error.class(Some(status));
    let retry_after = error
        .retry_delay()
        .or_else(|| classify::retry_after(headers, SystemTime::now()));
    let mut classified =
        classify::classified_error(provider, class, Some(status), &error.into_detail(), api_key);
    if let Some(retry_after) = retry_after {
        classified = classified.with_retry_after(retry_after);
    }
    classified
}

/// Builds the error for a failure Gemini reported inside a stream.
pub fn in_band_error(provider: &str, error: GoogleError, api_key: Option<&Secret>) -> ServiceError {
    let class = error.class(None);
    let retry_after = error.retry_delay();
    let mut classified =
        classify::classified_error(provider, class, None, &error.into_detail(), api_key);
    if let Some(retry_after) = retry_after {
        classified = classified.with_retry_after(retry_after);
    }
    classified
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_body(status: u16, body: &str) -> ServiceError {
        upstream_error("g", status, &HeaderMap::new(), body.as_bytes(), None)
    }

    #[test]
    fn rate_limits_read_retry_info() {
        let error = classify_body(
            429,
            r#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.5s"}
    ]
  }
}"#,
        );
        assert_eq!(error.class, ErrorClass::RateLimited);
        assert_eq!(error.retry_after, Some(Duration::from_millis(7500)));
        assert_eq!(error.message, "You exceeded your current quota.");
    }

    #[test]
    fn statuses_and_messages_refine_the_class() {
        let cases = [
            (
                400,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received.",
                ErrorClass::InvalidRequest,
            ),
            (
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                ErrorClass::ContextLengthExceeded,
            ),
            (
                400,
                "INVALID_ARGUMENT",
                "Unable to submit request because the input token count is 1200000 but model only supports up to 1048576.",
                ErrorClass::ContextLengthExceeded,
            ),
            (
                401,
                "UNAUTHENTICATED",
                "Request had invalid credentials.",
                ErrorClass::Authentication,
            ),
            (403, "PERMISSION_DENIED", "Denied.", ErrorClass::Permission),
            (
                404,
                "NOT_FOUND",
                "models/x is not found.",
                ErrorClass::NotFound,
            ),
            (
                500,
                "INTERNAL",
                "An internal error has occurred.",
                ErrorClass::UpstreamUnavailable,
            ),
            (
                503,
                "UNAVAILABLE",
                "The model is overloaded.",
                ErrorClass::UpstreamUnavailable,
            ),
            (
                504,
                "DEADLINE_EXCEEDED",
                "Deadline expired.",
                ErrorClass::Timeout,
            ),
        ];
        for (status, name, message, class) in cases {
            let body = format!(
                r#"{{"error":{{"code":{status},"message":"{message}","status":"{name}"}}}}"#
            );
            assert_eq!(
                classify_body(status, &body).class,
                class,
                "{name}: {message}"
            );
        }
    }

    #[test]
    fn invalid_api_keys_are_authentication_errors() {
        let error = classify_body(
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
               "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
        );
        assert_eq!(error.class, ErrorClass::Authentication);
        assert!(
            error
                .message
                .contains("rejected the configured credentials")
        );
    }

    #[test]
    fn array_bodies_and_unknown_bodies_are_handled() {
        let error = classify_body(
            429,
            r#"[{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
        assert_eq!(error.class, ErrorClass::RateLimited);
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("3"),
        );
        let error = upstream_error("g", 429, &headers, b"<html>", None);
        assert_eq!(error.class, ErrorClass::RateLimited);
        assert_eq!(error.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn durations_parse_like_protobuf_json() {
        assert_eq!(parse_duration("7s"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("0.25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
