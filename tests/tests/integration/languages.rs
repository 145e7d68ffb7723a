//! The plugin worlds proven in Rust, Python and JavaScript, each run in the real host.

use serde_json::json;
use std::path::Path;
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_runtime::CallError;
use tenure_runtime::wit::{self, Attribute, DesiredAccount, MatchKey, Operation, PluginError, Value};

#[tokio::test]
async fn rust_rules_plugin_passes_its_fixtures() {
    let h = Harness::new().unwrap();
    h.load("rules-basic").unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/rules-basic/fixtures");
    let rule_set = std::fs::read_to_string(dir.join("rules.txt")).unwrap();
    h.tenant_with_rule_set("acme", "rules-basic", &rule_set);
    let report = h.run_rules_fixtures("acme", "rules-basic", &dir).await.unwrap();
    assert!(report.run >= 3, "ran {} fixtures", report.run);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

#[tokio::test]
async fn rust_rules_plugin_rejects_a_bad_rule_set_at_configure() {
    let h = Harness::new().unwrap();
    h.load("rules-basic").unwrap();
    h.tenant(
        "acme",
        "[plugins.rules-basic]\nrule_set = \"destination d\\nrule x: a ~ b => group:g\"\n",
    )
    .unwrap();
    let err = h
        .runtime()
        .plugin("acme", "rules-basic")
        .unwrap()
        .evaluate(
            &person_from_json(json!({})).unwrap(),
            &context_from_json(json!({})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Start { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("rule-set: line 2: cannot read condition"),
        "{err}"
    );
}

const PY_RULES: &str = r#"{"destinations": {"scim": {
    "department_groups": {"Engineering": ["eng", "github"]},
    "location_containers": {"Berlin": "ou=EU"},
    "default_groups": ["all-staff"], "default_container": "ou=People",
    "contractor_expiry": true}}}"#;

#[tokio::test]
async fn python_rules_plugin_runs_in_the_host() {
    let h = Harness::new().unwrap();
    h.load("rules-py").unwrap();
    h.tenant_with_rule_set("acme", "rules-py", PY_RULES);
    let handle = h.runtime().plugin("acme", "rules-py").unwrap();
    let ctx = context_from_json(json!({})).unwrap();

    let ada = person_from_json(json!({"given_name": "Ada", "family_name": "Lovelace",
        "department": "Engineering", "location": "Berlin"}))
    .unwrap();
    let e = handle.evaluate(&ada, &ctx).await.unwrap();
    assert_eq!(e.accounts[0].groups, vec!["eng", "github"]);
    assert_eq!(e.accounts[0].container.as_deref(), Some("ou=EU"));
    assert_eq!(
        e.accounts[0].attributes[0].value,
        Value::Text("Ada Lovelace".into())
    );
    assert!(e.trace[0].matched);

    let bob = person_from_json(json!({"given_name": "Bob", "department": "Finance"})).unwrap();
    let e = handle.evaluate(&bob, &ctx).await.unwrap();
    assert_eq!(e.accounts[0].groups, vec!["all-staff"]);
    assert!(!e.trace[0].matched);

    let contractor = person_from_json(json!({"employment_type": "Contractor"})).unwrap();
    match handle.evaluate(&contractor, &ctx).await.unwrap_err() {
        CallError::Plugin {
            error: PluginError::InvalidInput(i),
            ..
        } => assert_eq!(i.field, "end_date"),
        other => panic!("expected invalid-input, got {other}"),
    }
    let contractor =
        person_from_json(json!({"employment_type": "Contractor", "end_date": "2027-03-31"})).unwrap();
    let e = handle.evaluate(&contractor, &ctx).await.unwrap();
    assert_eq!(e.accounts[0].expires_at.as_deref(), Some("2027-03-31T23:59:59Z"));
}

#[tokio::test]
async fn python_rules_plugin_reports_a_bad_rule_set() {
    let h = Harness::new().unwrap();
    h.load("rules-py").unwrap();
    h.tenant("acme", "[plugins.rules-py]\nrule_set = \"{not json\"\n")
        .unwrap();
    let err = h
        .runtime()
        .plugin("acme", "rules-py")
        .unwrap()
        .evaluate(
            &person_from_json(json!({})).unwrap(),
            &context_from_json(json!({})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rule-set: not valid JSON"), "{err}");
}

fn desired(employee_id: &str, email: &str) -> DesiredAccount {
    DesiredAccount {
        destination: "sandbox".into(),
        attributes: vec![
            Attribute {
                name: "employeeId".into(),
                value: Value::Text(employee_id.into()),
            },
            Attribute {
                name: "email".into(),
                value: Value::Text(email.into()),
            },
        ],
        container: Some("ou=People".into()),
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled: true,
        expires_at: None,
        tickets: vec![],
    }
}

#[tokio::test]
async fn javascript_connector_plugin_runs_in_the_host() {
    let h = Harness::new().unwrap();
    h.load("connector-js").unwrap();
    h.tenant("acme", "[plugins.connector-js.grants]\nkv = true\n")
        .unwrap();
    let c = h.runtime().plugin("acme", "connector-js").unwrap();
    let caps = c.describe().await.unwrap();
    assert_eq!(caps.matching_keys, vec!["employeeId", "email"]);
    assert!(
        caps.operations
            .contains(&wit::connector::OperationKind::AddMember)
    );

    let created = c
        .apply(&Operation::Create(desired("1001", "ada@example.test")))
        .await
        .unwrap();
    let anchor = created.anchor.expect("create returns the anchor");
    let dup = c
        .apply(&Operation::Create(desired("1001", "other@example.test")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            dup,
            CallError::Plugin {
                error: PluginError::Conflict(_),
                ..
            }
        ),
        "{dup}"
    );

    let key = |a: &str, v: &str| MatchKey {
        attribute: a.into(),
        value: v.into(),
    };
    let found = c
        .lookup(&[key("employeeId", "404"), key("email", "ADA@example.test")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].anchor, anchor);

    c.apply(&Operation::AddMember(wit::MemberChange {
        anchor: anchor.clone(),
        group: "eng".into(),
    }))
    .await
    .unwrap();
    c.apply(&Operation::Move(wit::MoveRequest {
        anchor: anchor.clone(),
        container: "ou=Leavers".into(),
    }))
    .await
    .unwrap();
    c.apply(&Operation::Disable(anchor.clone())).await.unwrap();
    let now = c.lookup(&[key("employeeId", "1001")]).await.unwrap();
    assert_eq!(now[0].groups, vec!["eng"]);
    assert_eq!(now[0].container.as_deref(), Some("ou=Leavers"));
    assert!(!now[0].enabled);

    c.apply(&Operation::Delete(anchor.clone())).await.unwrap();
    assert!(c.lookup(&[key("employeeId", "1001")]).await.unwrap().is_empty());
    let gone = c.apply(&Operation::Enable(anchor)).await.unwrap_err();
    assert!(
        matches!(
            gone,
            CallError::Plugin {
                error: PluginError::NotFound(_),
                ..
            }
        ),
        "{gone}"
    );
}

#[tokio::test]
async fn calling_a_plugin_as_the_wrong_kind_is_a_typed_error() {
    let h = Harness::new().unwrap();
    h.load("connector-js").unwrap();
    h.tenant("acme", "").unwrap();
    let c = h.runtime().plugin("acme", "connector-js").unwrap();
    let err = c
        .evaluate(
            &person_from_json(json!({})).unwrap(),
            &context_from_json(json!({})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::WrongKind { wanted: "rules", .. }),
        "{err}"
    );
}
