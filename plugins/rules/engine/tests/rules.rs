//! Rule-set semantics: scope, mappings, precedence, stop, defaults, unique
//! naming, the trace, and errors that name the field.

use tenure_rules_engine::{Attr, Person, Request, RuleSet, TraceLevel};

const NOW: i64 = 1_772_366_400_000;

fn person(dept: &str, title: &str) -> Person {
    Person {
        ids: vec![("hr".into(), "7".into())],
        given_name: Some("Zoë".into()),
        family_name: Some("van der Berg".into()),
        title: Some(title.into()),
        department: Some(dept.into()),
        status: "active".into(),
        ..Person::default()
    }
}

fn run(rules: &str, p: &Person, level: TraceLevel) -> tenure_rules_engine::Evaluation {
    let set = RuleSet::parse(rules).unwrap_or_else(|e| panic!("{e}"));
    let dests: Vec<String> = set.destinations().map(str::to_string).collect();
    set.evaluate(
        p,
        &Request {
            event: "joiner",
            destinations: &dests,
            now_ms: NOW,
            trace: level,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn attr<'a>(d: &'a tenure_rules_engine::Desired, name: &str) -> Option<&'a Attr> {
    d.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

const SET: &str = r#"
destinations:
  ad:
    scope: person.status != "terminated"
    attributes:
      displayName: "${person.given_name} ${person.family_name}"
      dept: { from: department }
      team: { from: team, default: "none" }
      skipped: { expr: IgnoreFlowIfNullOrEmpty(person.team) }
      kind: { value: 7 }
    rules:
      - name: later-by-priority
        priority: 50
        when: person.department == "Eng"
        then: { container: "OU=Late", groups: [G-Late] }
      - name: first-by-priority
        priority: 1
        when: person.department == "Eng"
        then:
          container: "OU=${person.department}"
          groups: [G-Eng]
          attributes: { dept: { value: Engineering } }
      - name: stopper
        priority: 60
        when: person.title.startsWith("Intern")
        then: { groups: [G-Interns], enabled: false }
        stop: true
      - name: never-reached-after-stop
        priority: 70
        when: "true"
        then: { groups: [G-After] }
    defaults:
      container: OU=People
      groups: [G-Default]
      attributes: { dept: { value: Unknown } }
"#;

#[test]
fn precedence_first_single_value_wins_lists_add_up() {
    let e = run(SET, &person("Eng", "Engineer"), TraceLevel::All);
    let ad = &e.accounts[0];
    assert_eq!(
        ad.container.as_deref(),
        Some("OU=Eng"),
        "lowest priority runs first and wins"
    );
    assert_eq!(ad.groups, ["G-Eng", "G-Late", "G-After"]);
    assert!(ad.enabled);
    assert_eq!(
        attr(ad, "dept"),
        Some(&Attr::Text("Engineering".into())),
        "a rule overrides the mapping"
    );
    assert_eq!(
        attr(ad, "displayName"),
        Some(&Attr::Text("Zoë van der Berg".into()))
    );
    assert_eq!(
        attr(ad, "team"),
        Some(&Attr::Text("none".into())),
        "default when empty"
    );
    assert_eq!(attr(ad, "skipped"), None, "IgnoreFlowIfNullOrEmpty keeps it out");
    assert_eq!(attr(ad, "kind"), Some(&Attr::Number(7)));
    let names: Vec<_> = e.trace.iter().map(|t| (t.rule.as_str(), t.matched)).collect();
    assert_eq!(
        names,
        [
            ("first-by-priority", true),
            ("later-by-priority", true),
            ("stopper", false),
            ("never-reached-after-stop", true)
        ]
    );
    let first = &e.trace[0];
    assert_eq!(
        first.inputs,
        [("department".to_string(), Attr::Text("Eng".into()))]
    );
    assert!(first.contributed.contains(&"group:G-Eng".to_string()));
    assert!(first.contributed.contains(&"container:OU=Eng".to_string()));
}

#[test]
fn stop_and_defaults() {
    let e = run(SET, &person("Ops", "Intern, Ops"), TraceLevel::Matched);
    let ad = &e.accounts[0];
    assert_eq!(
        ad.groups,
        ["G-Interns"],
        "stop: later rules are not tested; defaults skip set lists"
    );
    assert!(!ad.enabled);
    assert_eq!(
        ad.container.as_deref(),
        Some("OU=People"),
        "defaults fill what no rule set"
    );
    assert_eq!(
        attr(ad, "dept"),
        Some(&Attr::Text("Ops".into())),
        "defaults do not override a mapping"
    );
    assert!(
        e.trace.iter().all(|t| t.matched),
        "Matched level traces only what fired"
    );
    assert!(e.trace.iter().any(|t| t.rule == "defaults"));

    let e = run(SET, &person("Ops", "Analyst"), TraceLevel::None);
    let ad = &e.accounts[0];
    assert_eq!(ad.groups, ["G-After"]);
    assert!(e.trace.is_empty());
}

#[test]
fn out_of_scope_gives_no_account_and_says_why() {
    let mut p = person("Eng", "Engineer");
    p.status = "terminated".into();
    let e = run(SET, &p, TraceLevel::Matched);
    assert!(e.accounts.is_empty());
    assert_eq!(e.trace[0].rule, "scope");
    assert_eq!(
        e.trace[0].inputs,
        [("status".to_string(), Attr::Text("terminated".into()))]
    );
}

#[test]
fn unique_candidates_with_counter() {
    let set = r#"
destinations:
  ad:
    unique:
      sAMAccountName:
        candidates:
          - "${ToLower(NormalizeDiacritics(person.given_name))}.${ToLower(StripSpaces(person.family_name))}"
          - "${ToLower(Left(person.given_name, 1))}.${ToLower(StripSpaces(person.family_name))}"
          - "${ToLower(StripSpaces(person.family_name))}${n}"
        max_n: 3
        unique_in: [ad, google]
    attributes:
      mail: { expr: 'SelectUniqueValue(ToLower(person.given_name) + "@x.test", "z@x.test")' }
"#;
    let e = run(set, &person("Eng", "Engineer"), TraceLevel::None);
    let ad = &e.accounts[0];
    assert_eq!(ad.unique.len(), 2);
    let sam = ad
        .unique
        .iter()
        .find(|u| u.attribute == "sAMAccountName")
        .unwrap();
    assert_eq!(
        sam.candidates,
        ["zoe.vanderberg", "z.vanderberg", "vanderberg2", "vanderberg3"]
    );
    assert_eq!(sam.unique_in, ["ad", "google"]);
    assert!(!sam.rename_on_change);
    let mail = ad.unique.iter().find(|u| u.attribute == "mail").unwrap();
    assert_eq!(mail.candidates, ["zoë@x.test", "z@x.test"]);
    assert_eq!(attr(ad, "mail"), None, "the host picks the value");
}

#[test]
fn templates_with_a_missing_part_yield_nothing() {
    let set = r#"
destinations:
  d:
    rules:
      - name: team-group
        when: "true"
        then:
          groups: ["Team-${person.team}", "Dept-${person.department}"]
          container: "OU=${person.location}"
    defaults: { container: OU=Fallback }
"#;
    let e = run(set, &person("Eng", "x"), TraceLevel::None);
    assert_eq!(e.accounts[0].groups, ["Dept-Eng"]);
    assert_eq!(e.accounts[0].container.as_deref(), Some("OU=Fallback"));
}

fn eval_err(set: &str, p: &Person) -> String {
    let set = RuleSet::parse(set).unwrap_or_else(|e| panic!("{e}"));
    let dests: Vec<String> = set.destinations().map(str::to_string).collect();
    set.evaluate(
        p,
        &Request {
            event: "joiner",
            destinations: &dests,
            now_ms: NOW,
            trace: TraceLevel::None,
        },
    )
    .map(|_| ())
    .unwrap_err()
    .to_string()
}

#[test]
fn errors_on_real_records_name_the_field_and_the_expression() {
    let req = "destinations:\n  ad:\n    attributes:\n      sn: { from: team, required: true }\n";
    let e = eval_err(req, &person("Eng", "x"));
    assert!(e.starts_with("destinations.ad.attributes.sn:"), "{e}");
    assert!(e.contains("required attribute sn"), "{e}");

    let cond = "destinations:\n  ad:\n    rules:\n      - { name: r1, when: 'person.department' }\n";
    let e = eval_err(cond, &person("Eng", "x"));
    assert!(e.starts_with("destinations.ad.rules[r1].when:"), "{e}");
    assert!(e.contains("true or false"), "{e}");

    let missing =
        "destinations:\n  ad:\n    rules:\n      - { name: lvl, when: 'person.custom.level > 3' }\n";
    let e = eval_err(missing, &person("Eng", "x"));
    assert!(e.contains("rules[lvl].when") && e.contains("level"), "{e}");
}

#[test]
fn compile_errors_name_the_field_and_the_position() {
    let cases = [
        (
            "destinations:\n  ad:\n    rules:\n      - { name: a, when: 'person.department ==' }\n",
            "destinations.ad.rules[a].when: line 1, column",
        ),
        (
            "destinations:\n  ad:\n    rules:\n      - { name: a, when: 'true' }\n      - { name: a, when: \
                'true' }\n",
            "destinations.ad.rules[1].name: a second rule",
        ),
        (
            "destinations:\n  ad:\n    attributes:\n      x: { from: a, value: b }\n",
            "destinations.ad.attributes.x: give exactly one",
        ),
        (
            "destinations:\n  ad:\n    attributes:\n      x: 5\n",
            "destinations.ad.attributes.x: expected a template string",
        ),
        (
            "destinations:\n  ad:\n    colour: blue\n",
            "destinations.ad.colour: unknown field `colour`",
        ),
        (
            "destinations:\n  ad:\n    defaults: { container: 'OU=${person.x' }\n",
            "destinations.ad.defaults.container: unclosed",
        ),
        (
            "destinations:\n  ad:\n    unique: { sam: { candidates: [] } }\n",
            "destinations.ad.unique.sam.candidates",
        ),
        ("destinations: [1, 2]\n", "destinations: invalid type"),
        ("{ not json", "not valid JSON"),
        ("a: [", "not valid YAML"),
    ];
    for (doc, want) in cases {
        let e = match RuleSet::parse(doc) {
            Ok(_) => panic!("accepted: {doc}"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.starts_with(want) || e.contains(want),
            "{doc}\n=> {e}\nwanted {want}"
        );
    }
}

#[test]
fn json_documents_work_too() {
    let doc = r#"{"destinations": {"d": {"defaults": {"groups": ["G"]}}}}"#;
    let e = run(doc, &person("Eng", "x"), TraceLevel::None);
    assert_eq!(e.accounts[0].groups, ["G"]);
}

#[test]
fn the_example_rule_set_compiles() {
    let text = include_str!("../../../../examples/rules/company.yaml");
    let set = RuleSet::parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.destinations().collect::<Vec<_>>(), ["ad", "apps"]);
    assert!(set.rule_count() >= 8);
}

#[test]
fn an_explicit_empty_list_in_a_rule_keeps_the_defaults_out() {
    let set = r#"
destinations:
  ad:
    rules:
      - name: leaver
        when: person.status == "terminated"
        then: { enabled: false, groups: [], container: OU=Leavers }
        stop: true
      - name: eng
        when: person.department == "Engineering"
        then: { groups: [Engineering] }
    defaults: { groups: [All-Staff], licenses: [E3], container: OU=People }
"#;
    let active = run(set, &person("Engineering", "Dev"), TraceLevel::None);
    assert_eq!(active.accounts[0].groups, ["Engineering"]);
    let mut gone = person("Engineering", "Dev");
    gone.status = "terminated".into();
    let left = run(set, &gone, TraceLevel::None);
    let d = &left.accounts[0];
    assert!(
        d.groups.is_empty(),
        "no default groups for a leaver: {:?}",
        d.groups
    );
    assert_eq!(
        d.licenses,
        ["E3"],
        "kinds the rule did not clear still get their defaults"
    );
    assert_eq!(d.container.as_deref(), Some("OU=Leavers"));
    assert!(!d.enabled);
}
