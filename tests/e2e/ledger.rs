//! Reading usage rows back from the ledger's real database.

use std::time::Duration;

use crate::{
    backends::clickhouse_query,
    cluster::{LedgerLocation, TestCluster},
};

/// One usage row, as stored.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, sqlx::FromRow)]
pub struct UsageRow {
    pub request_id: String,
    pub key_id: String,
    pub team_id: String,
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cost_nanos: i64,
    pub currency: String,
    pub cache_hit: i64,
    pub stream: i64,
    pub error_class: String,
    pub route_id: String,
    pub deployment_id: String,
    /// JSON array, one object per attempt.
    pub attempts: String,
    pub snapshot_version: i64,
    /// JSON: each tier's strategy, the planned order, what was left out.
    pub decision: String,
}

const COLUMNS: &str = "request_id, key_id, team_id, model, provider, upstream_model, \
    prompt_tokens, completion_tokens, total_tokens, cost_nanos, currency, cache_hit, \
    stream, error_class, route_id, deployment_id, attempts, snapshot_version, decision";

/// Returns every usage row of the cluster's team, oldest first.
pub async fn usage_rows(cluster: &TestCluster) -> Vec<UsageRow> {
    match &cluster.ledger {
        LedgerLocation::Sqlite(url) => {
            let pool = sqlx::SqlitePool::connect(url).await.expect("open ledger");
            let rows = sqlx::query_as::<_, UsageRow>(&format!(
                "SELECT {COLUMNS} FROM usage_events WHERE team_id = ? ORDER BY created_at_ms, event_id"
            ))
            .bind(&cluster.team)
            .fetch_all(&pool)
            .await
            .expect("query ledger");
            pool.close().await;
            rows
        }
        LedgerLocation::ClickHouse(database) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM `{database}`.usage_events FINAL \
                 WHERE team_id = '{}' ORDER BY created_at_ms, event_id FORMAT JSONEachRow",
                cluster.team
            );
            clickhouse_query(&sql)
                .await
                .lines()
                .filter(|line| !line.is_empty())
                .map(|line| {
                    let mut value: serde_json::Value =
                        serde_json::from_str(line).expect("JSONEachRow line");
                    // ClickHouse renders 64-bit integers as strings by default.
                    if let Some(object) = value.as_object_mut() {
                        for field in object.values_mut() {
                            if let Some(number) =
                                field.as_str().and_then(|text| text.parse::<i64>().ok())
                            {
                                *field = serde_json::Value::from(number);
                            }
                        }
                    }
                    serde_json::from_value(value).expect("usage row")
                })
                .collect()
        }
    }
}

/// Waits until the team has at least `count` usage rows, and returns them.
pub async fn wait_for_usage_rows(cluster: &TestCluster, count: usize) -> Vec<UsageRow> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows = usage_rows(cluster).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {count} usage rows, found {}: {rows:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each attempt of a row's `attempts` JSON as (deployment, outcome).
pub fn outcomes(attempts: &serde_json::Value) -> Vec<(&str, &str)> {
    attempts
        .as_array()
        .expect("attempts are an array")
        .iter()
        .map(|attempt| {
            (
                attempt["deployment_id"].as_str().unwrap_or_default(),
                attempt["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}
