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
use crate::resolve::{Match, resolve};
use crate::{Pipeline, PipelineError, ReconcileMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// A reconciliation run.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub access: Vec<AccessRow>,
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

    /// The access review as CSV.
    pub fn access_csv(&self) -> String {
        let mut out = String::from("person_key,state,destination,anchor,enabled,group,managed,granted_by\n");
        for r in &self.access {
            let fields = [
                r.person_key.clone(),
                r.state.clone(),
                r.destination.clone(),
                r.anchor.clone(),
                r.enabled.to_string(),
                r.group.clone(),
                r.managed.to_string(),
                r.granted_by.join(";"),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
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

/// What an operation would change, for the report (attribute changes with their values).
fn describe(op: &plan::PlannedOp) -> String {
    match &op.op {
        wit::Operation::Update(c) => {
            let changes: Vec<String> = c
                .changes
                .iter()
                .map(|a| {
                    format!(
                        "{} -> {}",
                        a.name,
                        serde_json::to_string(&a.value).unwrap_or_default()
                    )
                })
                .collect();
            format!("update {}", changes.join(", "))
        }
        _ => format!("{} {}", op.kind, op.target.as_deref().unwrap_or(""))
            .trim()
            .to_string(),
    }
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
    /// Runs reconciliation for a tenant, stores the report and queues repairs.
    pub async fn reconcile(
        &self,
        tenant_name: &str,
        req: ReconcileRequest,
    ) -> Result<ReconcileReport, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        if let Some(d) = &req.destination
            && !tenant.destinations.iter().any(|x| x.name == *d)
        {
            return Err(crate::InvalidEvent {
                field: "destination".into(),
                reason: format!("no destination {d:?}"),
            }
            .into());
        }
        let started = self.now();
        let rules = self.runtime.plugin(tenant_name, &tenant.rules)?;
        // Everyone Tenure knows: lifecycle records and linked accounts.
        let mut people: BTreeSet<String> = self
            .store
            .lifecycles(tenant_name, 1_000_000)
            .await?
            .into_iter()
            .map(|r| r.person_key)
            .collect();
        for d in &tenant.destinations {
            people.extend(
                self.store
                    .links(tenant_name, &d.name)
                    .await?
                    .into_iter()
                    .map(|(k, _)| k),
            );
        }
        let mut report = ReconcileReport {
            id: 0,
            tenant: tenant_name.into(),
            actor: req.actor.clone(),
            dry_run: req.dry_run,
            started_ms: started,
            finished_ms: 0,
            people: people.len(),
            accounts: 0,
            drift: Vec::new(),
            repairs: Vec::new(),
            access: Vec::new(),
        };
        let mut repair: Vec<(String, String)> = Vec::new();
        for person_key in &people {
            let Some(now) = self.person_now(tenant_name, person_key).await? else {
                continue;
            };
            let (state, life, newest) = (now.state, now.life, now.record);
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
            let desired = match self.desired_state(&rules, &mut subject, mode).await {
                Ok(d) => d,
                Err(e) => {
                    report.drift.push(Drift {
                        person_key: person_key.clone(),
                        destination: String::new(),
                        kind: "error".into(),
                        detail: format!("rules: {e}"),
                        anchor: None,
                        repairable: false,
                    });
                    continue;
                }
            };
            for target in desired.targets.iter().flatten() {
                let dest = &*target.dest;
                if req.destination.as_ref().is_some_and(|d| *d != dest.name) || dest.dry_run {
                    continue;
                }
                // What the pipeline would find: the linked account, else a match or nothing.
                let r =
                    match resolve(self, tenant_name, dest, person_key, target.desired.as_ref(), None).await {
                        Ok(r) => r,
                        Err(f) => {
                            report.drift.push(Drift {
                                person_key: person_key.clone(),
                                destination: dest.name.clone(),
                                kind: "error".into(),
                                detail: format!("{}: {}", f.class, f.message),
                                anchor: None,
                                repairable: false,
                            });
                            continue;
                        }
                    };
                let (current, link, wanted) = match r.matched {
                    Match::Linked(a) => (a, r.link.clone(), target.desired.clone()),
                    Match::Adopt { account, .. } => {
                        let (link, kept) = desired::taken_over(
                            &account,
                            r.link.as_ref(),
                            target.desired.as_ref(),
                            &target.unique,
                        );
                        (Some(account), Some(link), kept)
                    }
                    Match::Skip { .. } | Match::Conflict { .. } => {
                        (None, r.link.clone(), target.desired.clone())
                    }
                };
                let mut found = Vec::new();
                let p = desired::plan_target(
                    dest,
                    wanted.as_ref(),
                    current.as_ref(),
                    link.as_ref(),
                    &r.caps.operations,
                    state,
                    &life,
                );
                for op in p
                    .operations
                    .iter()
                    .filter(|o| o.kind != OperationKind::OpenTicket)
                {
                    found.push(Drift {
                        person_key: person_key.clone(),
                        destination: dest.name.clone(),
                        kind: drift_of(op, state).into(),
                        detail: describe(op),
                        anchor: current.as_ref().map(|a| a.anchor.clone()),
                        repairable: true,
                    });
                }
                if let (Some(acc), Some(l)) = (&current, &link) {
                    report.accounts += 1;
                    let want: &[String] = wanted.as_ref().map(|d| d.groups.as_slice()).unwrap_or_default();
                    for g in acc
                        .groups
                        .iter()
                        .filter(|g| !want.contains(g) && !l.managed_groups.contains(g))
                    {
                        found.push(Drift {
                            person_key: person_key.clone(),
                            destination: dest.name.clone(),
                            kind: "unmanaged-group".into(),
                            detail: format!("{g} was granted outside Tenure"),
                            anchor: Some(acc.anchor.clone()),
                            repairable: false,
                        });
                    }
                    let row = |group: &str, managed: bool, granted_by: Vec<String>| AccessRow {
                        person_key: person_key.clone(),
                        state: state.as_str().into(),
                        destination: dest.name.clone(),
                        anchor: acc.anchor.clone(),
                        enabled: acc.enabled,
                        group: group.into(),
                        managed,
                        granted_by,
                    };
                    report.access.push(row("", true, Vec::new()));
                    for g in &acc.groups {
                        let by = granted_by(&desired.evaluation.trace, &dest.name, g);
                        report.access.push(row(g, l.managed_groups.contains(g), by));
                    }
                }
                if dest.reconcile == ReconcileMode::Repair
                    && !req.dry_run
                    && found.iter().any(|d| d.repairable)
                    && !repair.iter().any(|(k, _)| k == person_key)
                {
                    repair.push((person_key.clone(), newest.body.clone()));
                }
                report.drift.extend(found);
            }
        }
        report.finished_ms = self.now();
        // Repairs go through the pipeline like any event.
        let mut events = Vec::new();
        for (person_key, body) in &repair {
            let key = format!("reconcile:{started}:{person_key}");
            events.push(NewEvent {
                tenant: tenant_name.into(),
                source: crate::schedule::SOURCE.into(),
                idempotency_key: key.clone(),
                person_key: person_key.clone(),
                kind: RecordKind::Reconcile,
                body: body.clone(),
                source_record_id: key,
                start_date: None,
                occurred_ms: None,
                actor: req.actor.clone(),
                received_ms: report.finished_ms,
                max_attempts: self.config.queue.max_attempts,
                link_keys: Vec::new(),
            });
        }
        if !events.is_empty() {
            self.store.intake(events, None).await?;
            self.wake();
        }
        report.repairs = repair.into_iter().map(|(k, _)| k).collect();
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
        tracing::info!(
            tenant = tenant_name,
            report = report.id,
            drift = report.drift.len(),
            repairs = report.repairs.len(),
            "reconciliation finished"
        );
        Ok(report)
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
