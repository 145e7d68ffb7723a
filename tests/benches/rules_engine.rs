//! Rule-engine benchmark: 10,000 people against a 200-rule set, evaluated by
//! the `rules` plugin inside WebAssembly (warm instance, as the host runs it) and
//! by the same engine compiled natively, in one process, reported as
//! evaluations per second on one core and as a ratio.
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench rules_engine`
//! (`BENCH_PEOPLE` changes the population, `BENCH_ROUNDS` the alternating rounds,
//! `BENCH_ONLY=wasm|native` runs one side, for a profiler.) An empty rule set runs
//! too, on both sides, to separate what the call itself costs from the engine's work.
//! `BENCH_BASELINE=<path to an older rules.wasm>` also runs that build in alternating
//! rounds (at least 5) and reports min / median / max of both and their ratio: how a
//! change to the engine is checked to be no slower.
//!
//! The rule set is realistic: department x level -> groups (120 rules), office
//! location -> OU and regional apps (50), job-title prefixes -> security groups
//! (24), contractors -> expiry, leave, leavers and defaults (6); attribute
//! mappings with the function library and a unique naming convention.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::json;
use std::time::Instant;
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_rules_engine::{Attr, Request, RuleSet, TraceLevel};
use tenure_runtime::wit::{self, Person, PersonStatus};

use tenure_tests::bench_data::{DEPARTMENTS, LOCATIONS};
const TITLES: [&str; 24] = [
    "Senior",
    "Staff",
    "Principal",
    "Lead",
    "Head of",
    "VP",
    "Director",
    "Chief",
    "Junior",
    "Associate",
    "Intern",
    "Contract",
    "Temporary",
    "Acting",
    "Interim",
    "Deputy",
    "Assistant",
    "Field",
    "Regional",
    "Global",
    "Manager",
    "Analyst",
    "Specialist",
    "Coordinator",
];

/// The 200-rule document.
fn rule_set() -> String {
    let mut s = String::from(
        r#"destinations:
  ad:
    scope: person.status in ["pre-hire", "active", "on-leave"]
    attributes:
      givenName: { from: given_name, required: true }
      sn: { from: family_name, required: true }
      displayName: "${Coalesce(person.preferred_name, person.given_name)} ${person.family_name}"
      employeeID: { from: id }
      mail: { expr: ToLower(person.email) }
      department: { from: department }
      title: { from: title }
      c: { expr: NormalizeCountry(person.country) }
      company: { value: Acme }
    unique:
      sAMAccountName:
        candidates:
          - '${Left(ToLower(NormalizeDiacritics(person.given_name + "." + person.family_name)), 20)}'
          - '${Left(ToLower(NormalizeDiacritics(Left(person.given_name, 1) + "." + person.family_name)), 20)}'
        unique_in: [ad]
    rules:
"#,
    );
    let mut count = 0;
    for d in DEPARTMENTS {
        for level in 1..=12 {
            s += &format!(
                "      - {{ name: {d}-L{level}, priority: 10, when: 'person.department == \"{d}\" && \
                    person.custom.level == \"L{level}\"', then: {{ groups: [{d}-L{level}] }} }}\n"
            );
            count += 1;
        }
    }
    for l in LOCATIONS {
        s += &format!(
            "      - {{ name: {l}-ou, priority: 20, when: 'person.location == \"{l}\"', then: {{ container: \
                'OU={l},OU=People,DC=acme,DC=test' }} }}\n"
        );
        count += 1;
        for app in ["vpn", "badge", "wifi", "printer"] {
            s += &format!(
                "      - {{ name: {l}-{app}, priority: 30, when: 'person.location == \"{l}\" && \
                    person.custom.office_apps == \"yes\"', then: {{ apps: [{l}-{app}] }} }}\n"
            );
            count += 1;
        }
    }
    for (i, prefix) in TITLES.iter().enumerate() {
        s += &format!(
            "      - {{ name: title-{i}, priority: 40, when: 'person.title.startsWith(\"{prefix}\") || \
                person.custom.cost_center.endsWith(\"-{i}\")', then: {{ groups: [SG-Title-{i}] }} }}\n"
        );
        count += 1;
    }
    s += r#"      - name: contractor
        priority: 50
        when: 'person.employment_type in ["contractor", "temporary"]'
        then: { groups: [Contractors], expires: 'DateAdd("d", 90, person.start_date)' }
      - { name: leave, priority: 0, when: 'person.status == "on-leave"', then: { enabled: false } }
      - name: interns
        priority: 60
        when: 'person.employment_type == "intern"'
        then: { groups: [Interns] }
      - name: managers
        priority: 60
        when: 'person.title.contains("Manager")'
        then: { distribution_lists: [DL-Managers] }
      - { name: remote, priority: 60, when: 'person.location == "Remote"', then: { licenses: [Remote-Kit] } }
      - name: exec
        priority: 60
        when: 'person.title.startsWith("Chief") || person.title.startsWith("VP")'
        then: { groups: [Execs] }
        stop: true
"#;
    count += 6;
    assert_eq!(count, 200);
    s += "    defaults: { container: 'OU=People,DC=acme,DC=test', groups: [All-Staff], licenses: [E3] }\n";
    s
}

/// Person `i` of the population: varied departments, levels, places and titles.
fn person(i: usize) -> Person {
    let mut custom = vec![
        json!(["level", {"Text": format!("L{}", 1 + i % 12)}]),
        json!(["office_apps", {"Text": if i.is_multiple_of(3) { "no" } else { "yes" }}]),
        json!(["cost_center", {"Text": format!("CC-{}-{}", 4000 + i % 97, i % 31)}]),
    ];
    for k in 0..12 {
        custom.push(json!([format!("extra_{k}"), {"Text": format!("value number {k}")}]));
    }
    let employment = ["Employee", "Employee", "Employee", "Contractor", "Intern"][i % 5];
    let given = ["Ada", "José", "Zoë", "Li", "Omar"][i % 5];
    person_from_json(json!({
        "ids": [{"source": "hr", "id": format!("{i:06}")}],
        "given_name": given, "family_name": format!("Lovelace{i}"),
        "emails": [{"kind": "work", "value": format!("person{i}@example.test"), "primary": true}],
        "phones": [{"kind": "mobile", "value": "+4915112345678", "primary": true}],
        "title": format!("{} Engineer", TITLES[i % TITLES.len()]),
        "department": DEPARTMENTS[i % DEPARTMENTS.len()], "team": "Platform",
        "location": LOCATIONS[(i / 7) % LOCATIONS.len()], "country": "Germany", "time_zone": "Europe/Berlin",
        "manager": {"source": "hr", "id": "m-42"}, "employment_type": employment,
        "start_date": "2026-03-01", "status": if i.is_multiple_of(50) { "OnLeave" } else { "Active" },
            "custom": custom
    }))
    .expect("valid person")
}

/// The plugin's conversion, over the host's copy of the WIT types.
fn to_engine(p: &Person) -> tenure_rules_engine::Person {
    let labeled = |l: &[wit::LabeledValue]| {
        l.iter()
            .map(|v| (v.kind.clone(), v.value.clone(), v.primary))
            .collect()
    };
    tenure_rules_engine::Person {
        ids: p.ids.iter().map(|i| (i.source.clone(), i.id.clone())).collect(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        preferred_name: p.preferred_name.clone(),
        emails: labeled(&p.emails),
        phones: labeled(&p.phones),
        title: p.title.clone(),
        department: p.department.clone(),
        team: p.team.clone(),
        location: p.location.clone(),
        country: p.country.clone(),
        time_zone: p.time_zone.clone(),
        manager: p.manager.as_ref().map(|m| m.id.clone()),
        employment_type: p.employment_type.map(|t| {
            match t {
                wit::EmploymentType::Employee => "employee",
                wit::EmploymentType::Contractor => "contractor",
                wit::EmploymentType::Intern => "intern",
                wit::EmploymentType::Temporary => "temporary",
                wit::EmploymentType::Other => "other",
            }
            .to_string()
        }),
        start_date: p.start_date.clone(),
        end_date: p.end_date.clone(),
        status: match p.status {
            PersonStatus::Candidate => "candidate",
            PersonStatus::PreHire => "pre-hire",
            PersonStatus::Active => "active",
            PersonStatus::OnLeave => "on-leave",
            PersonStatus::Terminated => "terminated",
        }
        .into(),
        custom: p
            .custom
            .iter()
            .map(|(k, v)| {
                let a = match v {
                    wit::Value::Absent => Attr::Absent,
                    wit::Value::Text(t) => Attr::Text(t.clone()),
                    wit::Value::Many(m) => Attr::Many(m.clone()),
                    wit::Value::Number(n) => Attr::Number(*n),
                    wit::Value::Flag(b) => Attr::Flag(*b),
                };
                (k.clone(), a)
            })
            .collect(),
    }
}

/// Native evaluation: convert, evaluate, and return what the plugin returns (groups per account).
fn native(
    rules: &RuleSet,
    p: &Person,
    destinations: &[String],
    now_ms: i64,
) -> Vec<(String, Vec<String>, Option<String>)> {
    let e = rules
        .evaluate(
            &to_engine(p),
            &Request {
                event: "joiner",
                destinations,
                now_ms,
                trace: TraceLevel::Matched,
            },
        )
        .expect("evaluates");
    e.accounts
        .into_iter()
        .map(|a| (a.destination, a.groups, a.container))
        .collect()
}

/// Evaluations per second of `people` through the plugin (`handle`) and natively (`rules`),
/// in alternating rounds; the medians.
struct Rates {
    wasm: f64,
    native: f64,
}

struct Side<'a> {
    handle: &'a tenure_runtime::PluginHandle,
    rules: &'a RuleSet,
}

fn measure(
    rt: &tokio::runtime::Runtime,
    side: &Side<'_>,
    people: &[Person],
    ctx: &wit::rules::Context,
    rounds: usize,
    only: &str,
) -> Rates {
    let destinations = vec!["ad".to_string()];
    let now_ms = ctx.now_ms;
    let n = people.len() as f64;
    let mut wasm_rates = Vec::new();
    let mut native_rates = Vec::new();
    for _ in 0..rounds {
        if only != "native" {
            let started = Instant::now();
            rt.block_on(async {
                for p in people {
                    std::hint::black_box(side.handle.evaluate(p, ctx).await.expect("evaluates"));
                }
            });
            wasm_rates.push(n / started.elapsed().as_secs_f64());
        }
        if only != "wasm" {
            let started = Instant::now();
            for p in people {
                std::hint::black_box(native(side.rules, p, &destinations, now_ms));
            }
            native_rates.push(n / started.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Rates {
        wasm: median(&mut wasm_rates),
        native: median(&mut native_rates),
    }
}

fn main() {
    let people_n: usize = std::env::var("BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let full_text = rule_set();
    // One destination with nothing in it: what the call itself costs on each side.
    let empty_text = "destinations: { ad: {} }".to_string();
    let people: Vec<Person> = (0..people_n).map(person).collect();
    let destinations = vec!["ad".to_string()];
    let now_ms = 1_772_366_400_000;
    let ctx = context_from_json(json!({"destinations": ["ad"], "trace": "Matched", "now_ms": now_ms}))
        .expect("context");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let harness = Harness::new().expect("runtime");
    harness.load("rules").expect("plugins/build.sh has run");
    harness.tenant_with_rule_set("bench", "rules", &full_text);
    harness.tenant_with_rule_set("bench-empty", "rules", &empty_text);
    let full_handle = harness.runtime().plugin("bench", "rules").expect("handle");
    let empty_handle = harness.runtime().plugin("bench-empty", "rules").expect("handle");
    let full_rules = RuleSet::parse(&full_text).expect("rule set");
    let empty_rules = RuleSet::parse(&empty_text).expect("rule set");
    assert_eq!((full_rules.rule_count(), empty_rules.rule_count()), (200, 0));

    // Same answers both ways, or the comparison means nothing.
    for (handle, rules) in [(&full_handle, &full_rules), (&empty_handle, &empty_rules)] {
        for p in people.iter().step_by(997) {
            let w = rt.block_on(handle.evaluate(p, &ctx)).expect("wasm evaluates");
            let w: Vec<_> = w
                .accounts
                .into_iter()
                .map(|a| (a.destination, a.groups, a.container))
                .collect();
            assert_eq!(w, native(rules, p, &destinations, now_ms));
        }
    }

    let full = measure(
        &rt,
        &Side {
            handle: &full_handle,
            rules: &full_rules,
        },
        &people,
        &ctx,
        rounds,
        &only,
    );
    let empty = measure(
        &rt,
        &Side {
            handle: &empty_handle,
            rules: &empty_rules,
        },
        &people,
        &ctx,
        rounds,
        &only,
    );
    if let Ok(path) = std::env::var("BENCH_BASELINE") {
        against_baseline(&rt, &full_handle, &path, &full_text, &people, &ctx, rounds.max(5));
    }
    let us = |rate: f64| 1e6 / rate;
    println!("rule engine: {people_n} people x 200 rules, one core, median of {rounds} rounds");
    println!(
        "  wasm   (rules plugin, warm instance): {:>10.0} evaluations/s   (target >= 30,000)",
        full.wasm
    );
    println!(
        "  native (same engine, same process):   {:>10.0} evaluations/s",
        full.native
    );
    println!(
        "  ratio wasm/native (time per evaluation): {:.2}   (target <= 1.5)",
        full.native / full.wasm
    );
    // The empty set isolates the call: converting the person, the boundary, the result.
    // Were the engine as fast inside the guest as natively, a WASM evaluation would cost
    // the WASM call plus the native engine time: the least the ratio could be.
    let engine_native = us(full.native) - us(empty.native);
    let engine_wasm = us(full.wasm) - us(empty.wasm);
    println!(
        "  the call alone (empty rule set): wasm {:.2} us, native {:.2} us",
        us(empty.wasm),
        us(empty.native)
    );
    println!(
        "  the engine alone: wasm {engine_wasm:.2} us, native {engine_native:.2} us ({:.2}x)",
        engine_wasm / engine_native
    );
    println!(
        "  the least the ratio could be with the engine at native speed inside the guest: {:.2}",
        (us(empty.wasm) + engine_native) / us(full.native)
    );
}

/// This build's plugin against an older build of it, in alternating rounds, one process.
fn against_baseline(
    rt: &tokio::runtime::Runtime,
    current: &tenure_runtime::PluginHandle,
    path: &str,
    rule_set: &str,
    people: &[Person],
    ctx: &wit::rules::Context,
    rounds: usize,
) {
    use tenure_tests::bench_stats::{Spread, load_average};
    let harness = Harness::new().expect("runtime");
    harness
        .runtime()
        .register_file(std::path::Path::new(path))
        .expect("BENCH_BASELINE names a rules plugin");
    harness.tenant_with_rule_set("baseline", "rules", rule_set);
    let baseline = harness.runtime().plugin("baseline", "rules").expect("handle");
    let rate = |handle: &tenure_runtime::PluginHandle| {
        let started = Instant::now();
        rt.block_on(async {
            for p in people {
                std::hint::black_box(handle.evaluate(p, ctx).await.expect("evaluates"));
            }
        });
        people.len() as f64 / started.elapsed().as_secs_f64()
    };
    let load = load_average();
    let (mut now, mut before, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let b = rate(&baseline);
        let c = rate(current);
        before.push(b);
        now.push(c);
        ratios.push(c / b);
    }
    println!("against {path}: {rounds} alternating rounds, load {load}");
    println!(
        "  this build  {:.0} evaluations/s (min / median / max)",
        Spread::of(&now)
    );
    println!("  baseline    {:.0} evaluations/s", Spread::of(&before));
    println!("  ratio this/baseline per round: {:.3}", Spread::of(&ratios));
}
