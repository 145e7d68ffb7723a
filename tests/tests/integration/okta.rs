//! The `okta` connector against a stateful fake of Okta's Management API, behind Prism in proxy
//! mode with Okta's published description of the API (every request and answer checked). The
//! host authenticates as an OAuth service app with `private_key_jwt`; the fake verifies each
//! client assertion's signature with the key's public half.

use super::scim::attrs;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tenure_capabilities::ShiftedClock;
use tenure_pipeline::QueueConfig;
use tenure_pipeline::event::rfc3339_ms;
use tenure_plugin_test::Harness;
use tenure_runtime::wit::{self, PluginError};
use tenure_tests::fake_okta::FakeOkta;
use tenure_tests::host::{HostSpec, TestHost, joiner, pipeline_toml, tenant_toml};
use tenure_tests::prism::{self, Prism};
use tenure_tests::testbeds;

const RSA_KEY: &str = include_str!("../../../host/capabilities/testdata/rsa-test-key.pem");
const CLIENT: &str = "0oaservice1234567";

/// The fake with Prism in front of it, and the `okta` connection pointing at Prism (with DPoP-bound
/// tokens when `dpop`).
async fn cloud(dpop: bool) -> (FakeOkta, Prism, String) {
    let signer = tenure_capabilities::oauth::jwt::Signer::from_pem(RSA_KEY).expect("test key");
    let fake = FakeOkta::start(signer.public_key()).await;
    let prism = Prism::proxy(prism::okta_spec(), &fake.url);
    let key = RSA_KEY.replace('\n', "\\n");
    let connection = format!(
        r#"
[connections.okta]
kind = "http"
allow_private_network = true
url = "{}"
auth = {{ type = "oauth2-jwt", token_url = "{}/oauth2/v1/token", client_id = "{CLIENT}", key_id = "kid-1",
  scopes = ["okta.users.manage", "okta.groups.manage", "okta.apps.manage"], private_key = "{key}",
  dpop = {dpop} }}

[plugins.okta.grants]
http = ["okta"]
"#,
        prism.url, fake.url
    );
    for group in ["Engineering", "Sales", "All-Staff"] {
        fake.group(group);
    }
    for app in ["Slack", "Zoom"] {
        fake.app(app);
    }
    (fake, prism, connection)
}

struct Okta {
    fake: FakeOkta,
    prism: Prism,
    harness: Harness,
}

impl Okta {
    async fn start(settings: &str) -> Okta {
        Okta::start_with(settings, false).await
    }

    async fn start_with(settings: &str, dpop: bool) -> Okta {
        let (fake, prism, connection) = cloud(dpop).await;
        let harness = Harness::new().expect("harness");
        harness.load("okta").expect("the okta plugin (plugins/build.sh)");
        harness
            .tenant(
                "acme",
                &format!("{connection}\n[plugins.okta.settings]\n{settings}\n"),
            )
            .expect("tenant config");
        Okta { fake, prism, harness }
    }

    async fn apply(&self, op: wit::Operation) -> Result<wit::Outcome, PluginError> {
        testbeds::apply(&self.harness, "acme", "okta", op).await
    }

    async fn lookup(&self, attribute: &str, value: &str) -> Vec<wit::Account> {
        testbeds::lookup(&self.harness, "acme", "okta", attribute, value)
            .await
            .unwrap_or_else(|e| panic!("lookup {attribute}={value}: {e:?}"))
    }

    fn status(&self, login: &str) -> String {
        self.fake.user_by_login(login).expect("the user").status
    }
}

