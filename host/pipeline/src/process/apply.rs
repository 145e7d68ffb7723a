//! Stage 5 for one destination: the person's account resolved (linked, matched,
//! merged, skipped or held as a conflict), the plan made through the shared
//! path, checked by the mass-change guard and applied one operation at a time:
//! every intent recorded in one write before the first is sent, each result
//! written with the job's next write.

use super::supervise::Supervised;
use super::{DestOutcome, JobRun};
use crate::audit_events::{self as ev, LinkedBy};
use crate::desired::{self, Target};
use crate::lifecycle::OpenedTicket;
use crate::plan::{self, PlannedOp};
use crate::resolve::{Match, resolve};
use crate::supervision::ApplyMode;
use crate::{DestinationConfig, Failure, FailureClass};
use std::time::Instant;
use tenure_runtime::wit;
use tenure_store::{
    ActionState, AuditRecord, FinishedOp, GuardDecision, GuardRequest, Link, LinkUpdate, NewConflict,
    NewOperation, OpResult, OperationKind, OperationStatus, ScheduledAction,
};

/// Which operations a pass over the destinations applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pass {
    /// A leaver's first pass: only disables.
    DisableOnly,
    /// Everything the plan says.
    Full,
}

/// What to plan against, once the account is resolved.
struct Resolved {
    current: Option<wit::Account>,
    link: Option<Link>,
    /// The desired account, with the unique names a taken-over account already had.
    kept: Option<wit::DesiredAccount>,
}

