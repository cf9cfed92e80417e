//! Reading and writing `config_objects` and `config_version`.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use crate::{
    Error, Result,
    objects::{ObjectKind, ObjectOwner, StoredEntry, StoredObject},
};

/// Every stored object, keyed by kind and id.
pub(crate) type StoredEntries = BTreeMap<(ObjectKind, String), StoredEntry>;

/// Returns the stored config version.
pub(crate) async fn read_version(connection: &mut AnyConnection) -> Result<u64> {
    let version: i64 = sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
        .fetch_one(&mut *connection)
        .await?;
    u64::try_from(version).map_err(|_| corrupt("config_version.version", "is negative"))
}

/// Sets the stored config version.
pub(crate) async fn write_version(connection: &mut AnyConnection, version: u64) -> Result<()> {
    let version = i64::try_from(version)
        .map_err(|_| corrupt("config_version.version", "does not fit BIGINT"))?;
    sqlx::query("UPDATE config_version SET version = $1 WHERE id = 1")
        .bind(version)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Reads every stored object.
pub(crate) async fn read_entries(connection: &mut AnyConnection) -> Result<StoredEntries> {
    let rows = sqlx::query("SELECT kind, id, owner, revision, body FROM config_objects")
        .fetch_all(&mut *connection)
        .await?;
    let mut entries = StoredEntries::new();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let id: String = row.try_get("id")?;
        let path = format!("config_objects[{kind}/{id}]");
        let kind =
            ObjectKind::parse(&kind).ok_or_else(|| corrupt(format!("{path}.kind"), "unknown"))?;
        let owner: String = row.try_get("owner")?;
        let owner = ObjectOwner::parse(&owner)
            .ok_or_else(|| corrupt(format!("{path}.owner"), "unknown"))?;
        let revision: i64 = row.try_get("revision")?;
        let revision = u64::try_from(revision)
            .map_err(|_| corrupt(format!("{path}.revision"), "is negative"))?;
        let body: String = row.try_get("body")?;
        let object = StoredObject::decode_body(kind, &id, &body)?;
        entries.insert(
            (kind, id),
            StoredEntry {
                object,
                owner,
                revision,
            },
        );
    }
    Ok(entries)
}

/// Inserts or replaces one object.
pub(crate) async fn write_entry(connection: &mut AnyConnection, entry: &StoredEntry) -> Result<()> {
    let kind = entry.object.kind().as_str();
    let id = entry.object.id();
    let revision = i64::try_from(entry.revision)
        .map_err(|_| corrupt(format!("config_objects[{kind}/{id}].revision"), "too large"))?;
    sqlx::query("DELETE FROM config_objects WHERE kind = $1 AND id = $2")
        .bind(kind)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO config_objects (kind, id, owner, revision, body) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(kind)
    .bind(id)
    .bind(entry.owner.as_str())
    .bind(revision)
    .bind(entry.object.encode_body())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Deletes one object.
pub(crate) async fn delete_entry(
    connection: &mut AnyConnection,
    kind: ObjectKind,
    id: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM config_objects WHERE kind = $1 AND id = $2")
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

fn corrupt(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.into(),
        reason: reason.into(),
    }
}
