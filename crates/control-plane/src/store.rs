//! [`ConfigStore`]: config state in SQL, SQLite or PostgreSQL.
//!
//! Both databases run the same SQL through sqlx's `Any` driver (`$N`
//! placeholders, TEXT and BIGINT columns only), so there is one
//! implementation of every read and write. URL-specific setup lives in
//! `database`, the row mapping in `rows`, the audit log in `audit` and admin
//! tokens in `tokens`.
//!
//! Every change goes through [`ConfigStore::transact`]: under the write lock
//! it reads the stored objects, lets a plan (from `changes`) decide what
//! changes, writes the objects, the new version and one audit row per changed
//! object, and commits all of it at once, or nothing on a dry run or an error.

mod audit;
mod database;
mod rows;
mod shifts;
mod tokens;

use std::sync::{Arc, Mutex, PoisonError};

use sqlx::{AnyPool, migrate::Migrator};
use switchyard_common::config::Environment;
use switchyard_proto::v1::{CredentialRead, Snapshot};

pub use audit::AuditRecord;
pub(crate) use rows::StoredEntries;
pub(crate) use shifts::Shifts;
pub use tokens::{AdminRole, StoredToken};

use crate::{
    Declarative, Error, Result,
    changes::{self, Change, Outcome},
    lifecycle::Shift,
    objects::{ObjectKind, StoredConfig, StoredObject, to_snapshot},
};

/// The schema, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How many times a snapshot read is retried while writers keep committing.
const MAX_READ_ATTEMPTS: usize = 5;

/// The actor recorded for changes the config file makes.
pub const CONFIG_FILE_ACTOR: &str = "config-file";

/// The stored config: every object with its owner and revision, the version
/// of the whole, admin tokens and the audit log.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    pool: AnyPool,
    kind: database::DatabaseKind,
    /// The decoded objects at the version last read or written here: a
    /// change or reload at that version need not decode every row again.
    cache: Arc<Mutex<Option<Cached>>>,
    /// Held by a change of this process from its start until the cache
    /// holds its result, so a reload waits for it rather than reading every
    /// row while the cache is being updated.
    writing: Arc<tokio::sync::RwLock<()>>,
}

/// Every stored object at one version.
#[derive(Debug)]
struct Cached {
    version: u64,
    entries: Arc<StoredEntries>,
}

/// The PostgreSQL channel every commit notifies, with the new version as
/// payload; control planes listening on it publish at once instead of at
/// their next poll.
pub const CHANGE_CHANNEL: &str = "switchyard_config_changed";

