//! Readiness and queue depth.

use super::PgStore;
use super::row::RowExt;
use crate::*;

#[async_trait::async_trait]
impl HealthStore for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn queue_depth(&self) -> StoreResult<Vec<QueueDepth>> {
        sqlx::query("SELECT tenant, state, count(*) FROM jobs GROUP BY tenant, state ORDER BY tenant, state")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(QueueDepth {
                    tenant: r.at(0)?,
                    state: r.parsed(1)?,
                    jobs: r.at(2)?,
                })
            })
            .collect()
    }
}
