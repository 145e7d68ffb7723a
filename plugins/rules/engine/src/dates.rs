//! Dates for the function library: parsing the shapes HR systems send, .NET-style
//! format strings (as Entra's FormatDateTime takes them), intervals, Windows
//! FILETIME (AD's accountExpires) and IANA time zones.

use cel::Value;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
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

/// How a date renders as text, as Entra renders a DateTime: in UTC, `M/d/yyyy h:mm:ss tt`
/// (`3/16/2020 7:00:00 AM`).
pub fn entra_text(d: &D) -> String {
    d.with_timezone(&Utc)
        .format("%-m/%-d/%Y %-I:%M:%S %p")
        .to_string()
}

/// A timestamp or a date from a CEL value (see [`parse_text`]).
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

/// Dates as HR systems and Entra write them: RFC 3339 (`2009-06-15T01:45:30-07:00`, a
/// space instead of `T` too), a date (`2026-03-02`, midnight UTC), a date with an offset
/// (`2012-03-16-07:00`, Workday's form: midnight at that offset), a local time without
/// an offset (UTC), Entra's own `M/d/yyyy h:mm:ss tt` (UTC), or AD generalized time.
pub fn parse_text(s: &str) -> Result<D, String> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d);
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, fmt) {
            return Ok(d);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(utc(d.and_time(NaiveTime::MIN)));
    }
    // A date with an offset: `2012-03-16-07:00`, `2021-06-30+08:00`, `2021-06-30Z`.
    if s.len() > 10 && s.is_char_boundary(10) {
        let (date, offset) = s.split_at(10);
        if let (Ok(d), Some(off)) = (NaiveDate::parse_from_str(date, "%Y-%m-%d"), offset_of(offset))
            && let Some(at) = off.from_local_datetime(&d.and_time(NaiveTime::MIN)).single()
        {
            return Ok(at);
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M:%S",
        "%Y%m%d%H%M%S%.fZ",
        "%Y%m%d%H%M%SZ",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(utc(d));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%m/%d/%Y") {
        return Ok(utc(d.and_time(NaiveTime::MIN)));
    }
    Err(format!(
        "{s:?} is not a date (use YYYY-MM-DD, YYYY-MM-DD-07:00, RFC 3339 or M/d/yyyy h:mm:ss tt)"
    ))
}

/// `Z`, `+08:00`, `-0700` or `+08` as an offset.
fn offset_of(text: &str) -> Option<FixedOffset> {
    if text == "Z" || text == "z" {
        return FixedOffset::east_opt(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// One piece of a .NET custom date and time format string.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    /// A field letter repeated `n` times (`yyyy`, `MM`, `fff`, `tt`, `zzz`, ...).
    Field(char, usize),
}

/// Splits a .NET custom format (`yyyy-MM-dd HH:mm:ss`, `yyyyMMddHHmmss.fZ`): `'..'` and
/// `".."` quote literals, `\` escapes one character, and letters that are not
/// specifiers (like `T` and `Z`) are literals, as .NET treats them.
fn tokens(fmt: &str) -> Result<Vec<Token>, String> {
    const FIELDS: &str = "yMdHhmsfFtzKg";
    let chars: Vec<char> = fmt.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let literal = |out: &mut Vec<Token>, c: char| match out.last_mut() {
        Some(Token::Literal(l)) => l.push(c),
        _ => out.push(Token::Literal(c.to_string())),
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|x| *x == c)
                .ok_or_else(|| format!("unclosed quote in date format {fmt:?}"))?;
            for ch in &chars[i + 1..i + 1 + end] {
                literal(&mut out, *ch);
            }
            i += end + 2;
            continue;
        }
        if c == '\\' {
            let next = chars
                .get(i + 1)
                .ok_or_else(|| format!("date format {fmt:?} ends with a backslash"))?;
            literal(&mut out, *next);
            i += 2;
            continue;
        }
        if c == '%' && i + 1 < chars.len() {
            i += 1;
            continue;
        }
        if FIELDS.contains(c) {
            let mut run = 1;
            while i + run < chars.len() && chars[i + run] == c {
                run += 1;
            }
            out.push(Token::Field(c, run));
            i += run;
            continue;
        }
        literal(&mut out, c);
        i += 1;
    }
    Ok(out)
}

