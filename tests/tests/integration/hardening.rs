//! Hardening (issue 18): a caller speaks only for the sources it is bound to, a
//! client's idempotency keys cannot pre-empt a source's records, an event cannot
//! claim to happen in the future, and an upload for a webhook source needs the
//! webhook's signature or an IT administrator's audited reason.

use serde_json::{Value, json};
use tenure_pipeline::QueueConfig;
use tenure_store::LeaseStore;
use tenure_tests::fake_lever::{delivery, now_ms};
use tenure_tests::host::{HostSpec, IT_TOKEN, SOURCE_TOKEN, TestHost, pipeline_toml, rules, tenant_toml};

const WEBHOOK_KEY: &str = "lever-webhook-key-0123";

/// A tenant with a Lever source that receives signed webhooks; the test host's source token is
/// bound to `hr`, `lever` and `api`, its IT token to nothing (any push source).
async fn host() -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.lever.grants]\nkv = true\n[plugins.rules-basic]\nrule_set = '''\n{}'''\n\
         [plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         [[sources]]\nname = \"lever\"\nplugin = \"lever\"\n\
         [sources.webhook]\nsignature_tokens = {{ \"*\" = \"{WEBHOOK_KEY}\" }}\n"
    ));
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "sandbox", "lever"],
    })
    .await
}

fn event(source: &str, ids: Value, record: &str) -> Value {
    json!({ "kind": "update", "source": source, "source_record_id": record,
        "person": { "ids": ids, "given_name": "Ada", "family_name": "Lovelace" } })
}

async fn post(h: &TestHost, token: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
    h.request(reqwest::Method::POST, "/api/v1/events", token, Some(body), key)
        .await
}

fn refusal(answer: &(u16, Value), status: u16, field: &str, reason: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    let text = answer.1.to_string();
    assert!(
        text.contains(field) && text.contains(reason),
        "expected {field}: {reason} in {text}"
    );
}

#[tokio::test]
async fn a_caller_speaks_only_for_the_sources_it_may() {
    let h = host().await;
    let other = post(
        &h,
        SOURCE_TOKEN,
        &event("ats", json!([{"source": "ats", "id": "1"}]), "r1"),
        None,
    )
    .await;
    refusal(&other, 403, "source", "may post for hr, lever, api only");
    let ids = json!([{"source": "hr", "id": "1"}, {"source": "ats", "id": "9"}]);
    let smuggled = post(&h, SOURCE_TOKEN, &event("hr", ids, "r2"), None).await;
    refusal(&smuggled, 403, "person.ids[1].source", "not \\\"ats\\\"");
    // The IT token names no sources: it may post for a push source, never for a webhook one.
    let webhook = post(
        &h,
        IT_TOKEN,
        &event("lever", json!([{"source": "lever", "id": "L1"}]), "r3"),
        None,
    )
    .await;
    refusal(&webhook, 403, "source", "received by signed webhook");
    let pushed = post(
        &h,
        IT_TOKEN,
        &event("hr", json!([{"source": "hr", "id": "1"}]), "r4"),
        None,
    )
    .await;
    assert_eq!(pushed.0, 202, "{pushed:?}");
}

#[tokio::test]
async fn a_clients_idempotency_key_never_pre_empts_a_sources_own_record() {
    let h = host().await;
    let ids = json!([{"source": "hr", "id": "E1"}]);
    let mut forged = event("hr", ids.clone(), "");
    forged["kind"] = json!("update");
    let first = post(&h, SOURCE_TOKEN, &forged, Some("hr:E1:leaver:2026-03-31")).await;
    assert_eq!(first.0, 202, "{first:?}");
    // The HR feed's real termination, keyed by its record id: stored, not taken for a duplicate.
    let mut termination = event("hr", ids, "E1:leaver:2026-03-31");
    termination["kind"] = json!("leaver");
    termination["effective_date"] = json!("2026-03-31");
    let real = post(&h, IT_TOKEN, &termination, None).await;
    assert_eq!(real.0, 202, "the source's own record was pre-empted: {real:?}");
    // The same client key again is still that client's duplicate.
    let again = post(&h, SOURCE_TOKEN, &forged, Some("hr:E1:leaver:2026-03-31")).await;
    assert_eq!(again.0, 200, "{again:?}");
}

