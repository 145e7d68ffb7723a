//! Scale-out benchmark: the pipeline on PostgreSQL with one, two and three `tenure serve`
//! hosts, against one host on SQLite in the same run, all on this machine.
//!
//! Run: `plugins/build.sh && cargo build --release -p tenure &&
//! cargo bench -p tenure-tests --bench scale_out`
//! (`BENCH_RUNS`, `BENCH_EVENTS`, `BENCH_CLIENTS`, `BENCH_RATE`, `BENCH_WORKERS`, `BENCH_CONNECTIONS`
//! override the defaults: 5 runs, 3,000 events, 32 clients, 500 events/s, 32 workers per host, 16
//! connections to PostgreSQL for all hosts together (a host's default pool, split evenly: 16, 8, 5;
//! sized to the database's cores, as docs/scale-out.md advises); `BENCH_SETUPS=1,3` runs only those
//! setups, numbered from 0 in the order of the summary, for profiling).
//!
//! Each run starts fresh hosts (release build, `tenure serve`, rules-basic, sandbox destination) on a
//! fresh store for every setup in turn, so every setup is measured in every run under the same
//! conditions; the summary gives min / median / max over the runs. Per setup and run:
//! - throughput: `BENCH_CLIENTS` clients post joiners as fast as they are answered, spread over the
//!   hosts; events per second from the first post to the last job done;
//! - at a steady `BENCH_RATE` events/s for 5 s (open loop, spread over the hosts): the
//!   acknowledgement p99 and receipt-to-done p99;
//! - in the throughput phase: CPU per event of the hosts and of the database server, and (PostgreSQL)
//!   statements per event, from `pg_stat_statements`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_tests::bench_stats::{env_usize as env, percentile};
use tenure_tests::serve::{free_port, wait_ready};

const TOKEN: &str = "bench-token-0123456789abcdef";

/// Where a setup keeps its state.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Setup {
    name: &'static str,
    backend: Backend,
    hosts: usize,
}

const SETUPS: &[Setup] = &[
    Setup {
        name: "SQLite, 1 host",
        backend: Backend::Sqlite,
        hosts: 1,
    },
    Setup {
        name: "PostgreSQL, 1 host",
        backend: Backend::Postgres,
        hosts: 1,
    },
    Setup {
        name: "PostgreSQL, 2 hosts",
        backend: Backend::Postgres,
        hosts: 2,
    },
    Setup {
        name: "PostgreSQL, 3 hosts",
        backend: Backend::Postgres,
        hosts: 3,
    },
];

/// CPU seconds (user and system) a process has used so far.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds the database server's processes have used so far (every `postgres` process).
fn database_cpu() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total += cpu_of(pid);
        }
    }
    total
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn joiner(id: &str) -> Value {
    serde_json::json!({
        "kind": "joiner", "source": "hr", "source_record_id": format!("hire-{id}"),
        "person": { "ids": [{"source": "hr", "id": id}], "given_name": format!("Given{id}"),
            "family_name": "Test", "department": "Sales",
            "emails": [{"value": format!("p{id}@example.test"), "primary": true}] }
    })
}

