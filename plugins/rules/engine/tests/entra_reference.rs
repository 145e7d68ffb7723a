//! Conformance with Microsoft's "Reference for writing expressions for attribute
//! mappings in Microsoft Entra ID" (learn.microsoft.com, functions-for-customizing-
//! application-data, revision of 2024-08-06): every example on the page with the
//! output it documents, run as written (Entra's syntax) through Tenure's engine.
//! Where the page contradicts itself, the case says so and expects what the
//! expression really gives. `docs/rules/entra-conformance.md` is generated from this
//! table (`UPDATE_DOCS=1 cargo test -p tenure-rules-engine --test entra_reference`).

use tenure_rules_engine::{Attr, Person, RuleSet, entra, evaluate_entra};

/// 2021-07-02T15:33:38Z (the page's sample of Now()).
const NOW: i64 = 1_625_240_018_000;

#[derive(Clone, Copy)]
enum Input {
    Text(&'static str),
    Many(&'static [&'static str]),
}

#[derive(Clone, Copy)]
enum Expect {
    Text(&'static str),
    Many(&'static [&'static str]),
    Number(i64),
    Flag(bool),
    /// No value: the attribute does not flow (or is NULL).
    Nothing,
    /// A property the output must have (random values), described.
    Shape(fn(&Attr) -> bool, &'static str),
}

struct Case {
    function: &'static str,
    expression: &'static str,
    inputs: &'static [(&'static str, Input)],
    expected: Expect,
    /// Where Microsoft's page contradicts itself or Tenure differs on purpose.
    note: Option<&'static str>,
}

const fn case(function: &'static str, expression: &'static str, expected: Expect) -> Case {
    Case {
        function,
        expression,
        inputs: &[],
        expected,
        note: None,
    }
}

const fn with(
    function: &'static str,
    expression: &'static str,
    inputs: &'static [(&'static str, Input)],
    expected: Expect,
) -> Case {
    Case {
        function,
        expression,
        inputs,
        expected,
        note: None,
    }
}

const fn noted(mut c: Case, note: &'static str) -> Case {
    c.note = Some(note);
    c
}

use Expect::*;
use Input::Text as T;

fn guid_shape(a: &Attr) -> bool {
    matches!(a, Attr::Text(t) if t.len() == 36 && t.chars().filter(|c| *c == '-').count() == 4)
}

fn six_3_numbers_3_lower(a: &Attr) -> bool {
    matches!(a, Attr::Text(t) if t.chars().count() == 6
        && t.chars().filter(char::is_ascii_digit).count() >= 3
        && t.chars().filter(char::is_ascii_lowercase).count() >= 3)
}

fn ten_without_question_or_comma(a: &Attr) -> bool {
    matches!(a, Attr::Text(t) if t.chars().count() == 10
        && t.chars().filter(char::is_ascii_digit).count() >= 2
        && t.chars().filter(char::is_ascii_uppercase).count() >= 2
        && t.chars().filter(char::is_ascii_lowercase).count() >= 1
        && t.chars().filter(|c| !c.is_ascii_alphanumeric()).count() >= 2
        && !t.contains(['?', ',']))
}

const HIRE: &[(&str, Input)] = &[("StatusHireDate", T("2012-03-16-07:00"))];

