//! Tenure's durable state behind one trait, [`Store`].
//!
//! Everything the pipeline must not lose lives here: received events (stored
//! and de-duplicated in one transaction before they are acknowledged), the job
//! queue with leases, every planned and applied operation, the links between
//! people and destination accounts, conflicts and mass-change guards, the
//! hash-chained audit log, plugin key-value data and encrypted secrets.
//!
//! [`SqliteStore`] is the embedded default (one file, WAL, one writer thread
//! that group-commits). A PostgreSQL store for several hosts implements the
//! same trait.

pub mod audit;
pub mod crypto;
mod model;
mod sqlite;

pub use model::*;
pub use sqlite::{SqliteOptions, SqliteStore};

use async_trait::async_trait;
use std::sync::Arc;
use tenure_capabilities::KvBackend;

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (for example replaying a job that is not dead).
    #[error("{0}")]
    Conflict(String),
    #[error("the store is shutting down")]
    Closed,
    /// The attempt no longer holds the job's lease (another attempt claimed it): nothing was written.
    #[error("lease lost: {0}")]
    Fenced(String),
    #[error("crypto: {0}")]
    Crypto(String),
    #[error("{0}")]
    Io(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Database(format!("stored JSON is invalid: {e}"))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// The durable state of a Tenure deployment.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores events and their jobs (skipping duplicates by idempotency key), the
    /// audit records and, when given, a source's new cursor, all in one transaction.
    async fn intake(&self, events: Vec<NewEvent>, cursor: Option<CursorUpdate>) -> StoreResult<Vec<Intake>>;
    /// Stores a verified webhook delivery raw (remembering its token and content), with
    /// its audit, in one transaction; a replayed token or a redelivery stores nothing.
    async fn store_delivery(&self, delivery: NewDelivery) -> StoreResult<DeliveryIntake>;
    /// Claims up to `limit` deliveries due for enrichment (or whose lease expired).
    async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRow>>;
    /// Extends the leases `owner` holds on these deliveries.
    async fn extend_delivery_leases(&self, owner: &str, ids: Vec<i64>, until_ms: i64) -> StoreResult<()>;
    /// Ends an enrichment attempt (storing its events when done) with its audit, in one
    /// transaction; `None` (nothing written) when `owner` lost the lease.
    async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        finish: DeliveryFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<Vec<Intake>>>;
    /// A tenant's deliveries, newest first.
    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<DeliveryRow>>;
    /// Makes a dead or rejected delivery pending again (after a fix), audited.
    async fn replay_delivery(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<DeliveryRow>;
    /// Claims up to `limit` runnable jobs (in per-person order) for `owner` with a lease:
    /// jobs whose lease expired first, then a fair share for each of `tenants` (in the
    /// order given; the caller rotates it), then the rest in arrival order.
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
    /// Ends an attempt, first recording the result of its last operation (always),
    /// and writes the person's lifecycle record when given.
    /// Returns false (and writes nothing) when the attempt lost its lease.
    async fn finish(
        &self,
        lease: &JobLease,
        finish: Finish,
        audit: Vec<AuditRecord>,
        last_op: Option<FinishedOp>,
        lifecycle: Option<LifecycleRow>,
    ) -> StoreResult<bool>;
    /// Records that an operation is about to be sent (so a crash after the call is
    /// recognised), together with the result of the job's previous operation.
    async fn op_started(
        &self,
        lease: &JobLease,
        previous: Option<FinishedOp>,
        op: NewOperation,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<i64>;
    /// Records an operation's result, and the link it established or changed.
    async fn op_finished(&self, lease: &JobLease, done: FinishedOp) -> StoreResult<()>;
    /// Writes a link outside an operation (a merge or a recovered create), with its audit.
    async fn put_link(&self, lease: &JobLease, link: LinkUpdate, audit: Vec<AuditRecord>) -> StoreResult<()>;
    /// Operations recorded for a job, oldest first.
    async fn operations(&self, job_id: i64) -> StoreResult<Vec<OperationRow>>;
    /// Schedules an action unless one of its kind is already open for the person and
    /// destination (the first date holds); true when it was added.
    async fn schedule_action(&self, action: NewScheduledAction) -> StoreResult<bool>;
    /// Cancels a person's open actions (pending or queued) that match `action`, in
    /// `destination` or in every destination; how many.
    async fn cancel_actions(
        &self,
        tenant: &str,
        person_key: &str,
        destination: Option<&str>,
        action: ActionMatch<'_>,
        note: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// Pending actions whose date has come, marked `queued` in the same write.
    async fn take_due_actions(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduledAction>>;
    /// Ends an action (`done` or `cancelled`) with a note.
    async fn finish_action(&self, id: i64, state: &str, note: &str, now_ms: i64) -> StoreResult<()>;
    /// One action by id.
    async fn scheduled_action(&self, id: i64) -> StoreResult<Option<ScheduledAction>>;
    /// A tenant's actions, newest first (`open_only`: pending and queued).
    async fn scheduled_actions(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ScheduledAction>>;
    /// One person's open actions (pending and queued), oldest first.
    async fn open_actions(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<ScheduledAction>>;
    /// Moves an open action of this kind to a new date (or adds it): a pending one
    /// takes the new date, a queued one is left to run; true when something changed.
    async fn reschedule_action(&self, action: NewScheduledAction) -> StoreResult<bool>;
    /// A person's lifecycle record.
    async fn lifecycle(&self, tenant: &str, person_key: &str) -> StoreResult<Option<LifecycleRow>>;
    /// Writes a person's lifecycle record (during the attempt that holds `lease`).
    async fn put_lifecycle(&self, lease: &JobLease, tenant: &str, row: LifecycleRow) -> StoreResult<()>;
    /// Every lifecycle record of a tenant (at most `limit`).
    async fn lifecycles(&self, tenant: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>>;
    /// The people whose manager is one of `manager_keys`.
    async fn reports_of(&self, tenant: &str, manager_keys: Vec<String>) -> StoreResult<Vec<String>>;
    /// Every link of a destination: (person key, link).
    async fn links(&self, tenant: &str, destination: &str) -> StoreResult<Vec<(String, Link)>>;
    /// Stores a report; returns its id.
    async fn put_report(
        &self,
        tenant: &str,
        kind: &str,
        summary: serde_json::Value,
        body: serde_json::Value,
        now_ms: i64,
    ) -> StoreResult<i64>;
    async fn report(&self, tenant: &str, id: i64) -> StoreResult<Option<ReportRow>>;
    /// A tenant's reports of a kind, newest first, without their bodies.
    async fn reports(&self, tenant: &str, kind: &str, limit: usize) -> StoreResult<Vec<ReportRow>>;
    /// The account a person is linked to in a destination.
    async fn link(&self, tenant: &str, destination: &str, person_key: &str) -> StoreResult<Option<Link>>;
    /// Whether an account is linked to some other person.
    async fn anchor_owner(
        &self,
        tenant: &str,
        destination: &str,
        anchor: &str,
    ) -> StoreResult<Option<String>>;
    /// How many accounts Tenure manages in a destination.
    async fn managed_count(&self, tenant: &str, destination: &str) -> StoreResult<i64>;
    /// Decides, atomically with every other job, whether a job may make destructive
    /// changes in a destination: admitted within the limits or an approved budget,
    /// else the guard trips and the job must wait.
    async fn guard_admit(&self, request: GuardRequest) -> StoreResult<GuardDecision>;
    /// Approves a tripped guard: its held jobs run. Returns how many were released.
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
    async fn conflicts(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ConflictRow>>;
    /// Decides a conflict (`merge` with an anchor, or `skip`) and releases its job.
    async fn resolve_conflict(
        &self,
        tenant: &str,
        id: i64,
        decision: ConflictDecision,
        actor: &str,
    ) -> StoreResult<ConflictRow>;
    async fn jobs(&self, filter: JobFilter) -> StoreResult<Vec<JobRow>>;
    async fn job(&self, tenant: &str, id: i64) -> StoreResult<Option<JobDetail>>;
    /// Makes a dead, held or cancelled job available again (after a fix).
    async fn replay(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow>;
    /// Cancels a job that has not completed.
    async fn cancel(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow>;
    /// Whether a person has available, retryable or running jobs (a manager before their report).
    async fn has_unfinished(&self, tenant: &str, person_key: &str) -> StoreResult<bool>;
    /// An event of this person, newer than `occurred_ms` by its source's clock, that was
    /// already applied (so an event arriving late would undo it).
    async fn newer_applied(
        &self,
        tenant: &str,
        person_key: &str,
        occurred_ms: i64,
    ) -> StoreResult<Option<i64>>;
    /// The newest event stored for a source record (preview by source record id).
    async fn event_by_record(
        &self,
        tenant: &str,
        source: &str,
        record_id: &str,
    ) -> StoreResult<Option<EventRow>>;
    async fn event(&self, tenant: &str, id: i64) -> StoreResult<Option<EventRow>>;
    /// Appends audit records (admin actions, alerts) in their own transaction.
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()>;
    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Recomputes the hash chain and reports the first entry that does not hold.
    async fn verify_audit(&self) -> StoreResult<audit::VerifyReport>;
    /// Jobs per state (for metrics).
    async fn queue_depth(&self) -> StoreResult<Vec<(String, String, i64)>>;
    async fn kpis(&self, tenant: &str) -> StoreResult<Kpis>;
    /// A source's polling cursor.
    async fn cursor(&self, tenant: &str, source: &str) -> StoreResult<Option<String>>;
    /// Stores a secret encrypted with the master key.
    /// Stores a new rule-set version (the next number for the tenant).
    async fn put_rule_set(&self, new: NewRuleSet, audit: Vec<AuditRecord>) -> StoreResult<RuleSetVersion>;
    /// Every version of a tenant's rule set, oldest first.
    async fn rule_sets(&self, tenant: &str) -> StoreResult<Vec<RuleSetVersion>>;
    async fn rule_set(&self, tenant: &str, version: i64) -> StoreResult<Option<RuleSetVersion>>;
    /// Makes `version` the tenant's current rule set.
    async fn publish_rule_set(
        &self,
        tenant: &str,
        version: i64,
        actor: &str,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<RuleSetHead>;
    async fn current_rule_set(&self, tenant: &str) -> StoreResult<Option<RuleSetHead>>;
    /// Puts held jobs whose hold reason starts with `reason_prefix` back in the
    /// queue (after a fix); returns how many.
    async fn release_held(&self, tenant: &str, reason_prefix: &str, actor: &str) -> StoreResult<u64>;
    /// The newest stored event of every person of a tenant (at most `limit`).
    async fn latest_events(&self, tenant: &str, limit: usize) -> StoreResult<Vec<EventRow>>;
    /// The newest full record of a person stored before event `before_id` (withdrawals
    /// and deletions, which carry ids only, are passed over).
    async fn record_before(
        &self,
        tenant: &str,
        person_key: &str,
        before_id: i64,
    ) -> StoreResult<Option<EventRow>>;
    /// The person that owns the first of `keys` already known (see `NewEvent::link_keys`).
    async fn identity_owner(&self, tenant: &str, keys: &[String]) -> StoreResult<Option<String>>;
    /// The newest event of each source for a person, newest first (the person's
    /// records across linked sources).
    async fn latest_events_of(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<EventRow>>;
    /// Claims a unique value for a person; false when another person holds it.
    /// `value_key` is the comparison form (case-folded).
    async fn claim_name(
        &self,
        tenant: &str,
        attribute: &str,
        value: &str,
        person_key: &str,
    ) -> StoreResult<bool>;
    /// The value a person holds for a unique attribute, if any.
    async fn claimed_name(
        &self,
        tenant: &str,
        attribute: &str,
        person_key: &str,
    ) -> StoreResult<Option<String>>;

    async fn put_secret(&self, name: &str, value: &str) -> StoreResult<()>;
    async fn secret(&self, name: &str) -> StoreResult<Option<String>>;
    /// Reads a secret and removes it in the same write (a one-time reveal).
    async fn take_secret(&self, name: &str) -> StoreResult<Option<String>>;
    /// The plugin key-value backend kept in the same database.
    fn kv(&self) -> Arc<dyn KvBackend>;
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
}
