//! The records the store keeps.

use serde::{Deserialize, Serialize};

/// A validated event to store, with the job that will apply it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant: String,
    pub source: String,
    /// The client's idempotency key (or the source record id); unique per tenant.
    pub idempotency_key: String,
    /// The person this event is about (ordering and linking key).
    pub person_key: String,
    /// The event kind (`joiner`, `leaver`, ...).
    pub kind: String,
    /// The canonical person event as JSON.
    pub body: String,
    pub source_record_id: String,
    pub start_date: Option<String>,
    /// When the source says the change happened (ms since the epoch).
    pub occurred_ms: Option<i64>,
    /// Who sent it (API token name or `source:<name>`).
    pub actor: String,
    pub received_ms: i64,
    pub max_attempts: u32,
    /// Keys that identify the person across sources (`email:a@b.test`, `id:hr:E1`):
    /// when one already belongs to a person, the event joins that person.
    pub link_keys: Vec<String>,
}

/// A source's polling position, stored with the events it produced.
#[derive(Debug, Clone)]
pub struct CursorUpdate {
    pub tenant: String,
    pub source: String,
    pub cursor: String,
}

/// What intake did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Intake {
    Accepted { event_id: i64, job_id: i64 },
    Duplicate { event_id: i64, job_id: i64 },
}

impl Intake {
    pub fn event_id(&self) -> i64 {
        match self {
            Intake::Accepted { event_id, .. } | Intake::Duplicate { event_id, .. } => *event_id,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub tenant: String,
    pub source: String,
    pub kind: String,
    pub person_key: String,
    pub source_record_id: String,
    pub idempotency_key: String,
    pub actor: String,
    pub received_ms: i64,
    #[serde(skip)]
    pub body: String,
}

/// Job states. `held` waits for a person (a conflict or a tripped guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Available,
    Running,
    Retryable,
    Completed,
    Dead,
    Held,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
            JobState::Held => "held",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "available" => JobState::Available,
            "running" => JobState::Running,
            "retryable" => JobState::Retryable,
            "completed" => JobState::Completed,
            "dead" => JobState::Dead,
            "held" => JobState::Held,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub const ALL: [JobState; 7] = [
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Dead,
        JobState::Held,
        JobState::Cancelled,
    ];
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
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub tenant: String,
    pub person_key: String,
    pub event_id: i64,
    pub kind: String,
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
#[derive(Debug, Clone, Serialize)]
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

/// An operation about to be sent to a connector.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub job_id: i64,
    pub tenant: String,
    pub destination: String,
    /// Unique within the job: the same planned change has the same key on every attempt.
    pub op_key: String,
    pub kind: String,
    pub target: Option<String>,
    pub destructive: bool,
    pub now_ms: i64,
}

/// The result of one operation.
#[derive(Debug, Clone)]
pub struct OpResult {
    /// `done`, `failed` or `dry-run`.
    pub status: String,
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
#[derive(Debug, Clone, Serialize)]
pub struct OperationRow {
    pub id: i64,
    pub job_id: i64,
    pub destination: String,
    pub op_key: String,
    pub kind: String,
    pub target: Option<String>,
    /// `started`, `done`, `failed` or `dry-run`.
    pub status: String,
    pub detail: Option<String>,
    pub anchor: Option<String>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
}

/// A person's account in one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A destination's mass-change guard.
#[derive(Debug, Clone, Default, Serialize)]
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
    /// `ambiguous` or `unmanaged`.
    pub kind: String,
    pub candidates: Vec<String>,
    pub now_ms: i64,
}

/// How a person decided a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum ConflictDecision {
    /// Link this account and take it over.
    Merge { anchor: String },
    /// Leave this destination alone for this event.
    Skip,
}

/// A stored conflict.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictRow {
    pub id: i64,
    pub tenant: String,
    pub destination: String,
    pub person_key: String,
    pub job_id: i64,
    pub kind: String,
    pub candidates: Vec<String>,
    pub decision: Option<ConflictDecision>,
    pub decided_by: Option<String>,
    pub created_ms: i64,
}

/// One audit record to append.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditRecord {
    pub tenant: String,
    /// What happened, for example `event.received`, `rules.evaluated`, `op.applied`.
    pub kind: String,
    /// Who: an API token name, `source:<name>` or `system`.
    pub actor: String,
    pub person_key: Option<String>,
    pub destination: Option<String>,
    pub event_id: Option<i64>,
    pub job_id: Option<i64>,
    /// Details (already redacted).
    pub data: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub ts_ms: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub person_key: Option<String>,
    pub destination: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub kind_prefix: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: Option<usize>,
}

/// The field's key performance indicators.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Kpis {
    pub events: i64,
    pub completed_jobs: i64,
    pub dead_jobs: i64,
    /// Median and 95th percentile milliseconds from receipt to done, for joiners.
    pub time_to_provision_p50_ms: Option<i64>,
    pub time_to_provision_p95_ms: Option<i64>,
    /// Joiners with a start date whose accounts were ready before it, out of those done.
    pub first_day_ready: i64,
    pub first_day_total: i64,
    pub first_day_access_rate: Option<f64>,
    /// Failed connector operations per 1,000 events.
    pub errors_per_1000_events: f64,
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