fn write_config(dir: &Path, store: &str, port: u16, workers: usize) -> PathBuf {
    let root = tenure_plugin_test::workspace_root();
    std::fs::write(
        dir.join("rules.txt"),
        "destination sandbox\n\
         rule sales: department == \"Sales\" => group:Sales, ou:OU=Sales\n\
         default => ou:OU=People, group:All-Staff\n\
         set employeeId = \"{id}\"\nset mail = \"{email}\"\n",
    )
    .unwrap();
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
{store}
[server]
listen = "127.0.0.1:{port}"
[queue]
concurrency = {workers}
poll_ms = 50
[[api_tokens]]
name = "bench"
role = "it"
tenant = "t"
token = "{TOKEN}"
[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "sandbox"
connector = "sandbox"
matching = ["employeeId", "mail"]
guard = {{ max_accounts = 1000000, max_percent = 100.0 }}
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.plugins.sandbox.grants]
kv = true
"#,
        plugins = tenure_plugin_test::plugin_dir().display(),
        cache = root.join("target/component-cache").display(),
    );
    let path = dir.join("tenure.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The release `tenure` binary.
fn release_binary() -> PathBuf {
    let path = tenure_plugin_test::workspace_root().join("target/release/tenure");
    assert!(
        path.exists(),
        "{} is missing: cargo build --release -p tenure",
        path.display()
    );
    path
}

/// Starts a host; with `BENCH_LOG` set (a `RUST_LOG` filter, for profiling) its log goes to
/// `target/bench-serve-<pid>-<host>.log` at that level.
fn start_host(dir: &Path, config: &Path) -> Child {
    let filter = std::env::var("BENCH_LOG").ok();
    let log_path = match filter {
        Some(_) => tenure_plugin_test::workspace_root().join(format!(
            "target/bench-serve-{}-{}.log",
            std::process::id(),
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("host")
        )),
        None => dir.join("serve.log"),
    };
    let log = std::fs::File::create(log_path).unwrap();
    std::process::Command::new(release_binary())
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .env("TENURE_MASTER_KEY", tenure_tests::serve::MASTER_KEY)
        .env("RUST_LOG", filter.as_deref().unwrap_or("warn"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start tenure serve")
}

/// How the benchmark reads the store: completed jobs and their receipt-to-done times.
enum Probe {
    Sqlite(PathBuf),
    Postgres(sqlx::PgPool),
}

impl Probe {
    async fn completed(&self) -> i64 {
        match self {
            Probe::Sqlite(path) => {
                let db = rusqlite::Connection::open(path).unwrap();
                db.query_row("SELECT count(*) FROM jobs WHERE state = 'completed'", [], |r| {
                    r.get(0)
                })
                .unwrap()
            }
            Probe::Postgres(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'completed'")
                    .fetch_one(pool)
                    .await
                    .unwrap()
            }
        }
    }

    /// Receipt-to-done (ms) of the completed jobs whose keys start with `prefix`, sorted.
    async fn done_ms(&self, prefix: &str) -> Vec<f64> {
        let pattern = format!("~%/{prefix}%");
        let sql = "SELECT j.finished_ms - e.received_ms FROM jobs j JOIN events e ON e.id = j.event_id
                   WHERE j.state = 'completed' AND e.idempotency_key LIKE ";
        let mut v: Vec<f64> = match self {
            Probe::Sqlite(path) => {
                let db = rusqlite::Connection::open(path).unwrap();
                db.prepare(&format!("{sql}?1"))
                    .unwrap()
                    .query_map([&pattern], |r| r.get::<_, i64>(0))
                    .unwrap()
                    .map(|v| v.unwrap() as f64)
                    .collect()
            }
            Probe::Postgres(pool) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("{sql}$1")))
                .bind(&pattern)
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|v| v as f64)
                .collect(),
        };
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    /// Statements sent to `database` so far (PostgreSQL; the top-level ones, so one call of a
    /// function counts once, whatever it runs; `pg_stat_statements` is read through `admin`,
    /// connected to the database the test bed made the extension in).
    async fn statements(&self, admin: &sqlx::PgPool, database: &str) -> f64 {
        match self {
            Probe::Sqlite(_) => f64::NAN,
            Probe::Postgres(_) => sqlx::query_scalar::<_, f64>(
                "SELECT coalesce(sum(calls), 0)::float8 FROM pg_stat_statements s
                 JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 AND s.toplevel",
            )
            .bind(database)
            .fetch_one(admin)
            .await
            .unwrap_or(f64::NAN),
        }
    }

    async fn wait_completed(&self, count: usize) {
        let started = Instant::now();
        while self.completed().await < count as i64 {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "jobs never completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Posts one event to `base`; its acknowledgement latency (ms).
async fn post(client: &reqwest::Client, base: &str, key: &str, body: &Value) -> f64 {
    let t = Instant::now();
    let r = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 202, "{key}");
    t.elapsed().as_secs_f64() * 1000.0
}

type Figures = Vec<(&'static str, f64)>;

struct Settings {
    events: usize,
    clients: usize,
    rate: usize,
    workers: usize,
    /// The connections to PostgreSQL of all hosts together, split evenly over them.
    connections: usize,
}

async fn run(setup: &Setup, settings: &Settings, server: &str, admin: &sqlx::PgPool) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("bench_{}", tenure_tests::testbeds::run_id());
    let (store, probe) = match setup.backend {
        Backend::Sqlite => (
            "path = \"tenure.db\"\nsynchronous = \"full\"".to_string(),
            Probe::Sqlite(dir.path().join("tenure.db")),
        ),
        Backend::Postgres => {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(admin)
                .await
                .unwrap();
            let url = format!("{}/{database}", server.rsplit_once('/').unwrap().0);
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
                .await
                .unwrap();
            (
                format!(
                    "url = \"{url}\"\nmax_connections = {}",
                    (settings.connections / setup.hosts).max(2)
                ),
                Probe::Postgres(pool),
            )
        }
    };
    let mut children = Vec::new();
    let mut bases = Vec::new();
    let client = reqwest::Client::new();
    for i in 0..setup.hosts {
        let host_dir = dir.path().join(format!("host{i}"));
        std::fs::create_dir_all(&host_dir).unwrap();
        let port = free_port();
        let store = store.replace(
            "path = \"tenure.db\"",
            &format!("path = \"{}\"", dir.path().join("tenure.db").display()),
        );
        let config = write_config(&host_dir, &store, port, settings.workers);
        children.push(start_host(&host_dir, &config));
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&client, &base).await;
        bases.push(base);
    }
    let bases = Arc::new(bases);

    // Throughput, with CPU and statements counted around it.
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let host_cpu = || pids.iter().map(|p| cpu_of(*p)).sum::<f64>();
    let (cpu_hosts, cpu_database) = (host_cpu(), database_cpu());
    let statements = probe.statements(admin, &database).await;
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..settings.clients {
        let (client, bases, next, total) = (client.clone(), bases.clone(), next.clone(), settings.events);
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return;
                }
                post(
                    &client,
                    &bases[i % bases.len()],
                    &format!("bench-{i}"),
                    &joiner(&format!("b{i}")),
                )
                .await;
            }
        });
    }
    while let Some(r) = clients.join_next().await {
        r.unwrap();
    }
    let accepted = started.elapsed().as_secs_f64();
    probe.wait_completed(settings.events).await;
    let elapsed = started.elapsed().as_secs_f64();
    let per_event = |x: f64| x * 1000.0 / settings.events as f64;
    let cpu_hosts = per_event(host_cpu() - cpu_hosts);
    let cpu_database = per_event(database_cpu() - cpu_database);
    let statements = (probe.statements(admin, &database).await - statements) / settings.events as f64;

    // A steady rate, open loop.
    let steady = settings.rate * 5;
    let interval = Duration::from_micros(1_000_000 / settings.rate.max(1) as u64);
    let mut sends = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..steady {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let (client, bases) = (client.clone(), bases.clone());
        sends.spawn(async move {
            post(
                &client,
                &bases[i % bases.len()],
                &format!("steady-{i}"),
                &joiner(&format!("s{i}")),
            )
            .await
        });
    }
    let mut acks = Vec::new();
    while let Some(r) = sends.join_next().await {
        acks.push(r.unwrap());
    }
    acks.sort_by(|a, b| a.total_cmp(b));
    probe.wait_completed(settings.events + steady).await;
    let steady_done = probe.done_ms("steady-").await;

    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Probe::Postgres(pool) = probe {
        pool.close().await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {database} WITH (FORCE)"
        )))
        .execute(admin)
        .await;
    }
    vec![
        (
            "throughput, events/s end to end",
            settings.events as f64 / elapsed,
        ),
        ("accepted, events/s", settings.events as f64 / accepted),
        ("steady: ack p99, ms", percentile(&acks, 0.99)),
        ("steady: receipt to done p99, ms", percentile(&steady_done, 0.99)),
        ("CPU ms per event, hosts", cpu_hosts),
        ("CPU ms per event, database", cpu_database),
        ("statements per event", statements),
    ]
}

