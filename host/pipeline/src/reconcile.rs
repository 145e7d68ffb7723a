//! Reconciliation: every person's desired state (rules, shaped by their
//! lifecycle state now) against what each destination actually holds.
//!
//! Drift is reported (extra or missing groups, missing accounts, enabled
//! leavers, wrong containers, attribute changes made by hand). Where a
//! destination's policy is `repair`, the person gets a job through the normal
//! pipeline (planned, guarded, applied and audited like any other), so a
//! repair can never do what an event could not. Groups granted outside Tenure
//! are reported, never removed.
//!
//! The same pass lists who holds which account and group and which rule grants
//! it: the periodic access review auditors ask for.

use crate::audit_events::{AuditEvent, ReconcileCompleted};
use crate::desired::{self, Mode, Names, Subject};
use crate::lifecycle::State;
use crate::plan;
use crate::resolve::resolve;
use crate::{Pipeline, PipelineError, ReconcileMode};
use serde::{Deserialize, Serialize};
use tenure_runtime::wit;
use tenure_store::{NewEvent, OperationKind, RecordKind, ReportKind};

/// What to reconcile.
#[derive(Debug, Clone, Default)]
pub struct ReconcileRequest {
    /// One destination, or all.
    pub destination: Option<String>,
    /// Report only, whatever the destinations' policies say.
    pub dry_run: bool,
    /// Who asked (`scheduler` or the API caller).
    pub actor: String,
}

/// One difference between desired and actual.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Drift {
    pub person_key: String,
    pub destination: String,
    /// `missing-account`, `missing-group`, `extra-group`, `unmanaged-group`,
    /// `enabled-leaver`, `enabled-too-early`, `disabled`, `container`, `attributes`,
    /// `should-be-deleted`, `error`.
    pub kind: String,
    pub detail: String,
    pub anchor: Option<String>,
    /// Whether a repair job puts it right (unmanaged groups never are).
    pub repairable: bool,
}

/// One line of the access review: a person's account and one group it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessRow {
    pub person_key: String,
    pub state: String,
    pub destination: String,
    pub anchor: String,
    pub enabled: bool,
    /// Empty for the account line itself.
    pub group: String,
    /// Granted by Tenure (else by hand, outside the rules).
    pub managed: bool,
    /// The rules that grant it (`defaults` for the rule set's defaults).
    pub granted_by: Vec<String>,
}

/// A reconciliation run: counts, drift and the repairs queued (the access review is
/// its own export, [`Pipeline::access_review_page`], so a stored report stays small).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReconcileReport {
    pub id: i64,
    pub tenant: String,
    pub actor: String,
    pub dry_run: bool,
    pub started_ms: i64,
    pub finished_ms: i64,
    pub people: usize,
    pub accounts: usize,
    pub drift: Vec<Drift>,
    /// People for whom a repair job was queued.
    pub repairs: Vec<String>,
}

impl ReconcileReport {
    /// Counts per drift kind.
    pub fn summary(&self) -> serde_json::Value {
        let mut by_kind = serde_json::Map::new();
        for d in &self.drift {
            let n = by_kind.get(&d.kind).and_then(|v| v.as_u64()).unwrap_or(0) + 1;
            by_kind.insert(d.kind.clone(), n.into());
        }
        serde_json::json!({ "people": self.people, "accounts": self.accounts, "drift": self.drift.len(),
                            "by_kind": by_kind, "repairs": self.repairs.len(), "dry_run": self.dry_run })
    }
}

/// The access review's CSV header.
pub const ACCESS_CSV_HEADER: &str = "person_key,state,destination,anchor,enabled,group,managed,granted_by\n";

impl AccessRow {
    /// The row as one CSV line (formulas neutralised).
    pub fn csv_line(&self) -> String {
        let fields = [
            self.person_key.as_str(),
            self.state.as_str(),
            self.destination.as_str(),
            self.anchor.as_str(),
            if self.enabled { "true" } else { "false" },
            self.group.as_str(),
            if self.managed { "true" } else { "false" },
            &self.granted_by.join(";"),
        ];
        let mut line: String = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
        line.push('\n');
        line
    }
}

/// One page of the access review, and where the next one starts.
#[derive(Debug, Default)]
pub struct AccessPage {
    pub rows: Vec<AccessRow>,
    /// The last person of this page; None when the review is complete (this page was empty).
    pub next: Option<String>,
}

/// People read per page by a reconciliation or an access review (only one page of
/// people, their drift and their access rows is held at a time).
pub const PEOPLE_PAGE: usize = 200;

/// What one person's pass over the destinations found.
#[derive(Default)]
struct Inspection {
    drift: Vec<Drift>,
    access: Vec<AccessRow>,
    accounts: usize,
    /// A destination whose policy is `repair` holds repairable drift.
    wants_repair: bool,
    /// The newest record, which a repair job replays.
    record_body: String,
}

use tenure_store::audit::csv_field;