#[tokio::test]
async fn an_event_cannot_claim_to_happen_in_the_future() {
    let h = host().await;
    let at = |ms: u64| {
        let secs = (ms / 1000) as i64;
        chrono::DateTime::from_timestamp(secs, 0)
            .expect("time")
            .to_rfc3339()
    };
    let mut ahead = event("hr", json!([{"source": "hr", "id": "F1"}]), "f1");
    ahead["occurred_at"] = json!(at(now_ms() + 86_400_000));
    refusal(
        &post(&h, SOURCE_TOKEN, &ahead, None).await,
        422,
        "occurred_at",
        "in the future",
    );
    let mut skewed = event("hr", json!([{"source": "hr", "id": "F1"}]), "f2");
    skewed["occurred_at"] = json!(at(now_ms() + 60_000));
    let accepted = post(&h, SOURCE_TOKEN, &skewed, None).await;
    assert_eq!(
        accepted.0, 202,
        "a minute of clock skew is accepted: {accepted:?}"
    );
}

async fn upload(h: &TestHost, token: &str, body: &[u8], reason: Option<&str>) -> (u16, Value) {
    let mut req = h
        .client
        .post(format!("{}/api/v1/sources/lever/payload", h.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(r) = reason {
        req = req.header("X-Tenure-Reason", r);
    }
    let resp = req.send().await.expect("upload");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn an_upload_for_a_webhook_source_needs_its_signature_or_an_audited_reason() {
    let h = host().await;
    let unsigned = json!({ "event": "applicationArchived", "triggeredAt": now_ms(), "token": "t-1",
        "data": {} })
    .to_string();
    let refused = upload(&h, SOURCE_TOKEN, unsigned.as_bytes(), None).await;
    refusal(&refused, 403, "", "receives signed webhooks");
    // A reason from a source token is no reason: only IT may stand in for the signature.
    let refused = upload(&h, SOURCE_TOKEN, unsigned.as_bytes(), Some("trust me")).await;
    assert_eq!(refused.0, 403, "{refused:?}");

    let signed = delivery("applicationArchived", WEBHOOK_KEY, "t-2", now_ms(), json!({})).to_string();
    let accepted = upload(&h, SOURCE_TOKEN, signed.as_bytes(), None).await;
    assert_eq!(accepted.0, 202, "a signed upload is taken: {accepted:?}");

    let reason = "replaying Lever's export after the outage of 3 March";
    let overridden = upload(&h, IT_TOKEN, unsigned.as_bytes(), Some(reason)).await;
    assert_eq!(overridden.0, 202, "{overridden:?}");
    let audit = h.get("/api/v1/audit?format=json").await;
    let entries = audit.as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| e["kind"] == "source.payload-override")
        .unwrap_or_else(|| panic!("no override in the audit: {audit}"));
    assert_eq!(entry["actor"], "it-admin");
    assert_eq!(entry["data"]["reason"], reason);
    assert_eq!(entry["data"]["source"], "lever");
}

/// A host whose Lever webhook admits 0.01 deliveries a second after a burst of `burst`.
async fn rate_limited_lever_host(burst: u32) -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.lever.grants]\nkv = true\n[plugins.rules-basic]\nrule_set = '''\n{}'''\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         [[sources]]\nname = \"lever\"\nplugin = \"lever\"\n\
         [sources.webhook]\nsignature_tokens = {{ \"*\" = \"{WEBHOOK_KEY}\" }}\n\
         rate_limit = {{ per_second = 0.01, burst = {burst} }}\n"
    ));
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig::default(),
        plugins: vec!["rules-basic", "sandbox", "lever"],
    })
    .await
}

/// Posts a Lever delivery signed with the wrong key (refused for it once admitted).
async fn deliver_wrongly_signed(h: &TestHost, id: &str) -> reqwest::Response {
    let body = delivery("candidateHired", "wrong-key", id, now_ms(), json!({})).to_string();
    h.client
        .post(format!("{}/hooks/lever", h.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("deliver")
}

#[tokio::test]
async fn a_webhook_flood_is_held_at_the_door_counted_and_audited_sampled() {
    let h = rate_limited_lever_host(5).await;
    let mut statuses = Vec::new();
    for i in 0..60 {
        let r = deliver_wrongly_signed(&h, &format!("f-{i}")).await;
        if r.status().as_u16() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
        }
        statuses.push(r.status().as_u16());
    }
    // The burst is checked (and refused for its signature); the rest never reach the check.
    assert!(
        statuses[..5].iter().all(|s| *s == 401 || *s == 403),
        "{statuses:?}"
    );
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("tenure_webhook_refusals_total") && l.contains("429") && l.ends_with(" 55")),
        "{metrics}"
    );
    // The audit gets a sample, not one entry per refusal.
    let audit = h.get("/api/v1/audit?format=json").await;
    let rejected = audit
        .as_array()
        .map(|a| a.iter().filter(|e| e["kind"] == "webhook.rejected").count())
        .unwrap_or(0);
    assert!(
        (1..=21).contains(&rejected),
        "{rejected} audit entries for 60 refusals"
    );
}

