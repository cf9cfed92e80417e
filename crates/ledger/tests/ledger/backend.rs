//! A ledger under test plus direct read access to the database behind it.

use serde_json::Value;
use sqlx::SqlitePool;
use switchyard_common::GrpcChannel;
use switchyard_proto::v1::{
    Money, RecordRequest, Usage, UsageEvent, ledger_service_client::LedgerServiceClient,
};

/// Where the ledger under test writes, read back without the ledger.
pub enum Store {
    /// A SQLite file.
    Sqlite(SqlitePool),
    /// A ClickHouse database.
    ClickHouse {
        /// HTTP interface URL.
        url: String,
        /// Database holding `usage_events`.
        database: String,
    },
}

/// A running ledger and its store.
pub struct Backend {
    /// Client over the in-process server.
    pub client: LedgerServiceClient<GrpcChannel>,
    /// The store behind it.
    pub store: Store,
}

impl Backend {
    /// Records `events` and returns the accepted count or the status.
    pub async fn record(&self, events: Vec<UsageEvent>) -> Result<u32, tonic::Status> {
        let mut client = self.client.clone();
        client
            .record(RecordRequest { events })
            .await
            .map(|response| response.into_inner().accepted)
    }

    /// Returns every stored row (duplicates collapsed) as JSON objects ordered
    /// by `created_at_ms`, with every number as a JSON number.
    pub async fn rows(&self) -> Vec<Value> {
        let rows: Vec<Value> = match &self.store {
            Store::Sqlite(pool) => {
                let texts: Vec<(String,)> = sqlx::query_as(
                    "SELECT json_object('event_id', event_id, 'request_id', request_id, \
                     'key_id', key_id, 'team_id', team_id, 'end_user', end_user, 'model', model, \
                     'provider', provider, 'upstream_model', upstream_model, \
                     'prompt_tokens', prompt_tokens, 'completion_tokens', completion_tokens, \
                     'total_tokens', total_tokens, 'cached_prompt_tokens', cached_prompt_tokens, \
                     'reasoning_tokens', reasoning_tokens, 'cache_write_tokens', cache_write_tokens, \
                     'cost_nanos', cost_nanos, \
                     'currency', currency, 'cache_hit', cache_hit, 'stream', stream, \
                     'error_class', error_class, 'latency_ms', latency_ms, 'ttft_ms', ttft_ms, \
                     'created_at', created_at, 'created_at_ms', created_at_ms, \
                     'route_id', route_id, 'deployment_id', deployment_id, \
                     'snapshot_version', snapshot_version, 'tags', tags, 'attempts', attempts, \
                     'user_id', user_id, 'operation', operation, 'decision', decision) \
                     FROM usage_events ORDER BY created_at_ms",
                )
                .fetch_all(pool)
                .await
                .expect("SQLite rows are readable");
                texts
                    .into_iter()
                    .map(|(text,)| serde_json::from_str(&text).expect("json_object is JSON"))
                    .collect()
            }
            Store::ClickHouse { url, database } => {
                let text = clickhouse_query(
                    url,
                    &format!(
                        "SELECT event_id, request_id, key_id, team_id, end_user, model, \
                         provider, upstream_model, prompt_tokens, completion_tokens, total_tokens, \
                         cached_prompt_tokens, reasoning_tokens, cache_write_tokens, cost_nanos, \
                         currency, cache_hit, stream, error_class, latency_ms, ttft_ms, \
                         toUInt32(created_at) AS created_at_unix, created_at_ms, route_id, \
                         deployment_id, snapshot_version, tags, attempts, user_id, operation, \
                         decision \
                         FROM `{database}`.usage_events FINAL ORDER BY created_at_ms \
                         FORMAT JSONEachRow"
                    ),
                )
                .await;
                text.lines()
                    .map(|line| {
                        let mut row: Value =
                            serde_json::from_str(line).expect("JSONEachRow line is JSON");
                        let object = row.as_object_mut().expect("a row is an object");
                        let created_at = object
                            .remove("created_at_unix")
                            .expect("created_at_unix is selected");
                        object.insert("created_at".to_owned(), created_at);
                        row
                    })
                    .collect()
            }
        };
        rows.into_iter().map(unquote_numbers).collect()
    }

    /// Returns how many distinct event ids are stored.
    pub async fn distinct_events(&self) -> u64 {
        match &self.store {
            Store::Sqlite(pool) => {
                let (count,): (i64,) =
                    sqlx::query_as("SELECT count(DISTINCT event_id) FROM usage_events")
                        .fetch_one(pool)
                        .await
                        .expect("SQLite count is readable");
                u64::try_from(count).expect("a count is positive")
            }
            Store::ClickHouse { url, database } => clickhouse_query(
                url,
                &format!("SELECT count(DISTINCT event_id) FROM `{database}`.usage_events"),
            )
            .await
            .trim()
            .parse()
            .expect("a count is a number"),
        }
    }
}

/// Runs `sql` on ClickHouse over HTTP and returns the body; panics on error.
pub async fn clickhouse_query(url: &str, sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(url)
        .body(sql.to_owned())
        .send()
        .await
        .expect("ClickHouse answers");
    let status = response.status();
    let body = response.text().await.expect("ClickHouse body is text");
    assert!(status.is_success(), "ClickHouse `{sql}` failed: {body}");
    body
}