fn ada(enabled: bool) -> wit::DesiredAccount {
    wit::DesiredAccount {
        destination: "okta".into(),
        attributes: attrs(&[
            ("login", "ada@example.test"),
            ("email", "ada@example.test"),
            ("firstName", "Ada"),
            ("lastName", "Lovelace"),
            ("employeeNumber", "E-1001"),
            ("department", "Engineering"),
            ("title", "Engineer"),
        ]),
        container: None,
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled,
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

/// Staged, activated, given groups and apps, suspended and back, deactivated and deleted,
/// within Okta's contract, authenticated as a service app.
#[tokio::test]
async fn okta_user_lifecycle_keeps_oktas_contract() {
    let o = Okta::start("").await;
    let created = o.apply(wit::Operation::Create(ada(false))).await.expect("create");
    let id = created.anchor.clone().expect("the Okta id");
    let user = o.fake.user_by_login("ada@example.test").unwrap();
    assert_eq!(user.id, id);
    assert_eq!(user.status, "STAGED", "staged until the start date");
    assert_eq!(user.profile["employeeNumber"], "E-1001");
    let password = user.password.expect("the host generated a password");
    assert!(password.len() >= 20);
    assert!(!format!("{created:?}").contains(&password));
    // The service app's assertion: iss = sub = the client, audience the token endpoint, signed.
    let claims = o.fake.state().assertions[0].clone();
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some(CLIENT), Some(CLIENT))
    );
    assert_eq!(claims["aud"], format!("{}/oauth2/v1/token", o.fake.url));

    o.apply(wit::Operation::AddMember(member(&id, "Engineering")))
        .await
        .expect("add");
    o.apply(wit::Operation::AddMember(member(&id, "Engineering")))
        .await
        .expect("again");
    o.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: vec![wit::Attribute {
            name: "app-assignments".into(),
            value: wit::Value::Many(vec!["Slack".into(), "Zoom".into()]),
        }],
    }))
    .await
    .expect("apps");
    assert_eq!(o.fake.apps_of(&id), ["Slack", "Zoom"]);

    // The start date: activated without Okta's activation email.
    o.apply(wit::Operation::Enable(id.clone()))
        .await
        .expect("activate");
    assert_eq!(o.status("ada@example.test"), "ACTIVE");
    let found = o.lookup("login", "ada@example.test").await;
    assert_eq!(found.len(), 1);
    let a = &found[0];
    assert!(a.enabled);
    assert_eq!(a.groups, ["Engineering"], "Everyone (built in) is not Tenure's");
    assert_eq!(a.app_assignments, ["Slack", "Zoom"]);
    assert_eq!(o.lookup("email", "ada@example.test").await[0].anchor, id);
    assert_eq!(o.lookup("employeeNumber", "E-1001").await[0].anchor, id);

    // A mover: a partial profile update, another group, one app fewer.
    o.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: vec![
            attrs(&[("department", "Sales")]).remove(0),
            wit::Attribute {
                name: "title".into(),
                value: wit::Value::Absent,
            },
            wit::Attribute {
                name: "app-assignments".into(),
                value: wit::Value::Many(vec!["Slack".into()]),
            },
        ],
    }))
    .await
    .expect("update");
    o.apply(wit::Operation::RemoveMember(member(&id, "Engineering")))
        .await
        .expect("remove");
    o.apply(wit::Operation::RemoveMember(member(&id, "Engineering")))
        .await
        .expect("again");
    o.apply(wit::Operation::AddMember(member(&id, "Sales")))
        .await
        .expect("add");
    let user = o.fake.user_by_login("ada@example.test").unwrap();
    assert_eq!(user.profile["department"], "Sales");
    assert!(!user.profile.contains_key("title"), "cleared");
    assert_eq!(user.profile["firstName"], "Ada", "the rest of the profile stays");
    assert_eq!(o.fake.groups_of(&id), ["Sales"]);
    assert_eq!(o.fake.apps_of(&id), ["Slack"]);

    // Leave: suspended (apps kept), and back.
    o.apply(wit::Operation::Disable(id.clone()))
        .await
        .expect("suspend");
    assert_eq!(o.status("ada@example.test"), "SUSPENDED");
    assert_eq!(o.fake.apps_of(&id), ["Slack"]);
    assert!(!o.lookup("anchor", &id).await[0].enabled);
    o.apply(wit::Operation::Disable(id.clone()))
        .await
        .expect("already suspended");
    o.apply(wit::Operation::Enable(id.clone()))
        .await
        .expect("unsuspend");
    assert_eq!(o.status("ada@example.test"), "ACTIVE");

    // After the grace period: deactivated, then deleted for good; again is success.
    o.apply(wit::Operation::Delete(id.clone())).await.expect("delete");
    assert!(o.fake.user_by_login("ada@example.test").is_none());
    o.apply(wit::Operation::Delete(id.clone())).await.expect("again");
    assert!(o.lookup("anchor", &id).await.is_empty());
    o.prism.assert_contract_kept("okta");

    // The check itself: an answer that breaks Okta's description never reaches the plugin.
    let id = o
        .apply(wit::Operation::Create(ada(false)))
        .await
        .expect("create")
        .anchor
        .unwrap();
    o.fake.state().break_answers = true;
    let e = testbeds::lookup(&o.harness, "acme", "okta", "anchor", &id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Transient(m) if m.contains("VIOLATIONS")),
        "{e:?}"
    );
    assert!(
        o.prism.errors().iter().any(|l| l.contains("VIOLATIONS")),
        "{:#?}",
        o.prism.lines()
    );
}

