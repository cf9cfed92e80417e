//! Classification of provider failures into [`ErrorClass`]es, shared by all
//! providers: HTTP status codes, error codes, `Retry-After` headers and
//! transport errors.
//!
//! Messages follow one rule: a provider's own message reaches the client only
//! for errors about the client's request (4xx classes), scrubbed of the API
//! key; server and network failures get a generic text naming the provider,
//! since their detail is ours to log, not the client's to read.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use switchyard_common::{ErrorClass, Secret, ServiceError};

/// What a provider said about a failure, taken from its error body.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UpstreamErrorDetail {
    /// The provider's human-readable message.
    pub message: Option<String>,
    /// The provider's error type (OpenAI `type`).
    pub kind: Option<String>,
    /// The provider's error code (OpenAI `code`).
    pub code: Option<String>,
    /// The request parameter at fault (OpenAI `param`).
    pub param: Option<String>,
}

/// Returns the error an attempt leaves the adapters with. A provider that
/// refuses the gateway's own credentials (its 401 or 403, whatever its
/// words, or a provider secret with no value) is `provider_auth`: the
/// gateway's configuration is at fault, not the client's key, and another
/// deployment may answer. The provider's own text is not passed on.
pub fn at_boundary(error: ServiceError) -> ServiceError {
    let Some(provider) = error.provider.as_deref() else {
        return error;
    };
    if !matches!(
        error.class,
        ErrorClass::Authentication | ErrorClass::Permission
    ) {
        return error;
    }
    // An authentication message is already the adapters' own (it never
    // carries the provider's text); a permission message is the provider's.
    let message = if error.class == ErrorClass::Authentication {
        error.message.clone()
    } else {
        format!("provider `{provider}` refused the gateway's credentials")
    };
    ServiceError::new(ErrorClass::ProviderAuth, message).with_provider(provider)
}

/// Returns the class of an HTTP error status.
pub fn class_for_status(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::Authentication,
        403 => ErrorClass::Permission,
        404 => ErrorClass::NotFound,
        408 | 504 => ErrorClass::Timeout,
        // 402 (payment required) is a quota problem of this provider account,
        // like OpenAI's 429 `insufficient_quota`: another target may work.
        402 | 429 => ErrorClass::RateLimited,
        529 => ErrorClass::Overloaded,
        400..=499 => ErrorClass::InvalidRequest,
        _ => ErrorClass::UpstreamUnavailable,
    }
}

/// Returns the class an error code or type names on its own, if it names one
/// more precisely than a status can (e.g. `context_length_exceeded`).
pub fn class_for_code(code: &str) -> Option<ErrorClass> {
    match code {
        "context_length_exceeded" | "string_above_max_length" => {
            Some(ErrorClass::ContextLengthExceeded)
        }
        "content_filter" | "content_policy_violation" => Some(ErrorClass::ContentFiltered),
        _ => None,
    }
}

/// Returns the class of an error reported inside a successful (200) response,
/// such as an OpenAI stream `error` event, from its code and type.
pub fn class_for_detail(detail: &UpstreamErrorDetail) -> ErrorClass {
    let named = |value: &Option<String>| value.as_deref().and_then(class_for_code);
    if let Some(class) = named(&detail.code).or_else(|| named(&detail.kind)) {
        return class;
    }
    let is = |names: &[&str]| {
        [&detail.code, &detail.kind]
            .into_iter()
            .flatten()
            .any(|value| names.contains(&value.as_str()))
    };
    if is(&[
        "rate_limit_exceeded",
        "rate_limit_error",
        "insufficient_quota",
    ]) {
        ErrorClass::RateLimited
    } else if is(&["overloaded_error", "overloaded"]) {
        ErrorClass::Overloaded
    } else if is(&["invalid_request_error"]) {
        ErrorClass::InvalidRequest
    } else if is(&["authentication_error", "invalid_api_key"]) {
        ErrorClass::Authentication
    } else {
        ErrorClass::UpstreamUnavailable
    }
}

