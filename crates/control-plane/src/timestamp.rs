//! Times as the control plane stores and shows them: Unix seconds or
//! milliseconds, written as RFC 3339 (`2027-01-31T00:00:00Z`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use humantime_serde::re::humantime;

/// Parses an RFC 3339 time into Unix seconds; `None` unless it is a valid
/// time after 1970.
pub fn parse_rfc3339_seconds(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339(text).ok()?;
    let seconds = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(seconds).ok().filter(|seconds| *seconds > 0)
}

/// Writes Unix seconds as an RFC 3339 time; a negative time keeps its
/// number, so whatever reads it back names it.
pub fn format_rfc3339_seconds(seconds: i64) -> String {
    match u64::try_from(seconds) {
        Ok(seconds) => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
        }
        Err(_) => seconds.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_bad_ones_are_refused() {
        let seconds = parse_rfc3339_seconds("2027-01-31T00:00:00Z").expect("valid");
        assert_eq!(format_rfc3339_seconds(seconds), "2027-01-31T00:00:00Z");
        assert_eq!(parse_rfc3339_seconds("tomorrow"), None);
        assert_eq!(parse_rfc3339_seconds("1970-01-01T00:00:00Z"), None);
        assert_eq!(format_rfc3339_seconds(-5), "-5");
    }
}
