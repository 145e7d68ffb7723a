//! Crash safety: `tenure serve` is killed with SIGKILL at random moments while
//! it applies events, 50 times, then restarted. Clients retry every event that
//! was not acknowledged (with the same idempotency key). At the end no
//! acknowledged event is lost, every job completed, and no person has two
//! accounts.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};
use tenure_tests::serve::{free_port, get_json, start_serve, wait_ready};

const TOKEN: &str = "crash-test-token-0123456789";
const TRIALS: usize = 50;

fn write_config(dir: &Path, port: u16) -> PathBuf {
    let root = tenure_plugin_test::workspace_root();
    let rules = "destination sandbox\n\
                 rule eng: department == \"Engineering\" => group:Engineering, ou:OU=Engineering\n\
                 rule sales: department == \"Sales\" => group:Sales, ou:OU=Sales\n\
                 default => ou:OU=People, group:All-Staff\n\
                 set employeeId = \"{id}\"\nset mail = \"{email}\"\nset title = \"{title}\"\n";
    std::fs::write(dir.join("rules.txt"), rules).unwrap();
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
name = "crash"
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

fn start(config: &Path, log: &Path) -> Child {
    start_serve(config.parent().expect("config folder"), config, log)
}

struct Sent {
    key: String,
    body: Value,
    acked: bool,
}

fn event(person: usize, version: usize) -> Value {
    let department = ["Engineering", "Sales", "Marketing"][version % 3];
    json!({
        "kind": if version == 0 { "joiner" } else { "mover" },
        "source": "hr",
        "source_record_id": format!("p{person}-v{version}"),
        "person": {"ids": [{"source": "hr", "id": format!("{person}")}], "given_name": "P",
            "family_name": format!("{person}"),
                   "department": department, "title": format!("v{version}"),
                   "emails": [{"value": format!("p{person}@example.test"), "primary": true}]}
    })
}

async fn post(client: &reqwest::Client, base: &str, s: &Sent) -> Option<u16> {
    let resp = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", &s.key)
        .json(&s.body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_loses_no_event_and_creates_no_duplicate() {
    tenure_capabilities::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let log = dir.path().join("serve.log");
    let base = format!("http://127.0.0.1:{port}");
    // Every server is killed in turn: no connection is kept for reuse, and no request
    // may wait forever on one that died with its server.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    println!("seed {seed}");
    let mut sent: Vec<Sent> = Vec::new();
    let mut versions: Vec<usize> = Vec::new();
    let mut kills_while_busy = 0;
    for trial in 0..TRIALS {
        let mut child = start(&config, &log);
        wait_ready(&client, &base).await;
        // New people and changes to existing ones, posted concurrently.
        let mut batch = Vec::new();
        for _ in 0..4 {
            versions.push(0);
            batch.push((versions.len() - 1, 0));
        }
        for _ in 0..4 {
            let p = rng.usize(..versions.len());
            versions[p] += 1;
            batch.push((p, versions[p]));
        }
        let first = sent.len();
        for (p, v) in batch {
            sent.push(Sent {
                key: format!("p{p}-v{v}"),
                body: event(p, v),
                acked: false,
            });
        }
        let posts: Vec<_> = (first..sent.len())
            .map(|i| {
                let (client, base, key, body) = (
                    client.clone(),
                    base.clone(),
                    sent[i].key.clone(),
                    sent[i].body.clone(),
                );
                tokio::spawn(async move {
                    let s = Sent {
                        key,
                        body,
                        acked: false,
                    };
                    post(&client, &base, &s).await
                })
            })
            .collect();
        // Kill at a random point: while requests are in flight or jobs are applying.
        tokio::time::sleep(Duration::from_millis(rng.u64(0..60))).await;
        let busy = client
            .get(format!("{base}/metrics"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .ok()
            .is_some();
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        if busy {
            kills_while_busy += 1;
        }
        for (i, h) in (first..).zip(posts) {
            if let Ok(Some(status)) = h.await {
                assert!(
                    status == 202 || status == 200,
                    "trial {trial}: unexpected status {status}"
                );
                sent[i].acked = true;
            }
        }
    }
    assert!(
        kills_while_busy > TRIALS / 2,
        "most kills should land while the host is working"
    );

    // Final run: clients retry everything; acknowledged events must already be there.
    let mut child = start(&config, &log);
    wait_ready(&client, &base).await;
    for s in &sent {
        let status = post(&client, &base, s).await.expect("final post");
        if s.acked {
            assert_eq!(status, 200, "acknowledged event {} was lost", s.key);
        } else {
            assert!(status == 200 || status == 202, "{}: {status}", s.key);
        }
    }
    let started = Instant::now();
    let jobs = loop {
        let jobs = get_json(&client, &base, "/api/v1/jobs?limit=100000", TOKEN).await;
        let open: Vec<&Value> = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["state"] != "completed")
            .collect();
        if open.is_empty() {
            break jobs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} jobs never completed: {open:?}",
            open.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        jobs.as_array().unwrap().len(),
        sent.len(),
        "one job per distinct event"
    );
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
    child.kill().unwrap();
    let _ = child.wait();

    let db = rusqlite::Connection::open(dir.path().join("tenure.db")).unwrap();
    let accounts: Vec<(String, Vec<u8>)> = db
        .prepare(
            "SELECT key, value FROM kv WHERE tenant = 't' AND plugin = 'sandbox' AND key LIKE 'account/%'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        accounts.len(),
        versions.len(),
        "one account per person, no duplicates"
    );
    // Each account carries the data of its person's last applied event (a retried event
    // that was never acknowledged arrives, and applies, after the ones that were).
    for (key, raw) in accounts {
        let acc: Value = serde_json::from_slice(&raw).unwrap();
        let person = key.trim_start_matches("account/sbx-");
        let last: String = db
            .query_row(
                "SELECT e.body FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.person_key = ?1 ORDER \
                    BY j.id DESC LIMIT 1",
                [format!("hr:{person}")],
                |r| tenure_tests::stored_json(r, 0),
            )
            .unwrap();
        let last: Value = serde_json::from_str(&last).unwrap();
        let title = acc["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a[0] == "title")
            .map(|a| a[1]["Text"].clone());
        assert_eq!(title, Some(last["person"]["title"].clone()), "{key}: {acc}");
    }
    // The kills interrupted work: some jobs needed another attempt after a restart.
    let resumed: i64 = db
        .query_row("SELECT count(*) FROM jobs WHERE attempts > 1", [], |r| r.get(0))
        .unwrap();
    let recovered: i64 = db
        .query_row(
            "SELECT count(*) FROM audit WHERE kind = 'link.recovered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let acked = sent.iter().filter(|s| s.acked).count();
    println!(
        "{acked}/{} events acknowledged before a kill; {resumed} jobs resumed after a kill; {recovered} \
            creates recovered",
        sent.len()
    );
    assert!(resumed > 0, "no kill landed while a job was running");
    let links: i64 = db
        .query_row("SELECT count(*) FROM links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(links as usize, versions.len());
}
