//! The `router` section of the config file.

use std::{net::SocketAddr, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::breaker::BreakerConfig;

/// Router settings.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// gRPC listen address when the router runs as its own process.
    pub listen: SocketAddr,
    /// Whether to emit usage events to the ledger. Off only for benchmarks
    /// that measure the data path without accounting.
    pub usage_events: bool,
    /// Usage events waiting to be sent to the ledger; beyond this, new events
    /// are dropped and counted (the data path never waits on the ledger).
    pub usage_queue_capacity: usize,
    /// Most usage events sent in one `Record` call.
    pub usage_batch_size: usize,
    /// Longest a usage event waits before its batch is sent.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub usage_flush_interval: Duration,
    /// How long a cache lookup may take before the request goes upstream.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub cache_lookup_timeout: Duration,
    /// Largest answer kept to be stored in the cache, in bytes (as encoded
    /// chunks); a longer answer is passed on whole but not cached, so the
    /// router never holds more than this per request for the cache.
    pub max_cached_answer_bytes: usize,
    /// Each deployment's circuit breaker.
    pub breaker: BreakerConfig,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7001)),
            usage_events: true,
            usage_queue_capacity: 65_536,
            usage_batch_size: 512,
            usage_flush_interval: Duration::from_millis(200),
            cache_lookup_timeout: Duration::from_millis(50),
            max_cached_answer_bytes: 4 * 1024 * 1024,
            breaker: BreakerConfig::default(),
        }
    }
}
