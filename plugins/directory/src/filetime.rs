//! AD's `accountExpires`: FILETIME (100-ns intervals since 1601-01-01 UTC).
//!
//! An HR end date `YYYY-MM-DD` is the last day of work, so the account expires
//! at the start of the next day (UTC); reading converts such a value back to
//! the same date, so the planner sees no change. A full RFC 3339 timestamp is
//! written as that instant.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

/// Seconds between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
/// `0` and `i64::MAX` both mean "never".
pub const NEVER: i64 = i64::MAX;

/// Unix seconds of an expiry given as a date (end of that day) or an RFC 3339 timestamp
/// with `Z` or an offset.
pub fn expiry_unix_seconds(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.len() == 10 {
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| format!("{text:?} is not a valid date (YYYY-MM-DD)"))?;
        let next = day
            .succ_opt()
            .ok_or_else(|| format!("{text:?} is out of range"))?;
        return Ok(next.and_time(NaiveTime::MIN).and_utc().timestamp());
    }
    if !text.contains(['T', 't', ' ']) {
        return Err(format!("{text:?} is neither a date nor an RFC 3339 timestamp"));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp with a time zone (Z or an offset): {e}"))
}

/// The FILETIME value for an expiry text.
pub fn to_filetime(text: &str) -> Result<i64, String> {
    Ok((expiry_unix_seconds(text)? + EPOCH_DIFF_SECS) * 10_000_000)
}

/// The expiry text for a FILETIME value; `None` for "never".
pub fn from_filetime(value: i64) -> Option<String> {
    if value <= 0 || value == NEVER {
        return None;
    }
    let at: DateTime<Utc> = DateTime::from_timestamp(value / 10_000_000 - EPOCH_DIFF_SECS, 0)?;
    if at.time() == NaiveTime::MIN {
        // The start of a day: the last day was the one before.
        return at
            .date_naive()
            .pred_opt()
            .map(|d| d.format("%Y-%m-%d").to_string());
    }
    Some(at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_day_expires_at_the_start_of_the_next() {
        // 2027-01-01T00:00:00Z
        assert_eq!(
            to_filetime("2026-12-31").unwrap(),
            (1_798_761_600 + EPOCH_DIFF_SECS) * 10_000_000
        );
        assert_eq!(
            from_filetime(to_filetime("2026-12-31").unwrap()).unwrap(),
            "2026-12-31"
        );
        assert_eq!(
            from_filetime(to_filetime("2028-02-29").unwrap()).unwrap(),
            "2028-02-29"
        );
    }

    #[test]
    fn timestamps_keep_their_instant() {
        let t = to_filetime("2026-06-30T17:00:00+02:00").unwrap();
        assert_eq!(from_filetime(t).unwrap(), "2026-06-30T15:00:00Z");
        assert!(from_filetime(0).is_none());
        assert!(from_filetime(NEVER).is_none());
    }

    #[test]
    fn bad_dates_say_why() {
        assert!(
            to_filetime("2026-13-01")
                .unwrap_err()
                .contains("not a valid date")
        );
        assert!(to_filetime("soon").unwrap_err().contains("neither a date"));
        assert!(
            to_filetime("2026-01-01T10:00:00")
                .unwrap_err()
                .contains("with a time zone")
        );
    }
}
