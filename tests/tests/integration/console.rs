//! The console (issue 22) as people use it: served from the assets embedded in the binary, with a
//! strict Content-Security-Policy. In headless Chromium (playwright-core) an HR administrator
//! signs in, approves a supervised destination's held plan, reads what an observed one would have
//! done and the queue by state, replays a dead letter, finds the approval in the audit and
//! exports it, then edits the rules without code (a new rule through
//! the condition builder, an error shown where it is as it is typed, the draft previewed on a live
//! person with the rules' trace, the impact on everyone) and saves a draft; an IT administrator
//! publishes it (four eyes: never what they wrote themselves). Every page is screenshotted into
//! `docs/console/` at 1280 px and at phone width and checked by axe-core for serious violations
//! and for sideways scrolling.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_store::{NewUser, Role};
use tenure_tests::host::{
    HR_TOKEN, HostSpec, IT_TOKEN, TENANT, TestHost, joiner, pipeline_toml, tenant_toml,
};
use tenure_tests::mock_destination::MockDestination;

const HANA_PASSWORD: &str = "hana's long enough passphrase";
const IVAN_PASSWORD: &str = "ivan's long enough passphrase";

/// The first-party rules plugin's document: the sandbox directory and a CRM.
const RULES: &str = r#"# Who gets what (edited in the console's visual editor and as YAML alike)
destinations:
  sandbox:
    scope: person.status != "terminated"
    attributes:
      employeeId: { from: id, required: true }
      mail: { from: email }
      department: { from: department }
    rules:
      - name: eng
        when: person.department == "Engineering"
        then: { groups: [Engineering] }
    defaults: { groups: [All-Staff], container: OU=People }
  crm:
    attributes:
      employeeId: { from: id, required: true }
      mail: { from: email }
    defaults: { groups: [CRM-Users] }
tests:
  - name: engineer
    person: { ids: [{ source: hr, id: "t1" }], given_name: Ada, family_name: Byron, department: Engineering }
    expect: { sandbox: { groups: [Engineering], container: OU=People } }
"#;

async fn host(mock: &MockDestination) -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{RULES}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [plugins.sandbox.settings]\nmatch_attributes = \"employeeId,mail\"\n{}",
        mock.tenant_toml()
    ));
    let pipeline = pipeline_toml(
        r#"rules = "rules"
[rule_sets]
four_eyes = true
[[destinations]]
name = "sandbox"
connector = "sandbox"
matching = ["employeeId"]
mode = "supervised"
[[destinations.cohorts]]
scope = 'person.department == "Engineering"'
mode = "live"
[[destinations.cohorts]]
scope = 'person.department == "Finance"'
mode = "observe"
[[destinations]]
name = "crm"
connector = "http-dest"
"#,
    );
    // Through the plugin registry, as `tenure serve` loads plugins (the plugins page lists them).
    let spec = HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "sandbox", "http-dest"],
    };
    let trust = tenure_registry::TrustPolicy::default();
    TestHost::start_with_registry(spec, tempfile::tempdir().expect("dir"), trust).await
}

async fn person(h: &TestHost, login: &str, name: &str, roles: Vec<Role>, password: &str) {
    let user = NewUser {
        tenant: TENANT.into(),
        login: login.into(),
        display_name: name.into(),
        roles,
        password_hash: Some(tenure_server::passwords::hash_password(password).expect("hash")),
    };
    h.store.create_user(user, vec![]).await.expect("user");
}

