//! Log events as JSON lines, written straight into the line buffer.
//!
//! One object per event: `timestamp` (RFC 3339, UTC, microseconds),
//! `level`, `message` and the event's other fields flattened, then
//! `target`. tracing-subscriber's own JSON format builds a map of every
//! field first; at one line per request that cost about 30,000
//! instructions a request, this about a third as much (`BENCHMARKS.md`).

use std::{
    fmt::{self, Write as _},
    time::SystemTime,
};

use crate::calendar::UtcTime;
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// The JSON line format (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_line(&mut writer, SystemTime::now(), event)
    }
}

/// Writes one event as a JSON line stamped `now`.
fn write_line(out: &mut impl fmt::Write, now: SystemTime, event: &Event<'_>) -> fmt::Result {
    let metadata = event.metadata();
    out.write_str("{\"timestamp\":\"")?;
    write_timestamp(out, now)?;
    write!(out, "\",\"level\":\"{}\"", metadata.level())?;
    let mut fields = Fields {
        out,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    out.write_str(",\"target\":")?;
    write_string(out, metadata.target())?;
    out.write_str("}\n")
}

/// Writes each field as `,"name":value`.
struct Fields<'a, W> {
    out: &'a mut W,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = self
            .out
            .write_char(',')
            .and_then(|()| write_string(self.out, field.name()))
            .and_then(|()| self.out.write_char(':'))
            .and_then(|()| value(self.out));
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| write_string(out, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.field(field, |out| write!(out, "{value}"));
        } else {
            self.field(field, |out| out.write_str("null"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, as Display wrapped in Debug.
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// Writes `text` as a JSON string.
fn write_string(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_str(text)?;
    out.write_char('"')
}

/// Escapes what it is given for the inside of a JSON string.
struct Escaped<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain_from = 0;
        for (index, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain_from..index])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain_from = index + 1;
        }
        self.0.write_str(&text[plain_from..])
    }
}

/// Writes `time` as RFC 3339 in UTC with microseconds:
/// `2026-12-02T15:00:53.197661Z`.
fn write_timestamp(out: &mut impl fmt::Write, time: SystemTime) -> fmt::Result {
    let UtcTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    } = UtcTime::of(time);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z"
    )
}

/// The lines `run` logs, as this format writes them: for tests that check
/// what a piece of code logs (compiled for this crate's tests and, with the
/// `test-util` feature, for other crates' tests).
#[cfg(any(test, feature = "test-util"))]
pub fn capture_lines(run: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};

    /// A writer the caller reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut captured) = self.0.lock() {
                captured.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .event_format(JsonLines)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    let bytes = captured
        .0
        .lock()
        .map(|bytes| bytes.clone())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn timestamps_are_rfc_3339_in_utc_with_microseconds() {
        let mut text = String::new();
        let time = UNIX_EPOCH + Duration::from_micros(1_796_223_656_212_470);
        write_timestamp(&mut text, time).expect("written");
        assert_eq!(text, "2026-12-02T15:00:56.212470Z");
    }

    #[test]
    fn strings_are_escaped_for_json() {
        let mut text = String::new();
        write_string(&mut text, "a \"quote\", a \\, a\nline, a \u{1} and ü").expect("written");
        let parsed: String = serde_json::from_str(&text).expect("a JSON string");
        assert_eq!(parsed, "a \"quote\", a \\, a\nline, a \u{1} and ü");
    }

    #[test]
    fn an_event_is_one_object_with_its_fields_flattened() {
        let text = capture_lines(|| {
            tracing::info!(
                request_id = %"req-1",
                latency_ms = 12_u64,
                delta = -3_i64,
                cached = false,
                ratio = 0.5,
                note = "say \"hi\"",
                "request"
            );
        });
        assert!(text.ends_with("}\n"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert_eq!(line["level"].as_str(), Some("INFO"));
        assert_eq!(line["message"].as_str(), Some("request"));
        assert_eq!(line["request_id"].as_str(), Some("req-1"));
        assert_eq!(line["latency_ms"].as_u64(), Some(12));
        assert_eq!(line["delta"].as_i64(), Some(-3));
        assert_eq!(line["cached"].as_bool(), Some(false));
        assert_eq!(line["note"].as_str(), Some("say \"hi\""));
        assert!(
            line["target"]
                .as_str()
                .is_some_and(|target| target.contains("json_lines"))
        );
        assert!(
            line["timestamp"]
                .as_str()
                .is_some_and(|time| time.ends_with('Z'))
        );
    }
}
