//! Opening the database a URL names.

use sqlx::{Any, AnyPool, any::AnyPoolOptions, migrate::MigrateDatabase};

use crate::{Error, Result};

/// Connections per process; the control plane reads and writes rarely.
const MAX_CONNECTIONS: u32 = 4;

/// The databases the control plane can store config in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatabaseKind {
    /// An SQLite file (`sqlite:`), the embedded default.
    Sqlite,
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
}

impl DatabaseKind {
    /// Returns the kind of database `url` names.
    pub(crate) fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::UnsupportedDatabase)
        }
    }
}

/// Opens a pool on `url`, creating an SQLite file first if it is missing.
pub(crate) async fn connect(url: &str) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    if DatabaseKind::of_url(url)? == DatabaseKind::Sqlite && !Any::database_exists(url).await? {
        Any::create_database(url).await?;
    }
    Ok(AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect(url)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_follows_the_scheme() {
        assert_eq!(
            DatabaseKind::of_url("sqlite://x.db").ok(),
            Some(DatabaseKind::Sqlite)
        );
        assert_eq!(
            DatabaseKind::of_url("postgres://u@h/db").ok(),
            Some(DatabaseKind::Postgres)
        );
        assert_eq!(
            DatabaseKind::of_url("postgresql://u@h/db").ok(),
            Some(DatabaseKind::Postgres)
        );
        assert!(DatabaseKind::of_url("mysql://u@h/db").is_err());
    }
}
