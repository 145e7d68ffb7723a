//! The rule language in the running host, through the WebAssembly `rules` plugin:
//! the deepest expressions the limits allow evaluate inside the sandbox (no trap),
//! deeper ones are refused when the draft is checked, naming the field and the
//! position; Entra-syntax mappings apply; a `Redact`ed value reaches the
//! destination but never an audit entry, a preview or an impact preview.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_rules_engine::limits::{MAX_CHAIN, MAX_DEPTH, MAX_OPERATORS};
use tenure_tests::host::{HostSpec, IT_TOKEN, TestHost, pipeline_toml, tenant_toml};

const WAIT: Duration = Duration::from_secs(30);
/// A badge number whose middle part cannot turn up by chance in the audit's hex hashes or timestamps.
const SECRET: &str = "BADGE-QZXW-SECRET";
/// The part of [`SECRET`] that must never be shown, even with the rest cut away.
const SECRET_CORE: &str = "QZXW";

/// `depth` nested `Left(..., 3)` calls around the given name.
fn nested(depth: usize) -> String {
    format!(
        "{}person.given_name{}",
        "Left(".repeat(depth),
        ", 3)".repeat(depth)
    )
}

fn rule_set(depth: usize) -> String {
    let chain = vec!["1"; MAX_OPERATORS].join(" + ");
    let iifs = format!(
        "{}person.department{}",
        "IIF(IsPresent(person.custom.nothing), \"x\", ".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    format!(
        r#"
destinations:
  sandbox:
    attributes:
      employeeId: {{ from: id, required: true }}
      displayName: {{ entra: 'Join(" ", [givenName], [surname])' }}
      company: {{ entra: 'IIF(IsPresent([company]), [company], "Acme")' }}
      deep: {{ expr: '{deep}' }}
      chain: {{ expr: '{chain}' }}
      guarded: {{ expr: '{iifs}' }}
      badge: {{ expr: 'Redact(person.custom.badge)' }}
      badgeUpper: {{ expr: 'ToUpper(Append(Redact(person.custom.badge), "-x"))' }}
"#,
        deep = nested(depth),
    )
}

async fn host() -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rule_set(MAX_DEPTH - 1)
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = \
            [\"employeeId\"]\n",
    );
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "sandbox"],
    })
    .await
}

