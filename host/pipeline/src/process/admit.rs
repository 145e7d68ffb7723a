//! Stage 1, admission: the event as stored; the person as last known (a
//! withdrawal carries ids only) and across linked sources; an event older than
//! one already applied is skipped; a manager goes before their report; a due
//! action is taken; the person's dated facts take the event in and give their
//! state, which the rules see.

use super::{Admitted, JobRun, Stage};
use crate::FailureClass;
use crate::audit_events as ev;
use crate::event::{EventKind, EventKindExt};
use tenure_runtime::wit;
use tenure_store::{ActionKind, ActionState, Finish};

impl JobRun<'_> {
    pub(super) async fn admit(&mut self) -> Stage<Admitted> {
        let (p, job) = (self.p, self.job);
        let mut event = crate::stored::decode(&job.event.body).map_err(|e| Finish::Dead {
            error: format!("{}: {e}", FailureClass::InvalidInput),
        })?;
        let tenant = p.tenant(&job.tenant).map_err(|e| Finish::Dead {
            error: format!("config: {e}"),
        })?;
        // A withdrawal or deletion carries ids only: the rules see the person as last known.
        if matches!(event.kind, wit::EventKind::Withdrawn | wit::EventKind::Deleted) {
            event.person = p
                .with_known_record(
                    &job.tenant,
                    &job.person_key,
                    job.event.id,
                    &job.event.source,
                    &event.person,
                )
                .await
                .map_err(|e| self.failed(e.into()))?;
        }
        // A person known to several sources: the rules see the merged record.
        if !tenant.identity.link_by.is_empty() {
            event.person = p
                .merged_person(&job.tenant, &job.person_key, &job.event.source, &event.person)
                .await
                .map_err(|e| self.failed(e.into()))?;
        }
        self.skip_if_superseded(&event).await?;
        self.defer_if_effective_later(&event).await?;
        self.wait_for_manager(&event).await?;
        let scheduled = self.take_due_action().await?;
        self.observe(&event).await?;
        Ok(Admitted { event, scheduled })
    }

    /// Each event carries the whole person; one that arrives after a newer one was
    /// applied (a late webhook, a retried request) would undo it: recorded and skipped.
    async fn skip_if_superseded(&mut self, event: &wit::PersonEvent) -> Stage<()> {
        let (p, job) = (self.p, self.job);
        // A scheduler-made job carries the record in effect when it was queued: a source
        // event that occurred after that supersedes it.
        let occurred = if job.event.source == crate::schedule::SOURCE {
            Some(job.event.received_ms)
        } else {
            event.occurred_at.as_deref().and_then(crate::event::rfc3339_ms)
        };
        let Some(occurred) = occurred else {
            return Ok(());
        };
        let newer = p
            .store
            .newer_applied(&job.tenant, &job.person_key, occurred)
            .await
            .map_err(|e| self.failed(e.into()))?;
        let Some(newer) = newer else {
            return Ok(());
        };
        let rec = self.record(
            None,
            &ev::EventSuperseded {
                occurred_at: event.occurred_at.as_deref(),
                newer_event: newer,
            },
        );
        self.pending.push(rec);
        if let Some(id) = crate::schedule::action_id(&job.event.source, &job.event.source_record_id) {
            p.store
                .finish_action(
                    id,
                    ActionState::Cancelled,
                    "a newer record of the person was applied",
                    p.now(),
                )
                .await
                .map_err(|e| self.failed(e.into()))?;
        }
        Err(Finish::Completed)
    }

    /// A mover or update effective on a later day changes nothing now: it is remembered
    /// with the person's facts, and the wake-up on that day applies it (audited as
    /// `event.deferred`). Its facts are taken in only then, too.
    async fn defer_if_effective_later(&mut self, event: &wit::PersonEvent) -> Stage<()> {
        let (p, job) = (self.p, self.job);
        if job.event.source == crate::schedule::SOURCE {
            return Ok(());
        }
        self.life = p
            .lifecycle_of(&job.tenant, &job.person_key)
            .await
            .map_err(|f| self.failed(f))?;
        self.life_loaded = true;
        let now = p.now();
        let Some(on) = self
            .life
            .effective_later(EventKind::from_wit(event.kind), event, now)
        else {
            return Ok(());
        };
        self.life.defer(job.event.id, on.clone());
        let rec = self.record(None, &ev::EventDeferred { effective_date: &on });
        self.pending.push(rec);
        let tenant = p.tenant(&job.tenant).map_err(|e| Finish::Dead {
            error: format!("config: {e}"),
        })?;
        let open = p
            .store
            .open_actions(&job.tenant, &job.person_key)
            .await
            .map_err(|e| self.failed(e.into()))?;
        self.follow_wake(tenant, &open)
            .await
            .map_err(|f| self.failed(f))?;
        self.note_life(None);
        Err(Finish::Completed)
    }

    /// A manager before their report: wait while the manager has unfinished events
    /// (whichever arrived first), for a bounded time.
    async fn wait_for_manager(&mut self, event: &wit::PersonEvent) -> Stage<()> {
        let (p, job) = (self.p, self.job);
        let waited = p.now() - job.created_ms;
        let Some(m) = &event.person.manager else {
            return Ok(());
        };
        if waited >= p.config.queue.manager_wait_max_ms as i64 {
            return Ok(());
        }
        let manager_key = format!("{}:{}", m.source, m.id);
        if manager_key == job.person_key {
            return Ok(());
        }
        let busy = p
            .store
            .has_unfinished(&job.tenant, &manager_key)
            .await
            .map_err(|e| self.failed(e.into()))?;
        if busy {
            return Err(Finish::Retry {
                run_at_ms: p.now() + p.config.queue.manager_wait_ms as i64,
                error: format!("waiting for manager {manager_key} to be provisioned first"),
                charge: false,
            });
        }
        Ok(())
    }

    /// The action a scheduler-made job carries out (a wake-up, a notice, a leaver
    /// step, a deletion). A wake-up or refresh is taken once its job runs (the job's
    /// own retries cover failures), so that the person's next one can be scheduled.
    async fn take_due_action(&mut self) -> Stage<Option<tenure_store::ScheduledAction>> {
        let (p, job) = (self.p, self.job);
        let Some(id) = crate::schedule::action_id(&job.event.source, &job.event.source_record_id) else {
            return Ok(None);
        };
        let action = p
            .store
            .scheduled_action(id)
            .await
            .map_err(|e| self.failed(e.into()))?
            .filter(|a| a.state == ActionState::Queued);
        if let Some(a) = action
            .as_ref()
            .filter(|a| matches!(a.action, ActionKind::Wake | ActionKind::Refresh))
        {
            p.store
                .finish_action(a.id, ActionState::Done, "re-evaluated", p.now())
                .await
                .map_err(|e| self.failed(e.into()))?;
        }
        Ok(action)
    }

    /// The person's dated facts, this event taken in, give their state now.
    async fn observe(&mut self, event: &wit::PersonEvent) -> Stage<()> {
        let (p, job) = (self.p, self.job);
        if !self.life_loaded {
            self.life = p
                .lifecycle_of(&job.tenant, &job.person_key)
                .await
                .map_err(|f| self.failed(f))?;
            self.life_loaded = true;
        }
        let now = p.now();
        if job.event.source != crate::schedule::SOURCE {
            let kind = EventKind::from_wit(event.kind);
            if let Some(note) = self.life.observe(job.event.id, kind, event, now) {
                let rec = self.record_observation(&note);
                self.pending.push(rec);
            }
        } else {
            // A wake-up on the day dated changes take effect: its record is the one in effect.
            self.life.take_in_due(event, now);
        }
        self.state = self.life.state_at(now);
        Ok(())
    }

    fn record_observation(&self, note: &crate::lifecycle::Observation) -> tenure_store::AuditRecord {
        match note {
            crate::lifecycle::Observation::WithdrawalAfterStart { start_date } => self.record(
                None,
                &ev::LifecycleWithdrawalIgnored {
                    start_date,
                    why: "the person has already started; end their employment with a leaver from the HR \
                        system",
                },
            ),
            crate::lifecycle::Observation::JoinerIsRehire => self.record(
                None,
                &ev::LifecycleRehire {
                    why: "a hire after the employment ended is a rehire",
                },
            ),
        }
    }
}
