//! Lever webhooks end to end: signed deliveries (test vectors computed with
//! `ring`, not the host's `hmac`), the `lever` source plugin enriching ids
//! through a fake Lever API (pagination, both nestings, a 429), the joiner applied
//! to the sandbox destination; forged, stale, replayed (also after a restart),
//! malformed and oversized deliveries refused, audited, and enqueueing nothing.

use serde_json::{Value, json};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_tests::fake_lever::{
    self, API_KEY, HIRED_CONTACT, HIRED_OPPORTUNITY, MANAGER_CONTACT, NESTED_CONTACT, NESTED_OPPORTUNITY,
    NOT_HIRED_OPPORTUNITY, delivery, now_ms, sign,
};
use tenure_tests::host::{HostSpec, TENANT, TestHost, pipeline_toml, rules, tenant_toml};

const HIRED_TOKEN: &str = "tok-hired-signature-0123456789";
const OTHER_TOKEN: &str = "tok-any-signature-0123456789";

#[test]
fn the_signing_helper_matches_vectors_computed_with_python() {
    // python3: hmac.new(key, (token + str(triggeredAt)).encode(), hashlib.sha256).hexdigest()
    assert_eq!(
        sign(
            "tok-hired",
            "657fd5a0759c87d35660b096dbc388d1d31058869f08ce3f",
            1431458021951
        ),
        "cfa0b5c25e2c572141c4a537b13bed8b3b9b24c19450ff5cf7f9f9c7b4c3c4ba"
    );
    assert_eq!(
        sign(
            "a-signature-token",
            "be58f711f349c7780e4579cd7c63341ac6f881e4dccc3154",
            1431454330072
        ),
        "3ed75ebc5a19f328b1318d71ebae6fbbb134d13a1cb3fb693b5cdcc01af8a161"
    );
}

fn hired(token: &str, opportunity: &str) -> Value {
    delivery(
        "candidateHired",
        HIRED_TOKEN,
        token,
        now_ms(),
        json!({ "opportunityId": opportunity, "candidateId": opportunity, "contactId": "ignored" }),
    )
}

fn specs(lever: std::net::SocketAddr) -> HostSpec {
    let tenant = tenant_toml(&specs_tenant_text(lever));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\"]\n\
         [[sources]]\nname = \"lever\"\nplugin = \"lever\"\n\
         [sources.webhook]\nmax_age_secs = 300\nmax_body_bytes = 65536\n\
         [sources.webhook.signature_tokens]\ncandidateHired = \"{HIRED_TOKEN}\"\n\"*\" = \"{OTHER_TOKEN}\"\n"
    ));
    HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "sandbox", "lever"],
    }
}

