//! Errors building the adapters service.
//!
//! Errors of a single attempt are [`ServiceError`](switchyard_common::ServiceError)s
//! from the start: they are classified where they happen (see `classify`)
//! and cross the gRPC boundary as a `Status`.

/// Why the adapters service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared HTTP client could not be created (e.g. no TLS roots).
    #[error("cannot create the provider HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Result of building the adapters service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
