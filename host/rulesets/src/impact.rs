//! Impact preview: evaluate a draft and the current rule set for every known
//! person and show, per destination, how many would change and how, and the
//! per-person differences (who gains or loses which group, who moves, who would
//! be disabled or lose their account). Evaluation only: nothing is written.

use crate::RuleSetError;
use serde::Serialize;
use std::collections::BTreeMap;
use tenure_pipeline::now_ms;
use tenure_runtime::{PluginHandle, wit};
use tenure_store::EventRow;

/// Which versions are compared.
pub struct Labels {
    pub version: i64,
    pub against: Option<i64>,
}

/// One person's changes in one destination.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PersonChange {
    pub person_key: String,
    pub changes: Vec<String>,
}

/// One destination's impact.
#[derive(Debug, Default, Serialize)]
pub struct DestinationImpact {
    /// Change type -> number of people: `account-created`, `account-removed`,
    /// `disabled`, `enabled`, `moved`, `group-added`, `group-removed`,
    /// `license-added`, `license-removed`, `app-added`, `app-removed`,
    /// `attribute-changed`, `expiry-changed`, `ticket-added`, `unchanged`.
    pub counts: BTreeMap<String, usize>,
    pub people: Vec<PersonChange>,
}

/// A person the draft (or the current version) could not evaluate.
#[derive(Debug, Serialize)]
pub struct PersonError {
    pub person_key: String,
    pub version: String,
    pub error: String,
}

/// The whole impact preview.
#[derive(Debug, Serialize)]
pub struct ImpactReport {
    pub version: i64,
    /// The version compared against (the current one), if any.
    pub against: Option<i64>,
    pub people: usize,
    pub destinations: BTreeMap<String, DestinationImpact>,
    pub errors: Vec<PersonError>,
}

fn set_changes(label: &str, before: &[String], after: &[String], out: &mut Vec<(String, String)>) {
    for x in after.iter().filter(|x| !before.contains(x)) {
        out.push((format!("{label}-added"), format!("+{label} {x}")));
    }
    for x in before.iter().filter(|x| !after.contains(x)) {
        out.push((format!("{label}-removed"), format!("-{label} {x}")));
    }
}

fn show(v: &wit::Value) -> String {
    match v {
        wit::Value::Absent => "(none)".into(),
        wit::Value::Text(t) => format!("{t:?}"),
        wit::Value::Many(m) => format!("{m:?}"),
        wit::Value::Number(n) => n.to_string(),
        wit::Value::Flag(b) => b.to_string(),
    }
}

