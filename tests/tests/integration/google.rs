//! The `google` connector against a stateful fake of Google's Directory API, behind Prism in
//! proxy mode with Google's published description of the API: every request the connector
//! sends and every answer the fake gives is checked against it. The host signs the service
//! account's delegated grant; the fake verifies the signature with the key's public half.

use super::scim::attrs;
use serde_json::json;
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_plugin_test::Harness;
use tenure_runtime::wit::{self, PluginError};
use tenure_tests::fake_google::{API, FakeGoogle};
use tenure_tests::host::{HostSpec, TestHost, joiner, pipeline_toml, tenant_toml};
use tenure_tests::prism::{self, Prism};
use tenure_tests::testbeds;

const RSA_KEY: &str = include_str!("../../../host/capabilities/testdata/rsa-test-key.pem");
const ADMIN: &str = "admin@example.test";

/// The fake, Prism in front of it, and the connector loaded against Prism.
struct Google {
    fake: FakeGoogle,
    prism: Prism,
    harness: Harness,
}

/// The fake with Prism in front of it, and the `google` connection pointing at Prism.
async fn cloud() -> (FakeGoogle, Prism, String) {
    let signer = tenure_capabilities::oauth::jwt::Signer::from_pem(RSA_KEY).expect("test key");
    let fake = FakeGoogle::start(signer.public_key()).await;
    let prism = Prism::proxy(prism::spec("google/admin.directory_v1.openapi.yaml"), &fake.url);
    let key_file = json!({
        "type": "service_account", "project_id": "tenure-test", "private_key_id": "k-1",
        "private_key": RSA_KEY, "client_email": "tenure@tenure-test.iam.gserviceaccount.com",
        "client_id": "42", "token_uri": format!("{}/token", fake.url),
    });
    let connection = format!(
        r#"
[connections.google]
kind = "http"
allow_private_network = true
url = "{}{API}"
auth = {{ type = "google-service-account", subject = "{ADMIN}", key = '''{key_file}''', scopes = [
  "https://www.googleapis.com/auth/admin.directory.user",
  "https://www.googleapis.com/auth/admin.directory.group.member",
] }}

[plugins.google.grants]
http = ["google"]
"#,
        prism.url
    );
    fake.org_unit("/Engineering/Platform");
    fake.org_unit("/Sales");
    fake.org_unit("/People");
    for group in ["eng@example.test", "all@example.test", "sales@example.test"] {
        fake.group(group);
    }
    (fake, prism, connection)
}

impl Google {
    async fn start() -> Google {
        let (fake, prism, connection) = cloud().await;
        let harness = Harness::new().expect("harness");
        harness
            .load("google")
            .expect("the google plugin (plugins/build.sh)");
        harness.tenant("acme", &connection).expect("tenant config");
        Google { fake, prism, harness }
    }

    async fn apply(&self, op: wit::Operation) -> Result<wit::Outcome, PluginError> {
        testbeds::apply(&self.harness, "acme", "google", op).await
    }

    async fn lookup(&self, attribute: &str, value: &str) -> Vec<wit::Account> {
        testbeds::lookup(&self.harness, "acme", "google", attribute, value)
            .await
            .unwrap_or_else(|e| panic!("lookup {attribute}={value}: {e:?}"))
    }
}

fn ada(container: &str, enabled: bool) -> wit::DesiredAccount {
    wit::DesiredAccount {
        destination: "google".into(),
        attributes: attrs(&[
            ("primaryEmail", "ada@example.test"),
            ("givenName", "Ada"),
            ("familyName", "Lovelace"),
            ("employeeId", "E-1001"),
            ("title", "Engineer"),
            ("department", "Engineering"),
            ("costCenter", "CC-7"),
            ("manager", "grace@example.test"),
            ("location", "Berlin"),
        ]),
        container: Some(container.into()),
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled,
        expires_at: None,
        tickets: vec![],
    }
}

fn value<'a>(account: &'a wit::Account, name: &str) -> Option<&'a str> {
    account
        .attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match &a.value {
            wit::Value::Text(t) => Some(t.as_str()),
            _ => None,
        })
}

