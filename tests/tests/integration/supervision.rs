//! Supervised mode and pilot cohorts (issue 22): per destination and per scope expression,
//! `live` applies, `supervised` holds each person's plan until a person approves or rejects it
//! (per person, per destination or by id), and `observe` plans and audits only. An approved
//! plan is re-planned against the destination as it is then: a re-plan that needs less is
//! applied, one that asks for more is held again; nothing unapproved is written.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_tests::host::{
    HR_TOKEN, HostSpec, IT_TOKEN, TENANT, TestHost, joiner, pipeline_toml, rules, tenant_toml,
};

pub(crate) async fn host() -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(
        r#"rules = "rules-basic"
[[destinations]]
name = "sandbox"
connector = "sandbox"
mode = "supervised"
[[destinations.cohorts]]
scope = 'person.department == "Engineering"'
mode = "live"
[[destinations.cohorts]]
scope = 'person.department == "Finance" or person.custom.pilot == "observe"'
mode = "observe"
"#,
    );
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "sandbox"],
    })
    .await
}

async fn post(h: &TestHost, event: &Value, key: &str) {
    let (status, body) = h.post_event(event, key).await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
}

async fn holds(h: &TestHost, query: &str) -> Vec<Value> {
    h.get(&format!("/api/v1/holds?{query}"))
        .await
        .as_array()
        .expect("holds")
        .clone()
}

async fn decide(h: &TestHost, token: &str, body: Value) -> (u16, Value) {
    let result = h
        .request(Method::POST, "/api/v1/holds/decide", token, Some(&body), None)
        .await;
    h.wait_idle(Duration::from_secs(30)).await;
    result
}

fn kinds(audit: &[Value]) -> Vec<String> {
    audit
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Changes one attribute of an account in the sandbox destination behind Tenure's back.
async fn drift(h: &TestHost, employee_id: &str, attribute: &str, value: &str) {
    let kv = h.store.kv();
    let ns = tenure_capabilities::KvNamespace {
        tenant: TENANT.into(),
        plugin: "sandbox".into(),
    };
    let account = h.sandbox_account(employee_id).await.expect("an account");
    let key = format!("account/{}", account.anchor);
    let raw = kv.get(&ns, &key).await.unwrap().expect("the record");
    let mut record: Value = serde_json::from_slice(&raw).unwrap();
    let attributes = record["attributes"].as_array_mut().expect("attributes");
    let entry = attributes
        .iter_mut()
        .find(|a| a[0] == attribute)
        .expect("the attribute");
    entry[1] = json!({ "Text": value });
    kv.set(&ns, &key, &serde_json::to_vec(&record).unwrap())
        .await
        .unwrap();
}

fn attribute(account: &tenure_runtime::wit::Account, name: &str) -> Option<String> {
    account
        .attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| match &a.value {
            tenure_runtime::wit::Value::Text(t) => t.clone(),
            other => format!("{other:?}"),
        })
}

