//! Dated actions: a person's next lifecycle change (start date, leave, last
//! day), contract notices, staged leaver steps, a leaver's deletion once the
//! grace period (`delete_after`) has passed, a report's refresh once their
//! manager is provisioned, and each tenant's scheduled reconciliation.
//!
//! The action lives in the store (it survives restarts and fires once: taking
//! it marks it queued in the same write). When due, it becomes a job for the
//! person like any other (so it runs in the person's order, never beside a
//! rehire), carrying the person's newest record. That job deletes the account
//! only if the person is still a leaver and the account is still disabled;
//! otherwise the action is cancelled with the reason.

use crate::Pipeline;
use std::sync::Arc;
use tenure_store::{ActionKind, ActionState, EventRow, NewEvent, RecordKind, ScheduledAction, StoreError};

/// The source name on jobs the scheduler creates.
pub const SOURCE: &str = "tenure";
const RECORD_PREFIX: &str = "scheduled:";

/// The action a job was created for, if the scheduler created it (its record id is
/// `scheduled:<action>@<due>`, or `scheduled:<action>` in stores written before actions could be
/// put back to wait).
pub(crate) fn action_id(source: &str, source_record_id: &str) -> Option<i64> {
    if source != SOURCE {
        return None;
    }
    let rest = source_record_id.strip_prefix(RECORD_PREFIX)?;
    rest.split('@').next()?.parse().ok()
}

impl Pipeline {
    /// Turns due actions into jobs (a due reconciliation runs on its own task);
    /// returns how many were queued.
    pub async fn fire_due_actions(self: &Arc<Self>) -> Result<usize, StoreError> {
        let due = self.store.take_due_actions(self.now(), 100).await?;
        let mut queued = 0;
        for action in due {
            if action.action == ActionKind::Reconcile {
                self.clone().start_scheduled_reconcile(action).await;
                continue;
            }
            if self.queue_action(&action).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            self.wake();
        }
        Ok(queued)
    }

    /// Actions taken as due whose job was never stored (the host stopped between
    /// the two writes) get it now; a job that exists is not stored twice. A reconciliation
    /// whose host is gone is ended as interrupted (one another host runs is left to it).
    pub async fn requeue_taken_actions(self: &Arc<Self>) -> Result<usize, StoreError> {
        let mut n = 0;
        for tenant in self.config.tenants.keys() {
            for action in self.store.scheduled_actions(tenant, true).await? {
                if action.state != ActionState::Queued {
                    continue;
                }
                if action.action == ActionKind::Reconcile {
                    self.end_if_abandoned(&action).await?;
                    continue;
                }
                if self.queue_action(&action).await? {
                    n += 1;
                }
            }
        }
        if n > 0 {
            self.wake();
        }
        Ok(n)
    }

    /// The record in effect now: the newest a source sent, unless a mover or update
    /// dated later than it arrived has taken effect since (see `Lifecycle::defer`).
    async fn record_in_effect(&self, tenant: &str, newest: EventRow) -> Result<EventRow, StoreError> {
        let Some(row) = self.store.lifecycle(tenant, &newest.person_key).await? else {
            return Ok(newest);
        };
        let Ok(life) = serde_json::from_str::<crate::lifecycle::Lifecycle>(&row.doc) else {
            return Ok(newest);
        };
        let Some(change) = life.due_change(self.now()) else {
            return Ok(newest);
        };
        let took_effect = crate::lifecycle::day(&change.on).map(|on| life.day_starts_ms(on));
        if change.event_id == newest.id || took_effect.is_none_or(|t| t <= newest.received_ms) {
            return Ok(newest);
        }
        Ok(self.store.event(tenant, change.event_id).await?.unwrap_or(newest))
    }

    async fn queue_action(&self, action: &ScheduledAction) -> Result<bool, StoreError> {
        let newest = self.newest_record(&action.tenant, &action.person_key).await?;
        let newest = match newest {
            Some(newest) => Some(self.record_in_effect(&action.tenant, newest).await?),
            None => None,
        };
        let Some(newest) = newest else {
            self.store
                .finish_action(
                    action.id,
                    ActionState::Cancelled,
                    "the person has no record to act on",
                    self.now(),
                )
                .await?;
            return Ok(false);
        };
        // One job per action and date: a crash after this write and before the next scan queues
        // nothing twice, and an action put back to wait (a leaver step held for a ticket) fires
        // again at its new date.
        let key = format!("{RECORD_PREFIX}{}@{}", action.id, action.due_ms);
        let event = NewEvent {
            tenant: action.tenant.clone(),
            source: SOURCE.into(),
            idempotency_key: key.clone(),
            person_key: action.person_key.clone(),
            kind: RecordKind::Scheduled(action.action),
            body: newest.body,
            source_record_id: key,
            start_date: None,
            occurred_ms: None,
            actor: "scheduler".into(),
            received_ms: self.now(),
            max_attempts: self.config.queue.max_attempts,
            link_keys: Vec::new(),
        };
        self.store.intake(vec![event], None).await?;
        tracing::info!(
            tenant = %action.tenant,
            person = %action.person_key,
            destination = %action.destination,
            action = %action.action,
            "scheduled action is due"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_jobs_are_recognised_by_source_and_record() {
        assert_eq!(action_id("tenure", "scheduled:42"), Some(42));
        assert_eq!(action_id("tenure", "scheduled:42@1772445600826"), Some(42));
        assert_eq!(action_id("lever", "scheduled:42"), None);
        assert_eq!(action_id("tenure", "hire-1"), None);
    }
}
