//! Providers' own rate-limit headers on answers that succeeded: when one
//! says a limit is used up (`remaining` 0), the deployment is skipped by
//! routing until the limit resets, rather than sent a request bound to get
//! a 429.
//!
//! Read: OpenAI's `x-ratelimit-remaining-{requests,tokens}` with
//! `x-ratelimit-reset-*` (a duration such as `1s`, `6m0s` or `20ms`), and
//! Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,
//! output-tokens}-remaining` with `-reset` (an RFC 3339 time).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use reqwest::header::HeaderMap;

/// A limit reported used up without a readable reset is waited this long.
const UNKNOWN_RESET: Duration = Duration::from_secs(1);
/// The longest wait believed from a reset header.
const MOST: Duration = Duration::from_secs(3_600);

/// OpenAI's header pairs: remaining, reset (a duration).
const OPENAI: [(&str, &str); 2] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
];
/// Anthropic's header pairs: remaining, reset (an RFC 3339 time).
const ANTHROPIC: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// How long until the longest of the provider's used-up limits resets;
/// `None` when none is used up.
pub fn exhausted_for(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let used_up = |name: &str| header(name).is_some_and(|value| value.trim() == "0");
    let mut longest: Option<Duration> = None;
    let mut note = |wait: Duration| longest = Some(longest.map_or(wait, |most| most.max(wait)));
    for (remaining, reset) in OPENAI {
        if used_up(remaining) {
            note(header(reset).and_then(go_duration).unwrap_or(UNKNOWN_RESET));
        }
    }
    for (remaining, reset) in ANTHROPIC {
        if used_up(remaining) {
            let at = header(reset).and_then(|text| {
                let at = humantime_serde::re::humantime::parse_rfc3339(text.trim()).ok()?;
                Some(at.duration_since(now).unwrap_or(Duration::ZERO))
            });
            note(at.unwrap_or(UNKNOWN_RESET));
        }
    }
    longest.map(|wait| wait.min(MOST))
}

/// Parses a Go-style duration (`1s`, `6m0s`, `1h2m3.5s`, `20ms`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3_600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    (total.is_finite() && total >= 0.0)
        .then(|| Duration::from_secs_f64(total.min(MOST.as_secs_f64())))
}

/// What one attempt learnt of its provider's limits, shared by the HTTP
/// exchange that reads the headers and the answer that reports them.
#[derive(Debug, Clone, Default)]
pub struct LimitReport(Arc<AtomicU64>);

impl LimitReport {
    /// Notes that the provider's limit is used up for `wait`.
    pub fn used_up_for(&self, wait: Duration) {
        let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        self.0.fetch_max(millis, Ordering::Relaxed);
    }

    /// Milliseconds until the provider's used-up limit resets; 0 when none
    /// was reported used up.
    pub fn exhausted_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn go_durations_as_openai_writes_them() {
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("2m3.5s"), Some(Duration::from_millis(123_500)));
        assert_eq!(go_duration("2h"), Some(MOST), "at most an hour is believed");
        assert_eq!(go_duration("soon"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn only_a_used_up_limit_counts_and_the_longest_reset_wins() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fine = headers(&[
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
        ]);
        assert_eq!(exhausted_for(&fine, now), None);
        let used_up = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "2s"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        assert_eq!(exhausted_for(&used_up, now), Some(Duration::from_secs(360)));
        // 2027-01-15T08:00:30Z is 30 s after `now`.
        let anthropic = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2027-01-15T08:00:30Z"),
        ]);
        assert_eq!(
            exhausted_for(&anthropic, now),
            Some(Duration::from_secs(30))
        );
        let unreadable = headers(&[("x-ratelimit-remaining-requests", "0")]);
        assert_eq!(exhausted_for(&unreadable, now), Some(UNKNOWN_RESET));
    }
}