/// An attribute's value, from the API's `{name, value}` list or the sandbox's `[name, value]` pairs.
fn attribute(account: &Value, name: &str) -> Value {
    account["attributes"]
        .as_array()
        .and_then(|a| {
            a.iter().find_map(|x| match x {
                Value::Array(pair) if pair.first() == Some(&json!(name)) => pair.get(1).cloned(),
                Value::Object(_) if x["name"] == name => Some(x["value"].clone()),
                _ => None,
            })
        })
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn limits_entra_syntax_and_redaction_hold_in_the_plugin() {
    let h = host().await;
    let person = json!({ "ids": [{"source": "hr", "id": "71"}], "given_name": "Adaline",
        "family_name": "Byron",
                         "department": "Research", "custom": { "badge": SECRET } });
    let event = json!({ "kind": "joiner", "source": "hr", "source_record_id": "hire-71", "person": person });
    let (status, body) = h.post_event(&event, "hire-71").await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(WAIT).await;

    // Applied: the deepest nesting, the longest chain and the IIF guards ran in the sandbox.
    let accounts = h.sandbox_accounts().await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    let account = &accounts[0];
    let text = |v: &str| json!({ "Text": v });
    assert_eq!(attribute(account, "deep"), text("Ada"), "{account}");
    assert_eq!(
        attribute(account, "chain"),
        json!({ "Number": MAX_OPERATORS }),
        "{account}"
    );
    assert_eq!(attribute(account, "guarded"), text("Research"));
    assert_eq!(attribute(account, "displayName"), text("Adaline Byron"));
    assert_eq!(attribute(account, "company"), text("Acme"));
    // The redacted value reaches the destination, nested or not; the marker list does not.
    assert_eq!(attribute(account, "badge"), text(SECRET));
    assert_eq!(attribute(account, "badgeUpper"), text(&format!("{SECRET}-X")));
    assert!(!account.to_string().contains("$redacted"), "{account}");

    // ...but no audit entry shows it, and the audit says it was there.
    let audit = h.audit(Some("hr:71")).await;
    let evaluated = audit
        .iter()
        .find(|e| e["kind"] == "rules.evaluated")
        .expect("rules.evaluated");
    let outputs = &evaluated["data"]["outputs"][0]["attributes"];
    assert_eq!(outputs["badge"], text("[redacted]"), "{evaluated}");
    assert_eq!(outputs["badgeUpper"], text("[redacted]"), "{evaluated}");
    let all = serde_json::to_string(&audit).unwrap_or_default();
    assert!(!all.contains(SECRET) && !all.contains(SECRET_CORE), "{all}");

    // Nor does the preview (desired, current, trace).
    let (status, preview) = h
        .post(
            "/api/v1/preview",
            &json!({ "source": "hr", "source_record_id": "hire-71" }),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert!(!preview.to_string().contains(SECRET_CORE), "{preview}");
    let desired = &preview["destinations"][0]["desired"];
    assert_eq!(attribute(desired, "badge"), text("[redacted]"), "{preview}");
    assert_eq!(
        attribute(&preview["destinations"][0]["current"], "badge"),
        text("[redacted]")
    );

    // One level deeper is refused when the draft is checked: the field and the position.
    let (status, body) = h
        .request(
            Method::POST,
            "/api/v1/rule-sets",
            IT_TOKEN,
            Some(&json!({ "document": rule_set(MAX_DEPTH + 1), "message": "too deep" })),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("destinations.sandbox.attributes.deep.expr: line 1, column")
            && reason.contains("nested more than"),
        "{body}"
    );

    // An impact preview of a changed badge rule (against the published one) masks the value too.
    let (status, body) = h
        .request(
            Method::POST,
            "/api/v1/rule-sets",
            IT_TOKEN,
            Some(&json!({ "document": rule_set(MAX_DEPTH - 1), "message": "as configured" })),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"]["version"].as_i64().unwrap_or_default();
    let (status, body) = h
        .request(
            Method::POST,
            &format!("/api/v1/rule-sets/{version}/publish"),
            IT_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let changed = rule_set(MAX_DEPTH - 1).replace(
        "badge: { expr: 'Redact(person.custom.badge)' }",
        "badge: { expr: 'Redact(Append(person.custom.badge, \"-2\"))' }",
    );
    let (status, body) = h
        .request(
            Method::POST,
            "/api/v1/rule-sets",
            IT_TOKEN,
            Some(&json!({ "document": changed, "message": "badge suffix" })),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(SECRET_CORE), "{body}");
    let version = body["version"]["version"].as_i64().unwrap_or_default();
    let (status, impact) = h
        .request(
            Method::GET,
            &format!("/api/v1/rule-sets/{version}/impact"),
            IT_TOKEN,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{impact}");
    let shown = impact.to_string();
    assert!(
        shown.contains("badge: [redacted] changes") && !shown.contains(SECRET_CORE),
        "{impact}"
    );
    h.stop().await;
}

/// Every shape of expression that recurses in the parser or the evaluator, at sizes
/// around the limits and far past them: inside the plugin (128 KiB of stack), each
/// evaluates or is refused with an error; none traps. Without the limits, nesting
/// trapped from 33 levels (comprehensions) to 52 (parentheses), access chains at 66,
/// `==` chains at 269 and `+` chains at 367.
#[test]
fn no_expression_shape_traps_the_plugin() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let harness = Harness::new().expect("runtime");
    harness.load("rules").expect("plugins/build.sh has run");
    let person =
        person_from_json(json!({"ids": [{"source": "hr", "id": "1"}], "given_name": "Ada"})).expect("person");
    let ctx =
        context_from_json(json!({"destinations": ["d"], "trace": "Matched", "now_ms": 0})).expect("context");
    #[allow(clippy::type_complexity)]
    let shapes: Vec<(&str, &str, Box<dyn Fn(usize) -> String>)> = vec![
        (
            "Left( nesting",
            "expr",
            Box::new(|n| format!("{}person.given_name{}", "Left(".repeat(n), ", 3)".repeat(n))),
        ),
        (
            "Left( custom",
            "expr",
            Box::new(|n| format!("{}person.custom.q{}", "Left(".repeat(n), ", 3)".repeat(n))),
        ),
        (
            "IIF nesting",
            "expr",
            Box::new(|n| {
                format!(
                    "{}person.given_name{}",
                    "IIF(IsPresent(person.custom.x), \"x\", ".repeat(n),
                    ")".repeat(n)
                )
            }),
        ),
        (
            "Switch nesting",
            "expr",
            Box::new(|n| {
                format!(
                    "{}person.given_name{}",
                    "Switch(person.custom.x, \"d\", \"a\", ".repeat(n),
                    ")".repeat(n)
                )
            }),
        ),
        (
            "Replace7 nesting",
            "expr",
            Box::new(|n| {
                format!(
                    "{}person.given_name{}",
                    "Replace(".repeat(n),
                    ", null, \"a\", null, \"b\", null, null)".repeat(n)
                )
            }),
        ),
        (
            "parens",
            "expr",
            Box::new(|n| format!("{}1{}", "(".repeat(n), ")".repeat(n))),
        ),
        (
            "list nesting",
            "expr",
            Box::new(|n| format!("size({}1{})", "[".repeat(n), "]".repeat(n))),
        ),
        (
            "map nesting",
            "expr",
            Box::new(|n| format!("size({}1{})", "{\"a\": ".repeat(n), "}".repeat(n))),
        ),
        (
            "exists nesting",
            "expr",
            Box::new(|n| format!("{}true{}", "[1].exists(x, ".repeat(n), ")".repeat(n))),
        ),
        (
            "size nesting",
            "expr",
            Box::new(|n| format!("{}\"a\"{}", "string(".repeat(n), ")".repeat(n))),
        ),
        ("+ chain", "expr", Box::new(|n| vec!["1"; n + 1].join(" + "))),
        (
            "+ str chain",
            "expr",
            Box::new(|n| vec!["person.given_name"; n + 1].join(" + ")),
        ),
        ("&& chain", "expr", Box::new(|n| vec!["true"; n + 1].join(" && "))),
        ("== chain", "expr", Box::new(|n| vec!["true"; n + 1].join(" == "))),
        ("! chain", "expr", Box::new(|n| format!("{}true", "!".repeat(n)))),
        ("- chain", "expr", Box::new(|n| format!("{}1", "-".repeat(n)))),
        (
            "member chain",
            "expr",
            Box::new(|n| format!("{{\"a\": 1}}{}", ".a".repeat(n))),
        ),
        (
            "index chain",
            "expr",
            Box::new(|n| format!("[1]{}", "[0]".repeat(n))),
        ),
        (
            "ternary chain",
            "expr",
            Box::new(|n| format!("{}1", "false ? 0 : ".repeat(n))),
        ),
        (
            "ternary nest",
            "expr",
            Box::new(|n| format!("{}1{}", "(false ? 0 : ".repeat(n), ")".repeat(n))),
        ),
        (
            "entra IIF",
            "entra",
            Box::new(|n| {
                format!(
                    "{}[givenName]{}",
                    "IIF(IsPresent([x]), \"x\", ".repeat(n),
                    ")".repeat(n)
                )
            }),
        ),
        (
            "entra Switch",
            "entra",
            Box::new(|n| {
                format!(
                    "{}[givenName]{}",
                    "Switch([x], \"d\", \"a\", ".repeat(n),
                    ")".repeat(n)
                )
            }),
        ),
        (
            "entra Left",
            "entra",
            Box::new(|n| format!("{}[givenName]{}", "Left(".repeat(n), ", 3)".repeat(n))),
        ),
        (
            "entra eq chain",
            "entra",
            Box::new(|n| format!("IIF({}, 1, 2)", vec!["[x] = \"a\""; n + 1].join(" = "))),
        ),
    ];
    let sizes = [
        MAX_DEPTH - 1,
        MAX_DEPTH,
        MAX_DEPTH + 1,
        MAX_CHAIN + 1,
        2 * MAX_DEPTH,
        70,
        MAX_OPERATORS,
        MAX_OPERATORS + 1,
        400,
        1000,
    ];
    let mut tenants = 0;
    let mut evaluated = 0;
    for (name, kind, make) in &shapes {
        for n in sizes {
            tenants += 1;
            let doc = format!(
                "destinations:\n  d:\n    attributes:\n      x: {{ {kind}: {} }}\n",
                serde_json::to_string(&make(n)).unwrap_or_default()
            );
            let tenant = format!("t{tenants}");
            harness.tenant_with_rule_set(&tenant, "rules", &doc);
            let handle = harness.runtime().plugin(&tenant, "rules").expect("handle");
            match rt.block_on(handle.evaluate(&person, &ctx)) {
                Ok(_) => evaluated += 1,
                Err(e) => {
                    let e = e.to_string();
                    assert!(!e.contains("trapped"), "{name} at {n}: {e}");
                }
            }
        }
    }
    // Both sides of the limits were reached.
    assert!(
        evaluated > shapes.len() && evaluated < tenants,
        "{evaluated} of {tenants}"
    );
}