/// ClickHouse quotes 64-bit integers in JSON; turns numeric strings of the
/// numeric columns back into numbers so both stores compare alike.
fn unquote_numbers(mut row: Value) -> Value {
    if let Some(object) = row.as_object_mut() {
        for (column, value) in object.iter_mut() {
            let numeric = !matches!(
                column.as_str(),
                "event_id"
                    | "request_id"
                    | "key_id"
                    | "team_id"
                    | "end_user"
                    | "model"
                    | "provider"
                    | "upstream_model"
                    | "currency"
                    | "error_class"
                    | "route_id"
                    | "deployment_id"
                    | "tags"
                    | "attempts"
                    | "user_id"
                    | "operation"
                    | "decision"
            );
            if let (true, Some(text)) = (numeric, value.as_str()) {
                let number: i64 = text.parse().expect("numeric column holds a number");
                *value = Value::from(number);
            }
        }
    }
    row
}

/// A valid usage event, distinct per `n`.
pub fn usage_event(n: u32) -> UsageEvent {
    UsageEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        request_id: format!("req-{n}"),
        key_id: "key-1".to_owned(),
        team_id: "team-1".to_owned(),
        // Quotes, a backslash, a newline and non-ASCII text survive either store.
        end_user: format!("user-{n} \"o'brien\" \\ zoë\n"),
        model: "fast".to_owned(),
        provider: "openai".to_owned(),
        upstream_model: "gpt-4o-mini".to_owned(),
        usage: Some(Usage {
            prompt_tokens: 100 + n,
            completion_tokens: 20 + n,
            total_tokens: 120 + 2 * n,
            cached_prompt_tokens: n,
            reasoning_tokens: 3,
            cache_write_tokens: 2,
        }),
        cost: Some(Money {
            nanos: 1_500_000 + i64::from(n),
            currency: "USD".to_owned(),
        }),
        cache_hit: n.is_multiple_of(2),
        stream: !n.is_multiple_of(2),
        error_class: if n == 2 {
            switchyard_proto::v1::ErrorClass::UpstreamUnavailable as i32
        } else {
            0
        },
        latency_ms: 250 + u64::from(n),
        ttft_ms: 40 + u64::from(n),
        created_at_unix_ms: 1_763_700_000_123 + u64::from(n) * 1_000,
        route_id: "fast".to_owned(),
        deployment_id: "openai-mini".to_owned(),
        snapshot_version: 7,
        tags: [("feature".to_owned(), format!("f{n}"))].into(),
        attempts: vec![switchyard_proto::v1::Attempt {
            deployment_id: "openai-mini".to_owned(),
            provider: "openai".to_owned(),
            latency_ms: 250,
            ..switchyard_proto::v1::Attempt::default()
        }],
        user_id: "alice".to_owned(),
        operation: "chat".to_owned(),
        decision: Some(switchyard_proto::v1::Decision {
            strategies: vec!["latency".to_owned()],
            order: vec!["openai-mini".to_owned()],
            skipped: vec![switchyard_proto::v1::SkippedDeployment {
                deployment_id: "anthropic-haiku".to_owned(),
                step: "health".to_owned(),
                reason: "breaker_open".to_owned(),
            }],
            rule: String::new(),
            policy: "tier:free->cheap".to_owned(),
            demoted: vec!["openai-mini:first_token_p95=612ms".to_owned()],
        }),
    }
}

/// The row an event produced by [`usage_event`] must become.
pub fn expected_row(event: &UsageEvent) -> Value {
    let usage = event.usage.expect("test events have usage");
    let cost = event.cost.clone().expect("test events have a cost");
    serde_json::json!({
        "event_id": event.event_id,
        "request_id": event.request_id,
        "key_id": event.key_id,
        "team_id": event.team_id,
        "end_user": event.end_user,
        "model": event.model,
        "provider": event.provider,
        "upstream_model": event.upstream_model,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_prompt_tokens": usage.cached_prompt_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cost_nanos": cost.nanos,
        "currency": cost.currency,
        "cache_hit": u8::from(event.cache_hit),
        "stream": u8::from(event.stream),
        "error_class": if event.error_class == 0 { "" } else { "upstream_unavailable" },
        "latency_ms": event.latency_ms,
        "ttft_ms": event.ttft_ms,
        "created_at": event.created_at_unix_ms / 1000,
        "created_at_ms": event.created_at_unix_ms,
        "route_id": event.route_id,
        "deployment_id": event.deployment_id,
        "snapshot_version": event.snapshot_version,
        "tags": format!(r#"{{"feature":"{}"}}"#, event.tags["feature"]),
        "attempts": r#"[{"deployment_id":"openai-mini","provider":"openai","outcome":"","latency_ms":250,"ttft_ms":0,"prompt_tokens":0,"completion_tokens":0,"cost_nanos":0}]"#,
        "user_id": event.user_id,
        "operation": event.operation,
        "decision": r#"{"strategies":["latency"],"order":["openai-mini"],"skipped":[{"deployment_id":"anthropic-haiku","step":"health","reason":"breaker_open"}],"policy":"tier:free->cheap","demoted":["openai-mini:first_token_p95=612ms"]}"#,
    })
}
