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
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 10 * 1024 * 1024,
            request_timeout: Duration::from_secs(600),
        }
    }
}
