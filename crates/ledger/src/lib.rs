//! The usage ledger: append-only usage events, idempotent by event id.
//!
//! The router sends batches of [`UsageEvent`](switchyard_proto::v1::UsageEvent)s
//! through `LedgerService.Record`; the ledger validates each one into a
//! [`UsageRow`] and writes the whole batch to its [`UsageSink`] in one insert.
//! Re-sending an event id is harmless: SQLite ignores the duplicate row and
//! ClickHouse collapses it at merge time (`ReplacingMergeTree`).
//!
//! - [`config`] — [`LedgerConfig`] and [`ClickHouseConfig`].
//! - [`event`] — proto event → validated [`UsageRow`].
//! - [`sink`] — the [`UsageSink`] trait, with [`SqliteSink`] (embedded default)
//!   and [`ClickHouseSink`] (production). Schemas live in `schema/`.
//! - [`grpc`] — [`LedgerGrpc`], the `LedgerService` implementation.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; never on another
//! service crate.

pub mod config;
pub mod error;
pub mod event;
pub mod grpc;
pub mod sink;

use std::sync::Arc;

use switchyard_common::{channel::MAX_GRPC_MESSAGE_BYTES, config::Environment};
use switchyard_proto::v1::ledger_service_server::LedgerServiceServer;

pub use config::{ClickHouseConfig, LedgerConfig};
pub use error::{Error, Result};
pub use event::UsageRow;
pub use grpc::LedgerGrpc;
pub use sink::{ClickHouseSink, SqliteSink, UsageSink};

/// Builds the ledger's gRPC server: see [`build_service`].
pub async fn build(
    config: &LedgerConfig,
    environment: &Environment,
) -> Result<LedgerServiceServer<LedgerGrpc>> {
    Ok(server(build_service(config, environment).await?))
}

/// Builds the ledger service, for direct in-process calls or [`server`]:
/// ClickHouse when `config.clickhouse` is set, else the SQLite file at
/// `config.sqlite_url` (created if missing). Creates the schema if needed;
/// secrets are resolved from `environment`.
pub async fn build_service(
    config: &LedgerConfig,
    environment: &Environment,
) -> Result<Arc<LedgerGrpc>> {
    let sink: Arc<dyn UsageSink> = match &config.clickhouse {
        Some(clickhouse) => Arc::new(ClickHouseSink::connect(clickhouse, environment).await?),
        None => Arc::new(SqliteSink::connect(&config.sqlite_url).await?),
    };
    tracing::info!(sink = sink.name(), "ledger sink ready");
    Ok(Arc::new(LedgerGrpc::new(sink)))
}

/// The gRPC server of `service`.
pub fn server(service: Arc<LedgerGrpc>) -> LedgerServiceServer<LedgerGrpc> {
    LedgerServiceServer::from_arc(service)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
}
