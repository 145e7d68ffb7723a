//! A connector version in plan-only shadow: for every person, the desired state from the
//! tenant's active rules, then each destination the connector serves looked up and planned
//! twice, through the active version and through the candidate, and the two compared. The
//! candidate only describes and looks up: its handle may read over HTTP and LDAP and keeps its
//! key-value writes to itself ([`tenure_runtime::Runtime::candidate`]), and nothing is applied.

use crate::desired::{Mode, Names, Subject};
use crate::reconcile::PEOPLE_PAGE;
use crate::resolve::{Resolved, resolve, resolve_with};
use crate::{Pipeline, PipelineError, plan};
use serde::Serialize;
use std::collections::BTreeMap;
use tenure_runtime::{PluginHandle, wit};

/// How far a shadow run goes.
#[derive(Debug, Clone, Copy)]
pub struct ShadowLimits {
    /// The most people compared; None: everyone the tenant has events for.
    pub people: Option<usize>,
    /// The most differences listed (counts are never cut).
    pub detail: usize,
}

/// What one version found and would do for one person in one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlanSide {
    /// The account it would plan against (its anchor), a conflict, or nothing.
    pub found: String,
    /// The planned operations, described (`create`, `add-member eng`, `update mail -> "a@b"`).
    pub operations: Vec<String>,
    /// The lookup failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A person and destination for which the two versions disagree.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanDifference {
    pub person_key: String,
    pub destination: String,
    pub active: PlanSide,
    pub candidate: PlanSide,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConnectorShadowReport {
    pub plugin: String,
    pub version: String,
    /// The active version compared against.
    pub against: String,
    /// People whose desired state was computed.
    pub people: usize,
    /// Person and destination pairs planned by both versions.
    pub compared: usize,
    pub same: usize,
    pub different: usize,
    /// Pairs where the candidate failed and the active version did not.
    pub candidate_errors: usize,
    /// People the rules could not evaluate (nothing to compare).
    pub rule_errors: usize,
    /// Stopped at `limits.people`.
    pub truncated: bool,
    /// Counts of differences per destination.
    pub by_destination: BTreeMap<String, usize>,
    /// The first `limits.detail` differences.
    pub differences: Vec<PlanDifference>,
    pub differences_not_listed: usize,
}

impl Pipeline {
    /// Compares `candidate` (a connector version not yet active) with the active version of the
    /// same plugin for every person, plan against plan; writes nothing.
    pub async fn connector_shadow(
        &self,
        tenant_name: &str,
        candidate: &PluginHandle,
        limits: ShadowLimits,
    ) -> Result<ConnectorShadowReport, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let plugin = candidate.plugin().to_string();
        let active = self.runtime.plugin(tenant_name, &plugin)?;
        let rules = self.runtime.plugin(tenant_name, &tenant.rules)?;
        let mut report = ConnectorShadowReport {
            plugin: plugin.clone(),
            version: candidate.version().to_string(),
            against: active.version().to_string(),
            people: 0,
            compared: 0,
            same: 0,
            different: 0,
            candidate_errors: 0,
            rule_errors: 0,
            truncated: false,
            by_destination: BTreeMap::new(),
            differences: Vec::new(),
            differences_not_listed: 0,
        };
        let mut after: Option<String> = None;
        'pages: loop {
            let page = self
                .store
                .known_people(tenant_name, after.as_deref(), PEOPLE_PAGE)
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for person_key in &page {
                if limits.people.is_some_and(|max| report.people >= max) {
                    report.truncated = true;
                    break 'pages;
                }
                report.people += 1;
                self.shadow_person(tenant_name, &rules, candidate, person_key, limits, &mut report)
                    .await?;
            }
            after = Some(last);
        }
        Ok(report)
    }

    async fn shadow_person(
        &self,
        tenant_name: &str,
        rules: &PluginHandle,
        candidate: &PluginHandle,
        person_key: &str,
        limits: ShadowLimits,
        report: &mut ConnectorShadowReport,
    ) -> Result<(), PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let Some(now) = self.person_now(tenant_name, person_key).await? else {
            return Ok(());
        };
        let mut subject = Subject {
            tenant_name,
            tenant,
            person_key,
            person: now.person,
            event: wit::EventKind::Update,
            state: now.state,
            life: &now.life,
            now_ms: now.now_ms,
        };
        let mode = Mode {
            trace: wit::rules::TraceLevel::None,
            names: Names::Peek,
        };
        let Ok(desired) = self.desired_state(rules, &mut subject, mode).await else {
            report.rule_errors += 1;
            return Ok(());
        };
        for target in desired.targets.iter().flatten() {
            let dest = &*target.dest;
            if dest.connector != report.plugin {
                continue;
            }
            let want = target.desired.as_ref();
            let side = |r: Result<Resolved, crate::Failure>| match r {
                Err(f) => PlanSide {
                    found: String::new(),
                    operations: vec![],
                    error: Some(format!("{}: {}", f.class, f.message)),
                },
                Ok(r) => {
                    let (current, link, wanted) = r.plan_inputs(want, &target.unique);
                    let planned = crate::desired::plan_target(
                        dest,
                        wanted.as_ref(),
                        current.as_ref(),
                        link.as_ref(),
                        &r.caps,
                        now.state,
                        &now.life,
                    );
                    PlanSide {
                        found: found(&r, current.as_ref()),
                        operations: planned.operations.iter().map(plan::describe).collect(),
                        error: None,
                    }
                }
            };
            let active = side(resolve(self, tenant_name, dest, person_key, want, None).await);
            let shadow =
                resolve_with(self, tenant_name, dest, person_key, want, None, candidate.clone()).await;
            let shadow = side(shadow);
            report.compared += 1;
            if active == shadow {
                report.same += 1;
                continue;
            }
            report.different += 1;
            if shadow.error.is_some() && active.error.is_none() {
                report.candidate_errors += 1;
            }
            *report.by_destination.entry(dest.name.clone()).or_default() += 1;
            if report.differences.len() < limits.detail {
                report.differences.push(PlanDifference {
                    person_key: person_key.to_string(),
                    destination: dest.name.clone(),
                    active,
                    candidate: shadow,
                });
            } else {
                report.differences_not_listed += 1;
            }
        }
        Ok(())
    }
}

/// What a lookup settled on, in words.
fn found(r: &Resolved, current: Option<&wit::Account>) -> String {
    use crate::resolve::Match;
    match (&r.matched, current) {
        (Match::Conflict { kind, candidates }, _) => format!("{kind} conflict: {}", candidates.join(", ")),
        (Match::Skip { why }, _) => format!("skipped: {why}"),
        (_, Some(account)) => account.anchor.clone(),
        (_, None) => "none".into(),
    }
}
