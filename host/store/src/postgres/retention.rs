//! Retention: pruning finished operational rows in bounded writes.

use super::PgStore;
use crate::{Pruned, RetentionStore, StoreResult};

#[async_trait::async_trait]
impl RetentionStore for PgStore {
    async fn prune_finished(&self, before_ms: i64, limit: usize) -> StoreResult<Pruned> {
        let limit = limit.max(1) as i64;
        let mut w = self.begin().await?;
        let mut prune = async |sql: &'static str| -> StoreResult<u64> {
            Ok(sqlx::query(sql)
                .bind(before_ms)
                .bind(limit)
                .execute(w.conn())
                .await?
                .rows_affected())
        };
        let pruned = Pruned {
            deliveries: prune(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
                 WHERE state IN ('done', 'rejected') AND finished_ms < $1 LIMIT $2)",
            )
            .await?,
            actions: prune(
                "DELETE FROM scheduled_actions WHERE id IN (SELECT id FROM scheduled_actions
                 WHERE state IN ('done', 'cancelled') AND finished_ms < $1 LIMIT $2)",
            )
            .await?,
            admissions: prune(
                "DELETE FROM guard_admissions WHERE ctid IN (SELECT ctid FROM guard_admissions
                 WHERE at_ms < $1 LIMIT $2)",
            )
            .await?,
            notifications: prune(
                "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications
                 WHERE state = 'sent' AND sent_ms < $1 LIMIT $2)",
            )
            .await?,
            sessions: prune(
                "DELETE FROM sessions WHERE digest IN (SELECT digest FROM sessions WHERE expires_ms
                    < $1 LIMIT $2)",
            )
            .await?,
            leases: prune(
                "DELETE FROM leases WHERE name IN (SELECT name FROM leases WHERE until_ms < $1 LIMIT $2)",
            )
            .await?,
        };
        w.commit().await?;
        Ok(pruned)
    }
}
