//! The gateway's own overhead: what a client waited for less the time its
//! request spent at providers (the router reports that time in its last
//! message, summed over attempts). Clocks start once the request body has
//! been read, so a slow upload is not counted as the gateway's.
//!
//! It is reported to clients in `x-switchyard-overhead-ms` (milliseconds,
//! microsecond precision: `0.118`): a header on a whole answer, and a field
//! of that name in a stream's last chunk, where headers have long gone. An
//! error answer gets the header from the outermost middleware, counted from
//! the request's arrival, less any time its attempts spent at providers.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use switchyard_proto::v1::UpstreamTiming;

use crate::metrics::{EdgeMetrics, Operation};

/// The header (and stream field) naming the gateway's overhead.
pub const X_SWITCHYARD_OVERHEAD_MS: HeaderName =
    HeaderName::from_static("x-switchyard-overhead-ms");

/// `wait` less `upstream_micros`, never below zero.
pub fn added(wait: Duration, upstream_micros: u64) -> Duration {
    wait.saturating_sub(Duration::from_micros(upstream_micros))
}

/// Whole microseconds of `duration` as milliseconds with three decimals,
/// written without an allocation of its own.
pub fn header_value(duration: Duration) -> HeaderValue {
    let mut micros = duration.as_micros();
    // Digits from the right: three decimals, the point, then the rest.
    let mut text = [0_u8; 48];
    let mut start = text.len();
    let mut written = 0;
    while written < 5 || micros > 0 {
        start -= 1;
        if written == 3 {
            text[start] = b'.';
        } else {
            // A digit: `micros % 10` is below 10.
            text[start] = b'0' + u8::try_from(micros % 10).unwrap_or(0);
            micros /= 10;
        }
        written += 1;
    }
    HeaderValue::from_bytes(&text[start..]).unwrap_or(HeaderValue::from_static("0.000"))
}

/// Whole microseconds of `duration` as milliseconds, for a JSON number
/// (which prints the shortest decimal that reads back the same: `0.118`).
pub fn milliseconds(duration: Duration) -> f64 {
    let micros = u32::try_from(duration.as_micros()).unwrap_or(u32::MAX);
    f64::from(micros) / 1000.0
}

/// Stamps a whole answer's headers with the gateway's overhead and records
/// it, when the router reported the time at providers.
pub fn stamp_whole_answer(
    headers: &mut HeaderMap,
    operation: Operation,
    received: Instant,
    upstream: Option<UpstreamTiming>,
    metrics: &EdgeMetrics,
) {
    let Some(upstream) = upstream else {
        return;
    };
    let overhead = added(received.elapsed(), upstream.total_micros);
    metrics.whole_answer(operation, overhead);
    headers.insert(X_SWITCHYARD_OVERHEAD_MS, header_value(overhead));
}

/// What a stream's timing looks like from the edge, to compare with the
/// providers' time once it ends.
#[derive(Debug)]
pub struct StreamClock {
    received: Instant,
    first_frame: Option<Instant>,
    last_frame: Option<Instant>,
    frames: u32,
}

/// The gateway's share of a finished stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamOverhead {
    /// Added to the time to the first token.
    pub first_token: Duration,
    /// Added to each gap between chunks, on average.
    pub chunk_gap: Option<Duration>,
    /// Added in all, from the request to the last chunk.
    pub total: Duration,
}

impl StreamClock {
    /// A clock for a request whose body was read at `received`.
    pub fn new(received: Instant) -> Self {
        Self {
            received,
            first_frame: None,
            last_frame: None,
            frames: 0,
        }
    }

    /// Notes a frame handed to the client now.
    pub fn frame_sent(&mut self) {
        let now = Instant::now();
        self.first_frame.get_or_insert(now);
        self.last_frame = Some(now);
        self.frames = self.frames.saturating_add(1);
    }

    /// The gateway's share, given the providers' time; `None` before any
    /// frame was sent.
    pub fn overhead(&self, upstream: &UpstreamTiming) -> Option<StreamOverhead> {
        let first = self.first_frame?.saturating_duration_since(self.received);
        let last = self.last_frame?.saturating_duration_since(self.received);
        let upstream_span = upstream
            .total_micros
            .saturating_sub(upstream.first_chunk_micros);
        let edge_span = last.saturating_sub(first);
        let chunk_gap =
            (self.frames > 1).then(|| added(edge_span, upstream_span) / (self.frames - 1));
        Some(StreamOverhead {
            first_token: added(first, upstream.first_chunk_micros),
            chunk_gap,
            total: added(last, upstream.total_micros),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_written_in_milliseconds_to_the_microsecond() {
        assert_eq!(header_value(Duration::from_micros(118)), "0.118");
        assert_eq!(header_value(Duration::from_micros(12_345_678)), "12345.678");
        assert_eq!(header_value(Duration::ZERO), "0.000");
        assert_eq!(header_value(Duration::from_micros(7)), "0.007");
        assert_eq!(header_value(Duration::from_micros(1_000)), "1.000");
        let longest = header_value(Duration::MAX);
        assert!(
            longest
                .to_str()
                .is_ok_and(|text| text.len() == 27 && text.ends_with(".999"))
        );
        assert!((milliseconds(Duration::from_micros(118)) - 0.118).abs() < 1e-12);
        assert_eq!(
            serde_json::to_string(&milliseconds(Duration::from_micros(118)))
                .ok()
                .as_deref(),
            Some("0.118")
        );
    }

    #[test]
    fn the_providers_time_is_taken_out_never_below_zero() {
        assert_eq!(
            added(Duration::from_micros(1_500), 1_200),
            Duration::from_micros(300)
        );
        assert_eq!(added(Duration::from_micros(100), 1_200), Duration::ZERO);
    }

    #[test]
    fn a_stream_splits_its_overhead_into_first_token_and_gaps() {
        let received = Instant::now();
        let mut clock = StreamClock::new(received);
        assert!(clock.overhead(&UpstreamTiming::default()).is_none());
        clock.first_frame = Some(received + Duration::from_micros(1_100));
        clock.last_frame = Some(received + Duration::from_micros(5_300));
        clock.frames = 5;
        let overhead = clock
            .overhead(&UpstreamTiming {
                first_chunk_micros: 1_000,
                total_micros: 5_000,
            })
            .expect("frames were sent");
        assert_eq!(overhead.first_token, Duration::from_micros(100));
        // 4,200 µs at the edge against 4,000 upstream, over 4 gaps.
        assert_eq!(overhead.chunk_gap, Some(Duration::from_micros(50)));
        assert_eq!(overhead.total, Duration::from_micros(300));
    }
}
