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

/// Rows per multi-row statement: 5 parameters each stays far below both
/// databases' parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

/// Inserts or replaces `entries`, a few hundred rows per statement.
pub(crate) async fn write_entries(
    connection: &mut AnyConnection,
    entries: &[&StoredEntry],
) -> Result<()> {
    let keys: Vec<(ObjectKind, &str)> = entries
        .iter()
        .map(|entry| (entry.object.kind(), entry.object.id()))
        .collect();
    delete_entries(connection, &keys).await?;
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let mut sql =
            String::from("INSERT INTO config_objects (kind, id, owner, revision, body) VALUES ");
        for index in 0..chunk.len() {
            let base = index * 5;
            if index > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5
            ));
        }
        let mut query = sqlx::query(&sql);
        for entry in chunk {
            let kind = entry.object.kind().as_str();
            let id = entry.object.id();
            let revision = i64::try_from(entry.revision).map_err(|_| {
                corrupt(format!("config_objects[{kind}/{id}].revision"), "too large")
            })?;
            query = query
                .bind(kind)
                .bind(id.to_owned())
                .bind(entry.owner.as_str())
                .bind(revision)
                .bind(entry.object.encode_body());
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

/// Deletes the objects `keys` name, a few hundred per statement.
pub(crate) async fn delete_entries(
    connection: &mut AnyConnection,
    keys: &[(ObjectKind, &str)],
) -> Result<()> {
    for kind in ObjectKind::ALL {
        let ids: Vec<&str> = keys
            .iter()
            .filter(|(of, _)| *of == kind)
            .map(|(_, id)| *id)
            .collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let placeholders: Vec<String> = (0..chunk.len())
                .map(|index| format!("${}", index + 2))
                .collect();
            let sql = format!(
                "DELETE FROM config_objects WHERE kind = $1 AND id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(kind.as_str());
            for id in chunk {
                query = query.bind((*id).to_owned());
            }
            query.execute(&mut *connection).await?;
        }
    }
    Ok(())
}

fn corrupt(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.into(),
        reason: reason.into(),
    }
}
