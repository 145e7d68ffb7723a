//! Every `tenure` command that writes to the store, run next to a live `tenure serve`
//! on the same store while events keep arriving: the server stays healthy (its
//! writes, webhooks and audit reads keep working), and afterwards the audit chain
//! verifies with every event and job in it. (Before, each process kept its own
//! audit-chain head, and the server's next audited write failed until a restart.)

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenure_tests::lever_sim::{self, LeverSim, Opportunity, SimOptions};
use tenure_tests::serve::{free_port, run_cli, start_serve, wait_ready};

const TOKEN: &str = "live-cli-token-0123456789";
const HOOK_KEY: &str = "live-hook-signature-token";

fn write_config(dir: &Path, port: u16, lever: &str) -> PathBuf {
    std::fs::write(dir.join("rules.txt"), tenure_tests::host::rules("sandbox")).unwrap();
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
path = "tenure.db"
[server]
listen = "127.0.0.1:{port}"
[queue]
poll_ms = 20
[[api_tokens]]
name = "live"
role = "it"
tenant = "t"
token = "{TOKEN}"
[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "sandbox"
connector = "sandbox"
matching = ["employeeId"]
guard = {{ max_accounts = 100000, max_percent = 100.0 }}
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.plugins.sandbox.grants]
kv = true
[tenants.t.connections.lever]
kind = "http"
allow_private_network = true
url = "{lever}"
auth = {{ type = "basic", username = "{key}" }}
rate_limit = {{ per_second = 10.0, burst = 20 }}
retry_429 = 3
[tenants.t.plugins.lever.grants]
http = ["lever"]
kv = true
[tenants.t.plugins.hr-feed.settings]
"column.employee_id" = "Employee ID"
"column.email" = "Work Email"
"column.event" = "Action"
"event.HIRE" = "joiner"
[[tenants.t.sources]]
name = "lever"
plugin = "lever"
[tenants.t.sources.webhook]
signature_tokens = {{ "*" = "{HOOK_KEY}" }}
[[tenants.t.sources]]
name = "hr"
plugin = "hr-feed"
"#,
        plugins = tenure_plugin_test::plugin_dir().display(),
        cache = tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display(),
        key = lever_sim::API_KEY,
    );
    let path = dir.join("tenure.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn api_event(n: usize) -> Value {
    json!({ "kind": "joiner", "source": "api", "source_record_id": format!("live-{n}"),
            "person": { "ids": [{"source": "api", "id": format!("live-{n}")}], "given_name": "Live",
                        "family_name": format!("P{n}"), "department": "Sales",
                        "emails": [{"value": format!("live{n}@example.test"), "primary": true}] } })
}

