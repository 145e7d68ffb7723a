//! The `entra` connector against a stateful fake of Microsoft Graph, behind Prism in proxy mode
//! with Graph's published description cut to the connector's operations (every request and
//! answer checked). The host authenticates as an app with a certificate (`private_key_jwt`
//! with `x5t`); the fake verifies each client assertion's signature with the key's public half.

use super::scim::attrs;
use serde_json::json;
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_plugin_test::Harness;
use tenure_runtime::wit::{self, PluginError};
use tenure_tests::fake_graph::FakeGraph;
use tenure_tests::host::{HostSpec, TestHost, joiner, pipeline_toml, tenant_toml};
use tenure_tests::prism::{self, Prism};
use tenure_tests::testbeds;

const RSA_KEY: &str = include_str!("../../../host/capabilities/testdata/rsa-test-key.pem");
const APP: &str = "11111111-2222-3333-4444-555555555555";
const DIRECTORY: &str = "contoso.onmicrosoft.com";

/// The fake with Prism in front of it, and the `graph` connection pointing at Prism.
async fn cloud() -> (FakeGraph, Prism, String) {
    let signer = tenure_capabilities::oauth::jwt::Signer::from_pem(RSA_KEY).expect("test key");
    let fake = FakeGraph::start(signer.public_key(), "").await;
    let prism = Prism::proxy(prism::graph_spec(), &fake.url);
    let key = RSA_KEY.replace('\n', "\\n");
    let connection = format!(
        r#"
[connections.graph]
kind = "http"
allow_private_network = true
url = "{}/v1.0"
auth = {{ type = "oauth2-jwt", token_url = "{}/{DIRECTORY}/oauth2/v2.0/token", client_id = "{APP}",
  scopes = ["https://graph.microsoft.com/.default"], private_key = "{key}",
  certificate_thumbprint = "3D1C2B7F0E9A8B6C5D4E3F2A1B0C9D8E7F6A5B4C" }}

[plugins.entra.grants]
http = ["graph"]
"#,
        prism.url, fake.url
    );
    for group in ["Engineering", "Sales", "All-Staff"] {
        fake.group(group);
    }
    (fake, prism, connection)
}

struct Entra {
    fake: FakeGraph,
    prism: Prism,
    harness: Harness,
}

impl Entra {
    async fn start() -> Entra {
        let (fake, prism, connection) = cloud().await;
        let harness = Harness::new().expect("harness");
        harness
            .load("entra")
            .expect("the entra plugin (plugins/build.sh)");
        harness.tenant("acme", &connection).expect("tenant config");
        Entra { fake, prism, harness }
    }

    async fn apply(&self, op: wit::Operation) -> Result<wit::Outcome, PluginError> {
        testbeds::apply(&self.harness, "acme", "entra", op).await
    }

    async fn lookup(&self, attribute: &str, value: &str) -> Vec<wit::Account> {
        testbeds::lookup(&self.harness, "acme", "entra", attribute, value)
            .await
            .unwrap_or_else(|e| panic!("lookup {attribute}={value}: {e:?}"))
    }
}

fn person(upn: &str, employee: &str, manager: Option<&str>) -> wit::DesiredAccount {
    let nickname = upn.split('@').next().unwrap_or(upn);
    let mut pairs = vec![
        ("userPrincipalName", upn),
        ("displayName", "Ada Lovelace"),
        ("mailNickname", nickname),
        ("givenName", "Ada"),
        ("surname", "Lovelace"),
        ("employeeId", employee),
        ("employeeType", "Employee"),
        ("employeeHireDate", "2026-03-10"),
        ("department", "Engineering"),
        ("jobTitle", "Engineer"),
        ("usageLocation", "DE"),
    ];
    if let Some(m) = manager {
        pairs.push(("manager", m));
    }
    wit::DesiredAccount {
        destination: "entra".into(),
        attributes: attrs(&pairs),
        container: None,
        groups: vec![],
        licenses: vec!["ENTERPRISEPACK".into()],
        app_assignments: vec![],
        enabled: false,
        expires_at: None,
        tickets: vec![],
    }
}

fn member(anchor: &str, group: &str) -> wit::MemberChange {
    wit::MemberChange {
        anchor: anchor.into(),
        group: group.into(),
    }
}

