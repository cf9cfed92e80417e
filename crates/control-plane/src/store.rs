//! [`ConfigStore`]: config state in SQL, SQLite or PostgreSQL.
//!
//! Both databases run the same SQL through sqlx's `Any` driver (`$N`
//! placeholders, TEXT and BIGINT columns only), so there is one
//! implementation of the sync and load logic. URL-specific setup lives in
//! `database`, the row mapping in `rows`.
//!
//! Objects have owners. [`ConfigStore::sync`] writes what the config file
//! declares and prunes file-owned objects the file no longer declares;
//! objects written through [`ConfigStore::put_api_object`] belong to the API
//! and the file never touches them.

mod database;
mod rows;

use sqlx::{AnyPool, migrate::Migrator};
use switchyard_common::config::Environment;
use switchyard_proto::v1::Snapshot;

use crate::{
    Declarative, Error, Result,
    objects::{ObjectKind, ObjectOwner, StoredConfig, StoredEntry, StoredObject, to_snapshot},
};

/// The schema, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How many times a snapshot read is retried while writers keep committing.
const MAX_READ_ATTEMPTS: usize = 5;

/// The stored config: every object with its owner and revision, and the
/// version of the whole.
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

    /// Applies the config file: writes the objects `declarative` declares
    /// (file-owned), deletes file-owned objects it no longer declares, and
    /// leaves API-owned objects alone. Returns the resulting version, bumped
    /// only when something changed (or nothing was ever stored), so syncing
    /// the same file again keeps it. Fails when the file declares an object
    /// that the API owns.
    pub async fn sync(&self, declarative: &Declarative, environment: &Environment) -> Result<u64> {
        let desired = StoredConfig::from_declarative(declarative, environment)?;
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        let version = rows::read_version(&mut transaction).await?;
        let stored = rows::read_entries(&mut transaction).await?;
        let mut changed = false;
        for (key, object) in &desired.objects {
            let revision = match stored.get(key) {
                Some(entry) if entry.owner == ObjectOwner::Api => {
                    return Err(Error::OwnedByApi {
                        kind: key.0.as_str(),
                        id: key.1.clone(),
                    });
                }
                Some(entry) if entry.object == *object => continue,
                Some(entry) => entry.revision + 1,
                None => 1,
            };
            let entry = StoredEntry {
                object: object.clone(),
                owner: ObjectOwner::File,
                revision,
            };
            rows::write_entry(&mut transaction, &entry).await?;
            changed = true;
        }
        for (key, entry) in &stored {
            if entry.owner == ObjectOwner::File && !desired.objects.contains_key(key) {
                rows::delete_entry(&mut transaction, key.0, &key.1).await?;
                changed = true;
            }
        }
        if version > 0 && !changed {
            transaction.commit().await?;
            tracing::debug!(version, "stored config is up to date");
            return Ok(version);
        }
        let next = version + 1;
        rows::write_version(&mut transaction, next).await?;
        transaction.commit().await?;
        tracing::info!(version = next, "stored config changed");
        Ok(next)
    }

    /// Creates or replaces an API-owned object and returns its revision.
    /// Refuses an object the config file owns: that one changes with the file.
    pub async fn put_api_object(&self, object: StoredObject) -> Result<u64> {
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        let version = rows::read_version(&mut transaction).await?;
        let stored = rows::read_entries(&mut transaction).await?;
        let key = (object.kind(), object.id().to_owned());
        let revision = match stored.get(&key) {
            Some(entry) if entry.owner == ObjectOwner::File => {
                return Err(Error::OwnedByFile {
                    kind: key.0.as_str(),
                    id: key.1,
                });
            }
            Some(entry) if entry.object == object => {
                transaction.commit().await?;
                return Ok(entry.revision);
            }
            Some(entry) => entry.revision + 1,
            None => 1,
        };
        let entry = StoredEntry {
            object,
            owner: ObjectOwner::Api,
            revision,
        };
        rows::write_entry(&mut transaction, &entry).await?;
        rows::write_version(&mut transaction, version + 1).await?;
        transaction.commit().await?;
        Ok(revision)
    }

    /// Deletes an API-owned object; returns whether it existed. Refuses an
    /// object the config file owns.
    pub async fn delete_api_object(&self, kind: ObjectKind, id: &str) -> Result<bool> {
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        let version = rows::read_version(&mut transaction).await?;
        let stored = rows::read_entries(&mut transaction).await?;
        match stored.get(&(kind, id.to_owned())) {
            None => {
                transaction.commit().await?;
                Ok(false)
            }
            Some(entry) if entry.owner == ObjectOwner::File => Err(Error::OwnedByFile {
                kind: kind.as_str(),
                id: id.to_owned(),
            }),
            Some(_) => {
                rows::delete_entry(&mut transaction, kind, id).await?;
                rows::write_version(&mut transaction, version + 1).await?;
                transaction.commit().await?;
                Ok(true)
            }
        }
    }

    /// Returns the stored version.
    pub async fn version(&self) -> Result<u64> {
        let mut connection = self.pool.acquire().await?;
        rows::read_version(&mut connection).await
    }

    /// Reads the stored objects, in order of kind and id, into the full
    /// (unfiltered) snapshot at the stored version.
    pub async fn load_snapshot(&self) -> Result<Snapshot> {
        let mut connection = self.pool.acquire().await?;
        for _ in 0..MAX_READ_ATTEMPTS {
            // Every change commits rows and a higher version together, so an
            // unchanged version around the reads means they saw one state.
            let before = rows::read_version(&mut connection).await?;
            let entries = rows::read_entries(&mut connection).await?;
            let after = rows::read_version(&mut connection).await?;
            if before == after {
                return Ok(to_snapshot(entries.values(), before));
            }
        }
        Err(Error::ConcurrentChanges)
    }

    /// Closes the connections; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes the write lock before reading, so concurrent writers queue up (a row
/// lock on PostgreSQL, the database lock on SQLite) instead of failing on a
/// lock upgrade.
async fn lock(connection: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::query("UPDATE config_version SET version = version WHERE id = 1")
        .execute(&mut *connection)
        .await?;
    Ok(())
}
