//! Dates for the function library: parsing the shapes HR systems send, .NET-style
//! format strings (as Entra's FormatDateTime takes them), intervals, Windows
//! FILETIME (AD's accountExpires) and IANA time zones.

use cel::Value;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

type D = DateTime<FixedOffset>;

/// Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01.
const FILETIME_EPOCH_OFFSET_S: i64 = 11_644_473_600;

fn utc(n: NaiveDateTime) -> D {
    Utc.from_utc_datetime(&n).fixed_offset()
}

/// RFC 3339 with seconds, `Z` for UTC.
pub fn rfc3339(d: &D) -> String {
    d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A timestamp or a date from a CEL value: a timestamp, RFC 3339, `YYYY-MM-DD`
/// (midnight UTC), `YYYY-MM-DDTHH:MM:SS` (UTC) or AD generalized time.
pub fn parse(v: &Value) -> Result<D, String> {
    match v {
        Value::Timestamp(t) => Ok(*t),
        Value::String(s) => parse_text(s),
        Value::Null => Err("expected a date, got null".into()),
        other => Err(format!(
            "expected a date, got {}",
            crate::functions::type_name(other)
        )),
    }
}

fn parse_text(s: &str) -> Result<D, String> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(utc(d.and_time(NaiveTime::MIN)));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y%m%d%H%M%S%.fZ",
        "%Y%m%d%H%M%SZ",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(utc(d));
        }
    }
    Err(format!("{s:?} is not a date (use YYYY-MM-DD or RFC 3339)"))
}

