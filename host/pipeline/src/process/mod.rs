//! Applying one job: rules, then each destination in order (resolve, plan,
//! guard, apply), recording every step; the attempt ends as completed, retry,
//! dead or held.

mod lifecycle;
mod recover;

use crate::plan::{self, PlannedOp};
use crate::resolve::{Match, resolve};
use crate::{DestinationConfig, Failure, Pipeline, backoff_ms};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tenure_runtime::wit;
use tenure_store::{
    AuditRecord, ClaimedJob, Finish, FinishedOp, GuardDecision, GuardRequest, JobLease, Link, LinkUpdate,
    NewConflict, NewOperation, OpResult,
};
use tracing::Instrument;

enum DestOutcome {
    Done,
    Held(String),
}

struct JobRun<'a> {
    p: &'a Pipeline,
    job: &'a ClaimedJob,
    /// This attempt's lease: every write of the attempt is fenced by it.
    lease: JobLease,
    /// Audit records not yet written; each store write takes them along.
    pending: Vec<AuditRecord>,
    /// The last operation's result, written with the job's next write (the next
    /// operation's intent or the end of the attempt): one write per operation.
    last_op: Option<FinishedOp>,
    /// Scheduled deletions this attempt carried out.
    deleted_actions: Vec<i64>,
    /// The person's lifecycle facts (loaded at the start of the attempt).
    life: crate::lifecycle::Lifecycle,
    /// The leaver's first pass: apply only disables.
    only_disable: bool,
    /// Destinations where this attempt created the person's account.
    created: Vec<String>,
    /// The person's state for this attempt.
    state: Option<crate::lifecycle::State>,
    /// Lifecycle facts changed since they were last written (they go with the job's end).
    life_unsaved: bool,
    /// Operations earlier attempts started but never recorded, not yet recovered
    /// (loaded on first use; see `recover`).
    interrupted: Option<Vec<tenure_store::OperationRow>>,
}

impl Pipeline {
    /// Runs one claimed job to the end of this attempt.
    pub(crate) async fn process(self: &Arc<Self>, job: ClaimedJob) {
        let span = tracing::info_span!(
            "event", tenant = %job.tenant, job = job.id, event = job.event.id,
            person = %job.person_key, kind = %job.event.kind, attempt = job.attempt
        );
        async move {
            let mut run = JobRun {
                p: self, job: &job, lease: job.lease(&self.owner), pending: Vec::new(), last_op: None, deleted_actions: Vec::new(),
                life: Default::default(), life_unsaved: false, only_disable: false, created: Vec::new(),
                state: None, interrupted: None,
            };
            let finish = run.run().await;
            let (kind, data) = match &finish {
                Finish::Completed => ("job.completed", json!({ "attempt": job.attempt })),
                Finish::Retry { run_at_ms, error, charge } => (
                    "job.retry",
                    json!({ "attempt": job.attempt, "error": error, "retry_at_ms": run_at_ms, "counts_as_attempt": charge }),
                ),
                Finish::Dead { error } => ("job.dead", json!({ "attempt": job.attempt, "error": error })),
                Finish::Held { reason } => ("job.held", json!({ "attempt": job.attempt, "reason": reason })),
            };
            let mut audit = std::mem::take(&mut run.pending);
            audit.push(run.record(kind, None, data));
            let outcome = match &finish {
                Finish::Completed => "completed",
                Finish::Retry { .. } => "retry",
                Finish::Dead { .. } => "dead",
                Finish::Held { .. } => "held",
            };
            // Facts noted but not yet written go with the job's end; facts that cannot be
            // serialised (never expected) are logged and the job still ends.
            let life = match run.life_unsaved.then(|| run.life_row()).transpose() {
                Ok(row) => row,
                Err(f) => {
                    tracing::error!(error = %f.message, "cannot record the lifecycle facts");
                    None
                }
            };
            match self.store.finish(&run.lease, finish.clone(), audit, run.last_op.take(), life).await {
                Ok(true) => {
                    self.metrics.attempts.with_label_values(&[job.tenant.as_str(), outcome]).inc();
                    if matches!(finish, Finish::Completed) {
                        let secs = (self.now() - job.event.received_ms).max(0) as f64 / 1000.0;
                        self.metrics.event_to_done.with_label_values(&[job.tenant.as_str()]).observe(secs);
                        if matches!(job.event.kind.as_str(), "joiner" | "rehire") {
                            self.metrics.time_to_provision.with_label_values(&[job.tenant.as_str()]).observe(secs);
                        }
                    }
                    match &finish {
                        Finish::Dead { error } => tracing::warn!(%error, "job dead-lettered"),
                        Finish::Retry { error, .. } => tracing::info!(%error, "job will retry"),
                        Finish::Held { reason } => tracing::warn!(%reason, "job held for a person"),
                        Finish::Completed => tracing::debug!("job completed"),
                    }
                }
                Ok(false) => tracing::warn!("lease lost before the attempt ended; another worker owns the job"),
                Err(e) => tracing::error!(error = %e, "cannot record the attempt; the lease will expire and it retries"),
            }
        }
        .instrument(span)
        .await
    }
}

