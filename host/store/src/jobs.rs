//! The job queue: one job per stored event, run in each person's order, claimed
//! under a lease that fences every write of the attempt, retried with backoff,
//! dead-lettered, held for a person, replayed or cancelled by an operator.

use crate::{
    AuditRecord, EventRow, FinishedOp, LifecycleRow, NewNotification, OperationRow, RecordKind, StoreResult,
};
use async_trait::async_trait;
use serde::Serialize;

crate::column_enum! {
    /// Where a job stands. `held` waits for a person (a conflict, a tripped guard, a
    /// rules error).
    pub enum JobState {
        Available = "available",
        Running = "running",
        Retryable = "retryable",
        Completed = "completed",
        Dead = "dead",
        Held = "held",
        Cancelled = "cancelled",
    }
}

impl JobState {
    /// Not yet at an end: a later event of the person waits for it.
    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            JobState::Available | JobState::Retryable | JobState::Running | JobState::Dead | JobState::Held
        )
    }
}

/// A job claimed by a worker, with its event.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub tenant: String,
    pub person_key: String,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    pub max_attempts: u32,
    pub created_ms: i64,
    pub event: EventRow,
    /// The tenant's published rule-set version when the job was claimed: a host running an
    /// older one (another host published since) loads this one before it runs the job.
    pub rule_set: Option<i64>,
}

/// The lease one attempt of a job holds. Every write the attempt makes (its
/// operations, links, conflicts, lifecycle facts and its end) is fenced by it:
/// once another attempt has claimed the job, the stale one can write nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub job_id: i64,
    pub owner: String,
    /// The attempt number the claim gave (the job's `attempts` while it runs).
    pub attempt: u32,
}

impl ClaimedJob {
    /// This attempt's lease.
    pub fn lease(&self, owner: &str) -> JobLease {
        JobLease {
            job_id: self.id,
            owner: owner.to_string(),
            attempt: self.attempt,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Finish {
    Completed,
    /// Try again at `run_at_ms`. `charge` false gives the attempt back (a wait, not a failure).
    Retry {
        run_at_ms: i64,
        error: String,
        charge: bool,
    },
    Dead {
        error: String,
    },
    /// Wait for a person: a conflict or a mass-change guard.
    Held {
        reason: String,
    },
}

/// A job as listed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobRow {
    pub id: i64,
    pub tenant: String,
    pub person_key: String,
    pub event_id: i64,
    pub kind: RecordKind,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    pub hold_reason: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

/// A job with its event and operations.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobDetail {
    pub job: JobRow,
    pub event: EventRow,
    pub event_body: serde_json::Value,
    pub operations: Vec<OperationRow>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub tenant: String,
    pub state: Option<JobState>,
    pub person_key: Option<String>,
    pub limit: usize,
}

/// The queue.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Claims up to `limit` runnable jobs (in per-person order: a job waits while an
    /// earlier job of its person is unfinished) for `owner` with a lease: jobs whose
    /// lease expired first (never `owner`'s own, whose workers may still run them), then a
    /// fair share for each of `tenants` (in the order given; the caller rotates it), then
    /// the rest in arrival order.
    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
        tenants: Vec<String>,
    ) -> StoreResult<Vec<ClaimedJob>>;
    /// Extends the leases `owner` holds on these jobs (ahead of other writes); returns
    /// the ids whose lease it still holds.
    async fn extend_leases(&self, owner: &str, job_ids: Vec<i64>, until_ms: i64) -> StoreResult<Vec<i64>>;
    /// Ends an attempt, first recording the results of its operations not yet written,
    /// and writes the person's lifecycle record when given, and queues the notifications the
    /// attempt raised (each once per key), all in one write. Returns false (and writes
    /// nothing) when the attempt lost its lease.
    async fn finish(
        &self,
        lease: &JobLease,
        finish: Finish,
        audit: Vec<AuditRecord>,
        ops_done: Vec<FinishedOp>,
        lifecycle: Option<LifecycleRow>,
        notifications: Vec<NewNotification>,
    ) -> StoreResult<bool>;
    /// A tenant's jobs, newest first.
    async fn jobs(&self, filter: JobFilter) -> StoreResult<Vec<JobRow>>;
    async fn job(&self, tenant: &str, id: i64) -> StoreResult<Option<JobDetail>>;
    /// Makes a dead, held or cancelled job available again (after a fix), audited.
    async fn replay(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow>;
    /// Cancels a job that has not completed, audited.
    async fn cancel(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow>;
    /// Whether a person has available, retryable or running jobs (a manager before their report).
    async fn has_unfinished(&self, tenant: &str, person_key: &str) -> StoreResult<bool>;
    /// Puts held jobs whose hold reason starts with `reason_prefix` back in the
    /// queue (after a fix), audited; returns how many.
    async fn release_held(&self, tenant: &str, reason_prefix: &str, actor: &str) -> StoreResult<u64>;
}
