//! Real backing services for the tests: where they are, and whether they run.
//!
//! A missing service fails the test with a message naming the command that
//! starts it: a test never passes without having run.

use std::time::Duration;

/// Returns the URL from `variable`, or `default`.
pub fn url(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// PostgreSQL server URL (maintenance database `postgres`).
pub fn postgres_url() -> String {
    url(
        "SWITCHYARD_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

/// Redis URL.
pub fn redis_url() -> String {
    url("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// ClickHouse HTTP URL.
pub fn clickhouse_url() -> String {
    url("SWITCHYARD_TEST_CLICKHOUSE_URL", "http://127.0.0.1:8123")
}

/// Checks that the production backends answer; panics, naming the command
/// that starts them, when one does not.
pub async fn production_backends_available() -> bool {
    let checks = [
        ("PostgreSQL", postgres_answers().await),
        ("Redis", redis_answers().await),
        ("ClickHouse", clickhouse_answers().await),
    ];
    for (name, answered) in checks {
        assert!(
            answered,
            "{name} is not reachable; start it with `bash .ci/services.sh`"
        );
    }
    true
}

async fn postgres_answers() -> bool {
    let url = postgres_url();
    let connect = sqlx::PgPool::connect(&url);
    matches!(
        tokio::time::timeout(Duration::from_secs(5), connect).await,
        Ok(Ok(_))
    )
}

async fn redis_answers() -> bool {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return false;
    };
    let ping = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), ping).await,
        Ok(Ok(_))
    )
}

async fn clickhouse_answers() -> bool {
    let ping = reqwest::get(format!("{}/ping", clickhouse_url()));
    matches!(
        tokio::time::timeout(Duration::from_secs(5), ping).await,
        Ok(Ok(response)) if response.status().is_success()
    )
}

/// Runs one ClickHouse statement and returns its text output.
pub async fn clickhouse_query(sql: &str) -> String {
    let response = reqwest::Client::new()
        .post(clickhouse_url())
        .body(sql.to_owned())
        .send()
        .await
        .expect("ClickHouse answers");
    let status = response.status();
    let text = response.text().await.expect("ClickHouse body");
    assert!(status.is_success(), "ClickHouse error for `{sql}`: {text}");
    text
}