/// A duplicate login is adopted only with the same employee number; search lags; a quota that
/// runs out is waited for before Okta answers 429; leavers can be deactivated instead.
#[tokio::test]
async fn okta_duplicates_search_lag_and_the_rate_limit() {
    let o = Okta::start("disable = \"deactivate\"").await;
    o.fake.set_search_lag(Duration::from_secs(3600));
    let id = o
        .apply(wit::Operation::Create(ada(true)))
        .await
        .expect("create")
        .anchor
        .unwrap();
    assert_eq!(o.status("ada@example.test"), "ACTIVE");
    assert!(
        o.lookup("employeeNumber", "E-1001").await.is_empty(),
        "not indexed yet"
    );
    assert_eq!(o.lookup("login", "ada@example.test").await[0].anchor, id);

    let again = o.apply(wit::Operation::Create(ada(true))).await.expect("adopt");
    assert_eq!(again.anchor.as_deref(), Some(id.as_str()));
    let mut other = ada(true);
    other.attributes = attrs(&[
        ("login", "ada@example.test"),
        ("email", "ada@example.test"),
        ("firstName", "Ada"),
        ("lastName", "Other"),
        ("employeeNumber", "E-2002"),
    ]);
    let e = o.apply(wit::Operation::Create(other)).await.unwrap_err();
    assert!(
        matches!(&e, PluginError::Conflict(m) if m.contains("E-1001")),
        "{e:?}"
    );
    let e = o
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

    // Four requests per two seconds: the host reads X-Rate-Limit-Remaining and waits for the
    // reset instead of sending the request Okta would refuse.
    o.fake.set_rate_limit(4, Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(o.lookup("anchor", &id).await.len(), 1);
    }
    assert_eq!(o.fake.state().throttled, 0, "no request met a 429");

    o.apply(wit::Operation::Disable(id.clone()))
        .await
        .expect("deactivate");
    assert_eq!(o.status("ada@example.test"), "DEPROVISIONED");
    o.prism.assert_contract_kept("okta");
}

const RULES: &str = "destination okta
rule eng: department == \"Engineering\" => group:Engineering, app:Slack
rule sales: department == \"Sales\" => group:Sales, app:Slack, app:Zoom
rule leaver: status == \"terminated\" => disable
default => group:All-Staff
set login = \"{email}\"
set email = \"{email}\"
set firstName = \"{given_name}\"
set lastName = \"{family_name}\"
set employeeNumber = \"{id}\"
set department = \"{department}\"
";

fn ms(t: &str) -> i64 {
    rfc3339_ms(t).unwrap_or_else(|| panic!("bad test time {t}"))
}