/// The differences between two desired accounts: (change type, description).
pub fn diff_accounts(
    before: Option<&wit::DesiredAccount>,
    after: Option<&wit::DesiredAccount>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match (before, after) {
        (None, None) => {}
        (None, Some(a)) => out.push((
            "account-created".into(),
            format!(
                "gains an account{}",
                a.container
                    .as_ref()
                    .map(|c| format!(" in {c}"))
                    .unwrap_or_default()
            ),
        )),
        (Some(_), None) => out.push((
            "account-removed".into(),
            "leaves scope: the account would be deprovisioned".into(),
        )),
        (Some(b), Some(a)) => {
            if b.enabled && !a.enabled {
                out.push(("disabled".into(), "would be disabled".into()));
            } else if !b.enabled && a.enabled {
                out.push(("enabled".into(), "would be enabled".into()));
            }
            if b.container != a.container {
                out.push((
                    "moved".into(),
                    format!(
                        "moves {} -> {}",
                        b.container.as_deref().unwrap_or("(none)"),
                        a.container.as_deref().unwrap_or("(none)")
                    ),
                ));
            }
            set_changes("group", &b.groups, &a.groups, &mut out);
            set_changes("license", &b.licenses, &a.licenses, &mut out);
            set_changes("app", &b.app_assignments, &a.app_assignments, &mut out);
            let mut names: Vec<&str> = b
                .attributes
                .iter()
                .chain(&a.attributes)
                .map(|x| x.name.as_str())
                .collect();
            names.sort();
            names.dedup();
            let mut redacted = tenure_pipeline::redaction::redacted_names(b);
            redacted.extend(tenure_pipeline::redaction::redacted_names(a));
            for name in names
                .into_iter()
                .filter(|n| *n != tenure_pipeline::redaction::REDACTED)
            {
                let get = |d: &wit::DesiredAccount| {
                    d.attributes
                        .iter()
                        .find(|x| x.name == name)
                        .map(|x| x.value.clone())
                        .unwrap_or(wit::Value::Absent)
                };
                let (x, y) = (get(b), get(a));
                if x != y {
                    let detail = if redacted.iter().any(|r| r == name) {
                        format!("{name}: {} changes", tenure_pipeline::redaction::MASK)
                    } else {
                        format!("{name}: {} -> {}", show(&x), show(&y))
                    };
                    out.push(("attribute-changed".into(), detail));
                }
            }
            if b.expires_at != a.expires_at {
                out.push((
                    "expiry-changed".into(),
                    format!("expiry {:?} -> {:?}", b.expires_at, a.expires_at),
                ));
            }
            let templates =
                |d: &wit::DesiredAccount| d.tickets.iter().map(|t| t.template.clone()).collect::<Vec<_>>();
            for t in templates(a).iter().filter(|t| !templates(b).contains(t)) {
                out.push(("ticket-added".into(), format!("+ticket {t}")));
            }
        }
    }
    out
}

/// Evaluates every stored person under both handles and compares.
pub async fn compare(
    live: &PluginHandle,
    candidate: &PluginHandle,
    events: &[EventRow],
    destinations: &[String],
    labels: Labels,
) -> Result<ImpactReport, RuleSetError> {
    let now = now_ms();
    let mut report = ImpactReport {
        version: labels.version,
        against: labels.against,
        people: 0,
        destinations: destinations
            .iter()
            .map(|d| (d.clone(), DestinationImpact::default()))
            .collect(),
        errors: Vec::new(),
    };
    for row in events {
        let Ok(event) = serde_json::from_str::<wit::PersonEvent>(&row.body) else {
            report.errors.push(PersonError {
                person_key: row.person_key.clone(),
                version: "stored event".into(),
                error: "the stored event cannot be read".into(),
            });
            continue;
        };
        report.people += 1;
        let context = wit::rules::Context {
            event: event.kind,
            destinations: destinations.to_vec(),
            now_ms: now,
            trace: wit::rules::TraceLevel::None,
        };
        let before = match labels.against {
            Some(_) => match live.evaluate(&event.person, &context).await {
                Ok(e) => Some(e),
                Err(e) => {
                    report.errors.push(PersonError {
                        person_key: row.person_key.clone(),
                        version: "current".into(),
                        error: e.to_string(),
                    });
                    None
                }
            },
            None => None,
        };
        let after = match candidate.evaluate(&event.person, &context).await {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(PersonError {
                    person_key: row.person_key.clone(),
                    version: labels.version.to_string(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        for dest in destinations {
            let b = before
                .as_ref()
                .and_then(|e| e.accounts.iter().find(|a| &a.destination == dest));
            let a = after.accounts.iter().find(|a| &a.destination == dest);
            let changes = diff_accounts(b, a);
            let Some(impact) = report.destinations.get_mut(dest) else {
                continue;
            };
            if changes.is_empty() {
                *impact.counts.entry("unchanged".into()).or_insert(0) += 1;
                continue;
            }
            let mut kinds: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            for k in kinds {
                *impact.counts.entry(k.to_string()).or_insert(0) += 1;
            }
            impact.people.push(PersonChange {
                person_key: row.person_key.clone(),
                changes: changes.into_iter().map(|(_, d)| d).collect(),
            });
        }
    }
    Ok(report)
}