impl ConfigStore {
    /// Connects to `database_url` and migrates the schema. An SQLite file is
    /// created if missing; a PostgreSQL database must exist.
    pub async fn connect(database_url: &str) -> Result<Self> {
        let kind = database::DatabaseKind::of_url(database_url)?;
        let pool = database::connect(database_url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            kind,
            cache: Arc::new(Mutex::new(None)),
            writing: Arc::new(tokio::sync::RwLock::new(())),
        })
    }

    /// The cached objects, when they are at `version`.
    fn cached(&self, version: u64) -> Option<Arc<StoredEntries>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|cached| cached.version == version)
            .map(|cached| cached.entries.clone())
    }

    /// Takes the cached objects out of the cache when they are at `version`,
    /// so a change can update them in place rather than copy them.
    fn take_cached(&self, version: u64) -> Option<Arc<StoredEntries>> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache
            .as_ref()
            .is_some_and(|cached| cached.version == version)
        {
            return cache.take().map(|cached| cached.entries);
        }
        None
    }

    /// Remembers the objects at `version` (a newer version only).
    fn remember(&self, version: u64, entries: Arc<StoredEntries>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache
            .as_ref()
            .is_none_or(|cached| cached.version <= version)
        {
            *cache = Some(Cached { version, entries });
        }
    }

    /// Whether the database can notify other control planes of a commit
    /// (PostgreSQL's `LISTEN/NOTIFY`); SQLite cannot, and is polled.
    pub fn notifies(&self) -> bool {
        self.kind == database::DatabaseKind::Postgres
    }

    /// Applies the config file: writes the objects `declarative` declares
    /// (file-owned), deletes file-owned objects it no longer declares, and
    /// leaves API-owned objects alone. Returns the resulting version, bumped
    /// only when something changed (or nothing was ever stored), so syncing
    /// the same file again keeps it. Fails when the file declares an object
    /// that the API owns with other content, or when the result would not
    /// validate (an API-owned key naming a team the file dropped).
    pub async fn sync(&self, declarative: &Declarative, environment: &Environment) -> Result<u64> {
        let desired = StoredConfig::from_declarative(declarative, environment)?;
        let outcome = self
            .transact(
                CONFIG_FILE_ACTOR,
                Change::Apply {
                    desired,
                    prune: true,
                    dry_run: false,
                },
            )
            .await?;
        if outcome.changes.is_empty() {
            tracing::debug!(version = outcome.version, "stored config is up to date");
        } else {
            tracing::info!(
                version = outcome.version,
                changed = outcome.changes.len(),
                "stored config changed"
            );
        }
        Ok(outcome.version)
    }

    /// Creates or replaces an API-owned object and returns its revision.
    /// Refuses an object the config file owns: that one changes with the file.
    pub async fn put_api_object(&self, object: StoredObject) -> Result<u64> {
        let key = (object.kind(), object.id().to_owned());
        let stored = self.entries().await?.1.get(&key).cloned();
        let change = match stored {
            Some(entry) => {
                let mut object = object;
                object.set_revision(entry.revision);
                Change::Update { object }
            }
            None => Change::Create { object },
        };
        let outcome = self.transact("api", change).await?;
        match outcome
            .changes
            .first()
            .and_then(|change| change.after.as_ref())
        {
            Some(after) => Ok(after.revision),
            None => Ok(self
                .entries()
                .await?
                .1
                .get(&key)
                .map_or(0, |entry| entry.revision)),
        }
    }

    /// Deletes an API-owned object; returns whether it existed. Refuses an
    /// object the config file owns.
    pub async fn delete_api_object(&self, kind: ObjectKind, id: &str) -> Result<bool> {
        let change = Change::Delete {
            kind,
            id: id.to_owned(),
            revision: 0,
        };
        match self.transact("api", change).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Makes `change` under the write lock, as `actor`: plans it against the
    /// stored objects, validates the result, and writes the objects, the
    /// version (bumped once when anything changed, or when nothing was ever
    /// stored) and one audit row per changed object in one transaction. A
    /// dry run plans and validates but writes nothing.
    pub async fn transact(&self, actor: &str, change: Change) -> Result<Outcome> {
        let dry_run = change.is_dry_run();
        let action = change.action_name();
        let _writing = self.writing.write().await;
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        let version = rows::read_version(&mut transaction).await?;
        let mut stored = match self.take_cached(version) {
            Some(stored) => stored,
            None => Arc::new(rows::read_entries(&mut transaction).await?),
        };
        let planned = match changes::plan(change, &stored) {
            Ok(planned) => planned,
            Err(error) => {
                self.remember(version, stored);
                return Err(error);
            }
        };
        if dry_run || (planned.is_empty() && version > 0) {
            self.remember(version, stored);
            transaction.rollback().await?;
            return Ok(Outcome {
                version,
                changes: planned,
            });
        }
        let next = version + 1;
        let written: Vec<&crate::StoredEntry> = planned
            .iter()
            .filter_map(|change| change.after.as_ref())
            .collect();
        let deleted: Vec<(ObjectKind, &str)> = planned
            .iter()
            .filter(|change| change.after.is_none())
            .filter_map(|change| change.before.as_ref())
            .map(|entry| (entry.object.kind(), entry.object.id()))
            .collect();
        rows::delete_entries(&mut transaction, &deleted).await?;
        rows::write_entries(&mut transaction, &written).await?;
        rows::write_version(&mut transaction, next).await?;
        audit::record(&mut transaction, actor, action, &planned, next).await?;
        self.notify(&mut transaction, next).await?;
        transaction.commit().await?;
        // In place when nothing else holds them (the usual case), else a copy.
        let after = Arc::make_mut(&mut stored);
        for change in &planned {
            match (&change.before, &change.after) {
                (_, Some(entry)) => {
                    after.insert(
                        (entry.object.kind(), entry.object.id().to_owned()),
                        entry.clone(),
                    );
                }
                (Some(entry), None) => {
                    after.remove(&(entry.object.kind(), entry.object.id().to_owned()));
                }
                (None, None) => {}
            }
        }
        self.remember(next, stored);
        Ok(Outcome {
            version: next,
            changes: planned,
        })
    }

    /// Tells other control planes (PostgreSQL only) that `version` is
    /// stored; delivered when `transaction` commits, and only then.
    async fn notify(&self, transaction: &mut sqlx::AnyConnection, version: u64) -> Result<()> {
        if self.notifies() {
            sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS notified")
                .bind(CHANGE_CHANNEL)
                .bind(version.to_string())
                .execute(&mut *transaction)
                .await?;
        }
        Ok(())
    }

    /// Returns the stored version and every stored object, read as one state.
    pub async fn entries(&self) -> Result<(u64, Arc<StoredEntries>)> {
        let _settled = self.writing.read().await;
        let mut connection = self.pool.acquire().await?;
        for _ in 0..MAX_READ_ATTEMPTS {
            // Every change commits rows and a higher version together, so an
            // unchanged version around the reads means they saw one state.
            let before = rows::read_version(&mut connection).await?;
            if let Some(entries) = self.cached(before) {
                return Ok((before, entries));
            }
            let entries = rows::read_entries(&mut connection).await?;
            let after = rows::read_version(&mut connection).await?;
            if before == after {
                let entries = Arc::new(entries);
                self.remember(before, entries.clone());
                return Ok((before, entries));
            }
        }
        Err(Error::ConcurrentChanges)
    }

    /// Returns the stored version.
    pub async fn version(&self) -> Result<u64> {
        let mut connection = self.pool.acquire().await?;
        rows::read_version(&mut connection).await
    }

    /// Reads the stored objects, in order of kind and id, into the full
    /// (unfiltered) snapshot at the stored version, with the sunset shifts
    /// made (see [`crate::lifecycle`]) and what each deployment takes from
    /// its provider (see [`crate::inherit`]).
    pub async fn load_snapshot(&self) -> Result<Snapshot> {
        for _ in 0..MAX_READ_ATTEMPTS {
            let (version, entries) = self.entries().await?;
            let mut connection = self.pool.acquire().await?;
            let made = shifts::read(&mut connection).await?;
            // A shift commits with a higher version: an unchanged one means
            // the shifts read belong to these objects.
            if rows::read_version(&mut connection).await? == version {
                let mut snapshot = to_snapshot(entries.values(), version);
                crate::lifecycle::publish(&mut snapshot, &made);
                crate::inherit::from_providers(&mut snapshot);
                return Ok(snapshot);
            }
        }
        Err(Error::ConcurrentChanges)
    }

    /// Makes the sunset shifts due now (see [`crate::lifecycle`]): each is
    /// recorded with one `sunset-shift` audit row by `actor`, under a new
    /// version, so the next snapshot publishes it. Returns the shifts made;
    /// none when another control plane made them first.
    pub async fn shift_due(&self, actor: &str) -> Result<Vec<Shift>> {
        // Most polls have nothing past its sunset: decided from the cached
        // objects alone, without a query.
        let (_, entries) = self.entries().await?;
        let now_ms = crate::timestamp::now_ms();
        if crate::lifecycle::due(&entries, &Shifts::new(), now_ms).is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.pool.acquire().await?;
        if crate::lifecycle::due(&entries, &shifts::read(&mut connection).await?, now_ms).is_empty()
        {
            return Ok(Vec::new());
        }
        drop(connection);
        let _writing = self.writing.write().await;
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        let version = rows::read_version(&mut transaction).await?;
        let stored = match self.take_cached(version) {
            Some(stored) => stored,
            None => Arc::new(rows::read_entries(&mut transaction).await?),
        };
        let made = shifts::read(&mut transaction).await?;
        let due = crate::lifecycle::due(&stored, &made, now_ms);
        if due.is_empty() {
            self.remember(version, stored);
            transaction.rollback().await?;
            return Ok(due);
        }
        let next = version + 1;
        for shift in &due {
            shifts::write(&mut transaction, shift).await?;
        }
        rows::write_version(&mut transaction, next).await?;
        audit::record_shifts(&mut transaction, actor, &due, next).await?;
        self.notify(&mut transaction, next).await?;
        transaction.commit().await?;
        // The objects did not change, only the version they stand at.
        self.remember(next, stored);
        Ok(due)
    }

    /// Returns the newest `limit` audit records, newest first.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        let mut connection = self.pool.acquire().await?;
        audit::read(&mut connection, limit).await
    }

    /// Stores a new admin token (its hash only).
    pub async fn insert_token(&self, token: &StoredToken, sha256: &str, actor: &str) -> Result<()> {
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        tokens::insert(&mut transaction, token, sha256).await?;
        audit::record_token(&mut transaction, actor, "create-token", &token.id).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Finds the admin token whose hash is `sha256`.
    pub async fn token_by_hash(&self, sha256: &str) -> Result<Option<StoredToken>> {
        let mut connection = self.pool.acquire().await?;
        tokens::find(&mut connection, sha256).await
    }

    /// Lists admin tokens, in id order.
    pub async fn tokens(&self) -> Result<Vec<StoredToken>> {
        let mut connection = self.pool.acquire().await?;
        tokens::list(&mut connection).await
    }

    /// Deletes an admin token; returns whether it existed.
    pub async fn revoke_token(&self, id: &str, actor: &str) -> Result<bool> {
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        let existed = tokens::delete(&mut transaction, id).await?;
        if existed {
            audit::record_token(&mut transaction, actor, "revoke-token", id).await?;
        }
        transaction.commit().await?;
        Ok(existed)
    }

    /// Writes one audit row per decryption of a stored credential that an
    /// adapter reported (action `decrypt`, the reader as actor).
    pub async fn record_credential_reads(&self, reads: &[CredentialRead]) -> Result<()> {
        if reads.is_empty() {
            return Ok(());
        }
        let mut transaction = self.pool.begin().await?;
        lock(&mut transaction).await?;
        audit::record_reads(&mut transaction, reads).await?;
        transaction.commit().await?;
        Ok(())
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
