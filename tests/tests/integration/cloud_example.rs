//! End to end through the pipeline with `examples/cloud` as the docs give it: a signed Lever hire
//! (the fake Lever API enriches it) -> rules -> a user in Entra ID (licence and group), in Google
//! Workspace (org unit and group) and in Okta (group and app); a department change -> group,
//! org unit and app moves; a termination -> disabled everywhere in one job (Entra's sessions
//! revoked, Google suspended, Okta suspended) and out of every group and app, while Entra keeps
//! the licence until its leaver step. Each cloud API is a stateful fake behind Prism with the
//! vendor's description, so every request the three connectors send is checked.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_tests::example;
use tenure_tests::fake_google::{API, FakeGoogle};
use tenure_tests::fake_graph::FakeGraph;
use tenure_tests::fake_lever::{self, HIRED_CONTACT, HIRED_OPPORTUNITY};
use tenure_tests::fake_okta::FakeOkta;
use tenure_tests::host::{HostSpec, TestHost};
use tenure_tests::prism::{self, Prism};

const RSA_KEY: &str = include_str!("../../../host/capabilities/testdata/rsa-test-key.pem");
const HIRED_TOKEN: &str = "cloud-hired-signature-token";
const OTHER_TOKEN: &str = "cloud-other-signature-token";
const EMAIL: &str = "shane@example.test";

