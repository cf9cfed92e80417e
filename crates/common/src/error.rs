//! Error classes and the service error that crosses gRPC boundaries.
//!
//! A [`ServiceError`] becomes a `tonic::Status` with `google.rpc` details
//! (`ErrorInfo` carries the class, `RetryInfo` the retry-after) and is decoded
//! back on the other side, so the edge can render the exact OpenAI error.

use std::{fmt, time::Duration};

use switchyard_proto::v1 as pb;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of errors raised by Switchyard services.
pub const ERROR_DOMAIN: &str = "switchyard";

/// Why a request failed. Decides retries, HTTP status and OpenAI error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The provider or a Switchyard limit refused the request for now.
    RateLimited,
    /// The provider is overloaded (e.g. Anthropic 529).
    Overloaded,
    /// The provider could not be reached or answered with a 5xx.
    UpstreamUnavailable,
    /// The provider did not answer in time.
    Timeout,
    /// The request is malformed or uses something the target cannot do.
    InvalidRequest,
    /// Missing, unknown or disabled API key.
    Authentication,
    /// The key may not use what it asked for.
    Permission,
    /// The model (or another named object) does not exist.
    NotFound,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The provider refused to produce content.
    ContentFiltered,
    /// A budget would be exceeded.
    BudgetExceeded,
    /// A bug or an unexpected failure inside Switchyard.
    Internal,
    /// The caller went away before the response was complete (recorded in
    /// usage events; never sent to a client).
    Cancelled,
    /// A provider refused the gateway's own credentials (an upstream 401 or
    /// 403, or a provider secret with no value): the gateway's problem, not
    /// the client's key. Another deployment may answer.
    ProviderAuth,
    /// A Switchyard service on the request path (router, adapters) could
    /// not be reached.
    ServiceUnavailable,
}

impl ErrorClass {
    /// Every class, in proto order.
    pub const ALL: [ErrorClass; 15] = [
        ErrorClass::RateLimited,
        ErrorClass::Overloaded,
        ErrorClass::UpstreamUnavailable,
        ErrorClass::Timeout,
        ErrorClass::InvalidRequest,
        ErrorClass::Authentication,
        ErrorClass::Permission,
        ErrorClass::NotFound,
        ErrorClass::ContextLengthExceeded,
        ErrorClass::ContentFiltered,
        ErrorClass::BudgetExceeded,
        ErrorClass::Internal,
        ErrorClass::Cancelled,
        ErrorClass::ProviderAuth,
        ErrorClass::ServiceUnavailable,
    ];

