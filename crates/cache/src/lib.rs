//! The response cache: exact match, in memory or in Redis.
//!
//! The router sends the request context and a `CacheQuery` (a tenant
//! namespace, the route and the normalized request) to `Lookup` or `Store` a
//! [`CachedResponse`](switchyard_proto::v1::CachedResponse); this crate
//! derives the keys itself ([`key`]). Cache policy (which routes cache, for
//! how long, what is cacheable) is the router's. There is no in-flight
//! coalescing yet; when it comes it lives in the router, in front of this.
//!
//! - [`key`] — [`exact_key`]: the exact-match key of a query.
//! - [`config`] — [`CacheConfig`].
//! - [`store`] — [`EntryKey`] (validated namespace + key) and the
//!   [`ResponseStore`] trait, with [`MemoryStore`] (bounded, the embedded
//!   default) and [`RedisStore`] (shared by every router).
//! - [`grpc`] — [`CacheGrpc`], the `CacheService` implementation.
//!
//! Depends on `switchyard-proto` and `switchyard-common` only; never on another
//! service crate.

pub mod config;
pub mod error;
pub mod grpc;
pub mod key;
pub mod store;

use std::sync::Arc;

use switchyard_common::channel::MAX_GRPC_MESSAGE_BYTES;
use switchyard_proto::v1::cache_service_server::CacheServiceServer;

pub use config::CacheConfig;
pub use error::{Error, Result};
pub use grpc::CacheGrpc;
pub use key::exact_key;
pub use store::{EntryKey, MemoryStore, RedisStore, ResponseStore};

/// Builds the cache's gRPC server: Redis when `config.redis_url` is set (and
/// reachable), else a bounded in-memory store.
pub async fn build(config: &CacheConfig) -> Result<CacheServiceServer<CacheGrpc>> {
    let store: Arc<dyn ResponseStore> = match &config.redis_url {
        Some(url) => Arc::new(RedisStore::connect(url).await?),
        None => Arc::new(MemoryStore::new(config.max_entries)?),
    };
    tracing::info!(store = store.name(), "response cache store ready");
    Ok(CacheServiceServer::new(CacheGrpc::new(store))
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES))
}
