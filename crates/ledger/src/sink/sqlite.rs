//! [`SqliteSink`]: usage rows in a SQLite file, the embedded default.

use std::{str::FromStr, sync::LazyLock, time::Duration};

use sqlx::{
    Arguments, SqlitePool,
    sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};

use super::{SinkFuture, UsageSink};
use crate::{
    error::{Error, Result},
    event::UsageRow,
};

/// Columns bound per row.
const COLUMNS_PER_ROW: usize = 30;

/// SQLite's limit on bound parameters in one statement.
const MAX_PARAMETERS: usize = 32_766;

/// Rows per multi-row `INSERT`. Batches are written as full groups of this
/// size plus single-row inserts for the rest, so only two distinct statements
/// exist and both stay prepared in sqlx's statement cache. (Caching one
/// statement per batch size grew memory without bound in the soak test;
/// not caching at all halved throughput; see BENCHMARKS.md.)
const ROWS_PER_STATEMENT: usize = 64;
const _: () = assert!(ROWS_PER_STATEMENT * COLUMNS_PER_ROW <= MAX_PARAMETERS);

/// The columns of `usage_events`, in the order [`bind_row`] binds them.
const COLUMNS: &str = "event_id, request_id, key_id, team_id, end_user, model, provider, \
     upstream_model, prompt_tokens, completion_tokens, total_tokens, cached_prompt_tokens, \
     reasoning_tokens, cache_write_tokens, cost_nanos, currency, cache_hit, stream, error_class, \
     latency_ms, ttft_ms, created_at, created_at_ms, route_id, deployment_id, snapshot_version, \
     tags, attempts, user_id, operation";

/// The SQL text of the two statements, built once: rebuilding its 1,920
/// placeholders for every group cost about 12,000 instructions per request
/// at 512-event batches (BENCHMARKS.md).
static INSERT_GROUP: LazyLock<String> = LazyLock::new(|| insert_sql(ROWS_PER_STATEMENT));
static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1));

/// Stores usage rows in SQLite; duplicates are ignored by primary key.
#[derive(Debug, Clone)]
pub struct SqliteSink {
    pool: SqlitePool,
}

impl SqliteSink {
    /// Opens (creating if missing) the database at `url`, e.g.
    /// `sqlite://switchyard-ledger.db`, and applies the schema in
    /// `schema/sqlite/`.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| Error::Config("`sqlite_url` is not a SQLite URL".to_owned()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./schema/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Returns the connection pool (for reports and tests).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn insert_rows(&self, rows: &[UsageRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut transaction = self.pool.begin().await?;
        let groups = rows.chunks_exact(ROWS_PER_STATEMENT);
        let rest = groups.remainder();
        for group in groups.chain(rest.chunks(1)) {
            let sql = if group.len() == 1 {
                INSERT_ONE.as_str()
            } else {
                INSERT_GROUP.as_str()
            };
            let mut arguments = SqliteArguments::default();
            arguments.reserve(group.len() * COLUMNS_PER_ROW, 0);
            for row in group {
                bind_row(&mut arguments, row).map_err(sqlx::Error::Encode)?;
            }
            sqlx::query_with(sql, arguments)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

/// `INSERT … VALUES (…), … ON CONFLICT DO NOTHING` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let placeholders = vec!["?"; COLUMNS_PER_ROW].join(", ");
    let values = vec![format!("({placeholders})"); rows].join(", ");
    format!(
        "INSERT INTO usage_events ({COLUMNS}) VALUES {values} ON CONFLICT (event_id) DO NOTHING"
    )
}

/// Binds the values of `row`, in the order of [`COLUMNS`].
fn bind_row<'q>(
    arguments: &mut SqliteArguments<'q>,
    row: &'q UsageRow<'_>,
) -> std::result::Result<(), sqlx::error::BoxDynError> {
    arguments.add(row.event_id.as_ref())?;
    arguments.add(row.request_id)?;
    arguments.add(row.key_id)?;
    arguments.add(row.team_id)?;
    arguments.add(row.end_user)?;
    arguments.add(row.model)?;
    arguments.add(row.provider)?;
    arguments.add(row.upstream_model)?;
    arguments.add(row.prompt_tokens)?;
    arguments.add(row.completion_tokens)?;
    arguments.add(row.total_tokens)?;
    arguments.add(row.cached_prompt_tokens)?;
    arguments.add(row.reasoning_tokens)?;
    arguments.add(row.cache_write_tokens)?;
    arguments.add(row.cost_nanos)?;
    arguments.add(row.currency)?;
    arguments.add(row.cache_hit)?;
    arguments.add(row.stream)?;
    arguments.add(row.error_class)?;
    arguments.add(saturating_i64(row.latency_ms))?;
    arguments.add(saturating_i64(row.ttft_ms))?;
    arguments.add(row.created_at)?;
    arguments.add(saturating_i64(row.created_at_ms))?;
    arguments.add(row.route_id)?;
    arguments.add(row.deployment_id)?;
    arguments.add(saturating_i64(row.snapshot_version))?;
    arguments.add(row.tags.as_str())?;
    arguments.add(row.attempts.as_str())?;
    arguments.add(row.user_id)?;
    arguments.add(row.operation)?;
    Ok(())
}

impl UsageSink for SqliteSink {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn insert<'a>(&'a self, rows: &'a [UsageRow<'a>]) -> SinkFuture<'a> {
        Box::pin(self.insert_rows(rows))
    }
}

/// SQLite integers are signed 64-bit; durations beyond that are clamped.
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_gets_one_placeholder_and_one_value() {
        assert_eq!(COLUMNS.split(',').count(), COLUMNS_PER_ROW);
        assert_eq!(insert_sql(3).matches('?').count(), 3 * COLUMNS_PER_ROW);
        let event = switchyard_proto::v1::UsageEvent {
            event_id: "0192f3a4-5b6c-7d8e-9f00-112233445566".to_owned(),
            request_id: "req-1".to_owned(),
            created_at_unix_ms: 1_700_000_000_000,
            ..Default::default()
        };
        let row = UsageRow::from_event(0, &event).expect("valid event");
        let mut arguments = SqliteArguments::default();
        bind_row(&mut arguments, &row).expect("binds");
        assert_eq!(arguments.len(), COLUMNS_PER_ROW);
    }
}
