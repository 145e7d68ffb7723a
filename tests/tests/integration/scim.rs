//! The `scim` connector against a real SCIM 2.0 server (scim2-server from PyPI,
//! started by `scripts/testbeds/scim2-server.sh`). Each test uses its own tenant
//! on the server, so it starts empty. The server's control layer injects 429 and
//! 5xx answers, turns PATCH off, and records what the connector sent.

use serde_json::{Value as Json, json};
use tenure_plugin_test::Harness;
use tenure_runtime::wit::{self, PluginError};
use tenure_tests::testbeds::{self, ScimTenant};

/// A SCIM tenant on the test server and the connector loaded against it.
pub struct Scim {
    pub harness: Harness,
    pub server: ScimTenant,
}

impl std::ops::Deref for Scim {
    type Target = ScimTenant;
    fn deref(&self) -> &ScimTenant {
        &self.server
    }
}

impl Scim {
    pub async fn start(name: &str, settings: &str) -> Scim {
        let server = ScimTenant::start(name);
        let harness = Harness::new().unwrap();
        harness.load("scim").unwrap();
        harness
            .tenant(
                "acme",
                &format!(
                    r#"
[connections.scim]
kind = "http"
allow_private_network = true
url = "{}"
auth = {{ type = "bearer", token = "{}" }}

[plugins.scim.grants]
http = ["scim"]

[plugins.scim.settings]
{settings}
"#,
                    server.url, server.token
                ),
            )
            .unwrap();
        Scim { harness, server }
    }

    pub async fn apply(&self, op: wit::Operation) -> Result<wit::Outcome, PluginError> {
        testbeds::apply(&self.harness, "acme", "scim", op).await
    }

    pub async fn lookup(&self, attribute: &str, value: &str) -> Vec<wit::Account> {
        testbeds::lookup(&self.harness, "acme", "scim", attribute, value)
            .await
            .unwrap_or_else(|e| panic!("lookup {attribute}={value}: {e:?}"))
    }

    async fn lookup_err(&self, attribute: &str, value: &str) -> PluginError {
        match testbeds::lookup(&self.harness, "acme", "scim", attribute, value).await {
            Err(e) => e,
            Ok(found) => panic!("expected a plugin error, got {found:?}"),
        }
    }
}

pub fn attrs(pairs: &[(&str, &str)]) -> Vec<wit::Attribute> {
    pairs
        .iter()
        .map(|(n, v)| wit::Attribute {
            name: n.to_string(),
            value: wit::Value::Text(v.to_string()),
        })
        .collect()
}

pub fn user(pairs: &[(&str, &str)], enabled: bool) -> wit::DesiredAccount {
    wit::DesiredAccount {
        destination: "app".into(),
        attributes: attrs(pairs),
        container: None,
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled,
        expires_at: None,
        tickets: vec![],
    }
}

fn text<'a>(account: &'a wit::Account, name: &str) -> Option<&'a str> {
    account
        .attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match &a.value {
            wit::Value::Text(t) => Some(t.as_str()),
            _ => None,
        })
}

fn ada() -> wit::DesiredAccount {
    user(
        &[
            ("userName", "ada@example.test"),
            ("externalId", "lever-1"),
            ("name.givenName", "Ada"),
            ("name.familyName", "Lovelace"),
            ("displayName", "Ada Lovelace"),
            ("email", "ada@example.test"),
            ("title", "Engineer"),
            ("employeeNumber", "1001"),
            ("department", "Engineering"),
            ("costCenter", "CC-7"),
            ("organization", "Example"),
            ("manager", "m-42"),
        ],
        true,
    )
}