fn hr_event(kind: &str, record: &str, department: &str, status: &str) -> Value {
    json!({
        "kind": kind, "source": "lever", "source_record_id": record,
        "person": {
            "ids": [{"source": "lever", "id": HIRED_CONTACT}],
            "given_name": "Shane Q", "family_name": "Smith", "department": department, "status": status,
            "title": "Back End Software Engineer",
            "emails": [{"value": EMAIL, "primary": true}]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lever_hire_to_entra_google_and_okta_then_move_then_leave() {
    let signer = tenure_capabilities::oauth::jwt::Signer::from_pem(RSA_KEY).expect("test key");
    let lever = fake_lever::start().await;
    let graph = FakeGraph::start(signer.public_key(), "").await;
    let google = FakeGoogle::start(signer.public_key()).await;
    let okta = FakeOkta::start(signer.public_key()).await;
    let graph_prism = Prism::proxy(prism::graph_spec(), &graph.url);
    let google_prism = Prism::proxy(prism::spec("google/admin.directory_v1.openapi.yaml"), &google.url);
    let okta_prism = Prism::proxy(prism::okta_spec(), &okta.url);
    for g in ["Engineering", "Sales", "All-Staff"] {
        graph.group(g);
        okta.group(g);
    }
    for app in ["Slack", "Salesforce"] {
        okta.app(app);
    }
    for ou in ["/Engineering", "/Sales", "/Staff", "/Leavers"] {
        google.org_unit(ou);
    }
    for g in ["eng@example.test", "sales@example.test", "all@example.test"] {
        google.group(g);
    }
    let google_key = json!({
        "type": "service_account", "private_key_id": "k-1", "private_key": RSA_KEY,
        "client_email": "tenure@example-project.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", google.url),
    });
    let vars: HashMap<String, String> = [
        ("TENURE_IT_TOKEN", "unused-in-this-test-0123456789".to_string()),
        ("LEVER_API_URL", format!("http://{}/v1", lever.addr)),
        ("LEVER_API_KEY", fake_lever::API_KEY.to_string()),
        ("LEVER_HIRED_TOKEN", HIRED_TOKEN.to_string()),
        ("LEVER_WEBHOOK_TOKEN", OTHER_TOKEN.to_string()),
        ("GRAPH_URL", format!("{}/v1.0", graph_prism.url)),
        (
            "GRAPH_TOKEN_URL",
            format!("{}/contoso/oauth2/v2.0/token", graph.url),
        ),
        (
            "GRAPH_CLIENT_ID",
            "11111111-2222-3333-4444-555555555555".to_string(),
        ),
        (
            "GRAPH_THUMBPRINT",
            "3D1C2B7F0E9A8B6C5D4E3F2A1B0C9D8E7F6A5B4C".to_string(),
        ),
        ("secret:graph-key", RSA_KEY.to_string()),
        ("GOOGLE_URL", format!("{}{API}", google_prism.url)),
        ("GOOGLE_ADMIN", "admin@example.test".to_string()),
        ("secret:google-sa-key", google_key.to_string()),
        ("OKTA_URL", okta_prism.url.clone()),
        ("OKTA_TOKEN_URL", format!("{}/oauth2/v1/token", okta.url)),
        ("OKTA_CLIENT_ID", "0oaservice1234567".to_string()),
        ("OKTA_KEY_ID", "kid-1".to_string()),
        ("secret:okta-key", RSA_KEY.to_string()),
        ("TENURE_DELETE_AFTER", "30d".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (tenant, pipeline) = example::load("cloud", "acme", &vars);
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            backoff_base_ms: 100,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "lever", "entra", "google", "okta"],
    })
    .await;

    // 1. The signed hire (its start date has passed: enabled at once everywhere).
    let data = json!({ "opportunityId": HIRED_OPPORTUNITY, "candidateId": HIRED_OPPORTUNITY,
        "contactId": "ignored" });
    let delivery = fake_lever::delivery(
        "candidateHired",
        HIRED_TOKEN,
        "cloud-delivery-1",
        fake_lever::now_ms(),
        data,
    );
    let (status, body) = host.post_lever_delivery(&delivery).await;
    assert_eq!(status, 200, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let person = format!("lever:{HIRED_CONTACT}");
    let failed: Vec<Value> = host
        .audit(Some(&person))
        .await
        .into_iter()
        .filter(|e| e["kind"] == "op.failed")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");

    let Some(entra_user) = graph.user(EMAIL) else {
        panic!("no Entra user: {}", host.get("/api/v1/jobs?limit=5").await);
    };
    assert_eq!(entra_user.properties["accountEnabled"], true);
    assert_eq!(entra_user.properties["employeeId"], HIRED_CONTACT);
    assert_eq!(entra_user.properties["mailNickname"], "shaneq.smith");
    assert_eq!(graph.groups_of(&entra_user.id), ["Engineering"]);
    assert_eq!(graph.licenses_of(&entra_user.id), ["ENTERPRISEPACK"]);
    let google_user = google.user_by_email(EMAIL).expect("a Google user");
    let google_id = google_user["id"].as_str().unwrap().to_string();
    assert_eq!(google_user["orgUnitPath"], "/Engineering");
    assert_eq!(google_user["suspended"], false);
    assert_eq!(google.groups_of(&google_id), ["eng@example.test"]);
    let okta_user = okta.user_by_login(EMAIL).expect("an Okta user");
    assert_eq!(okta_user.status, "ACTIVE");
    assert_eq!(okta.groups_of(&okta_user.id), ["Engineering"]);
    assert_eq!(okta.apps_of(&okta_user.id), ["Slack"]);

    // 2. A department change: groups, the org unit and apps move.
    let (status, body) = host
        .post_event(&hr_event("mover", "move-1", "Sales", "active"), "move-1")
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    assert_eq!(graph.groups_of(&entra_user.id), ["Sales"]);
    assert_eq!(google.user_by_email(EMAIL).unwrap()["orgUnitPath"], "/Sales");
    assert_eq!(google.groups_of(&google_id), ["sales@example.test"]);
    assert_eq!(okta.groups_of(&okta_user.id), ["Sales"]);
    assert_eq!(okta.apps_of(&okta_user.id), ["Salesforce", "Slack"]);

    // 3. The termination: disabled everywhere and out of every group and app in one job.
    let leaver = hr_event("leaver", "leave-1", "Sales", "terminated");
    let (status, body) = host.post_event(&leaver, "leave-1").await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let entra_user = graph.user(EMAIL).unwrap();
    assert_eq!(entra_user.properties["accountEnabled"], false);
    assert!(entra_user.sessions_revoked >= 1, "sessions revoked");
    assert!(graph.groups_of(&entra_user.id).is_empty());
    assert_eq!(
        graph.licenses_of(&entra_user.id),
        ["ENTERPRISEPACK"],
        "kept until the leaver step 14 days on"
    );
    let google_user = google.user_by_email(EMAIL).unwrap();
    assert_eq!(google_user["suspended"], true);
    assert_eq!(google_user["orgUnitPath"], "/Leavers");
    assert!(google.groups_of(&google_id).is_empty());
    assert_eq!(okta.user_by_login(EMAIL).unwrap().status, "SUSPENDED");
    assert!(okta.groups_of(&okta_user.id).is_empty());
    assert!(okta.apps_of(&okta_user.id).is_empty());

    for (name, p) in [
        ("graph", &graph_prism),
        ("google", &google_prism),
        ("okta", &okta_prism),
    ] {
        p.assert_contract_kept(name);
    }
}
