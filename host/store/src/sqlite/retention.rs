//! Retention: pruning finished operational rows in bounded writes.

use super::SqliteStore;
use crate::{Pruned, RetentionStore, StoreResult};
use rusqlite::params;

#[async_trait::async_trait]
impl RetentionStore for SqliteStore {
    async fn prune_finished(&self, before_ms: i64, limit: usize) -> StoreResult<Pruned> {
        let limit = limit.max(1) as i64;
        self.writer
            .write(move |ctx| {
                let prune = |sql: &str| -> StoreResult<u64> {
                    Ok(ctx.conn.prepare_cached(sql)?.execute(params![before_ms, limit])? as u64)
                };
                Ok(Pruned {
                    deliveries: prune(
                        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
                         WHERE state IN ('done', 'rejected') AND finished_ms < ?1 LIMIT ?2)",
                    )?,
                    actions: prune(
                        "DELETE FROM scheduled_actions WHERE id IN (SELECT id FROM scheduled_actions
                         WHERE state IN ('done', 'cancelled') AND finished_ms < ?1 LIMIT ?2)",
                    )?,
                    admissions: prune(
                        "DELETE FROM guard_admissions WHERE rowid IN (SELECT rowid FROM guard_admissions
                         WHERE at_ms < ?1 LIMIT ?2)",
                    )?,
                    notifications: prune(
                        "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications
                         INDEXED BY notifications_sent WHERE state = 'sent' AND sent_ms < ?1 LIMIT ?2)",
                    )?,
                    sessions: prune(
                        "DELETE FROM sessions WHERE digest IN (SELECT digest FROM sessions
                         WHERE expires_ms < ?1 LIMIT ?2)",
                    )?,
                    leases: prune(
                        "DELETE FROM leases WHERE name IN (SELECT name FROM leases
                         WHERE until_ms < ?1 LIMIT ?2)",
                    )?,
                })
            })
            .await
    }
}