impl JobRun<'_> {
    pub(super) async fn destination(
        &mut self,
        target: &Target<'_>,
        pass: Pass,
        due: Option<&ScheduledAction>,
    ) -> Result<DestOutcome, Failure> {
        let (p, job) = (self.p, self.job);
        let dest = &*target.dest;
        let name = dest.name.as_str();
        let mode = target.mode;
        // A supervised or observed destination takes a leaver's whole plan in the full pass.
        if pass == Pass::DisableOnly && mode != ApplyMode::Live {
            return Ok(DestOutcome::Done);
        }
        // The destination asked every caller to wait (a 429's Retry-After): this job waits too.
        if let Some((wait, why)) = p.throttled(&job.tenant, name) {
            return Err(Failure {
                class: FailureClass::RateLimited,
                message: format!(
                    "destination {name} is held back for {} ms more after: {why}",
                    wait.as_millis()
                ),
                retry: true,
                retry_after_ms: Some(wait.as_millis() as u64 + 1),
            });
        }
        let desired = target.desired.as_ref();
        let r = resolve(p, &job.tenant, dest, &job.person_key, desired, Some(job.id)).await?;
        let resolved = match self.take_match(target, r.matched.clone(), r.link.clone()).await? {
            Ok(resolved) => resolved,
            Err(outcome) => return Ok(outcome),
        };
        let mut link = resolved.link;
        if job.attempt > 1 && !dest.dry_run {
            link = self
                .recover_interrupted(name, resolved.current.as_ref(), link)
                .await?;
        }
        let current = resolved.current;
        let desired = resolved.kept.as_ref().or(desired);
        if pass == Pass::Full {
            self.remember_leave(name, current.as_ref()).await?;
        }
        let mut plan = desired::plan_target(
            dest,
            desired,
            current.as_ref(),
            link.as_ref(),
            &r.caps,
            self.state,
            &self.life,
        );
        if pass == Pass::DisableOnly {
            plan.operations.retain(|o| o.kind == OperationKind::Disable);
            plan.unsupported.clear();
        }
        // A due grace-period deletion: only a still-disabled leaver's linked account goes.
        let deleting = match (due, current.as_ref(), link.as_ref()) {
            (Some(_), Some(acc), Some(l))
                if self.state.is_gone()
                    && !acc.enabled
                    && l.anchor == acc.anchor
                    && desired.is_none_or(|d| !d.enabled) =>
            {
                plan = plan::delete(name, &acc.anchor, &r.caps.operations);
                true
            }
            _ => false,
        };
        if plan.operations.is_empty() && plan.unsupported.is_empty() {
            return Ok(DestOutcome::Done);
        }
        let listed = plan
            .operations
            .iter()
            .map(|o| ev::PlannedOpView {
                op: o.kind,
                key: &o.key,
                target: &o.target,
                destructive: o.destructive,
            })
            .collect();
        let rec = if mode == ApplyMode::Observe {
            self.record(
                Some(name),
                &ev::PlanObserved {
                    connector_version: r.connector.version(),
                    operations: listed,
                    unsupported: &plan.unsupported,
                },
            )
        } else {
            self.record(
                Some(name),
                &ev::PlanCreated {
                    connector_version: r.connector.version(),
                    operations: listed,
                    unsupported: &plan.unsupported,
                    dry_run: dest.dry_run,
                },
            )
        };
        self.pending.push(rec);
        if dest.dry_run || mode == ApplyMode::Observe {
            for op in &plan.operations {
                p.metrics
                    .operation(&job.tenant, name, op.kind, OperationStatus::DryRun);
            }
            return Ok(DestOutcome::Done);
        }
        let mut approved = None;
        if mode == ApplyMode::Supervised {
            match self.supervise(dest, &plan, &target.redacted).await? {
                Supervised::Apply(hold) => approved = hold,
                Supervised::End(outcome) => return Ok(outcome),
            }
        }
        if plan.operations.iter().any(|o| o.destructive)
            && let Some(reason) = self.guard_check(dest).await?
        {
            return Ok(DestOutcome::Held(reason));
        }
        let anchor = self
            .apply_plan(dest, &r.connector, &plan.operations, current, link)
            .await?;
        if let Some(hold) = approved {
            self.hold_applied(hold).await?;
        }
        if deleting && let Some(action) = due {
            self.flush().await?;
            p.store
                .finish_action(
                    action.id,
                    ActionState::Done,
                    "deleted after the grace period",
                    p.now(),
                )
                .await?;
            self.deleted_actions.push(action.id);
            let rec = self.record(
                Some(name),
                &ev::DeprovisionDeleted {
                    action: action.id,
                    anchor: anchor.as_deref(),
                },
            );
            self.pending.push(rec);
        }
        Ok(DestOutcome::Done)
    }

    /// What resolution found: an account to plan against (`Ok`), or a decision that
    /// ends the destination's turn (`Err`: skipped, or held as a conflict).
    async fn take_match(
        &mut self,
        target: &Target<'_>,
        matched: Match,
        link: Option<Link>,
    ) -> Result<Result<Resolved, DestOutcome>, Failure> {
        let (p, job) = (self.p, self.job);
        let dest = &*target.dest;
        let name = dest.name.as_str();
        match matched {
            Match::Linked(current) => Ok(Ok(Resolved {
                current,
                link,
                kept: None,
            })),
            Match::Adopt { account, why } => {
                let by = match why {
                    "merged" => LinkedBy::Merged,
                    "resolved" => LinkedBy::Resolved,
                    _ => LinkedBy::Recovered,
                };
                let (new_link, _) = desired::taken_over(&account, link.as_ref(), None, &target.unique);
                let rec = self.record(
                    Some(name),
                    &ev::Linked {
                        by,
                        anchor: &account.anchor,
                        dry_run: dest.dry_run,
                    },
                );
                if dest.dry_run {
                    self.pending.push(rec);
                } else {
                    let update = LinkUpdate {
                        tenant: job.tenant.clone(),
                        destination: dest.name.clone(),
                        person_key: job.person_key.clone(),
                        link: Some(new_link.clone()),
                    };
                    let audit = self.take(Some(rec));
                    self.flush().await?;
                    p.store.put_link(&self.lease, update, audit).await?;
                }
                let kept = match &target.desired {
                    Some(d) => {
                        let mut d = d.clone();
                        self.keep_existing_names(dest, &target.unique, &account, &mut d)
                            .await?;
                        Some(d)
                    }
                    None => None,
                };
                Ok(Ok(Resolved {
                    current: Some(account),
                    link: Some(new_link),
                    kept,
                }))
            }
            Match::Skip { why } => {
                let rec = self.record(Some(name), &ev::DestinationSkipped { why: &why });
                self.pending.push(rec);
                Ok(Err(DestOutcome::Done))
            }
            Match::Conflict { kind, candidates } => {
                let rec = self.record(
                    Some(name),
                    &ev::ConflictOpened {
                        kind,
                        candidates: &candidates,
                        dry_run: dest.dry_run,
                    },
                );
                if dest.dry_run {
                    self.pending.push(rec);
                    return Ok(Err(DestOutcome::Done));
                }
                let conflict = NewConflict {
                    tenant: job.tenant.clone(),
                    destination: dest.name.clone(),
                    person_key: job.person_key.clone(),
                    job_id: job.id,
                    kind,
                    candidates,
                    now_ms: p.now(),
                };
                let audit = self.take(Some(rec));
                self.flush().await?;
                let notice = crate::notify::Notice::new(
                    crate::notify::NotifyOn::ConflictOpened,
                    format!("{}:{}:{}", job.person_key, dest.name, job.id),
                    serde_json::json!({ "destination": dest.name, "kind": conflict.kind.to_string(),
                        "candidates": conflict.candidates }),
                )
                .person(&job.person_key, None, None);
                p.store.open_conflict(&self.lease, conflict, audit).await?;
                self.notices.push(notice);
                tracing::warn!(destination = name, %kind, "conflict held for a person to decide");
                Ok(Err(DestOutcome::Held(format!("conflict:{name}"))))
            }
        }
    }

    /// Sends the plan's operations in order, each recorded before it is sent (all
    /// in one write) and after; the account's anchor at the end.
    async fn apply_plan(
        &mut self,
        dest: &DestinationConfig,
        connector: &tenure_runtime::PluginHandle,
        operations: &[PlannedOp],
        current: Option<wit::Account>,
        mut link: Option<Link>,
    ) -> Result<Option<String>, Failure> {
        let (p, job) = (self.p, self.job);
        let name = dest.name.as_str();
        // Tickets have no state to diff against: one opened by an earlier attempt is not opened again.
        let done: Vec<String> = if operations.iter().any(|o| o.kind == OperationKind::OpenTicket) {
            self.flush().await?;
            p.store
                .operations(job.id)
                .await?
                .into_iter()
                .filter(|o| o.status == OperationStatus::Done)
                .map(|o| o.op_key)
                .collect()
        } else {
            Vec::new()
        };
        let mut anchor = current.as_ref().map(|a| a.anchor.clone());
        // Opened by an earlier attempt of this job: not opened again.
        let to_send: Vec<&PlannedOp> = operations
            .iter()
            .filter(|o| !(o.kind == OperationKind::OpenTicket && done.contains(&o.key)))
            .collect();
        if to_send.is_empty() {
            return Ok(anchor);
        }
        // Every intent in one write, before the first call: each is recorded before it is
        // sent, and an intent whose call never happened is found not to have taken effect.
        let intents = to_send
            .iter()
            .map(|planned| NewOperation {
                job_id: job.id,
                tenant: job.tenant.clone(),
                destination: dest.name.clone(),
                op_key: planned.key.clone(),
                kind: planned.kind,
                target: planned.target.clone().or_else(|| anchor.clone()),
                destructive: planned.destructive,
                now_ms: p.now(),
            })
            .collect();
        let audit = self.take(None);
        let previous = std::mem::take(&mut self.unwritten_ops);
        let ids = p.store.ops_started(&self.lease, previous, intents, audit).await?;
        if ids.len() != to_send.len() {
            let wrong = format!("the store recorded {} of {} intents", ids.len(), to_send.len());
            return Err(Failure::store(&tenure_store::StoreError::Database(wrong)));
        }
        for (index, (planned, &op_id)) in to_send.iter().zip(&ids).enumerate() {
            let later = &ids[index + 1..];
            let mut op = planned.op.clone();
            if let Some(a) = &anchor {
                plan::bind_anchor(&mut op, a);
            }
            if let wit::Operation::OpenTicket(t) = &mut op {
                // The same on every attempt: a desk that lost its answer finds the ticket by it.
                let key = format!("{}:{}:{}", job.tenant, job.id, planned.key);
                t.fields.retain(|(name, _)| name != plan::TICKET_KEY);
                t.fields.push((plan::TICKET_KEY.into(), key));
            }
            // Only while the lease is known to hold: a stalled store must not let a
            // stale attempt keep changing the destination after another took over.
            if !p.lease_holds(job.id) {
                self.op_abandoned(op_id, planned, name, "the lease could not be confirmed; not sent");
                self.not_sent(later);
                return Err(Failure {
                    class: FailureClass::LeaseLost,
                    message: "the job's lease could not be confirmed (the store is stalled); stopped".into(),
                    retry: true,
                    retry_after_ms: None,
                });
            }
            let clock = Instant::now();
            let result = connector.apply(&op).await;
            let duration_ms = clock.elapsed().as_millis() as u64;
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(e) => {
                    let f = Failure::of_call(&e);
                    self.op_failed(op_id, planned, name, duration_ms, &f);
                    self.not_sent(later);
                    return Err(f);
                }
            };
            if planned.kind == OperationKind::OpenTicket
                && let Some(template) = &planned.target
            {
                let state = self.state;
                self.life.remember_ticket(&dest.name, state, template);
                self.life.record_ticket(OpenedTicket {
                    destination: dest.name.clone(),
                    state,
                    template: template.clone(),
                    number: outcome.anchor.clone().filter(|a| !a.is_empty()),
                    summary: outcome.summary.clone(),
                    at_ms: p.now(),
                });
            }
            let created = if planned.kind == OperationKind::Create {
                self.created.push(dest.name.clone());
                match &outcome.anchor {
                    Some(a) if !a.is_empty() => {
                        anchor = Some(a.clone());
                        self.created_accounts.push((dest.name.clone(), a.clone()));
                        outcome.anchor.clone()
                    }
                    _ => {
                        let f = Failure {
                            class: FailureClass::Permanent,
                            message: format!(
                                "destination {name}: the connector created an account but returned no anchor"
                            ),
                            retry: false,
                            retry_after_ms: None,
                        };
                        self.op_failed(op_id, planned, name, duration_ms, &f);
                        self.not_sent(later);
                        return Err(f);
                    }
                }
            } else {
                None
            };
            let next = plan::next_link(link.clone(), &op, created.as_deref());
            let update = (next != link).then(|| LinkUpdate {
                tenant: job.tenant.clone(),
                destination: dest.name.clone(),
                person_key: job.person_key.clone(),
                link: next.clone(),
            });
            link = next;
            // A ticket's anchor is its number at the desk, not an account's.
            let shown_anchor = match planned.kind {
                OperationKind::OpenTicket => outcome.anchor.as_deref().filter(|a| !a.is_empty()),
                _ => anchor.as_deref(),
            };
            let rec = self.record(
                Some(name),
                &ev::OpApplied {
                    op: planned.kind,
                    key: &planned.key,
                    target: &planned.target,
                    anchor: shown_anchor,
                    status: OperationStatus::Done,
                    duration_ms,
                    summary: &outcome.summary,
                },
            );
            self.unwritten_ops.push(FinishedOp {
                op_id,
                result: OpResult {
                    status: OperationStatus::Done,
                    detail: outcome.summary,
                    anchor: created,
                    now_ms: p.now(),
                },
                link: update,
                audit: vec![rec],
            });
            p.metrics
                .operation(&job.tenant, name, planned.kind, OperationStatus::Done);
            p.destination_succeeded(&job.tenant, name);
        }
        Ok(anchor)
    }

    /// An account taken over keeps the unique names it already has (a login that
    /// works stays as it is): they become the person's, unless someone else holds one.
    async fn keep_existing_names(
        &mut self,
        dest: &DestinationConfig,
        unique: &[String],
        account: &wit::Account,
        desired: &mut wit::DesiredAccount,
    ) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        for (name, existing) in desired::names_to_keep(unique, account, desired) {
            let ours = dest.dry_run
                || p.store
                    .claim_name(&job.tenant, &name, &existing, &job.person_key)
                    .await?;
            let Some(slot) = desired
                .attributes
                .iter_mut()
                .find(|a| a.name == name)
                .filter(|_| ours)
            else {
                continue;
            };
            let instead_of = std::mem::replace(&mut slot.value, wit::Value::Text(existing.clone()));
            let rec = self.record(
                Some(&dest.name),
                &ev::NameKept {
                    attribute: &name,
                    value: &existing,
                    instead_of,
                    why: "the account was taken over with it",
                },
            );
            self.pending.push(rec);
        }
        Ok(())
    }

    /// Grace-period bookkeeping once a destination is settled: a leaver whose account is
    /// linked and disabled gets a dated deletion (a return cancels it: `settle_lifecycle`).
    pub(super) async fn after_destination(
        &mut self,
        target: &Target<'_>,
        due: Option<&ScheduledAction>,
    ) -> Result<(), Failure> {
        let dest = &*target.dest;
        let Some(grace) = dest.delete_after else {
            return Ok(());
        };
        if dest.dry_run {
            return Ok(());
        }
        let (p, job) = (self.p, self.job);
        if let Some(action) = due {
            if self.deleted_actions.contains(&action.id) {
                return Ok(());
            }
            // Due, but the deletion no longer applied.
            p.store
                .finish_action(
                    action.id,
                    ActionState::Cancelled,
                    "no longer applies: the person is active again or the account is gone",
                    p.now(),
                )
                .await?;
            let rec = self.record(
                Some(&dest.name),
                &ev::DeprovisionCancelled {
                    action: action.id,
                    why: "no longer applies when due",
                },
            );
            self.pending.push(rec);
            return Ok(());
        }
        let leaving = self.state.is_gone() && target.desired.as_ref().is_none_or(|d| !d.enabled);
        if !leaving
            || p.store
                .link(&job.tenant, &dest.name, &job.person_key)
                .await?
                .is_none()
        {
            return Ok(());
        }
        // The grace period counts from the day the termination took effect.
        let now = p.now();
        let due_ms = self.life.gone_at_ms().filter(|t| *t <= now).unwrap_or(now) + grace.0;
        let added = p
            .store
            .schedule_action(tenure_store::NewScheduledAction {
                tenant: job.tenant.clone(),
                person_key: job.person_key.clone(),
                destination: dest.name.clone(),
                action: tenure_store::ActionKind::Delete,
                due_ms,
                reason: format!("leaver; delete_after {} ms", grace.0),
                now_ms: now,
            })
            .await?;
        if added {
            let rec = self.record(
                Some(&dest.name),
                &ev::DeprovisionScheduled {
                    action: tenure_store::ActionKind::Delete,
                    due_ms,
                },
            );
            self.pending.push(rec);
        }
        Ok(())
    }

    /// An operation whose intent was recorded but which was not sent.
    fn op_abandoned(&mut self, op_id: i64, planned: &PlannedOp, destination: &str, why: &str) {
        let rec = self.record(
            Some(destination),
            &ev::OpAbandoned {
                op: planned.kind,
                key: &planned.key,
                target: &planned.target,
                why,
            },
        );
        self.unsent_result(op_id, OperationStatus::Abandoned, why.into(), vec![rec]);
    }

    /// The plan's operations after one that failed: their intents were recorded, but
    /// they were never sent (the failure's record says why; the next attempt plans again).
    fn not_sent(&mut self, op_ids: &[i64]) {
        for &op_id in op_ids {
            let why = "not sent: an earlier operation of the plan did not succeed";
            self.unsent_result(op_id, OperationStatus::Abandoned, why.into(), Vec::new());
        }
    }

    /// The result of an operation that changed nothing (it failed or was never sent), to be
    /// written with the job's next write.
    fn unsent_result(
        &mut self,
        op_id: i64,
        status: OperationStatus,
        detail: String,
        audit: Vec<AuditRecord>,
    ) {
        self.unwritten_ops.push(FinishedOp {
            op_id,
            result: OpResult {
                status,
                detail,
                anchor: None,
                now_ms: self.p.now(),
            },
            link: None,
            audit,
        });
    }

    fn op_failed(
        &mut self,
        op_id: i64,
        planned: &PlannedOp,
        destination: &str,
        duration_ms: u64,
        f: &Failure,
    ) {
        let rec = self.record(
            Some(destination),
            &ev::OpFailed {
                op: planned.kind,
                key: &planned.key,
                target: &planned.target,
                status: OperationStatus::Failed,
                duration_ms,
                class: f.class,
                error: &f.message,
                retry_after_ms: f.retry_after_ms,
            },
        );
        self.p.metrics.operation(
            &self.job.tenant,
            destination,
            planned.kind,
            OperationStatus::Failed,
        );
        let detail = format!("{}: {}", f.class, f.message);
        self.unsent_result(op_id, OperationStatus::Failed, detail, vec![rec]);
    }

    /// The mass-change guard: None to go ahead, Some(hold reason) to stop.
    async fn guard_check(&mut self, dest: &DestinationConfig) -> Result<Option<String>, Failure> {
        let (p, job) = (self.p, self.job);
        let g = &dest.guard;
        let alert = self.record(Some(&dest.name), &ev::GuardTripped {});
        self.flush().await?;
        let request = GuardRequest {
            tenant: job.tenant.clone(),
            destination: dest.name.clone(),
            job_id: job.id,
            now_ms: p.now(),
            window_ms: g.window_secs * 1000,
            max_accounts: g.max_accounts,
            max_percent: g.max_percent,
            min_population: g.min_population,
            alert,
        };
        match p.store.guard_admit(request).await? {
            GuardDecision::Admitted { recent, by_approval } => {
                if by_approval {
                    let rec = self.record(Some(&dest.name), &ev::GuardApprovedChange { recent });
                    self.pending.push(rec);
                }
                Ok(None)
            }
            GuardDecision::Held { why, newly_tripped } => {
                if newly_tripped {
                    tracing::error!(destination = %dest.name, %why, "mass-change guard tripped; approval \
                        required");
                    self.notices.push(crate::notify::Notice::new(
                        crate::notify::NotifyOn::GuardTripped,
                        format!("{}:{}", dest.name, job.id),
                        serde_json::json!({ "destination": dest.name, "why": why }),
                    ));
                }
                Ok(Some(format!("guard:{}", dest.name)))
            }
        }
    }
}
