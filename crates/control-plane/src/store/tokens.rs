//! Admin tokens besides the configured bootstrap token: hash, role, hint.

use sqlx::{AnyConnection, Row};

use crate::{Error, Result};

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminRole {
    /// Reads everything.
    Viewer,
    /// Reads everything; changes keys, budgets and rate limits.
    Operator,
    /// Everything.
    Admin,
}

impl AdminRole {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored or typed role name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Viewer, Self::Operator, Self::Admin]
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

/// A stored admin token (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    /// Unique id, recorded as the actor of its actions.
    pub id: String,
    /// What it may do.
    pub role: AdminRole,
    /// Its prefix and last four characters.
    pub hint: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The token id that created it.
    pub created_by: String,
}

pub(super) async fn insert(
    connection: &mut AnyConnection,
    token: &StoredToken,
    sha256: &str,
) -> Result<()> {
    let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens WHERE id = $1")
        .bind(&token.id)
        .fetch_one(&mut *connection)
        .await?;
    if exists > 0 {
        return Err(Error::AlreadyExists {
            kind: "admin_token",
            id: token.id.clone(),
        });
    }
    sqlx::query(
        "INSERT INTO admin_tokens (id, sha256, role, hint, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&token.id)
    .bind(sha256)
    .bind(token.role.as_str())
    .bind(&token.hint)
    .bind(token.created_at)
    .bind(&token.created_by)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

pub(super) async fn find(
    connection: &mut AnyConnection,
    sha256: &str,
) -> Result<Option<StoredToken>> {
    let row = sqlx::query(
        "SELECT id, role, hint, created_at, created_by FROM admin_tokens WHERE sha256 = $1",
    )
    .bind(sha256)
    .fetch_optional(&mut *connection)
    .await?;
    row.map(|row| token_of(&row)).transpose()
}

pub(super) async fn list(connection: &mut AnyConnection) -> Result<Vec<StoredToken>> {
    let rows =
        sqlx::query("SELECT id, role, hint, created_at, created_by FROM admin_tokens ORDER BY id")
            .fetch_all(&mut *connection)
            .await?;
    rows.iter().map(token_of).collect()
}

pub(super) async fn delete(connection: &mut AnyConnection, id: &str) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

fn token_of(row: &sqlx::any::AnyRow) -> Result<StoredToken> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let role = AdminRole::parse(&role).ok_or_else(|| Error::Corrupt {
        path: format!("admin_tokens[{id}].role"),
        reason: "unknown".to_owned(),
    })?;
    Ok(StoredToken {
        id,
        role,
        hint: row.try_get("hint")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}