impl JobRun<'_> {
    fn record(&self, kind: &str, destination: Option<&str>, data: serde_json::Value) -> AuditRecord {
        AuditRecord {
            tenant: self.job.tenant.clone(),
            kind: kind.into(),
            actor: "system".into(),
            person_key: Some(self.job.person_key.clone()),
            destination: destination.map(String::from),
            event_id: Some(self.job.event.id),
            job_id: Some(self.job.id),
            data,
        }
    }

    fn take(&mut self, extra: Option<AuditRecord>) -> Vec<AuditRecord> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(extra);
        out
    }

    /// Writes the last operation's result now (before a write that is not an operation).
    async fn flush(&mut self) -> Result<(), Failure> {
        match self.last_op.take() {
            Some(done) => self
                .p
                .store
                .op_finished(&self.lease, done)
                .await
                .map_err(|e| Failure::store(&e)),
            None => Ok(()),
        }
    }

    fn failed(&self, f: Failure) -> Finish {
        let error = format!("{}: {}", f.class, f.message);
        if f.retry {
            let delay = backoff_ms(&self.p.config.queue, self.job.attempt, f.retry_after_ms);
            Finish::Retry {
                run_at_ms: self.p.now() + delay as i64,
                error,
                // Waiting out a destination's rate limit is not a failed attempt.
                charge: f.class != crate::FailureClass::RateLimited,
            }
        } else {
            Finish::Dead { error }
        }
    }

    async fn run(&mut self) -> Finish {
        let (p, job) = (self.p, self.job);
        let Some(tenant) = p.config.tenants.get(&job.tenant) else {
            return Finish::Dead {
                error: format!("config: tenant {} is not configured", job.tenant),
            };
        };
        let mut event: wit::PersonEvent = match serde_json::from_str(&job.event.body) {
            Ok(e) => e,
            Err(e) => {
                return Finish::Dead {
                    error: format!("invalid-input: stored event cannot be read: {e}"),
                };
            }
        };
        // A withdrawal or deletion carries ids only: the rules see the person as last known.
        if matches!(event.kind, wit::EventKind::Withdrawn | wit::EventKind::Deleted) {
            match p
                .with_known_record(
                    &job.tenant,
                    &job.person_key,
                    job.event.id,
                    &job.event.source,
                    &event.person,
                )
                .await
            {
                Ok(known) => event.person = known,
                Err(e) => return self.failed(Failure::store(&e)),
            }
        }
        // A person known to several sources: the rules see the merged record.
        if !tenant.identity.link_by.is_empty() {
            match p
                .merged_person(&job.tenant, &job.person_key, &job.event.source, &event.person)
                .await
            {
                Ok(merged) => event.person = merged,
                Err(e) => return self.failed(Failure::store(&e)),
            }
        }
        // Each event carries the whole person; one that arrives after a newer one was
        // applied (a late webhook, a retried request) would undo it, so it is recorded and skipped.
        if let Some(occurred) = event.occurred_at.as_deref().and_then(crate::event::rfc3339_ms) {
            match p
                .store
                .newer_applied(&job.tenant, &job.person_key, occurred)
                .await
            {
                Ok(Some(newer)) => {
                    self.pending.push(self.record(
                        "event.superseded",
                        None,
                        json!({ "occurred_at": event.occurred_at, "newer_event": newer }),
                    ));
                    if let Some(id) =
                        crate::schedule::action_id(&job.event.source, &job.event.source_record_id)
                        && let Err(e) = p
                            .store
                            .finish_action(
                                id,
                                "cancelled",
                                "a newer record of the person was applied",
                                self.p.now(),
                            )
                            .await
                    {
                        return self.failed(Failure::store(&e));
                    }
                    return Finish::Completed;
                }
                Ok(None) => {}
                Err(e) => return self.failed(Failure::store(&e)),
            }
        }
        // A manager before their report: wait while the manager has unfinished events
        // (whichever arrived first), for a bounded time.
        let waited = self.p.now() - job.created_ms;
        if let Some(m) = &event.person.manager
            && waited < p.config.queue.manager_wait_max_ms as i64
        {
            let manager_key = format!("{}:{}", m.source, m.id);
            match p.store.has_unfinished(&job.tenant, &manager_key).await {
                Ok(true) if manager_key != job.person_key => {
                    return Finish::Retry {
                        run_at_ms: self.p.now() + p.config.queue.manager_wait_ms as i64,
                        error: format!("waiting for manager {manager_key} to be provisioned first"),
                        charge: false,
                    };
                }
                Ok(_) => {}
                Err(e) => return self.failed(Failure::store(&e)),
            }
        }
        // A job the scheduler made for a due action (a wake-up, a notice, a leaver step, a deletion).
        let scheduled = match crate::schedule::action_id(&job.event.source, &job.event.source_record_id) {
            Some(id) => match p.store.scheduled_action(id).await {
                Ok(a) => a.filter(|a| a.state == "queued"),
                Err(e) => return self.failed(Failure::store(&e)),
            },
            None => None,
        };
        // A wake-up or refresh is taken once its job runs (the job's own retries cover
        // failures), so that the person's next one can be scheduled.
        if let Some(a) = scheduled
            .as_ref()
            .filter(|a| a.action == crate::lifecycle::WAKE || a.action == crate::lifecycle::REFRESH)
            && let Err(e) = p.store.finish_action(a.id, "done", "re-evaluated", p.now()).await
        {
            return self.failed(Failure::store(&e));
        }
        // The person's dated facts, this event taken in, give their state now; the rules see it.
        if let Err(f) = self.load_life().await {
            return self.failed(f);
        }
        let now = p.now();
        if job.event.source != crate::schedule::SOURCE {
            let kind = crate::event::EventKind::from_wit(event.kind);
            let id = job.event.id;
            if let Some(note) = self.life_mut().observe(id, kind, &event, now) {
                let (kind, data) = note.audit();
                self.pending.push(self.record(kind, None, data));
            }
        }
        let state = self.life().state_at(now);
        self.state = Some(state);
        event.person.status = state.status();
        let rules = match p.runtime.plugin(&job.tenant, &tenant.rules) {
            Ok(r) => r,
            Err(e) => return self.failed(Failure::config(format!("rules plugin: {e}"))),
        };
        let context = wit::rules::Context {
            event: event.kind,
            destinations: tenant.destinations.iter().map(|d| d.name.clone()).collect(),
            now_ms: self.p.now(),
            trace: wit::rules::TraceLevel::Matched,
        };
        let evaluation = match rules.evaluate(&event.person, &context).await {
            Ok(e) => e,
            Err(e) => {
                let f = Failure::of_call(&e);
                p.metrics
                    .errors
                    .with_label_values(&[job.tenant.as_str(), "rules", f.class.as_str()])
                    .inc();
                self.pending.push(self.record(
                    "rules.failed",
                    None,
                    json!({ "class": f.class, "error": f.message }),
                ));
                // Bad data or a rule that fails on it: hold (never drop) until a
                // newer record for the person or a new rule-set version arrives.
                if f.class == crate::FailureClass::InvalidInput {
                    return Finish::Held {
                        reason: format!("rules: {}: {}", job.person_key, f.message),
                    };
                }
                return self.failed(f);
            }
        };
        let fired: Vec<_> = evaluation
            .trace
            .iter()
            .filter(|t| t.matched)
            .map(|t| {
                let inputs: serde_json::Map<_, _> = t
                    .inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                    .collect();
                json!({ "destination": t.destination, "rule": t.rule, "reason": t.reason, "inputs": inputs, "contributed": t.contributed })
            })
            .collect();
        let outputs: Vec<_> = evaluation
            .accounts
            .iter()
            .map(|a| {
                json!({ "destination": a.destination, "container": a.container, "groups": a.groups, "licenses": a.licenses,
                        "apps": a.app_assignments, "enabled": a.enabled, "expires_at": a.expires_at,
                        "attributes": crate::redaction::audit_attributes(a) })
            })
            .collect();
        self.pending.push(self.record(
            "rules.evaluated",
            None,
            json!({ "plugin": rules.plugin(), "version": rules.version(), "fired": fired, "outputs": outputs }),
        ));
        let mut worst: Option<Failure> = None;
        let terminated = state.is_gone();
        // A contract-expiry notice is a job of its own: it notifies and ends.
        if let Some(action) = scheduled
            .as_ref()
            .filter(|a| a.action.starts_with(crate::lifecycle::NOTICE_PREFIX))
        {
            return match self.send_notice(tenant, action).await {
                Ok(()) => Finish::Completed,
                Err(f) => self.failed(f),
            };
        }
        // Each destination's desired account: the rules' output, names settled, shaped by the state.
        let mut prepared = Vec::with_capacity(tenant.destinations.len());
        for dest in &tenant.destinations {
            let desired = evaluation
                .accounts
                .iter()
                .find(|a| a.destination == dest.name)
                .cloned();
            let due_step = scheduled
                .as_ref()
                .filter(|a| a.destination == dest.name)
                .and_then(|a| crate::lifecycle::step_index(&a.action));
            let shaped = crate::lifecycle::shape(dest, desired, state, self.life(), p.now(), due_step);
            if let Some(why) = &shaped.why {
                self.pending.push(self.record(
                    "lifecycle.shaped",
                    Some(&dest.name),
                    json!({ "state": state.as_str(), "why": why }),
                ));
            }
            let mut desired = shaped.desired;
            let unique = match desired.as_mut() {
                Some(d) => match self.settle_names(dest, d).await {
                    Ok(names) => names,
                    Err(f) => {
                        note_failure(p, &job.tenant, &dest.name, &mut worst, f);
                        continue;
                    }
                },
                None => Vec::new(),
            };
            let dest = if shaped.deprovision == dest.deprovision {
                std::borrow::Cow::Borrowed(dest)
            } else {
                std::borrow::Cow::Owned(DestinationConfig {
                    deprovision: shaped.deprovision,
                    ..dest.clone()
                })
            };
            prepared.push((dest, desired, unique, due_step));
        }
        // A leaver is disabled everywhere before anything else is taken away.
        if terminated && !self.life().applied.is_some_and(crate::lifecycle::State::is_gone) {
            self.only_disable = true;
            for (dest, desired, unique, _) in &prepared {
                match self
                    .destination(dest, desired.as_ref(), unique, terminated, None)
                    .await
                {
                    Ok(DestOutcome::Done) => {}
                    Ok(DestOutcome::Held(reason)) => return Finish::Held { reason },
                    Err(f) if f.class == crate::FailureClass::LeaseLost => return self.failed(f),
                    Err(f) => note_failure(p, &job.tenant, &dest.name, &mut worst, f),
                }
            }
            self.only_disable = false;
        }
        for (dest, desired, unique, due_step) in &prepared {
            let due = scheduled
                .as_ref()
                .filter(|a| a.destination == dest.name && a.action == crate::schedule::DELETE);
            let outcome = self
                .destination(dest, desired.as_ref(), unique, terminated, due)
                .await;
            let outcome = match outcome {
                Ok(DestOutcome::Done) => self
                    .after_destination(dest, desired.as_ref(), terminated, due)
                    .await
                    .map(|()| DestOutcome::Done),
                other => other,
            };
            let outcome = match outcome {
                Ok(DestOutcome::Done) => self
                    .destination_settled(dest, *due_step, scheduled.as_ref())
                    .await
                    .map(|()| DestOutcome::Done),
                other => other,
            };
            match outcome {
                Ok(DestOutcome::Done) => {}
                Ok(DestOutcome::Held(reason)) => return Finish::Held { reason },
                Err(f) if f.class == crate::FailureClass::LeaseLost => return self.failed(f),
                Err(f) => note_failure(p, &job.tenant, &dest.name, &mut worst, f),
            }
        }
        let settled = match &worst {
            None => self.settle_lifecycle(tenant, state, &event.person).await,
            Some(_) => {
                self.note_life(None);
                Ok(())
            }
        };
        if let Err(f) = settled {
            note_failure(p, &job.tenant, "lifecycle", &mut worst, f);
        }
        match worst {
            Some(f) => self.failed(f),
            None => Finish::Completed,
        }
    }

    /// Replaces a desired account's unique-naming requests with settled values
    /// (claimed in the store unless the destination runs dry).
    async fn settle_names(
        &mut self,
        dest: &DestinationConfig,
        desired: &mut wit::DesiredAccount,
    ) -> Result<Vec<String>, Failure> {
        let requests = crate::naming::take_requests(desired);
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let names = requests.iter().map(|r| r.attribute.clone()).collect();
        let (p, job) = (self.p, self.job);
        let assigned = p
            .assign_names(&job.tenant, &job.person_key, &requests, !dest.dry_run)
            .await?;
        for a in assigned.iter().filter(|a| a.how != "kept") {
            self.pending.push(self.record(
                "name.assigned",
                Some(&dest.name),
                json!({ "attribute": a.attribute, "value": a.value, "taken": a.taken, "unchecked": a.unchecked, "dry_run": dest.dry_run }),
            ));
        }
        crate::naming::apply(desired, &assigned);
        Ok(names)
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
        for name in unique {
            let Some(wit::Value::Text(existing)) = account
                .attributes
                .iter()
                .find(|a| a.name == *name)
                .map(|a| &a.value)
            else {
                continue;
            };
            let Some(slot) = desired.attributes.iter_mut().find(|a| a.name == *name) else {
                continue;
            };
            if existing.is_empty() || slot.value == wit::Value::Text(existing.clone()) {
                continue;
            }
            let ours = dest.dry_run
                || p.store
                    .claim_name(&job.tenant, name, existing, &job.person_key)
                    .await
                    .map_err(|e| Failure::store(&e))?;
            if ours {
                let instead_of = std::mem::replace(&mut slot.value, wit::Value::Text(existing.clone()));
                self.pending.push(self.record(
                    "name.kept",
                    Some(&dest.name),
                    json!({ "attribute": name, "value": existing, "instead_of": instead_of, "why": "the account was taken over with it" }),
                ));
            }
        }
        Ok(())
    }

    /// Grace-period bookkeeping once a destination is settled: a leaver whose account is
    /// linked and disabled gets a dated deletion (a return cancels it: `settle_lifecycle`).
    async fn after_destination(
        &mut self,
        dest: &DestinationConfig,
        desired: Option<&wit::DesiredAccount>,
        terminated: bool,
        due: Option<&tenure_store::ScheduledAction>,
    ) -> Result<(), Failure> {
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
                    "cancelled",
                    "no longer applies: the person is active again or the account is gone",
                    self.p.now(),
                )
                .await
                .map_err(|e| Failure::store(&e))?;
            self.pending.push(self.record(
                "deprovision.cancelled",
                Some(&dest.name),
                json!({ "action": action.id, "why": "no longer applies when due" }),
            ));
            return Ok(());
        }
        let leaving = terminated && desired.is_none_or(|d| !d.enabled);
        if leaving {
            let linked = p
                .store
                .link(&job.tenant, &dest.name, &job.person_key)
                .await
                .map_err(|e| Failure::store(&e))?
                .is_some();
            if !linked {
                return Ok(());
            }
            // The grace period counts from the day the termination took effect.
            let now = self.p.now();
            let due_ms = self.life().gone_at_ms().filter(|t| *t <= now).unwrap_or(now) + grace.0;
            let added = p
                .store
                .schedule_action(tenure_store::NewScheduledAction {
                    tenant: job.tenant.clone(),
                    person_key: job.person_key.clone(),
                    destination: dest.name.clone(),
                    action: crate::schedule::DELETE.into(),
                    due_ms,
                    reason: format!("leaver; delete_after {} ms", grace.0),
                    now_ms: self.p.now(),
                })
                .await
                .map_err(|e| Failure::store(&e))?;
            if added {
                self.pending.push(self.record(
                    "deprovision.scheduled",
                    Some(&dest.name),
                    json!({ "action": crate::schedule::DELETE, "due_ms": due_ms }),
                ));
            }
        }
        Ok(())
    }

    async fn destination(
        &mut self,
        dest: &DestinationConfig,
        desired: Option<&wit::DesiredAccount>,
        unique: &[String],
        terminated: bool,
        due: Option<&tenure_store::ScheduledAction>,
    ) -> Result<DestOutcome, Failure> {
        let (p, job) = (self.p, self.job);
        let store = &p.store;
        let name = dest.name.as_str();
        // The destination asked every caller to wait (a 429's Retry-After): this job waits too.
        if let Some(wait) = p.throttled(&job.tenant, name) {
            return Err(Failure {
                class: crate::FailureClass::RateLimited,
                message: format!(
                    "destination {name} asked to be left alone for {} ms more",
                    wait.as_millis()
                ),
                retry: true,
                retry_after_ms: Some(wait.as_millis() as u64 + 1),
            });
        }
        let r = resolve(p, &job.tenant, dest, &job.person_key, desired, Some(job.id)).await?;
        let mut kept: Option<wit::DesiredAccount> = None;
        let (current, link) = match r.matched.clone() {
            Match::Linked(acc) => (acc, r.link.clone()),
            Match::Adopt { account, why } => {
                let link = Link {
                    anchor: account.anchor.clone(),
                    managed_groups: r
                        .link
                        .as_ref()
                        .map(|l| l.managed_groups.clone())
                        .unwrap_or_default(),
                };
                let rec = self.record(
                    &format!("link.{why}"),
                    Some(name),
                    json!({ "anchor": account.anchor, "dry_run": dest.dry_run }),
                );
                if dest.dry_run {
                    self.pending.push(rec);
                } else {
                    let update = LinkUpdate {
                        tenant: job.tenant.clone(),
                        destination: dest.name.clone(),
                        person_key: job.person_key.clone(),
                        link: Some(link.clone()),
                    };
                    let audit = self.take(Some(rec));
                    self.flush().await?;
                    store
                        .put_link(&self.lease, update, audit)
                        .await
                        .map_err(|e| Failure::store(&e))?;
                }
                if let Some(d) = desired {
                    let mut d = d.clone();
                    self.keep_existing_names(dest, unique, &account, &mut d).await?;
                    kept = Some(d);
                }
                (Some(account), Some(link))
            }
            Match::Skip { why } => {
                self.pending
                    .push(self.record("destination.skipped", Some(name), json!({ "why": why })));
                return Ok(DestOutcome::Done);
            }
            Match::Conflict { kind, candidates } => {
                let rec = self.record(
                    "conflict.opened",
                    Some(name),
                    json!({ "kind": kind, "candidates": candidates, "dry_run": dest.dry_run }),
                );
                if dest.dry_run {
                    self.pending.push(rec);
                    return Ok(DestOutcome::Done);
                }
                let conflict = NewConflict {
                    tenant: job.tenant.clone(),
                    destination: dest.name.clone(),
                    person_key: job.person_key.clone(),
                    job_id: job.id,
                    kind: kind.into(),
                    candidates,
                    now_ms: self.p.now(),
                };
                let audit = self.take(Some(rec));
                self.flush().await?;
                store
                    .open_conflict(&self.lease, conflict, audit)
                    .await
                    .map_err(|e| Failure::store(&e))?;
                tracing::warn!(destination = name, kind, "conflict held for a person to decide");
                return Ok(DestOutcome::Held(format!("conflict:{name}")));
            }
        };
        let mut link = if self.job.attempt > 1 && !dest.dry_run {
            self.recover_interrupted(name, current.as_ref(), link).await?
        } else {
            link
        };
        let desired = kept.as_ref().or(desired);
        // Leave and return: remember the account before a leave changes it; give it back after.
        let restored = if self.only_disable {
            None
        } else {
            self.leave_and_return(name, desired, current.as_ref()).await?
        };
        let desired = restored.as_ref().or(desired);
        let planning_link = self.leave_link(name, link.as_ref());
        let mut plan = plan::plan(
            name,
            desired,
            current.as_ref(),
            planning_link.as_ref().or(link.as_ref()),
            &r.caps.operations,
            dest.deprovision,
            terminated,
        );
        if self.only_disable {
            plan.operations.retain(|o| o.kind == "disable");
            plan.unsupported.clear();
        }
        // A due grace-period deletion: only a still-disabled leaver's linked account goes.
        let deleting = match (due, current.as_ref(), link.as_ref()) {
            (Some(_), Some(acc), Some(l))
                if terminated
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
        let listed: Vec<_> = plan.operations.iter().map(describe).collect();
        self.pending.push(self.record(
            "plan.created",
            Some(name),
            json!({ "operations": listed, "unsupported": plan.unsupported, "dry_run": dest.dry_run }),
        ));
        if dest.dry_run {
            for op in &plan.operations {
                p.metrics
                    .operations
                    .with_label_values(&[job.tenant.as_str(), name, op.kind, "dry-run"])
                    .inc();
            }
            return Ok(DestOutcome::Done);
        }
        if plan.operations.iter().any(|o| o.destructive)
            && let Some(reason) = self.guard_check(dest).await?
        {
            return Ok(DestOutcome::Held(reason));
        }
        // Tickets have no state to diff against: one opened by an earlier attempt is not opened again.
        let done: Vec<String> = if plan.operations.iter().any(|o| o.kind == "open-ticket") {
            self.flush().await?;
            store
                .operations(job.id)
                .await
                .map_err(|e| Failure::store(&e))?
                .into_iter()
                .filter(|o| o.status == "done")
                .map(|o| o.op_key)
                .collect()
        } else {
            Vec::new()
        };
        let mut anchor = current.as_ref().map(|a| a.anchor.clone());
        for planned in &plan.operations {
            if planned.kind == "open-ticket" && done.contains(&planned.key) {
                continue; // opened by an earlier attempt of this job
            }
            let mut op = planned.op.clone();
            if let Some(a) = &anchor {
                plan::bind_anchor(&mut op, a);
            }
            let started = NewOperation {
                job_id: job.id,
                tenant: job.tenant.clone(),
                destination: dest.name.clone(),
                op_key: planned.key.clone(),
                kind: planned.kind.into(),
                target: planned.target.clone().or_else(|| anchor.clone()),
                destructive: planned.destructive,
                now_ms: self.p.now(),
            };
            let audit = self.take(None);
            let previous = self.last_op.take();
            let op_id = store
                .op_started(&self.lease, previous, started, audit)
                .await
                .map_err(|e| Failure::store(&e))?;
            // Only while the lease is known to hold: a stalled store must not let a
            // stale attempt keep changing the destination after another took over.
            if !p.lease_holds(job.id) {
                self.op_abandoned(op_id, planned, name, "the lease could not be confirmed; not sent");
                return Err(Failure {
                    class: crate::FailureClass::LeaseLost,
                    message: "the job's lease could not be confirmed (the store is stalled); stopped".into(),
                    retry: true,
                    retry_after_ms: None,
                });
            }
            let clock = Instant::now();
            let result = r.connector.apply(&op).await;
            let duration_ms = clock.elapsed().as_millis() as u64;
            match result {
                Ok(outcome) => {
                    if planned.kind == "open-ticket"
                        && let (Some(template), Some(state)) = (&planned.target, self.state)
                    {
                        self.life_mut().remember_ticket(&dest.name, state, template);
                    }
                    if planned.kind == "create" {
                        self.created.push(dest.name.clone());
                        match &outcome.anchor {
                            Some(a) if !a.is_empty() => anchor = Some(a.clone()),
                            _ => {
                                let f = Failure {
                                    class: crate::FailureClass::Permanent,
                                    message: format!(
                                        "destination {name}: the connector created an account but returned no anchor"
                                    ),
                                    retry: false,
                                    retry_after_ms: None,
                                };
                                self.op_failed(op_id, planned, name, duration_ms, &f);
                                return Err(f);
                            }
                        }
                    }
                    let created = if planned.kind == "create" {
                        outcome.anchor.clone()
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
                    let rec = self.record(
                        "op.applied",
                        Some(name),
                        json!({ "op": planned.kind, "key": planned.key, "target": planned.target, "anchor": anchor,
                                "status": "done", "duration_ms": duration_ms, "summary": outcome.summary }),
                    );
                    let result = OpResult {
                        status: "done".into(),
                        detail: outcome.summary,
                        anchor: created,
                        now_ms: self.p.now(),
                    };
                    self.last_op = Some(FinishedOp {
                        op_id,
                        result,
                        link: update,
                        audit: vec![rec],
                    });
                    p.metrics
                        .operations
                        .with_label_values(&[job.tenant.as_str(), name, planned.kind, "done"])
                        .inc();
                }
                Err(e) => {
                    let f = Failure::of_call(&e);
                    self.op_failed(op_id, planned, name, duration_ms, &f);
                    return Err(f);
                }
            }
        }
        if deleting && let Some(action) = due {
            self.flush().await?;
            p.store
                .finish_action(action.id, "done", "deleted after the grace period", self.p.now())
                .await
                .map_err(|e| Failure::store(&e))?;
            self.deleted_actions.push(action.id);
            self.pending.push(self.record(
                "deprovision.deleted",
                Some(name),
                json!({ "action": action.id, "anchor": anchor }),
            ));
        }
        Ok(DestOutcome::Done)
    }

    /// An operation whose intent was recorded but which was not sent.
    fn op_abandoned(&mut self, op_id: i64, planned: &PlannedOp, destination: &str, why: &str) {
        let rec = self.record(
            "op.abandoned",
            Some(destination),
            json!({ "op": planned.kind, "key": planned.key, "target": planned.target, "why": why }),
        );
        self.last_op = Some(FinishedOp {
            op_id,
            result: OpResult {
                status: "abandoned".into(),
                detail: why.into(),
                anchor: None,
                now_ms: self.p.now(),
            },
            link: None,
            audit: vec![rec],
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
            "op.failed",
            Some(destination),
            json!({ "op": planned.kind, "key": planned.key, "target": planned.target, "status": "failed",
                    "duration_ms": duration_ms, "class": f.class, "error": f.message, "retry_after_ms": f.retry_after_ms }),
        );
        let result = OpResult {
            status: "failed".into(),
            detail: format!("{}: {}", f.class, f.message),
            anchor: None,
            now_ms: self.p.now(),
        };
        self.p
            .metrics
            .operations
            .with_label_values(&[self.job.tenant.as_str(), destination, planned.kind, "failed"])
            .inc();
        self.last_op = Some(FinishedOp {
            op_id,
            result,
            link: None,
            audit: vec![rec],
        });
    }

    /// The mass-change guard: None to go ahead, Some(hold reason) to stop.
    async fn guard_check(&mut self, dest: &DestinationConfig) -> Result<Option<String>, Failure> {
        let (p, job) = (self.p, self.job);
        let g = &dest.guard;
        let alert = self.record("guard.tripped", Some(&dest.name), serde_json::Value::Null);
        self.flush().await?;
        let request = GuardRequest {
            tenant: job.tenant.clone(),
            destination: dest.name.clone(),
            job_id: job.id,
            now_ms: self.p.now(),
            window_ms: g.window_secs * 1000,
            max_accounts: g.max_accounts,
            max_percent: g.max_percent,
            min_population: g.min_population,
            alert,
        };
        match p
            .store
            .guard_admit(request)
            .await
            .map_err(|e| Failure::store(&e))?
        {
            GuardDecision::Admitted { recent, by_approval } => {
                if by_approval {
                    self.pending.push(self.record(
                        "guard.approved_change",
                        Some(&dest.name),
                        json!({ "recent": recent }),
                    ));
                }
                Ok(None)
            }
            GuardDecision::Held { why, newly_tripped } => {
                if newly_tripped {
                    tracing::error!(destination = %dest.name, %why, "mass-change guard tripped; approval required");
                }
                Ok(Some(format!("guard:{}", dest.name)))
            }
        }
    }
}

fn describe(op: &PlannedOp) -> serde_json::Value {
    json!({ "op": op.kind, "key": op.key, "target": op.target, "destructive": op.destructive })
}

/// Counts a destination's failure and keeps the one that decides the job's fate:
/// a permanent failure outranks a retryable one; among retries the longest wait wins.
fn note_failure(p: &Pipeline, tenant: &str, destination: &str, worst: &mut Option<Failure>, f: Failure) {
    p.metrics
        .errors
        .with_label_values(&[tenant, destination, f.class.as_str()])
        .inc();
    // One job's 429 holds back every job's calls to the destination until it passes.
    if f.class == crate::FailureClass::RateLimited
        && let Some(ms) = f.retry_after_ms
    {
        p.throttle(tenant, destination, ms);
    }
    let replace = match worst {
        None => true,
        Some(w) => (w.retry && !f.retry) || (w.retry == f.retry && f.retry_after_ms > w.retry_after_ms),
    };
    if replace {
        *worst = Some(f);
    }
}
