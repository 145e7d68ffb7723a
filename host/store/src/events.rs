//! Events and identity: what sources said about people, stored before it is
//! acknowledged, de-duplicated by idempotency key, linked across sources, with
//! each source's polling cursor.

use crate::{ActionKind, StoreResult};
use async_trait::async_trait;
use serde::Serialize;

crate::column_enum! {
    /// What a source says happened to a person (the WIT contract's event kinds).
    pub enum EventKind {
        Joiner = "joiner",
        Update = "update",
        Mover = "mover",
        LeaveStart = "leave-start",
        LeaveEnd = "leave-end",
        Leaver = "leaver",
        Rehire = "rehire",
        Conversion = "conversion",
        Withdrawn = "withdrawn",
        Deleted = "deleted",
    }
}

/// The kind of a stored event: from a source, or made by Tenure itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A source's event about a person.
    Person(EventKind),
    /// A repair a reconciliation queued.
    Reconcile,
    /// A dated action that came due.
    Scheduled(ActionKind),
}

impl RecordKind {
    /// The spelling in the store and the API (`joiner`, `reconcile`, `scheduled-delete`).
    pub fn to_column(self) -> String {
        match self {
            RecordKind::Person(k) => k.as_str().into(),
            RecordKind::Reconcile => "reconcile".into(),
            RecordKind::Scheduled(a) => format!("scheduled-{}", a.to_column()),
        }
    }

    /// The kind of a spelling, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "reconcile" {
            return Some(RecordKind::Reconcile);
        }
        if let Some(action) = text.strip_prefix("scheduled-") {
            return ActionKind::parse(action).map(RecordKind::Scheduled);
        }
        EventKind::parse(text).map(RecordKind::Person)
    }

    /// The person event kind, when a source sent it.
    pub fn person(self) -> Option<EventKind> {
        match self {
            RecordKind::Person(k) => Some(k),
            _ => None,
        }
    }

    /// A joiner or a rehire: the events whose time to provision is measured.
    pub fn is_hire(self) -> bool {
        matches!(self, RecordKind::Person(EventKind::Joiner | EventKind::Rehire))
    }
}

impl std::str::FromStr for RecordKind {
    type Err = crate::column::UnknownValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| crate::column::UnknownValue {
            kind: "RecordKind",
            value: text.chars().take(64).collect(),
            expected: "a person event kind, reconcile or scheduled-<action>".into(),
        })
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_column())
    }
}

impl schemars::JsonSchema for RecordKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RecordKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

impl Serialize for RecordKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_column())
    }
}

/// A validated event to store, with the job that will apply it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant: String,
    pub source: String,
    /// The client's idempotency key (or the source record id); unique per tenant.
    pub idempotency_key: String,
    /// The person this event is about (ordering and linking key).
    pub person_key: String,
    pub kind: RecordKind,
    /// The stored event envelope (see [`crate::envelope`]) as JSON.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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

    pub fn job_id(&self) -> i64 {
        match self {
            Intake::Accepted { job_id, .. } | Intake::Duplicate { job_id, .. } => *job_id,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EventRow {
    pub id: i64,
    pub tenant: String,
    pub source: String,
    pub kind: RecordKind,
    pub person_key: String,
    pub source_record_id: String,
    pub idempotency_key: String,
    pub actor: String,
    pub received_ms: i64,
    /// The stored envelope (JSON).
    #[serde(skip)]
    pub body: String,
}

/// Events, identity links and cursors.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores events and their jobs (skipping duplicates by idempotency key), the
    /// audit records and, when given, a source's new cursor, all in one transaction.
    /// A job held on a rules error for the same person is superseded (cancelled).
    async fn intake(&self, events: Vec<NewEvent>, cursor: Option<CursorUpdate>) -> StoreResult<Vec<Intake>>;
    /// A source's polling cursor.
    async fn cursor(&self, tenant: &str, source: &str) -> StoreResult<Option<String>>;
    async fn event(&self, tenant: &str, id: i64) -> StoreResult<Option<EventRow>>;
    /// The newest event stored for a source record (preview by source record id).
    async fn event_by_record(
        &self,
        tenant: &str,
        source: &str,
        record_id: &str,
    ) -> StoreResult<Option<EventRow>>;
    /// One page of the people a tenant has events for, in key order after `after`
    /// (a walk over any population, one page in memory at a time).
    async fn person_keys(&self, tenant: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>>;
    /// The newest event of each source for a person, newest first (the person's
    /// records across linked sources).
    async fn latest_events_of(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<EventRow>>;
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
    /// An event of this person, newer than `occurred_ms` by its source's clock, that was
    /// already applied (so an event arriving late would undo it).
    async fn newer_applied(
        &self,
        tenant: &str,
        person_key: &str,
        occurred_ms: i64,
    ) -> StoreResult<Option<i64>>;
}
