//! Crash and overload correctness: group grants recorded across kill -9s and
//! taken away on moves and leavers; one execution per job through a database
//! stall longer than the lease; a poller that meets a bad record between good
//! ones; no request inside a destination's Retry-After window; plugin output
//! capped before it reaches the store.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_tests::host::{HostSpec, TENANT, TestHost, joiner, pipeline_toml, tenant_toml};
use tenure_tests::mock_destination::MockDestination;
use tenure_tests::serve::{free_port, get_json, start_serve, wait_ready};
use tenure_tests::{Reply, start_http};

const TOKEN: &str = "reliability-token-0123456789";

/// Rules whose groups follow the department; a leaver keeps none.
const GROUP_RULES: &str = "destination dest\n\
    rule gone: status == \"terminated\" => disable, stop\n\
    rule eng: department == \"Engineering\" => group:Engineering\n\
    rule sales: department == \"Sales\" => group:Sales\n\
    rule mkt: department == \"Marketing\" => group:Marketing\n\
    set employeeId = \"{id}\"\n";

/// A person's stages: hired into Engineering, moved twice, then gone.
const STAGES: [(&str, &str); 4] = [
    ("joiner", "Engineering"),
    ("mover", "Sales"),
    ("mover", "Marketing"),
    ("leaver", "Marketing"),
];

fn stage_event(person: usize, stage: usize) -> Value {
    let (kind, department) = STAGES[stage];
    json!({ "kind": kind, "source": "hr", "source_record_id": format!("p{person}-s{stage}"),
            "person": { "ids": [{"source": "hr", "id": format!("{person}")}], "given_name": "P",
                        "family_name": format!("{person}"), "department": department } })
}

fn write_config(dir: &std::path::Path, port: u16, mock: &MockDestination) -> std::path::PathBuf {
    std::fs::write(dir.join("rules.txt"), GROUP_RULES).unwrap();
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
path = "tenure.db"
[server]
listen = "127.0.0.1:{port}"
[queue]
concurrency = 8
lease_ms = 600
max_attempts = 1000
backoff_base_ms = 20
backoff_max_ms = 200
poll_ms = 20
[[api_tokens]]
name = "reliability"
role = "it"
tenant = "t"
token = "{TOKEN}"
[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "dest"
connector = "http-dest"
matching = ["employeeId"]
guard = {{ max_accounts = 1000000, max_percent = 100.0 }}
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.connections.dest]
kind = "http"
allow_private_network = true
url = "http://{mock}"
[tenants.t.plugins.http-dest.grants]
http = ["dest"]
"#,
        plugins = tenure_plugin_test::plugin_dir().display(),
        cache = tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display(),
        mock = mock.addr,
    );
    let path = dir.join("tenure.toml");
    std::fs::write(&path, config).unwrap();
    path
}

