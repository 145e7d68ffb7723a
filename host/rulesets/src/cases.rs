//! Test cases carried by a rule set (`tests:`), run through whichever rules
//! plugin the tenant uses: a person record in, the expected accounts out.
//!
//! ```yaml
//! tests:
//!   - name: senior engineer
//!     event: joiner                      # optional, default joiner
//!     person: { ids: [{source: hr, id: "1"}], department: Engineering, ... }
//!     expect:
//!       ad:                              # or `absent`: no account (out of scope)
//!         container: OU=Eng,DC=acme,DC=test
//!         groups: [SG-Eng]               # exactly these (any order)
//!         groups_include: [SG-Eng]       # at least these
//!         groups_exclude: [SG-Sales]     # none of these
//!         licenses: [E5]
//!         apps: [GitHub]
//!         enabled: true
//!         expires_at: "2026-06-30T00:00:00Z"
//!         tickets: [contractor-nda]      # ticket templates
//!         attributes: { mail: a@b.test }
//!         unique: { sAMAccountName: [a.b, ab2] }   # naming candidates, in order
//!       error: destinations.ad.attributes.sn       # or: evaluation fails, mentioning this
//! ```

use crate::{RuleSetError, document_value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_pipeline::event::EventKindExt;
use tenure_pipeline::event::{EventKind, PersonIn, validate_person};
use tenure_runtime::{PluginHandle, wit};

/// One test case as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    event: Option<EventKind>,
    person: PersonIn,
    expect: BTreeMap<String, serde_json::Value>,
}

/// What one destination's account should look like.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExpectAccount {
    container: Option<String>,
    groups: Option<Vec<String>>,
    #[serde(default)]
    groups_include: Vec<String>,
    #[serde(default)]
    groups_exclude: Vec<String>,
    licenses: Option<Vec<String>>,
    apps: Option<Vec<String>>,
    enabled: Option<bool>,
    expires_at: Option<String>,
    tickets: Option<Vec<String>>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    unique: BTreeMap<String, Vec<String>>,
}

/// The outcome of one test case.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// What differed, one line each.
    pub failures: Vec<String>,
}

