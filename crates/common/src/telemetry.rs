//! Logging setup shared by every subcommand.
//!
//! Logs go to stderr: structured JSON (one object per line, for log
//! shippers) when stderr is not a terminal, readable text when it is, or
//! as `telemetry.log_format` says. Levels are set per module with
//! `telemetry.log_filter` (`RUST_LOG` wins). Secrets and prompt text are
//! never logged: callers log ids, classes and numbers only.
//!
//! Lines are written by a thread of their own through a bounded queue: a
//! slow reader of stderr (a full pipe to a log shipper) never blocks a
//! request. When the queue is full, lines are dropped, not waited for.

mod json_lines;

pub use json_lines::JsonLines;
#[cfg(any(test, feature = "test-util"))]
pub use json_lines::capture_lines;

use std::io::IsTerminal;

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
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How many teams get a `team` label value of their own in metrics;
    /// the rest are reported as `other`.
    pub team_label_limit: usize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// Readable text.
    Text,
}

impl LogFormat {
    /// Whether lines are JSON, given whether stderr is a terminal.
    pub fn is_json(self, stderr_is_terminal: bool) -> bool {
        match self {
            LogFormat::Auto => !stderr_is_terminal,
            LogFormat::Json => true,
            LogFormat::Text => false,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".to_owned(),
            log_format: LogFormat::Auto,
            team_label_limit: crate::metrics::DEFAULT_TEAM_LABEL_LIMIT,
        }
    }
}

/// Lines waiting for the log thread; beyond this, new lines are dropped.
const QUEUED_LINES: usize = 64 * 1024;

/// Installs the global log subscriber, writing to stderr from a thread of
/// its own. Keep the returned guard until the process ends: dropping it
/// flushes the lines still queued. Calling it twice is harmless.
#[must_use = "dropping the guard stops the log thread"]
pub fn init_logging(config: &TelemetryConfig) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log_filter.as_str()));
    let terminal = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("switchyard-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _already_installed = if config.log_format.is_json(terminal) {
        builder.event_format(json_lines::JsonLines).try_init()
    } else {
        builder.with_ansi(terminal).try_init()
    };
    LogGuard { _worker: guard }
}

/// Keeps the log thread running; dropping it flushes the queued lines.
#[derive(Debug)]
pub struct LogGuard {
    _worker: tracing_appender::non_blocking::WorkerGuard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_json_unless_on_a_terminal() {
        assert!(LogFormat::Auto.is_json(false));
        assert!(!LogFormat::Auto.is_json(true));
        assert!(LogFormat::Json.is_json(true));
        assert!(!LogFormat::Text.is_json(false));
        let config: TelemetryConfig = crate::config::load_yaml(
            "telemetry.yaml",
            "log_format: json",
            &crate::config::Environment::new(),
        )
        .expect("valid");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.log_filter, "info");
    }
}
