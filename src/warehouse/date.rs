//! UTC calendar days as the warehouse partitions by them and as people type
//! them (`YYYY-MM-DD`): the day number is days since 1970-01-01, as in
//! `dataflows::num::utc_day` and Delta's `date` type. Also instants as
//! RFC 3339 text (`2024-11-25T06:00:00Z`), for run ids and the jobs API.

use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

/// Formats a UTC day number as YYYY-MM-DD (proleptic Gregorian).
pub fn day_string(day: i32) -> String {
    let date = if day >= 0 {
        EPOCH.checked_add_days(Days::new(day as u64))
    } else {
        EPOCH.checked_sub_days(Days::new(day.unsigned_abs() as u64))
    };
    date.map_or_else(
        || format!("day {day}"),
        |d| d.format("%Y-%m-%d").to_string(),
    )
}

/// Parses YYYY-MM-DD (exactly: four-digit year, two-digit month and day,
/// a real calendar date) into a UTC day number.
pub fn parse_day(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    i32::try_from(date.signed_duration_since(EPOCH).num_days()).ok()
}

/// Formats an epoch-ms instant as RFC 3339 in UTC, seconds precision
/// unless it has milliseconds.
pub fn iso_ms(ms: u64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms as i64) {
        Some(t) if ms.is_multiple_of(1_000) => t.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms} ms"),
    }
}

/// Parses an instant: RFC 3339 (`2024-11-25T06:00:00Z`), a date (its
/// midnight, UTC) or epoch milliseconds.
pub fn parse_instant(s: &str) -> Option<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Some(ms);
    }
    if let Some(day) = parse_day(s) {
        return u64::try_from(day).ok().map(|d| d * dataflows::num::DAY_MS);
    }
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(19_675), "2023-11-14");
        assert_eq!(day_string(-1), "1969-12-31");
        for d in [-1000, 0, 59, 60, 11_016, 19_675, 20_000] {
            assert_eq!(parse_day(&day_string(d)), Some(d));
        }
        for bad in [
            "2024-02-30",
            "2024-13-01",
            "24-01-01",
            "2024-1-01",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(parse_day("2024-02-29"), Some(19_782));
    }

    #[test]
    fn instants_round_trip() {
        assert_eq!(iso_ms(1_732_514_400_000), "2024-11-25T06:00:00Z");
        assert_eq!(iso_ms(1_732_514_400_123), "2024-11-25T06:00:00.123Z");
        for ms in [0, 1_732_514_400_000, 1_732_514_400_123] {
            assert_eq!(parse_instant(&iso_ms(ms)), Some(ms));
        }
        assert_eq!(parse_instant("2024-11-25"), Some(1_732_492_800_000));
        assert_eq!(parse_instant("1732514400000"), Some(1_732_514_400_000));
        assert_eq!(
            parse_instant("2024-11-25T07:00:00+01:00"),
            Some(1_732_514_400_000)
        );
        assert_eq!(parse_instant("soon"), None);
    }
}