async fn post_hook(h: &TestHost, body: &[u8]) -> (u16, Value) {
    let resp = h
        .client
        .post(format!("{}/hooks/lever/lever", h.base))
        .header("content-type", "application/json")
        .header("user-agent", "Lever-Webhooks")
        .body(body.to_vec())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn stored_events(h: &TestHost) -> usize {
    h.audit(None)
        .await
        .iter()
        .filter(|e| e["kind"] == "event.received")
        .count()
}

async fn rejections(h: &TestHost) -> Vec<Value> {
    h.audit(None)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "webhook.rejected")
        .map(|e| e["data"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_hire_is_enriched_and_provisioned_and_bad_deliveries_are_refused() {
    let lever = fake_lever::start().await;
    let h = TestHost::start(specs(lever.addr)).await;

    // Lever's test request: signed, empty data: 200, nothing enqueued.
    let ping = delivery("candidateHired", HIRED_TOKEN, "ping-token-1", now_ms(), json!({}));
    let (status, body) = post_hook(&h, ping.to_string().as_bytes()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ping")), "{body}");

    // A hire: stored raw and acknowledged, then enriched through the fake API.
    let first = hired("delivery-token-1", HIRED_OPPORTUNITY).to_string();
    let (status, body) = post_hook(&h, first.as_bytes()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("stored")), "{body}");
    h.wait_idle(Duration::from_secs(30)).await;

    let event = stored_event(
        &h,
        &format!("candidateHired:{HIRED_OPPORTUNITY}:delivery-token-1"),
    )
    .await;
    assert_eq!(event.person_key, format!("lever:{HIRED_CONTACT}"));
    // Stored in Tenure's own envelope (version 1), not as the WIT record.
    let stored: Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(stored["v"], 1, "{stored}");
    let p = &stored["person"];
    assert_eq!(p["ids"][0]["id"], HIRED_CONTACT, "the contact is the person");
    assert_eq!(
        (p["given_name"].as_str(), p["family_name"].as_str()),
        (Some("Shane Q"), Some("Smith"))
    );
    assert_eq!(
        p["title"], "Back End Software Engineer",
        "the signed offer on the second page wins over the draft"
    );
    assert_eq!(
        (p["department"].as_str(), p["team"].as_str()),
        (Some("Engineering"), Some("Platform"))
    );
    assert_eq!(p["location"], "San Francisco");
    assert_eq!(p["start_date"], "2026-01-05");
    assert_eq!(p["status"], "active", "the start date (2026-01-05) has passed");
    assert_eq!(p["employment_type"], "employee");
    assert_eq!(
        p["manager"]["id"], MANAGER_CONTACT,
        "the manager's linked contact is their person id"
    );
    assert_eq!(stored["kind"], "joiner");
    let custom = p["custom"].to_string();
    assert!(
        custom.contains("dana@example.test") && custom.contains("OP-9"),
        "{custom}"
    );
    assert!(
        custom.contains("offer_job_title") && custom.contains("Full-time"),
        "the offer's fields and the commitment: {custom}"
    );
    assert!(
        !custom.contains("salary") && !custom.contains("1319000"),
        "pay stays in Lever: {custom}"
    );

    // Applied to the sandbox destination.
    let (_, jobs) = h
        .request(
            reqwest::Method::GET,
            "/api/v1/jobs?state=completed",
            tenure_tests::host::IT_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");

    // The host attached the API key (the fake refuses anything else), retried the 429 once,
    // and followed the offers' pagination.
    assert_eq!(lever.count("/v1/archive_reasons"), 2, "a 429 and its retry");
    assert_eq!(
        lever.count(&format!("/v1/opportunities/{HIRED_OPPORTUNITY}/offers")),
        2
    );
    assert!(
        lever
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_some())
    );

    // The other documented nesting ({"data": {"data": ...}}) reads the same.
    let (status, body) = post_hook(
        &h,
        hired("delivery-token-2", NESTED_OPPORTUNITY)
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
    let nested = stored_event(
        &h,
        &format!("candidateHired:{NESTED_OPPORTUNITY}:delivery-token-2"),
    )
    .await;
    assert_eq!(nested.person_key, format!("lever:{NESTED_CONTACT}"));

    // Not a hire: verified and stored; its enrichment finds nothing to enqueue.
    let (status, body) = post_hook(
        &h,
        hired("delivery-token-3", NOT_HIRED_OPPORTUNITY)
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
    let listed = h.get("/api/v1/deliveries?source=lever&limit=1").await;
    assert_eq!(
        (listed[0]["state"].as_str(), listed[0]["events"].as_i64()),
        (Some("done"), Some(0)),
        "{listed}"
    );

    let before = stored_events(&h).await;
    // Lever retrying a delivery it already got: acknowledged, nothing enriched again.
    let (status, body) = post_hook(&h, first.as_bytes()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    let at = now_ms();
    // Replayed with other content, forged, signed with another webhook's token, stale,
    // malformed, missing a field, oversized.
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (tampered(&first), 409, "token"),
        (
            {
                let mut d = hired("forged-1", HIRED_OPPORTUNITY);
                d["signature"] = json!(sign(
                    "not-the-key",
                    "forged-1",
                    d["triggeredAt"].as_u64().unwrap()
                ));
                d.to_string().into_bytes()
            },
            401,
            "signature",
        ),
        (
            delivery(
                "candidateHired",
                OTHER_TOKEN,
                "wrong-key-1",
                at,
                json!({"opportunityId": HIRED_OPPORTUNITY}),
            )
            .to_string()
            .into_bytes(),
            401,
            "signature",
        ),
        (
            delivery(
                "candidateHired",
                HIRED_TOKEN,
                "stale-1",
                at - 3_600_000,
                json!({"opportunityId": HIRED_OPPORTUNITY}),
            )
            .to_string()
            .into_bytes(),
            401,
            "triggeredAt",
        ),
        (b"{\"triggeredAt\": 1, \"event\": ".to_vec(), 400, "body"),
        (
            json!({"triggeredAt": at, "event": "candidateHired", "data": {}, "signature": "00"})
                .to_string()
                .into_bytes(),
            400,
            "token",
        ),
        (vec![b' '; 70_000], 413, "body"),
    ];
    for (body, status, field) in &cases {
        let (got, answer) = post_hook(&h, body).await;
        assert_eq!(
            (got, answer["error"]["field"].as_str()),
            (*status, Some(*field)),
            "{answer}"
        );
    }
    assert_eq!(
        stored_events(&h).await,
        before,
        "a refused delivery enqueues nothing"
    );
    let audited = rejections(&h).await;
    assert_eq!(audited.len(), cases.len(), "{audited:?}");
    assert!(
        audited
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("replay"))
    );

    // Seen tokens and content survive a restart: the same delivery is a duplicate, a
    // tampered one a replay.
    let dir = h.stop().await;
    let h = TestHost::start_in(specs(lever.addr), dir).await;
    let (status, body) = post_hook(&h, first.as_bytes()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    let (status, body) = post_hook(&h, &tampered(&first)).await;
    assert_eq!(status, 409, "{body}");
    h.stop().await;
}

/// A captured delivery with its data changed but its token and signature kept (the
/// signature covers only the token and the time).
fn tampered(delivery: &str) -> Vec<u8> {
    let mut d: Value = serde_json::from_str(delivery).unwrap();
    d["data"]["opportunityId"] = json!(NESTED_OPPORTUNITY);
    d.to_string().into_bytes()
}

/// The event stored for a source record of the `lever` source.
async fn stored_event(h: &TestHost, record: &str) -> tenure_store::EventRow {
    h.store
        .event_by_record(TENANT, "lever", record)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no event stored for {record}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_finds_hires_and_resumes_after_a_restart_without_gap_or_duplicate() {
    let lever = fake_lever::start().await;
    let h = TestHost::start(specs(lever.addr)).await;
    let source = tenure_pipeline::SourceConfig {
        name: "lever".into(),
        plugin: "lever".into(),
        poll_secs: Some(60),
        poll_cron: None,
        webhook: None,
    };
    assert!(h.pipeline.poll_once(TENANT, &source).await, "a second page waits");
    let mid_sweep = h.store.cursor(TENANT, "lever").await.unwrap();
    assert_eq!(
        mid_sweep.as_deref(),
        Some("0|page2|1407460080914|"),
        "the sweep's start stays until it ends"
    );
    assert!(!h.pipeline.poll_once(TENANT, &source).await, "the sweep ends");
    let cursor = h.store.cursor(TENANT, "lever").await.unwrap();
    assert_eq!(
        cursor.as_deref(),
        Some("1407460080915"),
        "just after the newest updatedAt of the whole sweep"
    );
    h.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(
        stored_events(&h).await,
        2,
        "the older update on the second page is not lost"
    );

    // After a restart the poll resumes at the stored cursor: nothing new, nothing twice.
    let dir = h.stop().await;
    let h = TestHost::start_in(specs(lever.addr), dir).await;
    assert!(!h.pipeline.poll_once(TENANT, &source).await);
    assert_eq!(h.store.cursor(TENANT, "lever").await.unwrap(), cursor);
    assert_eq!(stored_events(&h).await, 2);
    let polls: Vec<String> = lever
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/v1/opportunities?"))
        .map(|r| r.target)
        .collect();
    assert!(
        polls[0].contains("updated_at_start=0") && polls[1].contains("offset=page2"),
        "{polls:?}"
    );
    assert!(polls[2].contains("updated_at_start=1407460080915"), "{polls:?}");
    assert_eq!(
        lever.count(&format!("/v1/opportunities/{HIRED_OPPORTUNITY}?")),
        0,
        "the poll uses the page's opportunities; it does not fetch each again"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_from_the_command_line_polls_until_done_and_resumes() {
    let lever = fake_lever::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = tenure_plugin_test::workspace_root();
    std::fs::write(dir.path().join("rules.txt"), rules("sandbox")).unwrap();
    let config = format!(
        r#"plugins_dir = "{}"
cache_dir = "{}"
[store]
path = "data/tenure.db"
[tenants.acme]
rules = "rules-basic"
[[tenants.acme.destinations]]
name = "sandbox"
connector = "sandbox"
[tenants.acme.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.acme.plugins.sandbox.grants]
kv = true
[tenants.acme.connections.lever]
kind = "http"
allow_private_network = true
url = "http://{}/v1"
auth = {{ type = "basic", username = "{API_KEY}" }}
retry_429 = 2
[tenants.acme.plugins.lever.grants]
http = ["lever"]
kv = true
[[tenants.acme.sources]]
name = "lever"
plugin = "lever"
"#,
        tenure_plugin_test::plugin_dir().display(),
        root.join("target/component-cache").display(),
        lever.addr
    );
    std::fs::write(dir.path().join("tenure.toml"), config).unwrap();
    let path = dir.path().to_path_buf();
    let run = move || {
        let out = std::process::Command::new(tenure_tests::tenure_binary())
            .args([
                "sources",
                "backfill",
                "--config",
                "tenure.toml",
                "--tenant",
                "acme",
                "--source",
                "lever",
            ])
            .current_dir(&path)
            .env("RUST_LOG", "warn")
            .env_remove("TENURE_MASTER_KEY")
            .output()
            .expect("run tenure");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(first.contains("2 pages, 2 new events"), "{first}");
    // The cursor was stored with the page: a second backfill finds nothing new.
    let second = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(
        second.contains("1 pages, 0 new events, 0 already known"),
        "{second}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lever_hire_and_an_hr_feed_termination_act_on_one_person() {
    let lever = fake_lever::start().await;
    let mut spec = specs(lever.addr);
    // Link by email (this tenant vouches for Lever's candidate addresses too); HR is the
    // authority on titles. The HR feed arrives as CSV.
    let mut pipeline = spec.pipeline;
    pipeline.identity = toml::from_str(
        "link_by = [\"email\"]\nlink_email_kinds = [\"work\", \"personal\"]\n[authority]\ntitle = \"hr\"\n",
    )
    .unwrap();
    pipeline
        .sources
        .push(toml::from_str("name = \"hr\"\nplugin = \"hr-feed\"\n").unwrap());
    spec.pipeline = pipeline;
    spec.tenant = tenant_toml(&format!(
        "{}\n[plugins.hr-feed]\nsettings = {{ \"column.employee_id\" = \"Employee ID\", \"column.email\" = \
            \"Work Email\", \
         \"column.event\" = \"Action\", \"column.effective_date\" = \"Effective Date\", \"column.title\" = \
             \"Title\", \
         \"event.TERM\" = \"leaver\" }}\n",
        specs_tenant_text(lever.addr)
    ));
    spec.plugins.push("hr-feed");
    let h = TestHost::start(spec).await;

    let (status, body) = post_hook(
        &h,
        hired("link-token-1", HIRED_OPPORTUNITY).to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
    let person = format!("lever:{HIRED_CONTACT}");
    let before = account(
        &h,
        "lever",
        &format!("candidateHired:{HIRED_OPPORTUNITY}:link-token-1"),
    )
    .await;
    assert_eq!(before["enabled"], true, "{before}");

    // The HR system's record of the same employee (another id, the same email in other case): a termination.
    let csv = "Employee ID,Work Email,Action,Effective \
        Date,Title\nE100,Shane@Example.test,TERM,2026-03-31,Senior Engineer\n";
    let resp = h
        .client
        .post(format!("{}/api/v1/sources/hr/payload", h.base))
        .bearer_auth(tenure_tests::host::SOURCE_TOKEN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        202,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    h.wait_idle(Duration::from_secs(30)).await;

    // Both events belong to one person and one account, which is now disabled.
    let (_, jobs) = h
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/jobs?person={person}"),
            tenure_tests::host::IT_TOKEN,
            None,
            None,
        )
        .await;
    let kinds: Vec<(&str, &str)> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["kind"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 2, "{jobs}");
    assert!(kinds.iter().all(|(_, s)| *s == "completed"), "{jobs}");
    let after = account(&h, "hr", "E100:leaver:2026-03-31").await;
    assert_eq!(after["anchor"], before["anchor"], "the same account");
    assert_eq!(after["enabled"], false, "{after}");
    let audit: Vec<String> = h
        .audit(Some(&person))
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        audit.iter().filter(|k| *k == "op.applied").count() >= 2,
        "{audit:?}"
    );
    h.stop().await;
}

/// The runtime part of [`specs`] as TOML text (for tests that add to it).
fn specs_tenant_text(lever: std::net::SocketAddr) -> String {
    format!(
        "[connections.lever]\nkind = \"http\"\nallow_private_network = true\nurl = \"http://{lever}/v1\"\n\
         auth = {{ type = \"basic\", username = \"{API_KEY}\" }}\n\
         rate_limit = {{ per_second = 10.0, burst = 20 }}\nretry_429 = 2\n\
         [plugins.lever.grants]\nhttp = [\"lever\"]\nkv = true\n\
         [plugins.lever]\nsettings = {{ name_split = \"last-space\" }}\n\
         [plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    )
}

/// The account the sandbox holds for the person of a stored record (preview writes nothing).
async fn account(h: &TestHost, source: &str, record: &str) -> Value {
    let (status, body) = h
        .post(
            "/api/v1/preview",
            &json!({ "source": source, "source_record_id": record }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["destinations"][0]["current"].clone()
}
