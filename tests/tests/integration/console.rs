//! The console (issue 22) as a person uses it: served from the assets embedded in the binary,
//! with a strict Content-Security-Policy; in headless Chromium (playwright-core), a person
//! signs in with a password, sees a supervised destination's held plan and approves it, and
//! finds the approval in the audit page; the rules, people, dashboard and plugins pages show
//! what the API gives them.

use reqwest::Method;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use tenure_store::prelude::*;
use tenure_store::{NewUser, Role};
use tenure_tests::host::{IT_TOKEN, TENANT, joiner, rules};

const PASSWORD: &str = "hana's long enough passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_to_the_console_and_approves_a_held_plan() {
    let h = super::supervision::host().await;
    let hana = NewUser {
        tenant: TENANT.into(),
        login: "hana".into(),
        display_name: "Hana Operator".into(),
        roles: vec![Role::HrAdmin, Role::Operator, Role::Auditor],
        password_hash: Some(tenure_server::passwords::hash_password(PASSWORD).expect("hash")),
    };
    h.store.create_user(hana, vec![]).await.expect("hana");
    // A rule-set version for the rules page (the same rules, saved through the API).
    let draft = json!({ "document": rules("sandbox"), "message": "the rules as configured" });
    let (status, body) = h
        .request(Method::POST, "/api/v1/rule-sets", IT_TOKEN, Some(&draft), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = h.post_event(&joiner("s9", "Sales"), "s9").await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(Duration::from_secs(30)).await;
    assert!(h.sandbox_account("s9").await.is_none(), "held, not applied");

    // The pages are the embedded build, under a policy that loads nothing from elsewhere.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(format!("{}/", h.base)).send().await.unwrap();
    assert_eq!(root.headers()["location"], "/console/");
    let page = client.get(format!("{}/console/", h.base)).send().await.unwrap();
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
    let asset = client.get(format!("{}{script}", h.base)).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let route = client
        .get(format!("{}/console/people", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        route.text().await.unwrap(),
        html,
        "the page's own routes are the page"
    );
    let missing = client
        .get(format!("{}/console/assets/none.js", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // In the browser.
    let dir = tenure_plugin_test::workspace_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed (run scripts/testbeds/browser.sh install)"
    );
    let base = h.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("console.mjs")
            .args([&base, TENANT, "hana", PASSWORD, "hr:s9"])
            .current_dir(dir)
            .output()
            .expect("node tests/browser/console.mjs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{seen:#}");
    assert!(
        seen["refused"]
            .as_str()
            .unwrap_or_default()
            .contains("password is wrong"),
        "{seen:#}"
    );
    assert!(
        seen["who"]
            .as_str()
            .unwrap_or_default()
            .contains("hana (hr-admin, operator, auditor)"),
        "{seen:#}"
    );
    let row = seen["heldRow"].as_str().unwrap_or_default();
    assert!(row.contains("sandbox") && row.contains("create"), "{seen:#}");
    assert_eq!(seen["status"], "Approved 1 plan(s)", "{seen:#}");
    let audit = seen["auditRow"].as_str().unwrap_or_default();
    assert!(
        audit.contains("plan.approved") && audit.contains("hana"),
        "{seen:#}"
    );
    assert!(
        seen["tests"].as_str().unwrap_or_default().starts_with("Tests:"),
        "{seen:#}"
    );
    assert!(seen["timeline"].as_u64().unwrap_or(0) > 3, "{seen:#}");
    assert!(
        seen["kpis"].as_str().unwrap_or_default().contains("Events"),
        "{seen:#}"
    );
    // The plugins page lists what the registry holds (this host registers its plugins
    // directly, so none).
    let listed = h.get("/api/v1/plugins").await["plugins"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(seen["plugins"].as_array().map(Vec::len), Some(listed), "{seen:#}");
    assert!(
        seen["connections"]
            .as_str()
            .unwrap_or_default()
            .contains("sandbox"),
        "{seen:#}"
    );
    assert_eq!(seen["consoleErrors"], serde_json::json!([]), "{seen:#}");

    // What the person approved was applied, under their name.
    h.wait_idle(Duration::from_secs(30)).await;
    assert!(h.sandbox_account("s9").await.is_some());
    let holds = h.get("/api/v1/holds?person=hr:s9").await;
    assert_eq!(holds[0]["state"], "applied", "{holds:#}");
    assert_eq!(holds[0]["decided_by"], "hana");
    assert_eq!(holds[0]["note"], "approved in the console");
    // The connection's health shows the change that went through.
    let connections = h.get("/api/v1/connections").await;
    assert_eq!(connections[0]["destination"], "sandbox");
    assert!(connections[0]["last_success_ms"].is_i64(), "{connections:#}");
    assert!(connections[0]["last_error"].is_null(), "{connections:#}");
}
