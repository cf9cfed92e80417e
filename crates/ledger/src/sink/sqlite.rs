//! [`SqliteSink`]: usage rows in a SQLite file, the embedded default.

use std::{str::FromStr, time::Duration};

use sqlx::{
    QueryBuilder, Sqlite, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
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
            insert_statement(group)
                .build()
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

/// The `INSERT … ON CONFLICT DO NOTHING` of `rows`; its SQL text depends only
/// on the number of rows.
fn insert_statement<'q>(rows: &'q [UsageRow<'_>]) -> QueryBuilder<'q, Sqlite> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO usage_events (event_id, request_id, key_id, team_id, end_user, \
         model, provider, upstream_model, prompt_tokens, completion_tokens, \
         total_tokens, cached_prompt_tokens, reasoning_tokens, cache_write_tokens, \
         cost_nanos, currency, cache_hit, stream, error_class, latency_ms, ttft_ms, \
         created_at, created_at_ms, route_id, deployment_id, snapshot_version, tags, \
         attempts, user_id, operation) ",
    );
    insert.push_values(rows, |mut values, row| {
        values
            .push_bind(row.event_id.as_ref())
            .push_bind(row.request_id)
            .push_bind(row.key_id)
            .push_bind(row.team_id)
            .push_bind(row.end_user)
            .push_bind(row.model)
            .push_bind(row.provider)
            .push_bind(row.upstream_model)
            .push_bind(row.prompt_tokens)
            .push_bind(row.completion_tokens)
            .push_bind(row.total_tokens)
            .push_bind(row.cached_prompt_tokens)
            .push_bind(row.reasoning_tokens)
            .push_bind(row.cache_write_tokens)
            .push_bind(row.cost_nanos)
            .push_bind(row.currency)
            .push_bind(row.cache_hit)
            .push_bind(row.stream)
            .push_bind(row.error_class)
            .push_bind(saturating_i64(row.latency_ms))
            .push_bind(saturating_i64(row.ttft_ms))
            .push_bind(row.created_at)
            .push_bind(saturating_i64(row.created_at_ms))
            .push_bind(row.route_id)
            .push_bind(row.deployment_id)
            .push_bind(saturating_i64(row.snapshot_version))
            .push_bind(row.tags.as_str())
            .push_bind(row.attempts.as_str())
            .push_bind(row.user_id)
            .push_bind(row.operation);
    });
    insert.push(" ON CONFLICT (event_id) DO NOTHING");
    insert
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
