//! The pipeline end to end through the HTTP API, on a real SQLite store with
//! real plugin components: retries and rate limits, dead letters and replay,
//! ordering, conflicts, guards, dry runs, preview, audit and bad input.

use serde_json::{Value, json};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_tests::host::{
    AUDITOR_TOKEN, HostSpec, IT_TOKEN, SOURCE_TOKEN, TENANT, TestHost, joiner, pipeline_toml, rules,
    tenant_toml,
};
use tenure_tests::mock_destination::{MockAccount, MockDestination};

fn fast_queue() -> QueueConfig {
    QueueConfig {
        backoff_base_ms: 50,
        backoff_max_ms: 2_000,
        lease_ms: 5_000,
        poll_ms: 20,
        ..QueueConfig::default()
    }
}

fn rule_grant(destination: &str) -> String {
    format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n",
        rules(destination)
    )
}

async fn sandbox_host(destination_extra: &str, queue: QueueConfig) -> TestHost {
    let tenant = tenant_toml(&format!(
        "{}[plugins.sandbox.grants]\nkv = true\n",
        rule_grant("sandbox")
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\", \"mail\"]\n{destination_extra}"
    ));
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue,
        plugins: vec!["rules-basic", "sandbox"],
    })
    .await
}

async fn http_host(mock: &MockDestination, destination_extra: &str) -> TestHost {
    let tenant = tenant_toml(&format!("{}{}", rule_grant("dest"), mock.tenant_toml()));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"dest\"\nconnector = \
            \"http-dest\"\n{destination_extra}"
    ));
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: fast_queue(),
        plugins: vec!["rules-basic", "http-dest"],
    })
    .await
}