/// The setups `BENCH_SETUPS` names (every one when it is unset).
fn chosen_setups() -> Vec<usize> {
    match std::env::var("BENCH_SETUPS") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|n| *n < SETUPS.len())
            .collect(),
        Err(_) => (0..SETUPS.len()).collect(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    tenure_capabilities::install_crypto_provider();
    let settings = Settings {
        events: env("BENCH_EVENTS", 3_000),
        clients: env("BENCH_CLIENTS", 32),
        rate: env("BENCH_RATE", 500),
        workers: env("BENCH_WORKERS", 32),
        connections: env("BENCH_CONNECTIONS", 16),
    };
    let runs = env("BENCH_RUNS", 5).max(1);
    let server = tenure_tests::testbeds::start("postgres.sh")["TENURE_TEST_POSTGRES_URL"].clone();
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&server)
        .await
        .expect("the test bed's PostgreSQL");
    let load_before = load_average();
    let mut all: Vec<Vec<Figures>> = SETUPS.iter().map(|_| Vec::new()).collect();
    let chosen = chosen_setups();
    for run_no in 0..runs {
        for (i, setup) in SETUPS.iter().enumerate() {
            if !chosen.contains(&i) {
                continue;
            }
            let figures = run(setup, &settings, &server, &admin).await;
            println!(
                "run {}/{runs} {:<22} {:>7.0} events/s ({:.0} accepted/s), ack p99 {:>6.2} ms, \
                 done p99 {:>6.0} ms, {:>5.1} statements/event",
                run_no + 1,
                setup.name,
                figures[0].1,
                figures[1].1,
                figures[2].1,
                figures[3].1,
                figures[6].1
            );
            all[i].push(figures);
        }
    }
    println!(
        "scale-out benchmark: {} joiners from {} clients, then {} events/s for 5 s; {} workers per host, \
         {} connections to PostgreSQL over all hosts, sandbox destination, release build; {runs} runs; \
         load average before {load_before}, after {}",
        settings.events,
        settings.clients,
        settings.rate,
        settings.workers,
        settings.connections,
        load_average()
    );
    let median_throughput = |i: usize| {
        let mut v: Vec<f64> = all[i].iter().map(|f| f[0].1).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        percentile(&v, 0.5)
    };
    for (i, setup) in SETUPS.iter().enumerate() {
        if all[i].is_empty() {
            continue;
        }
        println!("\n{}", setup.name);
        println!("{:<36} {:>10} {:>10} {:>10}", "", "min", "median", "max");
        for (k, (name, _)) in all[i][0].iter().enumerate() {
            let mut values: Vec<f64> = all[i].iter().map(|f| f[k].1).collect();
            values.sort_by(|a, b| a.total_cmp(b));
            println!(
                "{name:<36} {:>10.2} {:>10.2} {:>10.2}",
                values[0],
                percentile(&values, 0.5),
                values[values.len() - 1]
            );
        }
    }
    if chosen.len() < SETUPS.len() {
        return;
    }
    println!(
        "\nmedian throughput: PostgreSQL 1 host / SQLite {:.2}; PostgreSQL 3 hosts / 1 host {:.2}",
        median_throughput(1) / median_throughput(0),
        median_throughput(3) / median_throughput(1)
    );
}
