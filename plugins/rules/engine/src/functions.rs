//! The function library: Entra ID's attribute-mapping functions under their
//! Entra names (so mappings migrate as they are), plus country and phone
//! normalization and time-zone-aware dates. CEL's own functions (`startsWith`,
//! `endsWith`, `contains`, `matches`, `size`, `in`, ...) stay available.
//!
//! Every function checks its arguments and answers a wrong type, a null where a
//! value is needed or an invalid pattern with an error naming the function and
//! the argument; none panics.

use crate::dates;
use crate::limits;
use crate::markers::{self, Marker};
use base64::Engine as _;
use cel::extractors::Arguments;
use cel::{Context, ExecutionError, Value};
use regex::Regex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

type Fr = Result<Value, String>;
pub(crate) type Imp = fn(&[Value]) -> Result<Value, String>;

thread_local! {
    static NOW: Cell<i64> = const { Cell::new(0) };
    static RNG: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) };
    static REGEXES: RefCell<HashMap<String, Arc<Regex>>> = RefCell::new(HashMap::new());
}

/// Sets what `Now()` answers and seeds `Guid()` / `RandomString()` for one evaluation:
/// the same person and rule set give the same values, so planning stays idempotent.
pub(crate) fn begin_evaluation(now_ms: i64, seed: u64) {
    NOW.with(|n| n.set(now_ms));
    RNG.with(|r| r.set(seed | 1));
}

