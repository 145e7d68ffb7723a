//! Every library function and operator, with good and bad input. Bad input must
//! give an error (never a panic) that names the function.

use tenure_rules_engine::{Attr, Person, evaluate_expression, functions};

/// 2026-03-01T12:00:00Z
const NOW: i64 = 1_772_366_400_000;

fn person() -> Person {
    Person {
        ids: vec![("hr".into(), "1001".into())],
        given_name: Some("José".into()),
        family_name: Some("Núñez".into()),
        emails: vec![("work".into(), "jose@example.com".into(), true)],
        phones: vec![("mobile".into(), "(415) 555-2671".into(), true)],
        title: Some("Senior Engineer".into()),
        department: Some("Engineering".into()),
        country: Some("Germany".into()),
        start_date: Some("2026-03-02".into()),
        employment_type: Some("contractor".into()),
        status: "pre-hire".into(),
        custom: vec![
            ("level".into(), Attr::Number(5)),
            ("cost_center".into(), Attr::Text("CC-42".into())),
            (
                "tags".into(),
                Attr::Many(vec!["a".into(), "b".into(), "a".into()]),
            ),
        ],
        ..Person::default()
    }
}

fn eval(src: &str) -> Attr {
    evaluate_expression(src, &person(), NOW).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn text(src: &str) -> String {
    match eval(src) {
        Attr::Text(t) => t,
        other => panic!("{src}: expected text, got {other:?}"),
    }
}

fn err(src: &str) -> String {
    match evaluate_expression(src, &person(), NOW) {
        Ok(v) => panic!("{src}: expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_listed_function_is_registered_and_tested_below() {
    let this_file = include_str!("functions.rs");
    for name in functions::NAMES {
        assert!(
            this_file.contains(&format!("\"{name}(")) || this_file.contains(&format!("{name}(")),
            "{name} has no test"
        );
        // Too many arguments (variadic ones: a map where text is needed) is an
        // error that names the function, never a panic.
        let call = match *name {
            // Expanded when compiled: their argument counts are checked there.
            "Coalesce" | "IIF" | "Switch" => continue,
            "Join" | "SelectUniqueValue" => format!("{name}(\"-\", {{\"a\": 1}})"),
            _ => format!("{name}(1, 2, 3, 4, 5, 6, 7, 8, 9)"),
        };
        let e = err(&call);
        assert!(e.contains(name), "{name}: {e}");
    }
}

#[test]
fn string_functions() {
    assert_eq!(text(r#"Append(person.given_name, "-x")"#), "José-x");
    assert_eq!(text(r#"Append(null, "x")"#), "x");
    assert_eq!(
        text(r#"ConvertToBase64("Hello world!")"#),
        "SABlAGwAbABvACAAdwBvAHIAbABkACEA"
    );
    assert_eq!(
        text(r#"ConvertToUTF8Hex("Hello world!")"#),
        "48656C6C6F20776F726C6421"
    );
    assert_eq!(text("CStr(person.custom.level)"), "5");
    assert_eq!(eval("CStr(null)"), Attr::Absent);
    assert_eq!(
        text(r#"Join(".", person.given_name, null, ["a", "b"])"#),
        "José.a.b"
    );
    assert_eq!(text(r#"Left("Engineering", 3)"#), "Eng");
    assert_eq!(text(r#"Left("ab", 10)"#), "ab");
    // Entra: a negative count gives the whole string, a null source an empty one.
    assert_eq!(text(r#"Left("ab", -1)"#), "ab");
    assert_eq!(text(r#"Left(null, 2)"#), "");
    assert_eq!(text(r#"Mid("Engineering", 2, 3)"#), "ngi");
    assert_eq!(text("NormalizeDiacritics(person.family_name)"), "Nunez");
    // Microsoft's table: ø is oe.
    assert_eq!(
        text(r#"NormalizeDiacritics("Søren Łukasz Straße")"#),
        "Soeren Lukasz Strasse"
    );
    // Without separators every punctuation mark ends a word (as .NET's ToTitleCase).
    assert_eq!(
        text(r#"PCase("mARY-ann o'neil (sECOND)")"#),
        "Mary-Ann O'Neil (Second)"
    );
    assert_eq!(text(r#"PCase("mary-ann", "-")"#), "Mary-Ann");
    assert_eq!(text(r#"StripSpaces(" a b  c ")"#), "abc");
    assert_eq!(text(r#"ToLower("ÄBC")"#), "äbc");
    assert_eq!(text(r#"ToUpper("abc", "en-US")"#), "ABC");
    assert_eq!(text(r#"Word("The quick brown fox", 3, " ")"#), "brown");
    // Entra: too few words, a number below 1 or a null source give an empty string.
    assert_eq!(text(r#"Word("a b", 5, " ")"#), "");
    assert_eq!(text(r#"Word("a b", 0, " ")"#), "");
    assert_eq!(text(r#"Word(null, 1, " ")"#), "");
    assert_eq!(eval(r#"InStr("The quick", "quick")"#), Attr::Number(5));
    assert_eq!(
        eval(r#"InStr("The quick", "QUICK", 1, "vbTextCompare")"#),
        Attr::Number(5)
    );
    assert_eq!(eval(r#"InStr("The quick", "QUICK", 1, 1)"#), Attr::Number(5));
    assert!(err(r#"InStr("a", "b", 1, "fuzzy")"#).contains("vbTextCompare"));
    assert_eq!(eval(r#"InStr("The quick", "QUICK")"#), Attr::Number(0));
    assert_eq!(eval(r#"InStr("abcabc", "b", 3)"#), Attr::Number(5));
    assert_eq!(
        eval(r#"Split("a,b,c", ",")"#),
        Attr::Many(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(text(r#"Redact("secret")"#), "secret");
    assert_eq!(
        text(r#"Join(", ", "", "Doe", "John")"#),
        "Doe, John",
        "empty sources are left out"
    );
}

#[test]
fn replace_plain_and_regex_modes() {
    assert_eq!(text(r#"Replace("a-b-c", "-", ".")"#), "a.b.c");
    // Entra's full form: oldValue.
    assert_eq!(text(r#"Replace("a-b", "-", null, null, "+", null, null)"#), "a+b");
    // Regex, whole match.
    assert_eq!(
        text(r#"Replace("+1 (415) 555", null, "[^0-9]", null, "", null, null)"#),
        "1415555"
    );
    // Regex, named group only.
    assert_eq!(
        text(r#"Replace("john@old.com", null, "@(?P<domain>.*)$", "domain", "new.com", null, null)"#),
        "john@new.com"
    );
    // Template: oldValue inside the template is replaced by the source.
    assert_eq!(
        text(r#"Replace("1001", "{id}", null, null, null, null, "emp-{id}")"#),
        "emp-1001"
    );
    // Regex with `${group}` references in the replacement.
    assert_eq!(
        text(concat!(
            r#"Replace("+91 9998887777", null, "\\+(?<isd>\\d* )(?<phone>\\d{10})", null, "#,
            r#""${phone}", null, null)"#
        )),
        "9998887777"
    );
    // replacementAttributeName: the source when it has a value, else the group's match in it.
    assert_eq!(
        text(r#"Replace("", null, "(?<cc>CC-\\d+)", "cc", null, person.custom.cost_center, null)"#),
        "CC-42"
    );
    assert_eq!(
        text(r#"Replace("mine", null, "(?<cc>CC-\\d+)", "cc", null, person.custom.cost_center, null)"#),
        "mine"
    );
    assert!(err(r#"Replace("a", null, "(", null, "x", null, null)"#).contains("invalid regex"));
    assert!(err(r#"Replace("a", null, "(?P<x>a)", "y", "b", null, null)"#).contains("no group named"));
    assert!(err(r#"Replace("a", "", "b")"#).contains("must not be empty"));
    assert!(err(r#"Replace("a", "b")"#).contains("Replace"));
}

#[test]
fn null_and_type_checks() {
    assert_eq!(eval("IsNull(null)"), Attr::Flag(true));
    assert_eq!(
        eval("IsNull(person.team)"),
        Attr::Flag(false),
        "unknown text fields are empty strings"
    );
    assert_eq!(eval("IsNullOrEmpty(person.team)"), Attr::Flag(true));
    assert_eq!(eval("IsNull(person.title)"), Attr::Flag(false));
    assert_eq!(eval(r#"IsNullOrEmpty("")"#), Attr::Flag(true));
    assert_eq!(eval("IsNullOrEmpty([])"), Attr::Flag(true));
    assert_eq!(eval("IsPresent(person.title)"), Attr::Flag(true));
    assert_eq!(eval("IsPresent(person.team)"), Attr::Flag(false));
    assert_eq!(eval("IsString(person.title)"), Attr::Flag(true));
    assert_eq!(eval("IsString(person.custom.level)"), Attr::Flag(false));
    assert_eq!(
        text(r#"Coalesce(person.preferred_name, "", person.given_name)"#),
        "José"
    );
    assert_eq!(eval("Coalesce(null, null)"), Attr::Absent);
    assert!(err("Coalesce()").contains("Coalesce"));
    assert_eq!(
        text(r#"IIF(person.custom.level > 3, "senior", "junior")"#),
        "senior"
    );
    assert!(err(r#"IIF("yes", 1, 2)"#).contains("true or false"));
    // IIF evaluates only the branch it picks: the guard works on a missing attribute.
    assert_eq!(
        text(r#"IIF(IsPresent(person.custom.nothing), Left(person.custom.nothing.x, 1), "none")"#),
        "none"
    );
    assert_eq!(eval("Not(false)"), Attr::Flag(true));
    // Entra: "True" gives False, anything else True.
    assert_eq!(eval(r#"Not("True")"#), Attr::Flag(false));
    assert_eq!(eval(r#"Not("False")"#), Attr::Flag(true));
    assert_eq!(eval("Not(1)"), Attr::Flag(true));
    assert_eq!(eval(r#"CBool("true")"#), Attr::Flag(true));
    assert_eq!(eval("CBool(0)"), Attr::Flag(false));
    assert_eq!(eval(r#"CBool("1")"#), Attr::Flag(true));
    assert!(err(r#"CBool("maybe")"#).contains("not a boolean"));
    assert_eq!(eval("BitAnd(514, 2)"), Attr::Number(2));
    assert!(err(r#"BitAnd("x", 2)"#).contains("must be a number"));
    assert_eq!(text(r#"IgnoreFlowIfNullOrEmpty("x")"#), "x");
}

#[test]
fn lists() {
    assert_eq!(eval("Count(person.custom.tags)"), Attr::Number(3));
    assert_eq!(eval("Count(null)"), Attr::Number(0));
    assert_eq!(
        eval("RemoveDuplicates(person.custom.tags)"),
        Attr::Many(vec!["a".into(), "b".into()])
    );
    // Entra's Item counts from 1.
    assert_eq!(text("Item(person.custom.tags, 2)"), "b");
    assert_eq!(text("Item(person.custom.tags, 1)"), "a");
    assert_eq!(eval("Item(person.custom.tags, 9)"), Attr::Absent);
    assert!(err(r#"Item("x", 0)"#).contains("counts from 1"));
    assert_eq!(
        text(r#"Switch(person.department, "Other", "Sales", "S", "Engineering", "E")"#),
        "E"
    );
    assert_eq!(text(r#"Switch("HR", "Other", "Sales", "S")"#), "Other");
    // A null source matches the "" key, as in Entra; only the chosen value is evaluated.
    assert_eq!(
        text(r#"Switch(person.custom.nothing, "d", "", "empty", "x", Left(1/0, 1))"#),
        "empty"
    );
    assert!(err(r#"Switch("a", "b", "c")"#).contains("even number"));
    assert_eq!(
        eval(r#"SelectUniqueValue("a", ["b", "a"], null, "c")"#),
        Attr::Many(vec!["a".into(), "b".into(), "c".into()])
    );
    assert_eq!(
        eval(r#"AppRoleAssignmentsComplex(["Admin", "", "User"])"#),
        Attr::Many(vec!["Admin".into(), "User".into()])
    );
    assert_eq!(text(r#"SingleAppRoleAssignment(["Admin"])"#), "Admin");
    assert_eq!(eval("SingleAppRoleAssignment([])"), Attr::Absent);
    assert!(err(r#"SingleAppRoleAssignment(["a", "b"])"#).contains("AppRoleAssignmentsComplex"));
}

#[test]
fn dates_and_time_zones() {
    // Dates render as Entra renders them: UTC, M/d/yyyy h:mm:ss tt.
    assert_eq!(text(r#"CDate("2026-03-02")"#), "3/2/2026 12:00:00 AM");
    assert_eq!(text(r#"CDate("2012-03-16-07:00")"#), "3/16/2012 7:00:00 AM");
    assert_eq!(text(r#"CDate("3/16/2012 7:00:00 AM")"#), "3/16/2012 7:00:00 AM");
    assert_eq!(
        text(r#"DateAdd("d", 30, person.start_date)"#),
        "4/1/2026 12:00:00 AM"
    );
    assert_eq!(text(r#"DateAdd("m", 1, "2026-01-31")"#), "2/28/2026 12:00:00 AM");
    assert_eq!(
        text(r#"DateAdd("yyyy", -1, "2026-03-02T10:00:00Z")"#),
        "3/2/2025 10:00:00 AM"
    );
    assert!(err(r#"DateAdd("yyyy", 9223372036854775807, "2026-03-02")"#).contains("leaves the calendar"));
    assert_eq!(
        eval(r#"DateDiff("d", "2026-03-01", person.start_date)"#),
        Attr::Number(1)
    );
    assert_eq!(
        eval(r#"DateDiff("m", "2026-01-15", "2026-03-01")"#),
        Attr::Number(2)
    );
    assert_eq!(text("DateFromNum(134167968000000000)"), "3/1/2026 12:00:00 AM");
    assert_eq!(
        eval(r#"NumFromDate("2026-03-01")"#),
        Attr::Number(134_167_968_000_000_000)
    );
    assert!(err("DateFromNum(0)").contains("never"));
    assert!(err(r#"NumFromDate(DateAdd("yyyy", 40000, "2026-01-01"))"#).contains("outside"));
    assert_eq!(
        text(r#"FormatDateTime("20260301093000.0Z", "yyyyMMddHHmmss.fZ", "yyyy-MM-dd HH:mm")"#),
        "2026-03-01 09:30"
    );
    assert_eq!(
        text(r#"FormatDateTime(person.start_date, null, "", "dd/MM/yyyy")"#),
        "02/03/2026"
    );
    assert!(err(r#"FormatDateTime("xx", "yyyy", "yyyy")"#).contains("does not match"));
    // Letters that are not specifiers are literal, as in .NET; an unclosed quote is an error.
    assert_eq!(
        text(r#"FormatDateTime("2026-01-01", "", "yyyy 'Q' qq")"#),
        "2026 Q qq"
    );
    assert!(err(r#"FormatDateTime("2026-01-01", "", "yyyy 'Q")"#).contains("unclosed quote"));
    assert_eq!(text("Now()"), "3/1/2026 12:00:00 PM");
    // In a zone: the local time comes out through FormatDateTime (text is always UTC).
    assert_eq!(
        text(concat!(
            r#"FormatDateTime(InTimeZone("2026-03-01T12:00:00Z", "Australia/Sydney"), null, "#,
            r#""", "yyyy-MM-ddTHH:mm:sszzz")"#
        )),
        "2026-03-01T23:00:00+11:00"
    );
    // A termination dated 2026-03-31 in Sydney ends at Sydney's end of day, not UTC's.
    assert_eq!(
        text(concat!(
            r#"FormatDateTime(EndOfDay("2026-03-31", "Australia/Sydney"), null, "", "#,
            r#""yyyy-MM-ddTHH:mm:ss.fffzzz")"#
        )),
        "2026-03-31T23:59:59.999+11:00"
    );
    assert_eq!(
        text(r#"StartOfDay("2026-07-01", "America/Los_Angeles")"#),
        "7/1/2026 7:00:00 AM"
    );
    assert!(err(r#"EndOfDay("2026-03-31", "Mars/Olympus")"#).contains("IANA"));
    assert!(err(r#"CDate("next tuesday")"#).contains("not a date"));
    assert!(err(r#"DateAdd("fortnight", 1, "2026-01-01")"#).contains("unknown interval"));
    // CEL's own timestamp comparisons work on these values.
    assert_eq!(eval(r#"CDate(person.start_date) > Now()"#), Attr::Flag(true));
}

#[test]
fn normalization() {
    assert_eq!(text("NormalizeCountry(person.country)"), "DE");
    assert_eq!(text(r#"NormalizeCountry("DEU", "alpha2")"#), "DE");
    assert_eq!(text(r#"NormalizeCountry("de", "alpha3")"#), "DEU");
    assert_eq!(text(r#"NormalizeCountry("United Kingdom", "alpha2")"#), "GB");
    assert!(err(r#"NormalizeCountry("Atlantis")"#).contains("not a known country"));
    assert!(err(r#"NormalizeCountry("DE", "emoji")"#).contains("unknown format"));
    assert_eq!(text(r#"NormalizePhone(person.phone, "US")"#), "+14155552671");
    assert_eq!(text(r#"NormalizePhone("+49 30 901820")"#), "+4930901820");
    assert!(err(r#"NormalizePhone("12", "US")"#).contains("phone number"));
    assert!(err(r#"NormalizePhone("555", "XX")"#).contains("alpha-2"));
}

#[test]
fn random_values_are_well_formed_and_stable_per_person() {
    let g = text("Guid()");
    assert_eq!(g.len(), 36);
    assert_eq!(&g[14..15], "4");
    assert_eq!(
        g,
        text("Guid()"),
        "same person, same value: planning stays idempotent"
    );
    let mut other = person();
    other.ids = vec![("hr".into(), "2002".into())];
    assert_ne!(evaluate_expression("Guid()", &other, NOW).unwrap(), Attr::Text(g));
    let pw = text("RandomString(16, 2, 2, 2, 2)");
    assert_eq!(pw.chars().count(), 16);
    assert!(pw.chars().filter(char::is_ascii_digit).count() >= 2);
    assert!(pw.chars().filter(char::is_ascii_uppercase).count() >= 2);
    assert!(pw.chars().filter(char::is_ascii_lowercase).count() >= 2);
    assert!(err("RandomString(4, 3, 3, 0, 0)").contains("more than the length"));
    assert!(err(r#"RandomString(4, 1, 0, 0, 0, "0123456789")"#).contains("removes every"));
}

#[test]
fn cel_operators() {
    assert_eq!(
        eval(r#"person.department == "Engineering" && person.custom.level >= 5"#),
        Attr::Flag(true)
    );
    assert_eq!(
        eval(r#"person.department == "Sales" || !(person.custom.level < 3)"#),
        Attr::Flag(true)
    );
    assert_eq!(
        eval(r#"person.department in ["Sales", "Engineering"]"#),
        Attr::Flag(true)
    );
    assert_eq!(eval(r#"person.title.startsWith("Senior")"#), Attr::Flag(true));
    assert_eq!(eval(r#"person.title.endsWith("Engineer")"#), Attr::Flag(true));
    assert_eq!(eval(r#"person.title.contains("nior E")"#), Attr::Flag(true));
    assert_eq!(
        eval(r#"person.email.matches("^[a-z]+@example\\.com$")"#),
        Attr::Flag(true)
    );
    assert_eq!(eval(r#"person.team == """#), Attr::Flag(true));
    assert_eq!(eval(r#"person.team.startsWith("x")"#), Attr::Flag(false));
    assert_eq!(
        eval(r#"has(person.custom.level) && !has(person.custom.nothing)"#),
        Attr::Flag(true)
    );
    assert_eq!(
        eval(r#"timestamp("2026-03-02T00:00:00Z") > now"#),
        Attr::Flag(true)
    );
    assert_eq!(eval(r#"size(person.custom.tags)"#), Attr::Number(3));
    assert_eq!(eval(r#"person.custom.level * 2 + 1"#), Attr::Number(11));
    assert_eq!(
        text(r#"person.department == "Engineering" ? "eng" : "other""#),
        "eng"
    );
    // Errors: unknown function, bad regex, wrong types, missing key, division by zero.
    assert!(err("NoSuchFunction(1)").contains("NoSuchFunction"));
    assert!(
        err(r#"person.title.matches("(")"#)
            .to_lowercase()
            .contains("regex")
    );
    let e = err(r#"person.title > 3"#);
    assert!(e.contains("person.title > 3"), "{e}");
    assert!(err("person.custom.level.startsWith(\"x\")").contains("startsWith"));
    // A custom attribute the person does not have reads as null, as in Entra.
    assert_eq!(eval("person.custom.nothing"), Attr::Absent);
    assert_eq!(eval("IsNull(person.custom.nothing)"), Attr::Flag(true));
    assert!(err("1 / 0").to_lowercase().contains("division"));
    assert!(err("person.(").contains("line 1"));
}
