//! Changes held for a person's approval: a supervised destination plans a person's
//! operations and holds them; approved, the job runs again and re-plans against the
//! destination as it is then; rejected, the destination is left alone for that event.

use serde::Serialize;

crate::column_enum! {
    /// Where a held plan stands.
    pub enum HoldState {
        /// Waiting for a person to approve or reject it.
        Pending = "pending",
        /// Approved: the job runs again and applies what it re-plans, if it is within this.
        Approved = "approved",
        /// Rejected: the destination is left alone for this event.
        Rejected = "rejected",
        /// Approved and applied.
        Applied = "applied",
        /// Replaced by a newer plan for the same job (the destination changed meanwhile).
        Superseded = "superseded",
    }
}

crate::column_enum! {
    /// A person's decision on held plans.
    pub enum HoldDecision {
        Approve = "approve",
        Reject = "reject",
    }
}

/// A plan to hold.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub tenant: String,
    pub destination: String,
    pub person_key: String,
    pub job_id: i64,
    /// The operations as the approver sees them (redacted values masked).
    pub operations: Vec<serde_json::Value>,
}

/// A held plan.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HoldRow {
    pub id: i64,
    pub tenant: String,
    pub destination: String,
    pub person_key: String,
    pub job_id: i64,
    pub operations: Vec<serde_json::Value>,
    pub state: HoldState,
    pub decided_by: Option<String>,
    pub decided_ms: Option<i64>,
    /// Why, as the person deciding wrote it.
    pub note: Option<String>,
    pub created_ms: i64,
}

/// Which held plans to list.
#[derive(Debug, Clone, Default)]
pub struct HoldFilter {
    pub tenant: String,
    pub state: Option<HoldState>,
    pub destination: Option<String>,
    pub person_key: Option<String>,
    /// Only ids after this one (paging).
    pub after_id: Option<i64>,
    pub limit: usize,
}
