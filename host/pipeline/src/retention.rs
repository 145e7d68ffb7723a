//! Retention: finished operational rows (enriched webhook deliveries with their raw bodies, done
//! scheduled actions, guard admissions) are forgotten `queue.retention_days` after they
//! finished. The audit log, events and jobs are kept (docs/operations.md#retention).

use crate::{Pipeline, PipelineError};
use std::sync::Arc;
use std::time::Duration;
use tenure_store::Pruned;

/// How often finished rows are pruned.
const EVERY: Duration = Duration::from_secs(3_600);

/// Rows removed per write, so that pruning never holds the writer for long.
const ROWS_PER_WRITE: usize = 1_000;

const DAY_MS: i64 = 86_400_000;

impl Pipeline {
    /// Removes finished operational rows past the retention period; None when retention is off
    /// (`queue.retention_days = 0`). A guard admission is kept at least as long as the longest
    /// guard window counts it.
    pub async fn prune_finished(&self) -> Result<Option<Pruned>, PipelineError> {
        let days = self.config.queue.retention_days;
        if days == 0 {
            return Ok(None);
        }
        let longest_window_ms = self
            .config
            .tenants
            .values()
            .flat_map(|t| t.destinations.iter())
            .map(|d| d.guard.window_secs.saturating_mul(1000))
            .max()
            .unwrap_or(0);
        let keep_ms = (i64::from(days) * DAY_MS).max(longest_window_ms);
        let before_ms = self.now().saturating_sub(keep_ms);
        let mut pruned = Pruned::default();
        loop {
            let step = self.store.prune_finished(before_ms, ROWS_PER_WRITE).await?;
            pruned += step;
            if step.total() == 0 {
                return Ok(Some(pruned));
            }
        }
    }
}

/// Prunes once an hour until the task is stopped.
pub(crate) async fn run(p: Arc<Pipeline>) {
    loop {
        tokio::time::sleep(EVERY).await;
        match p.prune_finished().await {
            Ok(Some(pruned)) if pruned.total() > 0 => tracing::info!(
                deliveries = pruned.deliveries,
                actions = pruned.actions,
                admissions = pruned.admissions,
                notifications = pruned.notifications,
                sessions = pruned.sessions,
                leases = pruned.leases,
                "finished operational rows pruned"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot prune finished operational rows"),
        }
    }
}
