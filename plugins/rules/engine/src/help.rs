//! What each library function does, for the console's expression help: a signature, one
//! line and an example with its result. A test evaluates every example and keeps the
//! published `schema/functions.json` current, so the help cannot drift from the library.

use serde::Serialize;

/// One function's help.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FunctionHelp {
    pub name: &'static str,
    pub signature: &'static str,
    pub summary: &'static str,
    /// A call to try, evaluated by the help's test.
    pub example: &'static str,
    /// What the example gives (`None`: it depends on the person or the clock).
    pub result: Option<&'static str>,
}

const fn f(
    name: &'static str,
    signature: &'static str,
    summary: &'static str,
    example: &'static str,
    result: Option<&'static str>,
) -> FunctionHelp {
    FunctionHelp {
        name,
        signature,
        summary,
        example,
        result,
    }
}

/// Every function of [`crate::functions::NAMES`], in the same order (one entry per call, kept
/// compact as the table it is).
#[rustfmt::skip]
pub const HELP: &[FunctionHelp] = &[
    f("Append", "Append(source, suffix)", "The source with the suffix added.",
        r#"Append("jose", "@acme.test")"#, Some("jose@acme.test")),
    f("AppRoleAssignmentsComplex", "AppRoleAssignmentsComplex(assignments)",
        "The account's app role assignments, each with its role (as Entra sends them to SCIM apps).",
        "AppRoleAssignmentsComplex(apps)", None),
    f("BitAnd", "BitAnd(value1, value2)", "The bitwise AND of two numbers.", "BitAnd(6, 3)", Some("2")),
    f("CBool", "CBool(expression)", "True when the expression is a true value.", r#"CBool("true")"#,
        Some("true")),
    f("CDate", "CDate(text)",
        "A date and time read from text (ISO 8601 and the usual forms); shown as Entra shows dates.",
        r#"CDate("2026-03-02T09:30:00Z")"#, Some("3/2/2026 9:30:00 AM")),
    f("Coalesce", "Coalesce(value1, value2, ...)", "The first value that is neither null nor empty.",
        r#"Coalesce(person.preferred_name, person.given_name)"#, Some("José")),
    f("ConvertToBase64", "ConvertToBase64(text)", "The text as Base64 of its UTF-16LE bytes, as Entra does.",
        r#"ConvertToBase64("Hi")"#, Some("SABpAA==")),
    f("ConvertToUTF8Hex", "ConvertToUTF8Hex(text)", "The text's UTF-8 bytes in hexadecimal.",
        r#"ConvertToUTF8Hex("Hi")"#, Some("4869")),
    f("Count", "Count(list)", "How many values a list holds.", r#"Count(["a", "b"])"#, Some("2")),
    f("CStr", "CStr(value)", "The value as text.", "CStr(42)", Some("42")),
    f("DateAdd", "DateAdd(interval, number, date)",
        "The date moved by a number of intervals (yyyy, q, m, d, ww, h, n, s).",
        r#"DateAdd("d", 7, "2026-03-02T00:00:00Z")"#, Some("3/9/2026 12:00:00 AM")),
    f("DateDiff", "DateDiff(interval, date1, date2)", "How many intervals from date1 to date2.",
        r#"DateDiff("d", "2026-03-01", "2026-03-08")"#, Some("7")),
    f("DateFromNum", "DateFromNum(filetime)", "A date from AD's FILETIME number (100 ns since 1601).",
        "DateFromNum(134167968000000000)", Some("3/1/2026 12:00:00 AM")),
    f("FormatDateTime", "FormatDateTime(date, input_format, output_format)",
        "A date rewritten from one .NET format to another.",
        r#"FormatDateTime("20260302", "yyyyMMdd", "yyyy-MM-dd")"#, Some("2026-03-02")),
    f("Guid", "Guid()", "A GUID, the same each time for the same person (never churns).", "Guid()", None),
    f("IgnoreFlowIfNullOrEmpty", "IgnoreFlowIfNullOrEmpty(value)",
        "The value, or nothing written at all when it is null or empty.",
        "IgnoreFlowIfNullOrEmpty(person.team)", None),
    f("IIF", "IIF(condition, if_true, if_false)", "One of two values; only the chosen one is evaluated.",
        r#"IIF(person.department == "Engineering", "eng", "other")"#, Some("eng")),
    f("InStr", "InStr(value, find, start?, compare?)", "The 1-based position of find in value (0: absent).",
        r#"InStr("hello", "l")"#, Some("3")),
    f("IsNull", "IsNull(value)", "True when the value is null.", "IsNull(person.custom.missing)",
        Some("true")),
    f("IsNullOrEmpty", "IsNullOrEmpty(value)", "True when the value is null or empty.",
        r#"IsNullOrEmpty("")"#, Some("true")),
    f("IsPresent", "IsPresent(value)", "True when the value is neither null nor empty.",
        "IsPresent(person.given_name)", Some("true")),
    f("IsString", "IsString(value)", "True when the value is text.", "IsString(42)", Some("false")),
    f("Item", "Item(list, index)", "The item at a 1-based index, as in Entra.", r#"Item(["a", "b"], 2)"#,
        Some("b")),
    f("Join", "Join(separator, value1, value2, ...)", "The values (lists flattened) joined by the separator.",
        r#"Join(" ", person.given_name, person.family_name)"#, Some("José Núñez")),
    f("Left", "Left(text, count)", "The first count characters.", r#"Left("Hello", 2)"#, Some("He")),
    f("Mid", "Mid(text, start, length)", "length characters from the 1-based position start.",
        r#"Mid("Hello", 2, 3)"#, Some("ell")),
    f("NormalizeDiacritics", "NormalizeDiacritics(text)", "The text with accents removed (é to e, ñ to n).",
        r#"NormalizeDiacritics("Núñez")"#, Some("Nunez")),
    f("Not", "Not(flag)", "The opposite of a true/false value.", "Not(true)", Some("false")),
    f("Now", "Now()", "The current date and time (UTC).", "Now()", None),
    f("NumFromDate", "NumFromDate(date)", "A date as AD's FILETIME number (accountExpires).",
        r#"NumFromDate("2026-03-01T00:00:00Z")"#, Some("134167968000000000")),
    f("PCase", "PCase(text)", "Each word capitalised.", r#"PCase("jose nunez")"#, Some("Jose Nunez")),
    f("RandomString",
        "RandomString(length, min_numbers, min_special, min_upper, min_lower, avoid?)",
        "Random text (an initial password), the same each time for the same person.",
        "RandomString(12, 2, 1, 1, 1)", None),
    f("Redact", "Redact(value)", "The value, shown as [redacted] in traces, audits and previews.",
        r#"Redact("secret")"#, Some("secret")),
    f("RemoveDuplicates", "RemoveDuplicates(list)", "The list without repeated values.",
        r#"RemoveDuplicates(["a", "b", "a"])"#, Some("[a, b]")),
    f("Replace", "Replace(source, find, replacement) or Entra's 7-argument form",
        "Plain replacement, or Entra's regex form with ${group} references.",
        r#"Replace("a.b.c", ".", "-")"#, Some("a-b-c")),
    f("SelectUniqueValue", "SelectUniqueValue(candidate1, candidate2, ...)",
        "The first candidate no other account holds (the host checks every listed destination).",
        r#"SelectUniqueValue("jose", "jose2")"#, None),
    f("SingleAppRoleAssignment", "SingleAppRoleAssignment(assignments)",
        "The account's one app role assignment (an error when it has several).",
        "SingleAppRoleAssignment(apps)", None),
    f("Split", "Split(text, delimiter)", "The text split into a list.", r#"Split("a,b", ",")"#,
        Some("[a, b]")),
    f("StripSpaces", "StripSpaces(text)", "The text without spaces.", r#"StripSpaces("Van der Berg")"#,
        Some("VanderBerg")),
    f("Switch", "Switch(source, default, key1, value1, key2, value2, ...)",
        "The value paired with the key equal to source, or the default.",
        r#"Switch("DE", "Other", "DE", "Germany", "FR", "France")"#, Some("Germany")),
    f("ToLower", "ToLower(text)", "The text in lower case.", r#"ToLower("José")"#, Some("josé")),
    f("ToUpper", "ToUpper(text)", "The text in upper case.", r#"ToUpper("José")"#, Some("JOSÉ")),
    f("Word", "Word(text, number, delimiters)", "The number-th word, words split at any of the delimiters.",
        r#"Word("The quick brown fox", 3, " ")"#, Some("brown")),
    f("NormalizeCountry", "NormalizeCountry(country)",
        "The ISO 3166 alpha-2 code from a name, alias or alpha-3/numeric code.",
        r#"NormalizeCountry("Germany")"#, Some("DE")),
    f("NormalizePhone", "NormalizePhone(number, default_region)", "The number in E.164.",
        r#"NormalizePhone("(415) 555-2671", "US")"#, Some("+14155552671")),
    f("InTimeZone", "InTimeZone(date, zone)",
        "The same instant, carried in an IANA time zone (shown in UTC).",
        r#"InTimeZone("2026-03-02T12:00:00Z", "Europe/Berlin")"#, Some("3/2/2026 12:00:00 PM")),
    f("StartOfDay", "StartOfDay(date, zone)", "The first instant of the date in an IANA time zone.",
        r#"StartOfDay("2026-03-02", "Australia/Sydney")"#, Some("3/1/2026 1:00:00 PM")),
    f("EndOfDay", "EndOfDay(date, zone)",
        "The last instant of the date in an IANA time zone (a leaving day).",
        r#"EndOfDay("2026-03-02", "Australia/Sydney")"#, Some("3/2/2026 12:59:59 PM")),
];

/// The help as the console reads it (`schema/functions.json`).
pub fn help_json() -> String {
    serde_json::to_string_pretty(HELP).unwrap_or_default() + "\n"
}
