//! The scenarios against a real ClickHouse, one database per test.

use std::future::Future;

use switchyard_common::{GrpcChannel, config::Environment};
use switchyard_ledger::{ClickHouseConfig, LedgerConfig};
use switchyard_proto::v1::ledger_service_client::LedgerServiceClient;

use super::{
    backend::{Backend, Store, clickhouse_query},
    scenarios,
};

/// Returns the ClickHouse URL when the server answers; fails, naming the
/// command that starts it, when it does not.
async fn clickhouse_url() -> Option<String> {
    let url = std::env::var("SWITCHYARD_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".to_owned());
    let ping = reqwest::Client::new()
        .get(format!("{}/ping", url.trim_end_matches('/')))
        .send()
        .await;
    if matches!(&ping, Ok(response) if response.status().is_success()) {
        return Some(url);
    }
    panic!("ClickHouse is not reachable at {url}; start it with `bash .ci/services.sh`");
}

/// Runs `scenario` against a ledger over a fresh database, dropped afterwards.
async fn with_clickhouse<F, Fut>(scenario: F)
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = Backend>,
{
    let Some(url) = clickhouse_url().await else {
        return;
    };
    let database = format!("switchyard_test_{}", uuid::Uuid::now_v7().simple());
    let config = LedgerConfig {
        clickhouse: Some(ClickHouseConfig {
            url: url.clone(),
            database: database.clone(),
            ..ClickHouseConfig::default()
        }),
        ..LedgerConfig::default()
    };
    let server = switchyard_ledger::build(&config, &Environment::new())
        .await
        .expect("the ledger builds over ClickHouse");
    let backend = Backend {
        client: LedgerServiceClient::new(GrpcChannel::in_process(server)),
        store: Store::ClickHouse {
            url: url.clone(),
            database: database.clone(),
        },
    };
    scenario(backend).await;
    clickhouse_query(&url, &format!("DROP DATABASE IF EXISTS `{database}`")).await;
}

#[tokio::test]
async fn clickhouse_records_events() {
    with_clickhouse(|backend| async move {
        scenarios::records_events(&backend).await;
        backend
    })
    .await;
}

#[tokio::test]
async fn clickhouse_records_large_batches_whole() {
    with_clickhouse(|backend| async move {
        scenarios::records_large_batches_whole(&backend).await;
        backend
    })
    .await;
}

#[tokio::test]
async fn clickhouse_is_idempotent_by_event_id() {
    with_clickhouse(|backend| async move {
        scenarios::is_idempotent_by_event_id(&backend).await;
        backend
    })
    .await;
}

#[tokio::test]
async fn clickhouse_rejects_invalid_batches_whole() {
    with_clickhouse(|backend| async move {
        scenarios::rejects_invalid_batches_whole(&backend).await;
        backend
    })
    .await;
}

#[tokio::test]
async fn clickhouse_rejects_a_wrong_password_without_leaking_it() {
    let Some(url) = clickhouse_url().await else {
        return;
    };
    let environment = Environment::from([("CH_PASSWORD".to_owned(), "hunter2-secret".to_owned())]);
    let config = LedgerConfig {
        clickhouse: Some(ClickHouseConfig {
            url,
            database: "switchyard_never_created".to_owned(),
            user: Some("switchyard_no_such_user".to_owned()),
            password: Some(switchyard_common::SecretSource::env("CH_PASSWORD")),
        }),
        ..LedgerConfig::default()
    };
    let error = switchyard_ledger::build(&config, &environment)
        .await
        .expect_err("an unknown user cannot connect");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}
