//! The scenarios against a SQLite file per test.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use switchyard_common::{GrpcChannel, config::Environment};
use switchyard_ledger::LedgerConfig;
use switchyard_proto::v1::ledger_service_client::LedgerServiceClient;
use tempfile::TempDir;

use super::{
    backend::{Backend, Store},
    scenarios,
};

/// Builds a ledger over a fresh SQLite file in a temporary directory.
async fn backend() -> (Backend, TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", directory.path().join("ledger.db").display());
    let config = LedgerConfig {
        sqlite_url: url.clone(),
        ..LedgerConfig::default()
    };
    let server = switchyard_ledger::build(&config, &Environment::new())
        .await
        .expect("the ledger builds over SQLite");
    let pool = SqlitePoolOptions::new()
        .connect_with(SqliteConnectOptions::from_str(&url).expect("a SQLite URL"))
        .await
        .expect("the ledger created the database file");
    let backend = Backend {
        client: LedgerServiceClient::new(GrpcChannel::in_process(server)),
        store: Store::Sqlite(pool),
    };
    (backend, directory)
}

#[tokio::test]
async fn sqlite_records_events() {
    let (backend, _directory) = backend().await;
    scenarios::records_events(&backend).await;
}

#[tokio::test]
async fn sqlite_records_large_batches_whole() {
    let (backend, _directory) = backend().await;
    scenarios::records_large_batches_whole(&backend).await;
}

#[tokio::test]
async fn sqlite_is_idempotent_by_event_id() {
    let (backend, _directory) = backend().await;
    scenarios::is_idempotent_by_event_id(&backend).await;
}

#[tokio::test]
async fn sqlite_rejects_invalid_batches_whole() {
    let (backend, _directory) = backend().await;
    scenarios::rejects_invalid_batches_whole(&backend).await;
}

#[tokio::test]
async fn sqlite_schema_survives_a_restart() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let config = LedgerConfig {
        sqlite_url: format!("sqlite://{}", directory.path().join("ledger.db").display()),
        ..LedgerConfig::default()
    };
    for _ in 0..2 {
        switchyard_ledger::build(&config, &Environment::new())
            .await
            .expect("the ledger builds over an existing file");
    }
}