/// Joiner, mover and leaver through the connector: insert (with a host-generated password the
/// plugin never sees), groups, a department move with arrays sent whole, suspension, deletion.
#[tokio::test]
async fn google_user_lifecycle_keeps_googles_contract() {
    let g = Google::start().await;
    let created = g
        .apply(wit::Operation::Create(ada("/Engineering/Platform", false)))
        .await
        .expect("create");
    let id = created.anchor.clone().expect("the user's id");
    let stored = g.fake.user_by_email("ada@example.test").expect("stored");
    assert_eq!(stored["id"], id.as_str());
    assert_eq!(stored["orgUnitPath"], "/Engineering/Platform");
    assert_eq!(stored["suspended"], true, "suspended until the start date");
    assert_eq!(stored["name"]["givenName"], "Ada");
    assert_eq!(
        stored["externalIds"],
        json!([{"type": "organization", "value": "E-1001"}])
    );
    assert_eq!(
        stored["relations"],
        json!([{"type": "manager", "value": "grace@example.test"}])
    );
    assert_eq!(stored["organizations"][0]["department"], "Engineering");
    assert_eq!(stored["organizations"][0]["primary"], true);
    assert!(stored.get("password").is_none());
    let password = g.fake.state().passwords["ada@example.test"].clone();
    assert!(password.len() >= 20, "the host generated the password");
    assert!(!format!("{created:?}").contains(&password));

    // The delegated grant: the service account acting as the admin, signed with its key.
    let claims = g.fake.state().assertions[0].clone();
    assert_eq!(claims["iss"], "tenure@tenure-test.iam.gserviceaccount.com");
    assert_eq!(claims["sub"], ADMIN);
    assert_eq!(claims["aud"], format!("{}/token", g.fake.url));
    assert!(
        claims["scope"]
            .as_str()
            .unwrap()
            .contains("admin.directory.group.member")
    );

    for group in ["eng@example.test", "all@example.test"] {
        g.apply(wit::Operation::AddMember(wit::MemberChange {
            anchor: id.clone(),
            group: group.into(),
        }))
        .await
        .expect("add member");
    }
    // Already a member: Google's 409 "Member already exists" is the state asked for.
    g.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: id.clone(),
        group: "eng@example.test".into(),
    }))
    .await
    .expect("a second add is success");
    g.apply(wit::Operation::Enable(id.clone())).await.expect("enable");

    let found = g.lookup("primaryEmail", "ada@example.test").await;
    assert_eq!(found.len(), 1);
    let a = &found[0];
    assert_eq!(a.anchor, id);
    assert!(a.enabled);
    assert_eq!(a.container.as_deref(), Some("/Engineering/Platform"));
    assert_eq!(a.groups, ["all@example.test", "eng@example.test"]);
    assert_eq!(value(a, "employeeId"), Some("E-1001"));
    assert_eq!(value(a, "title"), Some("Engineer"));
    assert_eq!(value(a, "location"), Some("Berlin"));
    assert_eq!(g.lookup("anchor", &id).await.len(), 1);

    // A mover: a new department and manager, another org unit, another group. An external id
    // someone else keeps on the user (a badge number) survives the whole-array update.
    {
        let mut s = g.fake.state();
        let user = s.users.get_mut(&id).unwrap();
        user["externalIds"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "custom", "customType": "badge", "value": "B-7"}));
    }
    g.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: attrs(&[("department", "Sales"), ("manager", "sam@example.test")]),
    }))
    .await
    .expect("update");
    g.apply(wit::Operation::Move(wit::MoveRequest {
        anchor: id.clone(),
        container: "/Sales".into(),
    }))
    .await
    .expect("move");
    g.apply(wit::Operation::RemoveMember(wit::MemberChange {
        anchor: id.clone(),
        group: "eng@example.test".into(),
    }))
    .await
    .expect("remove member");
    g.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: id.clone(),
        group: "sales@example.test".into(),
    }))
    .await
    .expect("add member");
    let stored = g.fake.user_by_email("ada@example.test").unwrap();
    assert_eq!(stored["orgUnitPath"], "/Sales");
    assert_eq!(stored["organizations"][0]["department"], "Sales");
    assert_eq!(
        stored["organizations"][0]["title"], "Engineer",
        "the rest of the entry stays"
    );
    assert_eq!(stored["relations"][0]["value"], "sam@example.test");
    assert_eq!(
        stored["externalIds"],
        json!([{"type": "organization", "value": "E-1001"},
               {"type": "custom", "customType": "badge", "value": "B-7"}])
    );
    assert_eq!(g.fake.groups_of(&id), ["all@example.test", "sales@example.test"]);
    // Not a member any more: removing again is success.
    g.apply(wit::Operation::RemoveMember(wit::MemberChange {
        anchor: id.clone(),
        group: "eng@example.test".into(),
    }))
    .await
    .expect("a second removal is success");

    // A leaver: suspended, then deleted after the grace period; deleting again is success.
    g.apply(wit::Operation::Disable(id.clone()))
        .await
        .expect("disable");
    assert_eq!(
        g.fake.user_by_email("ada@example.test").unwrap()["suspended"],
        true
    );
    assert!(!g.lookup("anchor", &id).await[0].enabled);
    g.apply(wit::Operation::Delete(id.clone())).await.expect("delete");
    assert!(g.fake.user_by_email("ada@example.test").is_none());
    g.apply(wit::Operation::Delete(id.clone()))
        .await
        .expect("a second delete is success");
    assert!(g.lookup("anchor", &id).await.is_empty());
    g.prism.assert_contract_kept("google");
}

