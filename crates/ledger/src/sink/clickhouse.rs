//! [`ClickHouseSink`]: usage rows in ClickHouse over its HTTP interface.
//!
//! SQL stays within what ClickHouse 18.16 (Debian 12) accepts; see
//! `schema/clickhouse/usage_events.sql`.

use std::time::Duration;

use reqwest::{Client, header::HeaderValue};
use switchyard_common::{Secret, config::Environment};
use url::Url;

use super::{SinkFuture, UsageSink};
use crate::{
    config::ClickHouseConfig,
    error::{Error, Result},
    event::UsageRow,
};

/// `CREATE TABLE` of `usage_events`, with `{database}` to substitute.
const USAGE_EVENTS_DDL: &str = include_str!("../../schema/clickhouse/usage_events.sql");

/// Columns added after the first release, with their types: created on tables
/// made by an older release (ClickHouse 18.16 has no `ADD COLUMN IF NOT
/// EXISTS`, so the table's columns are read first).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("cache_write_tokens", "UInt32"),
    ("cost_nanos", "Int64"),
    ("route_id", "String"),
    ("deployment_id", "String"),
    ("snapshot_version", "UInt64"),
    ("tags", "String"),
    ("attempts", "String"),
    ("user_id", "String"),
    ("operation", "String"),
    ("decision", "String"),
];

/// Longest one ClickHouse request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest connecting to ClickHouse may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most characters of a ClickHouse error text kept in an [`Error`].
const MAX_ERROR_TEXT: usize = 500;

/// Stores usage rows in `<database>.usage_events`, a `ReplacingMergeTree`
/// that collapses re-sent events.
#[derive(Debug, Clone)]
pub struct ClickHouseSink {
    client: Client,
    url: Url,
    database: String,
    user: Option<HeaderValue>,
    key: Option<HeaderValue>,
}

impl ClickHouseSink {
    /// Connects with `config` (password resolved from `environment`) and creates
    /// the database and the `usage_events` table if missing.
    pub async fn connect(config: &ClickHouseConfig, environment: &Environment) -> Result<Self> {
        let url = Url::parse(&config.url)
            .map_err(|_| Error::Config("`clickhouse.url` is not a valid URL".to_owned()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config(
                "`clickhouse.url` must not hold credentials: use `user` and `password`".to_owned(),
            ));
        }
        if !is_identifier(&config.database) {
            return Err(Error::Config(
                "`clickhouse.database` must be letters, digits and `_`, not starting with a digit"
                    .to_owned(),
            ));
        }
        let password = config
            .password
            .as_ref()
            .map(|source| source.resolve(environment))
            .transpose()?;
        let user = match (&config.user, &password) {
            (Some(user), _) => Some(user.as_str()),
            (None, Some(_)) => Some("default"),
            (None, None) => None,
        };
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()?;
        let sink = Self {
            client,
            url,
            database: config.database.clone(),
            user: user.map(header_value).transpose()?,
            key: password.as_ref().map(secret_header_value).transpose()?,
        };
        sink.execute(&format!(
            "CREATE DATABASE IF NOT EXISTS `{}`",
            sink.database
        ))
        .await?;
        sink.execute(&USAGE_EVENTS_DDL.replace("{database}", &sink.database))
            .await?;
        sink.add_missing_columns().await?;
        Ok(sink)
    }

    /// Adds the [`ADDED_COLUMNS`] a table made by an older release lacks.
    async fn add_missing_columns(&self) -> Result<()> {
        let existing = self
            .query_text(&format!(
                "SELECT name FROM system.columns WHERE database = '{}' AND table = 'usage_events'",
                self.database
            ))
            .await?;
        let existing: Vec<&str> = existing.lines().collect();
        for (column, kind) in ADDED_COLUMNS {
            if !existing.contains(column) {
                self.execute(&format!(
                    "ALTER TABLE `{}`.usage_events ADD COLUMN {column} {kind}",
                    self.database
                ))
                .await?;
                tracing::info!(column, "added a column to usage_events");
            }
        }
        Ok(())
    }