/// The pages are the embedded build, under a policy that loads nothing from elsewhere.
async fn served_as_built(base: &str) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(root.headers()["location"], "/console/");
    let page = client.get(format!("{base}/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    let script = html
        .split('"')
        .find(|s| s.starts_with("/console/assets/main-"))
        .expect("the bundle's hashed name");
    let asset = client.get(format!("{base}{script}")).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    let cache = asset.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.contains("immutable"), "{cache}");
    let route = client.get(format!("{base}/console/people")).send().await.unwrap();
    assert_eq!(
        route.text().await.unwrap(),
        html,
        "the page's own routes are the page"
    );
    let missing = client
        .get(format!("{base}/console/assets/none.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

fn text(seen: &Value, key: &str) -> String {
    seen[key].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_run_tenure_from_the_console() {
    let mock = MockDestination::start().await;
    let h = host(&mock).await;
    person(
        &h,
        "hana",
        "Hana HR",
        vec![Role::HrAdmin, Role::Operator, Role::Auditor],
        HANA_PASSWORD,
    )
    .await;
    person(
        &h,
        "ivan",
        "Ivan IT",
        vec![Role::ItAdmin, Role::Operator, Role::Auditor],
        IVAN_PASSWORD,
    )
    .await;
    // Version 1, written by HR and (four eyes) published by IT.
    let draft = json!({ "document": RULES, "message": "the first rules" });
    let (status, body) = h
        .request(Method::POST, "/api/v1/rule-sets", HR_TOKEN, Some(&draft), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = h
        .request(Method::POST, "/api/v1/rule-sets/1/publish", IT_TOKEN, None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    // A salesperson: the sandbox holds their plan for approval (supervised); the CRM applies.
    let (status, body) = h.post_event(&joiner("s9", "Sales"), "s9").await;
    assert_eq!(status, 202, "{body}");
    // Finance is observed: its plan is audited, never applied.
    let (status, body) = h.post_event(&joiner("f1", "Finance"), "f1").await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
    assert!(h.sandbox_account("f1").await.is_none(), "observed, not applied");
    assert!(h.sandbox_account("s9").await.is_none(), "held, not applied");
    // An engineer while the CRM refuses everyone: a dead letter, replayed once it accepts again.
    mock.with(|s| s.reject = Some("the CRM is closed for maintenance".into()));
    let (status, body) = h.post_event(&joiner("e1", "Engineering"), "e1").await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
    let dead = h.get("/api/v1/jobs?state=dead").await;
    assert_eq!(dead.as_array().map(Vec::len), Some(1), "{dead:#}");
    mock.with(|s| s.reject = None);
    served_as_built(&h.base).await;

    let shots = tenure_plugin_test::workspace_root().join("docs/console");
    let setup = json!({
        "base": h.base, "tenant": TENANT, "held": "hr:s9", "heldName": "givens9", "record": "hire-s9",
        "dead": "hr:e1",
        "hr": { "login": "hana", "password": HANA_PASSWORD },
        "it": { "login": "ivan", "password": IVAN_PASSWORD },
        "screenshots": shots,
    });
    let seen = tenure_tests::browser::run("console.mjs", &[setup.to_string()]).await;

    // Signing in: a wrong password is refused with the API's reason.
    assert!(text(&seen, "refused").contains("password is wrong"), "{seen:#}");
    assert!(
        text(&seen, "who").contains("hana (hr-admin, operator, auditor)"),
        "{seen:#}"
    );
    // Operations: the held plan approved, the dead letter replayed.
    let row = text(&seen, "heldRow");
    assert!(row.contains("sandbox") && row.contains("create"), "{seen:#}");
    assert_eq!(seen["approved"], "Approved 1 plan(s)", "{seen:#}");
    assert!(text(&seen, "deadRow").contains("maintenance"), "{seen:#}");
    // What observe mode would have done, and the queue by state.
    let observed = text(&seen, "observedRow");
    assert!(
        observed.contains("hr:f1") && observed.contains("create"),
        "{seen:#}"
    );
    assert!(seen["completedJobs"].as_u64().unwrap_or(0) >= 2, "{seen:#}");
    assert!(text(&seen, "replayed").contains("eplayed"), "{seen:#}");
    // People: found by a part of the name (in any case), with an account in each destination.
    let found = text(&seen, "personFound");
    assert!(
        found.contains("Givens9 Test") && found.contains("ps9@example.test"),
        "{seen:#}"
    );
    let accounts = text(&seen, "personAccounts");
    assert!(
        accounts.contains("sandbox") && accounts.contains("crm"),
        "{seen:#}"
    );
    // Audit: found by kind and exported as CSV.
    let audit = text(&seen, "auditRow");
    assert!(
        audit.contains("plan.approved") && audit.contains("hana"),
        "{seen:#}"
    );
    let csv = text(&seen, "exported");
    assert!(
        csv.starts_with("seq,") && csv.contains("plan.approved"),
        "{seen:#}"
    );

    // Rules: the tests ran as the rule was built; a broken condition was named where it is.
    assert!(text(&seen, "testsWhileEditing").contains("1 passed"), "{seen:#}");
    let broken = text(&seen, "brokenCondition");
    assert!(
        broken.contains("destinations.sandbox.rules[sales].when") && broken.contains("line 1"),
        "{seen:#}"
    );
    // The YAML view is the same document, its comment kept.
    let yaml = text(&seen, "yaml");
    assert!(
        yaml.starts_with("# Who gets what")
            && yaml.contains("name: sales")
            && yaml.contains(r#"when: person.department == "Sales""#)
            && yaml.contains("container: OU=Sales"),
        "{yaml}"
    );
    // The draft previewed on the live salesperson: the new rule matched, with its reason.
    let trace = text(&seen, "traceRow");
    assert!(
        trace.contains("sales") && trace.contains("yes") && trace.contains("OU=Sales"),
        "{seen:#}"
    );
    assert_eq!(seen["saved"], "Saved as version 2", "{seen:#}");
    assert!(text(&seen, "impact").contains("moved 1"), "{seen:#}");
    // Four eyes: the HR administrator may not publish what she wrote; the IT administrator does.
    assert!(
        text(&seen, "ownDraftRefused").contains("four eyes: hana wrote version 2"),
        "{seen:#}"
    );
    assert_eq!(seen["published"], "Version 2 is published", "{seen:#}");

    // Reconciliation and the access review, run and read from the operations page.
    assert!(text(&seen, "reconciled").starts_with("Report "), "{seen:#}");
    let review = text(&seen, "accessReview");
    assert!(
        review.starts_with(tenure_pipeline::reconcile::ACCESS_CSV_HEADER.trim_end())
            && review.contains("hr:s9"),
        "{review}"
    );
    // A machine's token: shown once in the page, then revoked there; it no longer opens anything.
    let token = text(&seen, "tokenMade");
    assert!(token.len() >= 32, "{seen:#}");
    assert!(text(&seen, "tokenRevoked").contains("workday-feed"), "{seen:#}");
    let (status, _) = h
        .request(
            Method::POST,
            "/api/v1/events",
            &token,
            Some(&joiner("x1", "Sales")),
            None,
        )
        .await;
    assert_eq!(status, 401, "a revoked token is refused");
    let tokens = h.store.api_tokens(TENANT).await.expect("tokens");
    assert!(tokens.iter().all(|t| t.name != "workday-feed"), "{tokens:?}");

    // The dashboard draws the KPIs over time: the salesperson provisioned through `hr`, and the
    // CRM's refusals as errors per 1,000 events.
    let charts = seen["charts"].as_array().expect("charts");
    let drawn = |title: &str| charts.iter().any(|c| c["title"] == title && c["drawn"] == true);
    assert!(drawn("Time to provision (median), per source"), "{charts:?}");
    assert!(drawn("Errors per 1,000 events, per destination"), "{charts:?}");
    let (status, body) = h
        .request(
            Method::GET,
            "/api/v1/kpis/series?bucket=hour&since_ms=0",
            IT_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (422, &json!("since_ms")),
        "{body}"
    );
    let series = h.get("/api/v1/kpis/series?bucket=hour").await;
    let crm = series["destinations"].as_array().expect("destinations");
    assert!(
        crm.iter()
            .any(|p| p["destination"] == "crm" && p["failures"].as_i64() >= Some(1)),
        "{series:#}"
    );

    // The plugins page says what each plugin may reach.
    let grants = seen["grants"]
        .as_array()
        .expect("grants")
        .iter()
        .map(|g| g.to_string())
        .collect::<Vec<_>>();
    assert!(
        grants.iter().any(|g| g.contains("HTTP connection dest")),
        "{grants:?}"
    );
    assert!(
        grants.iter().any(|g| g.contains("its key-value store")),
        "{grants:?}"
    );

    // Every page at both widths: no serious accessibility violation, no sideways scrolling.
    let pages = seen["pages"].as_object().expect("pages");
    assert_eq!(pages.len(), 8, "the sign-in page and seven others: {seen:#}");
    for (name, page) in pages {
        assert_eq!(page["violations"], json!([]), "{name}: {page:#}");
        assert_eq!(
            page["phoneOverflow"], false,
            "{name} scrolls sideways at phone width"
        );
        assert!(
            shots.join(format!("{name}.png")).exists() && shots.join(format!("{name}-phone.png")).exists()
        );
    }
    assert_eq!(seen["consoleErrors"], json!([]), "{seen:#}");

    // What was decided in the console happened, under the names of who decided it.
    h.wait_idle(Duration::from_secs(30)).await;
    let holds = h.get("/api/v1/holds?person=hr:s9").await;
    assert_eq!(holds[0]["state"], "applied", "{holds:#}");
    assert_eq!(holds[0]["decided_by"], "hana");
    assert_eq!(
        mock.with(|s| s.accounts.len()),
        3,
        "the CRM has everyone after the replay"
    );
    let current = h.get("/api/v1/rule-sets").await;
    assert_eq!(current["current"]["version"], 2, "{current:#}");
    let published = h.get("/api/v1/rule-sets/2").await;
    assert_eq!(published["author"], "hana");
    let audit = h.audit(None).await;
    let publish = audit
        .iter()
        .find(|e| e["kind"] == "rules.published" && e["data"]["version"] == 2)
        .unwrap_or_else(|| panic!("the publish is audited: {audit:#?}"));
    assert_eq!(publish["actor"], "ivan", "{publish:#}");
    assert_eq!(seen["rolledBack"], "Version 1 is published", "{seen:#}");
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "rules.rolled-back" && e["actor"] == "ivan" && e["data"]["version"] == 1),
        "the rollback is audited"
    );
    let connections = h.get("/api/v1/connections").await;
    assert!(
        connections
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["destination"] == "sandbox")),
        "{connections:#}"
    );
}
