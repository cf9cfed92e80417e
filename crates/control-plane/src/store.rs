//! [`ConfigStore`]: config state in SQL, SQLite or PostgreSQL.
//!
//! Both databases run the same SQL through sqlx's `Any` driver (`$N`
//! placeholders, TEXT and BIGINT columns only), so there is one
//! implementation of the sync and load logic. URL-specific setup lives in
//! `database`, the row mapping in `rows`.

mod database;
mod rows;

use sqlx::{AnyPool, migrate::Migrator};
use switchyard_common::config::Environment;
use switchyard_proto::v1::Snapshot;

use crate::{Declarative, Error, Result, records::StoredConfig};

/// The schema, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How many times a snapshot read is retried while writers keep committing.
const MAX_READ_ATTEMPTS: usize = 5;

/// The stored config: providers, models, API keys and their version.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    pool: AnyPool,
}

impl ConfigStore {
    /// Connects to `database_url` and migrates the schema. An SQLite file is
    /// created if missing; a PostgreSQL database must exist.
    pub async fn connect(database_url: &str) -> Result<Self> {
        let pool = database::connect(database_url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Replaces the stored objects with `declarative` in one transaction and
    /// returns the resulting version. The version is bumped only when the
    /// stored rows change (or nothing was ever stored), so syncing the same
    /// file again keeps it.
    pub async fn sync(&self, declarative: &Declarative, environment: &Environment) -> Result<u64> {
        let desired = StoredConfig::from_declarative(declarative, environment)?;
        let mut transaction = self.pool.begin().await?;
        // Take the write lock before reading, so concurrent syncs queue up
        // (a row lock on PostgreSQL, the database lock on SQLite) instead of
        // failing on a lock upgrade.
        sqlx::query("UPDATE config_version SET version = version WHERE id = 1")
            .execute(&mut *transaction)
            .await?;
        let version = rows::read_version(&mut transaction).await?;
        let stored = rows::read_config(&mut transaction).await?;
        if version > 0 && stored == desired {
            transaction.commit().await?;
            tracing::debug!(version, "stored config is up to date");
            return Ok(version);
        }
        rows::replace_config(&mut transaction, &desired).await?;
        let next = version + 1;
        rows::write_version(&mut transaction, next).await?;
        transaction.commit().await?;
        tracing::info!(version = next, "stored config changed");
        Ok(next)
    }

    /// Returns the stored version.
    pub async fn version(&self) -> Result<u64> {
        let mut connection = self.pool.acquire().await?;
        rows::read_version(&mut connection).await
    }

    /// Reads the stored objects, in order of name or id, into a snapshot at
    /// the stored version.
    pub async fn load_snapshot(&self) -> Result<Snapshot> {
        let mut connection = self.pool.acquire().await?;
        for _ in 0..MAX_READ_ATTEMPTS {
            // Every change commits rows and a higher version together, so an
            // unchanged version around the reads means they saw one state.
            let before = rows::read_version(&mut connection).await?;
            let config = rows::read_config(&mut connection).await?;
            let after = rows::read_version(&mut connection).await?;
            if before == after {
                return Ok(config.to_snapshot(before));
            }
        }
        Err(Error::ConcurrentChanges)
    }

    /// Closes the connections; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
