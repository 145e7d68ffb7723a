//! End-to-end pipeline benchmark: events posted over HTTP to an in-process
//! host (SQLite with synchronous=FULL, rules-basic, the sandbox destination),
//! applied by the workers, measured until every job is done.
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench pipeline`
//! (`BENCH_RUNS`, `BENCH_EVENTS`, `BENCH_CLIENTS`, `BENCH_WORKERS`, `BENCH_RATE` override the
//! defaults: 5 runs, 10,000 events, 32 clients, 128 workers, 2,000 events/s).
//!
//! Each run starts a fresh host; the summary gives min / median / max of every
//! figure over the runs (never the best run alone) and the load average around them.
//! Reported per run, in one process:
//! - baseline: `GET /healthz` round trips with the same clients (the HTTP floor);
//! - throughput: `BENCH_CLIENTS` clients post as fast as they can; sustained events per
//!   second end to end (first post to last job done);
//! - latency at a steady rate (`BENCH_RATE` events/s, open loop): the durable
//!   acknowledgement of `POST /api/v1/events` and receipt-to-done, p50 and p99;
//! - latency at a low rate (10 events/s for 5 s): receipt-to-done p99;
//! - the process's CPU seconds per 1,000 events in the throughput phase, and the store's
//!   bytes per event (database and WAL) and audit entries per event at the end.
//!
//! `BENCH_KEEP_STORE=<file>` keeps a copy of the last run's store for inspection.
//!
//! The load generator runs on a runtime of its own (one thread), as a client on another
//! machine would: on the host's runtime its requests and its reading of the answers
//! queued behind the host's own tasks, counting the host's scheduling delay twice.
//! `BENCH_LOAD_RUNTIME=shared` puts it back on the host's runtime (the figures before
//! 2026-12-06 were measured that way).

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same allocator as the `tenure` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tenure_pipeline::QueueConfig;
use tenure_tests::bench_stats::{env_usize as env, load_average, percentile, process_cpu_seconds};
use tenure_tests::host::{HostSpec, SOURCE_TOKEN, TestHost, joiner, pipeline_toml, rules, tenant_toml};

/// Runs `total` requests from `clients` concurrent clients; returns each request's latency (ms).
async fn drive<F, Fut>(clients: usize, total: usize, make: F) -> Vec<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (make, next) = (make.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return lat;
                }
                let t = Instant::now();
                make(i).await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all.sort_by(|a, b| a.total_cmp(b));
    all
}

/// One run's figures, by name, in the order they are printed.
type Figures = Vec<(&'static str, f64)>;

/// Posts `count` joiners on a schedule of `rate` per second, whatever the answers; their
/// acknowledgement latencies (ms), sorted.
async fn open_loop(target: Target, prefix: &'static str, count: usize, rate: usize) -> Vec<f64> {
    let mut sends = tokio::task::JoinSet::new();
    let interval_us = 1_000_000 / rate.max(1) as u64;
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_micros(i as u64 * interval_us);
        tokio::time::sleep_until(due.into()).await;
        let (c, base) = (target.client.clone(), target.base.clone());
        sends.spawn(async move {
            let body = joiner(&format!("{prefix}{i}"), "Sales");
            let t = Instant::now();
            let r = c
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(SOURCE_TOKEN)
                .header("Idempotency-Key", format!("{prefix}-{i}"))
                .json(&body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 202);
            t.elapsed().as_secs_f64() * 1000.0
        });
    }
    let mut acks = Vec::new();
    while let Some(l) = sends.join_next().await {
        acks.push(l.expect("send"));
    }
    acks.sort_by(|a, b| a.total_cmp(b));
    acks
}

/// Where the load goes: the host's address and a client made for the load generator.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    base: String,
}

/// The runtime the load generator runs on: its own (one thread), or the host's.
struct Load {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Load {
    fn new() -> Load {
        let shared = std::env::var("BENCH_LOAD_RUNTIME").is_ok_and(|v| v == "shared");
        let runtime = (!shared).then(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("bench-load")
                .enable_all()
                .build()
                .expect("the load generator's runtime")
        });
        Load { runtime }
    }

    /// Runs `work` on the load generator's runtime.
    async fn run<F>(&self, work: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => runtime.spawn(work).await.expect("load generator"),
            None => work.await,
        }
    }

    fn close(self) {
        if let Some(runtime) = self.runtime {
            runtime.shutdown_background();
        }
    }
}

/// Receipt-to-done latencies (ms) of the completed jobs whose idempotency keys start with `prefix`.
fn done_ms(db: &rusqlite::Connection, prefix: &str) -> Vec<f64> {
    let mut v: Vec<f64> = db
        .prepare(
            "SELECT j.finished_ms - e.received_ms FROM jobs j JOIN events e ON e.id = j.event_id
             WHERE j.state = 'completed' AND e.idempotency_key LIKE ?1",
        )
        .expect("query")
        // A client's keys are stored in its token's namespace: `~<token>/<key>`.
        .query_map([format!("~%/{prefix}%")], |r| r.get::<_, i64>(0))
        .expect("rows")
        .map(|v| v.expect("row") as f64)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

struct Settings {
    events: usize,
    rate: usize,
    clients: usize,
    workers: usize,
}

async fn run(settings: &Settings, load: &Load) -> Figures {
    let Settings {
        events,
        rate,
        clients,
        workers,
    } = *settings;
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\", \"mail\"]\n",
    );
    let queue = QueueConfig {
        concurrency: workers,
        poll_ms: 50,
        ..QueueConfig::default()
    };
    let host = Arc::new(
        TestHost::start(HostSpec {
            tenant,
            pipeline,
            queue,
            plugins: vec!["rules-basic", "sandbox"],
        })
        .await,
    );
    let target = Target {
        client: reqwest::Client::new(),
        base: host.base.clone(),
    };
    let client = target.client.clone();

    // Baseline: the HTTP floor.
    let base = host.base.clone();
    let c = client.clone();
    let floor = load
        .run(drive(clients, 5_000, move |_| {
            let (c, base) = (c.clone(), base.clone());
            async move {
                let r = c.get(format!("{base}/healthz")).send().await.expect("healthz");
                assert!(r.status().is_success());
            }
        }))
        .await;

    // End to end.
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let (c, base) = (client.clone(), host.base.clone());
    let acks = load
        .run(drive(clients, events, move |i| {
            let (c, base) = (c.clone(), base.clone());
            async move {
                let body = joiner(&format!("b{i}"), if i % 2 == 0 { "Engineering" } else { "Sales" });
                let r = c
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(SOURCE_TOKEN)
                    .header("Idempotency-Key", format!("bench-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 202);
            }
        }))
        .await;
    let posted = started.elapsed();
    host.wait_idle(Duration::from_secs(600)).await;
    let done = started.elapsed();
    let cpu_per_thousand = (process_cpu_seconds() - cpu_before) * 1000.0 / events as f64;

    // Latency at a steady rate, then at a low one.
    let steady = (rate * 5).max(1);
    let steady_acks = load.run(open_loop(target.clone(), "steady", steady, rate)).await;
    host.wait_idle(Duration::from_secs(600)).await;
    let low = 50;
    let _ = load.run(open_loop(target, "low", low, 10)).await;
    host.wait_idle(Duration::from_secs(600)).await;

    let db = rusqlite::Connection::open(host.store.path()).expect("db");
    let to_done = done_ms(&db, "bench-");
    let steady_done = done_ms(&db, "steady-");
    let low_done = done_ms(&db, "low-");
    assert_eq!(to_done.len(), events, "every event completes");
    assert_eq!(steady_done.len(), steady, "every steady event completes");
    let total = (events + steady + low) as f64;
    let audit_rows: i64 = db
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("audit rows");
    let path = host.store.path().to_path_buf();
    let size = |suffix: &str| {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        std::fs::metadata(&name).map(|m| m.len()).unwrap_or(0) as f64
    };
    let bytes = size("") + size("-wal");
    if let Ok(keep) = std::env::var("BENCH_KEEP_STORE") {
        // A copy of the store for inspection (e.g. `sqlite3 <file> 'SELECT * FROM dbstat'`).
        db.execute("VACUUM INTO ?1", [&keep]).expect("copy of the store");
    }
    vec![
        (
            "throughput, events/s end to end",
            events as f64 / done.as_secs_f64(),
        ),
        ("intake alone, events/s", events as f64 / posted.as_secs_f64()),
        ("ack under saturation p99, ms", percentile(&acks, 0.99)),
        ("backlog: receipt to done p99, ms", percentile(&to_done, 0.99)),
        ("steady: ack p50, ms", percentile(&steady_acks, 0.5)),
        ("steady: ack p99, ms", percentile(&steady_acks, 0.99)),
        ("steady: receipt to done p50, ms", percentile(&steady_done, 0.5)),
        ("steady: receipt to done p99, ms", percentile(&steady_done, 0.99)),
        ("10/s: receipt to done p99, ms", percentile(&low_done, 0.99)),
        ("HTTP floor GET /healthz p99, ms", percentile(&floor, 0.99)),
        ("CPU seconds per 1,000 events (saturated)", cpu_per_thousand),
        ("store bytes per event (database + WAL)", bytes / total),
        ("audit entries per event", audit_rows as f64 / total),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let settings = Settings {
        events: env("BENCH_EVENTS", 10_000),
        rate: env("BENCH_RATE", 2_000),
        clients: env("BENCH_CLIENTS", 32),
        workers: env("BENCH_WORKERS", 128),
    };
    let runs = env("BENCH_RUNS", 5).max(1);
    let load_before = load_average();
    let mut all: Vec<Figures> = Vec::new();
    let load = Load::new();
    let shared = load.runtime.is_none();
    for i in 0..runs {
        let figures = run(&settings, &load).await;
        println!(
            "run {}/{runs}: {:.0} events/s, steady ack p99 {:.2} ms, steady receipt to done p99 {:.0} ms",
            i + 1,
            figures[0].1,
            figures[5].1,
            figures[7].1
        );
        all.push(figures);
    }
    load.close();
    println!(
        "pipeline benchmark: {} joiners from {} clients, then {} events/s for 5 s and 10 events/s for 5 s; \
            {} workers, sandbox destination, SQLite synchronous=FULL",
        settings.events, settings.clients, settings.rate, settings.workers
    );
    println!(
        "{runs} runs; load average (1, 5, 15 min) before {load_before}, after {}; load generator on {}",
        load_average(),
        if shared {
            "the host's runtime"
        } else {
            "a runtime of its own"
        }
    );
    println!("{:<44} {:>10} {:>10} {:>10}", "", "min", "median", "max");
    for (i, (name, _)) in all[0].iter().enumerate() {
        let mut values: Vec<f64> = all.iter().map(|f| f[i].1).collect();
        values.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name:<44} {:>10.2} {:>10.2} {:>10.2}",
            values[0],
            percentile(&values, 0.5),
            values[values.len() - 1]
        );
    }
}