/// Created disabled with a licence and a manager, grouped, enabled, moved, disabled with its
/// sessions revoked, soft-deleted: within Graph's contract, authenticated with a certificate.
#[tokio::test]
async fn entra_user_lifecycle_keeps_graphs_contract() {
    let e = Entra::start().await;
    let boss = e
        .apply(wit::Operation::Create(wit::DesiredAccount {
            licenses: vec![],
            ..person("grace@contoso.test", "E-1", None)
        }))
        .await
        .expect("the manager")
        .anchor
        .unwrap();
    let created = e
        .apply(wit::Operation::Create(person(
            "ada@contoso.test",
            "E-1001",
            Some("grace@contoso.test"),
        )))
        .await
        .expect("create");
    let id = created.anchor.clone().expect("the object id");
    let user = e.fake.user("ada@contoso.test").expect("stored");
    assert_eq!(user.id, id);
    assert_eq!(
        user.properties["accountEnabled"], false,
        "disabled until the start date"
    );
    assert_eq!(user.properties["employeeHireDate"], "2026-03-10T00:00:00Z");
    assert_eq!(user.properties["usageLocation"], "DE");
    assert_eq!(user.manager.as_deref(), Some(boss.as_str()));
    assert_eq!(e.fake.licenses_of(&id), ["ENTERPRISEPACK"]);
    assert!(user.password.len() >= 20, "the host generated the password");
    assert!(!format!("{created:?}").contains(&user.password));
    // The app's certificate assertion: iss = sub = the app, audience the token endpoint.
    let claims = e.fake.state().assertions[0].clone();
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some(APP), Some(APP))
    );
    assert_eq!(
        claims["aud"],
        format!("{}/{DIRECTORY}/oauth2/v2.0/token", e.fake.url)
    );

    e.apply(wit::Operation::AddMember(member(&id, "Engineering")))
        .await
        .expect("add");
    e.apply(wit::Operation::AddMember(member(&id, "Engineering")))
        .await
        .expect("already a member");
    e.apply(wit::Operation::Enable(id.clone())).await.expect("enable");
    let before = e.fake.state().requests.len();
    let found = e.lookup("userPrincipalName", "ada@contoso.test").await;
    assert_eq!(found.len(), 1);
    // Two round trips: the user, then its manager, groups and licences in one JSON batch.
    let sent: Vec<String> = e.fake.state().requests[before..].to_vec();
    let outer: Vec<&String> = sent
        .iter()
        .filter(|r| r.starts_with("GET /users/ada") || *r == "POST /$batch")
        .collect();
    assert_eq!(outer.len(), 2, "{sent:?}");
    assert!(sent.contains(&"POST /$batch".to_string()), "{sent:?}");
    let a = &found[0];
    assert!(a.enabled);
    assert_eq!(a.groups, ["Engineering"]);
    assert_eq!(a.licenses, ["ENTERPRISEPACK"]);
    let value = |name: &str| {
        a.attributes
            .iter()
            .find(|x| x.name == name)
            .map(|x| match &x.value {
                wit::Value::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
    };
    assert_eq!(value("manager").as_deref(), Some("grace@contoso.test"));
    assert_eq!(
        value("employeeHireDate").as_deref(),
        Some("2026-03-10"),
        "read back as the rules give it"
    );
    assert_eq!(e.lookup("employeeId", "E-1001").await[0].anchor, id);
    assert_eq!(e.lookup("anchor", &id).await[0].anchor, id);

    // A mover: new department, another group, another licence, no manager.
    e.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: vec![
            attrs(&[("department", "Sales")]).remove(0),
            wit::Attribute {
                name: "jobTitle".into(),
                value: wit::Value::Absent,
            },
            wit::Attribute {
                name: "manager".into(),
                value: wit::Value::Absent,
            },
            wit::Attribute {
                name: "licenses".into(),
                value: wit::Value::Many(vec!["DESKLESSPACK".into()]),
            },
        ],
    }))
    .await
    .expect("update");
    e.apply(wit::Operation::RemoveMember(member(&id, "Engineering")))
        .await
        .expect("remove");
    e.apply(wit::Operation::RemoveMember(member(&id, "Engineering")))
        .await
        .expect("not a member");
    e.apply(wit::Operation::AddMember(member(&id, "Sales")))
        .await
        .expect("add");
    let user = e.fake.user("ada@contoso.test").unwrap();
    assert_eq!(user.properties["department"], "Sales");
    assert!(!user.properties.contains_key("jobTitle"));
    assert_eq!(user.manager, None);
    assert_eq!(e.fake.licenses_of(&id), ["DESKLESSPACK"]);
    assert_eq!(e.fake.groups_of(&id), ["Sales"]);

    // A leaver: disabled and every session revoked at once; deleted (soft) later.
    e.apply(wit::Operation::Disable(id.clone()))
        .await
        .expect("disable");
    let user = e.fake.user("ada@contoso.test").unwrap();
    assert_eq!(user.properties["accountEnabled"], false);
    assert_eq!(user.sessions_revoked, 1);
    e.apply(wit::Operation::Delete(id.clone())).await.expect("delete");
    assert!(e.fake.user("ada@contoso.test").is_none());
    assert!(e.fake.state().deleted.contains_key(&id), "restorable");
    e.apply(wit::Operation::Delete(id.clone())).await.expect("again");
    assert!(e.lookup("anchor", &id).await.is_empty());
    e.prism.assert_contract_kept("graph");

    // The check itself: an answer that breaks Graph's description never reaches the plugin.
    e.fake.state().break_answers = true;
    let err = testbeds::lookup(&e.harness, "acme", "entra", "anchor", &boss)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Transient(m) if m.contains("VIOLATIONS")),
        "{err:?}"
    );
}