/// Returns how long to wait before retrying, from `retry-after-ms`
/// (milliseconds, OpenAI) or `Retry-After` (seconds or an HTTP date).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(milliseconds) = header("retry-after-ms").and_then(parse_non_negative) {
        return Some(Duration::from_secs_f64(milliseconds / 1000.0));
    }
    let value = header(RETRY_AFTER.as_str())?.trim();
    if let Some(seconds) = parse_non_negative(value) {
        return Some(Duration::from_secs_f64(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_non_negative(text: &str) -> Option<f64> {
    let number: f64 = text.trim().parse().ok()?;
    // Bounded so `Duration::from_secs_f64` cannot panic on absurd values.
    (number.is_finite() && number >= 0.0).then_some(number.min(86_400.0 * 365.0))
}

/// Builds the error for a failed upstream HTTP response.
pub fn upstream_error(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    detail: &UpstreamErrorDetail,
    api_key: Option<&Secret>,
) -> ServiceError {
    let mut class = class_for_status(status);
    if class == ErrorClass::InvalidRequest
        && let Some(code_class) = detail.code.as_deref().and_then(class_for_code)
    {
        class = code_class;
    }
    let mut error = ServiceError::new(
        class,
        message_for(provider, class, Some(status), detail, api_key),
    )
    .with_provider(provider);
    if let Some(retry_after) = retry_after(headers, SystemTime::now()) {
        error = error.with_retry_after(retry_after);
    }
    if let Some(param) = &detail.param
        && is_client_facing(class)
    {
        error = error.with_param(param.clone());
    }
    error
}

/// Builds the error for a failure a provider reported inside a successful
/// response (for example an `error` event in the middle of a stream).
pub fn in_band_error(
    provider: &str,
    detail: &UpstreamErrorDetail,
    api_key: Option<&Secret>,
) -> ServiceError {
    let class = class_for_detail(detail);
    ServiceError::new(class, message_for(provider, class, None, detail, api_key))
        .with_provider(provider)
}

/// Builds the error for a failure whose class the provider module decided
/// from its own error format (e.g. Google's `status` names). `status` is
/// the HTTP status, when there was one; the caller adds any retry-after.
pub fn classified_error(
    provider: &str,
    class: ErrorClass,
    status: Option<u16>,
    detail: &UpstreamErrorDetail,
    api_key: Option<&Secret>,
) -> ServiceError {
    let mut error = ServiceError::new(class, message_for(provider, class, status, detail, api_key))
        .with_provider(provider);
    if let Some(param) = &detail.param
        && is_client_facing(class)
    {
        error = error.with_param(param.clone());
    }
    error
}

/// Builds the error for a request that failed below HTTP (connect, TLS,
/// reset, timeout). Never includes the error text: it may carry the URL.
pub fn transport_error(provider: &str, error: &reqwest::Error) -> ServiceError {
    tracing::debug!(provider, error = %DisplayWithoutUrl(error), "provider request failed");
    if error.is_timeout() {
        timeout(provider)
    } else if error.is_connect() {
        ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            format!("provider `{provider}` could not be reached"),
        )
        .with_provider(provider)
    } else {
        ServiceError::new(
            ErrorClass::UpstreamUnavailable,
            format!("the connection to provider `{provider}` failed"),
        )
        .with_provider(provider)
    }
}

/// Builds the error for a provider that did not answer in time.
pub fn timeout(provider: &str) -> ServiceError {
    ServiceError::new(
        ErrorClass::Timeout,
        format!("provider `{provider}` did not answer in time"),
    )
    .with_provider(provider)
}

/// Builds the error for a response that does not follow the wire format.
pub fn malformed_response(provider: &str, what: &str) -> ServiceError {
    ServiceError::new(
        ErrorClass::UpstreamUnavailable,
        format!("provider `{provider}` sent {what}"),
    )
    .with_provider(provider)
}

/// Whether errors of `class` are about the client's request, so the
/// provider's explanation helps the client.
fn is_client_facing(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::InvalidRequest
            | ErrorClass::ContextLengthExceeded
            | ErrorClass::ContentFiltered
            | ErrorClass::NotFound
            | ErrorClass::Permission
            | ErrorClass::RateLimited
    )
}

fn message_for(
    provider: &str,
    class: ErrorClass,
    status: Option<u16>,
    detail: &UpstreamErrorDetail,
    api_key: Option<&Secret>,
) -> String {
    if is_client_facing(class)
        && let Some(message) = detail
            .message
            .as_deref()
            .filter(|text| !text.trim().is_empty())
    {
        return scrub(message, api_key);
    }
    let status = status
        .map(|code| format!(" (HTTP {code})"))
        .unwrap_or_default();
    match class {
        // A rejected key is a gateway configuration problem; the provider's
        // text may echo part of the key.
        ErrorClass::Authentication => {
            format!("provider `{provider}` rejected the configured credentials{status}")
        }
        ErrorClass::Timeout => format!("provider `{provider}` did not answer in time{status}"),
        ErrorClass::Overloaded => format!("provider `{provider}` is overloaded{status}"),
        ErrorClass::RateLimited => format!("provider `{provider}` is rate limiting{status}"),
        ErrorClass::UpstreamUnavailable => {
            format!("provider `{provider}` is unavailable{status}")
        }
        _ => format!("provider `{provider}` refused the request: {class}{status}"),
    }
}

/// Removes the API key from a provider's message, should it echo it.
fn scrub(message: &str, api_key: Option<&Secret>) -> String {
    match api_key.map(Secret::expose).filter(|key| !key.is_empty()) {
        Some(key) if message.contains(key) => message.replace(key, "[redacted]"),
        _ => message.to_owned(),
    }
}

/// Displays a reqwest error with its URL removed (it may hold credentials).
struct DisplayWithoutUrl<'a>(&'a reqwest::Error);

