//! Dated actions: a leaver's disabled account deleted once the destination's
//! grace period (`delete_after`) has passed, unless the person came back first.
//!
//! The action lives in the store (it survives restarts and fires once: taking
//! it marks it queued in the same write). When due, it becomes a job for the
//! person like any other (so it runs in the person's order, never beside a
//! rehire), carrying the person's newest record. That job deletes the account
//! only if the person is still a leaver and the account is still disabled;
//! otherwise the action is cancelled with the reason.

use crate::{Pipeline, now_ms};
use tenure_store::{NewEvent, ScheduledAction, StoreError};

/// The action kind for a grace-period deletion.
pub const DELETE: &str = "delete";
/// The source name on jobs the scheduler creates.
pub const SOURCE: &str = "tenure";
const RECORD_PREFIX: &str = "scheduled:";

/// The action a job was created for, if the scheduler created it.
pub(crate) fn action_id(source: &str, source_record_id: &str) -> Option<i64> {
    if source != SOURCE {
        return None;
    }
    source_record_id.strip_prefix(RECORD_PREFIX)?.parse().ok()
}

impl Pipeline {
    /// Turns due actions into jobs; returns how many were queued.
    pub async fn fire_due_actions(&self) -> Result<usize, StoreError> {
        let due = self.store.take_due_actions(now_ms(), 100).await?;
        let mut queued = 0;
        for action in due {
            if self.queue_action(&action).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            self.wake();
        }
        Ok(queued)
    }

    async fn queue_action(&self, action: &ScheduledAction) -> Result<bool, StoreError> {
        let newest = self
            .store
            .latest_events_of(&action.tenant, &action.person_key)
            .await?
            .into_iter()
            .find(|e| e.source != SOURCE);
        let Some(newest) = newest else {
            self.store
                .finish_action(
                    action.id,
                    "cancelled",
                    "the person has no record to act on",
                    now_ms(),
                )
                .await?;
            return Ok(false);
        };
        let key = format!("{RECORD_PREFIX}{}", action.id);
        let event = NewEvent {
            tenant: action.tenant.clone(),
            source: SOURCE.into(),
            idempotency_key: key.clone(),
            person_key: action.person_key.clone(),
            kind: format!("scheduled-{}", action.action),
            body: newest.body,
            source_record_id: key,
            start_date: None,
            occurred_ms: None,
            actor: "scheduler".into(),
            received_ms: now_ms(),
            max_attempts: self.config.queue.max_attempts,
            link_keys: Vec::new(),
        };
        // Idempotent by key: a crash after this write and before the next scan queues nothing twice.
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
        assert_eq!(action_id("lever", "scheduled:42"), None);
        assert_eq!(action_id("tenure", "hire-1"), None);
    }
}