/// A new rule-set version (a draft until published).
#[derive(Debug, Clone)]
pub struct NewRuleSet {
    pub tenant: String,
    pub document: String,
    pub author: String,
    pub message: String,
    pub tests_passed: bool,
    /// The test report, as JSON.
    pub tests: serde_json::Value,
}

/// A stored rule-set version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleSetVersion {
    pub tenant: String,
    pub version: i64,
    pub author: String,
    pub message: String,
    pub created_ms: i64,
    pub tests_passed: bool,
    pub tests: serde_json::Value,
    pub document: String,
}

/// Which version a tenant runs, since when and by whom.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuleSetHead {
    pub version: i64,
    pub published_by: String,
    pub published_ms: i64,
}

/// A verified webhook delivery, stored raw before it is acknowledged and turned
/// into events later by the source's plugin (enrichment may take seconds).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub tenant: String,
    pub source: String,
    /// The delivery's own token (replay protection).
    pub token: String,
    /// What the delivery says (event, data, time), hashed: a redelivery of the same
    /// content, even under a new token, is acknowledged without enriching again.
    pub digest: String,
    /// The vendor's event name (`candidateHired`).
    pub event: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long a seen token is remembered (at least the freshness window).
    pub keep_token_ms: i64,
    /// Nothing to enrich (a vendor's test ping): stored as done.
    pub ping: bool,
    pub max_attempts: u32,
    /// Written with the delivery (`webhook.received`).
    pub audit: Vec<AuditRecord>,
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryIntake {
    /// Stored; it will be enriched.
    Stored { delivery_id: i64 },
    /// The same content was received before (a redelivery): nothing new.
    Duplicate { delivery_id: i64 },
    /// The token was seen with other content: refused.
    Replay,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting to be enriched (first time or after a failure).
    Pending,
    Running,
    /// Its events are stored (possibly none).
    Done,
    /// The source plugin refused it for good (bad data, an unknown record).
    Rejected,
    /// Attempts exhausted; replay after the fix.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Running => "running",
            DeliveryState::Done => "done",
            DeliveryState::Rejected => "rejected",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "running" => DeliveryState::Running,
            "done" => DeliveryState::Done,
            "rejected" => DeliveryState::Rejected,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// A stored delivery.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub tenant: String,
    pub source: String,
    pub event: String,
    pub state: DeliveryState,
    /// Attempts so far (the one running included).
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    /// Events it produced.
    pub events: i64,
    pub received_ms: i64,
    pub finished_ms: Option<i64>,
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// How an enrichment attempt ended.
#[derive(Debug, Clone)]
pub enum DeliveryFinish {
    /// The events are stored with the delivery's end, in one transaction.
    Done {
        events: Vec<NewEvent>,
    },
    /// Try again at `run_at_ms`; `charge` false gives the attempt back (a rate limit's wait).
    Retry {
        run_at_ms: i64,
        error: String,
        charge: bool,
    },
    Rejected {
        reason: String,
    },
    Dead {
        error: String,
    },
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub tenant: String,
    pub source: Option<String>,
    pub state: Option<DeliveryState>,
    pub limit: usize,
}

/// A dated action the host runs later (a deletion after the grace period).
#[derive(Debug, Clone, Serialize)]
pub struct ScheduledAction {
    pub id: i64,
    pub tenant: String,
    pub person_key: String,
    pub destination: String,
    /// `delete`.
    pub action: String,
    pub due_ms: i64,
    /// `pending` (waiting for its date), `queued` (a job runs it), `done` or `cancelled`.
    pub state: String,
    /// Why it was scheduled.
    pub reason: String,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    /// What happened (or why it was cancelled).
    pub note: Option<String>,
}

/// An action to schedule.
#[derive(Debug, Clone)]
pub struct NewScheduledAction {
    pub tenant: String,
    pub person_key: String,
    pub destination: String,
    pub action: String,
    pub due_ms: i64,
    pub reason: String,
    pub now_ms: i64,
}

/// Which scheduled actions a cancellation means.
#[derive(Debug, Clone, Copy)]
pub enum ActionMatch<'a> {
    /// Actions of exactly this kind.
    Is(&'a str),
    /// Actions whose kind starts with this (`leaver-step-`).
    StartsWith(&'a str),
}

impl ActionMatch<'_> {
    /// Whether an action of this kind matches.
    pub fn matches(&self, kind: &str) -> bool {
        match self {
            ActionMatch::Is(k) => kind == *k,
            ActionMatch::StartsWith(prefix) => kind.starts_with(prefix),
        }
    }
}

/// A person's stored lifecycle record.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleRow {
    pub person_key: String,
    /// The state last applied.
    pub state: String,
    pub manager_key: Option<String>,
    /// The pipeline's lifecycle document (JSON).
    pub doc: String,
    pub updated_ms: i64,
}

/// A stored report (a reconciliation run).
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub id: i64,
    pub tenant: String,
    pub kind: String,
    /// Short JSON summary (counts).
    pub summary: serde_json::Value,
    /// The whole report (JSON); empty in listings.
    pub body: serde_json::Value,
    pub created_ms: i64,
}
