//! End-to-end pipeline benchmark: events posted over HTTP to an in-process
//! host (SQLite with synchronous=FULL, rules-basic, the sandbox destination),
//! applied by the workers, measured until every job is done.
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench pipeline`
//! (`BENCH_EVENTS`, `BENCH_CLIENTS`, `BENCH_WORKERS` override the defaults).
//!
//! Reported, in one process:
//! - baseline: `GET /healthz` round trips with the same clients (the HTTP floor);
//! - throughput: `BENCH_CLIENTS` clients post as fast as they can; sustained events per
//!   second end to end (first post to last job done);
//! - latency at a steady rate (`BENCH_RATE` events/s, open loop): the durable
//!   acknowledgement of `POST /api/v1/events` and receipt-to-done, p50 and p99.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The same allocator as the `tenure` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tenure_pipeline::QueueConfig;
use tenure_tests::host::{HostSpec, SOURCE_TOKEN, TestHost, joiner, pipeline_toml, rules, tenant_toml};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = env("BENCH_EVENTS", 10_000);
    let rate = env("BENCH_RATE", 2_000);
    let clients = env("BENCH_CLIENTS", 32);
    let workers = env("BENCH_WORKERS", 32);
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
    let client = host.client.clone();

    // Baseline: the HTTP floor.
    let base = host.base.clone();
    let c = client.clone();
    let floor = drive(clients, 5_000, move |_| {
        let (c, base) = (c.clone(), base.clone());
        async move {
            let r = c.get(format!("{base}/healthz")).send().await.expect("healthz");
            assert!(r.status().is_success());
        }
    })
    .await;

    // End to end.
    let started = Instant::now();
    let (c, base) = (client.clone(), host.base.clone());
    let acks = drive(clients, events, move |i| {
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
    })
    .await;
    let posted = started.elapsed();
    host.wait_idle(Duration::from_secs(600)).await;
    let done = started.elapsed();

    // Latency at a steady rate: events are sent on a schedule, whatever the answers.
    let steady = (rate * 5).max(1);
    let mut sends = tokio::task::JoinSet::new();
    let interval_us = 1_000_000 / rate.max(1) as u64;
    let steady_start = Instant::now();
    for i in 0..steady {
        let due = steady_start + Duration::from_micros(i as u64 * interval_us);
        tokio::time::sleep_until(due.into()).await;
        let (c, base) = (client.clone(), host.base.clone());
        sends.spawn(async move {
            let body = joiner(&format!("s{i}"), "Sales");
            let t = Instant::now();
            let r = c
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(SOURCE_TOKEN)
                .header("Idempotency-Key", format!("steady-{i}"))
                .json(&body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 202);
            t.elapsed().as_secs_f64() * 1000.0
        });
    }
    let mut steady_acks = Vec::new();
    while let Some(l) = sends.join_next().await {
        steady_acks.push(l.expect("send"));
    }
    steady_acks.sort_by(|a, b| a.total_cmp(b));
    host.wait_idle(Duration::from_secs(600)).await;

    let db = rusqlite::Connection::open(host.store.path()).expect("db");
    let done_ms = |prefix: &str| -> Vec<f64> {
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
    };
    let to_done = done_ms("bench-");
    let steady_done = done_ms("steady-");
    let completed = to_done.len();
    let ops: i64 = db
        .query_row("SELECT count(*) FROM operations WHERE status = 'done'", [], |r| {
            r.get(0)
        })
        .expect("ops");
    assert_eq!(completed, events, "every event completes");

    let sustained = events as f64 / done.as_secs_f64();
    println!(
        "pipeline benchmark: {workers} workers, sandbox destination, SQLite synchronous=FULL, {} connector \
            operations per event",
        ops as f64 / (events + steady) as f64
    );
    println!(
        "  baseline GET /healthz ({clients} clients)     p50 {:>7.2} ms   p99 {:>7.2} ms",
        percentile(&floor, 0.5),
        percentile(&floor, 0.99)
    );
    println!(
        "  throughput: {events} joiners from {clients} clients: {sustained:.0} events/s end to end (intake \
            alone {:.0} events/s)",
        events as f64 / posted.as_secs_f64()
    );
    println!(
        "    ack under saturation   p50 {:>7.2} ms   p99 {:>7.2} ms   (p99 = {:.1}x the HTTP floor)",
        percentile(&acks, 0.5),
        percentile(&acks, 0.99),
        percentile(&acks, 0.99) / percentile(&floor, 0.99)
    );
    println!(
        "    event -> done (backlog) p50 {:>6.0} ms   p99 {:>7.0} ms",
        percentile(&to_done, 0.5),
        percentile(&to_done, 0.99)
    );
    println!("  steady {rate} events/s for 5 s (open loop):");
    println!(
        "    ack                    p50 {:>7.2} ms   p99 {:>7.2} ms   (p99 = {:.1}x the HTTP floor)",
        percentile(&steady_acks, 0.5),
        percentile(&steady_acks, 0.99),
        percentile(&steady_acks, 0.99) / percentile(&floor, 0.99)
    );
    println!(
        "    event -> done          p50 {:>7.0} ms   p99 {:>7.0} ms",
        percentile(&steady_done, 0.5),
        percentile(&steady_done, 0.99)
    );
}
