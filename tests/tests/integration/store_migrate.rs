//! Growing from one host to several: a host runs on its embedded SQLite store, stops,
//! `tenure store migrate` copies the store into PostgreSQL, and the same deployment goes on
//! from there: its people, links, secrets and audit chain all carried over, new events
//! applied to the accounts already made (none made twice), the chain continued.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tenure_tests::serve::{free_port, get_json, run_cli, start_serve, wait_ready};

const TOKEN: &str = "migrate-test-token-0123456789";

fn write_config(dir: &Path, store: &str, port: u16) -> PathBuf {
    let root = tenure_plugin_test::workspace_root();
    std::fs::write(
        dir.join("rules.txt"),
        "destination sandbox\ndefault => ou:OU=People, group:All-Staff\n\
         set employeeId = \"{id}\"\nset mail = \"{email}\"\nset title = \"{title}\"\n",
    )
    .unwrap();
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
{store}
[server]
listen = "127.0.0.1:{port}"
metrics_token = "${{secret:metrics-token}}"
[queue]
poll_ms = 20
[[api_tokens]]
name = "migrate"
role = "it"
tenant = "t"
token = "{TOKEN}"
[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "sandbox"
connector = "sandbox"
matching = ["employeeId", "mail"]
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.plugins.sandbox.grants]
kv = true
"#,
        plugins = tenure_plugin_test::plugin_dir().display(),
        cache = root.join("target/component-cache").display(),
    );
    let path = dir.join(if store.starts_with("url") {
        "pg.toml"
    } else {
        "tenure.toml"
    });
    std::fs::write(&path, config).unwrap();
    path
}

fn person(n: usize, title: &str) -> Value {
    json!({"ids": [{"source": "hr", "id": format!("{n}")}], "given_name": "P", "family_name": format!("{n}"),
           "title": title, "emails": [{"value": format!("p{n}@example.test"), "primary": true}]})
}

async fn post(client: &reqwest::Client, base: &str, key: &str, kind: &str, person: Value) {
    let status = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(&json!({"kind": kind, "source": "hr", "source_record_id": key, "person": person}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202, "{key}");
}

/// Waits until every job completed; returns them.
async fn settled(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let jobs = get_json(client, base, "/api/v1/jobs?limit=1000", TOKEN).await;
        if let Some(jobs) = jobs.as_array()
            && jobs.iter().all(|j| j["state"] == "completed")
        {
            return jobs.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "jobs never completed: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_moves_to_postgres_and_the_deployment_goes_on() {
    tenure_capabilities::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let client = reqwest::Client::new();
    // One host on SQLite: three hires, and a secret its config uses.
    let port = free_port();
    let sqlite_config = write_config(&root, "path = \"tenure.db\"", port);
    let set = run_cli(
        &root,
        &["secrets", "set", "metrics-token", "--config", "tenure.toml"],
        Some("metrics-secret-0123456789"),
    );
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let mut host = start_serve(&root, &sqlite_config, &root.join("sqlite.log"));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;
    for n in 0..3 {
        post(&client, &base, &format!("p{n}-v0"), "joiner", person(n, "v0")).await;
    }
    assert_eq!(settled(&client, &base).await.len(), 3);
    host.kill().unwrap();
    let _ = host.wait();

    // The copy, into a new database.
    let url = tenure_tests::testbeds::fresh_postgres_database("migrated").await;
    let from = format!("sqlite:{}", root.join("tenure.db").display());
    let copy = run_cli(&root, &["store", "migrate", "--from", &from, "--to", &url], None);
    let out = String::from_utf8_lossy(&copy.stdout);
    assert!(
        copy.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert!(out.contains("copied and checked"), "{out}");
    // The planner knows the copied sizes before the first host plans a statement.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let unanalyzed: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables
         WHERE relname IN ('events', 'jobs', 'audit', 'links', 'kv', 'lifecycles') AND last_analyze IS NULL",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(
        unanalyzed.is_empty(),
        "not analyzed after the copy: {unanalyzed:?}"
    );
    // Copying into a database that holds a deployment already is refused.
    let again = run_cli(&root, &["store", "migrate", "--from", &from, "--to", &url], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // The deployment on PostgreSQL: the copied secret opens, the people are known.
    let port = free_port();
    let pg_config = write_config(&root, &format!("url = \"{url}\""), port);
    let mut host = start_serve(&root, &pg_config, &root.join("pg.log"));
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth("metrics-secret-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(
        metrics.status(),
        200,
        "the secret sealed on SQLite opens on PostgreSQL"
    );
    // A change to a person hired on SQLite updates their account; a new hire gets one.
    post(&client, &base, "p1-v1", "mover", person(1, "v1")).await;
    post(&client, &base, "p3-v0", "joiner", person(3, "v0")).await;
    // An event the SQLite host had already stored is a duplicate here.
    let again = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", "p0-v0")
        .json(&json!({
            "kind": "joiner", "source": "hr", "source_record_id": "p0-v0", "person": person(0, "v0")
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let jobs = settled(&client, &base).await;
    assert_eq!(jobs.len(), 5);
    let ids: Vec<i64> = jobs.iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert!(
        ids.contains(&4) && ids.contains(&5),
        "new jobs follow the copied ids: {ids:?}"
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
    assert!(
        verify["problem"].is_null(),
        "the chain goes on from the copied head: {verify}"
    );
    host.kill().unwrap();
    let _ = host.wait();

    let accounts: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT key, value FROM kv WHERE tenant = 't' AND plugin = 'sandbox' AND key LIKE
            'account/%' ORDER BY key",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(accounts.len(), 4, "one account per person, none made twice");
    let p1: Value = serde_json::from_slice(&accounts[1].1).unwrap();
    assert!(p1.to_string().contains("\"v1\""), "{p1}");
}