#[tokio::test]
async fn scim_user_and_group_lifecycle() {
    let scim = Scim::start("life", "").await;
    let eng = scim.group("Engineering").await;
    scim.group("Sales").await;

    let created = scim.apply(wit::Operation::Create(ada())).await.expect("create");
    let id = created.anchor.expect("the SCIM id");
    let (_, stored) = scim
        .request(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    let ext = &stored["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["employeeNumber"], "1001");
    assert_eq!(ext["manager"]["value"], "m-42");
    assert_eq!(stored["emails"][0]["value"], "ada@example.test");
    assert_eq!(stored["active"], true);

    for (attr, value) in [
        ("userName", "ADA@example.test"),
        ("externalId", "lever-1"),
        ("email", "ada@example.test"),
        ("employeeNumber", "1001"),
        ("anchor", id.as_str()),
    ] {
        let found = scim.lookup(attr, value).await;
        assert_eq!(found.len(), 1, "lookup by {attr}");
        assert_eq!(found[0].anchor, id);
        assert_eq!(text(&found[0], "department"), Some("Engineering"));
        assert_eq!(text(&found[0], "manager"), Some("m-42"));
    }
    assert!(scim.lookup("userName", "nobody@example.test").await.is_empty());
    assert!(scim.lookup("anchor", "no-such-id").await.is_empty());

    // A department change and a removed title, by PATCH.
    scim.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: vec![
            wit::Attribute {
                name: "department".into(),
                value: wit::Value::Text("Sales".into()),
            },
            wit::Attribute {
                name: "title".into(),
                value: wit::Value::Absent,
            },
        ],
    }))
    .await
    .unwrap();
    let now = &scim.lookup("anchor", &id).await[0];
    assert_eq!(text(now, "department"), Some("Sales"));
    assert_eq!(text(now, "title"), None);
    assert_eq!(
        text(now, "employeeNumber"),
        Some("1001"),
        "the rest of the extension stays"
    );

    // Groups: add, add again, read back, remove, remove again.
    let member = |g: &str| wit::MemberChange {
        anchor: id.clone(),
        group: g.into(),
    };
    scim.apply(wit::Operation::AddMember(member("Engineering")))
        .await
        .unwrap();
    scim.apply(wit::Operation::AddMember(member("Sales")))
        .await
        .unwrap();
    scim.apply(wit::Operation::AddMember(member("Sales")))
        .await
        .unwrap();
    assert_eq!(
        scim.lookup("anchor", &id).await[0].groups,
        ["Engineering", "Sales"]
    );
    let (_, group) = scim
        .request(reqwest::Method::GET, &format!("/Groups/{eng}"), None)
        .await;
    assert_eq!(group["members"][0]["value"], id.as_str());
    scim.apply(wit::Operation::RemoveMember(member("Engineering")))
        .await
        .unwrap();
    scim.apply(wit::Operation::RemoveMember(member("Engineering")))
        .await
        .unwrap();
    assert_eq!(scim.lookup("anchor", &id).await[0].groups, ["Sales"]);
    let e = scim
        .apply(wit::Operation::AddMember(member("No Such Group")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::NotFound(m) if m.contains("No Such Group")),
        "{e:?}"
    );

    // Deprovision: inactive first, then deleted; deleting again is success.
    scim.apply(wit::Operation::Disable(id.clone())).await.unwrap();
    assert!(!scim.lookup("anchor", &id).await[0].enabled);
    scim.apply(wit::Operation::Enable(id.clone())).await.unwrap();
    assert!(scim.lookup("anchor", &id).await[0].enabled);
    scim.apply(wit::Operation::Delete(id.clone())).await.unwrap();
    assert!(scim.lookup("anchor", &id).await.is_empty());
    scim.apply(wit::Operation::Delete(id.clone())).await.unwrap();

    // Every request carried the host's token (the plugin never had it) and SCIM's media type.
    let seen = scim.requests().await;
    assert!(seen.iter().all(|r| r["authorization"] == true), "{seen:?}");
    assert!(
        seen.iter()
            .filter(|r| r["method"] == "POST" || r["method"] == "PATCH")
            .all(|r| r["content_type"] == "application/scim+json")
    );
}