    /// Returns the database holding `usage_events`.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement that returns nothing.
    async fn execute(&self, sql: &str) -> Result<()> {
        self.post(self.url.clone(), sql.to_owned()).await.map(drop)
    }

    /// Runs one query and returns its text output.
    async fn query_text(&self, sql: &str) -> Result<String> {
        self.post(self.url.clone(), sql.to_owned()).await
    }

    /// Inserts `rows` with one `INSERT ... FORMAT JSONEachRow` request.
    async fn insert_rows(&self, rows: &[UsageRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(rows.len() * 512);
        for row in rows {
            serde_json::to_writer(&mut body, row)
                .map_err(|error| Error::Config(format!("cannot encode a usage row: {error}")))?;
            body.push(b'\n');
        }
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair(
            "query",
            &format!(
                "INSERT INTO `{}`.usage_events FORMAT JSONEachRow",
                self.database
            ),
        );
        self.post(url, body).await.map(drop)
    }

    /// POSTs `body` to `url` with the credentials headers and returns the
    /// answer's text; maps a non-2xx answer to [`Error::ClickHouse`].
    async fn post(&self, url: Url, body: impl Into<reqwest::Body>) -> Result<String> {
        let mut request = self.client.post(url).body(body);
        if let Some(user) = &self.user {
            request = request.header("X-ClickHouse-User", user.clone());
        }
        if let Some(key) = &self.key {
            request = request.header("X-ClickHouse-Key", key.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.text().await?);
        }
        let text = response.text().await.unwrap_or_default();
        Err(Error::ClickHouse {
            status: status.as_u16(),
            message: text.trim().chars().take(MAX_ERROR_TEXT).collect(),
        })
    }
}

impl UsageSink for ClickHouseSink {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    fn insert<'a>(&'a self, rows: &'a [UsageRow<'a>]) -> SinkFuture<'a> {
        Box::pin(self.insert_rows(rows))
    }
}

/// Whether `name` is a plain SQL identifier (safe to splice into a statement).
fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(first) if first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value)
        .map_err(|_| Error::Config("`clickhouse.user` is not a valid header value".to_owned()))
}

fn secret_header_value(secret: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
        Error::Config("the ClickHouse password is not a valid header value".to_owned())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain() {
        assert!(is_identifier("switchyard"));
        assert!(is_identifier("_test_01"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a`; DROP"));
        assert!(!is_identifier("a-b"));
    }

    #[test]
    fn ddl_names_every_column_of_a_row() {
        let row = serde_json::to_value(UsageRow {
            event_id: "".into(),
            request_id: "",
            key_id: "",
            team_id: "",
            end_user: "",
            model: "",
            provider: "",
            upstream_model: "",
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            cached_prompt_tokens: 0,
            reasoning_tokens: 0,
            cache_write_tokens: 0,
            cost_nanos: 0,
            currency: "",
            cache_hit: 0,
            stream: 0,
            error_class: "",
            latency_ms: 0,
            ttft_ms: 0,
            created_at: 0,
            created_at_ms: 0,
            route_id: "",
            deployment_id: "",
            snapshot_version: 0,
            tags: String::new(),
            attempts: String::new(),
            user_id: "",
            operation: "",
            decision: String::new(),
        })
        .expect("a row serializes");
        let columns = row.as_object().expect("a row is an object");
        assert_eq!(columns.len(), 31);
        for column in columns.keys() {
            assert!(
                USAGE_EVENTS_DDL.contains(&format!("    {column} ")),
                "column {column} missing from the ClickHouse schema"
            );
        }
        for (column, kind) in ADDED_COLUMNS {
            assert!(
                USAGE_EVENTS_DDL.contains(&format!("    {column} {kind}")),
                "added column {column} differs from the schema"
            );
        }
    }
}
