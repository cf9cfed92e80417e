//! The audit log: one row per admin action on one object, written in the
//! transaction that makes the change.

use sqlx::{AnyConnection, Row};
use switchyard_proto::v1::CredentialRead;

use crate::{
    Result,
    changes::ObjectChange,
    export::to_declarative,
    objects::{StoredEntry, StoredObject},
};

/// Entries returned when a caller asks for none in particular.
const DEFAULT_LIMIT: u32 = 100;

/// One audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Increases with every row.
    pub sequence: u64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The admin token id (or `config-file`) that acted.
    pub actor: String,
    /// `create`, `update`, `delete`, `apply`, `revoke`, `create-token`, …
    pub action: String,
    /// The object's kind; `admin_token` for token actions.
    pub kind: String,
    /// The object's id.
    pub id: String,
    /// Revisions before and after; 0 when absent.
    pub before_revision: u64,
    /// See `before_revision`.
    pub after_revision: u64,
    /// The config version produced; 0 when none.
    pub version: u64,
    /// The object before, as JSON without key hashes; empty when absent.
    pub before: String,
    /// The object after, likewise.
    pub after: String,
}

/// Writes one row per change of an action by `actor` that produced `version`.
pub(super) async fn record(
    connection: &mut AnyConnection,
    actor: &str,
    action: &str,
    changes: &[ObjectChange],
    version: u64,
) -> Result<()> {
    let mut sequence = next_sequence(connection).await?;
    let at_ms = crate::timestamp::now_ms();
    let mut records = Vec::with_capacity(changes.len());
    for change in changes {
        let Some(object) = change
            .after
            .as_ref()
            .or(change.before.as_ref())
            .map(|entry| &entry.object)
        else {
            continue;
        };
        let record = AuditRecord {
            sequence,
            at_ms,
            actor: actor.to_owned(),
            action: action.to_owned(),
            kind: object.kind().as_str().to_owned(),
            id: object.id().to_owned(),
            before_revision: change.before.as_ref().map_or(0, |entry| entry.revision),
            after_revision: change.after.as_ref().map_or(0, |entry| entry.revision),
            version,
            before: masked_json(change.before.as_ref()),
            after: masked_json(change.after.as_ref()),
        };
        records.push(record);
        sequence += 1;
    }
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        insert(connection, chunk).await?;
    }
    Ok(())
}

/// Writes the row of an action on an admin token.
pub(super) async fn record_token(
    connection: &mut AnyConnection,
    actor: &str,
    action: &str,
    id: &str,
) -> Result<()> {
    let record = AuditRecord {
        sequence: next_sequence(connection).await?,
        at_ms: crate::timestamp::now_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        kind: "admin_token".to_owned(),
        id: id.to_owned(),
        before_revision: 0,
        after_revision: 0,
        version: 0,
        before: String::new(),
        after: String::new(),
    };
    insert(connection, std::slice::from_ref(&record)).await
}

/// Writes the rows of credential decryptions adapters reported: action
/// `decrypt` by the reader, at the revision decrypted, naming the master key.
pub(super) async fn record_reads(
    connection: &mut AnyConnection,
    reads: &[CredentialRead],
) -> Result<()> {
    let mut sequence = next_sequence(connection).await?;
    let mut records = Vec::with_capacity(reads.len());
    for read in reads {
        records.push(AuditRecord {
            sequence,
            at_ms: read.at_unix_ms,
            actor: read.reader.clone(),
            action: "decrypt".to_owned(),
            kind: "credential".to_owned(),
            id: read.credential_id.clone(),
            before_revision: read.revision,
            after_revision: read.revision,
            version: 0,
            before: String::new(),
            after: serde_json::json!({ "master_key_id": read.master_key_id }).to_string(),
        });
        sequence += 1;
    }
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        insert(connection, chunk).await?;
    }
    Ok(())
}