/// The rules that contributed a group, from the evaluation's trace.
fn granted_by(trace: &[wit::rules::TraceEntry], destination: &str, group: &str) -> Vec<String> {
    let labels = ["group", "distribution-list", "m365-group"].map(|l| format!("{l}:{group}"));
    trace
        .iter()
        .filter(|t| t.matched && t.destination == destination)
        .filter(|t| t.contributed.iter().any(|c| labels.contains(c)))
        .map(|t| t.rule.clone())
        .collect()
}

/// The drift an operation would put right.
fn drift_of(op: &plan::PlannedOp, state: State) -> &'static str {
    match op.kind {
        OperationKind::Create => "missing-account",
        OperationKind::AddMember => "missing-group",
        OperationKind::RemoveMember => "extra-group",
        OperationKind::Disable if state.is_gone() => "enabled-leaver",
        OperationKind::Disable => "enabled-too-early",
        OperationKind::Enable => "disabled",
        OperationKind::Move => "container",
        OperationKind::Update => "attributes",
        OperationKind::Delete => "should-be-deleted",
        OperationKind::OpenTicket => "other",
    }
}

impl Pipeline {
    /// Runs reconciliation for a tenant page by page over everyone Tenure knows,
    /// queues repairs as it goes and stores the report (drift only).
    pub async fn reconcile(
        &self,
        tenant_name: &str,
        req: ReconcileRequest,
    ) -> Result<ReconcileReport, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        self.check_destination(tenant_name, req.destination.as_deref())?;
        let started = self.now();
        let rules = self.runtime.plugin(tenant_name, &tenant.rules)?;
        let mut report = ReconcileReport {
            id: 0,
            tenant: tenant_name.into(),
            actor: req.actor.clone(),
            dry_run: req.dry_run,
            started_ms: started,
            finished_ms: 0,
            people: 0,
            accounts: 0,
            drift: Vec::new(),
            repairs: Vec::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .known_people(tenant_name, after.as_deref(), PEOPLE_PAGE)
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            report.people += page.len();
            let mut repairs = Vec::new();
            for person_key in &page {
                let only = req.destination.as_deref();
                let Some(found) = self.inspect(tenant_name, &rules, person_key, only, false).await? else {
                    continue;
                };
                report.accounts += found.accounts;
                report.drift.extend(found.drift);
                if found.wants_repair && !req.dry_run {
                    repairs.push(self.repair_event(
                        tenant_name,
                        &req.actor,
                        started,
                        person_key,
                        found.record_body,
                    ));
                }
            }
            // Repairs go through the pipeline like any event, a page at a time.
            if !repairs.is_empty() {
                report
                    .repairs
                    .extend(repairs.iter().map(|e| e.person_key.clone()));
                self.store.intake(repairs, None).await?;
                self.wake();
            }
            after = Some(last);
        }
        report.finished_ms = self.now();
        let summary = report.summary();
        let body = serde_json::to_value(&report).unwrap_or_default();
        report.id = self
            .store
            .put_report(
                tenant_name,
                ReportKind::Reconcile,
                summary.clone(),
                body,
                report.finished_ms,
                tenant.lifecycle.reconcile_reports_kept,
            )
            .await?;
        self.store
            .append_audit(vec![
                ReconcileCompleted {
                    report: report.id,
                    summary,
                    repairs: &report.repairs,
                }
                .record(tenant_name, &req.actor),
            ])
            .await?;
        if !report.drift.is_empty() {
            let destination = req
                .destination
                .clone()
                .unwrap_or_else(|| "every destination".into());
            let notice = crate::notify::Notice::new(
                crate::notify::NotifyOn::DriftFound,
                format!("report:{}", report.id),
                serde_json::json!({ "destination": destination, "drifted": report.drift.len(),
                    "report": report.id, "repairs": report.repairs.len() }),
            );
            self.notify(tenant_name, notice).await;
        }
        tracing::info!(
            tenant = tenant_name,
            report = report.id,
            drift = report.drift.len(),
            repairs = report.repairs.len(),
            "reconciliation finished"
        );
        Ok(report)
    }

    /// One page of the access review (who holds which account and group, and which
    /// rule grants it), read from the destinations now; `after` is the previous
    /// page's `next`.
    pub async fn access_review_page(
        &self,
        tenant_name: &str,
        destination: Option<&str>,
        after: Option<&str>,
    ) -> Result<AccessPage, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        self.check_destination(tenant_name, destination)?;
        let rules = self.runtime.plugin(tenant_name, &tenant.rules)?;
        let page = self.store.known_people(tenant_name, after, PEOPLE_PAGE).await?;
        let mut out = AccessPage {
            rows: Vec::new(),
            // Only an empty page ends the review.
            next: page.last().cloned(),
        };
        for person_key in &page {
            if let Some(found) = self
                .inspect(tenant_name, &rules, person_key, destination, true)
                .await?
            {
                out.rows.extend(found.access);
            }
        }
        Ok(out)
    }

    /// Refuses a destination the tenant does not have, naming the field.
    pub fn check_destination(&self, tenant_name: &str, only: Option<&str>) -> Result<(), PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        match only {
            Some(d) if !tenant.destinations.iter().any(|x| x.name == d) => Err(crate::InvalidEvent {
                field: "destination".into(),
                reason: format!("no destination {d:?}"),
            }
            .into()),
            _ => Ok(()),
        }
    }

    fn repair_event(
        &self,
        tenant: &str,
        actor: &str,
        started: i64,
        person_key: &str,
        body: String,
    ) -> NewEvent {
        let key = format!("reconcile:{started}:{person_key}");
        NewEvent {
            tenant: tenant.into(),
            source: crate::schedule::SOURCE.into(),
            idempotency_key: key.clone(),
            person_key: person_key.into(),
            kind: RecordKind::Reconcile,
            body,
            source_record_id: key,
            start_date: None,
            occurred_ms: None,
            actor: actor.into(),
            received_ms: self.now(),
            max_attempts: self.config.queue.max_attempts,
            link_keys: Vec::new(),
        }
    }

    /// One person's desired state (rules, shaped by their state now) against what
    /// each destination holds: the drift, and with `access` the access-review rows.
    /// None for someone with no readable record.
    async fn inspect(
        &self,
        tenant_name: &str,
        rules: &tenure_runtime::PluginHandle,
        person_key: &str,
        only: Option<&str>,
        access: bool,
    ) -> Result<Option<Inspection>, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let Some(now) = self.person_now(tenant_name, person_key).await? else {
            return Ok(None);
        };
        let (state, life) = (now.state, now.life);
        let mut out = Inspection {
            record_body: now.record.body,
            ..Inspection::default()
        };
        let mut subject = Subject {
            tenant_name,
            tenant,
            person_key,
            person: now.person,
            event: wit::EventKind::Update,
            state,
            life: &life,
            now_ms: now.now_ms,
        };
        let mode = Mode {
            trace: wit::rules::TraceLevel::Matched,
            names: Names::Peek,
        };
        let desired = match self.desired_state(rules, &mut subject, mode).await {
            Ok(d) => d,
            Err(e) => {
                out.drift.push(Drift {
                    person_key: person_key.into(),
                    destination: String::new(),
                    kind: "error".into(),
                    detail: format!("rules: {e}"),
                    anchor: None,
                    repairable: false,
                });
                return Ok(Some(out));
            }
        };
        for target in desired.targets.iter().flatten() {
            let dest = &*target.dest;
            if only.is_some_and(|d| d != dest.name) || dest.dry_run {
                continue;
            }
            // What the pipeline would find: the linked account, else a match or nothing.
            let r = match resolve(self, tenant_name, dest, person_key, target.desired.as_ref(), None).await {
                Ok(r) => r,
                Err(f) => {
                    out.drift.push(Drift {
                        person_key: person_key.into(),
                        destination: dest.name.clone(),
                        kind: "error".into(),
                        detail: format!("{}: {}", f.class, f.message),
                        anchor: None,
                        repairable: false,
                    });
                    continue;
                }
            };
            let (current, link, wanted) = r.plan_inputs(target.desired.as_ref(), &target.unique);
            let mut found = Vec::new();
            let p = desired::plan_target(
                dest,
                wanted.as_ref(),
                current.as_ref(),
                link.as_ref(),
                &r.caps,
                state,
                &life,
            );
            for op in p
                .operations
                .iter()
                .filter(|o| o.kind != OperationKind::OpenTicket)
            {
                found.push(Drift {
                    person_key: person_key.into(),
                    destination: dest.name.clone(),
                    kind: drift_of(op, state).into(),
                    detail: plan::describe(op),
                    anchor: current.as_ref().map(|a| a.anchor.clone()),
                    repairable: true,
                });
            }
            if let (Some(acc), Some(l)) = (&current, &link) {
                out.accounts += 1;
                let want: &[String] = wanted.as_ref().map(|d| d.groups.as_slice()).unwrap_or_default();
                for g in acc
                    .groups
                    .iter()
                    .filter(|g| !want.contains(g) && !l.managed_groups.contains(g))
                {
                    found.push(Drift {
                        person_key: person_key.into(),
                        destination: dest.name.clone(),
                        kind: "unmanaged-group".into(),
                        detail: format!("{g} was granted outside Tenure"),
                        anchor: Some(acc.anchor.clone()),
                        repairable: false,
                    });
                }
                if access {
                    let row = |group: &str, managed: bool, granted_by: Vec<String>| AccessRow {
                        person_key: person_key.into(),
                        state: state.as_str().into(),
                        destination: dest.name.clone(),
                        anchor: acc.anchor.clone(),
                        enabled: acc.enabled,
                        group: group.into(),
                        managed,
                        granted_by,
                    };
                    out.access.push(row("", true, Vec::new()));
                    for g in &acc.groups {
                        let by = granted_by(&desired.evaluation.trace, &dest.name, g);
                        out.access.push(row(g, l.managed_groups.contains(g), by));
                    }
                }
            }
            if dest.reconcile == ReconcileMode::Repair && found.iter().any(|d| d.repairable) {
                out.wants_repair = true;
            }
            out.drift.extend(found);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
