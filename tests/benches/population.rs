//! Population-scale operations: reconciliation and impact preview over a tenant of
//! `POP_PEOPLE` people (default 100,000) with an account each in the sandbox
//! destination, on an in-process host (SQLite, rules-basic, synchronous=FULL).
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench population`
//! (`POP_PEOPLE`, `POP_RUNS` override the defaults: 100,000 people, 5 runs).
//!
//! The tenant is filled once through the events API (32 clients); then each run
//! measures, in this process:
//! - a dry-run reconciliation of everyone: its time, the process's peak resident memory
//!   above what it held before the run (the peak is reset through `/proc/self/clear_refs`),
//!   what it still holds afterwards, and the size of the report it stored;
//! - an impact preview of a draft that adds a group for everyone: its time and peak memory.
//!
//! The summary gives min / median / max of each figure over the runs and the load average.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same allocator as the `tenure` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tenure_pipeline::QueueConfig;
use tenure_rulesets::RuleSets;
use tenure_rulesets::impact::ImpactLimits;
use tenure_tests::host::{
    HostSpec, SOURCE_TOKEN, TENANT, TestHost, joiner, pipeline_toml, rules, tenant_toml,
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the process's peak resident set to what it holds now.
fn reset_peak() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak resident set ({e}); peaks include the fill");
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Posts `people` joiners from 32 clients and waits until every job is done.
async fn fill(host: &TestHost, people: usize) -> Duration {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (c, base, next) = (host.client.clone(), host.base.clone(), next.clone());
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= people {
                    return;
                }
                let body = joiner(&format!("p{i}"), if i % 2 == 0 { "Engineering" } else { "Sales" });
                let r = c
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(SOURCE_TOKEN)
                    .header("Idempotency-Key", format!("fill-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 202);
            }
        });
    }
    while clients.join_next().await.is_some() {}
    host.wait_idle(Duration::from_secs(3_600)).await;
    started.elapsed()
}

/// One run's figures, by name, in the order they are printed.
type Figures = Vec<(&'static str, f64)>;

async fn run(host: &TestHost, people: usize, draft: i64) -> Figures {
    // Reconciliation of everyone, report only.
    let resting = status_mib("VmRSS");
    reset_peak();
    let started = Instant::now();
    // Called directly, not over HTTP: a large tenant's run outlasts a request's deadline.
    let request = tenure_pipeline::reconcile::ReconcileRequest {
        destination: None,
        dry_run: true,
        actor: "bench".into(),
    };
    let report = host.pipeline.reconcile(TENANT, request).await.expect("reconcile");
    let reconcile_s = started.elapsed().as_secs_f64();
    assert_eq!(report.people, people, "everyone is reconciled");
    assert_eq!(report.accounts, people);
    drop(report);
    let reconcile_peak = status_mib("VmHWM") - resting;
    let reconcile_kept = status_mib("VmRSS") - resting;
    let db = rusqlite::Connection::open(host.store.path()).expect("db");
    let report_bytes: i64 = db
        .query_row(
            "SELECT length(body) FROM reports ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("report size");

    // Impact preview of a draft over everyone (a fresh throttle: this is not the API's budget).
    let resting = status_mib("VmRSS");
    reset_peak();
    let rule_sets = RuleSets::new(host.pipeline.clone());
    let limits = ImpactLimits {
        people: None,
        detail: 1_000,
    };
    let started = Instant::now();
    let impact = rule_sets.impact(TENANT, draft, limits).await.expect("impact");
    let impact_s = started.elapsed().as_secs_f64();
    assert_eq!(impact.people, people, "everyone is previewed");
    assert!(!impact.truncated);
    drop(impact);
    let impact_peak = status_mib("VmHWM") - resting;
    vec![
        ("reconciliation of everyone, s", reconcile_s),
        ("reconciliation: peak memory above resting, MiB", reconcile_peak),
        ("reconciliation: memory kept afterwards, MiB", reconcile_kept),
        ("reconciliation: stored report, KiB", report_bytes as f64 / 1024.0),
        ("impact preview of everyone, s", impact_s),
        ("impact preview: peak memory above resting, MiB", impact_peak),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let people = env("POP_PEOPLE", 100_000);
    let runs = env("POP_RUNS", 5).max(1);
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox]\nkv_max_keys = 5000000\n\
         kv_max_mib = 4096\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\", \"mail\"]\n",
    );
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            concurrency: 128,
            poll_ms: 50,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "sandbox"],
    })
    .await;
    println!(
        "population: {people} people, {runs} runs; load average {}",
        load_average()
    );
    let took = fill(&host, people).await;
    println!(
        "filled in {:.1} s ({:.0} people/s); resident {:.0} MiB",
        took.as_secs_f64(),
        people as f64 / took.as_secs_f64(),
        status_mib("VmRSS")
    );
    // The draft the impact preview weighs: everyone gains a group.
    let rule_sets = RuleSets::new(host.pipeline.clone());
    let base = rules("sandbox");
    let v1 = rule_sets
        .draft(TENANT, &base, "bench", "the running rules")
        .await
        .expect("draft v1");
    rule_sets
        .publish(TENANT, v1.version.version, "bench-admin")
        .await
        .expect("publish v1");
    let changed = base.replace("group:All-Staff", "group:All-Staff, group:Everyone");
    let v2 = rule_sets
        .draft(TENANT, &changed, "bench", "everyone gains a group")
        .await
        .expect("draft v2");

    let mut all: Vec<Figures> = Vec::new();
    for i in 0..runs {
        let figures = run(&host, people, v2.version.version).await;
        println!("run {}: {figures:?}", i + 1);
        all.push(figures);
    }
    println!("\nload average after: {}", load_average());
    println!("{:<52} {:>10} {:>10} {:>10}", "figure", "min", "median", "max");
    for (k, (name, _)) in all[0].iter().enumerate() {
        let mut v: Vec<f64> = all.iter().map(|f| f[k].1).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name:<52} {:>10.1} {:>10.1} {:>10.1}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}
