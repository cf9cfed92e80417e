//! Where usage rows are written: the [`UsageSink`] trait and its stores.

mod clickhouse;
mod sqlite;

use std::{future::Future, pin::Pin};

pub use clickhouse::ClickHouseSink;
pub use sqlite::SqliteSink;

use crate::{error::Result, event::UsageRow};

/// The future a [`UsageSink`] returns; boxed so sinks can sit behind `dyn`.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// An append-only store of usage rows, idempotent by `event_id`.
pub trait UsageSink: Send + Sync + 'static {
    /// Returns a short name for logs (`sqlite`, `clickhouse`).
    fn name(&self) -> &'static str;

    /// Writes `rows` in one insert. A row whose `event_id` is already stored
    /// is not stored twice (ClickHouse collapses it at merge time).
    fn insert<'a>(&'a self, rows: &'a [UsageRow<'a>]) -> SinkFuture<'a>;
}
