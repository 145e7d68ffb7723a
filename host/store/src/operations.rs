//! Operations and links: every change sent to a destination, recorded before it
//! is sent (so a crash after the call is recognised) and after; and the link
//! between a person and their account in each destination, with the groups
//! Tenure granted (the only ones it ever removes).

use crate::{AuditRecord, JobLease, StoreResult};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

crate::column_enum! {
    /// What an operation does to an account.
    pub enum OperationKind {
        Create = "create",
        Update = "update",
        Enable = "enable",
        Disable = "disable",
        Move = "move",
        AddMember = "add-member",
        RemoveMember = "remove-member",
        Delete = "delete",
        OpenTicket = "open-ticket",
    }
}

impl OperationKind {
    /// Takes access away: counted by the mass-change guard.
    pub fn is_destructive(self) -> bool {
        matches!(
            self,
            OperationKind::Disable
                | OperationKind::Delete
                | OperationKind::Move
                | OperationKind::RemoveMember
        )
    }
}

crate::column_enum! {
    /// Where an operation stands.
    pub enum OperationStatus {
        /// Its intent is recorded; it is being sent (or a crash interrupted it).
        Started = "started",
        Done = "done",
        Failed = "failed",
        /// Planned for a destination that runs dry: never sent.
        DryRun = "dry-run",
        /// Recorded but not sent, or sent with an outcome that could not be confirmed.
        Abandoned = "abandoned",
    }
}

/// An operation about to be sent to a connector.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub job_id: i64,
    pub tenant: String,
    pub destination: String,
    /// Unique within the job: the same planned change has the same key on every attempt.
    pub op_key: String,
    pub kind: OperationKind,
    pub target: Option<String>,
    pub destructive: bool,
    pub now_ms: i64,
}

/// The result of one operation.
#[derive(Debug, Clone)]
pub struct OpResult {
    pub status: OperationStatus,
    pub detail: String,
    /// The anchor a create produced.
    pub anchor: Option<String>,
    pub now_ms: i64,
}

/// An operation's result waiting to be written with the next write of its job.
#[derive(Debug, Clone)]
pub struct FinishedOp {
    pub op_id: i64,
    pub result: OpResult,
    pub link: Option<LinkUpdate>,
    pub audit: Vec<AuditRecord>,
}

/// A recorded operation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OperationRow {
    pub id: i64,
    pub job_id: i64,
    pub destination: String,
    pub op_key: String,
    pub kind: OperationKind,
    pub target: Option<String>,
    pub status: OperationStatus,
    pub detail: Option<String>,
    pub anchor: Option<String>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
}

/// A person's account in one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Link {
    pub anchor: String,
    /// Groups Tenure granted (only these are ever removed).
    pub managed_groups: Vec<String>,
}

/// A link to write.
#[derive(Debug, Clone)]
pub struct LinkUpdate {
    pub tenant: String,
    pub destination: String,
    pub person_key: String,
    /// None removes the link (the account was deleted).
    pub link: Option<Link>,
}

/// Operations and links.
#[async_trait]
pub trait OperationStore: Send + Sync {
    /// Records that operations are about to be sent, in order (so a crash after a call is
    /// recognised: each is recorded before it is sent), together with the results of the
    /// job's earlier operations not yet written; fenced by the lease. Returns their ids in
    /// the same order. The same `op_key` of a job is one operation across attempts.
    async fn ops_started(
        &self,
        lease: &JobLease,
        previous: Vec<FinishedOp>,
        ops: Vec<NewOperation>,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Vec<i64>>;
    /// Records operations' results, in order, and the links they established or changed.
    async fn ops_finished(&self, lease: &JobLease, done: Vec<FinishedOp>) -> StoreResult<()>;
    /// Writes a link outside an operation (a merge or a recovered create), with its audit.
    async fn put_link(&self, lease: &JobLease, link: LinkUpdate, audit: Vec<AuditRecord>) -> StoreResult<()>;
    /// Operations recorded for a job, oldest first.
    async fn operations(&self, job_id: i64) -> StoreResult<Vec<OperationRow>>;
    /// The account a person is linked to in a destination.
    async fn link(&self, tenant: &str, destination: &str, person_key: &str) -> StoreResult<Option<Link>>;
    /// Every link of a destination: (person key, link), by person.
    async fn links(&self, tenant: &str, destination: &str) -> StoreResult<Vec<(String, Link)>>;
    /// The person an account is linked to, if any.
    async fn anchor_owner(
        &self,
        tenant: &str,
        destination: &str,
        anchor: &str,
    ) -> StoreResult<Option<String>>;
    /// How many accounts Tenure manages in a destination.
    async fn managed_count(&self, tenant: &str, destination: &str) -> StoreResult<i64>;
}
