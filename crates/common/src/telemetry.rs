//! Logging setup shared by every subcommand.

use schemars::JsonSchema;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// The `telemetry` section of the config file.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log filter in `tracing` directive syntax (`info`, `switchyard_router=debug`).
    /// `RUST_LOG` wins when set.
    pub log_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".to_owned(),
        }
    }
}

/// Installs the global log subscriber, writing to stderr. Calling it twice is harmless.
pub fn init_logging(config: &TelemetryConfig) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log_filter.as_str()));
    let _already_installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