fn next_random() -> u64 {
    RNG.with(|r| {
        // xorshift64*
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A compiled regex from a small per-thread cache.
pub(crate) fn regex(pattern: &str) -> Result<Arc<Regex>, String> {
    REGEXES.with(|cache| {
        if let Some(r) = cache.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = Arc::new(Regex::new(pattern).map_err(|e| format!("invalid regex {pattern:?}: {e}"))?);
        let mut cache = cache.borrow_mut();
        if cache.len() >= 512 {
            cache.clear();
        }
        cache.insert(pattern.to_string(), r.clone());
        Ok(r)
    })
}

/// Every library function, by name, for the documentation and the tests.
pub const NAMES: &[&str] = &[
    "Append",
    "AppRoleAssignmentsComplex",
    "BitAnd",
    "CBool",
    "CDate",
    "Coalesce",
    "ConvertToBase64",
    "ConvertToUTF8Hex",
    "Count",
    "CStr",
    "DateAdd",
    "DateDiff",
    "DateFromNum",
    "FormatDateTime",
    "Guid",
    "IgnoreFlowIfNullOrEmpty",
    "IIF",
    "InStr",
    "IsNull",
    "IsNullOrEmpty",
    "IsPresent",
    "IsString",
    "Item",
    "Join",
    "Left",
    "Mid",
    "NormalizeDiacritics",
    "Not",
    "Now",
    "NumFromDate",
    "PCase",
    "RandomString",
    "Redact",
    "RemoveDuplicates",
    "Replace",
    "SelectUniqueValue",
    "SingleAppRoleAssignment",
    "Split",
    "StripSpaces",
    "Switch",
    "ToLower",
    "ToUpper",
    "Word",
    "NormalizeCountry",
    "NormalizePhone",
    "InTimeZone",
    "StartOfDay",
    "EndOfDay",
];

const TABLE: &[(&str, Imp)] = &[
    ("Append", append),
    ("AppRoleAssignmentsComplex", app_roles),
    ("BitAnd", bit_and),
    ("CBool", c_bool),
    ("CDate", c_date),
    ("Coalesce", coalesce),
    ("ConvertToBase64", to_base64),
    ("ConvertToUTF8Hex", to_utf8_hex),
    ("Count", count),
    ("CStr", c_str),
    ("DateAdd", date_add),
    ("DateDiff", date_diff),
    ("DateFromNum", date_from_num),
    ("FormatDateTime", format_date_time),
    ("Guid", guid),
    ("IgnoreFlowIfNullOrEmpty", ignore_flow),
    ("InStr", in_str),
    ("IsNull", is_null),
    ("IsNullOrEmpty", is_null_or_empty),
    ("IsPresent", is_present),
    ("IsString", is_string),
    ("Item", item),
    ("Join", join),
    ("Left", left),
    ("Mid", mid),
    ("NormalizeDiacritics", normalize_diacritics),
    ("Not", not),
    ("Now", now),
    ("NumFromDate", num_from_date),
    ("PCase", p_case),
    ("RandomString", random_string),
    ("Redact", redact),
    ("RemoveDuplicates", remove_duplicates),
    ("Replace", replace),
    ("SelectUniqueValue", select_unique_value),
    ("SingleAppRoleAssignment", single_app_role),
    ("Split", split),
    ("StripSpaces", strip_spaces),
    ("ToLower", to_lower),
    ("ToUpper", to_upper),
    ("Word", word),
    ("NormalizeCountry", normalize_country),
    ("NormalizePhone", normalize_phone),
    ("InTimeZone", in_time_zone),
    ("StartOfDay", start_of_day),
    ("EndOfDay", end_of_day),
    // What the IIF and Switch macros expand to (see `macros`).
    (crate::macros::IIF_TEST, iif_test),
    (crate::macros::SWITCH_MATCH, switch_match),
    // What Entra's comparisons and attribute reads become (see `entra`).
    ("__eq", entra_eq),
    ("__ne", entra_ne),
    ("__null", null_if_empty),
];

/// A library function by name.
pub(crate) fn lookup(name: &str) -> Option<(&'static str, Imp)> {
    TABLE.iter().find(|(n, _)| *n == name).copied()
}

/// Functions that answer about a value rather than transform it: a redacted
/// argument does not make their (boolean or numeric) answer secret.
const PREDICATES: &[&str] = &[
    "IsNull",
    "IsNullOrEmpty",
    "IsPresent",
    "IsString",
    "Count",
    "CBool",
    "InStr",
    "BitAnd",
    "Not",
    crate::macros::IIF_TEST,
    crate::macros::SWITCH_MATCH,
    "__eq",
    "__ne",
];

/// Calls a library function with the markers' rules (see `markers`): an ignore-flow
/// argument makes the result ignore-flow; candidates are refused (SelectUniqueValue
/// must be the whole expression); redacted arguments are computed on as text and
/// make a text result redacted.
pub(crate) fn invoke(name: &str, imp: Imp, args: &[Value]) -> Result<Value, String> {
    let mut redacted = false;
    for a in args {
        match markers::marker(a) {
            None => {}
            Some(Marker::IgnoreFlow) => return Ok(markers::ignore_flow()),
            Some(Marker::Candidates(_)) => {
                return Err(
                    "SelectUniqueValue must be the whole expression; it cannot be an argument".into(),
                );
            }
            Some(Marker::Redacted(_)) => redacted = true,
        }
        // A list may hold redacted items (`Split(Redact(x), ",")`): as secret as the value.
        if let Value::List(items) = a
            && items
                .iter()
                .any(|i| matches!(markers::marker(i), Some(Marker::Redacted(_))))
        {
            redacted = true;
        }
    }
    if !redacted {
        return imp(args).map_err(limits::brief);
    }
    let unwrap = |a: &Value| match markers::marker(a) {
        Some(Marker::Redacted(t)) => text(t),
        _ => a.clone(),
    };
    let plain: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::List(items) => list(items.iter().map(unwrap).collect()),
            other => unwrap(other),
        })
        .collect();
    // The error would quote the secret: say only that it failed.
    let result = imp(&plain).map_err(|_| format!("{name} failed on a redacted value (details withheld)"))?;
    if PREDICATES.contains(&name) {
        return Ok(result);
    }
    Ok(redact_value(result))
}

/// A result computed from a secret stays secret (text, and each text of a list).
fn redact_value(v: Value) -> Value {
    match v {
        Value::String(s) => markers::redacted(s.as_str().to_owned()),
        Value::List(items) => list(items.iter().cloned().map(redact_value).collect()),
        other => other,
    }
}

/// Adds the library to a root context.
pub fn register(ctx: &mut Context<'static, 'static>) -> Result<(), String> {
    for &(name, imp) in TABLE {
        ctx.add_function(
            name,
            move |Arguments(args): Arguments| -> Result<Value, ExecutionError> {
                invoke(name, imp, &args).map_err(|e| ExecutionError::function_error(name, e))
            },
        )
        .map_err(|e| format!("cannot register {name}: {e:?}"))?;
    }
    Ok(())
}

// ---- argument helpers ----

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Duration(_) => "duration",
        Value::Timestamp(_) => "timestamp",
        Value::Null => "null",
        _ => "object",
    }
}

fn arity(args: &[Value], min: usize, max: usize) -> Result<(), String> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!("takes {want} arguments, got {}", args.len()));
    }
    Ok(())
}

fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Null)
}

/// A string argument; null gives `None`.
fn opt_str(args: &[Value], i: usize) -> Result<Option<&str>, String> {
    match arg(args, i) {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_str())),
        other => Err(format!(
            "argument {} must be a string, got {}",
            i + 1,
            type_name(other)
        )),
    }
}

fn req_str(args: &[Value], i: usize) -> Result<&str, String> {
    opt_str(args, i)?.ok_or_else(|| format!("argument {} must be a string, got null", i + 1))
}

fn req_int(args: &[Value], i: usize) -> Result<i64, String> {
    match arg(args, i) {
        Value::Int(n) => Ok(*n),
        Value::UInt(n) => i64::try_from(*n).map_err(|_| format!("argument {} is too large", i + 1)),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("argument {} must be a number, got {s:?}", i + 1)),
        other => Err(format!(
            "argument {} must be an int, got {}",
            i + 1,
            type_name(other)
        )),
    }
}

fn opt_int(args: &[Value], i: usize, default: i64) -> Result<i64, String> {
    match arg(args, i) {
        Value::Null => Ok(default),
        _ => req_int(args, i),
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::String(Arc::new(s.into()))
}

fn list(items: Vec<Value>) -> Value {
    Value::List(Arc::new(items))
}

/// CStr semantics: the text form of a scalar; `None` for null.
pub(crate) fn as_text(v: &Value) -> Result<Option<String>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str().to_owned(),
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        // As .NET (and so Entra) writes them.
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Timestamp(t) => dates::entra_text(t),
        other => match markers::marker(other) {
            Some(Marker::Redacted(t)) => t.to_owned(),
            _ => return Err(format!("cannot turn a {} into text", type_name(other))),
        },
    }))
}

/// The text of a scalar without copying a string; `None` for null.
pub(crate) fn text_of(v: &Value) -> Result<Option<std::borrow::Cow<'_, str>>, String> {
    match v {
        Value::String(s) => Ok(Some(std::borrow::Cow::Borrowed(s.as_str()))),
        other => Ok(as_text(other)?.map(std::borrow::Cow::Owned)),
    }
}

/// Null, an empty string, or an empty list or map.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Opaque(_) => matches!(markers::marker(v), Some(Marker::IgnoreFlow)),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.map.is_empty(),
        _ => false,
    }
}

/// The items of a list argument, or the one scalar as a list; null is empty.
fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Null => Vec::new(),
        Value::List(l) => l.to_vec(),
        other => vec![other.clone()],
    }
}

// ---- the functions ----

fn append(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    let source = opt_str(a, 0)?.unwrap_or("");
    let suffix = opt_str(a, 1)?.unwrap_or("");
    Ok(text(format!("{source}{suffix}")))
}

fn bit_and(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    Ok(Value::Int(req_int(a, 0)? & req_int(a, 1)?))
}

fn c_bool(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Bool(match &a[0] {
        Value::Bool(b) => *b,
        Value::Int(n) => *n != 0,
        Value::UInt(n) => *n != 0,
        Value::Float(f) => *f != 0.0,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" => true,
            "false" | "no" | "n" | "" => false,
            n => n
                .parse::<f64>()
                .map(|f| f != 0.0)
                .map_err(|_| format!("{s:?} is not a boolean"))?,
        },
        other => return Err(format!("cannot turn a {} into a boolean", type_name(other))),
    }))
}

fn c_date(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    if a[0] == Value::Null {
        return Ok(Value::Null);
    }
    Ok(Value::Timestamp(dates::parse(&a[0])?))
}

fn coalesce(a: &[Value]) -> Fr {
    arity(a, 1, usize::MAX)?;
    Ok(a.iter().find(|v| !is_empty(v)).cloned().unwrap_or(Value::Null))
}

fn to_base64(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    let s = req_str(a, 0)?;
    // Entra encodes the UTF-16LE form, as Windows does.
    let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Ok(text(base64::engine::general_purpose::STANDARD.encode(bytes)))
}

fn to_utf8_hex(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    let s = req_str(a, 0)?;
    Ok(text(s.bytes().map(|b| format!("{b:02X}")).collect::<String>()))
}

fn count(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Int(match &a[0] {
        Value::Null => 0,
        Value::List(l) => l.len() as i64,
        Value::Map(m) => m.map.len() as i64,
        _ => 1,
    }))
}

fn c_str(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(as_text(&a[0])?.map(text).unwrap_or(Value::Null))
}

