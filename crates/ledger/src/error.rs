//! The ledger's errors and their mapping to [`ServiceError`].

use switchyard_common::{ErrorClass, ServiceError, secret::SecretError};

/// A `Result` with the ledger's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the ledger could not start or record events. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event in a `Record` batch is invalid; nothing of the batch is written.
    #[error("events[{index}].{field}: {reason}")]
    InvalidEvent {
        /// Position of the event in the batch.
        index: usize,
        /// Field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The batch holds more events than one `Record` call may carry.
    #[error("a batch holds at most {max} events, got {got}")]
    BatchTooLarge {
        /// The limit.
        max: usize,
        /// Events received.
        got: usize,
    },
    /// The configuration cannot work (bad URL, bad database name, ...).
    #[error("invalid ledger config: {0}")]
    Config(String),
    /// A ClickHouse secret reference cannot be resolved.
    #[error("ClickHouse password: {0}")]
    Secret(#[from] SecretError),
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// Writing rows to SQLite failed.
    #[error("SQLite write: {0}")]
    SqliteWrite(#[from] rusqlite::Error),
    /// The SQLite writer thread is gone (it panicked or could not start).
    #[error("the SQLite writer thread stopped")]
    WriterStopped,
    /// Applying the SQLite schema failed.
    #[error("SQLite migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// ClickHouse could not be reached (the error carries no URL).
    #[error("ClickHouse unreachable: {0}")]
    ClickHouseTransport(reqwest::Error),
    /// ClickHouse answered with an error.
    #[error("ClickHouse answered {status}: {message}")]
    ClickHouse {
        /// HTTP status.
        status: u16,
        /// Start of ClickHouse's error text.
        message: String,
    },
}

impl Error {
    /// Returns the error class a client sees.
    pub fn code(&self) -> ErrorClass {
        match self {
            Error::InvalidEvent { .. } | Error::BatchTooLarge { .. } => ErrorClass::InvalidRequest,
            Error::Config(_)
            | Error::Secret(_)
            | Error::Sqlite(_)
            | Error::SqliteWrite(_)
            | Error::WriterStopped
            | Error::Migrate(_)
            | Error::ClickHouseTransport(_)
            | Error::ClickHouse { .. } => ErrorClass::Internal,
        }
    }

    /// Converts to the error a client sees: validation errors keep their text,
    /// storage errors become a generic message (the detail is logged instead).
    pub fn to_service_error(&self) -> ServiceError {
        match self {
            Error::InvalidEvent { index, field, .. } => {
                ServiceError::invalid_request(self.to_string())
                    .with_param(format!("events[{index}].{field}"))
            }
            Error::BatchTooLarge { .. } => {
                ServiceError::invalid_request(self.to_string()).with_param("events")
            }
            _ => ServiceError::internal("the usage ledger could not store the events"),
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Self {
        // The URL may carry credentials in its user info; never keep it.
        Error::ClickHouseTransport(error.without_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_hide_their_detail_from_clients() {
        let error = Error::ClickHouse {
            status: 500,
            message: "Code: 60, table missing".to_owned(),
        };
        let service_error = error.to_service_error();
        assert_eq!(service_error.class, ErrorClass::Internal);
        assert!(!service_error.message.contains("Code: 60"));
    }

    #[test]
    fn invalid_events_name_the_field() {
        let error = Error::InvalidEvent {
            index: 2,
            field: "event_id",
            reason: "not a UUID".to_owned(),
        };
        let service_error = error.to_service_error();
        assert_eq!(service_error.class, ErrorClass::InvalidRequest);
        assert_eq!(service_error.param.as_deref(), Some("events[2].event_id"));
        assert_eq!(service_error.message, "events[2].event_id: not a UUID");
    }
}
