//! Connector overhead: the `scim` plugin in the real host against a native
//! client sending the same requests, both against the same local SCIM server
//! (scim2-server, started by `scripts/testbeds/scim2-server.sh`), in one process.
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench connector_overhead`
//! (`BENCH_USERS`, default 150: users per round; `BENCH_ROUNDS`, default 4).
//!
//! One unit of work is a user's life: create, look up by userName (the user and
//! its groups), update two attributes by PATCH, disable, delete: five operations,
//! six requests. Rounds alternate plugin and native so drift hits both alike; the
//! result is operations per second for each and the plugin's overhead in percent.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tenure_plugin_test::Harness;
use tenure_runtime::wit;
use tenure_tests::testbeds;

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn desired(user: &str) -> wit::DesiredAccount {
    let text = |n: &str, v: &str| wit::Attribute {
        name: n.into(),
        value: wit::Value::Text(v.into()),
    };
    wit::DesiredAccount {
        destination: "app".into(),
        attributes: vec![
            text("userName", &format!("{user}@example.test")),
            text("externalId", user),
            text("name.givenName", "Bench"),
            text("name.familyName", user),
            text("email", &format!("{user}@example.test")),
            text("department", "Engineering"),
        ],
        container: None,
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled: true,
        expires_at: None,
        tickets: vec![],
    }
}

async fn plugin_round(h: &Harness, prefix: &str, users: usize) -> Duration {
    let scim = h.runtime().plugin("bench", "scim").expect("scim plugin");
    let started = Instant::now();
    for i in 0..users {
        let user = format!("{prefix}-{i}");
        let id = scim
            .apply(&wit::Operation::Create(desired(&user)))
            .await
            .expect("create")
            .anchor
            .expect("id");
        let found = scim
            .lookup(&[wit::MatchKey {
                attribute: "userName".into(),
                value: format!("{user}@example.test"),
            }])
            .await
            .expect("lookup");
        assert_eq!(found.len(), 1);
        let changes = vec![
            wit::Attribute {
                name: "department".into(),
                value: wit::Value::Text("Sales".into()),
            },
            wit::Attribute {
                name: "title".into(),
                value: wit::Value::Text("Engineer".into()),
            },
        ];
        scim.apply(&wit::Operation::Update(wit::AttributeChange {
            anchor: id.clone(),
            changes,
        }))
        .await
        .expect("update");
        scim.apply(&wit::Operation::Disable(id.clone()))
            .await
            .expect("disable");
        scim.apply(&wit::Operation::Delete(id)).await.expect("delete");
    }
    started.elapsed()
}

/// The same six requests per user, sent by reqwest.
async fn native_round(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    prefix: &str,
    users: usize,
) -> Duration {
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req
            .bearer_auth(token)
            .header("Accept", "application/scim+json")
            .send()
            .await
            .expect("request");
        assert!(resp.status().is_success(), "{}", resp.status());
        let body = resp.bytes().await.expect("body");
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).expect("json")
        }
    };
    let json_body = |v: Value| v.to_string();
    let started = Instant::now();
    for i in 0..users {
        let user = format!("{prefix}-{i}");
        let created = send(
            client
                .post(format!("{url}/Users"))
                .header("Content-Type", "application/scim+json")
                .body(json_body(json!({
                    "schemas": [CORE, ENTERPRISE], "userName": format!("{user}@example.test"),
                        "externalId": user,
                    "name": {"givenName": "Bench", "familyName": user},
                    "emails": [{"value": format!("{user}@example.test"), "type": "work", "primary": true}],
                    ENTERPRISE: {"department": "Engineering"}, "active": true
                }))),
        )
        .await;
        let id = created["id"].as_str().expect("id").to_string();
        let filter = format!("userName%20eq%20%22{user}%40example.test%22");
        let found = send(client.get(format!("{url}/Users?filter={filter}&startIndex=1&count=100"))).await;
        assert_eq!(found["totalResults"], 1);
        let groups = format!("members.value%20eq%20%22{id}%22");
        send(client.get(format!(
            "{url}/Groups?filter={groups}&attributes=displayName&startIndex=1&count=100"
        )))
        .await;
        let patch = |ops: Value| json_body(json!({"schemas": [PATCH], "Operations": ops}));
        send(
            client
                .patch(format!("{url}/Users/{id}"))
                .header("Content-Type", "application/scim+json")
                .body(patch(json!([
                    {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"},
                    {"op": "replace", "path": "title", "value": "Engineer"}
                ]))),
        )
        .await;
        send(
            client
                .patch(format!("{url}/Users/{id}"))
                .header("Content-Type", "application/scim+json")
                .body(patch(
                    json!([{"op": "replace", "path": "active", "value": false}]),
                )),
        )
        .await;
        send(client.delete(format!("{url}/Users/{id}"))).await;
    }
    started.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let users = env("BENCH_USERS", 150);
    let rounds = env("BENCH_ROUNDS", 4);
    let scim_env = testbeds::start("scim2-server.sh");
    let run = testbeds::run_id();
    let url = format!("{}/bench-{run}/v2", scim_env["TENURE_TEST_SCIM_BASE"]);
    let token = scim_env["TENURE_TEST_SCIM_TOKEN"].clone();
    let harness = Harness::new().expect("harness");
    harness.load("scim").expect("scim plugin (run plugins/build.sh)");
    harness
        .tenant(
            "bench",
            &format!(
                "[connections.scim]\nkind = \"http\"\nallow_private_network = true\n\
                 url = \"{url}\"\nauth = {{ type = \"bearer\", token = \
                    \"{token}\" }}\n\
                 [plugins.scim.grants]\nhttp = [\"scim\"]\n"
            ),
        )
        .expect("tenant");
    let client = reqwest::Client::new();
    // Warm-up: the plugin reads ServiceProviderConfig once; both sides open their first connections.
    plugin_round(&harness, "warm-p", 5).await;
    native_round(&client, &url, &token, "warm-n", 5).await;

    let (mut plugin, mut native) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        plugin += plugin_round(&harness, &format!("p{round}"), users).await;
        native += native_round(&client, &url, &token, &format!("n{round}"), users).await;
    }
    let ops = (users * rounds * 5) as f64;
    let plugin_ops = ops / plugin.as_secs_f64();
    let native_ops = ops / native.as_secs_f64();
    println!("connector overhead: scim plugin vs native reqwest, same requests, local scim2-server");
    println!("  users per round {users}, rounds {rounds}, operations per side {ops}");
    println!(
        "  plugin  {plugin_ops:>9.1} ops/s  ({:.3} ms/op)",
        1000.0 / plugin_ops
    );
    println!(
        "  native  {native_ops:>9.1} ops/s  ({:.3} ms/op)",
        1000.0 / native_ops
    );
    println!(
        "  overhead {:+.1}% (plugin time / native time = {:.3}; target <= 20%)",
        (plugin.as_secs_f64() / native.as_secs_f64() - 1.0) * 100.0,
        plugin.as_secs_f64() / native.as_secs_f64()
    );
}