async fn post_event(client: &reqwest::Client, base: &str, n: usize) -> u16 {
    client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .json(&api_event(n))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = client
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_writing_command_next_to_a_live_server_leaves_it_healthy_and_the_audit_whole() {
    tenure_capabilities::install_crypto_provider();
    let sim = LeverSim::start(SimOptions::default()).await;
    for i in 0..40 {
        let mut o = Opportunity::hire(
            i,
            &format!("bf-{i}"),
            &format!("Backfill{i} Person"),
            1_767_571_200_000,
            1_650_000_000_000 + i as i64,
        );
        if i % 3 != 0 {
            o.archive_reason = None;
        }
        sim.add(o);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_port();
    let config = write_config(&dir, port, &sim.url());
    std::fs::write(
        dir.join("hires.csv"),
        "Employee ID,Work \
            Email,Action\nE1,e1@example.test,HIRE\nE2,e2@example.test,HIRE\nE3,e3@example.test,HIRE\n",
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_serve(&dir, &config, &dir.join("serve.log"));
    wait_ready(&client, &base).await;

    // Events keep arriving while the commands run.
    let feeder = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for n in 0..60 {
                statuses.push(post_event(&client, &base, n).await);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            statuses
        })
    };
    let commands: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        (
            "backfill",
            vec![
                "sources",
                "backfill",
                "--config",
                "tenure.toml",
                "--tenant",
                "t",
                "--source",
                "lever",
            ],
            None,
        ),
        (
            "import",
            vec![
                "sources",
                "import",
                "--config",
                "tenure.toml",
                "--tenant",
                "t",
                "--source",
                "hr",
                "hires.csv",
            ],
            None,
        ),
        (
            "secrets set",
            vec!["secrets", "set", "crm-key", "--config", "tenure.toml"],
            Some("s3cr3t-value\n"),
        ),
        (
            "audit verify",
            vec!["audit", "verify", "--config", "tenure.toml"],
            None,
        ),
        (
            "audit export",
            vec!["audit", "export", "--config", "tenure.toml", "--format", "jsonl"],
            None,
        ),
        (
            "secrets set again",
            vec!["secrets", "set", "crm-key", "--config", "tenure.toml"],
            Some("rotated\n"),
        ),
        (
            "audit verify again",
            vec!["audit", "verify", "--config", "tenure.toml"],
            None,
        ),
    ];
    let mut runs = tokio::task::JoinSet::new();
    for (what, args, stdin) in commands {
        let dir = dir.clone();
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let stdin = stdin.map(String::from);
        runs.spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            (what, run_cli(&dir, &args, stdin.as_deref()))
        });
        // The commands overlap each other and the feeder.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    while let Some(done) = runs.join_next().await {
        let (what, out) = done.unwrap();
        ok(&out, what);
    }
    let statuses = feeder.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 202),
        "every event acknowledged: {statuses:?}"
    );

    // The server still writes, audits and reads its audit.
    assert_eq!(post_event(&client, &base, 1000).await, 202);
    let signed = tenure_tests::fake_lever::delivery(
        "candidateHired",
        HOOK_KEY,
        "live-ping",
        tenure_tests::fake_lever::now_ms(),
        json!({}),
    );
    let ping = client
        .post(format!("{base}/hooks/lever/lever"))
        .body(signed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status().as_u16(), 200);
    let (status, _) = get(&client, &base, "/api/v1/audit?limit=5").await;
    assert_eq!(status, 200);
    // Everything the commands and the feeder queued is applied.
    let started = std::time::Instant::now();
    loop {
        let (_, jobs) = get(&client, &base, "/api/v1/jobs?limit=1000").await;
        let jobs = jobs.as_array().cloned().unwrap_or_default();
        let busy = jobs.iter().filter(|j| j["state"] != "completed").count();
        if busy == 0 && jobs.len() == 61 + 3 + 14 {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
            let unfinished: Vec<&Value> = jobs
                .iter()
                .filter(|j| j["state"] != "completed")
                .take(3)
                .collect();
            panic!(
                "{busy} of {} jobs unfinished: {unfinished:?}\n{}",
                jobs.len(),
                &log[log.len().saturating_sub(3000)..]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let verify = ok(
        &run_cli(&dir, &["audit", "verify", "--config", "tenure.toml"], None),
        "final verify",
    );
    assert!(verify.contains("audit log intact"), "{verify}");
    let _ = server.kill();
    let _ = server.wait();

    // Nothing is missing from the chain: every event was received into it and every job ended in it.
    let db = rusqlite::Connection::open(dir.join("tenure.db")).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM events"),
        count("SELECT count(*) FROM audit WHERE kind = 'event.received'")
    );
    assert_eq!(
        count("SELECT count(*) FROM jobs"),
        count("SELECT count(DISTINCT job_id) FROM audit WHERE kind = 'job.completed'")
    );
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE kind = 'admin.secret_set'"),
        2
    );
    assert_eq!(
        count("SELECT count(*) FROM audit WHERE kind = 'admin.audit_verified'"),
        3
    );
    assert_eq!(
        count("SELECT max(seq) FROM audit"),
        count("SELECT count(*) FROM audit")
    );
}