    /// Returns the snake_case name used in logs, usage events and `ErrorInfo.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::UpstreamUnavailable => "upstream_unavailable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::Authentication => "authentication",
            ErrorClass::Permission => "permission",
            ErrorClass::NotFound => "not_found",
            ErrorClass::ContextLengthExceeded => "context_length_exceeded",
            ErrorClass::ContentFiltered => "content_filtered",
            ErrorClass::BudgetExceeded => "budget_exceeded",
            ErrorClass::Internal => "internal",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::ProviderAuth => "provider_auth",
            ErrorClass::ServiceUnavailable => "service_unavailable",
        }
    }

    /// Parses a name produced by [`ErrorClass::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == name)
    }

    /// Returns the gRPC status code for this class.
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorClass::RateLimited | ErrorClass::BudgetExceeded => Code::ResourceExhausted,
            ErrorClass::Overloaded
            | ErrorClass::UpstreamUnavailable
            | ErrorClass::ProviderAuth
            | ErrorClass::ServiceUnavailable => Code::Unavailable,
            ErrorClass::Timeout => Code::DeadlineExceeded,
            ErrorClass::InvalidRequest
            | ErrorClass::ContextLengthExceeded
            | ErrorClass::ContentFiltered => Code::InvalidArgument,
            ErrorClass::Authentication => Code::Unauthenticated,
            ErrorClass::Permission => Code::PermissionDenied,
            ErrorClass::NotFound => Code::NotFound,
            ErrorClass::Internal => Code::Internal,
            ErrorClass::Cancelled => Code::Cancelled,
        }
    }

    /// Returns the HTTP status the edge answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::InvalidRequest
            | ErrorClass::ContextLengthExceeded
            | ErrorClass::ContentFiltered => 400,
            ErrorClass::Authentication => 401,
            ErrorClass::Permission => 403,
            ErrorClass::NotFound => 404,
            ErrorClass::RateLimited | ErrorClass::BudgetExceeded => 429,
            ErrorClass::Internal => 500,
            // nginx's "client closed request"; only ever seen in logs.
            ErrorClass::Cancelled => 499,
            ErrorClass::UpstreamUnavailable | ErrorClass::ProviderAuth => 502,
            ErrorClass::Overloaded | ErrorClass::ServiceUnavailable => 503,
            ErrorClass::Timeout => 504,
        }
    }

    /// Returns the OpenAI error `type` field for this class.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorClass::InvalidRequest
            | ErrorClass::ContextLengthExceeded
            | ErrorClass::ContentFiltered
            | ErrorClass::NotFound => "invalid_request_error",
            ErrorClass::Authentication => "authentication_error",
            ErrorClass::Permission => "permission_error",
            ErrorClass::RateLimited => "rate_limit_error",
            ErrorClass::BudgetExceeded => "insufficient_quota",
            ErrorClass::Timeout => "timeout_error",
            ErrorClass::Overloaded
            | ErrorClass::UpstreamUnavailable
            | ErrorClass::ProviderAuth
            | ErrorClass::ServiceUnavailable
            | ErrorClass::Internal
            | ErrorClass::Cancelled => "server_error",
        }
    }

    /// Returns the OpenAI error `code` field for this class, when OpenAI has one.
    pub fn openai_code(self) -> Option<&'static str> {
        match self {
            ErrorClass::Authentication => Some("invalid_api_key"),
            ErrorClass::NotFound => Some("model_not_found"),
            ErrorClass::ContextLengthExceeded => Some("context_length_exceeded"),
            ErrorClass::ContentFiltered => Some("content_filter"),
            ErrorClass::RateLimited => Some("rate_limit_exceeded"),
            ErrorClass::BudgetExceeded => Some("insufficient_quota"),
            _ => None,
        }
    }

    /// Whether another attempt (same or other target) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited
                | ErrorClass::Overloaded
                | ErrorClass::UpstreamUnavailable
                | ErrorClass::ProviderAuth
                | ErrorClass::Timeout
        )
    }

    /// The class of a proto enum value; `None` for unspecified (success)
    /// or a value this build does not know.
    pub fn from_proto(value: i32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|class| class.to_proto() as i32 == value)
    }

    /// Converts to the proto enum.
    pub fn to_proto(self) -> pb::ErrorClass {
        match self {
            ErrorClass::RateLimited => pb::ErrorClass::RateLimited,
            ErrorClass::Overloaded => pb::ErrorClass::Overloaded,
            ErrorClass::UpstreamUnavailable => pb::ErrorClass::UpstreamUnavailable,
            ErrorClass::Timeout => pb::ErrorClass::Timeout,
            ErrorClass::InvalidRequest => pb::ErrorClass::InvalidRequest,
            ErrorClass::Authentication => pb::ErrorClass::Authentication,
            ErrorClass::Permission => pb::ErrorClass::Permission,
            ErrorClass::NotFound => pb::ErrorClass::NotFound,
            ErrorClass::ContextLengthExceeded => pb::ErrorClass::ContextLengthExceeded,
            ErrorClass::ContentFiltered => pb::ErrorClass::ContentFiltered,
            ErrorClass::BudgetExceeded => pb::ErrorClass::BudgetExceeded,
            ErrorClass::Internal => pb::ErrorClass::Internal,
            ErrorClass::Cancelled => pb::ErrorClass::Cancelled,
            ErrorClass::ProviderAuth => pb::ErrorClass::ProviderAuth,
            ErrorClass::ServiceUnavailable => pb::ErrorClass::ServiceUnavailable,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that ends a request, with everything the edge needs to render it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct ServiceError {
    /// Why the request failed.
    pub class: ErrorClass,
    /// Client-safe message; never holds credentials or internal detail.
    pub message: String,
    /// Provider that produced the error, if any.
    pub provider: Option<Box<str>>,
    /// How long the client should wait before retrying.
    pub retry_after: Option<Duration>,
    /// The request parameter at fault (OpenAI `param`).
    pub param: Option<Box<str>>,
    /// Microseconds the request spent at providers before it failed, when
    /// any was called: the edge subtracts them from the client's wait to
    /// report the gateway's own overhead.
    pub upstream_micros: Option<u64>,
    /// The id of the provider API key the failed attempt used, when the
    /// provider has several (never the key itself).
    pub credential: Option<Box<str>>,
}

impl ServiceError {
    /// Creates an error of a class with a client-safe message.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            provider: None,
            retry_after: None,
            param: None,
            upstream_micros: None,
            credential: None,
        }
    }

    /// Shorthand for an [`ErrorClass::InvalidRequest`] error.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::InvalidRequest, message)
    }

    /// Shorthand for an [`ErrorClass::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Internal, message)
    }

    /// Names the provider that produced the error.
    pub fn with_provider(mut self, provider: impl AsRef<str>) -> Self {
        self.provider = Some(provider.as_ref().into());
        self
    }

    /// Records the time the request spent at providers before failing.
    pub fn with_upstream_micros(mut self, micros: u64) -> Self {
        self.upstream_micros = Some(micros);
        self
    }

    /// Names the provider API key the failed attempt used.
    pub fn with_credential(mut self, credential: &str) -> Self {
        self.credential = Some(credential.into());
        self
    }

    /// Sets how long the client should wait before retrying.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// Names the request parameter at fault.
    pub fn with_param(mut self, param: impl Into<Box<str>>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Encodes the error as a gRPC status with `ErrorInfo` and `RetryInfo` details.
    pub fn to_status(&self) -> Status {
        let mut metadata = std::collections::HashMap::new();
        if let Some(provider) = &self.provider {
            metadata.insert("provider".to_owned(), provider.to_string());
        }
        if let Some(param) = &self.param {
            metadata.insert("param".to_owned(), param.to_string());
        }
        if let Some(micros) = self.upstream_micros {
            metadata.insert("upstream_micros".to_owned(), micros.to_string());
        }
        if let Some(credential) = &self.credential {
            metadata.insert("credential".to_owned(), credential.to_string());
        }
        let mut details =
            ErrorDetails::with_error_info(self.class.as_str(), ERROR_DOMAIN, metadata);
        if let Some(retry_after) = self.retry_after {
            details.set_retry_info(Some(retry_after));
        }
        Status::with_error_details(self.class.grpc_code(), self.message.clone(), details)
    }

    /// Whether `status` carries a Switchyard error, as [`ServiceError::to_status`]
    /// makes them; `false` when the call itself failed (a service
    /// unreachable, a connection reset), which the callee could not log.
    pub fn is_service_status(status: &Status) -> bool {
        status
            .get_error_details()
            .error_info()
            .is_some_and(|info| info.domain == ERROR_DOMAIN)
    }

    /// Decodes a status received from another service. A status without our
    /// `ErrorInfo` (a transport failure, say) is classified by its code.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let info = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN);
        let Some(info) = info else {
            // Not a Switchyard error: the call itself failed (a service
            // unreachable, a connection reset, a transport limit). Never
            // the client's fault, so never a 4xx.
            return match status.code() {
                Code::DeadlineExceeded => Self::new(ErrorClass::Timeout, "The request timed out."),
                Code::Unavailable => Self::new(
                    ErrorClass::ServiceUnavailable,
                    "A gateway service is unavailable; try again shortly.",
                ),
                // tonic reports a call its transport could not complete (the
                // connection to a process that just died, reset mid-call) as
                // `Unknown` with the transport error as its source; a status
                // another service sent has no source.
                Code::Unknown if std::error::Error::source(status).is_some() => Self::new(
                    ErrorClass::ServiceUnavailable,
                    "A gateway service is unavailable; try again shortly.",
                ),
                _ => Self::new(ErrorClass::Internal, "internal service error"),
            };
        };
        let class = ErrorClass::from_name(&info.reason).unwrap_or(ErrorClass::Internal);
        Self {
            class,
            message: status.message().to_owned(),
            provider: info
                .metadata
                .get("provider")
                .map(|provider| provider.as_str().into()),
            retry_after: details.retry_info().and_then(|retry| retry.retry_delay),
            param: info
                .metadata
                .get("param")
                .map(|param| param.as_str().into()),
            upstream_micros: info
                .metadata
                .get("upstream_micros")
                .and_then(|micros| micros.parse().ok()),
            credential: info
                .metadata
                .get("credential")
                .map(|credential| credential.as_str().into()),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_the_transport_could_not_complete_is_a_service_unavailable() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let failed = Status::from_error(Box::new(reset));
        assert_eq!(failed.code(), Code::Unknown);
        assert_eq!(
            ServiceError::from_status(&failed).class,
            ErrorClass::ServiceUnavailable
        );
        // An `Unknown` another service sent is not the transport's.
        assert_eq!(
            ServiceError::from_status(&Status::unknown("odd")).class,
            ErrorClass::Internal
        );
    }

    #[test]
    fn every_class_round_trips_through_a_status() {
        for class in ErrorClass::ALL {
            let error = ServiceError::new(class, "boom")
                .with_provider("openai")
                .with_param("model")
                .with_retry_after(Duration::from_millis(1500))
                .with_upstream_micros(301_250)
                .with_credential("batch");
            let decoded = ServiceError::from_status(&error.to_status());
            assert_eq!(decoded, error, "class {class}");
        }
    }

    #[test]
    fn foreign_status_is_classified_by_code_without_leaking_its_message() {
        let foreign = Status::unavailable("dns error: 10.0.0.7");
        assert!(!ServiceError::is_service_status(&foreign));
        assert!(ServiceError::is_service_status(
            &ServiceError::new(ErrorClass::ServiceUnavailable, "starting").to_status()
        ));
        let decoded = ServiceError::from_status(&foreign);
        assert_eq!(decoded.class, ErrorClass::ServiceUnavailable);
        assert_eq!(decoded.class.http_status(), 503);
        assert!(!decoded.message.contains("10.0.0.7"));
        // A transport limit is not the client's rate limit.
        let decoded = ServiceError::from_status(&Status::resource_exhausted("h2 window"));
        assert_eq!(decoded.class, ErrorClass::Internal);
    }

    #[test]
    fn names_parse_back() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::from_name(class.as_str()), Some(class));
        }
        assert_eq!(ErrorClass::from_name("nope"), None);
    }
}