/// A hire three days before the start date is staged in Okta with its groups and apps, and
/// activated on the day; a move changes groups and apps; a termination suspends the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_is_staged_then_activated_on_the_start_date() {
    let (fake, prism, connection) = cloud(false).await;
    let tenant = tenant_toml(&format!(
        "{connection}\n[plugins.rules-basic]\nrule_set = '''\n{RULES}'''\n"
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"okta\"\nconnector = \"okta\"\nprehire_days = 3\n\
         matching = [\"employeeNumber\", \"login\"]\n",
    );
    let clock = Arc::new(ShiftedClock::at(ms("2026-03-07T09:00:00Z")));
    let host = TestHost::start_with_clock(
        HostSpec {
            tenant,
            pipeline,
            queue: QueueConfig {
                backoff_base_ms: 50,
                backoff_max_ms: 1_000,
                poll_ms: 20,
                ..QueueConfig::default()
            },
            plugins: vec!["rules-basic", "okta"],
        },
        tempfile::tempdir().expect("temp dir"),
        clock.clone(),
    )
    .await;
    let mut hire = joiner("9", "Engineering");
    hire["person"]["start_date"] = json!("2026-03-10");
    hire["person"]["time_zone"] = json!("UTC");
    let (status, body) = host.post_event(&hire, "hire-9").await;
    assert_eq!(status, 202, "{body}");
    host.settle_scheduled().await;
    let Some(user) = fake.user_by_login("p9@example.test") else {
        panic!(
            "not staged before the start date: {}",
            host.get("/api/v1/jobs?limit=10").await
        );
    };
    assert_eq!(user.status, "STAGED");
    assert_eq!(fake.groups_of(&user.id), ["Engineering"]);
    assert_eq!(fake.apps_of(&user.id), ["Slack"]);

    clock.set(ms("2026-03-10T00:30:00Z"));
    host.settle_scheduled().await;
    assert_eq!(
        fake.user_by_login("p9@example.test").unwrap().status,
        "ACTIVE",
        "the start date"
    );

    let mut mover = hire.clone();
    mover["kind"] = json!("mover");
    mover["source_record_id"] = json!("move-9");
    mover["person"]["department"] = json!("Sales");
    host.post_event(&mover, "move-9").await;
    host.settle_scheduled().await;
    assert_eq!(fake.groups_of(&user.id), ["Sales"]);
    assert_eq!(fake.apps_of(&user.id), ["Slack", "Zoom"]);

    let mut leaver = mover.clone();
    leaver["kind"] = json!("leaver");
    leaver["source_record_id"] = json!("leave-9");
    leaver["person"]["status"] = json!("terminated");
    host.post_event(&leaver, "leave-9").await;
    host.settle_scheduled().await;
    assert_eq!(fake.user_by_login("p9@example.test").unwrap().status, "SUSPENDED");
    prism.assert_contract_kept("okta");
}

/// A service app that requires DPoP (Okta's default for new ones): the host answers the token
/// endpoint's nonce, presents the token as `DPoP` with a proof by its own key on every call, and
/// renews it under a new nonce. The token alone is worth nothing.
#[tokio::test]
async fn a_service_app_that_requires_dpop_gets_a_proof_with_every_call() {
    let o = Okta::start_with("", true).await;
    o.fake.require_dpop("nonce-1");
    // Tokens that live two seconds: renewed after one.
    o.fake.state().token_lifetime = Some(2);
    let id = o
        .apply(wit::Operation::Create(ada(false)))
        .await
        .expect("create")
        .anchor
        .expect("the Okta id");
    assert_eq!(o.lookup("login", "ada@example.test").await.len(), 1);
    let token = {
        let s = o.fake.state();
        let d = s.dpop.as_ref().expect("dpop");
        assert_eq!(d.nonce_refusals, 1, "the first token request learns the nonce");
        assert_eq!(d.bound.len(), 1, "one token, bound to the host's key");
        assert_eq!(
            d.proofs_accepted,
            s.requests.len(),
            "every API call carried a proof"
        );
        d.bound.keys().next().cloned().expect("the token")
    };
    // Without the key, the token is refused: as Bearer, or as DPoP without a proof.
    let client = reqwest::Client::new();
    let user = format!("{}/api/v1/users/{id}", o.fake.url);
    for scheme in ["Bearer", "DPoP"] {
        let answer = client
            .get(&user)
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 401, "{scheme} without a proof");
    }
    // The token endpoint moves to a new nonce; the token is renewed: refused once, then issued.
    o.fake.state().dpop.as_mut().expect("dpop").nonce = "nonce-2".into();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    o.apply(wit::Operation::Delete(id)).await.expect("delete");
    assert!(o.fake.user_by_login("ada@example.test").is_none());
    {
        let s = o.fake.state();
        let d = s.dpop.as_ref().expect("dpop");
        assert_eq!((d.nonce_refusals, d.bound.len()), (2, 2));
    }
    o.prism.assert_contract_kept("okta");
}
