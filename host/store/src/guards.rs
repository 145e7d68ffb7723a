//! What people decide for the pipeline: the mass-change guard that stops a flood of
//! destructive changes until a person approves, matching conflicts, and the plans a
//! supervised destination holds for approval.

use crate::{AuditRecord, HoldDecision, HoldFilter, HoldRow, JobLease, NewHold, StoreResult};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

crate::column_enum! {
    /// Why a person must decide which account is the person's.
    pub enum ConflictKind {
        /// Several accounts match the person's keys.
        Ambiguous = "ambiguous",
        /// One account matches but is not Tenure's, and the policy is not to merge.
        Unmanaged = "unmanaged",
    }
}

/// A destination's mass-change guard.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Guard {
    pub tenant: String,
    pub destination: String,
    pub tripped: bool,
    /// Approved destructive changes left after an approval.
    pub budget: i64,
    pub reason: Option<String>,
    pub tripped_ms: Option<i64>,
}

/// A conflict to hold for a person.
#[derive(Debug, Clone)]
pub struct NewConflict {
    pub tenant: String,
    pub destination: String,
    pub person_key: String,
    pub job_id: i64,
    pub kind: ConflictKind,
    pub candidates: Vec<String>,
    pub now_ms: i64,
}

/// How a person decided a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ConflictDecision {
    /// Link this account and take it over.
    Merge { anchor: String },
    /// Leave this destination alone for this event.
    Skip,
}

/// A stored conflict.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConflictRow {
    pub id: i64,
    pub tenant: String,
    pub destination: String,
    pub person_key: String,
    pub job_id: i64,
    pub kind: ConflictKind,
    pub candidates: Vec<String>,
    pub decision: Option<ConflictDecision>,
    pub decided_by: Option<String>,
    pub created_ms: i64,
}

/// A job asking to make destructive changes in a destination.
#[derive(Debug, Clone)]
pub struct GuardRequest {
    pub tenant: String,
    pub destination: String,
    pub job_id: i64,
    pub now_ms: i64,
    pub window_ms: i64,
    pub max_accounts: Option<i64>,
    pub max_percent: Option<f64>,
    /// The percentage applies from this many managed accounts on.
    pub min_population: i64,
    /// Written if this request trips the guard, with the reason filled in.
    pub alert: AuditRecord,
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardDecision {
    /// Go ahead (`by_approval`: within an approved budget).
    Admitted { recent: i64, by_approval: bool },
    /// Stop and wait for approval.
    Held { why: String, newly_tripped: bool },
}

/// Guards and conflicts.
#[async_trait]
pub trait GuardStore: Send + Sync {
    /// Decides, atomically with every other job, whether a job may make destructive
    /// changes in a destination: admitted within the limits or an approved budget,
    /// else the guard trips (writing the request's alert) and the job must wait.
    async fn guard_admit(&self, request: GuardRequest) -> StoreResult<GuardDecision>;
    /// Approves a tripped guard, audited: its held jobs run. Returns how many were released.
    async fn approve_guard(&self, tenant: &str, destination: &str, actor: &str) -> StoreResult<i64>;
    /// All guards of a tenant.
    async fn guards(&self, tenant: &str) -> StoreResult<Vec<Guard>>;
    /// Opens a conflict for a person to decide (the job is held by the caller's `finish`).
    async fn open_conflict(
        &self,
        lease: &JobLease,
        conflict: NewConflict,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<i64>;
    /// A decided conflict for this job and destination, if any.
    async fn conflict_decision(
        &self,
        tenant: &str,
        job_id: i64,
        destination: &str,
    ) -> StoreResult<Option<ConflictRow>>;
    /// A tenant's conflicts (`open_only`: undecided).
    async fn conflicts(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ConflictRow>>;
    /// Decides a conflict (`merge` with one of its candidates, or `skip`) and releases its
    /// job, audited.
    async fn resolve_conflict(
        &self,
        tenant: &str,
        id: i64,
        decision: ConflictDecision,
        actor: &str,
    ) -> StoreResult<ConflictRow>;
    /// Holds a plan for approval (the job is held by the caller's `finish`); a pending or
    /// approved plan of the same job and destination is superseded by it.
    async fn hold_plan(
        &self,
        lease: &JobLease,
        hold: NewHold,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<HoldRow>;
    /// The newest held plan of this job and destination, if any.
    async fn hold_of(&self, tenant: &str, job_id: i64, destination: &str) -> StoreResult<Option<HoldRow>>;
    /// A tenant's held plans, oldest first.
    async fn holds(&self, filter: HoldFilter) -> StoreResult<Vec<HoldRow>>;
    /// Approves or rejects these pending plans and releases their jobs, in one write, each
    /// audited with `actor`; returns the plans decided (ids not pending are left out).
    async fn decide_holds(
        &self,
        tenant: &str,
        ids: Vec<i64>,
        decision: HoldDecision,
        actor: &str,
        note: Option<String>,
    ) -> StoreResult<Vec<HoldRow>>;
    /// Marks an approved plan applied, with the job's audit.
    async fn hold_applied(&self, lease: &JobLease, id: i64, audit: Vec<AuditRecord>) -> StoreResult<()>;
}
