//! Events from source plugins: a pushed payload through `POST /api/v1/sources/{source}/payload`
//! and a poll whose cursor is stored with the events it produced.

use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenure_pipeline::{QueueConfig, SourceConfig};
use tenure_store::prelude::*;
use tenure_tests::host::{HostSpec, SOURCE_TOKEN, TENANT, TestHost, pipeline_toml, rules, tenant_toml};
use tenure_tests::{Reply, start_http};

async fn host(hr_api: Option<std::net::SocketAddr>) -> TestHost {
    let connection = hr_api
        .map(|a| {
            format!(
                "[connections.hr-api]\nkind = \"http\"\nallow_private_network = true\nurl = \
            \"http://{a}\"\n[plugins.source-json.grants]\nhttp = [\"hr-api\"]\n"
            )
        })
        .unwrap_or_default();
    let tenant = tenant_toml(&format!(
        "{connection}[plugins.source-json]\nsettings = {{ source = \"hr\" \
            }}\n[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\"]\n\
         [[sources]]\nname = \"hr\"\nplugin = \"source-json\"\n",
    );
    let queue = QueueConfig {
        poll_ms: 20,
        ..QueueConfig::default()
    };
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue,
        plugins: vec!["rules-basic", "sandbox", "source-json"],
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_payload_becomes_events_and_accounts() {
    let host = host(None).await;
    let body = json!([
        {"employee_id": "1001", "event": "joiner", "given_name": "Ada", "family_name": "Lovelace",
         "email": "ada@example.test", "department": "Engineering", "start_date": "2030-01-05"},
        {"employee_id": "1002", "event": "joiner", "given_name": "Sam", "email": "sam@example.test",
            "department": "Sales"}
    ]);
    let url = format!("{}/api/v1/sources/hr/payload", host.base);
    let resp = host
        .client
        .post(&url)
        .bearer_auth(SOURCE_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["stored"].as_array().unwrap().len(), 2, "{answer}");
    // The same payload again is de-duplicated by source record id.
    let again: serde_json::Value = host
        .client
        .post(&url)
        .bearer_auth(SOURCE_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        again["stored"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "duplicate"),
        "{again}"
    );
    host.wait_idle(Duration::from_secs(30)).await;
    let jobs = host.get("/api/v1/jobs").await;
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert!(
        jobs.as_array().unwrap().iter().all(|j| j["state"] == "completed"),
        "{jobs}"
    );
    let received = host.audit(Some("hr:1001")).await;
    assert_eq!(received[0]["kind"], "event.received");
    assert_eq!(received[0]["actor"], "source:hr");
    // A payload the plugin refuses is a 422 naming the plugin's field; nothing is stored.
    let bad = host
        .client
        .post(&url)
        .bearer_auth(SOURCE_TOKEN)
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let error: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["field"], "records", "{error}");
    assert_eq!(host.get("/api/v1/jobs").await.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_stores_its_cursor_with_its_events() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let api = start_http(move |req| {
        log.lock().unwrap().push(req.target.clone());
        let body = if req.target.contains("since=c1") {
            json!({"records": [], "next_cursor": "c1", "has_more": false})
        } else {
            json!({"records": [{"employee_id": "7", "event": "joiner", "email": "p7@example.test",
                "department": "Sales"}],
                   "next_cursor": "c1", "has_more": false})
        };
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    })
    .await;
    let host = host(Some(api)).await;
    let source = SourceConfig {
        name: "hr".into(),
        plugin: "source-json".into(),
        poll_secs: Some(60),
        poll_cron: None,
        webhook: None,
    };
    assert!(!host.pipeline.poll_once(TENANT, &source).await, "no more pages");
    assert_eq!(
        host.store.cursor(TENANT, "hr").await.unwrap().as_deref(),
        Some("c1")
    );
    host.pipeline.poll_once(TENANT, &source).await;
    let targets = seen.lock().unwrap().clone();
    assert_eq!(targets.len(), 2);
    assert!(
        targets[1].contains("since=c1"),
        "the second poll starts at the stored cursor: {targets:?}"
    );
    host.wait_idle(Duration::from_secs(30)).await;
    let jobs = host.get("/api/v1/jobs").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["state"], "completed");
}