fn date_add(a: &[Value]) -> Fr {
    arity(a, 3, 3)?;
    let interval = req_str(a, 0)?;
    let n = req_int(a, 1)?;
    let date = dates::parse(&a[2]).map_err(|e| format!("argument 3: {e}"))?;
    Ok(Value::Timestamp(dates::add(interval, n, date)?))
}

fn date_diff(a: &[Value]) -> Fr {
    arity(a, 3, 3)?;
    let interval = req_str(a, 0)?;
    let from = dates::parse(&a[1]).map_err(|e| format!("argument 2: {e}"))?;
    let to = dates::parse(&a[2]).map_err(|e| format!("argument 3: {e}"))?;
    Ok(Value::Int(dates::diff(interval, from, to)?))
}

fn date_from_num(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Timestamp(dates::from_filetime(req_int(a, 0)?)?))
}

fn num_from_date(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    if a[0] == Value::Null {
        return Ok(Value::Null);
    }
    let date = dates::parse(&a[0])?;
    Ok(Value::Int(dates::to_filetime(date)?))
}

fn format_date_time(a: &[Value]) -> Fr {
    // Entra: FormatDateTime(source, [dateTimeStyles], inputFormat, outputFormat); the
    // styles' whitespace and round-trip behaviour is what the parser does anyway.
    arity(a, 3, 4)?;
    let (input, output) = if a.len() == 4 { (2, 3) } else { (1, 2) };
    if is_empty(&a[0]) {
        return Ok(Value::Null);
    }
    let date = match (&a[0], opt_str(a, input)?) {
        (Value::String(s), Some(fmt)) if !fmt.is_empty() => dates::parse_with_format(s, fmt)?,
        (v, _) => dates::parse(v)?,
    };
    Ok(text(dates::format(&date, req_str(a, output)?)?))
}

fn guid(a: &[Value]) -> Fr {
    arity(a, 0, 0)?;
    let (hi, lo) = (next_random(), next_random());
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(text(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}

fn ignore_flow(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(if is_empty(&a[0]) {
        markers::ignore_flow()
    } else {
        a[0].clone()
    })
}

/// What the IIF macro tests its condition with: true and false as they are, null as
/// false (a comparison with a missing attribute fails, as in Entra), "True"/"False".
fn iif_test(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    match &a[0] {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::Null => Ok(Value::Bool(false)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(Value::Bool(false)),
        other => Err(format!(
            "IIF's condition must be true or false, got {}",
            type_name(other)
        )),
    }
}

fn in_str(a: &[Value]) -> Fr {
    // InStr(value, find, [start], [compareType]) -> 1-based position, 0 when absent.
    // compareType: vbTextCompare (or 1) ignores case; vbBinaryCompare (or 0) does not.
    arity(a, 2, 4)?;
    let Some(value) = opt_str(a, 0)? else {
        return Ok(Value::Int(0));
    };
    let find = req_str(a, 1)?;
    let start = opt_int(a, 2, 1)?;
    if start < 1 {
        return Err("argument 3 (start) counts from 1".into());
    }
    let text_compare = match arg(a, 3) {
        Value::Null => false,
        Value::Int(1) => true,
        Value::Int(0) => false,
        Value::String(c) if c.eq_ignore_ascii_case("vbTextCompare") || c.eq_ignore_ascii_case("text") => true,
        Value::String(c) if c.eq_ignore_ascii_case("vbBinaryCompare") || c.eq_ignore_ascii_case("binary") => {
            false
        }
        other => {
            return Err(format!(
                "argument 4 (compareType) must be vbTextCompare or vbBinaryCompare, got {}",
                as_text(other)?.unwrap_or_default()
            ));
        }
    };
    let chars: Vec<char> = value.chars().collect();
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX).min(chars.len());
    let hay: String = chars[skip..].iter().collect();
    let found = if text_compare {
        // Compared letter by letter in lower case, so positions stay in characters.
        let lower: Vec<char> = hay.chars().flat_map(char::to_lowercase).collect();
        let needle: Vec<char> = find.chars().flat_map(char::to_lowercase).collect();
        (lower.len() >= needle.len())
            .then(|| (0..=lower.len() - needle.len()).find(|i| lower[*i..*i + needle.len()] == needle[..]))
            .flatten()
            .map(|i| hay.char_indices().nth(i).map_or(hay.len(), |(b, _)| b))
    } else {
        hay.find(find)
    };
    Ok(Value::Int(match found {
        Some(byte) => (hay[..byte].chars().count() + skip + 1) as i64,
        None => 0,
    }))
}

fn is_null(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Bool(a[0] == Value::Null))
}

fn is_null_or_empty(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Bool(is_empty(&a[0])))
}