fn mover(id: &str, department: &str) -> Value {
    let mut event = joiner(id, department);
    event["kind"] = json!("update");
    event["source_record_id"] = json!(format!("move-{id}-{department}"));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohorts_apply_hold_or_observe_and_approvals_re_plan_before_anything_is_written() {
    let h = host().await;

    // Engineering is the live cohort: applied at once, nothing held.
    post(&h, &joiner("e1", "Engineering"), "e1").await;
    assert!(h.sandbox_account("e1").await.is_some());
    // Finance is observed: planned and audited, nothing applied, nothing held.
    post(&h, &joiner("f1", "Finance"), "f1").await;
    assert!(h.sandbox_account("f1").await.is_none());
    let f1 = h.audit(Some("hr:f1")).await;
    assert!(
        kinds(&f1).contains(&"plan.observed".to_string()),
        "{:?}",
        kinds(&f1)
    );
    assert!(!kinds(&f1).iter().any(|k| k == "op.applied" || k == "plan.held"));
    // Everyone else is supervised: their plan waits for a person.
    post(&h, &joiner("s1", "Sales"), "s1").await;
    post(&h, &joiner("s2", "Sales"), "s2").await;
    assert!(h.sandbox_account("s1").await.is_none());
    let pending = holds(&h, "state=pending").await;
    assert_eq!(pending.len(), 2, "{pending:#?}");
    assert_eq!(pending[0]["person_key"], "hr:s1");
    let ops: Vec<&str> = pending[0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap())
        .collect();
    assert!(ops.contains(&"create"), "{ops:?}");
    let jobs = h.get("/api/v1/jobs?state=held").await;
    assert_eq!(jobs.as_array().unwrap().len(), 2, "{jobs:#}");

    // HR may read them but not decide; a decision must say which plans.
    let (status, _) = decide(&h, HR_TOKEN, json!({ "decision": "approve", "all": true })).await;
    assert_eq!(status, 403);
    let (status, body) = decide(&h, IT_TOKEN, json!({ "decision": "approve" })).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("ids")),
        "{body}"
    );

    // Approved per person: re-planned, applied; the other is rejected and left alone.
    let (status, body) = decide(
        &h,
        IT_TOKEN,
        json!({ "decision": "approve", "person": "hr:s1",
        "note": "pilot week 1" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decided"].as_array().unwrap().len(), 1);
    assert!(h.sandbox_account("s1").await.is_some());
    let s1 = holds(&h, "person=hr:s1").await;
    assert_eq!(
        (s1[0]["state"].as_str(), s1[0]["decided_by"].as_str()),
        (Some("applied"), Some("it-admin"))
    );
    let id = pending[1]["id"].clone();
    let (status, body) = decide(&h, IT_TOKEN, json!({ "decision": "reject", "ids": [id, 424242] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["not_pending"], json!([424242]));
    assert!(h.sandbox_account("s2").await.is_none());
    let s2 = h.audit(Some("hr:s2")).await;
    assert!(kinds(&s2).contains(&"plan.rejected".to_string()));
    assert!(
        kinds(&s2).contains(&"destination.skipped".to_string()),
        "{:?}",
        kinds(&s2)
    );
    assert!(
        h.get("/api/v1/jobs?state=held")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // s1 moves to Support; while the move waits, someone fixes the department by hand: the
    // approved move re-plans, needs less, and sends only the rest.
    post(&h, &mover("s1", "Support"), "m1").await;
    let moved = holds(&h, "state=pending").await;
    assert_eq!(moved.len(), 1, "{moved:#?}");
    drift(&h, "s1", "department", "Support").await;
    let (status, body) = decide(
        &h,
        IT_TOKEN,
        json!({ "decision": "approve", "destination": "sandbox" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let account = h.sandbox_account("s1").await.unwrap();
    assert_eq!(account.container.as_deref(), Some("OU=People"));
    assert!(
        account.groups.contains(&"All-Staff".to_string()),
        "{:?}",
        account.groups
    );
    assert_eq!(holds(&h, "state=applied").await.len(), 2);

    // s1 moves again; meanwhile their mail drifts: the re-plan asks for more than was
    // approved, so it is held again and nothing is written until that is approved too.
    post(&h, &mover("s1", "Sales"), "m2").await;
    drift(&h, "s1", "mail", "hand-edited@example.test").await;
    let (_, body) = decide(&h, IT_TOKEN, json!({ "decision": "approve", "all": true })).await;
    assert_eq!(body["decided"].as_array().unwrap().len(), 1, "{body}");
    let account = h.sandbox_account("s1").await.unwrap();
    assert_eq!(
        account.container.as_deref(),
        Some("OU=People"),
        "nothing written yet"
    );
    let again = holds(&h, "state=pending").await;
    assert_eq!(again.len(), 1, "held again: {again:#?}");
    assert_eq!(holds(&h, "state=superseded").await.len(), 1);
    let s1 = h.audit(Some("hr:s1")).await;
    let rehold = s1.iter().rfind(|e| e["kind"] == "plan.held").unwrap();
    assert!(rehold["data"]["replaces_approved"].is_i64(), "{rehold:#}");
    let (_, body) = decide(&h, IT_TOKEN, json!({ "decision": "approve", "all": true })).await;
    assert_eq!(body["decided"].as_array().unwrap().len(), 1, "{body}");
    let account = h.sandbox_account("s1").await.unwrap();
    assert_eq!(account.container.as_deref(), Some("OU=Sales"));
    assert_eq!(attribute(&account, "mail").as_deref(), Some("ps1@example.test"));
    assert!(holds(&h, "state=pending").await.is_empty());
    let approvals = h
        .audit(None)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "plan.approved")
        .count();
    assert_eq!(approvals, 4);
}