fn kinds(audit: &[Value]) -> Vec<String> {
    audit
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_then_server_error_then_success_applies_once_honouring_waits() {
    let mock = MockDestination::start().await;
    mock.with(|s| s.script.extend([(429, Some(1)), (503, None)]));
    let host = http_host(&mock, "").await;
    let (status, body) = host.post_event(&joiner("1", "Engineering"), "k1").await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(30)).await;

    let (accounts, seen) = mock.with(|s| (s.accounts.clone(), s.seen.clone()));
    assert_eq!(accounts.len(), 1, "exactly one account: {accounts:?}");
    assert_eq!(accounts[0].groups, ["Engineering"]);
    let creates: Vec<_> = seen
        .iter()
        .filter(|r| r.path == "/accounts" && r.method == "POST")
        .collect();
    assert_eq!(
        creates.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 503, 201]
    );
    let waited = creates[1].at.duration_since(creates[0].at);
    assert!(
        waited >= Duration::from_millis(1000),
        "Retry-After: 1 was not honoured: {waited:?}"
    );

    let audit = host.audit(Some("hr:1")).await;
    let failed: Vec<_> = audit.iter().filter(|e| e["kind"] == "op.failed").collect();
    assert_eq!(failed.len(), 2, "every attempt is audited: {:?}", kinds(&audit));
    assert_eq!(failed[0]["data"]["class"], "rate-limited");
    assert_eq!(failed[0]["data"]["retry_after_ms"], 1000);
    assert_eq!(failed[1]["data"]["class"], "transient");
    assert_eq!(audit.iter().filter(|e| e["kind"] == "job.retry").count(), 2);
    assert_eq!(
        audit.iter().filter(|e| e["kind"] == "op.applied").count(),
        2,
        "create and one membership"
    );
    let job = host.get("/api/v1/jobs/1").await;
    assert_eq!(job["job"]["state"], "completed");
    // Three tries, two counted: waiting out a rate limit is not a failed attempt.
    assert_eq!(job["job"]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_then_replay_after_the_fix() {
    let mock = MockDestination::start().await;
    mock.with(|s| s.reject = Some("department is not allowed".into()));
    let host = http_host(&mock, "").await;
    host.post_event(&joiner("7", "Sales"), "k7").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let dead = host.get("/api/v1/jobs?state=dead").await;
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    let id = dead[0]["id"].as_i64().unwrap();
    let error = dead[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("permanent") && error.contains("department is not allowed"),
        "{error}"
    );
    let detail = host.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(detail["operations"][0]["status"], "failed");
    // The plan's later operations were recorded before the first was sent, and never sent.
    let later = &detail["operations"].as_array().expect("operations")[1..];
    assert!(!later.is_empty(), "{detail}");
    for op in later {
        assert_eq!(op["status"], "abandoned", "{op}");
        assert!(
            op["detail"].as_str().is_some_and(|d| d.starts_with("not sent")),
            "{op}"
        );
    }
    assert!(
        mock.with(|s| s.seen.iter().all(|r| !r.detail.starts_with("add-member"))),
        "nothing after the failed create reached the destination"
    );
    assert_eq!(detail["event_body"]["person"]["department"], "Sales");

    // Only IT may replay.
    let (status, _) = host
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{id}/replay"),
            AUDITOR_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(status, 403);
    mock.with(|s| s.reject = None);
    let (status, body) = host.post(&format!("/api/v1/jobs/{id}/replay"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    host.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(
        host.get(&format!("/api/v1/jobs/{id}")).await["job"]["state"],
        "completed"
    );
    assert_eq!(mock.with(|s| s.accounts.len()), 1);
    let audit = host.audit(Some("hr:7")).await;
    let replay = audit
        .iter()
        .find(|e| e["kind"] == "job.replayed")
        .expect("replay audited");
    assert_eq!(replay["actor"], "it-admin");
    let (status, body) = host.post(&format!("/api/v1/jobs/{id}/replay"), &json!({})).await;
    assert_eq!(status, 409, "a completed job is not replayed: {body}");

    // A dead letter can also be cancelled; it then no longer blocks that person's later events.
    mock.with(|s| s.reject = Some("still broken".into()));
    host.post_event(&joiner("8", "Sales"), "k8").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let dead = host.get("/api/v1/jobs?state=dead").await;
    let dead_id = dead[0]["id"].as_i64().unwrap();
    let (status, body) = host
        .post(&format!("/api/v1/jobs/{dead_id}/cancel"), &json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    let (status, _) = host
        .post(&format!("/api/v1/jobs/{dead_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 409);
    let cancelled = host
        .audit(Some("hr:8"))
        .await
        .into_iter()
        .find(|e| e["kind"] == "job.cancelled")
        .unwrap();
    assert_eq!(cancelled["actor"], "it-admin");
    mock.with(|s| s.reject = None);
    let mut update = joiner("8", "Sales");
    update["kind"] = json!("update");
    update["source_record_id"] = json!("update-8");
    host.post_event(&update, "k8-update").await;
    host.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(
        host.get("/api/v1/jobs?person=hr:8").await[0]["state"],
        "completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_persons_events_apply_in_order_under_concurrency() {
    // Every move counts against the mass-change guard; this test is about ordering.
    let host = sandbox_host(
        "[destinations.guard]\nmax_accounts = 1000\n",
        QueueConfig {
            concurrency: 8,
            ..fast_queue()
        },
    )
    .await;
    let departments = ["Engineering", "Sales", "Marketing", "Engineering", "Sales"];
    // 12 people, 5 events each: each round's events are posted concurrently.
    for (round, department) in departments.iter().enumerate() {
        let mut posts = tokio::task::JoinSet::new();
        for p in 0..12 {
            let mut e = joiner(&format!("{p}"), department);
            e["kind"] = json!(if round == 0 { "joiner" } else { "mover" });
            e["source_record_id"] = json!(format!("r{round}-p{p}"));
            let (client, url) = (host.client.clone(), format!("{}/api/v1/events", host.base));
            posts.spawn(async move {
                let resp = client
                    .post(url)
                    .bearer_auth(SOURCE_TOKEN)
                    .header("Idempotency-Key", format!("r{round}-p{p}"))
                    .json(&e)
                    .send()
                    .await
                    .expect("post");
                resp.status().as_u16()
            });
        }
        while let Some(status) = posts.join_next().await {
            assert_eq!(status.expect("task"), 202);
        }
    }
    host.wait_idle(Duration::from_secs(60)).await;
    let audit = host.audit(None).await;
    for p in 0..12 {
        let key = format!("hr:{p}");
        let done: Vec<String> = audit
            .iter()
            .filter(|e| e["person_key"] == key.as_str() && e["kind"] == "job.completed")
            .map(|e| e["job_id"].to_string())
            .collect();
        let received: Vec<String> = audit
            .iter()
            .filter(|e| e["person_key"] == key.as_str() && e["kind"] == "event.received")
            .map(|e| e["job_id"].to_string())
            .collect();
        assert_eq!(
            done, received,
            "{key}: completion order differs from arrival order"
        );
    }
    // The last event wins: everyone ends in Sales.
    let kv = host.store.kv();
    let ns = tenure_capabilities::KvNamespace {
        tenant: TENANT.into(),
        plugin: "sandbox".into(),
    };
    let accounts = kv.list_keys(&ns, "account/").await.unwrap();
    assert_eq!(accounts.len(), 12);
    for key in accounts {
        let raw = kv.get(&ns, &key).await.unwrap().unwrap();
        let acc: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(acc["container"], "OU=Sales", "{acc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_catches_an_edited_row() {
    let host = sandbox_host("", fast_queue()).await;
    host.post_event(&joiner("1", "Engineering"), "a").await;
    host.post_event(&joiner("2", "Sales"), "b").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let (status, report) = host
        .request(
            reqwest::Method::GET,
            "/api/v1/audit/verify",
            AUDITOR_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    // A tenant's auditor learns nothing about the log's size or head (other tenants' activity).
    assert!(
        report.get("entries").is_none() && report.get("head_hash").is_none(),
        "{report}"
    );

    // Someone with file access rewrites history (dropping the append-only trigger first).
    let conn = rusqlite::Connection::open(host.store.path()).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    let original_actor: String = conn
        .query_row("SELECT actor FROM audit WHERE seq = 3", [], |row| row.get(0))
        .unwrap();
    conn.execute("UPDATE audit SET actor = 'nobody' WHERE seq = 3", [])
        .unwrap();
    let (status, report) = host
        .request(
            reqwest::Method::GET,
            "/api/v1/audit/verify",
            AUDITOR_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(report["problem"]["seq"], 3, "{report}");
    assert!(report["problem"]["reason"].as_str().unwrap().contains("edited"));
    conn.execute("UPDATE audit SET actor = ?1 WHERE seq = 3", [&original_actor])
        .unwrap();

    // Another tenant's broken entry: this tenant's auditor is told the chain breaks, not where.
    let other = tenure_store::AuditRecord::new("other", tenure_store::AuditKind::AdminSecretSet, "op");
    host.store.append_audit(vec![other]).await.unwrap();
    conn.execute("UPDATE audit SET actor = 'forged' WHERE tenant = 'other'", [])
        .unwrap();
    let (status, report) = host
        .request(
            reqwest::Method::GET,
            "/api/v1/audit/verify",
            AUDITOR_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(status, 409, "{report}");
    assert!(report["problem"].get("seq").is_none(), "{report}");
    assert!(
        report["problem"]["reason"]
            .as_str()
            .unwrap()
            .contains("outside this tenant"),
        "{report}"
    );
    conn.execute("UPDATE audit SET actor = 'op' WHERE tenant = 'other'", [])
        .unwrap();

    // Removing the tail is caught too (the head is also kept outside the database).
    conn.execute_batch("DROP TRIGGER audit_no_delete").unwrap();
    let report = host.store.verify_audit().await.unwrap();
    let last = report.head_seq;
    conn.execute("DELETE FROM audit WHERE seq = ?1", [last]).unwrap();
    let report = host.store.verify_audit().await.unwrap();
    assert!(report.problem.is_some(), "truncation went unnoticed: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_writes_nothing() {
    let host = sandbox_host("", fast_queue()).await;
    host.post_event(&joiner("1", "Engineering"), "a").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let snapshot = |path: &std::path::Path| {
        let c = rusqlite::Connection::open(path).unwrap();
        let mut out = Vec::new();
        for table in [
            "events",
            "jobs",
            "operations",
            "links",
            "audit",
            "conflicts",
            "guards",
            "cursors",
        ] {
            let row: (i64, i64) = c
                .query_row(
                    &format!("SELECT count(*), coalesce(max(rowid), 0) FROM {table}"),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            out.push((table, row));
        }
        let links: String = c
            .query_row(
                "SELECT coalesce(group_concat(anchor || managed_groups || updated_ms), '') FROM links",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let kv: String = c
            .query_row(
                "SELECT coalesce(group_concat(key || hex(value)), '') FROM kv",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (out, links, kv)
    };
    let before = snapshot(host.store.path());
    let person = json!({"ids": [{"source": "hr", "id": "1"}], "department": "Sales",
        "emails": [{"value": "p1@example.test"}]});
    let (status, preview) = host
        .post(
            "/api/v1/preview",
            &json!({"kind": "mover", "source": "hr", "person": person}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let dest = &preview["destinations"][0];
    assert_eq!(dest["matched"], "linked");
    let ops: Vec<&str> = dest["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["update", "move", "add-member", "remove-member"], "{dest}");
    assert!(
        preview["trace"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["rule"] == "eng" && t["matched"] == false)
    );
    // A new person previews as a create.
    let (_, new) = host
        .post(
            "/api/v1/preview",
            &json!({"kind": "joiner", "source": "hr", "person": {"ids": [{"source": "hr", "id": "99"}],
            "emails": [{"value": "p99@example.test"}]}}),
        )
        .await;
    assert_eq!(new["destinations"][0]["matched"], "new");
    // By source record id.
    let (status, by_record) = host
        .post(
            "/api/v1/preview",
            &json!({"source": "hr", "source_record_id": "hire-1"}),
        )
        .await;
    assert_eq!(status, 200, "{by_record}");
    assert_eq!(by_record["destinations"][0]["note"], "in sync: nothing to do");
    assert_eq!(snapshot(host.store.path()), before, "preview changed the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_naming_the_field_and_nothing_is_stored() {
    let host = sandbox_host("", fast_queue()).await;
    let cases = [
        (json!({"kind": "joiner"}), "person"),
        (json!({"kind": "hired", "person": {"ids": []}}), "kind"),
        (
            json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": ""}]}}),
            "person.ids[0].id",
        ),
        (
            json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": "1"}],
                "start_date": "01/02/2026"}}),
            "person.start_date",
        ),
        (
            json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": "1"}],
                "custom": {"x": {"y": 1}}}}),
            "person.custom.x",
        ),
        (
            json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": "1"}]}, "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let (status, resp) = host.post_event(&body, "k").await;
        assert_eq!(status, 422, "{body} -> {resp}");
        assert_eq!(resp["error"]["field"], field, "{body} -> {resp}");
        assert!(!resp["error"]["reason"].as_str().unwrap().is_empty());
    }
    let resp = host
        .client
        .post(format!("{}/api/v1/events", host.base))
        .bearer_auth(SOURCE_TOKEN)
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let big = "x".repeat(2 * 1024 * 1024);
    let resp = host
        .client
        .post(format!("{}/api/v1/events", host.base))
        .bearer_auth(SOURCE_TOKEN)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // No idempotency key and no source record id: refused, because a retry could apply it twice.
    let mut e = joiner("5", "Sales");
    e.as_object_mut().unwrap().remove("source_record_id");
    let (status, resp) = host
        .request(
            reqwest::Method::POST,
            "/api/v1/events",
            SOURCE_TOKEN,
            Some(&e),
            None,
        )
        .await;
    assert_eq!(
        (status, resp["error"]["field"].as_str()),
        (422, Some("Idempotency-Key")),
        "{resp}"
    );
    let (status, _) = host
        .request(
            reqwest::Method::POST,
            "/api/v1/events",
            "wrong-token",
            Some(&e),
            Some("k"),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = host
        .request(
            reqwest::Method::POST,
            "/api/v1/preview",
            SOURCE_TOKEN,
            Some(&json!({})),
            None,
        )
        .await;
    assert_eq!(status, 403, "a source token may not preview");
    let (status, resp) = host
        .request(
            reqwest::Method::GET,
            "/api/v1/jobs?state=zombie",
            IT_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!((status, resp["error"]["field"].as_str()), (422, Some("state")));
    let c = rusqlite::Connection::open(host.store.path()).unwrap();
    for table in ["events", "jobs", "audit"] {
        let n: i64 = c
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table} has rows after bad input");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_policies_alert_merge_and_skip() {
    let unmanaged = |id: &str| MockAccount {
        anchor: format!("old-{id}"),
        attributes: [("employeeId".to_string(), json!(id))].into_iter().collect(),
        groups: vec!["Hand-Made".into()],
        enabled: true,
        container: Some("OU=Legacy".into()),
    };
    // alert: the job is held until a person decides; merge links and takes over.
    let mock = MockDestination::start().await;
    mock.with(|s| s.accounts.push(unmanaged("1")));
    let host = http_host(&mock, "conflict = \"alert\"\n").await;
    host.post_event(&joiner("1", "Engineering"), "a").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let held = host.get("/api/v1/jobs?state=held").await;
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    let conflicts = host.get("/api/v1/conflicts").await;
    assert_eq!(conflicts[0]["kind"], "unmanaged");
    assert_eq!(conflicts[0]["candidates"], json!(["old-1"]));
    let id = conflicts[0]["id"].as_i64().unwrap();
    let (status, body) = host
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &json!({"decision": "merge", "anchor": "nope"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = host
        .post(
            &format!("/api/v1/conflicts/{id}/resolve"),
            &json!({"decision": "merge", "anchor": "old-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    host.wait_idle(Duration::from_secs(30)).await;
    let accounts = mock.with(|s| s.accounts.clone());
    assert_eq!(accounts.len(), 1, "no second account");
    assert_eq!(accounts[0].container.as_deref(), Some("OU=Engineering"));
    assert_eq!(
        accounts[0].groups,
        ["Hand-Made", "Engineering"],
        "unmanaged groups are kept"
    );
    drop(host);

    // merge by policy: linked at once.
    let mock = MockDestination::start().await;
    mock.with(|s| s.accounts.push(unmanaged("2")));
    let host = http_host(&mock, "conflict = \"merge\"\n").await;
    host.post_event(&joiner("2", "Sales"), "b").await;
    host.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(host.get("/api/v1/jobs/1").await["job"]["state"], "completed");
    assert!(kinds(&host.audit(Some("hr:2")).await).contains(&"link.merged".to_string()));
    assert_eq!(
        mock.with(|s| s.accounts[0].groups.clone()),
        ["Hand-Made", "Sales"]
    );
    drop(host);

    // skip: left alone.
    let mock = MockDestination::start().await;
    mock.with(|s| s.accounts.push(unmanaged("3")));
    let host = http_host(&mock, "conflict = \"skip\"\n").await;
    host.post_event(&joiner("3", "Sales"), "c").await;
    host.wait_idle(Duration::from_secs(30)).await;
    assert!(kinds(&host.audit(Some("hr:3")).await).contains(&"destination.skipped".to_string()));
    assert_eq!(
        mock.with(|s| s.accounts[0].container.clone()).as_deref(),
        Some("OU=Legacy")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_change_guard_stops_and_waits_for_approval() {
    let host = sandbox_host(
        "[destinations.guard]\nmax_accounts = 3\nwindow_secs = 3600\n",
        fast_queue(),
    )
    .await;
    for i in 0..6 {
        host.post_event(&joiner(&i.to_string(), "Engineering"), &format!("j{i}"))
            .await;
    }
    host.wait_idle(Duration::from_secs(30)).await;
    for i in 0..6 {
        let mut leaver = joiner(&i.to_string(), "Engineering");
        leaver["kind"] = json!("leaver");
        leaver["source_record_id"] = json!(format!("leave-{i}"));
        leaver["person"]["status"] = json!("terminated");
        host.post_event(&leaver, &format!("l{i}")).await;
    }
    host.wait_idle(Duration::from_secs(30)).await;
    let completed_leavers = |jobs: &Value| {
        jobs.as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == "leaver" && j["state"] == "completed")
            .count()
    };
    let jobs = host.get("/api/v1/jobs?limit=100").await;
    assert_eq!(
        completed_leavers(&jobs),
        3,
        "three disables pass, the fourth trips the guard: {jobs}"
    );
    let guards = host.get("/api/v1/guards").await;
    assert_eq!(guards[0]["tripped"], true, "{guards}");
    assert!(kinds(&host.audit(None).await).contains(&"guard.tripped".to_string()));
    let (status, body) = host.post("/api/v1/guards/sandbox/approve", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["released_jobs"], 3);
    host.wait_idle(Duration::from_secs(30)).await;
    let jobs = host.get("/api/v1/jobs?limit=100").await;
    assert_eq!(completed_leavers(&jobs), 6, "{jobs}");
    let approved = host
        .audit(None)
        .await
        .into_iter()
        .find(|e| e["kind"] == "guard.approved")
        .unwrap();
    assert_eq!(approved["actor"], "it-admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_and_audits_but_applies_nothing() {
    let host = sandbox_host("dry_run = true\n", fast_queue()).await;
    host.post_event(&joiner("1", "Engineering"), "a").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let audit = host.audit(Some("hr:1")).await;
    let plan = audit
        .iter()
        .find(|e| e["kind"] == "plan.created")
        .expect("plan audited");
    assert_eq!(plan["data"]["dry_run"], true);
    assert_eq!(plan["data"]["operations"][0]["op"], "create");
    assert!(!kinds(&audit).contains(&"op.applied".to_string()));
    let ns = tenure_capabilities::KvNamespace {
        tenant: TENANT.into(),
        plugin: "sandbox".into(),
    };
    assert!(
        host.store
            .kv()
            .list_keys(&ns, "account/")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(host.store.managed_count(TENANT, "sandbox").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_exports_filter_by_person_and_destination() {
    let host = sandbox_host("", fast_queue()).await;
    host.post_event(&joiner("1", "Engineering"), "a").await;
    host.post_event(&joiner("2", "Sales"), "b").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let resp = host
        .client
        .get(format!("{}/api/v1/audit?person=hr:2&format=csv", host.base))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = resp.lines();
    assert_eq!(lines.next(), Some(tenure_store::audit::CSV_HEADER));
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.len() >= 4 && rows.iter().all(|r| r.contains(",hr:2,")),
        "{resp}"
    );
    let jsonl = host
        .client
        .get(format!(
            "{}/api/v1/audit?destination=sandbox&format=jsonl",
            host.base
        ))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in jsonl.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["destination"], "sandbox");
    }
    assert!(jsonl.lines().count() >= 6);
    let metrics = host
        .client
        .get(format!("{}/metrics", host.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tenure_queue_jobs{state=\"completed\",tenant=\"t\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tenure_kpi{kpi=\"errors_per_1000_events\",tenant=\"t\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_is_provisioned_before_their_report() {
    let host = sandbox_host(
        "",
        QueueConfig {
            concurrency: 8,
            ..fast_queue()
        },
    )
    .await;
    // The report's event arrives first, stored in one batch with the manager's (as a source poll does).
    let mut report = joiner("20", "Sales");
    report["person"]["manager"] = json!({"source": "hr", "id": "10"});
    let events = [report, joiner("10", "Sales")]
        .iter()
        .map(|e| {
            tenure_pipeline::parse_event(e.to_string().as_bytes())
                .expect("valid")
                .event
        })
        .collect();
    let (stored, rejected) = host
        .pipeline
        .ingest_from_source(TENANT, "hr", events, None)
        .await
        .unwrap();
    assert_eq!((stored.len(), rejected.len()), (2, 0));
    host.wait_idle(Duration::from_secs(30)).await;
    let audit = host.audit(None).await;
    let done = |person: &str| {
        audit
            .iter()
            .position(|e| e["kind"] == "job.completed" && e["person_key"] == person)
            .unwrap_or_else(|| panic!("{person} never completed"))
    };
    assert!(
        done("hr:10") < done("hr:20"),
        "the report was provisioned before the manager"
    );
    let report_job = host.get("/api/v1/jobs?person=hr:20").await;
    assert_eq!(report_job[0]["state"], "completed");
    assert_eq!(
        report_job[0]["attempts"], 1,
        "waiting for a manager is not a failed attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_arrives_after_a_newer_one_is_skipped() {
    let host = sandbox_host("", fast_queue()).await;
    let mut newer = joiner("1", "Sales");
    newer["occurred_at"] = json!("2026-03-02T10:00:00Z");
    newer["source_record_id"] = json!("newer");
    let mut older = joiner("1", "Engineering");
    older["kind"] = json!("update");
    older["occurred_at"] = json!("2026-03-02T11:00:00+02:00"); // 09:00 UTC: older
    older["source_record_id"] = json!("older");
    host.post_event(&newer, "newer").await;
    host.wait_idle(Duration::from_secs(30)).await;
    let (status, body) = host.post_event(&older, "older").await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(30)).await;
    let audit = host.audit(Some("hr:1")).await;
    let superseded = audit
        .iter()
        .find(|e| e["kind"] == "event.superseded")
        .expect("the late event is recorded");
    assert_eq!(superseded["data"]["newer_event"], 1);
    let ns = tenure_capabilities::KvNamespace {
        tenant: TENANT.into(),
        plugin: "sandbox".into(),
    };
    let raw = host.store.kv().get(&ns, "account/sbx-1").await.unwrap().unwrap();
    let account: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        account["container"], "OU=Sales",
        "the newer state stays: {account}"
    );
}

fn with_kind(mut event: Value, kind: &str, status: &str, record: &str) -> Value {
    event["kind"] = json!(kind);
    event["source_record_id"] = json!(record);
    event["person"]["status"] = json!(status);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leavers_account_is_deleted_after_the_grace_period_unless_they_return() {
    let host = sandbox_host("delete_after = \"3s\"\n", fast_queue()).await;
    for id in ["1", "2"] {
        let (status, body) = host
            .post_event(&joiner(id, "Engineering"), &format!("join-{id}"))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    host.wait_idle(Duration::from_secs(30)).await;
    for id in ["1", "2"] {
        let leaver = with_kind(
            joiner(id, "Engineering"),
            "leaver",
            "terminated",
            &format!("leave-{id}"),
        );
        host.post_event(&leaver, &format!("leave-{id}")).await;
    }
    host.wait_idle(Duration::from_secs(30)).await;
    let open = host.store.scheduled_actions(TENANT, true).await.unwrap();
    assert_eq!(open.len(), 2, "{open:?}");
    // Person 2 comes back within the grace period: their deletion is cancelled.
    let rehire = with_kind(joiner("2", "Engineering"), "rehire", "active", "rehire-2");
    host.post_event(&rehire, "rehire-2").await;
    host.wait_idle(Duration::from_secs(30)).await;
    assert_eq!(host.store.scheduled_actions(TENANT, true).await.unwrap().len(), 1);

    // The grace period runs out for person 1 only.
    let started = std::time::Instant::now();
    loop {
        host.wait_idle(Duration::from_secs(30)).await;
        if host
            .store
            .scheduled_actions(TENANT, true)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the deletion never ran"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host.wait_idle(Duration::from_secs(30)).await;
    let all = host.store.scheduled_actions(TENANT, false).await.unwrap();
    let state = |person: &str| all.iter().find(|a| a.person_key == person).map(|a| a.state);
    assert_eq!(state("hr:1"), Some(tenure_store::ActionState::Done));
    assert_eq!(state("hr:2"), Some(tenure_store::ActionState::Cancelled));
    assert!(
        host.store
            .link(TENANT, "sandbox", "hr:1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        host.store
            .link(TENANT, "sandbox", "hr:2")
            .await
            .unwrap()
            .is_some()
    );
    let sandbox = host.pipeline.runtime().plugin(TENANT, "sandbox").unwrap();
    let find = |id: &str| tenure_runtime::wit::MatchKey {
        attribute: "employeeId".into(),
        value: id.into(),
    };
    assert!(sandbox.lookup(&[find("1")]).await.unwrap().is_empty(), "deleted");
    let kept = sandbox.lookup(&[find("2")]).await.unwrap();
    assert!(
        kept.len() == 1 && kept[0].enabled,
        "rehired and enabled: {kept:?}"
    );
    let one = kinds(&host.audit(Some("hr:1")).await);
    for kind in ["deprovision.scheduled", "deprovision.deleted"] {
        assert!(one.contains(&kind.to_string()), "{one:?}");
    }
    let two = kinds(&host.audit(Some("hr:2")).await);
    assert!(two.contains(&"deprovision.cancelled".to_string()), "{two:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_key_value_quota_comes_from_its_grant_and_a_full_store_is_a_clear_dead_letter() {
    // Each sandbox account takes three keys (the account and its two match keys).
    let tenant = tenant_toml(&format!(
        "{}[plugins.sandbox]\nkv_max_keys = 6\n[plugins.sandbox.grants]\nkv = true\n",
        rule_grant("sandbox")
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\", \"mail\"]\n",
    );
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: fast_queue(),
        plugins: vec!["rules-basic", "sandbox"],
    })
    .await;
    for id in ["1", "2", "3"] {
        let (status, body) = host
            .post_event(&joiner(id, "Engineering"), &format!("k{id}"))
            .await;
        assert_eq!(status, 202, "{body}");
        host.wait_idle(Duration::from_secs(30)).await;
    }
    let done = host.get("/api/v1/jobs?state=completed").await;
    assert_eq!(done.as_array().unwrap().len(), 2, "two accounts fit: {done}");
    let dead = host.get("/api/v1/jobs?state=dead").await;
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    let error = dead[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("the store is full: 6 keys") && error.contains("kv_max_keys"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_stop_when_their_shutdown_sender_is_gone() {
    let host = sandbox_host("", fast_queue()).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(
        host.pipeline
            .clone()
            .run_workers(shutdown, Duration::from_secs(1)),
    );
    drop(stop);
    // Before, the loop took a closed channel for "something changed" and went on claiming
    // jobs without a pause, forever (a dropped test host kept a core busy).
    tokio::time::timeout(Duration::from_secs(30), workers)
        .await
        .expect("the workers stopped once no one could ask them to")
        .expect("the workers' task");
    host.stop().await;
}