/// The outcome of all of a rule set's tests.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default, schemars::JsonSchema)]
pub struct TestReport {
    pub cases: Vec<CaseResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    /// A one-line summary: `6 passed, 0 failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

/// The document's test cases, checked for shape (errors name the case and field).
fn cases(doc: &serde_json::Value) -> Result<Vec<Case>, RuleSetError> {
    let Some(tests) = doc.get("tests") else {
        return Ok(Vec::new());
    };
    serde_path_to_error::deserialize::<_, Vec<Case>>(tests.clone()).map_err(|e| RuleSetError::Invalid {
        field: format!("tests{}", bracket_path(&e.path().to_string())),
        reason: e.into_inner().to_string(),
    })
}

fn bracket_path(p: &str) -> String {
    if p == "." {
        String::new()
    } else if p.starts_with('[') {
        p.to_string()
    } else {
        format!(".{p}")
    }
}

/// Runs the document's test cases through `rules` (a handle already configured
/// with this document). A rule set without tests gives an empty report.
pub async fn run(rules: &PluginHandle, document: &str, now_ms: i64) -> Result<TestReport, RuleSetError> {
    // The plugin accepted the document (its check runs first); one in a format of the
    // plugin's own (not YAML or JSON) carries no test cases the host can read.
    let Ok(doc) = document_value(document) else {
        return Ok(TestReport::default());
    };
    let all_destinations: Vec<String> = doc
        .get("destinations")
        .and_then(|d| d.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut report = TestReport::default();
    for (i, case) in cases(&doc)?.into_iter().enumerate() {
        let kind = case.event.unwrap_or(EventKind::Joiner);
        let person = validate_person("test", kind, case.person).map_err(|e| RuleSetError::Invalid {
            field: format!("tests[{i}].{}", e.field),
            reason: e.reason,
        })?;
        let mut destinations = all_destinations.clone();
        for d in case.expect.keys().filter(|k| *k != "error") {
            if !destinations.contains(d) {
                destinations.push(d.clone());
            }
        }
        let context = wit::rules::Context {
            event: kind.to_wit(),
            destinations,
            now_ms,
            trace: wit::rules::TraceLevel::None,
        };
        let failures = match rules.evaluate(&person, &context).await {
            Ok(evaluation) => compare(&case.expect, &evaluation)?,
            Err(e) => match case.expect.get("error").and_then(|v| v.as_str()) {
                Some(want) if e.to_string().contains(want) => Vec::new(),
                Some(want) => vec![format!("error {e} does not mention {want:?}")],
                None => vec![format!("evaluation failed: {e}")],
            },
        };
        report.cases.push(CaseResult {
            name: case.name,
            passed: failures.is_empty(),
            failures,
        });
    }
    Ok(report)
}

fn compare(
    expect: &BTreeMap<String, serde_json::Value>,
    e: &wit::rules::Evaluation,
) -> Result<Vec<String>, RuleSetError> {
    let mut out = Vec::new();
    for (dest, want) in expect {
        if dest == "error" {
            out.push(format!(
                "expected an error mentioning {want}, but the evaluation succeeded"
            ));
            continue;
        }
        let got = e.accounts.iter().find(|a| &a.destination == dest);
        if want.as_str() == Some("absent") {
            if got.is_some() {
                out.push(format!("{dest}: expected no account (out of scope), got one"));
            }
            continue;
        }
        let want: ExpectAccount =
            serde_path_to_error::deserialize(want.clone()).map_err(|err| RuleSetError::Invalid {
                field: format!("expect.{dest}{}", bracket_path(&err.path().to_string())),
                reason: err.into_inner().to_string(),
            })?;
        let Some(got) = got else {
            out.push(format!("{dest}: expected an account, got none (out of scope)"));
            continue;
        };
        compare_account(dest, &want, got, &mut out);
    }
    Ok(out)
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

fn value_json(v: &wit::Value) -> serde_json::Value {
    match v {
        wit::Value::Absent => serde_json::Value::Null,
        wit::Value::Text(t) => t.clone().into(),
        wit::Value::Many(m) => m.clone().into(),
        wit::Value::Number(n) => (*n).into(),
        wit::Value::Flag(b) => (*b).into(),
    }
}

fn compare_account(dest: &str, want: &ExpectAccount, got: &wit::DesiredAccount, out: &mut Vec<String>) {
    if let Some(c) = &want.container
        && got.container.as_deref() != Some(c.as_str())
    {
        out.push(format!(
            "{dest}.container: expected {c:?}, got {:?}",
            got.container
        ));
    }
    for (label, want, got) in [
        ("groups", &want.groups, &got.groups),
        ("licenses", &want.licenses, &got.licenses),
        ("apps", &want.apps, &got.app_assignments),
    ] {
        if let Some(w) = want
            && !same_set(w, got)
        {
            out.push(format!("{dest}.{label}: expected {w:?}, got {got:?}"));
        }
    }
    for g in &want.groups_include {
        if !got.groups.contains(g) {
            out.push(format!(
                "{dest}.groups: expected to include {g:?}, got {:?}",
                got.groups
            ));
        }
    }
    for g in &want.groups_exclude {
        if got.groups.contains(g) {
            out.push(format!(
                "{dest}.groups: expected not to include {g:?}, got {:?}",
                got.groups
            ));
        }
    }
    if let Some(e) = want.enabled
        && e != got.enabled
    {
        out.push(format!("{dest}.enabled: expected {e}, got {}", got.enabled));
    }
    if let Some(x) = &want.expires_at
        && got.expires_at.as_deref() != Some(x.as_str())
    {
        out.push(format!(
            "{dest}.expires_at: expected {x:?}, got {:?}",
            got.expires_at
        ));
    }
    if let Some(t) = &want.tickets {
        let templates: Vec<String> = got.tickets.iter().map(|t| t.template.clone()).collect();
        if !same_set(t, &templates) {
            out.push(format!("{dest}.tickets: expected {t:?}, got {templates:?}"));
        }
    }
    for (name, w) in &want.attributes {
        let g = got
            .attributes
            .iter()
            .find(|a| &a.name == name)
            .map(|a| value_json(&a.value))
            .unwrap_or(serde_json::Value::Null);
        let equal = g == *w
            || matches!((&g, w), (serde_json::Value::Number(n),
                serde_json::Value::String(s)) if n.to_string() == *s);
        if !equal {
            let redacted = tenure_pipeline::redaction::redacted_names(got);
            if redacted.contains(name) {
                out.push(format!(
                    "{dest}.attributes.{name}: expected {w}, got a different value (redacted)"
                ));
            } else {
                out.push(format!("{dest}.attributes.{name}: expected {w}, got {g}"));
            }
        }
    }
    for (name, w) in &want.unique {
        let key = format!("{}{name}", tenure_pipeline::naming::CANDIDATES);
        let g = got
            .attributes
            .iter()
            .find(|a| a.name == key)
            .map(|a| value_json(&a.value));
        if g.as_ref() != Some(&serde_json::json!(w)) {
            out.push(format!(
                "{dest}.unique.{name}: expected candidates {w:?}, got {}",
                g.unwrap_or_default()
            ));
        }
    }
}
