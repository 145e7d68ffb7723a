//! Retention of operational rows: what the store may forget once work is finished. The audit
//! log, events (each person's source records) and jobs (which order late events) are never
//! pruned; see docs/operations.md#retention.

use crate::StoreResult;
use async_trait::async_trait;

/// Rows removed by one pruning pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Webhook deliveries enriched (or rejected) long ago: their raw bodies.
    pub deliveries: u64,
    /// Scheduled actions done or cancelled long ago.
    pub actions: u64,
    /// Mass-change guard admissions far outside any guard window.
    pub admissions: u64,
    /// Notifications sent long ago (their bodies; the audit keeps that they were sent).
    pub notifications: u64,
    /// People's sessions that ended by time long ago.
    pub sessions: u64,
    /// Leases that ran out long ago (a host that died; a finished run's).
    pub leases: u64,
}

impl Pruned {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.deliveries + self.actions + self.admissions + self.notifications + self.sessions + self.leases
    }
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, step: Pruned) {
        self.deliveries += step.deliveries;
        self.actions += step.actions;
        self.admissions += step.admissions;
        self.notifications += step.notifications;
        self.sessions += step.sessions;
        self.leases += step.leases;
    }
}

/// Forgetting finished operational rows.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Removes at most `limit` rows of each kind that finished before `before_ms` (called again
    /// until it removes nothing, so that no single write holds the database for long). Dead
    /// deliveries stay until replayed; pending and queued actions stay.
    async fn prune_finished(&self, before_ms: i64, limit: usize) -> StoreResult<Pruned>;
}
