//! Impact preview: evaluate a draft and the current rule set for every known
//! person and show, per destination, how many would change and how, and the
//! per-person differences (who gains or loses which group, who moves, who would
//! be disabled or lose their account). Both go through the pipeline's
//! desired-state path (the merged record, shaped by the person's state, names
//! looked up), so the impact is what publishing would do. Nothing is written.

use serde::Serialize;
use std::collections::BTreeMap;
use tenure_pipeline::Pipeline;
use tenure_pipeline::desired::DesiredView;
use tenure_runtime::{PluginHandle, wit};

/// Which versions are compared: rule-set versions (numbers) or plugin versions (labels).
pub struct Labels<L> {
    pub version: L,
    pub against: Option<L>,
}

/// One person's changes in one destination.
#[derive(Debug, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct PersonChange {
    pub person_key: String,
    pub changes: Vec<String>,
}

/// One destination's impact.
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
pub struct DestinationImpact {
    /// Change type -> number of people: `account-created`, `account-removed`,
    /// `disabled`, `enabled`, `moved`, `group-added`, `group-removed`,
    /// `license-added`, `license-removed`, `app-added`, `app-removed`,
    /// `attribute-changed`, `expiry-changed`, `ticket-added`, `unchanged`.
    /// Counts cover every person evaluated.
    pub counts: BTreeMap<String, usize>,
    /// The people who change, at most the report's `detail_limit` of them.
    pub people: Vec<PersonChange>,
    /// People who change but are not listed (beyond `detail_limit`).
    pub people_not_listed: usize,
}

/// A person the draft (or the current version) could not evaluate.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PersonError {
    pub person_key: String,
    pub version: String,
    pub error: String,
}

/// How far an impact preview goes.
#[derive(Debug, Clone, Copy)]
pub struct ImpactLimits {
    /// The most people evaluated; None: everyone the tenant has events for.
    pub people: Option<usize>,
    /// The most people (and errors) listed per destination; counts are never cut.
    pub detail: usize,
}

/// The whole impact preview.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ImpactReport_{L}")]
pub struct ImpactReport<L = i64> {
    pub version: L,
    /// The version compared against (the current one), if any.
    pub against: Option<L>,
    /// People evaluated (everyone in scope of the draft).
    pub people: usize,
    /// The limit on people asked for, if any.
    pub people_limit: Option<usize>,
    /// True when `people_limit` stopped the preview before everyone was evaluated.
    pub truncated: bool,
    /// The most people listed per destination (and errors listed).
    pub detail_limit: usize,
    pub destinations: BTreeMap<String, DestinationImpact>,
    pub errors: Vec<PersonError>,
    /// Errors beyond `detail_limit`, counted but not listed.
    pub errors_not_listed: usize,
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
    redacted: &[String],
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
            for name in names {
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

impl<L: std::fmt::Display> ImpactReport<L> {
    /// An empty report over `destinations`.
    pub fn new(labels: Labels<L>, destinations: &[String], limits: ImpactLimits) -> Self {
        ImpactReport {
            version: labels.version,
            against: labels.against,
            people: 0,
            people_limit: limits.people,
            truncated: false,
            detail_limit: limits.detail,
            destinations: destinations
                .iter()
                .map(|d| (d.clone(), DestinationImpact::default()))
                .collect(),
            errors: Vec::new(),
            errors_not_listed: 0,
        }
    }

    fn error(&mut self, person_key: &str, version: String, e: tenure_pipeline::PipelineError) {
        if self.errors.len() < self.detail_limit {
            self.errors.push(PersonError {
                person_key: person_key.into(),
                version,
                error: e.to_string(),
            });
        } else {
            self.errors_not_listed += 1;
        }
    }

    /// One person's desired accounts under both handles, compared and counted.
    pub async fn add(
        &mut self,
        pipeline: &Pipeline,
        tenant: &str,
        handles: (&PluginHandle, &PluginHandle),
        person_key: &str,
    ) {
        let (live, candidate) = handles;
        let against = self.against.as_ref().map(|v| v.to_string());
        let before = match against {
            Some(v) => match pipeline.desired_now(tenant, person_key, live).await {
                Ok(d) => d,
                Err(e) => {
                    self.error(person_key, v, e);
                    None
                }
            },
            None => None,
        };
        let after = match pipeline.desired_now(tenant, person_key, candidate).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                self.error(person_key, self.version.to_string(), e);
                return;
            }
        };
        self.people += 1;
        let find = |views: &[DesiredView], dest: &str| views.iter().find(|v| v.destination == dest).cloned();
        let detail_limit = self.detail_limit;
        for (dest, impact) in self.destinations.iter_mut() {
            let b = before.as_deref().and_then(|v| find(v, dest));
            let a = find(&after, dest);
            let mut redacted: Vec<String> = b.as_ref().map(|v| v.redacted.clone()).unwrap_or_default();
            redacted.extend(a.as_ref().map(|v| v.redacted.clone()).unwrap_or_default());
            let changes = diff_accounts(
                b.as_ref().and_then(|v| v.desired.as_ref()),
                a.as_ref().and_then(|v| v.desired.as_ref()),
                &redacted,
            );
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
            if impact.people.len() < detail_limit {
                impact.people.push(PersonChange {
                    person_key: person_key.into(),
                    changes: changes.into_iter().map(|(_, d)| d).collect(),
                });
            } else {
                impact.people_not_listed += 1;
            }
        }
    }
}