/// What a parse of a .NET format has found so far.
#[derive(Default)]
struct Found {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: Option<u32>,
    hour12: Option<u32>,
    pm: Option<bool>,
    minute: Option<u32>,
    second: Option<u32>,
    nanos: Option<u32>,
    offset: Option<FixedOffset>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Parses `s` exactly as .NET's `ParseExact` reads the custom format `fmt` (with
/// whitespace allowed around it). Without an offset in the format, the time is UTC.
pub fn parse_with_format(s: &str, fmt: &str) -> Result<D, String> {
    let mismatch = |why: &str| format!("{s:?} does not match the format {fmt:?}: {why}");
    let text = s.trim();
    let mut rest = text;
    let mut f = Found::default();
    let digits = |rest: &mut &str, min: usize, max: usize| -> Option<u32> {
        let n = rest.bytes().take(max).take_while(u8::is_ascii_digit).count();
        if n < min {
            return None;
        }
        let v = rest[..n].parse().ok()?;
        *rest = &rest[n..];
        Some(v)
    };
    for t in tokens(fmt)? {
        match t {
            Token::Literal(l) => {
                rest = rest
                    .strip_prefix(l.as_str())
                    .ok_or_else(|| mismatch(&format!("expected {l:?}")))?;
            }
            Token::Field(c, n) => {
                let bad = || mismatch(&format!("no value for {}", c.to_string().repeat(n)));
                match (c, n) {
                    ('y', 1 | 2) => {
                        let y = digits(&mut rest, n, 2).ok_or_else(bad)? as i32;
                        f.year = Some(if y < 50 { 2000 + y } else { 1900 + y });
                    }
                    ('y', _) => f.year = Some(digits(&mut rest, n, n.max(4)).ok_or_else(bad)? as i32),
                    ('M', 1 | 2) => f.month = Some(digits(&mut rest, n, 2).ok_or_else(bad)?),
                    ('M', _) => {
                        let i = MONTHS
                            .iter()
                            .position(|m| {
                                let name = if n == 3 { &m[..3] } else { m };
                                rest.get(..name.len())
                                    .is_some_and(|r| r.eq_ignore_ascii_case(name))
                            })
                            .ok_or_else(bad)?;
                        rest = &rest[if n == 3 { 3 } else { MONTHS[i].len() }..];
                        f.month = Some(i as u32 + 1);
                    }
                    ('d', 1 | 2) => f.day = Some(digits(&mut rest, n, 2).ok_or_else(bad)?),
                    ('H', _) => f.hour = Some(digits(&mut rest, n.min(2), 2).ok_or_else(bad)?),
                    ('h', _) => f.hour12 = Some(digits(&mut rest, n.min(2), 2).ok_or_else(bad)?),
                    ('m', _) => f.minute = Some(digits(&mut rest, n.min(2), 2).ok_or_else(bad)?),
                    ('s', _) => f.second = Some(digits(&mut rest, n.min(2), 2).ok_or_else(bad)?),
                    ('f' | 'F', 1..=7) => {
                        let min = if c == 'f' { n } else { 0 };
                        let before = rest.len();
                        let v = digits(&mut rest, min, n).unwrap_or(0);
                        let read = before - rest.len();
                        if read < min {
                            return Err(bad());
                        }
                        f.nanos = Some(v * 10u32.pow((9 - read) as u32));
                    }
                    ('t', _) => {
                        let upper = rest.to_ascii_uppercase();
                        let (pm, len) = if upper.starts_with("PM") || (n == 1 && upper.starts_with('P')) {
                            (true, if n == 1 { 1 } else { 2 })
                        } else if upper.starts_with("AM") || (n == 1 && upper.starts_with('A')) {
                            (false, if n == 1 { 1 } else { 2 })
                        } else {
                            return Err(bad());
                        };
                        f.pm = Some(pm);
                        rest = &rest[len..];
                    }
                    ('z' | 'K', _) => {
                        if let Some(r) = rest.strip_prefix('Z') {
                            f.offset = FixedOffset::east_opt(0);
                            rest = r;
                            continue;
                        }
                        let take = rest
                            .char_indices()
                            .take_while(|(i, ch)| {
                                (*i == 0 && (*ch == '+' || *ch == '-')) || ch.is_ascii_digit() || *ch == ':'
                            })
                            .count();
                        f.offset = Some(offset_of(&rest[..take]).ok_or_else(bad)?);
                        rest = &rest[take..];
                    }
                    ('g', _) => {}
                    _ => {
                        return Err(format!(
                            "date format {fmt:?}: unsupported specifier {}",
                            c.to_string().repeat(n)
                        ));
                    }
                }
            }
        }
    }
    if !rest.is_empty() {
        return Err(mismatch(&format!("{rest:?} is left over")));
    }
    let hour = match (f.hour, f.hour12, f.pm) {
        (Some(h), _, _) => h,
        (None, Some(h), Some(true)) => h % 12 + 12,
        (None, Some(h), _) => h % 12,
        (None, None, _) => 0,
    };
    let date = NaiveDate::from_ymd_opt(f.year.unwrap_or(1), f.month.unwrap_or(1), f.day.unwrap_or(1))
        .ok_or_else(|| mismatch("not a calendar date"))?;
    let time = NaiveTime::from_hms_nano_opt(
        hour,
        f.minute.unwrap_or(0),
        f.second.unwrap_or(0),
        f.nanos.unwrap_or(0),
    )
    .ok_or_else(|| mismatch("not a time of day"))?;
    let local = date.and_time(time);
    match f.offset {
        Some(off) => off
            .from_local_datetime(&local)
            .single()
            .ok_or_else(|| mismatch("not a time at that offset")),
        None => Ok(utc(local)),
    }
}

/// Formats with a .NET custom format string, in the date's own offset.
pub fn format(d: &D, fmt: &str) -> Result<String, String> {
    let mut out = String::new();
    for t in tokens(fmt)? {
        match t {
            Token::Literal(l) => out.push_str(&l),
            Token::Field(c, n) => {
                let piece = match (c, n) {
                    ('y', 1) => (d.year() % 100).to_string(),
                    ('y', 2) => format!("{:02}", d.year().rem_euclid(100)),
                    ('y', n) => format!("{:0n$}", d.year()),
                    ('M', 1) => d.month().to_string(),
                    ('M', 2) => format!("{:02}", d.month()),
                    ('M', 3) => MONTHS[d.month0() as usize][..3].to_string(),
                    ('M', _) => MONTHS[d.month0() as usize].to_string(),
                    ('d', 1) => d.day().to_string(),
                    ('d', 2) => format!("{:02}", d.day()),
                    ('d', 3) => d.format("%a").to_string(),
                    ('d', _) => d.format("%A").to_string(),
                    ('H', 1) => d.hour().to_string(),
                    ('H', _) => format!("{:02}", d.hour()),
                    ('h', 1) => (((d.hour() + 11) % 12) + 1).to_string(),
                    ('h', _) => format!("{:02}", ((d.hour() + 11) % 12) + 1),
                    ('m', 1) => d.minute().to_string(),
                    ('m', _) => format!("{:02}", d.minute()),
                    ('s', 1) => d.second().to_string(),
                    ('s', _) => format!("{:02}", d.second()),
                    ('f' | 'F', 1..=7) => {
                        let digits = format!("{:09}", d.nanosecond() % 1_000_000_000);
                        let cut = &digits[..n];
                        if c == 'F' {
                            cut.trim_end_matches('0').to_string()
                        } else {
                            cut.to_string()
                        }
                    }
                    ('t', 1) => (if d.hour() < 12 { "A" } else { "P" }).to_string(),
                    ('t', _) => (if d.hour() < 12 { "AM" } else { "PM" }).to_string(),
                    ('z', 1) => offset_text(d, false, false),
                    ('z', 2) => offset_text(d, true, false),
                    ('z', _) | ('K', _) => offset_text(d, true, true),
                    ('g', _) => "A.D.".to_string(),
                    _ => {
                        return Err(format!(
                            "date format {fmt:?}: unsupported specifier {}",
                            c.to_string().repeat(n)
                        ));
                    }
                };
                out.push_str(&piece);
            }
        }
    }
    Ok(out)
}

fn offset_text(d: &D, pad: bool, minutes: bool) -> String {
    let secs = d.offset().local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
    match (pad, minutes) {
        (_, true) => format!("{sign}{h:02}:{m:02}"),
        (true, false) => format!("{sign}{h:02}"),
        (false, false) => format!("{sign}{h}"),
    }
}

/// DateAdd, as Entra and VBA: `yyyy` years, `q` quarters, `m` months (the day is kept,
/// or the month's last day), `d`/`y`/`w` days, `ww` weeks, `h` hours, `n` minutes, `s` seconds.
pub fn add(interval: &str, n: i64, d: D) -> Result<D, String> {
    let out_of_range = || format!("adding {n} {interval} to {} leaves the calendar", rfc3339(&d));
    let months = |m: Option<i64>| -> Result<D, String> {
        let m = m.ok_or_else(out_of_range)?;
        let shifted = if m >= 0 {
            u32::try_from(m)
                .ok()
                .and_then(|m| d.checked_add_months(Months::new(m)))
        } else {
            u32::try_from(m.checked_neg().unwrap_or(i64::MAX))
                .ok()
                .and_then(|m| d.checked_sub_months(Months::new(m)))
        };
        shifted.ok_or_else(out_of_range)
    };
    let span = |dur: Option<Duration>| -> Result<D, String> {
        dur.and_then(|x| d.checked_add_signed(x)).ok_or_else(out_of_range)
    };
    match interval {
        "yyyy" => months(n.checked_mul(12)),
        "q" => months(n.checked_mul(3)),
        "m" => months(Some(n)),
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

/// DateDiff, as Entra and VB.NET count: calendar years, quarters and months between
/// the two dates; whole days, hours, minutes and seconds elapsed (truncated); `w`
/// whole weeks elapsed; `ww` the Sundays between them (calendar weeks). Negative when
/// `to` is earlier. Dates are compared in UTC.
pub fn diff(interval: &str, from: D, to: D) -> Result<i64, String> {
    let (from, to) = (from.with_timezone(&Utc), to.with_timezone(&Utc));
    let span = to.signed_duration_since(from);
    let months = || {
        (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month()) - i64::from(from.month())
    };
    let quarters = || {
        (i64::from(to.year()) - i64::from(from.year())) * 4 + i64::from(to.month0() / 3)
            - i64::from(from.month0() / 3)
    };
    let week_start = |d: DateTime<Utc>| {
        let day = d.date_naive();
        day.num_days_from_ce() - d.weekday().num_days_from_sunday() as i32
    };
    Ok(match interval {
        "yyyy" => i64::from(to.year()) - i64::from(from.year()),
        "q" => quarters(),
        "m" => months(),
        "d" | "y" => span.num_days(),
        "w" => span.num_days() / 7,
        "ww" => i64::from(week_start(to) - week_start(from)) / 7,
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

/// A timestamp as a Windows FILETIME; an error for a date FILETIME cannot hold
/// (before 1601, or after the year 30828).
pub fn to_filetime(d: D) -> Result<i64, String> {
    d.timestamp()
        .checked_add(FILETIME_EPOCH_OFFSET_S)
        .and_then(|s| s.checked_mul(10_000_000))
        .and_then(|t| t.checked_add(i64::from(d.timestamp_subsec_nanos() / 100)))
        .filter(|t| *t >= 0)
        .ok_or_else(|| format!("{} is outside what AD's date format can hold", rfc3339(&d)))
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
