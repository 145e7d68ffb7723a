//! Applying one job, in named stages:
//!
//! 1. [admit](JobRun::admit): the event as stored, the person as last known and
//!    across sources; a late event is skipped, a manager goes first, a due action is
//!    taken, the lifecycle facts are observed;
//! 2. [evaluate](JobRun::evaluate): the rules, audited;
//! 3. [prepare](JobRun::prepare): each destination's target, through the one
//!    desired-state path ([`crate::desired`]), names claimed;
//! 4. [disable first](JobRun::disable_first): a leaver is disabled everywhere
//!    before anything else is taken away;
//! 5. [apply](JobRun::apply): each destination resolved, planned, guarded and
//!    applied ([`apply`]);
//! 6. [settle](JobRun::settle): the lifecycle's bookkeeping and dated actions
//!    ([`lifecycle`]).
//!
//! Every step is audited; the attempt ends completed, retry, dead or held.

mod admit;
mod apply;
mod lifecycle;
mod recover;
mod supervise;
mod tickets;

use crate::audit_events::{self as ev, AuditEvent};
use crate::desired::{Names, Subject, Target};
use crate::lifecycle::{Lifecycle, State};
use crate::{Failure, FailureClass, Pipeline, TenantPipeline, backoff_ms};
use std::sync::Arc;
use tenure_runtime::wit;
use tenure_store::{
    AuditRecord, ClaimedJob, Finish, FinishedOp, JobLease, OperationKind, OperationStatus, ScheduledAction,
};
use tracing::Instrument;

/// How a destination's turn ended when it did not fail.
enum DestOutcome {
    Done,
    Held(String),
}

/// What admission found: the event to apply, and the due action it carries out.
struct Admitted {
    event: wit::PersonEvent,
    scheduled: Option<ScheduledAction>,
}

/// The stages' way to end the attempt early.
type Stage<T> = Result<T, Finish>;

struct JobRun<'a> {
    p: &'a Pipeline,
    job: &'a ClaimedJob,
    /// This attempt's lease: every write of the attempt is fenced by it.
    lease: JobLease,
    /// Audit records not yet written; each store write takes them along.
    pending: Vec<AuditRecord>,
    /// Operations' results not yet written: they go with the job's next write (the
    /// next destination's intents or the end of the attempt).
    unwritten_ops: Vec<FinishedOp>,
    /// Scheduled deletions this attempt carried out.
    deleted_actions: Vec<i64>,
    /// The person's lifecycle facts (loaded at admission).
    life: Lifecycle,
    /// Whether `life` holds what the store had (read once per attempt: nothing else writes a
    /// person's facts while their job runs).
    life_loaded: bool,
    /// Destinations where this attempt created the person's account.
    created: Vec<String>,
    /// The accounts this attempt created: (destination, anchor).
    created_accounts: Vec<(String, String)>,
    /// Notifications this attempt raised, queued with its end.
    notices: Vec<crate::notify::Notice>,
    /// The person's state for this attempt.
    state: State,
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
            // Another host published since this one loaded its rule set: load it first.
            if job.rule_set.is_some() && job.rule_set != self.running_rule_set(&job.tenant) {
                self.follow_rule_set(&job.tenant).await;
            }
            let mut run = JobRun {
                p: self,
                job: &job,
                lease: job.lease(&self.owner),
                pending: Vec::new(),
                unwritten_ops: Vec::new(),
                deleted_actions: Vec::new(),
                life: Lifecycle::default(),
                life_loaded: false,
                created: Vec::new(),
                created_accounts: Vec::new(),
                notices: Vec::new(),
                state: State::Active,
                life_unsaved: false,
                interrupted: None,
            };
            let finish = run.run().await;
            run.end(finish).await;
        }
        .instrument(span)
        .await
    }
}