/// Reads what the server sends until it closes the connection (10 s at most).
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept a stalled connection open");
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_a_stalled_body_gets_408() {
    use tokio::io::AsyncWriteExt;
    tenure_capabilities::install_crypto_provider();
    let sim = LeverSim::start(SimOptions::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_port();
    let config = write_config(&dir, port, &sim.url());
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[server]\n",
        "[server]\nheader_read_timeout_secs = 1\nrequest_timeout_secs = 2\n",
    );
    std::fs::write(&config, text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_serve(&dir, &config, &dir.join("serve.log"));
    wait_ready(&client, &base).await;

    // Headers that never end: the connection is closed, nothing is answered.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: tenure\r\nX-Slow: 1\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // A body that stops arriving: 408 once the request deadline passes.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: tenure\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: \
            application/json\r\nContent-Length: 500\r\n\r\n{{\"source\":"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Everyone else is served as before.
    let (status, _) = get(&client, &base, "/api/v1/jobs").await;
    assert_eq!(status, 200);
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_only_to_their_token_when_one_is_set() {
    tenure_capabilities::install_crypto_provider();
    let sim = LeverSim::start(SimOptions::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_port();
    let config = write_config(&dir, port, &sim.url());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[server]\n", "[server]\nmetrics_token = \"scrape-0123456789\"\n");
    std::fs::write(&config, text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_serve(&dir, &config, &dir.join("serve.log"));
    wait_ready(&client, &base).await;
    let scrape = |token: Option<&'static str>| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let mut request = client.get(format!("{base}/metrics"));
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            let r = request.send().await.expect("scrape");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(scrape(None).await.0, 401);
    // An API token is not the metrics token.
    assert_eq!(scrape(Some(TOKEN)).await.0, 401);
    let (status, text) = scrape(Some("scrape-0123456789")).await;
    assert_eq!(status, 200);
    assert!(text.contains("tenure_"), "{text}");
    let _ = server.kill();
    let _ = server.wait();
}

/// `[audit_checkpoints]` (issue 18): a running server writes signed checkpoints to a file
/// and POSTs them (with the bearer token) to an endpoint outside it; `tenure audit verify
/// --checkpoint` then holds against them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_writes_signed_checkpoints_to_a_file_and_an_endpoint() {
    use std::sync::{Arc, Mutex};
    tenure_capabilities::install_crypto_provider();
    let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/checkpoints",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                sink.lock().unwrap().push((auth, body.0));
                axum::http::StatusCode::CREATED
            }
        }),
    );
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint_url = format!("http://{}/checkpoints", endpoint.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(endpoint, app).await });

    let sim = LeverSim::start(SimOptions::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_port();
    let config = write_config(&dir, port, &sim.url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "[[api_tokens]]",
        &format!(
            "[audit_checkpoints]\nevery_secs = 10\nfile = \"checkpoints.jsonl\"\nurl = \"{endpoint_url}\"\n\
             token = \"checkpoint-bearer\"\n[[api_tokens]]"
        ),
    );
    std::fs::write(&config, text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_serve(&dir, &config, &dir.join("serve.log"));
    wait_ready(&client, &base).await;
    assert_eq!(post_event(&client, &base, 1).await, 202);
    // The first checkpoint is taken at start, the next ones every 10 s.
    let file = dir.join("checkpoints.jsonl");
    let started = std::time::Instant::now();
    while received.lock().unwrap().is_empty() || !file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no checkpoint written: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = server.kill();
    let _ = server.wait();

    let line = std::fs::read_to_string(&file).unwrap();
    let written: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let (auth, posted) = received.lock().unwrap()[0].clone();
    assert_eq!(auth, "Bearer checkpoint-bearer");
    assert_eq!(posted, written, "the same signed checkpoint goes to both");
    let out = run_cli(
        &dir,
        &[
            "audit",
            "verify",
            "--config",
            "tenure.toml",
            "--checkpoint",
            "checkpoints.jsonl",
        ],
        None,
    );
    let text = ok(&out, "audit verify --checkpoint");
    assert!(text.contains("signed checkpoint(s) hold"), "{text}");
}
