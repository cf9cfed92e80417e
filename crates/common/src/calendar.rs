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