impl std::fmt::Display for DisplayWithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut current: Option<&dyn std::error::Error> = Some(self.0);
        let mut first = true;
        while let Some(error) = current {
            if !first {
                f.write_str(": ")?;
            }
            if first {
                // reqwest's own Display appends " for url (...)"; describe it instead.
                f.write_str(if self.0.is_timeout() {
                    "timed out"
                } else if self.0.is_connect() {
                    "connect error"
                } else if self.0.is_body() || self.0.is_decode() {
                    "body error"
                } else {
                    "request error"
                })?;
            } else {
                write!(f, "{error}")?;
            }
            first = false;
            current = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn a_provider_refusing_the_gateways_credentials_leaves_as_provider_auth() {
        let rejected = at_boundary(
            ServiceError::new(
                ErrorClass::Authentication,
                "provider `p` rejected the configured credentials (HTTP 401)",
            )
            .with_provider("p"),
        );
        assert_eq!(rejected.class, ErrorClass::ProviderAuth);
        assert!(
            rejected.message.contains("HTTP 401"),
            "{}",
            rejected.message
        );
        let denied = at_boundary(
            ServiceError::new(
                ErrorClass::Permission,
                "Key sk-abc*** may not use this model",
            )
            .with_provider("p"),
        );
        assert_eq!(denied.class, ErrorClass::ProviderAuth);
        assert_eq!(denied.provider.as_deref(), Some("p"));
        assert!(!denied.message.contains("sk-abc"), "{}", denied.message);
        // The client's own errors, and errors of no provider, pass unchanged.
        let limited = ServiceError::new(ErrorClass::RateLimited, "slow").with_provider("p");
        assert_eq!(at_boundary(limited.clone()), limited);
        let own = ServiceError::new(ErrorClass::Authentication, "bad key");
        assert_eq!(at_boundary(own.clone()), own);
    }

    fn detail(message: &str, code: Option<&str>) -> UpstreamErrorDetail {
        UpstreamErrorDetail {
            message: Some(message.to_owned()),
            kind: Some("invalid_request_error".to_owned()),
            code: code.map(str::to_owned),
            param: Some("messages".to_owned()),
        }
    }

    #[test]
    fn statuses_map_to_classes() {
        let cases = [
            (400, ErrorClass::InvalidRequest),
            (401, ErrorClass::Authentication),
            (403, ErrorClass::Permission),
            (404, ErrorClass::NotFound),
            (408, ErrorClass::Timeout),
            (422, ErrorClass::InvalidRequest),
            (429, ErrorClass::RateLimited),
            (500, ErrorClass::UpstreamUnavailable),
            (502, ErrorClass::UpstreamUnavailable),
            (503, ErrorClass::UpstreamUnavailable),
            (504, ErrorClass::Timeout),
            (529, ErrorClass::Overloaded),
        ];
        for (status, class) in cases {
            assert_eq!(class_for_status(status), class, "status {status}");
        }
    }

    #[test]
    fn codes_refine_bad_requests() {
        let headers = HeaderMap::new();
        let error = upstream_error(
            "p",
            400,
            &headers,
            &detail("too long", Some("context_length_exceeded")),
            None,
        );
        assert_eq!(error.class, ErrorClass::ContextLengthExceeded);
        assert_eq!(error.message, "too long");
        assert_eq!(error.param.as_deref(), Some("messages"));
        let error = upstream_error(
            "p",
            400,
            &headers,
            &detail("no", Some("content_filter")),
            None,
        );
        assert_eq!(error.class, ErrorClass::ContentFiltered);
        let error = upstream_error(
            "p",
            429,
            &headers,
            &detail("quota", Some("insufficient_quota")),
            None,
        );
        assert_eq!(error.class, ErrorClass::RateLimited);
    }

    #[test]
    fn server_errors_get_a_generic_message_and_keys_are_scrubbed() {
        let key = Secret::new("sk-secret".to_owned());
        let headers = HeaderMap::new();
        let error = upstream_error(
            "p",
            500,
            &headers,
            &detail("db sk-secret down", None),
            Some(&key),
        );
        assert_eq!(error.message, "provider `p` is unavailable (HTTP 500)");
        assert_eq!(error.param, None);
        let error = upstream_error(
            "p",
            400,
            &headers,
            &detail("bad sk-secret", None),
            Some(&key),
        );
        assert_eq!(error.message, "bad [redacted]");
        let error = upstream_error(
            "p",
            401,
            &headers,
            &detail("Incorrect API key sk-secret", None),
            Some(&key),
        );
        assert!(!error.message.contains("sk-"), "{}", error.message);
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&date).expect("ascii date"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(
            retry_after(&headers, now),
            Some(Duration::from_millis(1500))
        );
        headers.insert("retry-after-ms", HeaderValue::from_static("-1"));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn in_band_errors_are_classified_by_code_and_type() {
        let mut detail = UpstreamErrorDetail {
            kind: Some("server_error".to_owned()),
            ..UpstreamErrorDetail::default()
        };
        assert_eq!(class_for_detail(&detail), ErrorClass::UpstreamUnavailable);
        detail.code = Some("rate_limit_exceeded".to_owned());
        assert_eq!(class_for_detail(&detail), ErrorClass::RateLimited);
        detail.code = Some("context_length_exceeded".to_owned());
        assert_eq!(class_for_detail(&detail), ErrorClass::ContextLengthExceeded);
    }
}