fn is_present(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Bool(!is_empty(&a[0])))
}

fn is_string(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(Value::Bool(matches!(a[0], Value::String(_))))
}

fn item(a: &[Value]) -> Fr {
    // Item(attribute, index): 1-based, as Entra ("index 0 shouldn't be used").
    arity(a, 2, 2)?;
    let index = req_int(a, 1)?;
    if index < 1 {
        return Err(format!("argument 2 (index) counts from 1, got {index}"));
    }
    match &a[0] {
        Value::Null => Ok(Value::Null),
        Value::List(l) => Ok(usize::try_from(index - 1)
            .ok()
            .and_then(|i| l.get(i))
            .cloned()
            .unwrap_or(Value::Null)),
        // A single value is a list of one.
        other if index == 1 => Ok(other.clone()),
        _ => Ok(Value::Null),
    }
}

fn join(a: &[Value]) -> Fr {
    // Join(separator, source1, source2, ...): values of multi-valued sources each
    // count; null and empty sources are left out (as Entra: Join(", ", "", "Doe", "John")
    // is "Doe, John").
    arity(a, 2, usize::MAX)?;
    let sep = opt_str(a, 0)?.unwrap_or("");
    let mut parts = Vec::new();
    for v in &a[1..] {
        for item in items(v) {
            if let Some(t) = as_text(&item)?.filter(|t| !t.is_empty()) {
                parts.push(t);
            }
        }
    }
    Ok(text(parts.join(sep)))
}

fn left(a: &[Value]) -> Fr {
    // Entra: null gives an empty string, a negative count the whole string.
    arity(a, 2, 2)?;
    let s = opt_str(a, 0)?.unwrap_or("");
    let n = req_int(a, 1)?;
    if n < 0 {
        return Ok(text(s));
    }
    Ok(text(
        s.chars()
            .take(usize::try_from(n).unwrap_or(usize::MAX))
            .collect::<String>(),
    ))
}

fn mid(a: &[Value]) -> Fr {
    // Mid(source, start (1-based), length); a length past the end stops at the end.
    arity(a, 3, 3)?;
    let Some(s) = opt_str(a, 0)? else {
        return Ok(Value::Null);
    };
    let start = req_int(a, 1)?;
    let len = req_int(a, 2)?;
    if start < 1 || len < 0 {
        return Err("start counts from 1 and length must not be negative".into());
    }
    Ok(text(
        s.chars()
            .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
            .take(usize::try_from(len).unwrap_or(usize::MAX))
            .collect::<String>(),
    ))
}

/// Letters without diacritics, and the usual transliterations for letters that have none.
pub(crate) fn strip_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            // Microsoft's table: ø and Ø are oe and OE.
            'ø' => out.push_str("oe"),
            'Ø' => out.push_str("OE"),
            'đ' | 'ð' => out.push('d'),
            'Đ' | 'Ð' => out.push('D'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("Th"),
            'ı' => out.push('i'),
            c if c.is_ascii() => out.push(c),
            _ => out.extend(std::iter::once(c).nfd().filter(|c| !is_combining_mark(*c))),
        }
    }
    out
}

fn normalize_diacritics(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(opt_str(a, 0)?
        .map(|s| text(strip_diacritics(s)))
        .unwrap_or(Value::Null))
}

fn not(a: &[Value]) -> Fr {
    // Entra: True (or "True") gives False; anything else gives True.
    arity(a, 1, 1)?;
    Ok(Value::Bool(!match &a[0] {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }))
}

fn now(a: &[Value]) -> Fr {
    arity(a, 0, 0)?;
    Ok(Value::Timestamp(dates::from_millis(NOW.with(Cell::get))?))
}

