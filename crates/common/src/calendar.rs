//! UTC calendar dates of system times, for the timestamps Switchyard writes
//! itself (log lines, AWS request signatures), with no date-time crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A time in UTC, broken into calendar fields; times before 1970 read as
/// 1970-01-01T00:00:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// The year (four digits).
    pub year: u64,
    /// The month, 1 to 12.
    pub month: u64,
    /// The day of the month, 1 to 31.
    pub day: u64,
    /// The hour, 0 to 23.
    pub hour: u64,
    /// The minute, 0 to 59.
    pub minute: u64,
    /// The second, 0 to 59.
    pub second: u64,
    /// Microseconds within the second.
    pub micros: u32,
}

impl UtcTime {
    /// The calendar fields of `time`.
    pub fn of(time: SystemTime) -> Self {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_epoch.as_secs();
        let (year, month, day) = civil_date(seconds / 86_400);
        let in_day = seconds % 86_400;
        Self {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            micros: since_epoch.subsec_micros(),
        }
    }
}

/// Unix seconds at the start (00:00 UTC) of the date `text`
/// (`YYYY-MM-DD`); `None` when it is not such a date on or after 1970.
pub fn start_of_date(text: &str) -> Option<u64> {
    let mut parts = text.splitn(3, '-');
    let mut field = |digits: usize| {
        parts
            .next()
            .filter(|part| part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|part| part.parse::<u64>().ok())
    };
    let (year, month, day) = (field(4)?, field(2)?, field(2)?);
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Refuses days past the month's end (2027-02-30).
    (civil_date(days) == (year, month, day)).then_some(days * 86_400)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), for dates from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_789), (2026, 12, 2));
        assert_eq!(civil_date(20_819), (2027, 1, 1));
    }

    #[test]
    fn dates_parse_to_the_start_of_their_day() {
        assert_eq!(start_of_date("1970-01-01"), Some(0));
        assert_eq!(start_of_date("2026-12-02"), Some(20_789 * 86_400));
        assert_eq!(start_of_date("2000-02-29"), Some(11_016 * 86_400));
        for bad in [
            "2027-02-30",
            "2027-13-01",
            "27-01-01",
            "2027-1-01",
            "soon",
            "",
        ] {
            assert_eq!(start_of_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_time_breaks_into_its_fields() {
        let time = UNIX_EPOCH + Duration::from_micros(1_796_223_656_212_470);
        assert_eq!(
            UtcTime::of(time),
            UtcTime {
                year: 2026,
                month: 12,
                day: 2,
                hour: 15,
                minute: 0,
                second: 56,
                micros: 212_470,
            }
        );
        assert_eq!(UtcTime::of(UNIX_EPOCH - Duration::from_secs(5)).year, 1970);
    }
}
