//! End to end through the pipeline with `examples/ad-scim` as the README documents
//! it: a signed Lever hire (the fake Lever API enriches it) -> rules -> an account
//! in a real Samba AD (right OU, groups, password set, enabled) and a user in a real
//! SCIM server (groups); a department change -> OU move and group swap in both; a
//! termination -> disabled in both and out of every group in one job, then deleted
//! in both once the grace period has passed.

use super::directory::admin_connection;
use ldap3::{Scope, SearchEntry};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_store::Store;
use tenure_tests::fake_lever::{self, HIRED_CONTACT, HIRED_OPPORTUNITY};
use tenure_tests::host::{HostSpec, TENANT, TestHost};
use tenure_tests::{example, testbeds};

const HIRED_TOKEN: &str = "e2e-hired-signature-token";
const OTHER_TOKEN: &str = "e2e-other-signature-token";

fn sign(key: &str, token: &str, at: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{token}{at}").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An admin connection to the domain, to set up and check with.
struct Ad {
    admin: ldap3::Ldap,
}

impl Ad {
    async fn entry(&mut self, filter: &str) -> Option<(String, HashMap<String, Vec<String>>)> {
        let (entries, _) = self
            .admin
            .search(
                "DC=example,DC=test",
                Scope::Subtree,
                filter,
                vec![
                    "userAccountControl",
                    "memberOf",
                    "pwdLastSet",
                    "department",
                    "sAMAccountName",
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
        entries.into_iter().map(SearchEntry::construct).next().map(|e| {
            let attrs = e.attrs.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
            (e.dn, attrs)
        })
    }
}

async fn scim_get(client: &reqwest::Client, url: &str, token: &str, path: &str) -> (u16, Value) {
    let resp = client
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn scim_groups_of(client: &reqwest::Client, url: &str, token: &str, id: &str) -> Vec<String> {
    let resp: Value = client
        .get(format!("{url}/Groups?filter=members.value%20eq%20%22{id}%22"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = resp["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|g| g["displayName"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Shane's canonical record as the HR feed would send it.
fn hr_event(kind: &str, record: &str, department: &str, status: &str) -> Value {
    json!({
        "kind": kind, "source": "lever", "source_record_id": record,
        "person": {
            "ids": [{"source": "lever", "id": HIRED_CONTACT}],
            "given_name": "Shane Q", "family_name": "Smith", "department": department, "status": status,
            "title": "Back End Software Engineer",
            "emails": [{"value": "shane@example.test", "primary": true}]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lever_hire_to_ad_and_scim_then_move_then_leave_then_delete() {
    let ad_env = testbeds::start("samba-ad.sh");
    let scim_env = testbeds::start("scim2-server.sh");
    let lever = fake_lever::start().await;
    let run = testbeds::run_id();
    let base = ad_env["TENURE_TEST_AD_BASE"].clone();
    let users = format!("OU=People-{run},{base}");
    let groups = format!("OU=Groups-{run},{base}");
    let mut ad = Ad {
        admin: admin_connection(
            &ad_env["TENURE_TEST_AD_URL"],
            &ad_env["TENURE_TEST_AD_CA"],
            &ad_env["TENURE_TEST_AD_BIND_DN"],
            &ad_env["TENURE_TEST_AD_PASSWORD"],
        )
        .await,
    };
    // A person from an earlier, interrupted run would be an unmanaged match: remove it.
    while let Some((dn, _)) = ad.entry(&format!("(employeeNumber={HIRED_CONTACT})")).await {
        ad.admin.delete(&dn).await.unwrap().success().unwrap();
    }
    let ou = HashSet::from(["organizationalUnit"]);
    for dn in [users.clone(), groups.clone()]
        .into_iter()
        .chain(["Engineering", "Sales", "Staff", "Leavers"].map(|o| format!("OU={o},{users}")))
    {
        ad.admin
            .add(&dn, vec![("objectClass", ou.clone())])
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    for g in ["Engineering", "Sales", "All-Staff", "Contractors"] {
        let sam = format!("{g}-{run}");
        ad.admin
            .add(
                &format!("CN={g},{groups}"),
                vec![
                    ("objectClass", HashSet::from(["group"])),
                    ("sAMAccountName", HashSet::from([sam.as_str()])),
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    let scim_url = format!("{}/e2e-{run}/v2", scim_env["TENURE_TEST_SCIM_BASE"]);
    let scim_token = scim_env["TENURE_TEST_SCIM_TOKEN"].clone();
    let http = reqwest::Client::new();
    for g in ["Engineering", "Sales", "All-Staff"] {
        let r = http
            .post(format!("{scim_url}/Groups"))
            .bearer_auth(&scim_token)
            .header("content-type", "application/scim+json")
            .body(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": g})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }

    let vars: HashMap<String, String> = [
        ("TENURE_IT_TOKEN", "unused-in-this-test-0123456789".to_string()),
        ("LEVER_API_URL", format!("http://{}/v1", lever.addr)),
        ("LEVER_API_KEY", fake_lever::API_KEY.to_string()),
        ("LEVER_HIRED_TOKEN", HIRED_TOKEN.to_string()),
        ("LEVER_WEBHOOK_TOKEN", OTHER_TOKEN.to_string()),
        ("TENURE_AD_URL", ad_env["TENURE_TEST_AD_URL"].clone()),
        ("TENURE_AD_BIND_DN", ad_env["TENURE_TEST_AD_BIND_DN"].clone()),
        ("TENURE_AD_PASSWORD", ad_env["TENURE_TEST_AD_PASSWORD"].clone()),
        ("TENURE_AD_CA_FILE", ad_env["TENURE_TEST_AD_CA"].clone()),
        ("TENURE_AD_BASE_DN", base.clone()),
        ("TENURE_AD_USERS", users.clone()),
        ("TENURE_AD_GROUPS", groups.clone()),
        ("TENURE_SCIM_URL", scim_url.clone()),
        ("TENURE_SCIM_TOKEN", scim_token.clone()),
        ("TENURE_DELETE_AFTER", "3s".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (tenant, pipeline) = example::load("ad-scim", "acme", &vars);
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            backoff_base_ms: 100,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "lever", "directory", "scim"],
    })
    .await;

    // 1. The signed hire.
    let at = now_ms();
    let token = format!("e2e-delivery-{run}");
    let delivery = json!({ "triggeredAt": at, "event": "candidateHired", "token": token,
        "signature": sign(HIRED_TOKEN, &token, at),
        "data": { "opportunityId": HIRED_OPPORTUNITY, "candidateId": HIRED_OPPORTUNITY, "contactId": "ignored" } });
    let resp = host
        .client
        .post(format!("{}/hooks/lever/lever", host.base))
        .header("content-type", "application/json")
        .body(delivery.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    host.wait_idle(Duration::from_secs(60)).await;
    let person = format!("lever:{HIRED_CONTACT}");
    let dead: Vec<Value> = host
        .audit(Some(&person))
        .await
        .into_iter()
        .filter(|e| e["kind"] == "op.failed")
        .collect();
    assert!(dead.is_empty(), "{dead:?}");

    let filter = format!("(employeeNumber={HIRED_CONTACT})");
    let (dn, attrs) = ad.entry(&filter).await.expect("an AD account for the hire");
    assert_eq!(dn, format!("CN=Shane Q Smith,OU=Engineering,{users}"));
    // Enabled, with a password (AD refuses 512 without one) that must be changed at first sign-in.
    assert_eq!(attrs["useraccountcontrol"], ["512"]);
    assert_eq!(attrs["pwdlastset"], ["0"]);
    assert_eq!(attrs["samaccountname"], ["shaneq.smith"]);
    assert_eq!(attrs["memberof"], [format!("CN=Engineering,{groups}")]);
    let (status, list) = scim_get(
        &http,
        &scim_url,
        &scim_token,
        "/Users?filter=userName%20eq%20%22shane%40example.test%22",
    )
    .await;
    assert_eq!(status, 200);
    let user = list["Resources"][0].clone();
    let id = user["id"].as_str().expect("a SCIM user for the hire").to_string();
    assert_eq!(user["externalId"], HIRED_CONTACT);
    assert_eq!(user["active"], true);
    assert_eq!(
        scim_groups_of(&http, &scim_url, &scim_token, &id).await,
        ["Engineering"]
    );

    // 2. A department change: OU move and group swap in both.
    let (status, body) = host
        .post_event(
            &hr_event("mover", "move-1", "Sales", "active"),
            &format!("move-{run}"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let (dn, attrs) = ad.entry(&filter).await.unwrap();
    assert_eq!(dn, format!("CN=Shane Q Smith,OU=Sales,{users}"));
    assert_eq!(attrs["memberof"], [format!("CN=Sales,{groups}")]);
    assert_eq!(attrs["department"], ["Sales"]);
    assert_eq!(attrs["samaccountname"], ["shaneq.smith"], "the name stays");
    assert_eq!(
        scim_groups_of(&http, &scim_url, &scim_token, &id).await,
        ["Sales"]
    );

    // 3. The termination: disabled in both and out of every group, in one job.
    let (status, body) = host
        .post_event(
            &hr_event("leaver", "leave-1", "Sales", "terminated"),
            &format!("leave-{run}"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let (dn, attrs) = ad.entry(&filter).await.expect("kept through the grace period");
    assert_eq!(dn, format!("CN=Shane Q Smith,OU=Leavers,{users}"));
    assert_eq!(attrs["useraccountcontrol"], ["514"]);
    assert!(!attrs.contains_key("memberof"), "{attrs:?}");
    let (_, user) = scim_get(&http, &scim_url, &scim_token, &format!("/Users/{id}")).await;
    assert_eq!(user["active"], false);
    assert!(
        scim_groups_of(&http, &scim_url, &scim_token, &id)
            .await
            .is_empty()
    );
    let audit = host.audit(Some(&person)).await;
    let leaver_job = audit
        .iter()
        .filter(|e| e["kind"] == "op.applied" && e["data"]["op"] == "disable")
        .map(|e| e["job_id"].clone())
        .collect::<Vec<_>>();
    assert_eq!(leaver_job.len(), 2, "disabled in both");
    assert_eq!(leaver_job[0], leaver_job[1], "in one job");

    // 4. The grace period passes: deleted in both.
    let started = std::time::Instant::now();
    while !host
        .store
        .scheduled_actions(TENANT, true)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the deletions never ran"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host.wait_idle(Duration::from_secs(60)).await;
    let done = host.store.scheduled_actions(TENANT, false).await.unwrap();
    assert_eq!(done.iter().filter(|a| a.state == "done").count(), 2, "{done:?}");
    let deletes: Vec<Value> = host
        .audit(Some(&person))
        .await
        .into_iter()
        .filter(|e| {
            e["data"]["op"] == "delete" || e["kind"].as_str().is_some_and(|k| k.starts_with("deprovision"))
        })
        .collect();
    assert!(ad.entry(&filter).await.is_none(), "deleted from AD: {deletes:#?}");
    let (status, _) = scim_get(&http, &scim_url, &scim_token, &format!("/Users/{id}")).await;
    assert_eq!(status, 404, "deleted from the SCIM app");
}
