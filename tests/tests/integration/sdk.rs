//! The SDK's authoring layer as a plugin author meets it: the minimal connector
//! (under 40 lines) run in the real host, typed settings whose errors name the
//! setting, and the default answers for operations a connector does not declare.

use tenure_plugin_test::Harness;
use tenure_runtime::wit::connector::OperationKind;
use tenure_runtime::wit::{self, Attribute, DesiredAccount, MatchKey, Operation, PluginError, Value};
use tenure_runtime::{CallError, PluginHandle, PluginKind};

fn harness(plugin: &str, tenant_toml: &str) -> Harness {
    let harness = Harness::new().expect("harness");
    harness.load(plugin).expect("run plugins/build.sh first");
    harness.tenant("t", tenant_toml).expect("tenant");
    harness
}

fn minimal() -> PluginHandle {
    let h = harness("minimal", "[plugins.minimal.grants]\nkv = true\n");
    h.plugin("t", "minimal").expect("minimal")
}

fn attribute(name: &str, value: Value) -> Attribute {
    Attribute {
        name: name.into(),
        value,
    }
}

fn desired(attributes: Vec<Attribute>) -> DesiredAccount {
    DesiredAccount {
        destination: "minimal".into(),
        attributes,
        container: None,
        groups: vec!["staff".into()],
        licenses: Vec::new(),
        app_assignments: Vec::new(),
        enabled: true,
        expires_at: None,
        tickets: Vec::new(),
    }
}

async fn lookup(plugin: &PluginHandle, id: &str) -> Vec<wit::Account> {
    let keys = [MatchKey {
        attribute: "employeeId".into(),
        value: id.into(),
    }];
    plugin.lookup(&keys).await.expect("lookup")
}

fn plugin_error(result: Result<wit::Outcome, CallError>) -> PluginError {
    match result {
        Err(CallError::Plugin { error, .. }) => error,
        other => panic!("expected the plugin's own error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_minimal_connector_creates_updates_and_disables_in_the_host() {
    let plugin = minimal();
    let capabilities = plugin.describe().await.expect("describe");
    assert_eq!(
        capabilities.operations,
        [
            OperationKind::Create,
            OperationKind::Update,
            OperationKind::Disable
        ]
    );
    assert_eq!(capabilities.matching_keys, ["employeeId"]);
    assert!(
        lookup(&plugin, "1001").await.is_empty(),
        "nothing before the create"
    );

    let created = plugin
        .apply(&Operation::Create(desired(vec![
            attribute("employeeId", Value::Text("1001".into())),
            attribute("mail", Value::Text("ada@example.test".into())),
            attribute("title", Value::Text("Engineer".into())),
            attribute("phone", Value::Absent),
        ])))
        .await
        .expect("create");
    assert_eq!(created.anchor.as_deref(), Some("1001"));
    let found = lookup(&plugin, "1001").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].anchor, "1001");
    assert_eq!(found[0].groups, ["staff"]);
    assert!(
        found[0].attributes.iter().all(|a| a.name != "phone"),
        "absent is never stored"
    );

    plugin
        .apply(&Operation::Update(wit::AttributeChange {
            anchor: "1001".into(),
            changes: vec![
                attribute("mail", Value::Text("ada.lovelace@example.test".into())),
                attribute("title", Value::Absent),
            ],
        }))
        .await
        .expect("update");
    plugin
        .apply(&Operation::Disable("1001".into()))
        .await
        .expect("disable");
    let account = lookup(&plugin, "1001").await.remove(0);
    assert!(!account.enabled);
    let names: Vec<(&str, &Value)> = account
        .attributes
        .iter()
        .map(|a| (a.name.as_str(), &a.value))
        .collect();
    assert_eq!(
        names,
        [
            ("employeeId", &Value::Text("1001".into())),
            ("mail", &Value::Text("ada.lovelace@example.test".into()))
        ]
    );
}

