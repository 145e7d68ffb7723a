//! Schedule and lifecycle: each person's lifecycle record (their dated facts and
//! the state last applied) and the dated actions the host runs later (the next
//! wake-up, contract notices, leaver steps, deletions after the grace period,
//! a report's refresh, reconciliations).

use crate::{JobLease, StoreResult};
use async_trait::async_trait;
use serde::Serialize;

crate::column_enum! {
    /// Where a person is in their life at the company.
    pub enum LifecycleState {
        /// Known to a source but not hired.
        Candidate = "candidate",
        /// Hired; the start date is still ahead.
        PreHire = "pre-hire",
        Active = "active",
        OnLeave = "on-leave",
        /// Past their last day.
        Terminated = "terminated",
        /// A contractor past the contract's end date.
        ContractExpired = "contract-expired",
        /// A hire withdrawn before the start date.
        Withdrawn = "withdrawn",
    }
}

impl LifecycleState {
    /// No access any more: terminated, expired or withdrawn.
    pub fn is_gone(self) -> bool {
        matches!(
            self,
            LifecycleState::Terminated | LifecycleState::ContractExpired | LifecycleState::Withdrawn
        )
    }
}

/// What a dated action does when it comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Re-evaluate the person at their next dated change (start date, leave, last day).
    Wake,
    /// Re-evaluate a report once their manager is provisioned.
    Refresh,
    /// Delete a leaver's account after the grace period.
    Delete,
    /// Tell the manager a contract ends in this many days.
    Notice { days: u32 },
    /// A destination's staged leaver step (its index).
    LeaverStep(usize),
    /// A tenant's scheduled reconciliation (person and destination empty).
    Reconcile,
}

impl ActionKind {
    /// The spelling in the store (`lifecycle`, `notice-30d`, `leaver-step-1`).
    pub fn to_column(self) -> String {
        match self {
            ActionKind::Wake => "lifecycle".into(),
            ActionKind::Refresh => "refresh".into(),
            ActionKind::Delete => "delete".into(),
            ActionKind::Notice { days } => format!("notice-{days}d"),
            ActionKind::LeaverStep(i) => format!("leaver-step-{i}"),
            ActionKind::Reconcile => "reconcile".into(),
        }
    }

    /// The kind of a spelling, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "lifecycle" => ActionKind::Wake,
            "refresh" => ActionKind::Refresh,
            "delete" => ActionKind::Delete,
            "reconcile" => ActionKind::Reconcile,
            _ => {
                if let Some(days) = text.strip_prefix("notice-").and_then(|d| d.strip_suffix('d')) {
                    ActionKind::Notice {
                        days: days.parse().ok()?,
                    }
                } else {
                    ActionKind::LeaverStep(text.strip_prefix("leaver-step-")?.parse().ok()?)
                }
            }
        })
    }
}

impl std::str::FromStr for ActionKind {
    type Err = crate::column::UnknownValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| crate::column::UnknownValue {
            kind: "ActionKind",
            value: text.chars().take(64).collect(),
            expected: "lifecycle, refresh, delete, reconcile, notice-<n>d or leaver-step-<i>".into(),
        })
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_column())
    }
}

impl schemars::JsonSchema for ActionKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ActionKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

impl Serialize for ActionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_column())
    }
}

crate::column_enum! {
    /// Where a dated action stands.
    pub enum ActionState {
        /// Waiting for its date.
        Pending = "pending",
        /// Due: a job runs it.
        Queued = "queued",
        Done = "done",
        Cancelled = "cancelled",
    }
}

impl ActionState {
    /// Pending or queued.
    pub fn is_open(self) -> bool {
        matches!(self, ActionState::Pending | ActionState::Queued)
    }
}

/// A dated action the host runs later (a deletion after the grace period).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ScheduledAction {
    pub id: i64,
    pub tenant: String,
    pub person_key: String,
    pub destination: String,
    pub action: ActionKind,
    pub due_ms: i64,
    pub state: ActionState,
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
    pub action: ActionKind,
    pub due_ms: i64,
    pub reason: String,
    pub now_ms: i64,
}

/// Which scheduled actions a cancellation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionMatch {
    /// Actions of exactly this kind.
    Is(ActionKind),
    /// Every leaver step.
    AnyLeaverStep,
}

impl ActionMatch {
    /// Whether an action of this kind matches.
    pub fn matches(self, kind: ActionKind) -> bool {
        match self {
            ActionMatch::Is(k) => kind == k,
            ActionMatch::AnyLeaverStep => matches!(kind, ActionKind::LeaverStep(_)),
        }
    }
}

/// A person's stored lifecycle record.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LifecycleRow {
    pub person_key: String,
    /// The state last applied (none: never applied).
    pub state: Option<LifecycleState>,
    pub manager_key: Option<String>,
    /// The pipeline's lifecycle document (JSON).
    pub doc: String,
    pub updated_ms: i64,
    /// The person's name and email from their newest record, to find them by.
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Dated actions and lifecycle records.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Schedules an action unless one of its kind is already open for the person and
    /// destination (the first date holds); true when it was added.
    async fn schedule_action(&self, action: NewScheduledAction) -> StoreResult<bool>;
    /// Moves an open action of this kind to a new date (or adds it): a pending one
    /// takes the new date, a queued one is left to run; true when something changed.
    async fn reschedule_action(&self, action: NewScheduledAction) -> StoreResult<bool>;
    /// Cancels a person's open actions (pending or queued) that match `action`, in
    /// `destination` or in every destination; how many.
    async fn cancel_actions(
        &self,
        tenant: &str,
        person_key: &str,
        destination: Option<&str>,
        action: ActionMatch,
        note: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// Pending actions whose date has come, marked queued in the same write (so each
    /// fires once, whichever host takes it), earliest first.
    async fn take_due_actions(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduledAction>>;
    /// Ends an open action (done or cancelled) with a note.
    async fn finish_action(&self, id: i64, state: ActionState, note: &str, now_ms: i64) -> StoreResult<()>;
    /// Puts an open action (pending, or queued and being run) back to wait until `due_ms`, with
    /// a note; true when it was open.
    async fn defer_action(&self, id: i64, due_ms: i64, note: &str) -> StoreResult<bool>;
    /// One action by id.
    async fn scheduled_action(&self, id: i64) -> StoreResult<Option<ScheduledAction>>;
    /// A tenant's actions, newest first (`open_only`: pending and queued).
    async fn scheduled_actions(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ScheduledAction>>;
    /// One person's open actions (pending and queued), oldest first.
    async fn open_actions(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<ScheduledAction>>;
    /// A person's lifecycle record.
    async fn lifecycle(&self, tenant: &str, person_key: &str) -> StoreResult<Option<LifecycleRow>>;
    /// Writes a person's lifecycle record (during the attempt that holds `lease`).
    async fn put_lifecycle(&self, lease: &JobLease, tenant: &str, row: LifecycleRow) -> StoreResult<()>;
    /// The people whose name, email or key holds `text` (ASCII letters in any case), at most
    /// `limit`, by name.
    async fn find_people(&self, tenant: &str, text: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>>;
    /// Every lifecycle record of a tenant (at most `limit`), by person.
    async fn lifecycles(&self, tenant: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>>;
    /// One page of the people Tenure keeps state for (a lifecycle record or an account
    /// linked in any destination), in key order after `after`.
    async fn known_people(&self, tenant: &str, after: Option<&str>, limit: usize)
    -> StoreResult<Vec<String>>;
    /// The people whose manager is one of `manager_keys`.
    async fn reports_of(&self, tenant: &str, manager_keys: Vec<String>) -> StoreResult<Vec<String>>;
}
