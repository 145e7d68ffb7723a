//! The console's expression help (`help.rs`): one entry per library function, every example
//! evaluates to the result it shows, and the published `schema/functions.json` is current
//! (`UPDATE_SCHEMA=1 cargo test -p tenure-rules-engine --test help` rewrites it).

use tenure_rules_engine::help::{HELP, help_json};
use tenure_rules_engine::{Attr, Person, evaluate_expression, functions};

/// 2026-03-01T12:00:00Z
const NOW: i64 = 1_772_366_400_000;

fn person() -> Person {
    Person {
        ids: vec![("hr".into(), "1001".into())],
        given_name: Some("José".into()),
        family_name: Some("Núñez".into()),
        department: Some("Engineering".into()),
        status: "active".into(),
        ..Person::default()
    }
}

fn shown(value: &Attr) -> String {
    match value {
        Attr::Absent => "null".into(),
        Attr::Text(t) => t.clone(),
        Attr::Many(items) => format!("[{}]", items.join(", ")),
        Attr::Number(n) => n.to_string(),
        Attr::Flag(b) => b.to_string(),
    }
}

#[test]
fn every_function_has_help_in_the_library_order() {
    let names: Vec<&str> = HELP.iter().map(|h| h.name).collect();
    assert_eq!(names, functions::NAMES);
    for h in HELP {
        assert!(
            h.signature.starts_with(h.name) && h.example.contains(h.name),
            "{h:?}"
        );
    }
}

#[test]
fn every_example_gives_the_result_it_shows() {
    let mut wrong = Vec::new();
    for h in HELP {
        // The app-role functions read the account's assignments, which only a rule has.
        if h.example.ends_with("(apps)") {
            continue;
        }
        match (evaluate_expression(h.example, &person(), NOW), h.result) {
            (Ok(value), Some(expected)) if shown(&value) != expected => {
                wrong.push(format!("{}: {} gives {:?}", h.name, h.example, shown(&value)))
            }
            (Ok(_), _) => {}
            (Err(e), _) => wrong.push(format!("{}: {} fails: {e}", h.name, h.example)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_published_help_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/functions.json");
    let text = help_json();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &text).expect("write functions.json");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "plugins/rules/schema/functions.json is out of date: run UPDATE_SCHEMA=1 cargo test -p \
            tenure-rules-engine --test help"
    );
}