/// Writes the row of each sunset shift the control plane made (action
/// `sunset-shift` on the deployment), at the version that publishes them:
/// which deployment, its successor, the routes naming it, and when.
pub(super) async fn record_shifts(
    connection: &mut AnyConnection,
    actor: &str,
    shifts: &[crate::lifecycle::Shift],
    version: u64,
) -> Result<()> {
    let mut sequence = next_sequence(connection).await?;
    let mut records = Vec::with_capacity(shifts.len());
    for shift in shifts {
        records.push(AuditRecord {
            sequence,
            at_ms: shift.at_ms,
            actor: actor.to_owned(),
            action: "sunset-shift".to_owned(),
            kind: "deployment".to_owned(),
            id: shift.deployment.clone(),
            before_revision: 0,
            after_revision: 0,
            version,
            before: String::new(),
            after: serde_json::json!({
                "from": shift.deployment,
                "to": shift.successor,
                "routes": shift.routes,
                "at_ms": shift.at_ms,
            })
            .to_string(),
        });
        sequence += 1;
    }
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        insert(connection, chunk).await?;
    }
    Ok(())
}

/// Reads the newest `limit` rows (100 when 0), newest first.
pub(super) async fn read(connection: &mut AnyConnection, limit: u32) -> Result<Vec<AuditRecord>> {
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
    let rows = sqlx::query(
        "SELECT sequence, at_ms, actor, action, kind, id, before_revision, after_revision, \
         version, before_body, after_body FROM audit_log ORDER BY sequence DESC LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            let unsigned = |column: &str| -> Result<u64> {
                let value: i64 = row.try_get(column)?;
                Ok(u64::try_from(value).unwrap_or(0))
            };
            Ok(AuditRecord {
                sequence: unsigned("sequence")?,
                at_ms: row.try_get("at_ms")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                kind: row.try_get("kind")?,
                id: row.try_get("id")?,
                before_revision: unsigned("before_revision")?,
                after_revision: unsigned("after_revision")?,
                version: unsigned("version")?,
                before: row.try_get("before_body")?,
                after: row.try_get("after_body")?,
            })
        })
        .collect()
}

async fn next_sequence(connection: &mut AnyConnection) -> Result<u64> {
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(sequence) FROM audit_log")
        .fetch_one(&mut *connection)
        .await?;
    Ok(newest.map_or(1, |newest| u64::try_from(newest).unwrap_or(0) + 1))
}

/// Audit rows per multi-row statement (11 parameters each).
const ROWS_PER_STATEMENT: usize = 200;

/// Inserts `records` in one statement.
async fn insert(connection: &mut AnyConnection, records: &[AuditRecord]) -> Result<()> {
    const COLUMNS: usize = 11;
    let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let rows: Vec<String> = (0..records.len())
        .map(|row| {
            let placeholders: Vec<String> = (1..=COLUMNS)
                .map(|column| format!("${}", row * COLUMNS + column))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO audit_log (sequence, at_ms, actor, action, kind, id, before_revision, \
         after_revision, version, before_body, after_body) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for record in records {
        query = query
            .bind(signed(record.sequence))
            .bind(record.at_ms)
            .bind(record.actor.clone())
            .bind(record.action.clone())
            .bind(record.kind.clone())
            .bind(record.id.clone())
            .bind(signed(record.before_revision))
            .bind(signed(record.after_revision))
            .bind(signed(record.version))
            .bind(record.before.clone())
            .bind(record.after.clone());
    }
    query.execute(&mut *connection).await?;
    Ok(())
}

/// The object as JSON in the config file's form, its key hash left out
/// (the hint stays); empty when absent.
fn masked_json(entry: Option<&StoredEntry>) -> String {
    let Some(entry) = entry else {
        return String::new();
    };
    let mut object = entry.object.clone();
    match &mut object {
        StoredObject::ApiKey(key) => key.sha256.clear(),
        // Which key wraps it, never the encrypted value.
        StoredObject::Credential(credential) => {
            return serde_json::json!({
                "credentials": [{
                    "id": credential.id,
                    "provider": credential.provider,
                    "hint": credential.hint,
                    "master_key_id": credential.master_key_id,
                }]
            })
            .to_string();
        }
        _ => {}
    }
    let declarative = to_declarative([&object]);
    serde_json::to_string(&declarative).unwrap_or_default()
}
