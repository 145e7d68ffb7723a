//! Plugin call benchmark: the rules-basic plugin in the real host against the
//! same engine compiled natively, in one process, reported as ratios.
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench plugin_calls`
//!
//! Cases (each on a 30-attribute person):
//! - pooled instantiate + configure + evaluate (no warm instance; the pooling allocator)
//! - warm evaluate (a configured instance reused, as the host does in production)
//! - native evaluate (flatten + evaluate + build the same output records)
//!
//! with a small rule set (the example's 7 rules) and a realistic 200-rule set.

use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_capabilities::{MemoryKv, SystemClock};
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_rules_basic_engine::{Record, RuleSet, TraceLevel};
use tenure_runtime::RuntimeOptions;
use tenure_runtime::wit::{self, Attribute, DesiredAccount, EmploymentType, Person, PersonStatus, Value};

use tenure_tests::bench_data::{DEPARTMENTS, LOCATIONS};

/// 200 rules: department x level, location offices, title prefixes, employment types.
fn rules_200() -> String {
    let mut s = String::from("destination ad\n");
    for d in DEPARTMENTS {
        for level in [
            "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9", "L10", "L11", "L12",
        ] {
            s += &format!(
                "rule {d}-{level}: department == \"{d}\" and level == \"{level}\" => group:{d}-{level}, \
                    ou:OU={d}\n"
            );
        }
    }
    for l in LOCATIONS {
        for app in ["vpn", "badge", "wifi", "printer", "parking", "lockers"] {
            s += &format!("rule {l}-{app}: location == \"{l}\" and office_apps present => app:{l}-{app}\n");
        }
    }
    for (i, prefix) in [
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
    ]
    .iter()
    .enumerate()
    {
        s +=
            &format!("rule title-{i}: title ^= \"{prefix}\" or cost_center $= \"-{i}\" => group:title-{i}\n");
    }
    s += "rule contractor: employment_type in [\"contractor\", \"temporary\"] => group:Contractors\n";
    s += "rule leaver: status == \"terminated\" => disable, stop\n";
    s += "default => ou:OU=People, group:All-Staff\n";
    s += "set displayName = \"{given_name} {family_name}\"\nset mail = \"{email}\"\n";
    s
}

/// A person with 30 attributes: 15 fixed fields and 15 custom ones.
fn person30() -> Person {
    let mut custom = vec![
        json!(["level", {"Text": "L7"}]),
        json!(["office_apps", {"Text": "yes"}]),
        json!(["cost_center", {"Text": "CC-4410-7"}]),
    ];
    for i in 0..12 {
        custom.push(json!([format!("extra_{i}"), {"Text": format!("value number {i}")}]));
    }
    person_from_json(json!({
        "ids": [{"source": "lever", "id": "c0ffee-1234"}],
        "given_name": "Ada", "family_name": "Lovelace", "preferred_name": "Ada",
        "emails": [{"kind": "work", "value": "ada.lovelace@example.test", "primary": true}],
        "phones": [{"kind": "mobile", "value": "+4915112345678", "primary": true}],
        "title": "Senior Software Engineer", "department": "Engineering", "team": "Platform",
        "location": "Berlin", "country": "DE", "time_zone": "Europe/Berlin",
        "manager": {"source": "lever", "id": "m-42"}, "employment_type": "Employee",
        "start_date": "2026-03-01", "status": "Active", "custom": custom
    }))
    .expect("valid person")
}

/// The plugin's `flatten`, over the host's copy of the WIT types.
fn flatten(p: &Person) -> Record<'_> {
    let mut r: Record<'_> = Vec::with_capacity(16 + p.custom.len());
    let fields = [
        ("given_name", &p.given_name),
        ("family_name", &p.family_name),
        ("preferred_name", &p.preferred_name),
        ("title", &p.title),
        ("department", &p.department),
        ("team", &p.team),
        ("location", &p.location),
        ("country", &p.country),
        ("time_zone", &p.time_zone),
        ("start_date", &p.start_date),
        ("end_date", &p.end_date),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            r.push((name, v.as_str()));
        }
    }
    if let Some(email) = p
        .emails
        .iter()
        .find(|e| e.primary)
        .or(p.emails.first())
        .map(|e| e.value.as_str())
    {
        r.push(("email", email));
    }
    if let Some(t) = p.employment_type {
        r.push((
            "employment_type",
            match t {
                EmploymentType::Employee => "employee",
                EmploymentType::Contractor => "contractor",
                EmploymentType::Intern => "intern",
                EmploymentType::Temporary => "temporary",
                EmploymentType::Other => "other",
            },
        ));
    }
    r.push((
        "status",
        match p.status {
            PersonStatus::Candidate => "candidate",
            PersonStatus::PreHire => "pre-hire",
            PersonStatus::Active => "active",
            PersonStatus::OnLeave => "on-leave",
            PersonStatus::Terminated => "terminated",
        },
    ));
    for (k, v) in &p.custom {
        if let Value::Text(s) = v {
            r.push((k.as_str(), s.as_str()));
        }
    }
    r
}

/// The native path: the same work the plugin does, producing the same records.
fn native_evaluate(
    rules: &RuleSet,
    p: &Person,
    destinations: &[String],
    level: TraceLevel,
) -> wit::rules::Evaluation {
    let record = flatten(p);
    let mut trace = Vec::new();
    let desired = rules.evaluate(&record, destinations, level, &mut trace);
    wit::rules::Evaluation {
        accounts: desired
            .into_iter()
            .map(|d| DesiredAccount {
                destination: d.destination,
                attributes: d
                    .attributes
                    .into_iter()
                    .map(|(name, v)| Attribute {
                        name,
                        value: Value::Text(v),
                    })
                    .collect(),
                container: d.container,
                groups: d.groups,
                licenses: d.licenses,
                app_assignments: d.apps,
                enabled: d.enabled,
                expires_at: None,
                tickets: Vec::new(),
            })
            .collect(),
        trace: trace
            .into_iter()
            .map(|t| wit::rules::TraceEntry {
                destination: t.destination,
                reason: if t.matched {
                    "condition matched".into()
                } else {
                    "condition not met".into()
                },
                rule: t.rule,
                matched: t.matched,
                inputs: t
                    .inputs
                    .into_iter()
                    .map(|(k, v)| (k, v.map(Value::Text).unwrap_or(Value::Absent)))
                    .collect(),
                contributed: t.contributed,
            })
            .collect(),
    }
}

struct Stats {
    name: String,
    p50: Duration,
    p99: Duration,
    mean: Duration,
    n: usize,
}

fn stats(name: &str, mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    Stats {
        name: name.into(),
        p50: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
        mean,
        n,
    }
}

async fn measure_async<F, Fut>(name: &str, budget: Duration, mut f: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    if skip(name) {
        return stats(name, vec![Duration::ZERO]);
    }
    for _ in 0..200 {
        f().await;
    }
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    while Instant::now() < end {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    stats(name, samples)
}

/// `BENCH_CASE=text` runs only the cases whose name contains `text` (for profiling).
fn skip(name: &str) -> bool {
    std::env::var("BENCH_CASE").is_ok_and(|c| !name.contains(&c))
}

fn measure(name: &str, budget: Duration, mut f: impl FnMut()) -> Stats {
    if skip(name) {
        return stats(name, vec![Duration::ZERO]);
    }
    for _ in 0..200 {
        f();
    }
    let mut samples = Vec::new();
    let end = Instant::now() + budget;
    while Instant::now() < end {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    stats(name, samples)
}

const PY_RULES: &str = r#"{"destinations": {"ad": {
    "department_groups": {"Engineering": ["eng", "github"]},
    "location_containers": {"Berlin": "ou=EU"},
    "default_groups": ["all-staff"], "default_container": "ou=People"}}}"#;

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let small = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/rules-basic/fixtures/rules.txt"
    ))
    .expect("example rule set");
    let big = rules_200();
    let person = person30();
    let attrs = 15 + person.custom.len();
    // Production evaluations trace the rules that fired (what the audit keeps);
    // preview asks for every rule tested.
    let ctx = context_from_json(json!({"destinations": ["ad"], "trace": "Matched"})).expect("context");
    let ctx_all = context_from_json(json!({"destinations": ["ad"], "trace": "All"})).expect("context");
    let destinations = vec!["ad".to_string()];

    let cold = Harness::with(
        RuntimeOptions {
            warm_per_tenant: 0,
            ..RuntimeOptions::default()
        },
        Arc::new(MemoryKv::default()),
        Arc::new(SystemClock),
    )
    .expect("runtime");
    cold.load("rules-basic").expect("plugins/build.sh has run");
    cold.tenant_with_rule_set("small", "rules-basic", &small);
    cold.load("chaos").expect("plugin");
    cold.tenant("bare", "").expect("tenant");
    let warm = Harness::new().expect("runtime");
    warm.load("rules-basic").expect("plugin");
    warm.tenant_with_rule_set("small", "rules-basic", &small);
    warm.tenant_with_rule_set("big", "rules-basic", &big);
    warm.load("chaos").expect("plugin");
    warm.tenant("bare", "").expect("tenant");
    let bare = person_from_json(json!({"custom": [["mode", {"Text": "ok"}]]})).expect("person");
    // The same minimal plugin, given the full 30-attribute person (it reads one).
    let mut full = person.clone();
    full.custom.push(("mode".into(), wit::Value::Text("ok".into())));
    warm.load("rules-py").expect("plugin");
    warm.tenant_with_rule_set("py", "rules-py", PY_RULES);
    warm.load("connector-js").expect("plugin");
    warm.tenant("js", "[plugins.connector-js.grants]\nkv = true\n")
        .expect("tenant");
    let small_rules = RuleSet::parse(&small).expect("rules");
    let big_rules = RuleSet::parse(&big).expect("rules");
    assert_eq!(big_rules.rule_count(), 200);

    // Same answers both ways, or the comparison means nothing.
    for (c, level) in [(&ctx, TraceLevel::Matched), (&ctx_all, TraceLevel::All)] {
        let handle = warm.runtime().plugin("big", "rules-basic").unwrap();
        let check = rt.block_on(handle.evaluate(&person, c)).unwrap();
        assert_eq!(check, native_evaluate(&big_rules, &person, &destinations, level));
    }
    let m = TraceLevel::Matched;

    let results = rt.block_on(async {
        let cold_small = cold.runtime().plugin("small", "rules-basic").unwrap();
        let warm_small = warm.runtime().plugin("small", "rules-basic").unwrap();
        let warm_big = warm.runtime().plugin("big", "rules-basic").unwrap();
        let chaos = warm.runtime().plugin("bare", "chaos").unwrap();
        let cold_chaos = cold.runtime().plugin("bare", "chaos").unwrap();
        let py = warm.runtime().plugin("py", "rules-py").unwrap();
        let js = warm.runtime().plugin("js", "connector-js").unwrap();
        let key = [wit::MatchKey {
            attribute: "employeeId".into(),
            value: "1001".into(),
        }];
        vec![
            measure_async(
                "wasm: pooled instantiate + call, 1-attribute person",
                budget,
                || async {
                    cold_chaos.evaluate(&bare, &ctx).await.unwrap();
                },
            )
            .await,
            measure_async(
                "wasm: pooled instantiate + call, 30-attribute person",
                budget,
                || async {
                    cold_chaos.evaluate(&full, &ctx).await.unwrap();
                },
            )
            .await,
            measure_async(
                "wasm: warm call, 1-attribute person, 1 attribute out",
                budget,
                || async {
                    chaos.evaluate(&bare, &ctx).await.unwrap();
                },
            )
            .await,
            measure_async(
                "wasm: pooled instantiate + configure + evaluate (7 rules)",
                budget,
                || async {
                    cold_small.evaluate(&person, &ctx).await.unwrap();
                },
            )
            .await,
            measure_async("wasm: warm evaluate (7 rules)", budget, || async {
                warm_small.evaluate(&person, &ctx).await.unwrap();
            })
            .await,
            measure("native: evaluate (7 rules)", budget, || {
                std::hint::black_box(native_evaluate(&small_rules, &person, &destinations, m));
            }),
            measure_async("wasm: warm evaluate (200 rules)", budget, || async {
                warm_big.evaluate(&person, &ctx).await.unwrap();
            })
            .await,
            measure("native: evaluate (200 rules)", budget, || {
                std::hint::black_box(native_evaluate(&big_rules, &person, &destinations, m));
            }),
            measure_async("wasm: warm evaluate (200 rules, full trace)", budget, || async {
                warm_big.evaluate(&person, &ctx_all).await.unwrap();
            })
            .await,
            measure_async(
                "python: warm evaluate (rules-py, 1 destination)",
                budget,
                || async {
                    py.evaluate(&person, &ctx).await.unwrap();
                },
            )
            .await,
            measure_async("javascript: warm lookup (connector-js, kv)", budget, || async {
                js.lookup(&key).await.unwrap();
            })
            .await,
            measure("native: evaluate (200 rules, full trace)", budget, || {
                std::hint::black_box(native_evaluate(
                    &big_rules,
                    &person,
                    &destinations,
                    TraceLevel::All,
                ));
            }),
        ]
    });
    println!(
        "plugin_calls: rules-basic on a {attrs}-attribute person ({} ms per case)\n",
        budget.as_millis()
    );
    println!(
        "{:<60} {:>10} {:>10} {:>10} {:>9}",
        "case", "p50", "p99", "mean", "calls"
    );
    for s in &results {
        println!(
            "{:<60} {:>10.2?} {:>10.2?} {:>10.2?} {:>9}",
            s.name, s.p50, s.p99, s.mean, s.n
        );
    }
    let p50 = |name: &str| {
        results
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.p50.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    let ratio = |wasm: &str, native: &str| p50(wasm) / p50(native);
    println!();
    println!(
        "ratio wasm/native, warm, 7 rules                (p50): {:.2}",
        ratio("wasm: warm evaluate (7 rules)", "native: evaluate (7 rules)")
    );
    println!(
        "ratio wasm/native, warm, 200 rules              (p50): {:.2}  (target <= 1.5)",
        ratio("wasm: warm evaluate (200 rules)", "native: evaluate (200 rules)")
    );
    println!(
        "ratio wasm/native, warm, 200 rules, full trace  (p50): {:.2}",
        ratio(
            "wasm: warm evaluate (200 rules, full trace)",
            "native: evaluate (200 rules, full trace)"
        )
    );
    println!(
        "pooled instantiate + call p50: minimal plugin {:.1} us (30-attribute person {:.1} us), rules-basic \
            (7 rules) {:.1} us  (target <= 20 us)",
        p50("wasm: pooled instantiate + call, 1-attribute person") * 1e6,
        p50("wasm: pooled instantiate + call, 30-attribute person") * 1e6,
        p50("wasm: pooled instantiate + configure + evaluate (7 rules)") * 1e6
    );
}
