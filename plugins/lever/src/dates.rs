//! Lever's timestamps (milliseconds since the epoch) as the ISO dates and
//! RFC 3339 instants person events carry.

use chrono::{DateTime, NaiveDate, SecondsFormat};

/// An RFC 3339 instant in UTC with milliseconds; `None` for Lever's "no time" (0).
pub fn rfc3339(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The UTC day of an instant, `YYYY-MM-DD`.
pub fn date(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.date_naive().to_string())
        .unwrap_or_default()
}

/// A date given as text (`2026-10-31`, or an instant whose day is taken).
pub fn iso_date(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d.to_string());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.date_naive().to_string())
}

/// Midnight UTC of an ISO date, in ms.
pub fn day_start_ms(date: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_lever_milliseconds_and_text() {
        assert_eq!(date(1_475_540_150_185), "2016-10-04");
        assert_eq!(
            rfc3339(1_431_458_021_951).as_deref(),
            Some("2015-05-12T19:13:41.951Z")
        );
        assert_eq!(rfc3339(0), None);
        assert_eq!(iso_date(" 2026-10-31 ").as_deref(), Some("2026-10-31"));
        assert_eq!(
            iso_date("2026-10-31T23:00:00-05:00").as_deref(),
            Some("2026-10-31")
        );
        assert_eq!(iso_date("31/10/2026"), None);
        assert_eq!(day_start_ms("1970-01-02"), Some(86_400_000));
    }
}
