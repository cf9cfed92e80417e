//! `deadlines`: when an attempt must have connected, started answering and
//! ended, from the timeouts the router resolved for it (the deployment's
//! over the route's), the provider's `timeout` for the rest, and the
//! request's deadline over them all.
//!
//! A streamed answer must send its first event within the first-token
//! timeout and each later one within the idle timeout. A buffered answer
//! has no first token to watch: it must arrive whole within the attempt's
//! total timeout, or the provider's `timeout` when the attempt has none.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{AttemptTimeouts, RequestContext};
use tokio::time::Instant;

/// One attempt's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// Connecting to the provider; `None` for the adapters' own setting.
    pub connect: Option<Duration>,
    /// Response headers and a stream's first event, or a buffered answer
    /// whole.
    pub first_byte: Instant,
    /// Each later event of a stream.
    pub idle: Duration,
    /// The end of the attempt, however it is going: its total timeout or
    /// the request's deadline, whichever comes first.
    pub end: Option<Instant>,
}

/// The deadlines of an attempt starting now. `provider_timeout` stands in
/// for each timeout the attempt does not set; `streamed` says whether the
/// answer comes as a stream. Fails as `timeout` when the request's
/// deadline has already passed.
pub(crate) fn of_attempt(
    provider_timeout: Duration,
    timeouts: Option<&AttemptTimeouts>,
    context: Option<&RequestContext>,
    streamed: bool,
    provider: &str,
) -> Result<Deadlines, ServiceError> {
    let now = Instant::now();
    let timeouts = timeouts.copied().unwrap_or_default();
    let or_provider = |ms: u64| {
        if ms > 0 {
            Duration::from_millis(ms)
        } else {
            provider_timeout
        }
    };
    let total = (timeouts.total_ms > 0).then(|| now + Duration::from_millis(timeouts.total_ms));
    let request = request_end(now, context, provider)?;
    let end = match (total, request) {
        (Some(total), Some(request)) => Some(total.min(request)),
        (total, request) => total.or(request),
    };
    let first_byte = if streamed {
        now + or_provider(timeouts.first_token_ms)
    } else {
        total.unwrap_or(now + provider_timeout)
    };
    Ok(Deadlines {
        connect: (timeouts.connect_ms > 0).then(|| Duration::from_millis(timeouts.connect_ms)),
        first_byte: end.map_or(first_byte, |end| first_byte.min(end)),
        idle: or_provider(timeouts.idle_ms),
        end,
    })
}

/// When the request's deadline (in `context`, Unix milliseconds) falls,
/// as an instant; `None` when it has none.
fn request_end(
    now: Instant,
    context: Option<&RequestContext>,
    provider: &str,
) -> Result<Option<Instant>, ServiceError> {
    let Some(deadline_ms) = context
        .map(|context| context.deadline_unix_ms)
        .filter(|&ms| ms > 0)
    else {
        return Ok(None);
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let remaining = u128::from(deadline_ms).saturating_sub(now_ms);
    if remaining == 0 {
        return Err(ServiceError::new(
            ErrorClass::Timeout,
            "the request deadline passed before the provider was called",
        )
        .with_provider(provider));
    }
    let remaining = Duration::from_millis(u64::try_from(remaining).unwrap_or(u64::MAX));
    Ok(Some(now + remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: Duration = Duration::from_secs(60);

    fn within(instant: Instant, of: Duration) -> bool {
        let left = instant.saturating_duration_since(Instant::now());
        left <= of && left + Duration::from_millis(500) > of
    }

    #[test]
    fn a_stream_waits_the_first_token_timeout_and_a_buffered_answer_its_total() {
        let timeouts = AttemptTimeouts {
            first_token_ms: 2_000,
            idle_ms: 500,
            total_ms: 30_000,
            connect_ms: 100,
        };
        let streamed = of_attempt(PROVIDER, Some(&timeouts), None, true, "p").expect("in time");
        assert!(within(streamed.first_byte, Duration::from_secs(2)));
        assert_eq!(streamed.idle, Duration::from_millis(500));
        assert!(within(
            streamed.end.expect("a total"),
            Duration::from_secs(30)
        ));
        assert_eq!(streamed.connect, Some(Duration::from_millis(100)));
        let buffered = of_attempt(PROVIDER, Some(&timeouts), None, false, "p").expect("in time");
        assert!(within(buffered.first_byte, Duration::from_secs(30)));
    }

    #[test]
    fn unset_timeouts_are_the_providers_and_the_request_deadline_bounds_them() {
        let plain = of_attempt(PROVIDER, None, None, true, "p").expect("in time");
        assert!(within(plain.first_byte, PROVIDER));
        assert_eq!(plain.idle, PROVIDER);
        assert_eq!((plain.end, plain.connect), (None, None));
        let soon = u64::try_from(
            (SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                + Duration::from_secs(3))
            .as_millis(),
        )
        .expect("fits");
        let context = RequestContext {
            deadline_unix_ms: soon,
            ..RequestContext::default()
        };
        let bounded = of_attempt(PROVIDER, None, Some(&context), false, "p").expect("in time");
        assert!(within(bounded.first_byte, Duration::from_secs(3)));
        assert!(within(
            bounded.end.expect("the request's"),
            Duration::from_secs(3)
        ));
        let passed = RequestContext {
            deadline_unix_ms: 1,
            ..RequestContext::default()
        };
        let error = of_attempt(PROVIDER, None, Some(&passed), true, "p").expect_err("too late");
        assert_eq!(error.class, ErrorClass::Timeout);
    }
}