/// A webhook source's rate limit is the deployment's: with another host alive (its lease on
/// itself held in the shared store), this host admits half the burst and says why it refuses;
/// once that host has left, this host counts itself alone again.
#[tokio::test]
async fn a_webhook_rate_limit_is_split_between_the_hosts_alive() {
    let h = rate_limited_lever_host(6).await;
    let flood = |n: usize, tag: &'static str| {
        let h = &h;
        async move {
            let mut statuses = Vec::new();
            for i in 0..n {
                let r = deliver_wrongly_signed(h, &format!("{tag}-{i}")).await;
                let status = r.status().as_u16();
                statuses.push((status, r.text().await.unwrap_or_default()));
            }
            statuses
        }
    };
    let now = h.pipeline.now();
    assert!(
        h.store
            .hold_lease("host:other", "other", now, now + 30_000)
            .await
            .unwrap()
    );
    assert_eq!(h.pipeline.refresh_live_hosts().await.unwrap(), 2);
    let two_hosts = flood(6, "two").await;
    let checked = two_hosts.iter().filter(|(s, _)| *s != 429).count();
    assert_eq!(checked, 3, "half the burst of 6: {two_hosts:?}");
    assert!(
        two_hosts[3].1.contains("over the deployment's 2 hosts"),
        "{two_hosts:?}"
    );
    // The other host stops renewing: once its lease has run out, this host counts itself alone.
    h.store.release_lease("host:other", "other").await.unwrap();
    assert_eq!(h.pipeline.refresh_live_hosts().await.unwrap(), 1);
    let alone = flood(1, "alone").await;
    // The bucket refills at the whole rate now (0.01/s): still empty after the flood above,
    // so a 429 that names no share.
    assert_eq!(alone[0].0, 429, "{alone:?}");
    assert!(!alone[0].1.contains("hosts"), "{alone:?}");
}

/// The audit API streams its export page by page (issue 18): 2,500 entries across three
/// pages arrive whole and in order as JSON Lines, JSON and CSV; `limit` caps what is
/// sent; another tenant's entries never appear; the export is audited before it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_export_streams_every_page_in_order_and_only_the_tenants_own() {
    use tenure_store::{AuditFilter, AuditKind, AuditRecord, AuditStore};
    let h = host().await;
    let records = |tenant: &str, n: usize| -> Vec<AuditRecord> {
        (0..n)
            .map(|i| {
                AuditRecord::new(tenant, AuditKind::AdminSecretSet, "bulk")
                    .person(format!("hr:P{i}"))
                    .data(json!({ "n": i }))
            })
            .collect()
    };
    h.store.append_audit(records("other-tenant", 300)).await.unwrap();
    for _ in 0..5 {
        h.store
            .append_audit(records(tenure_tests::host::TENANT, 500))
            .await
            .unwrap();
    }
    let get = |query: &'static str| {
        let h = &h;
        async move {
            let response = h
                .client
                .get(format!("{}/api/v1/audit?kind=admin.secret_set&{query}", h.base))
                .bearer_auth(tenure_tests::host::AUDITOR_TOKEN)
                .send()
                .await
                .expect("export");
            assert_eq!(response.status(), 200);
            response.text().await.expect("body")
        }
    };
    let jsonl = get("format=jsonl").await;
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2_500);
    assert!(lines.iter().all(|e| e["tenant"] == tenure_tests::host::TENANT));
    let seqs: Vec<i64> = lines.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order, none twice");

    let json: Value = serde_json::from_str(&get("format=json").await).expect("one JSON array");
    assert_eq!(json.as_array().map(Vec::len), Some(2_500));
    let csv = get("format=csv").await;
    assert_eq!(csv.lines().count(), 2_501, "one header and a row per entry");
    assert_eq!(csv.lines().filter(|l| l.starts_with("seq,")).count(), 1);
    let capped: Value = serde_json::from_str(&get("format=json&limit=1200").await).unwrap();
    assert_eq!(capped.as_array().map(Vec::len), Some(1_200));
    let empty: Value = serde_json::from_str(&get("format=json&person=hr:nobody").await).unwrap();
    assert_eq!(empty, json!([]));

    let exports = h
        .store
        .audit(AuditFilter {
            kind_prefix: Some("admin.audit_exported".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(exports.len(), 5, "each export is on record");
}
