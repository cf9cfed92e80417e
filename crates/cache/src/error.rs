//! The cache's errors and their mapping to [`ServiceError`].

use switchyard_common::{ErrorClass, ServiceError};

/// A `Result` with the cache's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the cache could not start or serve a call. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is invalid.
    #[error("{field}: {reason}")]
    InvalidRequest {
        /// Field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration cannot work.
    #[error("invalid cache config: {0}")]
    Config(&'static str),
    /// Redis failed or could not be reached.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Error {
    /// Returns the error class a client sees.
    pub fn code(&self) -> ErrorClass {
        match self {
            Error::InvalidRequest { .. } => ErrorClass::InvalidRequest,
            Error::Config(_) | Error::Redis(_) => ErrorClass::Internal,
        }
    }

    /// Converts to the error a client sees: validation errors keep their text,
    /// store errors become a generic message (the detail is logged instead).
    pub fn to_service_error(&self) -> ServiceError {
        match self {
            Error::InvalidRequest { field, .. } => {
                ServiceError::invalid_request(self.to_string()).with_param(*field)
            }
            Error::Config(_) | Error::Redis(_) => {
                ServiceError::internal("the response cache is unavailable")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_name_the_field() {
        let error = Error::InvalidRequest {
            field: "key",
            reason: "must be lowercase hex",
        };
        let service_error = error.to_service_error();
        assert_eq!(service_error.class, ErrorClass::InvalidRequest);
        assert_eq!(service_error.param.as_deref(), Some("key"));
        assert_eq!(service_error.message, "key: must be lowercase hex");
    }
}
