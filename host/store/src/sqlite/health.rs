//! Readiness and queue depth.

use super::SqliteStore;
use crate::*;

#[async_trait::async_trait]
impl HealthStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))?;
        // The writer is alive and draining its queue; nothing is written.
        self.writer.probe().await
    }

    async fn queue_depth(&self) -> StoreResult<Vec<QueueDepth>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT tenant, state, count(*) FROM jobs GROUP BY tenant, state")?
                    .query_map([], |r| {
                        Ok(QueueDepth {
                            tenant: r.get(0)?,
                            state: r.get(1)?,
                            jobs: r.get(2)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?,
            )
        })
    }
}
