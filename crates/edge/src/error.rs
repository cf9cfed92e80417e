//! Errors as OpenAI renders them: `{"error": {message, type, param, code}}`.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use switchyard_common::{ErrorClass, ServiceError};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// What went wrong.
    pub error: ServiceError,
    /// The HTTP status when it is not the class's usual one.
    status: Option<StatusCode>,
    /// Whether a service already logged this request (the router logs the
    /// requests it refused or settled); the edge logs the rest.
    logged: bool,
}

/// What an error answer tells the layers outside the handler: its class
/// and whether the request has its log line already. Set as a response
/// extension by every [`ApiError`].
#[derive(Debug, Clone, Copy)]
pub struct ErrorAnswer {
    /// The error's class.
    pub class: ErrorClass,
    /// Whether a service already logged the request.
    pub logged: bool,
    /// Microseconds spent at providers before the failure (0 when none was
    /// called), subtracted from the wait to report the overhead.
    pub upstream_micros: u64,
}

/// The body of an OpenAI error response.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    /// The error object.
    pub error: ErrorObject<'a>,
}

/// OpenAI's error object.
#[derive(Serialize)]
pub struct ErrorObject<'a> {
    /// Human-readable description.
    pub message: &'a str,
    /// Error type (`invalid_request_error`, ...).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The parameter at fault, or null.
    pub param: Option<&'a str>,
    /// Machine-readable code, or null.
    pub code: Option<&'a str>,
}

impl ApiError {
    /// An error of a class with a client-safe message.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        ServiceError::new(class, message).into()
    }

    /// An invalid request answered with a status other than the class's
    /// usual one (413 for an oversized body).
    pub fn invalid_request_with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            ..ServiceError::invalid_request(message).into()
        }
    }

    /// An error a service has logged already, with the request's id.
    pub fn logged(error: ServiceError) -> Self {
        Self {
            logged: true,
            ..error.into()
        }
    }

    /// Renders the error body as JSON bytes.
    pub fn body_json(&self) -> Vec<u8> {
        error_json(&self.error)
    }
}

/// Renders an error as OpenAI error JSON.
pub fn error_json(error: &ServiceError) -> Vec<u8> {
    let body = ErrorBody {
        error: ErrorObject {
            message: &error.message,
            kind: error.class.openai_type(),
            param: error.param.as_deref(),
            code: error.class.openai_code(),
        },
    };
    // Serializing plain strings into a Vec cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self {
            error,
            status: None,
            logged: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.class.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let mut response = (status, self.body_json()).into_response();
        response.extensions_mut().insert(ErrorAnswer {
            class: self.error.class,
            logged: self.logged,
            upstream_micros: self.error.upstream_micros.unwrap_or(0),
        });
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(retry_after) = self.error.retry_after {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0);
            if let Ok(value) = HeaderValue::from_str(&format!("{seconds:.0}")) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn renders_openai_shape_with_status_and_retry_after() {
        let error = ServiceError::new(ErrorClass::RateLimited, "slow down")
            .with_retry_after(Duration::from_millis(1200));
        let response = ApiError::from(error.clone()).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let json: serde_json::Value =
            serde_json::from_slice(&error_json(&error)).expect("valid json");
        assert_eq!(
            json,
            serde_json::json!({"error": {
                "message": "slow down",
                "type": "rate_limit_error",
                "param": null,
                "code": "rate_limit_exceeded"
            }})
        );
    }
}
