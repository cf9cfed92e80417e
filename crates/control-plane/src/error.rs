//! Errors of the control plane.

use switchyard_common::ErrorClass;

/// Result with the control plane's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the control plane could not load, store or publish config.
///
/// Messages name objects and fields, never secret values or database URLs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A declarative object or a `control_plane` setting is invalid.
    #[error("invalid config at `{path}`: {reason}")]
    InvalidConfig {
        /// Which object and field, e.g. `models[demo].targets[0].provider`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database URL names no supported database.
    #[error(
        "unsupported control-plane database URL: expected `sqlite:`, `postgres://` or `postgresql://`"
    )]
    UnsupportedDatabase,
    /// The database failed.
    #[error("control-plane database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migrations failed.
    #[error("control-plane migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row cannot be turned into a snapshot.
    #[error("stored config is corrupt at `{path}`: {reason}")]
    Corrupt {
        /// Which row and column.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An API write named an object the config file declares.
    #[error("{kind} `{id}` is declared in the config file; change it there, not through the API")]
    OwnedByFile {
        /// The object's kind.
        kind: &'static str,
        /// The object's id.
        id: String,
    },
    /// The config file declares an object the admin API created.
    #[error(
        "the config file declares {kind} `{id}`, which was created through the admin API; \
         delete it there or give the file's object another id"
    )]
    OwnedByApi {
        /// The object's kind.
        kind: &'static str,
        /// The object's id.
        id: String,
    },
    /// No object of that kind and id is stored.
    #[error("{kind} `{id}` does not exist")]
    NotFound {
        /// The object's kind.
        kind: &'static str,
        /// The object's id.
        id: String,
    },
    /// An object of that kind and id is already stored.
    #[error("{kind} `{id}` already exists")]
    AlreadyExists {
        /// The object's kind.
        kind: &'static str,
        /// The object's id.
        id: String,
    },
    /// An update named a revision other than the stored one: someone else
    /// changed the object since the caller read it.
    #[error(
        "{kind} `{id}` is at revision {stored}, not {asked}: it changed since it was read; \
         read it again and reapply the change"
    )]
    StaleRevision {
        /// The object's kind.
        kind: &'static str,
        /// The object's id.
        id: String,
        /// The revision the caller named.
        asked: u64,
        /// The stored revision.
        stored: u64,
    },
    /// The operating system's random generator failed.
    #[error("cannot draw a secret: {0}")]
    Random(String),
    /// Writers kept changing the config while a snapshot was read.
    #[error("stored config kept changing while it was read")]
    ConcurrentChanges,
}

impl Error {
    /// Creates an [`Error::InvalidConfig`].
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Returns the error class this error maps to at a service boundary.
    pub fn code(&self) -> ErrorClass {
        match self {
            Error::InvalidConfig { .. }
            | Error::UnsupportedDatabase
            | Error::OwnedByFile { .. }
            | Error::OwnedByApi { .. }
            | Error::NotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::StaleRevision { .. } => ErrorClass::InvalidRequest,
            Error::Database(_) | Error::ConcurrentChanges => ErrorClass::UpstreamUnavailable,
            Error::Migrate(_) | Error::Corrupt { .. } | Error::Random(_) => ErrorClass::Internal,
        }
    }
}
