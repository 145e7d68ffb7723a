//! The lifecycle side of a job: the person's state shapes each destination's
//! desired account (pre-hire window, withdrawn hire, leaver steps), a leave
//! remembers what it takes away and a return gives it back, and once the job
//! is applied the person's dated actions are brought in line with their facts
//! (the next wake-up, contract notices, leaver steps) and a newly provisioned
//! manager's reports are refreshed.

use super::JobRun;
use crate::lifecycle::{Lifecycle, NOTICE_PREFIX, REFRESH, STEP_PREFIX, SavedAccess, State, WAKE, step_key};
use crate::{DestinationConfig, Failure, TenantPipeline};
use serde_json::json;
use tenure_runtime::wit;
use tenure_store::{ActionMatch, LifecycleRow, NewScheduledAction, ScheduledAction};

fn saved_of(acc: &wit::Account) -> SavedAccess {
    SavedAccess {
        enabled: acc.enabled,
        container: acc.container.clone(),
        groups: acc.groups.clone(),
        licenses: acc.licenses.clone(),
        apps: acc.app_assignments.clone(),
    }
}

fn union(into: &mut Vec<String>, more: &[String]) {
    for m in more {
        if !into.contains(m) {
            into.push(m.clone());
        }
    }
}

impl JobRun<'_> {
    pub(super) fn life(&self) -> &Lifecycle {
        &self.life
    }

    pub(super) fn life_mut(&mut self) -> &mut Lifecycle {
        &mut self.life
    }

    fn state(&self) -> State {
        self.state.unwrap_or(State::Active)
    }

    /// Reads the person's lifecycle facts.
    pub(super) async fn load_life(&mut self) -> Result<(), Failure> {
        self.life = self
            .p
            .lifecycle_of(&self.job.tenant, &self.job.person_key)
            .await?;
        Ok(())
    }

    /// Writes the person's lifecycle facts (with the state applied, when given).
    pub(super) async fn save_life(&mut self, applied: Option<State>) -> Result<(), Failure> {
        self.note_life(applied);
        let row = self.life_row()?;
        self.p
            .store
            .put_lifecycle(&self.lease, &self.job.tenant, row)
            .await
            .map_err(|e| Failure::store(&e))?;
        self.life_unsaved = false;
        Ok(())
    }

    /// Like [`Self::save_life`], but the facts are written with the job's end (one
    /// store write fewer for every job).
    pub(super) fn note_life(&mut self, applied: Option<State>) {
        let now = self.p.now();
        if let Some(state) = applied {
            self.life_mut().applied(state, now);
        }
        self.life_unsaved = true;
    }

    /// The lifecycle facts as the store keeps them.
    pub(super) fn life_row(&self) -> Result<LifecycleRow, Failure> {
        Ok(LifecycleRow {
            person_key: self.job.person_key.clone(),
            state: self.life().applied.map_or("new", State::as_str).into(),
            manager_key: self.life().manager.clone(),
            doc: serde_json::to_string(self.life()).map_err(|e| Failure::config(e.to_string()))?,
            updated_ms: self.p.now(),
        })
    }

    /// On leave: saves the account as it is before the leave changes it (once).
    /// Back from leave: the desired account with what the leave took away given back.
    pub(super) async fn leave_and_return(
        &mut self,
        destination: &str,
        desired: Option<&wit::DesiredAccount>,
        current: Option<&wit::Account>,
    ) -> Result<Option<wit::DesiredAccount>, Failure> {
        match self.state() {
            State::OnLeave => {
                if let Some(acc) = current
                    && !self.life().saved.contains_key(destination)
                {
                    let saved = saved_of(acc);
                    self.pending.push(self.record(
                        "leave.saved",
                        Some(destination),
                        json!({ "enabled": saved.enabled, "container": saved.container, "groups": saved.groups,
                                "licenses": saved.licenses, "apps": saved.apps }),
                    ));
                    self.life_mut().saved.insert(destination.to_string(), saved);
                    // Saved before anything changes, so a retry never saves the half-changed account.
                    self.save_life(None).await?;
                }
                Ok(None)
            }
            State::Active => {
                let (Some(saved), Some(want)) = (self.life().saved.get(destination), desired) else {
                    return Ok(None);
                };
                let mut d = want.clone();
                union(&mut d.groups, &saved.groups);
                union(&mut d.licenses, &saved.licenses);
                union(&mut d.app_assignments, &saved.apps);
                if saved.container.is_some() {
                    d.container = saved.container.clone();
                }
                d.enabled = saved.enabled;
                Ok(Some(d))
            }
            _ => Ok(None),
        }
    }

    /// While on leave, groups the account had before the leave count as managed,
    /// so the rule set can take sensitive ones away even if granted by hand.
    pub(super) fn leave_link(
        &self,
        destination: &str,
        link: Option<&tenure_store::Link>,
    ) -> Option<tenure_store::Link> {
        if self.state() != State::OnLeave {
            return None;
        }
        let saved = self.life().saved.get(destination)?;
        let mut l = link?.clone();
        union(&mut l.managed_groups, &saved.groups);
        Some(l)
    }

    /// Bookkeeping once a destination is settled: a finished return forgets the
    /// saved access; a leaver step is marked done (or cancelled if the person is back).
    pub(super) async fn destination_settled(
        &mut self,
        dest: &DestinationConfig,
        due_step: Option<usize>,
        scheduled: Option<&ScheduledAction>,
    ) -> Result<(), Failure> {
        let state = self.state();
        if state == State::Active
            && let Some(saved) = self.life_mut().saved.remove(&dest.name)
        {
            self.pending.push(self.record(
                "leave.restored",
                Some(&dest.name),
                json!({ "enabled": saved.enabled, "container": saved.container, "groups": saved.groups }),
            ));
        }
        let (Some(i), Some(action)) = (due_step, scheduled) else {
            return Ok(());
        };
        let now = self.p.now();
        if state.is_gone() {
            self.life_mut()
                .steps_done
                .entry(dest.name.clone())
                .or_default()
                .push(step_key(i));
            let name = dest.leaver_steps.get(i).map(|s| s.action.name()).unwrap_or("?");
            self.p
                .store
                .finish_action(action.id, "done", &format!("leaver step {i}: {name}"), now)
                .await
                .map_err(|e| Failure::store(&e))?;
            self.pending.push(self.record(
                "leaver.step_done",
                Some(&dest.name),
                json!({ "step": i, "action": name, "scheduled": action.id }),
            ));
        } else {
            self.p
                .store
                .finish_action(action.id, "cancelled", "the person is back", now)
                .await
                .map_err(|e| Failure::store(&e))?;
            self.pending.push(self.record(
                "leaver.step_cancelled",
                Some(&dest.name),
                json!({ "step": i, "scheduled": action.id, "why": "the person is back" }),
            ));
        }
        Ok(())
    }

    /// Once every destination is applied: the state is recorded, the person's dated
    /// actions follow their facts, and a newly provisioned manager's reports are refreshed.
    pub(super) async fn settle_lifecycle(
        &mut self,
        tenant: &TenantPipeline,
        state: State,
        person: &wit::Person,
    ) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let now = p.now();
        let before = self.life().applied;
        let became_gone = state.is_gone() && !before.is_some_and(State::is_gone);
        self.note_life(Some(state));
        if before != Some(state) {
            let l = self.life();
            self.pending.push(self.record(
                "lifecycle.changed",
                None,
                json!({ "from": before.map(State::as_str), "to": state.as_str(), "time_zone": l.time_zone,
                        "start_date": l.start_date, "last_day": l.last_day, "end_date": l.end_date,
                        "leave_from": l.leave_from, "leave_until": l.leave_until }),
            ));
        }
        // The person's open actions, read once, so that only real changes are written
        // (a person's jobs run one at a time, so nothing else adds these kinds meanwhile).
        let open = p
            .store
            .open_actions(&job.tenant, &job.person_key)
            .await
            .map_err(|e| Failure::store(&e))?;
        let any_open = |kind: ActionMatch<'_>| open.iter().any(|a| kind.matches(&a.action));
        let schedule = |destination: &str, action: String, due_ms: i64, reason: String| NewScheduledAction {
            tenant: job.tenant.clone(),
            person_key: job.person_key.clone(),
            destination: destination.into(),
            action,
            due_ms,
            reason,
            now_ms: now,
        };
        // The next wake-up.
        let prehire: Vec<u32> = tenant
            .destinations
            .iter()
            .filter_map(|d| d.prehire_days)
            .collect();
        let wake = self.life().next_change(now, &prehire);
        self.follow_action(
            &open,
            WAKE,
            wake,
            || "the person's next dated change".into(),
            "no dated change ahead",
        )
        .await?;
        // Contract notices follow the end date (an extension moves them, a conversion ends them).
        let days = &tenant.lifecycle.contract_notice_days;
        let ahead = self.life().notices(now, days);
        for n in days {
            let due = ahead.iter().find(|(d, _)| d == n).map(|(_, due)| *due);
            let end = self.life().end_date.clone().unwrap_or_default();
            self.follow_action(
                &open,
                &format!("{NOTICE_PREFIX}{n}d"),
                due,
                || format!("contract ends {end}"),
                "no contract end ahead",
            )
            .await?;
        }
        // Leaver steps: scheduled once when the person goes; cancelled when they come back.
        if became_gone && state != State::Withdrawn {
            let since = self.life().gone_since_ms.unwrap_or(now);
            for dest in &tenant.destinations {
                for (i, step) in dest.leaver_steps.iter().enumerate() {
                    let due = since + step.after.0;
                    let added = p
                        .store
                        .schedule_action(schedule(
                            &dest.name,
                            format!("{STEP_PREFIX}{i}"),
                            due,
                            format!("leaver step {i}: {}", step.action.name()),
                        ))
                        .await
                        .map_err(|e| Failure::store(&e))?;
                    if added {
                        self.pending.push(self.record(
                            "leaver.step_scheduled",
                            Some(&dest.name),
                            json!({ "step": i, "action": step.action.name(), "due_ms": due }),
                        ));
                    }
                }
            }
        } else if !state.is_gone()
            && (any_open(ActionMatch::StartsWith(STEP_PREFIX))
                || any_open(ActionMatch::Is(crate::schedule::DELETE)))
        {
            // Back (a rehire, even one whose start date is still ahead): no step and no
            // deletion may touch the account any more.
            let back = |action| {
                p.store.cancel_actions(
                    &job.tenant,
                    &job.person_key,
                    None,
                    action,
                    "the person is back",
                    now,
                )
            };
            let steps = back(ActionMatch::StartsWith(STEP_PREFIX))
                .await
                .map_err(|e| Failure::store(&e))?;
            if steps > 0 {
                self.pending.push(self.record(
                    "leaver.steps_cancelled",
                    None,
                    json!({ "cancelled": steps, "why": "the person is back" }),
                ));
            }
            let deletions = back(ActionMatch::Is(crate::schedule::DELETE))
                .await
                .map_err(|e| Failure::store(&e))?;
            if deletions > 0 {
                self.pending.push(self.record(
                    "deprovision.cancelled",
                    None,
                    json!({ "action": crate::schedule::DELETE, "cancelled": deletions, "why": "the person is back" }),
                ));
            }
        }
        // A manager provisioned after their reports: the reports get their manager now.
        if !self.created.is_empty() {
            let mut keys = vec![job.person_key.clone()];
            keys.extend(person.ids.iter().map(|i| format!("{}:{}", i.source, i.id)));
            keys.dedup();
            let reports = p
                .store
                .reports_of(&job.tenant, keys)
                .await
                .map_err(|e| Failure::store(&e))?;
            for report in reports.iter().filter(|r| **r != job.person_key) {
                p.store
                    .reschedule_action(NewScheduledAction {
                        person_key: report.clone(),
                        ..schedule(
                            "",
                            REFRESH.into(),
                            now,
                            format!("manager {} provisioned", job.person_key),
                        )
                    })
                    .await
                    .map_err(|e| Failure::store(&e))?;
            }
            if !reports.is_empty() {
                self.pending.push(self.record(
                    "manager.reports_refreshed",
                    None,
                    json!({ "reports": reports, "destinations": self.created }),
                ));
            }
        }
        Ok(())
    }

    /// Keeps the person-wide action `action` due at `due`, or cancels it when nothing is
    /// due; writes only when the person's `open` actions show a change (a queued one is
    /// left to run).
    async fn follow_action(
        &self,
        open: &[ScheduledAction],
        action: &str,
        due: Option<i64>,
        reason: impl FnOnce() -> String,
        none_due: &str,
    ) -> Result<(), Failure> {
        let (p, job) = (self.p, self.job);
        let current = open
            .iter()
            .find(|a| a.destination.is_empty() && a.action == action);
        match (due, current) {
            (Some(due), Some(a)) if a.due_ms == due || a.state == "queued" => Ok(()),
            (Some(due), _) => p
                .store
                .reschedule_action(NewScheduledAction {
                    tenant: job.tenant.clone(),
                    person_key: job.person_key.clone(),
                    destination: String::new(),
                    action: action.into(),
                    due_ms: due,
                    reason: reason(),
                    now_ms: p.now(),
                })
                .await
                .map(drop),
            (None, None) => Ok(()),
            (None, Some(_)) => p
                .store
                .cancel_actions(
                    &job.tenant,
                    &job.person_key,
                    Some(""),
                    ActionMatch::Is(action),
                    none_due,
                    p.now(),
                )
                .await
                .map(drop),
        }
        .map_err(|e| Failure::store(&e))
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
        let days: u32 = action
            .action
            .strip_prefix(NOTICE_PREFIX)
            .and_then(|d| d.strip_suffix('d'))
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        let still = self
            .life()
            .notices(action.due_ms - 1, &[days])
            .iter()
            .any(|(_, due)| *due == action.due_ms);
        if !still || self.state().is_gone() {
            p.store
                .finish_action(action.id, "cancelled", "the contract changed", now)
                .await
                .map_err(|e| Failure::store(&e))?;
            self.pending.push(self.record(
                "contract.notice_cancelled",
                None,
                json!({ "days_before": days, "why": "the contract changed" }),
            ));
            return self.save_life(None).await;
        }
        let life = self.life().clone();
        let manager_email = match &life.manager {
            Some(m) => self.primary_email(m).await?,
            None => None,
        };
        let person = self.primary_email(&job.person_key).await?;
        let fields = vec![
            ("person".to_string(), job.person_key.clone()),
            ("person_email".into(), person.unwrap_or_default()),
            ("manager".into(), life.manager.clone().unwrap_or_default()),
            ("manager_email".into(), manager_email.clone().unwrap_or_default()),
            ("end_date".into(), life.end_date.clone().unwrap_or_default()),
            ("days_before".into(), days.to_string()),
        ];
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
            let ticket = wit::Ticket {
                template: tenant.lifecycle.notice_template.clone(),
                fields: fields.clone(),
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
            .finish_action(action.id, "done", "notice sent", now)
            .await
            .map_err(|e| Failure::store(&e))?;
        let data: serde_json::Map<String, serde_json::Value> =
            fields.into_iter().map(|(k, v)| (k, json!(v))).collect();
        self.pending.push(self.record(
            "contract.notice_sent",
            sent_to.as_deref(),
            json!({ "fields": data, "ticket": summary, "destination": sent_to }),
        ));
        if sent_to.is_none() {
            tracing::warn!(person = %job.person_key, "contract notice due but lifecycle.notify_destination is not set; audited only");
        }
        self.save_life(None).await
    }

    /// A person's primary (else first) email from their newest records.
    async fn primary_email(&self, person_key: &str) -> Result<Option<String>, Failure> {
        let events = self
            .p
            .store
            .latest_events_of(&self.job.tenant, person_key)
            .await
            .map_err(|e| Failure::store(&e))?;
        for e in events {
            if let Ok(ev) = serde_json::from_str::<wit::PersonEvent>(&e.body) {
                let emails = &ev.person.emails;
                if let Some(m) = emails.iter().find(|m| m.primary).or(emails.first()) {
                    return Ok(Some(m.value.clone()));
                }
            }
        }
        Ok(None)
    }
}