/// Google's quirks: changes right after an insert, search that lags, a duplicate address,
/// throttling, a missing org unit, and an attribute Google does not keep.
#[tokio::test]
async fn google_quirks_map_to_the_right_retry_classes() {
    let g = Google::start().await;
    g.fake.set_creation_delay(Duration::from_secs(60));
    g.fake.set_search_lag(Duration::from_secs(3600));
    let id = g
        .apply(wit::Operation::Create(ada("/Sales", true)))
        .await
        .expect("create")
        .anchor
        .unwrap();
    // "User creation is not complete": worth retrying, not a conflict.
    let e = g
        .apply(wit::Operation::AddMember(wit::MemberChange {
            anchor: id.clone(),
            group: "sales@example.test".into(),
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Transient(m) if m.contains("not complete")),
        "{e:?}"
    );
    g.fake.set_creation_delay(Duration::ZERO);

    // Search lags behind the insert, the direct read does not: the primary email finds it.
    assert!(
        g.lookup("employeeId", "E-1001").await.is_empty(),
        "not indexed yet"
    );
    assert_eq!(g.lookup("primaryEmail", "ada@example.test").await[0].anchor, id);
    g.fake.set_search_lag(Duration::ZERO);
    assert_eq!(g.lookup("employeeId", "E-1001").await[0].anchor, id);

    // The same create again (a crash after Google kept it): adopted by its employee id.
    let again = g
        .apply(wit::Operation::Create(ada("/Sales", true)))
        .await
        .expect("adopt");
    assert_eq!(again.anchor.as_deref(), Some(id.as_str()));
    assert!(again.summary.contains("adopted"), "{}", again.summary);
    // Someone else's address: a conflict for a human, never adopted.
    let mut other = ada("/Sales", true);
    other.attributes = attrs(&[
        ("primaryEmail", "ada@example.test"),
        ("givenName", "Ada"),
        ("familyName", "Other"),
        ("employeeId", "E-2002"),
    ]);
    let e = g.apply(wit::Operation::Create(other)).await.unwrap_err();
    assert!(
        matches!(&e, PluginError::Conflict(m) if m.contains("E-1001")),
        "{e:?}"
    );

    // Throttling: Google's 403 userRateLimitExceeded and quotaExceeded are rate limits with
    // a growing backoff (Google sends no Retry-After); 403 for want of rights is not.
    g.fake.state().throttle.extend([
        (403, "userRateLimitExceeded", "User Rate Limit Exceeded"),
        (403, "quotaExceeded", "Quota exceeded for quota metric"),
        (403, "forbidden", "Not Authorized to access this resource/api"),
    ]);
    let first = g.apply(wit::Operation::Disable(id.clone())).await.unwrap_err();
    let second = g.apply(wit::Operation::Disable(id.clone())).await.unwrap_err();
    match (&first, &second) {
        (PluginError::RateLimited(a), PluginError::RateLimited(b)) => assert!(b > a, "{a} then {b}"),
        other => panic!("{other:?}"),
    }
    let denied = g.apply(wit::Operation::Disable(id.clone())).await.unwrap_err();
    assert!(matches!(denied, PluginError::Unauthorized(_)), "{denied:?}");
    g.apply(wit::Operation::Disable(id.clone()))
        .await
        .expect("then it goes through");

    // An org unit Google does not have, and an attribute it does not keep, name the field.
    let e = g
        .apply(wit::Operation::Move(wit::MoveRequest {
            anchor: id.clone(),
            container: "/Nowhere".into(),
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.field == "container"),
        "{e:?}"
    );
    let e = g
        .apply(wit::Operation::Update(wit::AttributeChange {
            anchor: id.clone(),
            changes: attrs(&[("shoeSize", "42")]),
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.field == "shoeSize"),
        "{e:?}"
    );
    g.prism.assert_contract_kept("google");

    // The check itself: an answer that breaks Google's description never reaches the plugin.
    g.fake.state().break_answers = true;
    let e = testbeds::lookup(&g.harness, "acme", "google", "anchor", &id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Transient(m) if m.contains("VIOLATIONS")),
        "{e:?}"
    );
    assert!(
        g.prism.errors().iter().any(|l| l.contains("VIOLATIONS")),
        "{:#?}",
        g.prism.lines()
    );
}

/// The rules for the end-to-end test: org units and groups by department, a leaver disabled.
const RULES: &str = "destination google
rule eng: department == \"Engineering\" => group:eng@example.test, ou:/Engineering/Platform
rule sales: department == \"Sales\" => group:sales@example.test, ou:/Sales
rule leaver: status == \"terminated\" => disable
default => ou:/People, group:all@example.test
set primaryEmail = \"{email}\"
set givenName = \"{given_name}\"
set familyName = \"{family_name}\"
set employeeId = \"{id}\"
set department = \"{department}\"
";

/// A hire through the whole pipeline becomes a Google user in the right org unit and groups;
/// a department change moves both; reconciliation reports a change made in Google behind
/// Tenure's back; a termination suspends the user and takes the groups away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_a_move_and_a_leaver_reach_google() {
    let (fake, prism, connection) = cloud().await;
    let tenant = tenant_toml(&format!(
        "{connection}\n[plugins.rules-basic]\nrule_set = '''\n{RULES}'''\n"
    ));
    let pipeline = pipeline_toml(concat!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"google\"\nconnector = \"google\"\n",
        "[[destinations.leaver_steps]]\nafter = \"0d\"\naction = \"remove-groups\"\n",
    ));
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            backoff_base_ms: 50,
            backoff_max_ms: 2_000,
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "google"],
    })
    .await;
    let (status, body) = host.post_event(&joiner("7", "Engineering"), "hire-7").await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let user = fake
        .user_by_email("p7@example.test")
        .expect("the hire reached Google");
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(user["orgUnitPath"], "/Engineering/Platform");
    assert_eq!(user["name"]["givenName"], "Given7");
    assert_eq!(user["externalIds"][0]["value"], "7");
    assert_eq!(user["suspended"], false);
    let mut groups = fake.groups_of(&id);
    groups.retain(|g| g != "all@example.test");
    assert_eq!(groups, ["eng@example.test"]);

    // A mover: Sales now.
    let mut mover = joiner("7", "Sales");
    mover["kind"] = json!("mover");
    mover["source_record_id"] = json!("move-7");
    host.post_event(&mover, "move-7").await;
    host.wait_idle(Duration::from_secs(60)).await;
    let user = fake.user_by_email("p7@example.test").unwrap();
    assert_eq!(user["orgUnitPath"], "/Sales");
    assert_eq!(user["organizations"][0]["department"], "Sales");
    let mut groups = fake.groups_of(&id);
    groups.retain(|g| g != "all@example.test");
    assert_eq!(groups, ["sales@example.test"]);

    // Someone moves the user in Google's console: reconciliation sees it.
    fake.state().users.get_mut(&id).unwrap()["orgUnitPath"] = json!("/People");
    let (status, report) = host.post("/api/v1/reconcile", &json!({ "dry_run": true })).await;
    assert_eq!(status, 200, "{report}");
    let drift = report["drift"].as_array().cloned().unwrap_or_default();
    assert!(
        drift.iter().any(|d| d["destination"] == "google"
            && d["kind"] == "container"
            && d["detail"] == "move /Sales"),
        "{report}"
    );

    // A leaver: suspended, then out of the groups by the leaver step.
    let mut leaver = joiner("7", "Sales");
    leaver["kind"] = json!("leaver");
    leaver["source_record_id"] = json!("leave-7");
    leaver["person"]["status"] = json!("terminated");
    host.post_event(&leaver, "leave-7").await;
    host.wait_idle(Duration::from_secs(60)).await;
    let user = fake.user_by_email("p7@example.test").unwrap();
    assert_eq!(user["suspended"], true, "{user}");
    // The step is a dated action of its own, due at once: the scheduler runs it.
    let waited = std::time::Instant::now();
    while !fake.groups_of(&id).is_empty() && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.wait_idle(Duration::from_secs(60)).await;
    assert!(fake.groups_of(&id).is_empty(), "{:?}", fake.groups_of(&id));
    assert_eq!(fake.user_by_email("p7@example.test").unwrap()["suspended"], true);
    prism.assert_contract_kept("google");
}
