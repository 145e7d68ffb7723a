//! The lifecycle side of a job: the person's state shapes each destination's
//! desired account (pre-hire window, withdrawn hire, leaver steps), a leave
//! remembers what it takes away and a return gives it back, and once the job
//! is applied the person's dated actions are brought in line with their facts
//! (the next wake-up, contract notices, leaver steps) and a newly provisioned
//! manager's reports are refreshed.

use super::JobRun;
use crate::audit_events as ev;
use crate::lifecycle::{State, step_key};
use crate::{DestinationConfig, Failure, TenantPipeline};
use tenure_runtime::wit;
use tenure_store::{ActionKind, ActionMatch, ActionState, LifecycleRow, NewScheduledAction, ScheduledAction};

impl JobRun<'_> {
    /// Writes the person's lifecycle facts (with the state applied, when given).
    pub(super) async fn save_life(&mut self, applied: Option<State>) -> Result<(), Failure> {
        self.note_life(applied);
        let row = self.life_row()?;
        self.p
            .store
            .put_lifecycle(&self.lease, &self.job.tenant, row)
            .await?;
        self.life_unsaved = false;
        Ok(())
    }

    /// Like [`Self::save_life`], but the facts are written with the job's end (one
    /// store write fewer for every job).
    pub(super) fn note_life(&mut self, applied: Option<State>) {
        let now = self.p.now();
        if let Some(state) = applied {
            self.life.applied(state, now);
        }
        self.life_unsaved = true;
    }

    /// The lifecycle facts as the store keeps them.
    pub(super) fn life_row(&self) -> Result<LifecycleRow, Failure> {
        Ok(LifecycleRow {
            person_key: self.job.person_key.clone(),
            state: self.life.applied,
            manager_key: self.life.manager.clone(),
            doc: serde_json::to_string(&self.life).map_err(|e| Failure::config(e.to_string()))?,
            updated_ms: self.p.now(),
            name: self.life.card.as_ref().and_then(|c| c.name.clone()),
            email: self.life.card.as_ref().and_then(|c| c.email.clone()),
        })
    }

    /// On leave: records the account as it is before the leave changes it (once, before
    /// anything changes, so a retry never records the half-changed account). The plan
    /// reads the same record (`desired::leave_saved`).
    pub(super) async fn remember_leave(
        &mut self,
        destination: &str,
        current: Option<&wit::Account>,
    ) -> Result<(), Failure> {
        if self.state != State::OnLeave || self.life.saved.contains_key(destination) {
            return Ok(());
        }
        let Some(acc) = current else {
            return Ok(());
        };
        let saved = crate::desired::saved_of(acc);
        let rec = self.record(
            Some(destination),
            &ev::LeaveSaved {
                enabled: saved.enabled,
                container: &saved.container,
                groups: &saved.groups,
                licenses: &saved.licenses,
                apps: &saved.apps,
            },
        );
        self.pending.push(rec);
        self.life.saved.insert(destination.to_string(), saved);
        self.save_life(None).await
    }

    /// Bookkeeping once a destination is settled: a finished return forgets the
    /// saved access; a leaver step is marked done (or cancelled if the person is back).
    pub(super) async fn destination_settled(
        &mut self,
        dest: &DestinationConfig,
        due_step: Option<usize>,
        scheduled: Option<&ScheduledAction>,
    ) -> Result<(), Failure> {
        let state = self.state;
        if state == State::Active
            && let Some(saved) = self.life.saved.remove(&dest.name)
        {
            let rec = self.record(
                Some(&dest.name),
                &ev::LeaveRestored {
                    enabled: saved.enabled,
                    container: &saved.container,
                    groups: &saved.groups,
                },
            );
            self.pending.push(rec);
        }
        let (Some(i), Some(action)) = (due_step, scheduled) else {
            return Ok(());
        };
        let now = self.p.now();
        if state.is_gone() {
            self.life
                .steps_done
                .entry(dest.name.clone())
                .or_default()
                .push(step_key(i));
            let name = dest.leaver_steps.get(i).map(|s| s.action.name()).unwrap_or("?");
            self.p
                .store
                .finish_action(
                    action.id,
                    ActionState::Done,
                    &format!("leaver step {i}: {name}"),
                    now,
                )
                .await?;
            let rec = self.record(
                Some(&dest.name),
                &ev::LeaverStepDone {
                    step: i,
                    action: name,
                    scheduled: action.id,
                },
            );
            self.pending.push(rec);
        } else {
            self.p
                .store
                .finish_action(action.id, ActionState::Cancelled, "the person is back", now)
                .await?;
            let rec = self.record(
                Some(&dest.name),
                &ev::LeaverStepCancelled {
                    step: i,
                    scheduled: action.id,
                    why: "the person is back",
                },
            );
            self.pending.push(rec);
        }
        Ok(())
    }

    /// Once every destination is applied: the state is recorded, the person's dated
    /// actions follow their facts, and a newly provisioned manager's reports are refreshed.
    pub(super) async fn settle_lifecycle(
        &mut self,
        tenant: &TenantPipeline,
        person: &wit::Person,
    ) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let (now, state) = (p.now(), self.state);
        let before = self.life.applied;
        let became_gone = state.is_gone() && !before.is_some_and(State::is_gone);
        self.note_life(Some(state));
        if before != Some(state) {
            let l = &self.life;
            let rec = self.record(
                None,
                &ev::LifecycleChanged {
                    from: before,
                    to: state,
                    time_zone: &l.time_zone,
                    start_date: &l.start_date,
                    last_day: &l.last_day,
                    end_date: &l.end_date,
                    leave_from: &l.leave_from,
                    leave_until: &l.leave_until,
                },
            );
            self.pending.push(rec);
        }
        // The person's open actions, read once, so that only real changes are written
        // (a person's jobs run one at a time, so nothing else adds these kinds meanwhile).
        let open = p.store.open_actions(&job.tenant, &job.person_key).await?;
        let any_open = |kind: ActionMatch| open.iter().any(|a| kind.matches(a.action));
        self.follow_wake(tenant, &open).await?;
        // Contract notices follow the end date (an extension moves them, a conversion ends them).
        let days = &tenant.lifecycle.contract_notice_days;
        let ahead = self.life.notices(now, days);
        for n in days {
            let due = ahead.iter().find(|(d, _)| d == n).map(|(_, due)| *due);
            let end = self.life.end_date.clone().unwrap_or_default();
            self.follow_action(
                &open,
                ActionKind::Notice { days: *n },
                due,
                || format!("contract ends {end}"),
                "no contract end ahead",
            )
            .await?;
        }
        if became_gone && state != State::Withdrawn {
            self.schedule_leaver_steps(tenant).await?;
        } else if !state.is_gone()
            && (any_open(ActionMatch::AnyLeaverStep) || any_open(ActionMatch::Is(ActionKind::Delete)))
        {
            self.cancel_leaving().await?;
        }
        // A manager provisioned after their reports: the reports get their manager now.
        if !self.created.is_empty() {
            self.refresh_reports(person).await?;
        }
        Ok(())
    }

    /// The person's wake-up moved to their next dated change (or cancelled when none is ahead).
    pub(super) async fn follow_wake(
        &mut self,
        tenant: &TenantPipeline,
        open: &[ScheduledAction],
    ) -> Result<(), Failure> {
        let prehire: Vec<u32> = tenant
            .destinations
            .iter()
            .filter_map(|d| d.prehire_days)
            .collect();
        let wake = self.life.next_change(self.p.now(), &prehire);
        self.follow_action(
            open,
            ActionKind::Wake,
            wake,
            || "the person's next dated change".into(),
            "no dated change ahead",
        )
        .await
    }

    /// Leaver steps: scheduled once when the person goes.
    async fn schedule_leaver_steps(&mut self, tenant: &TenantPipeline) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let now = p.now();
        let since = self.life.gone_since_ms.unwrap_or(now);
        for dest in &tenant.destinations {
            for (i, step) in dest.leaver_steps.iter().enumerate() {
                let due = since + step.after.0;
                let action = NewScheduledAction {
                    tenant: job.tenant.clone(),
                    person_key: job.person_key.clone(),
                    destination: dest.name.clone(),
                    action: ActionKind::LeaverStep(i),
                    due_ms: due,
                    reason: format!("leaver step {i}: {}", step.action.name()),
                    now_ms: now,
                };
                if p.store.schedule_action(action).await? {
                    let rec = self.record(
                        Some(&dest.name),
                        &ev::LeaverStepScheduled {
                            step: i,
                            action: step.action.name(),
                            due_ms: due,
                        },
                    );
                    self.pending.push(rec);
                }
            }
        }
        Ok(())
    }

    /// Back (a rehire, even one whose start date is still ahead): no step and no
    /// deletion may touch the account any more.
    async fn cancel_leaving(&mut self) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let now = p.now();
        let why = "the person is back";
        let steps = p
            .store
            .cancel_actions(
                &job.tenant,
                &job.person_key,
                None,
                ActionMatch::AnyLeaverStep,
                why,
                now,
            )
            .await?;
        if steps > 0 {
            let rec = self.record(
                None,
                &ev::LeaverStepsCancelled {
                    cancelled: steps,
                    why,
                },
            );
            self.pending.push(rec);
        }
        let deletions = p
            .store
            .cancel_actions(
                &job.tenant,
                &job.person_key,
                None,
                ActionMatch::Is(ActionKind::Delete),
                why,
                now,
            )
            .await?;
        if deletions > 0 {
            let rec = self.record(
                None,
                &ev::DeprovisionsCancelled {
                    action: ActionKind::Delete,
                    cancelled: deletions,
                    why,
                },
            );
            self.pending.push(rec);
        }
        Ok(())
    }

    /// The reports of a manager this job provisioned are evaluated again.
    async fn refresh_reports(&mut self, person: &wit::Person) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let now = p.now();
        let mut keys = vec![job.person_key.clone()];
        keys.extend(person.ids.iter().map(|i| format!("{}:{}", i.source, i.id)));
        keys.dedup();
        let reports = p.store.reports_of(&job.tenant, keys).await?;
        for report in reports.iter().filter(|r| **r != job.person_key) {
            p.store
                .reschedule_action(NewScheduledAction {
                    tenant: job.tenant.clone(),
                    person_key: report.clone(),
                    destination: String::new(),
                    action: ActionKind::Refresh,
                    due_ms: now,
                    reason: format!("manager {} provisioned", job.person_key),
                    now_ms: now,
                })
                .await?;
        }
        if !reports.is_empty() {
            let rec = self.record(
                None,
                &ev::ManagerReportsRefreshed {
                    reports: &reports,
                    destinations: &self.created,
                },
            );
            self.pending.push(rec);
        }
        Ok(())
    }

    /// Keeps the person-wide action `action` due at `due`, or cancels it when nothing is
    /// due; writes only when the person's `open` actions show a change (a queued one is
    /// left to run).
    async fn follow_action(
        &self,
        open: &[ScheduledAction],
        action: ActionKind,
        due: Option<i64>,
        reason: impl FnOnce() -> String,
        none_due: &str,
    ) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let current = open
            .iter()
            .find(|a| a.destination.is_empty() && a.action == action);
        match (due, current) {
            (Some(due), Some(a)) if a.due_ms == due || a.state == ActionState::Queued => {}
            (Some(due), _) => {
                p.store
                    .reschedule_action(NewScheduledAction {
                        tenant: job.tenant.clone(),
                        person_key: job.person_key.clone(),
                        destination: String::new(),
                        action,
                        due_ms: due,
                        reason: reason(),
                        now_ms: p.now(),
                    })
                    .await?;
            }
            (None, None) => {}
            (None, Some(_)) => {
                p.store
                    .cancel_actions(
                        &job.tenant,
                        &job.person_key,
                        Some(""),
                        ActionMatch::Is(action),
                        none_due,
                        p.now(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends a contract-expiry notice to the person's manager (a ticket through the
    /// notify destination), unless the contract changed since it was scheduled.
    pub(super) async fn send_notice(
        &mut self,
        tenant: &TenantPipeline,
        action: &ScheduledAction,
    ) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let now = p.now();
        let days = match action.action {
            ActionKind::Notice { days } => days,
            _ => 0,
        };
        let still = self
            .life
            .notices(action.due_ms - 1, &[days])
            .iter()
            .any(|(_, due)| *due == action.due_ms);
        if !still || self.state.is_gone() {
            p.store
                .finish_action(action.id, ActionState::Cancelled, "the contract changed", now)
                .await?;
            let rec = self.record(
                None,
                &ev::ContractNoticeCancelled {
                    days_before: days,
                    why: "the contract changed",
                },
            );
            self.pending.push(rec);
            return self.save_life(None).await;
        }
        let life = self.life.clone();
        let records = self.records_of(&job.person_key).await?;
        let known_manager = match &life.manager {
            Some(m) => self.primary_email(m).await?,
            None => None,
        };
        // A manager Tenure does not know as a person: the email the source gave.
        let manager_email = known_manager.or_else(|| {
            records
                .iter()
                .find_map(|p| crate::notify::custom_text(p, "manager_email"))
        });
        let person = records.iter().find_map(crate::notify::primary_email_of);
        let fields = vec![
            ("person".to_string(), job.person_key.clone()),
            ("person_email".into(), person.unwrap_or_default()),
            ("manager".into(), life.manager.clone().unwrap_or_default()),
            ("manager_email".into(), manager_email.clone().unwrap_or_default()),
            ("end_date".into(), life.end_date.clone().unwrap_or_default()),
            ("days_before".into(), days.to_string()),
        ];
        // What the notice's templates (ticket fields, notifications) see.
        let person_vars = records
            .first()
            .map(crate::notify::person_vars)
            .unwrap_or_else(|| serde_json::json!({ "name": job.person_key }));
        let vars = serde_json::json!({ "person": person_vars, "person_key": job.person_key,
            "manager": { "key": life.manager, "email": manager_email },
            "manager_email": manager_email, "end_date": life.end_date, "days_before": days });
        let mut sent_to = None;
        let mut summary = None;
        if let Some(dest_name) = &tenant.lifecycle.notify_destination {
            let dest = tenant
                .destinations
                .iter()
                .find(|d| d.name == *dest_name)
                .ok_or_else(|| {
                    Failure::config(format!(
                        "lifecycle.notify_destination: no destination {dest_name:?}"
                    ))
                })?;
            let connector = p
                .runtime
                .plugin(&job.tenant, &dest.connector)
                .map_err(|e| Failure::config(format!("destination {}: {e}", dest.name)))?;
            let mut ticket_fields = if tenant.lifecycle.notice_fields.is_empty() {
                fields.clone()
            } else {
                let mut rendered = Vec::new();
                for (name, template) in &tenant.lifecycle.notice_fields {
                    let value = crate::notify::templates::render(template, &vars)
                        .map_err(|e| Failure::config(format!("lifecycle.notice_fields.{name}: {e}")))?;
                    rendered.push((name.clone(), value));
                }
                rendered
            };
            // One notice per scheduled action: a retry finds the ticket its first attempt opened.
            ticket_fields.push((
                crate::plan::TICKET_KEY.into(),
                format!("{}:notice:{}", job.tenant, action.id),
            ));
            let ticket = wit::Ticket {
                template: tenant.lifecycle.notice_template.clone(),
                fields: ticket_fields,
            };
            if !p.lease_holds(job.id) {
                return Err(Failure {
                    class: crate::FailureClass::LeaseLost,
                    message: "the job's lease could not be confirmed; the notice was not sent".into(),
                    retry: true,
                    retry_after_ms: None,
                });
            }
            let outcome = connector
                .apply(&wit::Operation::OpenTicket(ticket))
                .await
                .map_err(|e| Failure::of_call(&e))?;
            sent_to = Some(dest.name.clone());
            summary = Some(outcome.summary);
        }
        p.store
            .finish_action(action.id, ActionState::Done, "notice sent", now)
            .await?;
        let email = vars["person"]["email"].as_str().map(str::to_string);
        self.notices.push(
            crate::notify::Notice::new(
                crate::notify::NotifyOn::ContractEnding,
                format!(
                    "{}:{}:{days}",
                    job.person_key,
                    life.end_date.as_deref().unwrap_or("")
                ),
                vars.clone(),
            )
            .person(&job.person_key, email, manager_email.clone()),
        );
        let data = fields
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let rec = self.record(
            sent_to.as_deref(),
            &ev::ContractNoticeSent {
                fields: data,
                ticket: summary.as_deref(),
                destination: sent_to.as_deref(),
            },
        );
        self.pending.push(rec);
        if sent_to.is_none() {
            tracing::warn!(person = %job.person_key, "contract notice due but lifecycle.notify_destination \
                is not set; audited only");
        }
        self.save_life(None).await
    }

    /// A person's primary (else first) email from their newest records.
    pub(super) async fn primary_email(&self, person_key: &str) -> Result<Option<String>, Failure> {
        Ok(self
            .records_of(person_key)
            .await?
            .iter()
            .find_map(crate::notify::primary_email_of))
    }

    /// A person's newest records (one per source) this build can read.
    async fn records_of(&self, person_key: &str) -> Result<Vec<wit::Person>, Failure> {
        let events = self
            .p
            .store
            .latest_events_of(&self.job.tenant, person_key)
            .await?;
        Ok(events
            .iter()
            .filter_map(|e| crate::stored::decode(&e.body).ok())
            .map(|e| e.person)
            .collect())
    }
}
