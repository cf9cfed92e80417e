//! [`AdapterConfig`]: the adapters' section of the config file.

use std::{net::SocketAddr, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;

/// Configuration of the adapters service.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdapterConfig {
    /// Address the gRPC server listens on when run as its own process.
    pub listen: SocketAddr,
    /// Longest time to establish a TCP (and TLS) connection to a provider.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
    /// Time a provider has to start answering (response headers and first
    /// byte), and the longest wait for each later event of a stream,
    /// for targets whose `timeout_ms` is 0.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// How long a resolved provider secret is used before its environment
    /// variable or file is read again, so a rotated key takes effect
    /// without a restart.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub secret_refresh: Duration,
    /// Largest line or event of a provider's stream, in bytes; a larger one
    /// ends the attempt as `upstream_unavailable` instead of being buffered.
    pub max_event_bytes: usize,
    /// Largest buffered (non-streamed) answer one attempt may hold, in bytes.
    pub max_answer_bytes: usize,
    /// Most bytes of buffered answers all attempts may hold at once; an
    /// answer that would exceed it ends its attempt as `overloaded`.
    pub max_buffered_answer_bytes: usize,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7002)),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            secret_refresh: Duration::from_secs(5),
            max_event_bytes: crate::sse::DEFAULT_MAX_EVENT_BYTES,
            max_answer_bytes: switchyard_common::channel::MAX_GRPC_MESSAGE_BYTES,
            max_buffered_answer_bytes: 1024 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_durations_and_fills_defaults() {
        let config: AdapterConfig =
            serde_json::from_str(r#"{"connect_timeout": "2s"}"#).expect("valid config");
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.request_timeout, Duration::from_secs(600));
        assert_eq!(config.listen.port(), 7002);
    }
}
