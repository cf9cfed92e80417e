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
//!
//! Spans (see [`crate::trace`]) go to an OTLP collector when
//! `telemetry.otlp_endpoint` is set; the log lines never show them.

mod json_lines;

pub use json_lines::JsonLines;
#[cfg(any(test, feature = "test-util"))]
pub use json_lines::capture_lines;

use std::{io::IsTerminal, time::Duration};

use schemars::JsonSchema;
use serde::Deserialize;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::trace::{self, TraceError, TraceExport, Tracing};

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
    /// OTLP/gRPC endpoint spans are exported to (`http://localhost:4317`
    /// for Jaeger or an OpenTelemetry collector); empty turns tracing off.
    pub otlp_endpoint: String,
    /// Share of traces exported, from 0 to 1 (`0.01` keeps one in a
    /// hundred). A trace the client's `traceparent` marks sampled is kept,
    /// and spans that end in error are exported whatever the ratio.
    pub trace_sample_ratio: f64,
    /// How long finished spans wait to be sent in one batch (`5s`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub trace_batch_delay: Duration,
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
            otlp_endpoint: String::new(),
            trace_sample_ratio: 1.0,
            trace_batch_delay: Duration::from_secs(5),
        }
    }
}

/// Lines waiting for the log thread; beyond this, new lines are dropped.
const QUEUED_LINES: usize = 64 * 1024;

/// Installs the global subscriber: log lines to stderr from a thread of
/// their own, and spans to the OTLP endpoint when one is configured, as
/// `service_name`. With an endpoint, call it inside a Tokio runtime (the
/// exporter's channel lives on it) and drop the guard before the runtime:
/// dropping it sends the spans still queued and flushes the log lines.
/// Installing twice keeps the first subscriber.
pub fn init(config: &TelemetryConfig, service_name: &str) -> Result<TelemetryGuard, TraceError> {
    let tracer = if config.otlp_endpoint.is_empty() {
        None
    } else {
        Some(Tracing::start(&TraceExport {
            endpoint: config.otlp_endpoint.clone(),
            sample_ratio: config.trace_sample_ratio,
            batch_delay: config.trace_batch_delay,
            service_name: service_name.to_owned(),
        })?)
    };
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log_filter.as_str()));
    if let Ok(no_spans) = format!("{}=off", trace::TARGET).parse() {
        filter = filter.add_directive(no_spans);
    }
    let terminal = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("switchyard-log")
        .finish(std::io::stderr());
    let lines = tracing_subscriber::fmt::layer().with_writer(writer);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = if config.log_format.is_json(terminal) {
        lines
            .event_format(json_lines::JsonLines)
            .with_filter(filter)
            .boxed()
    } else {
        lines.with_ansi(terminal).with_filter(filter).boxed()
    };
    let spans = tracer.as_ref().map(|tracing| {
        tracing
            .layer()
            .with_filter(Targets::new().with_target(trace::TARGET, tracing::Level::TRACE))
    });
    let _already_installed = tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init();
    Ok(TelemetryGuard {
        tracer,
        _worker: guard,
    })
}

/// Keeps the log thread and the span exporter running; dropping it sends
/// the queued spans and flushes the queued lines.
#[derive(Debug)]
pub struct TelemetryGuard {
    tracer: Option<Tracing>,
    _worker: tracing_appender::non_blocking::WorkerGuard,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take()
            && let Err(error) = tracer.shutdown()
        {
            tracing::warn!(%error, "spans still queued could not be sent");
        }
    }
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