/// Translates a .NET custom date format (`yyyy-MM-dd HH:mm:ss`, `yyyyMMddHHmmss.fZ`) to chrono's.
fn dotnet_to_chrono(fmt: &str, parsing: bool) -> Result<String, String> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let token = match (c, run) {
            ('y', 4) => "%Y",
            ('y', 2) => "%y",
            ('M', 4) => "%B",
            ('M', 3) => "%b",
            ('M', 2) => "%m",
            ('M', 1) => "%-m",
            ('d', 4) => "%A",
            ('d', 3) => "%a",
            ('d', 2) => "%d",
            ('d', 1) => "%-d",
            ('H', 2) => "%H",
            ('H', 1) => "%-H",
            ('h', 2) => "%I",
            ('h', 1) => "%-I",
            ('m', 2) => "%M",
            ('m', 1) => "%-M",
            ('s', 2) => "%S",
            ('s', 1) => "%-S",
            ('f', _) if parsing => "%f",
            ('f', 1) => "%1f",
            ('f', 2) => "%2f",
            ('f', 3) => "%3f",
            ('f', 6) => "%6f",
            ('f', 7) => "%7f",
            ('t', 2) => "%p",
            ('z', 3) | ('K', 1) => "%:z",
            ('\'', _) | ('"', _) => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|x| *x == c)
                    .ok_or_else(|| format!("unclosed quote in date format {fmt:?}"))?;
                for ch in &chars[i + 1..i + 1 + end] {
                    push_literal(&mut out, *ch);
                }
                i += end + 2;
                continue;
            }
            (c, _) if c.is_ascii_alphabetic() && c != 'T' && c != 'Z' => {
                return Err(format!(
                    "date format {fmt:?}: unsupported token {}",
                    c.to_string().repeat(run)
                ));
            }
            _ => {
                for _ in 0..run {
                    push_literal(&mut out, c);
                }
                i += run;
                continue;
            }
        };
        out.push_str(token);
        i += run;
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Parses `s` with a .NET format (a date-only format gives midnight UTC).
pub fn parse_with_format(s: &str, fmt: &str) -> Result<D, String> {
    let f = dotnet_to_chrono(fmt, true)?;
    if let Ok(d) = DateTime::parse_from_str(s, &f) {
        return Ok(d);
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(s, &f) {
        return Ok(utc(d));
    }
    NaiveDate::parse_from_str(s, &f)
        .map(|d| utc(d.and_time(NaiveTime::MIN)))
        .map_err(|e| format!("{s:?} does not match the format {fmt:?}: {e}"))
}

/// Formats with a .NET format string.
pub fn format(d: &D, fmt: &str) -> Result<String, String> {
    use std::fmt::Write;
    let f = dotnet_to_chrono(fmt, false)?;
    let mut out = String::new();
    write!(out, "{}", d.format(&f)).map_err(|_| format!("cannot format with {fmt:?}"))?;
    Ok(out)
}

/// DateAdd: `yyyy` years, `q` quarters, `m` months, `d`/`y`/`w` days, `ww` weeks,
/// `h` hours, `n` minutes, `s` seconds.
pub fn add(interval: &str, n: i64, d: D) -> Result<D, String> {
    let months = |m: i64| -> Result<D, String> {
        let shifted = if m >= 0 {
            u32::try_from(m)
                .ok()
                .and_then(|m| d.checked_add_months(Months::new(m)))
        } else {
            u32::try_from(-m)
                .ok()
                .and_then(|m| d.checked_sub_months(Months::new(m)))
        };
        shifted.ok_or_else(|| "date out of range".to_string())
    };
    let span = |dur: Option<Duration>| -> Result<D, String> {
        dur.and_then(|x| d.checked_add_signed(x))
            .ok_or_else(|| "date out of range".to_string())
    };
    match interval {
        "yyyy" => months(n.saturating_mul(12)),
        "q" => months(n.saturating_mul(3)),
        "m" => months(n),
        "d" | "y" | "w" => span(Duration::try_days(n)),
        "ww" => span(Duration::try_weeks(n)),
        "h" => span(Duration::try_hours(n)),
        "n" => span(Duration::try_minutes(n)),
        "s" => span(Duration::try_seconds(n)),
        other => Err(format!(
            "unknown interval {other:?}: use yyyy, q, m, d, ww, h, n or s"
        )),
    }
}

/// DateDiff: whole intervals from `from` to `to` (negative when `to` is earlier).
pub fn diff(interval: &str, from: D, to: D) -> Result<i64, String> {
    let span = to.signed_duration_since(from);
    let months = || {
        (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month()) - i64::from(from.month())
    };
    Ok(match interval {
        "yyyy" => i64::from(to.year()) - i64::from(from.year()),
        "q" => months() / 3,
        "m" => months(),
        "d" | "y" | "w" => span.num_days(),
        "ww" => span.num_weeks(),
        "h" => span.num_hours(),
        "n" => span.num_minutes(),
        "s" => span.num_seconds(),
        other => {
            return Err(format!(
                "unknown interval {other:?}: use yyyy, q, m, d, ww, h, n or s"
            ));
        }
    })
}

/// A Windows FILETIME (100 ns since 1601, AD's `accountExpires`) as a timestamp.
pub fn from_filetime(n: i64) -> Result<D, String> {
    if n <= 0 || n == i64::MAX {
        return Err(format!(
            "{n} is not a date (0 and 9223372036854775807 mean never)"
        ));
    }
    let secs = n / 10_000_000 - FILETIME_EPOCH_OFFSET_S;
    let nanos = (n % 10_000_000) * 100;
    DateTime::from_timestamp(secs, nanos as u32)
        .map(|d| d.fixed_offset())
        .ok_or_else(|| format!("{n} is out of range"))
}

/// A timestamp as a Windows FILETIME.
pub fn to_filetime(d: D) -> i64 {
    (d.timestamp() + FILETIME_EPOCH_OFFSET_S) * 10_000_000 + i64::from(d.timestamp_subsec_nanos() / 100)
}

pub fn from_millis(ms: i64) -> Result<D, String> {
    DateTime::from_timestamp_millis(ms)
        .map(|d| d.fixed_offset())
        .ok_or_else(|| format!("{ms} ms is out of range"))
}

fn zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("{name:?} is not an IANA time zone (for example Australia/Sydney)"))
}

/// The same instant, expressed in the zone's local offset.
pub fn in_zone(d: D, tz: &str) -> Result<D, String> {
    Ok(d.with_timezone(&zone(tz)?).fixed_offset())
}

/// The first (or last) instant of the calendar day of `v` in zone `tz` (UTC when absent):
/// `EndOfDay("2026-03-31", "Australia/Sydney")` is 2026-03-31T23:59:59.999+11:00.
pub fn day_bound(v: &Value, tz: Option<&str>, end: bool) -> Result<D, String> {
    let tz = zone(tz.unwrap_or("UTC"))?;
    let day = match v {
        Value::String(s) if NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok() => {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| e.to_string())?
        }
        other => parse(other)?.with_timezone(&tz).date_naive(),
    };
    let time = if end {
        NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap_or(NaiveTime::MIN)
    } else {
        NaiveTime::MIN
    };
    tz.from_local_datetime(&day.and_time(time))
        .earliest()
        .or_else(|| tz.from_local_datetime(&day.and_time(time)).latest())
        .map(|d| d.fixed_offset())
        .ok_or_else(|| format!("{day} has no such local time in {tz}"))
}