fn p_case(a: &[Value]) -> Fr {
    // PCase(source, [wordSeparators]): without separators, a word ends at any space,
    // control, format, punctuation or symbol character (as .NET's ToTitleCase); the
    // rest of each word is lower case.
    arity(a, 1, 2)?;
    let Some(s) = opt_str(a, 0)? else {
        return Ok(Value::Null);
    };
    let given = opt_str(a, 1)?;
    let separates = |c: char| match given {
        Some(set) => set.contains(c),
        None => !c.is_alphanumeric() && !is_combining_mark(c),
    };
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if separates(c) {
            at_start = true;
            out.push(c);
        } else if at_start {
            out.extend(c.to_uppercase());
            at_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    Ok(text(out))
}

fn random_string(a: &[Value]) -> Fr {
    // RandomString(length, minNumbers, minSpecial, minCapital, minLower, [charactersToAvoid])
    arity(a, 5, 6)?;
    let length = req_int(a, 0)?;
    let mins = [req_int(a, 1)?, req_int(a, 2)?, req_int(a, 3)?, req_int(a, 4)?];
    if !(1..=256).contains(&length) || mins.iter().any(|m| !(0..=256).contains(m)) {
        return Err("length must be 1..256 and each minimum 0..256".into());
    }
    if mins.iter().sum::<i64>() > length {
        return Err("the minimums add up to more than the length".into());
    }
    let avoid = opt_str(a, 5)?.unwrap_or("");
    let pick = |set: &str| -> Vec<char> { set.chars().filter(|c| !avoid.contains(*c)).collect() };
    let sets = [
        pick("0123456789"),
        pick("!#$%&*+-=?@^_"),
        pick("ABCDEFGHJKLMNPQRSTUVWXYZ"),
        pick("abcdefghijkmnopqrstuvwxyz"),
    ];
    if sets.iter().zip(mins).any(|(s, m)| s.is_empty() && m > 0) {
        return Err("charactersToAvoid removes every character of a required kind".into());
    }
    let all: Vec<char> = sets.concat();
    if all.is_empty() {
        return Err("charactersToAvoid removes every character".into());
    }
    let draw = |set: &[char]| set[(next_random() % set.len() as u64) as usize];
    let mut out: Vec<char> = Vec::with_capacity(length as usize);
    for (set, min) in sets.iter().zip(mins) {
        for _ in 0..min {
            out.push(draw(set));
        }
    }
    while out.len() < length as usize {
        out.push(draw(&all));
    }
    for i in (1..out.len()).rev() {
        out.swap(i, (next_random() % (i as u64 + 1)) as usize);
    }
    Ok(text(out.into_iter().collect::<String>()))
}

fn redact(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(match as_text(&a[0])? {
        Some(t) => markers::redacted(t),
        None => Value::Null,
    })
}

fn remove_duplicates(a: &[Value]) -> Fr {
    // Linear: each value is kept the first time its text (and kind) is seen.
    arity(a, 1, 1)?;
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Value> = Vec::new();
    for v in items(&a[0]) {
        let key = (std::mem::discriminant(&v), as_text(&v)?);
        if seen.insert(key) {
            out.push(v);
        }
    }
    Ok(list(out))
}

fn replace(a: &[Value]) -> Fr {
    match a.len() {
        // Replace(source, oldValue, replacementValue): plain text.
        3 => {
            let Some(source) = opt_str(a, 0)? else {
                return Ok(Value::Null);
            };
            let old = req_str(a, 1)?;
            if old.is_empty() {
                return Err("argument 2 (oldValue) must not be empty".into());
            }
            Ok(text(source.replace(old, opt_str(a, 2)?.unwrap_or(""))))
        }
        // Entra's form: Replace(source, oldValue, regexPattern, regexGroupName,
        // replacementValue, replacementAttributeName, template); unused parts are null.
        5..=7 => entra_replace(a),
        n => Err(format!(
            "takes 3 arguments (plain) or 5 to 7 (Entra's regex form), got {n}"
        )),
    }
}

/// Replace's Entra form, case by case as Entra documents it.
fn entra_replace(a: &[Value]) -> Fr {
    let source = opt_str(a, 0)?;
    let old = opt_str(a, 1)?.filter(|o| !o.is_empty());
    let pattern = opt_str(a, 2)?;
    let group = opt_str(a, 3)?.filter(|g| !g.is_empty());
    let replacement = opt_str(a, 4)?;
    let replacement_attribute = opt_str(a, 5)?;
    let template = opt_str(a, 6)?;
    // oldValue and template: the source goes into the template where oldValue stands.
    if let (Some(old), Some(template)) = (old, template) {
        return Ok(text(template.replace(old, source.unwrap_or(""))));
    }
    // oldValue and replacementValue: plain replacement in the source.
    if let Some(old) = old {
        let Some(source) = source else {
            return Ok(Value::Null);
        };
        return Ok(text(source.replace(old, replacement.unwrap_or(""))));
    }
    let Some(pattern) = pattern else {
        return Err("give oldValue (argument 2) or regexPattern (argument 3)".into());
    };
    let re = regex(pattern)?;
    let group_known = |g: &str| -> Result<(), String> {
        if re.capture_names().flatten().any(|n| n == g) {
            Ok(())
        } else {
            Err(format!("the pattern has no group named {g:?}"))
        }
    };
    // regexPattern, regexGroupName and replacementAttributeName: the source when it has a
    // value, else the group's match in the replacement attribute.
    if let (Some(group), None) = (group, replacement)
        && replacement_attribute.is_some()
    {
        group_known(group)?;
        if let Some(s) = source.filter(|s| !s.is_empty()) {
            return Ok(text(s));
        }
        let from = replacement_attribute.unwrap_or("");
        return Ok(re
            .captures(from)
            .and_then(|c| c.name(group).map(|m| text(m.as_str())))
            .unwrap_or(Value::Null));
    }
    let Some(source) = source else {
        return Ok(Value::Null);
    };
    let replacement = replacement.unwrap_or("");
    match group {
        // regexPattern and replacementValue: `${name}` and `$1` refer to the match's groups.
        None => Ok(text(re.replace_all(source, replacement).into_owned())),
        // regexPattern, regexGroupName and replacementValue: the group's text is replaced.
        Some(group) => {
            group_known(group)?;
            let mut out = String::with_capacity(source.len());
            let mut last = 0;
            for caps in re.captures_iter(source) {
                if let Some(m) = caps.name(group) {
                    out.push_str(&source[last..m.start()]);
                    out.push_str(replacement);
                    last = m.end();
                }
            }
            out.push_str(&source[last..]);
            Ok(text(out))
        }
    }
}

fn select_unique_value(a: &[Value]) -> Fr {
    arity(a, 1, usize::MAX)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for v in a {
        for item in items(v) {
            if let Some(t) = as_text(&item)?.filter(|t| !t.is_empty())
                && seen.insert(t.clone())
            {
                out.push(t);
            }
        }
    }
    Ok(markers::candidates(out))
}

/// Entra's `a = b`: compared as text, NULL as `""` (as Switch matches a NULL source
/// against the `""` key).
fn entra_eq(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    Ok(Value::Bool(
        as_text(&a[0])?.unwrap_or_default() == as_text(&a[1])?.unwrap_or_default(),
    ))
}

/// Entra's `a <> b`: the opposite of `a = b`.
fn entra_ne(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    Ok(Value::Bool(
        as_text(&a[0])?.unwrap_or_default() != as_text(&a[1])?.unwrap_or_default(),
    ))
}

/// An empty field as Entra sees an absent attribute: NULL.
fn null_if_empty(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(if is_empty(&a[0]) {
        Value::Null
    } else {
        a[0].clone()
    })
}

/// AppRoleAssignmentsComplex([appRoleAssignments]): every app assignment the rules
/// gave the account in this destination (Entra: the user's app roles), as a list.
fn app_roles(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(list(items(&a[0]).into_iter().filter(|v| !is_empty(v)).collect()))
}

/// SingleAppRoleAssignment([appRoleAssignments]): the one app assignment, as text;
/// null when there is none. Entra does not support several: neither does Tenure.
fn single_app_role(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    let roles: Vec<Value> = items(&a[0]).into_iter().filter(|v| !is_empty(v)).collect();
    match roles.len() {
        0 => Ok(Value::Null),
        1 => Ok(roles.into_iter().next().unwrap_or(Value::Null)),
        n => Err(format!(
            "the account has {n} app assignments; SingleAppRoleAssignment takes one (use \
                AppRoleAssignmentsComplex)"
        )),
    }
}

fn split(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    let Some(s) = opt_str(a, 0)? else {
        return Ok(list(Vec::new()));
    };
    let delim = req_str(a, 1)?;
    if delim.is_empty() {
        return Err("argument 2 (delimiter) must not be empty".into());
    }
    Ok(list(s.split(delim).map(text).collect()))
}

fn strip_spaces(a: &[Value]) -> Fr {
    arity(a, 1, 1)?;
    Ok(opt_str(a, 0)?
        .map(|s| text(s.chars().filter(|c| *c != ' ').collect::<String>()))
        .unwrap_or(Value::Null))
}

/// What the Switch macro compares its source and each key with: as text, case-
/// sensitive, a null source matching the `""` key (as Entra).
fn switch_match(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    let source = as_text(&a[0])?.unwrap_or_default();
    let key = as_text(&a[1])?.unwrap_or_default();
    Ok(Value::Bool(source == key))
}

fn to_lower(a: &[Value]) -> Fr {
    arity(a, 1, 2)?;
    Ok(opt_str(a, 0)?
        .map(|s| text(s.to_lowercase()))
        .unwrap_or(Value::Null))
}

fn to_upper(a: &[Value]) -> Fr {
    arity(a, 1, 2)?;
    Ok(opt_str(a, 0)?
        .map(|s| text(s.to_uppercase()))
        .unwrap_or(Value::Null))
}

fn word(a: &[Value]) -> Fr {
    // Word(source, wordNumber (1-based), delimiters); Entra gives an empty string for a
    // null source, a number below 1, or too few words.
    arity(a, 3, 3)?;
    let s = opt_str(a, 0)?.unwrap_or("");
    let n = req_int(a, 1)?;
    let delims = req_str(a, 2)?;
    if n < 1 {
        return Ok(text(""));
    }
    Ok(text(
        s.split(|c| delims.contains(c))
            .filter(|w| !w.is_empty())
            .nth(usize::try_from(n - 1).unwrap_or(usize::MAX))
            .unwrap_or(""),
    ))
}

fn normalize_country(a: &[Value]) -> Fr {
    // NormalizeCountry(value, [format: "alpha2" (default) | "alpha3" | "name" | "numeric"])
    arity(a, 1, 2)?;
    let Some(s) = opt_str(a, 0)? else {
        return Ok(Value::Null);
    };
    let s = s.trim();
    // Names and aliases are matched without spaces, punctuation, case or diacritics.
    let key: String = strip_diacritics(s)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let without_the = key
        .strip_prefix("The")
        .or_else(|| key.strip_prefix("the"))
        .unwrap_or(&key);
    let country = s
        .parse::<celes::Country>()
        .or_else(|_| celes::Country::from_name(s))
        .or_else(|_| celes::Country::from_name(&key))
        .or_else(|_| celes::Country::from_alias(&key))
        .or_else(|_| celes::Country::from_alias(without_the))
        .or_else(|_| celes::Country::from_name(format!("The{without_the}")))
        .map_err(|_| format!("{s:?} is not a known country name or ISO 3166 code"))?;
    Ok(text(match opt_str(a, 1)?.unwrap_or("alpha2") {
        "alpha2" => country.alpha2.to_string(),
        "alpha3" => country.alpha3.to_string(),
        "numeric" => country.code.to_string(),
        "name" => country.long_name.to_string(),
        other => {
            return Err(format!(
                "unknown format {other:?}: use alpha2, alpha3, numeric or name"
            ));
        }
    }))
}

fn normalize_phone(a: &[Value]) -> Fr {
    // NormalizePhone(number, [defaultCountry alpha-2]) -> E.164
    arity(a, 1, 2)?;
    let Some(s) = opt_str(a, 0)? else {
        return Ok(Value::Null);
    };
    let region = match opt_str(a, 1)? {
        Some(r) => Some(
            r.to_ascii_uppercase()
                .parse::<phonenumber::country::Id>()
                .map_err(|_| format!("{r:?} is not an ISO 3166 alpha-2 country for phone numbers"))?,
        ),
        None => None,
    };
    let number = phonenumber::parse(region, s).map_err(|e| format!("{s:?} is not a phone number: {e}"))?;
    if !phonenumber::is_valid(&number) {
        return Err(format!("{s:?} is not a valid phone number"));
    }
    Ok(text(number.format().mode(phonenumber::Mode::E164).to_string()))
}

fn in_time_zone(a: &[Value]) -> Fr {
    arity(a, 2, 2)?;
    let date = dates::parse(&a[0])?;
    Ok(Value::Timestamp(dates::in_zone(date, req_str(a, 1)?)?))
}

fn start_of_day(a: &[Value]) -> Fr {
    arity(a, 1, 2)?;
    Ok(Value::Timestamp(dates::day_bound(&a[0], opt_str(a, 1)?, false)?))
}

fn end_of_day(a: &[Value]) -> Fr {
    arity(a, 1, 2)?;
    Ok(Value::Timestamp(dates::day_bound(&a[0], opt_str(a, 1)?, true)?))
}