static CASES: &[Case] = &[
    with(
        "Append",
        r#"Append([userPrincipalName], ".test")"#,
        &[("userPrincipalName", T("John.Doe@contoso.com"))],
        Text("John.Doe@contoso.com.test"),
    ),
    case("BitAnd", "BitAnd(&HF, &HF7)", Number(7)),
    with(
        "CBool",
        "CBool([attribute1] = [attribute2])",
        &[("attribute1", T("x")), ("attribute2", T("x"))],
        Flag(true),
    ),
    with(
        "CDate",
        "CDate([StatusHireDate])",
        &[("StatusHireDate", T("2020-03-16-07:00"))],
        Text("3/16/2020 7:00:00 AM"),
    ),
    case(
        "CDate",
        r#"CDate("2021-06-30+08:00")"#,
        Text("6/29/2021 4:00:00 PM"),
    ),
    case(
        "CDate",
        r#"CDate("2009-06-15T01:45:30-07:00")"#,
        Text("6/15/2009 8:45:30 AM"),
    ),
    with(
        "Coalesce",
        "Coalesce([mail],[userPrincipalName])",
        &[("userPrincipalName", T("John.Doe@contoso.com"))],
        Text("John.Doe@contoso.com"),
    ),
    case(
        "ConvertToBase64",
        r#"ConvertToBase64("Hello world!")"#,
        Text("SABlAGwAbABvACAAdwBvAHIAbABkACEA"),
    ),
    case(
        "ConvertToUTF8Hex",
        r#"ConvertToUTF8Hex("Hello world!")"#,
        Text("48656C6C6F20776F726C6421"),
    ),
    with(
        "CStr",
        "CStr([dn])",
        &[("dn", T("cn=Joe,dc=contoso,dc=com"))],
        Text("cn=Joe,dc=contoso,dc=com"),
    ),
    with(
        "DateAdd",
        r#"DateAdd("d", 7, CDate([StatusHireDate]))"#,
        HIRE,
        Text("3/23/2012 7:00:00 AM"),
    ),
    with(
        "DateAdd",
        r#"DateAdd("d", -10, CDate([StatusHireDate]))"#,
        HIRE,
        Text("3/6/2012 7:00:00 AM"),
    ),
    with(
        "DateAdd",
        r#"DateAdd("ww", 2, CDate([StatusHireDate]))"#,
        HIRE,
        Text("3/30/2012 7:00:00 AM"),
    ),
    with(
        "DateAdd",
        r#"DateAdd("m", 10, CDate([StatusHireDate]))"#,
        HIRE,
        Text("1/16/2013 7:00:00 AM"),
    ),
    with(
        "DateAdd",
        r#"DateAdd("yyyy", 2, CDate([StatusHireDate]))"#,
        HIRE,
        Text("3/16/2014 7:00:00 AM"),
    ),
    case(
        "DateDiff",
        r#"DateDiff("d", CDate("2021-08-18+08:00"), CDate("2021-08-31+08:00"))"#,
        Number(13),
    ),
    case(
        "DateDiff",
        r#"DateDiff("d", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))"#,
        Number(-3449),
    ),
    case(
        "DateDiff",
        r#"DateDiff("ww", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))"#,
        Number(-493),
    ),
    case(
        "DateDiff",
        r#"DateDiff("m", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))"#,
        Number(-113),
    ),
    case(
        "DateDiff",
        r#"DateDiff("yyyy", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))"#,
        Number(-9),
    ),
    case(
        "DateDiff",
        r#"DateDiff("d", CDate("2021-08-31+08:00"), CDate("2021-08-31+08:00"))"#,
        Number(0),
    ),
    case(
        "DateDiff",
        r#"DateDiff("h", CDate("2021-08-24"), CDate("2021-08-25"))"#,
        Number(24),
    ),
    case(
        "DateDiff",
        r#"DateDiff("n", CDate("2021-08-24"), CDate("2021-08-25"))"#,
        Number(1440),
    ),
    case(
        "DateDiff",
        r#"DateDiff("s", CDate("2021-08-24"), CDate("2021-08-25"))"#,
        Number(86400),
    ),
    case(
        "DateFromNum",
        "DateFromNum(129699324000000000)",
        Text("1/1/2012 11:00:00 PM"),
    ),
    with(
        "FormatDateTime",
        r#"FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#,
        &[("extensionAttribute1", T("20150123105347.1Z"))],
        Text("2015-01-23"),
    ),
    case(
        "Guid",
        "Guid()",
        Shape(guid_shape, "a GUID (8-4-4-4-12 hex digits)"),
    ),
    with(
        "IgnoreFlowIfNullOrEmpty",
        "IgnoreFlowIfNullOrEmpty([department])",
        &[],
        Nothing,
    ),
    with(
        "IgnoreFlowIfNullOrEmpty",
        concat!(
            r#"IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "#,
            r#""3445", "Prof. Dr."))"#
        ),
        &[("prefix", T("3446"))],
        Nothing,
    ),
    with(
        "IgnoreFlowIfNullOrEmpty",
        concat!(
            r#"IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "#,
            r#""3445", "Prof. Dr."))"#
        ),
        &[("prefix", T("3444"))],
        Text("Prof."),
    ),
    with(
        "IIF",
        r#"IIF([country]="USA",[country],[department])"#,
        &[("country", T("USA")), ("department", T("Sales"))],
        Text("USA"),
    ),
    with(
        "IIF",
        r#"IIF([country]="USA",[country],[department])"#,
        &[("country", T("Canada")), ("department", T("Sales"))],
        Text("Sales"),
    ),
    with(
        "IIF",
        r#"IIF([country]="USA",IIF([state]="CA","True","False"),"False")"#,
        &[("country", T("USA")), ("state", T("CA"))],
        Text("True"),
    ),
    with(
        "IIF",
        r#"IIF([country]="USA","True",IIF([state]="CA","True","False"))"#,
        &[("country", T("Canada")), ("state", T("CA"))],
        Text("True"),
    ),
    noted(
        with(
            "IIF",
            r#"IIF([country]="","Other",[country])"#,
            &[("country", T(""))],
            Text("Other"),
        ),
        "The page lists this among unsupported IIF expressions (the condition check fails on an empty \
            attribute). Tenure evaluates it: = compares NULL and empty text as \"\", as Switch does.",
    ),
    noted(
        with(
            "IIF",
            r#"IIF(IsNullOrEmpty([country]),"Other",[country])"#,
            &[],
            Text("Other"),
        ),
        "Unsupported in Entra (see above); Tenure's IIF evaluates only the branch it picks, so the guard \
            works.",
    ),
    noted(
        with(
            "IIF",
            r#"IIF(IsPresent([country]),[country],"Other")"#,
            &[],
            Text("Other"),
        ),
        "Unsupported in Entra (see above); supported by Tenure, as the row before.",
    ),
    case(
        "Switch",
        r#"Switch([country],[country],"","Other")"#,
        Text("Other"),
    ),
    case("InStr", r#"InStr("The quick brown fox","quick")"#, Number(5)),
    case("InStr", r#"InStr("repEated","e",3,vbBinaryCompare)"#, Number(7)),
    with("IsNull", "IsNull([displayName])", &[], Flag(true)),
    with(
        "IsNullOrEmpty",
        "IsNullOrEmpty([displayName])",
        &[("displayName", T(""))],
        Flag(true),
    ),
    with(
        "Item",
        "Item([proxyAddresses], 1)",
        &[(
            "proxyAddresses",
            Input::Many(&["SMTP:a@contoso.com", "smtp:b@contoso.com"]),
        )],
        Text("SMTP:a@contoso.com"),
    ),
    case("Left", r#"Left("John Doe", 3)"#, Text("Joh")),
    with(
        "NormalizeDiacritics",
        "NormalizeDiacritics([givenName])",
        &[("givenName", T("Zoë"))],
        Text("Zoe"),
    ),
    case("Now", "Now()", Text("7/2/2021 3:33:38 PM")),
    noted(
        with(
            "NumFromDate",
            concat!(
                r#"NumFromDate(Join("", FormatDateTime([ContractEndDate], ,"yyyy-MM-ddzzz", "#,
                r#""yyyy-MM-dd"), " 23:59:59-08:00"))"#
            ),
            &[("ContractEndDate", T("2020-12-31-08:00"))],
            Number(132_539_615_990_000_000),
        ),
        "The page gives no output; this is the FILETIME of 2020-12-31 23:59:59 at -08:00.",
    ),
    noted(
        with(
            "NumFromDate",
            concat!(
                r#"NumFromDate(Join("",FormatDateTime([endDate], "#,
                r#","M/d/yyyy hh:mm:ss tt","yyyy-MM-dd")," 23:59:59-08:00"))"#
            ),
            &[("endDate", T("12/31/2020 12:00:00 AM"))],
            Number(132_539_615_990_000_000),
        ),
        "The page gives no input or output; with endDate 12/31/2020 12:00:00 AM this is the FILETIME of that \
            day's 23:59:59 at -08:00.",
    ),
    with(
        "PCase",
        "PCase([firstName])",
        &[("firstName", T("PABLO GONSALVES (SECOND)"))],
        Text("Pablo Gonsalves (Second)"),
    ),
    with(
        "PCase",
        r#"PCase([lastName]," '-")"#,
        &[("lastName", T("PINTO-DE'SILVA"))],
        Text("Pinto-De'Silva"),
    ),
    with(
        "PCase",
        r#"PCase(Join(" ",[firstName],[lastName]))"#,
        &[("firstName", T("GREGORY")), ("lastName", T("JAMES"))],
        Text("Gregory James"),
    ),
    case(
        "RandomString",
        "RandomString(6,3,0,0,3)",
        Shape(
            six_3_numbers_3_lower,
            "6 characters, at least 3 digits and 3 lower case letters",
        ),
    ),
    case(
        "RandomString",
        r#"RandomString(10,2,2,2,1,"?,")"#,
        Shape(
            ten_without_question_or_comma,
            "10 characters: at least 2 digits, 2 special, 2 capital, 1 lower case; no ? or ,",
        ),
    ),
    with(
        "Redact",
        "Redact([userPrincipalName])",
        &[("userPrincipalName", T("jsmith@contoso.com"))],
        Text("jsmith@contoso.com"),
    ),
    case(
        "Redact",
        r#"Redact("StringToBeRedacted")"#,
        Text("StringToBeRedacted"),
    ),
    case(
        "Redact",
        "Redact(RandomString(6,3,0,0,3))",
        Shape(
            six_3_numbers_3_lower,
            "a random string that flows (and is redacted in traces)",
        ),
    ),
    with(
        "RemoveDuplicates",
        "RemoveDuplicates([proxyAddresses])",
        &[(
            "proxyAddresses",
            Input::Many(&["smtp:a@x.com", "smtp:b@x.com", "smtp:a@x.com"]),
        )],
        Many(&["smtp:a@x.com", "smtp:b@x.com"]),
    ),
    with(
        "Replace",
        r#"Replace([BusinessTitle],"Product Developer", , , "Software Engineer", , )"#,
        &[("BusinessTitle", T("Product Developer"))],
        Text("Software Engineer"),
    ),
    with(
        "Replace",
        r#"Replace([UserID],"<username>", , , , , "<username>@contoso.com")"#,
        &[("UserID", T("jsmith"))],
        Text("jsmith@contoso.com"),
    ),
    with(
        "Replace",
        "Replace([telephoneNumber], , \"\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})\", , \
            \"${phoneNumber}\", , )",
        &[("telephoneNumber", T("+91 9998887777"))],
        Text("9998887777"),
    ),
    noted(
        with(
            "Replace",
            r#"Replace([mobile], , "[()\\s-]+", , "", , )"#,
            &[("mobile", T("+1 (999) 888-7777"))],
            Text("+19998887777"),
        ),
        "The page says 19998887777, but its pattern [()\\s-]+ does not remove the +: Tenure (and the \
            pattern) give +19998887777.",
    ),
    with(
        "Replace",
        r#"Replace([AddressLineData], ,"(?<streetNumber>^\\d*)","streetNumber", "888", , )"#,
        &[("AddressLineData", T("545 Tremont Street"))],
        Text("888 Tremont Street"),
    ),
    with(
        "Replace",
        r#"Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )"#,
        &[("userPrincipalName", T("jsmith@contoso.com"))],
        Text("jsmith"),
    ),
    with(
        "Replace",
        "Replace([telephoneNumber], , \"\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})\", \"phoneNumber\" \
            , , [mobile], )",
        &[("telephoneNumber", T("")), ("mobile", T("+91 8887779999"))],
        Text("8887779999"),
    ),
    with(
        "Replace",
        r#"Replace([mailNickname], , "[a-zA-Z_]*", , "", , )"#,
        &[("mailNickname", T("john_doe72"))],
        Text("72"),
    ),
    with(
        "SelectUniqueValue",
        concat!(
            r#"SelectUniqueValue(Join("@", NormalizeDiacritics(StripSpaces(Join(".", "#,
            r#" [PreferredFirstName], [PreferredLastName]))), "contoso.com"), Join("@", "#,
            r#"NormalizeDiacritics(StripSpaces(Join(".",  Mid([PreferredFirstName], 1, 1), "#,
            r#"[PreferredLastName]))), "contoso.com"), Join("@", "#,
            r#"NormalizeDiacritics(StripSpaces(Join(".",  Mid([PreferredFirstName], 1, 2), "#,
            r#"[PreferredLastName]))), "contoso.com"))"#
        ),
        &[
            ("PreferredFirstName", T("John")),
            ("PreferredLastName", T("Smith")),
        ],
        Many(&[
            "John.Smith@contoso.com",
            "J.Smith@contoso.com",
            "Jo.Smith@contoso.com",
        ]),
    ),
    noted(
        with(
            "Split",
            r#"Split([extensionAttribute5], ",")"#,
            &[("extensionAttribute5", T("PermissionSetOne, PermissionSetTwo"))],
            Many(&["PermissionSetOne", " PermissionSetTwo"]),
        ),
        "The page shows [\"PermissionSetOne\", \"PermissionSetTwo\"], but its input has a space after the \
            comma, which Split keeps (as the page's own description says: it splits on the delimiter).",
    ),
    with(
        "Switch",
        r#"Switch(ToLower([statusFlag]), "0", "true", "1", "false", "0")"#,
        &[("statusFlag", T("TRUE"))],
        Text("1"),
    ),
    with(
        "Switch",
        r#"Switch([statusFlag], "Default Value", "true", "1", "", "0")"#,
        &[],
        Text("0"),
    ),
    with(
        "Switch",
        concat!(
            r#"Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "#,
            r#""Australia/Brisbane", "SA", "Australia/Adelaide")"#
        ),
        &[("state", T("QLD"))],
        Text("Australia/Brisbane"),
    ),
    with(
        "Switch",
        r#"IIF([companyName] = "Company A", "A", IIF([companyName] = "Company B", "B", "External"))"#,
        &[("companyName", T("Company B"))],
        Text("B"),
    ),
    with(
        "ToLower",
        concat!(
            r#"ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".", "#,
            r#" [PreferredFirstName], [PreferredLastName]))), "contoso.com"))"#
        ),
        &[
            ("PreferredFirstName", T("John")),
            ("PreferredLastName", T("Smith")),
        ],
        Text("john.smith@contoso.com"),
    ),
    case("Word", r#"Word("The quick brown fox",3," ")"#, Text("brown")),
    case(
        "Word",
        r#"Word("This,string!has&many separators",3,",!&#")"#,
        Text("has"),
    ),
    with(
        "Replace",
        r#"Replace([mail], "@contoso.com", , ,"", ,)"#,
        &[("mail", T("john.doe@contoso.com"))],
        Text("john.doe"),
    ),
    with(
        "Append",
        "Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))",
        &[("givenName", T("John")), ("surname", T("Doe"))],
        Text("JohDoe"),
    ),
    with(
        "Join",
        r#"Join(", ", "", [surname], [givenName])"#,
        &[("givenName", T("John")), ("surname", T("Doe"))],
        Text("Doe, John"),
    ),
    noted(
        with(
            "Join",
            r#"Join("", 1000, Replace(ConvertToUTF8Hex([objectId]), , "[a-zA-Z_]*", , "", , ))"#,
            &[("objectId", T("00aa00aa-bb11-cc22-dd33-44ee44ee44ee"))],
            Text("100030306161303061612626231312636332322646433332343465653434656534346565"),
        ),
        "The page's output (100064303565...) was computed from another object id than the input it shows; \
            this is the expression's output for the input shown.",
    ),
];

fn person(inputs: &[(&str, Input)]) -> Person {
    let mut p = Person::default();
    for (name, value) in inputs {
        let path = entra::attribute_path(name).expect("a valid attribute name");
        let text = |v: &Input| match v {
            Input::Text(t) => t.to_string(),
            Input::Many(m) => m.join(","),
        };
        match path.strip_prefix("person.") {
            Some("email") => p.emails = vec![("work".into(), text(value), true)],
            Some(field) if !field.starts_with("custom.") => {
                let slot = match field {
                    "given_name" => &mut p.given_name,
                    "family_name" => &mut p.family_name,
                    "department" => &mut p.department,
                    "country" => &mut p.country,
                    "title" => &mut p.title,
                    other => panic!("the table sets person.{other}; add it here"),
                };
                *slot = Some(text(value));
            }
            _ => {
                let name = path.trim_start_matches("person.custom.").to_string();
                let attr = match value {
                    Input::Text(t) => Attr::Text(t.to_string()),
                    Input::Many(m) => Attr::Many(m.iter().map(|s| s.to_string()).collect()),
                };
                p.custom.push((name, attr));
            }
        }
    }
    p
}

fn matches(expected: Expect, got: &Attr) -> bool {
    match expected {
        Text(t) => *got == Attr::Text(t.into()),
        Many(m) => *got == Attr::Many(m.iter().map(|s| s.to_string()).collect()),
        Number(n) => *got == Attr::Number(n),
        Flag(b) => *got == Attr::Flag(b) || *got == Attr::Text(if b { "True" } else { "False" }.into()),
        Nothing => *got == Attr::Absent,
        Shape(check, _) => check(got),
    }
}

fn shown(expected: Expect) -> String {
    match expected {
        Text(t) => format!("`{t}`"),
        Many(m) => format!("`{m:?}`"),
        Number(n) => format!("`{n}`"),
        Flag(b) => format!("`{}`", if b { "True" } else { "False" }),
        Nothing => "does not flow (NULL)".into(),
        Shape(_, what) => what.into(),
    }
}

#[test]
fn every_documented_example_gives_the_documented_output() {
    let mut failures = Vec::new();
    for c in CASES {
        match evaluate_entra(c.expression, &person(c.inputs), NOW) {
            Ok(got) if matches(c.expected, &got) => {}
            Ok(got) => failures.push(format!(
                "{}: {} gave {got:?}, expected {}",
                c.function,
                c.expression,
                shown(c.expected)
            )),
            Err(e) => failures.push(format!("{}: {} failed: {e}", c.function, c.expression)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn every_function_of_the_page_has_a_case_or_a_reason() {
    // Functions the page documents without an example: tested in functions.rs.
    const WITHOUT_EXAMPLE: &[&str] = &[
        "AppRoleAssignmentsComplex",
        "Count",
        "IsPresent",
        "IsString",
        "Mid",
        "Not",
        "SingleAppRoleAssignment",
        "StripSpaces",
        "ToUpper",
    ];
    for name in tenure_rules_engine::functions::NAMES
        .iter()
        .take_while(|n| **n != "NormalizeCountry")
    {
        assert!(
            CASES.iter().any(|c| c.function == *name) || WITHOUT_EXAMPLE.contains(name),
            "{name} has no conformance case"
        );
    }
}

#[test]
fn redact_shows_in_traces_as_redacted_even_nested() {
    let rules = r#"
destinations:
  app:
    attributes:
      secret: { entra: 'Append(Redact([userPrincipalName]), ".x")' }
    rules:
      - name: all
        when: "true"
        then: { attributes: { shown: { entra: 'Redact(Left([userPrincipalName], 3))' } } }
"#;
    let set = RuleSet::parse(rules).expect("rule set");
    let p = person(&[("userPrincipalName", T("jsmith@contoso.com"))]);
    let out = set
        .evaluate(
            &p,
            &tenure_rules_engine::Request {
                event: "joiner",
                destinations: &["app".to_string()],
                now_ms: NOW,
                trace: tenure_rules_engine::TraceLevel::All,
            },
        )
        .expect("evaluates");
    let account = &out.accounts[0];
    let value = |n: &str| {
        account
            .attributes
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    // The values flow to the destination as they are...
    assert_eq!(value("secret"), Some(Attr::Text("jsmith@contoso.com.x".into())));
    assert_eq!(value("shown"), Some(Attr::Text("jsm".into())));
    // ...and every trace shows them redacted.
    let trace = format!("{:?}", out.trace);
    assert!(!trace.contains("jsm"), "{trace}");
    assert!(trace.contains("[redacted]"), "{trace}");
}

#[test]
fn a_redacted_value_stays_secret_through_lists_errors_and_operators() {
    let p = person(&[("badge", T("S3CR3T-2026"))]);
    // Split into a list and joined again: still redacted (the value flows, as text).
    assert_eq!(
        evaluate_entra(r#"Join("+", Split(Redact([badge]), "-"))"#, &p, NOW),
        Ok(Attr::Text("S3CR3T+2026".into()))
    );
    // An error on a redacted value (or a list holding one) does not quote it.
    for e in [
        r#"CDate(Redact([badge]))"#,
        r#"NumFromDate(Join("", Split(Redact([badge]), "-")))"#,
        r#"Item(Split(Redact([badge]), "-"), "x")"#,
    ] {
        let err = evaluate_entra(e, &p, NOW).unwrap_err();
        assert!(!err.contains("S3CR3T") && err.contains("redacted"), "{e}: {err}");
    }
    // CEL's own operator errors name the value's type, not its text.
    let err =
        tenure_rules_engine::evaluate_expression("Redact(person.custom.badge) * 2", &p, NOW).unwrap_err();
    assert!(!err.contains("S3CR3T"), "{err}");
}

#[test]
fn markers_cannot_be_forged_by_data_nor_nested_where_they_do_not_belong() {
    // Data that looks like Tenure's old internal markers is only data.
    let p = person(&[
        ("tag", T("\u{0}tenure:ignore-flow")),
        ("list", Input::Many(&["\u{0}tenure:unique", "a"])),
    ]);
    assert_eq!(
        evaluate_entra("[tag]", &p, NOW),
        Ok(Attr::Text("\u{0}tenure:ignore-flow".into()))
    );
    assert_eq!(
        evaluate_entra("[list]", &p, NOW),
        Ok(Attr::Many(vec!["\u{0}tenure:unique".into(), "a".into()]))
    );
    // IgnoreFlow nested: the whole mapping does not flow.
    assert_eq!(
        evaluate_entra(r#"Append(IgnoreFlowIfNullOrEmpty([missing]), "x")"#, &p, NOW),
        Ok(Attr::Absent)
    );
    // SelectUniqueValue must be the whole expression.
    let e = evaluate_entra(r#"ToLower(SelectUniqueValue("a", "b"))"#, &p, NOW).unwrap_err();
    assert!(e.contains("whole expression"), "{e}");
}

#[test]
fn the_published_conformance_table_is_current() {
    let mut doc = String::from(
        "# Entra function conformance\n\n\
         Generated by `plugins/rules/engine/tests/entra_reference.rs` from Microsoft's reference\n\
         (\"Reference for writing expressions for attribute mappings in Microsoft Entra ID\", revision of\n\
         2024-08-06): every example on the page, run as written in a mapping's `entra:` form, with the\n\
         output the page documents. The test fails if any result differs.\n\n",
    );
    let functions: Vec<&str> = {
        let mut f: Vec<&str> = CASES.iter().map(|c| c.function).collect();
        f.sort();
        f.dedup();
        f
    };
    doc.push_str("| function | examples | result |\n|---|---|---|\n");
    for f in &functions {
        let cases: Vec<&Case> = CASES.iter().filter(|c| c.function == *f).collect();
        let noted = cases.iter().filter(|c| c.note.is_some()).count();
        let result = if noted == 0 {
            "as documented".to_string()
        } else {
            format!("as documented; {noted} noted below")
        };
        doc.push_str(&format!("| {f} | {} | {result} |\n", cases.len()));
    }
    doc.push_str(&format!(
        "\n{} examples in all.\n\n## Every example\n\n",
        CASES.len()
    ));
    doc.push_str("| function | expression | inputs | output |\n|---|---|---|---|\n");
    for c in CASES {
        let inputs: Vec<String> = c
            .inputs
            .iter()
            .map(|(k, v)| match v {
                Input::Text(t) => format!("{k} = {t:?}"),
                Input::Many(m) => format!("{k} = {m:?}"),
            })
            .collect();
        let cell = |s: &str| s.replace('|', "\\|");
        doc.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            c.function,
            cell(c.expression),
            cell(&inputs.join("; ")),
            cell(&shown(c.expected))
        ));
    }
    doc.push_str("\n## Where the page contradicts itself, or Tenure differs on purpose\n\n");
    for c in CASES.iter().filter(|c| c.note.is_some()) {
        doc.push_str(&format!(
            "- **{}** `{}`: {}\n",
            c.function,
            c.expression,
            c.note.unwrap_or_default()
        ));
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../docs/rules/entra-conformance.md"
    );
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, &doc).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/rules/entra-conformance.md is out of date: run UPDATE_DOCS=1 cargo test -p tenure-rules-engine \
            --test entra_reference"
    );
}