#[tokio::test]
async fn scim_errors_map_to_retry_classes_with_the_servers_detail() {
    let scim = Scim::start("errors", "").await;
    scim.apply(wit::Operation::Create(ada())).await.unwrap();

    // userName is unique (case-insensitively): 409 uniqueness is a conflict, detail kept.
    let mut twin = ada();
    twin.attributes[0].value = wit::Value::Text("Ada@Example.test".into());
    let e = scim.apply(wit::Operation::Create(twin)).await.unwrap_err();
    assert!(
        matches!(&e, PluginError::Conflict(m) if m.contains("409: uniqueness")),
        "{e:?}"
    );

    // 429 with Retry-After: rate-limited for that long.
    scim.fault(json!({ "status": 429, "retry_after": 7, "count": 1 }))
        .await;
    let e = scim.lookup_err("userName", "ada@example.test").await;
    assert!(matches!(e, PluginError::RateLimited(7000)), "{e:?}");
    // 503 and 500: transient.
    scim.fault(json!({ "status": 503, "count": 1, "methods": ["POST"] }))
        .await;
    let e = scim
        .apply(wit::Operation::Create(user(
            &[("userName", "grace@example.test")],
            true,
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Transient(m) if m.contains("503")),
        "{e:?}"
    );
    // The next attempt goes through.
    scim.apply(wit::Operation::Create(user(
        &[("userName", "grace@example.test")],
        true,
    )))
    .await
    .unwrap();

    // Bad input is named: no userName (checked before sending), an unknown attribute.
    let e = scim
        .apply(wit::Operation::Create(user(&[("displayName", "No Name")], true)))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.field == "userName"),
        "{e:?}"
    );
    let e = scim
        .apply(wit::Operation::Create(user(
            &[("userName", "x@example.test"), ("shoeSize", "9")],
            true,
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.field == "shoeSize"),
        "{e:?}"
    );
    // The server's own 400 (userName is required, so it cannot be removed) keeps its scimType.
    let e = scim
        .apply(wit::Operation::Update(wit::AttributeChange {
            anchor: scim.lookup("userName", "ada@example.test").await[0]
                .anchor
                .clone(),
            changes: vec![wit::Attribute {
                name: "userName".into(),
                value: wit::Value::Absent,
            }],
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::InvalidInput(i) if i.reason.contains("400")),
        "{e:?}"
    );
}

/// A server without PATCH (it says so in ServiceProviderConfig and answers 501):
/// updates become GET + PUT with If-Match, so nothing set elsewhere is lost.
#[tokio::test]
async fn scim_without_patch_falls_back_to_put_with_if_match() {
    let scim = Scim::start("nopatch", "").await;
    scim.no_patch().await;
    scim.group("Engineering").await;
    let id = scim
        .apply(wit::Operation::Create(ada()))
        .await
        .unwrap()
        .anchor
        .unwrap();
    scim.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: attrs(&[("title", "Principal Engineer")]),
    }))
    .await
    .unwrap();
    scim.apply(wit::Operation::Disable(id.clone())).await.unwrap();
    scim.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: id.clone(),
        group: "Engineering".into(),
    }))
    .await
    .unwrap();
    let now = &scim.lookup("anchor", &id).await[0];
    assert_eq!(text(now, "title"), Some("Principal Engineer"));
    assert_eq!(
        text(now, "employeeNumber"),
        Some("1001"),
        "a PUT keeps what it did not change"
    );
    assert_eq!(text(now, "manager"), Some("m-42"));
    assert!(!now.enabled);
    assert_eq!(now.groups, ["Engineering"]);
    let seen = scim.requests().await;
    assert!(
        !seen.iter().any(|r| r["method"] == "PATCH"),
        "no PATCH was sent: {seen:?}"
    );
    let puts: Vec<&Json> = seen.iter().filter(|r| r["method"] == "PUT").collect();
    assert_eq!(puts.len(), 3);
    assert!(
        puts.iter()
            .all(|r| r["if_match"].as_str().is_some_and(|t| t.starts_with("W/"))),
        "{puts:?}"
    );
}

/// Entra-style PATCH shapes (capitalised ops, path-less replace, member removal by value list).
#[tokio::test]
async fn scim_entra_patch_style() {
    let scim = Scim::start("entra", "patch_style = \"entra\"").await;
    scim.group("Engineering").await;
    let id = scim
        .apply(wit::Operation::Create(ada()))
        .await
        .unwrap()
        .anchor
        .unwrap();
    scim.apply(wit::Operation::Update(wit::AttributeChange {
        anchor: id.clone(),
        changes: attrs(&[("department", "Research"), ("name.givenName", "Augusta")]),
    }))
    .await
    .unwrap();
    let member = wit::MemberChange {
        anchor: id.clone(),
        group: "Engineering".into(),
    };
    scim.apply(wit::Operation::AddMember(member.clone()))
        .await
        .unwrap();
    scim.apply(wit::Operation::Disable(id.clone())).await.unwrap();
    let now = &scim.lookup("anchor", &id).await[0];
    assert_eq!(text(now, "department"), Some("Research"));
    assert_eq!(text(now, "name.givenName"), Some("Augusta"));
    assert!(!now.enabled);
    assert_eq!(now.groups, ["Engineering"]);
    scim.apply(wit::Operation::RemoveMember(member)).await.unwrap();
    assert!(scim.lookup("anchor", &id).await[0].groups.is_empty());
    // What went over the wire: Entra's shapes.
    let ops: Vec<Json> = scim
        .requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "PATCH")
        .flat_map(|r| r["body"]["Operations"].as_array().cloned().unwrap_or_default())
        .collect();
    let department = ops
        .iter()
        .find(|o| {
            o["value"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"] == "Research"
        })
        .expect("a path-less replace of the department");
    assert_eq!(department["op"], "Replace");
    assert!(department.get("path").is_none());
    assert!(ops.iter().any(|o| o["op"] == "Add" && o["path"] == "members"));
    assert!(
        ops.iter()
            .any(|o| o["op"] == "Replace" && o["value"]["active"] == false)
    );
}

#[tokio::test]
async fn a_failed_service_provider_config_read_is_not_repeated_on_every_call() {
    let scim = Scim::start("spc-once", "").await;
    // The server fails its next five reads, the features' read among them.
    scim.fault(json!({ "status": 500, "count": 5, "methods": ["GET"] }))
        .await;
    let mut answered = 0;
    for _ in 0..11 {
        if testbeds::lookup(&scim.harness, "acme", "scim", "userName", "ada@example.test")
            .await
            .is_ok()
        {
            answered += 1;
        }
    }
    assert!(
        answered >= 6,
        "the conservative features serve once the faults end ({answered})"
    );
    let reads = scim
        .requests()
        .await
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/ServiceProviderConfig"))
        })
        .count();
    assert_eq!(reads, 1, "read once, not on every call after a failure");
}
