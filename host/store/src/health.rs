//! Health: whether the database answers, and the queue's depth for metrics.

use crate::{JobState, StoreResult};
use async_trait::async_trait;

/// Jobs of one tenant in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub tenant: String,
    pub state: JobState,
    pub jobs: i64,
}

/// Readiness and queue depth.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Checks that the database answers reads and takes writes.
    async fn ping(&self) -> StoreResult<()>;
    /// Jobs per tenant and state.
    async fn queue_depth(&self) -> StoreResult<Vec<QueueDepth>>;
}