/// Replication lag, a taken principal name, throttling with Retry-After, a licence without a
/// usage location, and an attribute Graph does not have.
#[tokio::test]
async fn entra_quirks_map_to_the_right_retry_classes() {
    let e = Entra::start().await;
    e.fake.set_replication_lag(Duration::from_secs(60));
    let first = e
        .apply(wit::Operation::Create(person("ada@contoso.test", "E-1001", None)))
        .await
        .unwrap_err();
    // The user was made; the licence call after it met the lag: retried, not "not found".
    assert!(
        matches!(&first, PluginError::Transient(m) if m.contains("not replicated")),
        "{first:?}"
    );
    e.fake.set_replication_lag(Duration::ZERO);
    // The retry finds the user Graph kept and adopts it by its employee id.
    let again = e
        .apply(wit::Operation::Create(person("ada@contoso.test", "E-1001", None)))
        .await
        .expect("adopted");
    assert!(again.summary.contains("adopted"), "{}", again.summary);
    let id = again.anchor.unwrap();
    let other = e
        .apply(wit::Operation::Create(person("ada@contoso.test", "E-2002", None)))
        .await
        .unwrap_err();
    assert!(
        matches!(&other, PluginError::Conflict(m) if m.contains("E-1001")),
        "{other:?}"
    );

    // 429 and 503 with Retry-After: the job waits as rate-limited.
    e.fake.state().throttle.extend([(429, 1), (503, 2)]);
    for wait in [1000, 2000] {
        let err = e.apply(wit::Operation::Enable(id.clone())).await.unwrap_err();
        assert!(
            matches!(err, PluginError::RateLimited(ms) if ms >= wait / 2),
            "{err:?}"
        );
    }
    e.apply(wit::Operation::Enable(id.clone()))
        .await
        .expect("then it goes through");

    let mut nowhere = person("bob@contoso.test", "E-3", None);
    nowhere.attributes.retain(|a| a.name != "usageLocation");
    let err = e.apply(wit::Operation::Create(nowhere)).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::InvalidInput(i) if i.field == "usageLocation"),
        "{err:?}"
    );
    let err = e
        .apply(wit::Operation::Update(wit::AttributeChange {
            anchor: id.clone(),
            changes: attrs(&[("shoeSize", "42")]),
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::InvalidInput(i) if i.field == "shoeSize"),
        "{err:?}"
    );
    e.prism.assert_contract_kept("graph");
}