impl JobRun<'_> {
    /// The table of contents.
    async fn run(&mut self) -> Finish {
        let Some(tenant) = self.p.config.tenants.get(&self.job.tenant) else {
            return Finish::Dead {
                error: format!("config: tenant {} is not configured", self.job.tenant),
            };
        };
        let admitted = match self.admit().await {
            Ok(a) => a,
            Err(finish) => return finish,
        };
        if let Err(finish) = self.hold_for_tickets(tenant, admitted.scheduled.as_ref()).await {
            return finish;
        }
        let evaluation = match self.evaluate(tenant, &admitted).await {
            Ok(e) => e,
            Err(finish) => return finish,
        };
        // A contract-expiry notice is a job of its own: it notifies and ends.
        if let Some(action) = admitted
            .scheduled
            .as_ref()
            .filter(|a| matches!(a.action, tenure_store::ActionKind::Notice { .. }))
        {
            return match self.send_notice(tenant, action).await {
                Ok(()) => Finish::Completed,
                Err(f) => self.failed(f),
            };
        }
        let mut worst: Option<Failure> = None;
        let targets = self.prepare(tenant, &admitted, &evaluation, &mut worst).await;
        if let Err(finish) = self.disable_first(&targets, &mut worst).await {
            return finish;
        }
        if let Err(finish) = self
            .apply(&targets, admitted.scheduled.as_ref(), &mut worst)
            .await
        {
            return finish;
        }
        self.account_ready(&admitted.event.person).await;
        self.settle(tenant, &admitted.event.person, worst).await
    }

    /// Notes that the person's accounts are ready when this job created any, in this attempt or
    /// an earlier one that failed afterwards (sent once the attempt's end is written, if it
    /// completes).
    async fn account_ready(&mut self, person: &wit::Person) {
        let mut created = self.created_accounts.clone();
        if self.job.attempt > 1
            && let Ok(ops) = self.p.store.operations(self.job.id).await
        {
            for o in ops
                .iter()
                .filter(|o| o.kind == OperationKind::Create && o.status == OperationStatus::Done)
            {
                if let Some(anchor) = &o.anchor
                    && !created.iter().any(|(d, _)| *d == o.destination)
                {
                    created.push((o.destination.clone(), anchor.clone()));
                }
            }
        }
        if created.is_empty() {
            return;
        }
        let known_manager = match self.life.manager.clone() {
            Some(m) => self.primary_email(&m).await.ok().flatten(),
            None => None,
        };
        // A manager Tenure does not know as a person: the email the source gave (Lever's hiring
        // manager is a Lever user, sent as `manager_email`).
        let manager_email = known_manager.or_else(|| crate::notify::custom_text(person, "manager_email"));
        let vars = crate::notify::person_vars(person);
        let email = vars["email"].as_str().map(str::to_string);
        let manager = serde_json::json!({ "key": self.life.manager, "email": manager_email });
        let accounts: Vec<serde_json::Value> = created
            .iter()
            .map(|(destination, anchor)| serde_json::json!({ "destination": destination, "anchor": anchor }))
            .collect();
        let notice = crate::notify::Notice::new(
            crate::notify::NotifyOn::AccountReady,
            format!("{}:{}", self.job.person_key, self.life.hires),
            serde_json::json!({ "person": vars, "manager": manager, "accounts": accounts }),
        )
        .person(&self.job.person_key, email, manager_email);
        self.notices.push(notice);
    }

    /// Writes the attempt's end with its audit, the last operation's result, the
    /// lifecycle facts not yet written and its notifications, in one store write.
    async fn end(&mut self, finish: Finish) {
        let (p, job) = (self.p, self.job);
        let attempt = job.attempt;
        let record = match &finish {
            Finish::Completed => self.record(None, &ev::JobCompleted { attempt }),
            Finish::Retry {
                run_at_ms,
                error,
                charge,
            } => self.record(
                None,
                &ev::JobRetry {
                    attempt,
                    error,
                    retry_at_ms: *run_at_ms,
                    counts_as_attempt: *charge,
                },
            ),
            Finish::Dead { error } => self.record(None, &ev::JobDead { attempt, error }),
            Finish::Held { reason } => self.record(None, &ev::JobHeld { attempt, reason }),
        };
        let audit = self.take(Some(record));
        // Facts noted but not yet written go with the job's end; facts that cannot be
        // serialised (never expected) are logged and the job still ends.
        let life = match self.life_unsaved.then(|| self.life_row()).transpose() {
            Ok(row) => row,
            Err(f) => {
                tracing::error!(error = %f.message, "cannot record the lifecycle facts");
                None
            }
        };
        let messages: Vec<_> = self
            .notices(&finish)
            .iter()
            .flat_map(|n| p.messages(&job.tenant, n))
            .collect();
        let any_message = !messages.is_empty();
        match p
            .store
            .finish(
                &self.lease,
                finish.clone(),
                audit,
                std::mem::take(&mut self.unwritten_ops),
                life,
                messages,
            )
            .await
        {
            Ok(true) => {
                if any_message {
                    p.notifications_waiting.notify_one();
                }
                let elapsed_ms = p.now() - job.event.received_ms;
                p.metrics
                    .attempt_ended(&job.tenant, &finish, job.event.kind, elapsed_ms);
                match &finish {
                    Finish::Dead { error } => tracing::warn!(%error, "job dead-lettered"),
                    Finish::Retry { error, .. } => tracing::info!(%error, "job will retry"),
                    Finish::Held { reason } => tracing::warn!(%reason, "job held for a person"),
                    Finish::Completed => {
                        tracing::debug!("job completed");
                        p.job_completed(&job.tenant, &job.person_key);
                    }
                }
            }
            Ok(false) => tracing::warn!("lease lost before the attempt ended; another worker owns the job"),
            Err(e) => {
                tracing::error!(error = %e, "cannot record the attempt; the lease will expire and it retries")
            }
        }
    }

    /// The notifications of an attempt's end, queued with it: those its stages raised
    /// (accounts ready only when it completes) and a dead or held job's own.
    fn notices(&mut self, finish: &Finish) -> Vec<crate::notify::Notice> {
        use crate::notify::{Notice, NotifyOn};
        let job = self.job;
        let mut notices = std::mem::take(&mut self.notices);
        if !matches!(finish, Finish::Completed) {
            notices.retain(|n| n.on != NotifyOn::AccountReady);
        }
        let about = |on, key: String, vars| Notice::new(on, key, vars).person(&job.person_key, None, None);
        match finish {
            Finish::Dead { error } => notices.push(about(
                NotifyOn::JobDead,
                format!("{}:{}", job.id, job.attempt),
                serde_json::json!({ "job": job.id, "attempt": job.attempt, "error": error }),
            )),
            Finish::Held { reason } => notices.push(about(
                NotifyOn::JobHeld,
                format!("{}:{reason}", job.id),
                serde_json::json!({ "job": job.id, "reason": reason }),
            )),
            _ => {}
        }
        notices
    }

    /// Stage 2: the rules' verdict, audited with the rules that fired and what they
    /// asked of each destination (redacted values masked).
    async fn evaluate(
        &mut self,
        tenant: &TenantPipeline,
        admitted: &Admitted,
    ) -> Stage<wit::rules::Evaluation> {
        let (p, job) = (self.p, self.job);
        if p.runtime.rule_set_withheld(&job.tenant, &tenant.rules) {
            // Released when a version is published, like any job held on its rules.
            return Err(Finish::Held {
                reason: format!(
                    "rules: {}: no rule set is published for this tenant yet (the config file's awaits its \
                        tests or an administrator)",
                    job.person_key
                ),
            });
        }
        let rules = p
            .runtime
            .plugin(&job.tenant, &tenant.rules)
            .map_err(|e| self.failed(Failure::config(format!("rules plugin: {e}"))))?;
        let mut subject = self.subject(tenant, admitted);
        let evaluation = match p
            .evaluate_subject(&rules, &mut subject, wit::rules::TraceLevel::Matched)
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let f = Failure::of_call(&e);
                p.metrics.error(&job.tenant, "rules", f.class);
                let rec = self.record(
                    None,
                    &ev::RulesFailed {
                        class: f.class,
                        error: &f.message,
                    },
                );
                self.pending.push(rec);
                // Bad data or a rule that fails on it: hold (never drop) until a
                // newer record for the person or a new rule-set version arrives.
                if f.class == FailureClass::InvalidInput {
                    return Err(Finish::Held {
                        reason: format!("rules: {}: {}", job.person_key, f.message),
                    });
                }
                return Err(self.failed(f));
            }
        };
        let rec = self.record(None, &crate::audit_events::rules_evaluated(&rules, &evaluation));
        self.pending.push(rec);
        Ok(evaluation)
    }

    /// The person as the rules see them in this attempt.
    fn subject<'t>(&self, tenant: &'t TenantPipeline, admitted: &Admitted) -> Subject<'t, '_> {
        Subject {
            tenant_name: &self.job.tenant,
            tenant,
            person_key: &self.job.person_key,
            person: admitted.event.person.clone(),
            event: admitted.event.kind,
            state: self.state,
            life: &self.life,
            now_ms: self.p.now(),
        }
    }

    /// Stage 3: each destination's target, names claimed (unless it runs dry).
    async fn prepare<'t>(
        &mut self,
        tenant: &'t TenantPipeline,
        admitted: &Admitted,
        evaluation: &wit::rules::Evaluation,
        worst: &mut Option<Failure>,
    ) -> Vec<Target<'t>> {
        let due = admitted.scheduled.as_ref().and_then(|a| match a.action {
            tenure_store::ActionKind::LeaverStep(i) => Some((a.destination.as_str(), i)),
            _ => None,
        });
        let subject = self.subject(tenant, admitted);
        let prepared = self.p.targets(&subject, evaluation, Names::Claim, due).await;
        let mut targets = Vec::with_capacity(prepared.len());
        for t in prepared {
            match t {
                Ok(target) => {
                    self.audit_target(&target);
                    targets.push(target);
                }
                Err(u) => note_failure(self.p, &self.job.tenant, &u.destination, worst, u.failure),
            }
        }
        targets
    }

    /// Why the state changed a destination's account, and the names newly settled.
    fn audit_target(&mut self, target: &Target<'_>) {
        let dest = target.dest.name.as_str();
        if let Some(why) = &target.shaped {
            let rec = self.record(
                Some(dest),
                &ev::LifecycleShaped {
                    state: self.state,
                    why,
                },
            );
            self.pending.push(rec);
        }
        for a in target.names.iter().filter(|a| a.how != "kept") {
            let rec = self.record(
                Some(dest),
                &ev::NameAssigned {
                    attribute: &a.attribute,
                    value: &a.value,
                    taken: &a.taken,
                    unchecked: &a.unchecked,
                    dry_run: target.dest.dry_run,
                },
            );
            self.pending.push(rec);
        }
    }

    /// Stage 4: a leaver is disabled everywhere before anything else is taken away.
    async fn disable_first(&mut self, targets: &[Target<'_>], worst: &mut Option<Failure>) -> Stage<()> {
        let leaving = self.state.is_gone() && !self.life.applied.is_some_and(State::is_gone);
        if !leaving {
            return Ok(());
        }
        for target in targets {
            match self.destination(target, apply::Pass::DisableOnly, None).await {
                Ok(DestOutcome::Done) => {}
                Ok(DestOutcome::Held(reason)) => return Err(Finish::Held { reason }),
                Err(f) if f.class == FailureClass::LeaseLost => return Err(self.failed(f)),
                Err(f) => note_failure(self.p, &self.job.tenant, &target.dest.name, worst, f),
            }
        }
        Ok(())
    }

    /// Stage 5: every destination, in order; then its grace-period and leaver-step
    /// bookkeeping.
    async fn apply(
        &mut self,
        targets: &[Target<'_>],
        scheduled: Option<&ScheduledAction>,
        worst: &mut Option<Failure>,
    ) -> Stage<()> {
        for target in targets {
            let name = target.dest.name.as_str();
            let due =
                scheduled.filter(|a| a.destination == name && a.action == tenure_store::ActionKind::Delete);
            let mut outcome = self.destination(target, apply::Pass::Full, due).await;
            if let Ok(DestOutcome::Done) = outcome {
                outcome = self
                    .after_destination(target, due)
                    .await
                    .map(|()| DestOutcome::Done);
            }
            if let Ok(DestOutcome::Done) = outcome {
                outcome = self
                    .destination_settled(&target.dest, target.due_step, scheduled)
                    .await
                    .map(|()| DestOutcome::Done);
            }
            match outcome {
                Ok(DestOutcome::Done) => {}
                Ok(DestOutcome::Held(reason)) => return Err(Finish::Held { reason }),
                Err(f) if f.class == FailureClass::LeaseLost => return Err(self.failed(f)),
                Err(f) => note_failure(self.p, &self.job.tenant, name, worst, f),
            }
        }
        Ok(())
    }

    /// Stage 6: once every destination is applied, the lifecycle's bookkeeping; the
    /// failure that decides the attempt's end, if any.
    async fn settle(
        &mut self,
        tenant: &TenantPipeline,
        person: &wit::Person,
        mut worst: Option<Failure>,
    ) -> Finish {
        let settled = match &worst {
            None => self.settle_lifecycle(tenant, person).await,
            Some(_) => {
                self.note_life(None);
                Ok(())
            }
        };
        if let Err(f) = settled {
            note_failure(self.p, &self.job.tenant, "lifecycle", &mut worst, f);
        }
        match worst {
            Some(f) => self.failed(f),
            None => Finish::Completed,
        }
    }

    /// An audit record of this job about the person.
    fn record(&self, destination: Option<&str>, event: &impl AuditEvent) -> AuditRecord {
        let mut r = event
            .record(&self.job.tenant, "system")
            .person(&self.job.person_key)
            .event(self.job.event.id)
            .job(self.job.id);
        r.destination = destination.map(String::from);
        r
    }

    /// The pending audit records (and one more), to go with a store write.
    fn take(&mut self, extra: Option<AuditRecord>) -> Vec<AuditRecord> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(extra);
        out
    }

    /// Writes the operations' results now (before a write that is not an operation's).
    async fn flush(&mut self) -> Result<(), Failure> {
        if self.unwritten_ops.is_empty() {
            return Ok(());
        }
        let done = std::mem::take(&mut self.unwritten_ops);
        Ok(self.p.store.ops_finished(&self.lease, done).await?)
    }

    /// How a failure ends the attempt: a retry after the backoff, or dead (a permanent
    /// failure, or the last attempt the queue allows: dead-lettered here, so that its audit
    /// and its job-dead notification say so).
    fn failed(&self, f: Failure) -> Finish {
        let error = format!("{}: {}", f.class, f.message);
        // Waiting out a destination's rate limit is not a failed attempt.
        let charge = f.class != FailureClass::RateLimited;
        if !f.retry {
            return Finish::Dead { error };
        }
        if charge && self.job.attempt >= self.job.max_attempts {
            return Finish::Dead {
                error: format!("{error} (gave up after {} attempts)", self.job.attempt),
            };
        }
        let delay = backoff_ms(&self.p.config.queue, self.job.attempt, f.retry_after_ms);
        Finish::Retry {
            run_at_ms: self.p.now() + delay as i64,
            error,
            charge,
        }
    }
}

/// Counts a destination's failure and keeps the one that decides the job's fate:
/// a permanent failure outranks a retryable one; among retries the longest wait wins.
fn note_failure(p: &Pipeline, tenant: &str, destination: &str, worst: &mut Option<Failure>, f: Failure) {
    p.metrics.error(tenant, destination, f.class);
    p.destination_failed(tenant, destination, &f);
    // One job's 429 holds back every job's calls to the destination until it passes.
    if f.class == FailureClass::RateLimited
        && let Some(ms) = f.retry_after_ms
    {
        p.throttle(tenant, destination, ms, &f.message);
    }
    let replace = match worst {
        None => true,
        Some(w) => (w.retry && !f.retry) || (w.retry == f.retry && f.retry_after_ms > w.retry_after_ms),
    };
    if replace {
        *worst = Some(f);
    }
}