#[tokio::test]
async fn undeclared_operations_missing_input_and_unknown_anchors_get_clear_errors() {
    let plugin = minimal();
    match plugin_error(plugin.apply(&Operation::Delete("1001".into())).await) {
        PluginError::Permanent(m) => assert!(m.contains("does not support delete (1001)"), "{m}"),
        other => panic!("expected permanent, got {other:?}"),
    }
    match plugin_error(plugin.apply(&Operation::Create(desired(Vec::new()))).await) {
        PluginError::InvalidInput(i) => {
            assert_eq!((i.field.as_str(), i.reason.as_str()), ("employeeId", "required"))
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
    match plugin_error(plugin.apply(&Operation::Disable("nobody".into())).await) {
        PluginError::NotFound(m) => assert!(m.contains("nobody"), "{m}"),
        other => panic!("expected not-found, got {other:?}"),
    }
}

/// The message of a configure that failed.
async fn start_error(plugin: &str, settings: &str) -> String {
    let h = harness(
        plugin,
        &format!("[plugins.{plugin}.grants]\nkv = true\n[plugins.{plugin}.settings]\n{settings}"),
    );
    let handle = h.plugin("t", plugin).expect("handle");
    let called = match handle.kind() {
        PluginKind::Source => handle.poll(None).await.map(drop),
        PluginKind::Rules => {
            let context = wit::rules::Context {
                event: wit::EventKind::Joiner,
                destinations: Vec::new(),
                now_ms: 0,
                trace: wit::rules::TraceLevel::None,
            };
            handle
                .evaluate(&wit::Person::with_id("hr", "1"), &context)
                .await
                .map(drop)
        }
        _ => handle.lookup(&[]).await.map(drop),
    };
    match called {
        Err(CallError::Start { message, .. }) => message,
        other => panic!("{plugin} with {settings:?} should not start, got {other:?}"),
    }
}

#[tokio::test]
async fn settings_errors_name_the_setting_and_the_reason() {
    let cases = [
        ("minimal", "colour = \"red\"", "settings.colour", "takes none"),
        (
            "sandbox",
            "match_attributes = \" , \"",
            "settings.match_attributes",
            "names no attribute",
        ),
        (
            "sandbox",
            "match_atributes = \"mail\"",
            "settings.match_atributes",
            "known: match_attributes",
        ),
        ("directory", "profile = \"ad\"", "settings.base_dn", "required"),
        (
            "directory",
            "base_dn = \"dc=x\"\nprofile = \"nds\"",
            "settings.profile",
            "\"nds\" is not one of ad, ldap",
        ),
        (
            "directory",
            "base_dn = \"dc=x\"\npage_size = \"lots\"",
            "settings.page_size",
            "\"lots\" is not",
        ),
        (
            "directory",
            "base_dn = \"dc=x\"\nmust_change_password = \"maybe\"",
            "settings.must_change_password",
            "true or false",
        ),
        (
            "scim",
            "patch_style = \"odd\"",
            "settings.patch_style",
            "one of rfc, entra",
        ),
        (
            "connector-js",
            "colour = \"red\"",
            "settings.colour",
            "known: match_attributes",
        ),
        (
            "connector-js",
            "match_attributes = \",\"",
            "settings.match_attributes",
            "names no attribute",
        ),
        (
            "rules-py",
            "expiry = \"1\"",
            "settings.expiry",
            "known: expiry_time",
        ),
    ];
    for (plugin, settings, field, reason) in cases {
        let message = start_error(plugin, settings).await;
        assert!(
            message.contains(field) && message.contains(reason),
            "{plugin} {settings:?}: {message}"
        );
    }
}

#[tokio::test]
async fn a_source_without_pushed_payloads_says_so_and_polls_nothing_by_default() {
    let h = harness(
        "hr-feed",
        "[plugins.hr-feed.settings]\n\"column.employee_id\" = \"Employee ID\"\n",
    );
    let feed = h.plugin("t", "hr-feed").expect("hr-feed");
    let polled = feed.poll(Some("c-1")).await.expect("the trait's default poll");
    assert!(polled.events.is_empty() && !polled.has_more);
    assert_eq!(
        polled.next_cursor.as_deref(),
        Some("c-1"),
        "the cursor is kept, not lost"
    );
    let message = start_error("hr-feed", "\"row.employee_id\" = \"x\"").await;
    assert!(
        message.contains("settings.row.employee_id") && message.contains("unknown setting"),
        "{message}"
    );
}

#[tokio::test]
async fn a_draft_runs_on_a_throwaway_key_value_store() {
    let h = harness("minimal", "[plugins.minimal.grants]\nkv = true\n");
    // A handle as draft tests and impact previews get one (a rule set of their own).
    let draft = h
        .runtime()
        .plugin_with_rule_set("t", "minimal", "draft: true")
        .expect("draft handle");
    draft
        .apply(&Operation::Create(desired(vec![attribute(
            "employeeId",
            Value::Text("2002".into()),
        )])))
        .await
        .expect("create in the draft");
    assert_eq!(
        lookup(&draft, "2002").await.len(),
        1,
        "the draft sees its own writes"
    );
    let live = h.plugin("t", "minimal").expect("live handle");
    assert!(
        lookup(&live, "2002").await.is_empty(),
        "nothing the draft wrote reaches the tenant's data"
    );
}