const RULES: &str = "destination entra
rule eng: department == \"Engineering\" => group:Engineering, license:ENTERPRISEPACK
rule sales: department == \"Sales\" => group:Sales, license:DESKLESSPACK
rule leaver: status == \"terminated\" => disable
default => group:All-Staff
set userPrincipalName = \"{email}\"
set mailNickname = \"p{id}\"
set displayName = \"{given_name} {family_name}\"
set givenName = \"{given_name}\"
set surname = \"{family_name}\"
set employeeId = \"{id}\"
set department = \"{department}\"
set usageLocation = \"DE\"
";

/// A Lever-style hire through the pipeline becomes an Entra user with its licence and group; a
/// move changes both; reconciliation reports a licence taken away behind Tenure's back; a
/// termination disables the user (sessions revoked), then the leaver steps take groups and
/// licences away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_a_move_and_a_leaver_reach_entra() {
    let (fake, prism, connection) = cloud().await;
    let tenant = tenant_toml(&format!(
        "{connection}\n[plugins.rules-basic]\nrule_set = '''\n{RULES}'''\n"
    ));
    let pipeline = pipeline_toml(concat!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"entra\"\nconnector = \"entra\"\n",
        "matching = [\"employeeId\", \"userPrincipalName\"]\n",
        "[[destinations.leaver_steps]]\nafter = \"0d\"\naction = \"remove-groups\"\n",
        "[[destinations.leaver_steps]]\nafter = \"0d\"\naction = \"remove-licenses\"\n",
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
        plugins: vec!["rules-basic", "entra"],
    })
    .await;
    let (status, body) = host.post_event(&joiner("7", "Engineering"), "hire-7").await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let Some(user) = fake.user("p7@example.test") else {
        panic!(
            "the hire did not reach Entra: {}",
            host.get("/api/v1/jobs?limit=5").await
        );
    };
    assert_eq!(user.properties["accountEnabled"], true);
    assert_eq!(user.properties["displayName"], "Given7 Test");
    assert_eq!(fake.groups_of(&user.id), ["Engineering"]);
    assert_eq!(fake.licenses_of(&user.id), ["ENTERPRISEPACK"]);

    let mut mover = joiner("7", "Sales");
    mover["kind"] = json!("mover");
    mover["source_record_id"] = json!("move-7");
    host.post_event(&mover, "move-7").await;
    host.wait_idle(Duration::from_secs(60)).await;
    assert_eq!(fake.groups_of(&user.id), ["Sales"]);
    assert_eq!(fake.licenses_of(&user.id), ["DESKLESSPACK"]);
    assert_eq!(
        fake.user("p7@example.test").unwrap().properties["department"],
        "Sales"
    );

    // Someone takes the licence away in the portal: reconciliation sees it.
    fake.state().users.get_mut(&user.id).unwrap().licenses.clear();
    let (status, report) = host.post("/api/v1/reconcile", &json!({ "dry_run": true })).await;
    assert_eq!(status, 200, "{report}");
    let drift = report["drift"].as_array().cloned().unwrap_or_default();
    assert!(
        drift
            .iter()
            .any(|d| d["destination"] == "entra" && d.to_string().contains("DESKLESSPACK")),
        "{report}"
    );

    let mut leaver = joiner("7", "Sales");
    leaver["kind"] = json!("leaver");
    leaver["source_record_id"] = json!("leave-7");
    leaver["person"]["status"] = json!("terminated");
    host.post_event(&leaver, "leave-7").await;
    host.wait_idle(Duration::from_secs(60)).await;
    let user = fake.user("p7@example.test").unwrap();
    assert_eq!(user.properties["accountEnabled"], false);
    assert!(user.sessions_revoked >= 1, "sessions revoked with the disable");
    let waited = std::time::Instant::now();
    while !(fake.groups_of(&user.id).is_empty() && fake.licenses_of(&user.id).is_empty())
        && waited.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.wait_idle(Duration::from_secs(60)).await;
    assert!(
        fake.groups_of(&user.id).is_empty(),
        "{:?}",
        fake.groups_of(&user.id)
    );
    assert!(
        fake.licenses_of(&user.id).is_empty(),
        "{:?}",
        fake.licenses_of(&user.id)
    );
    prism.assert_contract_kept("graph");
}
