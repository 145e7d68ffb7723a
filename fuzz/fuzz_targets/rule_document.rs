//! A rule-set document (YAML or JSON): parsed, compiled and, when it compiles, evaluated
//! for a person with every trace level. Errors name a field; nothing panics or hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenure_rules_engine::{Person, Request, RuleSet, TraceLevel};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = RuleSet::parse(text) else { return };
    let person = Person {
        ids: vec![("hr".into(), "E1".into())],
        given_name: Some("Ann".into()),
        family_name: Some("Lee".into()),
        department: Some("Engineering".into()),
        start_date: Some("2026-03-16".into()),
        emails: vec![("work".into(), "ann@example.test".into(), true)],
        status: "active".into(),
        ..Person::default()
    };
    let destinations: Vec<String> = rules.destinations().map(str::to_string).collect();
    for trace in [TraceLevel::None, TraceLevel::Matched, TraceLevel::All] {
        let request = Request {
            event: "joiner",
            destinations: &destinations,
            now_ms: 1_800_000_000_000,
            trace,
        };
        if let Err(e) = rules.evaluate(&person, &request) {
            assert!(!e.field.is_empty(), "{e:?}");
        }
    }
});
