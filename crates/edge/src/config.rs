//! The `edge` section of the config file.

use std::{net::SocketAddr, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;

/// Edge settings.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Longest a request may take end to end: the deadline the edge sets in
    /// every request's context and every hop honours.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection is kept open waiting for its next request.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body; a body that
    /// stalls longer is answered 408.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub body_read_timeout: Duration,
    /// Slowest average rate a request body may arrive at, in bytes per
    /// second, once `body_read_timeout` has passed since it started; a
    /// slower body is answered 408.
    pub min_body_bytes_per_second: u64,
    /// Most client connections open at once; a connection over the limit is
    /// answered 503 and closed. Keep it below the process's file-descriptor
    /// limit.
    pub max_connections: usize,
    /// Most bytes of request bodies held at once, across all requests; a
    /// body that would exceed it is answered 503 with `retry-after`.
    pub max_buffered_body_bytes: usize,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(600),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            min_body_bytes_per_second: 1024,
            max_connections: 10_000,
            max_buffered_body_bytes: 1024 * 1024 * 1024,
        }
    }
}
