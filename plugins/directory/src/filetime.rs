//! AD's `accountExpires`: FILETIME (100-ns intervals since 1601-01-01 UTC).
//!
//! An HR end date `YYYY-MM-DD` is the last day of work, so the account expires
//! at the start of the next day (UTC); reading converts such a value back to
//! the same date, so the planner sees no change. A full RFC 3339 timestamp is
//! written as that instant.

/// Seconds between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
/// `0` and `i64::MAX` both mean "never".
pub const NEVER: i64 = i64::MAX;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn number(s: &str, what: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

/// Parses `YYYY-MM-DD` into (year, month, day).
fn date(text: &str) -> Result<(i64, i64, i64), String> {
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return Err(format!("{text:?} is not a date (YYYY-MM-DD)"));
    }
    let (y, m, d) = (
        number(parts[0], "year")?,
        number(parts[1], "month")?,
        number(parts[2], "day")?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(format!("{text:?} is not a valid date"));
    }
    Ok((y, m, d))
}

/// Unix seconds of an expiry given as a date (end of that day) or an RFC 3339 timestamp in UTC (`Z`)
/// or with an offset.
pub fn expiry_unix_seconds(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.len() == 10 {
        let (y, m, d) = date(text)?;
        return Ok((days_from_civil(y, m, d) + 1) * 86_400);
    }
    let (day, rest) = text
        .split_once(['T', ' '])
        .ok_or_else(|| format!("{text:?} is neither a date nor an RFC 3339 timestamp"))?;
    let (y, m, d) = date(day)?;
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let (c, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, mi) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        (
            c,
            sign * (number(h, "offset hours")? * 3600 + number(mi, "offset minutes")? * 60),
        )
    } else {
        return Err(format!("{text:?} has no time zone (add Z or an offset)"));
    };
    let mut hms = clock.split(':');
    let h = number(hms.next().unwrap_or("0"), "hour")?;
    let mi = number(hms.next().unwrap_or("0"), "minute")?;
    let s = hms.next().unwrap_or("0");
    let s = number(s.split('.').next().unwrap_or("0"), "second")?;
    Ok(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs)
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
    let secs = value / 10_000_000 - EPOCH_DIFF_SECS;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    if rem == 0 {
        let (y, m, d) = civil_from_days(days - 1);
        return Some(format!("{y:04}-{m:02}-{d:02}"));
    }
    let (y, m, d) = civil_from_days(days);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
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
                .contains("no time zone")
        );
    }
}