async fn post(client: &reqwest::Client, base: &str, event: &Value) -> bool {
    let key = event["source_record_id"].as_str().unwrap_or_default().to_string();
    client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(event)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_grants_survive_kills_and_are_taken_away_on_moves_and_leavers() {
    tenure_capabilities::install_crypto_provider();
    let mock = MockDestination::start().await;
    // The destination applies each write, then takes a while to answer: a kill in that
    // window leaves a change the host has not recorded.
    mock.with(|s| s.answer_delay = Duration::from_millis(15));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_port();
    let config = write_config(&dir, port, &mock);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let seed = fastrand::u64(..);
    println!("seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let people = 24;
    // The next stage each person's event is for; an event is posted until acknowledged.
    let mut next = vec![0usize; people];
    let mut unacked: Vec<Value> = Vec::new();
    for _trial in 0..30 {
        let mut server = start_serve(&dir, &config, &dir.join("serve.log"));
        wait_ready(&client, &base).await;
        let mut batch = std::mem::take(&mut unacked);
        for _ in 0..6 {
            let p = rng.usize(..people);
            if next[p] < STAGES.len() {
                batch.push(stage_event(p, next[p]));
                next[p] += 1;
            }
        }
        for event in batch {
            if !post(&client, &base, &event).await {
                unacked.push(event);
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(30..250))).await;
        server.kill().unwrap();
        let _ = server.wait();
    }
    // Everyone reaches the end: the rest of the stages, then a clean run.
    let mut server = start_serve(&dir, &config, &dir.join("serve.log"));
    wait_ready(&client, &base).await;
    for event in unacked {
        assert!(post(&client, &base, &event).await);
    }
    for (p, stage) in next.iter_mut().enumerate() {
        while *stage < STAGES.len() {
            assert!(post(&client, &base, &stage_event(p, *stage)).await);
            *stage += 1;
        }
    }
    let started = Instant::now();
    loop {
        let jobs = get_json(&client, &base, "/api/v1/jobs?limit=100000", TOKEN).await;
        let open = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["state"] != "completed")
            .count();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{open} jobs never completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let verify: Value = client
        .get(format!("{base}/api/v1/audit/verify"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(verify["problem"].is_null(), "{verify}");
    server.kill().unwrap();
    let _ = server.wait();

    // Everyone left: no group Tenure granted survives, and every account is disabled.
    let (accounts, seen) = mock.with(|s| (s.accounts.clone(), s.seen.clone()));
    assert_eq!(accounts.len(), people, "one account per person");
    for acc in &accounts {
        assert!(
            acc.groups.is_empty(),
            "{} kept {:?} after leaving",
            acc.anchor,
            acc.groups
        );
        assert!(!acc.enabled, "{} is still enabled", acc.anchor);
    }
    // Every grant the destination applied is in the audit, for the right person.
    let db = rusqlite::Connection::open(dir.join("tenure.db")).unwrap();
    let anchor_of: BTreeMap<String, String> = accounts
        .iter()
        .map(|a| {
            (
                a.anchor.clone(),
                a.attributes["employeeId"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut audited: BTreeSet<(String, String)> = BTreeSet::new();
    for (person, data) in tenure_tests::audit_details(&db, Some("op.applied")) {
        if data["op"] == "add-member" {
            let person = person.unwrap_or_default();
            audited.insert((person, data["target"].as_str().unwrap_or("").to_string()));
        }
    }
    let mut grants = 0;
    for s in seen.iter().filter(|s| s.detail.starts_with("add-member")) {
        let anchor = s.path.trim_start_matches("/accounts/").trim_end_matches("/ops");
        let person = format!("hr:{}", anchor_of[anchor]);
        let group = s.detail.trim_start_matches("add-member ").to_string();
        assert!(
            audited.contains(&(person.clone(), group.clone())),
            "{person} was granted {group}, but the audit does not say so"
        );
        grants += 1;
    }
    let recovered = tenure_tests::audit_details(&db, Some("op.applied"))
        .iter()
        .filter(|(_, data)| data["recovered"] == true)
        .count();
    println!("{grants} grants applied; {recovered} operations recovered after a kill");
}

fn stall_queue() -> QueueConfig {
    QueueConfig {
        backoff_base_ms: 50,
        backoff_max_ms: 500,
        lease_ms: 900,
        poll_ms: 20,
        ..QueueConfig::default()
    }
}

async fn mock_host(mock: &MockDestination, rules: &str, queue: QueueConfig) -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{rules}'''\n{}",
        mock.tenant_toml()
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"dest\"\nconnector = \"http-dest\"\n\
         matching = [\"employeeId\"]\n",
    );
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue,
        plugins: vec!["rules-basic", "http-dest"],
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_stall_longer_than_the_lease_never_runs_a_job_twice() {
    let mock = MockDestination::start().await;
    // Each destination call outlasts the lease (0.9 s): only heartbeats keep it.
    mock.with(|s| s.answer_delay = Duration::from_millis(1_500));
    let h = mock_host(&mock, GROUP_RULES, stall_queue()).await;
    let event = json!({ "kind": "joiner", "source": "hr", "source_record_id": "stall-1",
        "person": { "ids": [{"source": "hr", "id": "1"}], "department": "Engineering" } });
    let (status, body) = h.post_event(&event, "stall-1").await;
    assert_eq!(status, 202, "{body}");
    // While the create is at the destination, another process holds the database's
    // write lock for longer than the lease, so no heartbeat can be written.
    let db_path = h.dir.path().join("tenure.db");
    let started = Instant::now();
    while mock.with(|s| s.seen.is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job never reached the destination"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::spawn_blocking(move || {
        let db = rusqlite::Connection::open(db_path).unwrap();
        db.execute_batch("BEGIN EXCLUSIVE").unwrap();
        std::thread::sleep(Duration::from_millis(1_200));
        db.execute_batch("COMMIT").unwrap();
    })
    .await
    .unwrap();
    h.wait_idle(Duration::from_secs(60)).await;

    let (accounts, seen) = mock.with(|s| (s.accounts.clone(), s.seen.clone()));
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0].groups, ["Engineering"]);
    let writes: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| s.detail.as_str())
        .collect();
    assert_eq!(
        writes.iter().filter(|d| d.starts_with("create")).count(),
        1,
        "created once: {writes:?}"
    );
    assert_eq!(
        writes.iter().filter(|d| d.starts_with("add-member")).count(),
        1,
        "{writes:?}"
    );
    let conflicts = h.get("/api/v1/conflicts").await;
    assert_eq!(
        conflicts.as_array().map(Vec::len),
        Some(0),
        "no conflict with itself: {conflicts}"
    );
    let jobs = h.get("/api/v1/jobs").await;
    assert_eq!(jobs[0]["state"], "completed", "{jobs}");
    assert!(h.store.verify_audit().await.unwrap().ok());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_reaches_a_destination_inside_its_retry_after() {
    let mock = MockDestination::start().await;
    // The first create is throttled for two seconds; twenty people arrive at once.
    mock.with(|s| s.script.push_back((429, Some(2))));
    let h = mock_host(&mock, GROUP_RULES, stall_queue()).await;
    for i in 0..20 {
        let (status, _) = h
            .post_event(&joiner(&format!("{i}"), "Sales"), &format!("t-{i}"))
            .await;
        assert_eq!(status, 202);
    }
    h.wait_idle(Duration::from_secs(60)).await;
    let seen = mock.with(|s| s.seen.clone());
    let throttled = seen
        .iter()
        .find(|s| s.status == 429)
        .expect("the 429 was answered")
        .at;
    // Requests already on their way when the 429 was sent may land just after it.
    let window = (throttled + Duration::from_millis(100))..(throttled + Duration::from_secs(2));
    let inside: Vec<_> = seen.iter().filter(|s| window.contains(&s.at)).collect();
    assert!(
        inside.is_empty(),
        "{} requests inside the Retry-After window: {inside:?}",
        inside.len()
    );
    assert_eq!(
        mock.with(|s| s.accounts.len()),
        20,
        "everyone is provisioned afterwards"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_between_good_ones_neither_stops_the_source_nor_loses_them() {
    // An HR API whose first page holds a record with a malformed time (a multi-byte
    // character where a digit belongs) between two good ones.
    let hr = start_http(|r| {
        let page = if r.target.contains("since=p2") {
            json!({ "records": [
                {"employee_id": "3", "event": "joiner", "given_name": "C",
                    "occurred_at": "2026-03-01T09:30:00Z"}
            ], "next_cursor": "p3", "has_more": false })
        } else if r.target.contains("since=p3") {
            json!({ "records": [], "next_cursor": "p3", "has_more": false })
        } else {
            json!({ "records": [
                {"employee_id": "1", "event": "joiner", "given_name": "A",
                    "occurred_at": "2026-03-01T09:30:00Z"},
                {"employee_id": "2", "event": "joiner", "given_name": "B",
                    "occurred_at": "2026-03-0\u{e9}T09:30:00Z"},
                {"employee_id": "4", "event": "joiner", "given_name": "D",
                    "occurred_at": "2026-03-01T09:31:00Z"}
            ], "next_cursor": "p2", "has_more": true })
        };
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: page.to_string(),
        }
    })
    .await;
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{GROUP_RULES}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [connections.hr-api]\nkind = \"http\"\nallow_private_network = true\nurl = \"http://{hr}/hr\"\n\
         [plugins.source-json]\nsettings = {{ source = \"hr\" }}\n[plugins.source-json.grants]\nhttp = \
             [\"hr-api\"]\n"
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"dest\"\nconnector = \"sandbox\"\n\
         [[sources]]\nname = \"hr\"\nplugin = \"source-json\"\npoll_secs = 1\n",
    );
    let h = TestHost::start(HostSpec {
        tenant,
        pipeline: pipeline.clone(),
        queue: stall_queue(),
        plugins: vec!["rules-basic", "sandbox", "source-json"],
    })
    .await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let sources = vec![(TENANT.to_string(), pipeline.sources[0].clone())];
    let pollers = tokio::spawn(h.pipeline.clone().run_pollers(sources, shutdown));
    let started = Instant::now();
    while h.store.cursor(TENANT, "hr").await.unwrap().as_deref() != Some("p3") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the source stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.wait_idle(Duration::from_secs(30)).await;
    let people: BTreeSet<String> = h
        .store
        .person_keys(TENANT, None, 100)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = ["hr:1", "hr:3", "hr:4"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        people, expected,
        "the good records arrived; the bad one was refused"
    );
    let ready: Value = h
        .client
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["sources"][0]["state"], "polling", "{ready}");
    let _ = stop.send(true);
    let _ = pollers.await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_output_is_capped_before_it_reaches_the_store() {
    let tenant = tenant_toml(
        "[plugins.chaos]\nmemory_mib = 512\ndeadline_ms = 30000\n[plugins.sandbox.grants]\nkv = true\n",
    );
    let pipeline = pipeline_toml(
        "rules = \"chaos\"\n[[destinations]]\nname = \"test\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\"]\n",
    );
    let h = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: stall_queue(),
        plugins: vec!["chaos", "sandbox"],
    })
    .await;
    for (i, mode) in ["huge-output", "huge-error"].iter().enumerate() {
        let event = json!({ "kind": "joiner", "source": "hr", "source_record_id": format!("huge-{i}"),
            "person": { "ids": [{"source": "hr", "id": format!("{i}")}],
                        "custom": { "mode": mode, "mib": "40", "id": format!("{i}") } } });
        let (status, body) = h.post_event(&event, &format!("huge-{i}")).await;
        assert_eq!(status, 202, "{body}");
    }
    h.wait_idle(Duration::from_secs(60)).await;
    let db = rusqlite::Connection::open(h.dir.path().join("tenure.db")).unwrap();
    let largest = tenure_tests::audit_details(&db, None)
        .iter()
        .map(|(_, data)| data.to_string().len())
        .max()
        .unwrap_or(0);
    assert!(largest < 300_000, "an audit entry of {largest} bytes");
    let error: i64 = db
        .query_row(
            "SELECT max(length(coalesce(last_error, ''))) FROM jobs",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(error < 10_000, "a job's last error of {error} bytes");
    let account = h.sandbox_accounts().await;
    let huge = account[0]["attributes"].to_string();
    assert!(
        huge.len() < 300_000 && huge.contains("truncated by the host"),
        "{}",
        huge.len()
    );
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tenure_plugin_output_truncated_total") && !l.ends_with(" 0")),
        "the cuts are counted"
    );
    h.stop().await;
}
