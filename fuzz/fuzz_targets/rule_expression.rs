//! One expression through the rule engine: as CEL with the function library and as Entra's
//! syntax, compiled and evaluated against a person whose fields also come from the input.
//! Any text gives a value or an error, within the engine's limits, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_rules_engine::{Person, evaluate_entra, evaluate_expression};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1}');
    let expression = parts.next().unwrap_or_default();
    let field = |p: Option<&str>| p.map(str::to_string);
    let person = Person {
        ids: vec![("hr".into(), "E1".into())],
        given_name: field(parts.next()).or(Some("Zoë".into())),
        family_name: field(parts.next()).or(Some("O'Brien".into())),
        department: field(parts.next()),
        start_date: field(parts.next()).or(Some("2026-03-16".into())),
        time_zone: field(parts.next()),
        emails: vec![("work".into(), "zoe@example.test".into(), true)],
        status: "active".into(),
        ..Person::default()
    };
    let _ = evaluate_expression(expression, &person, 1_800_000_000_000);
    let _ = evaluate_entra(expression, &person, 1_800_000_000_000);
});
