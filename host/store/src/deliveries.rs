//! Webhook deliveries: stored raw (with replay and redelivery checks) before the
//! sender is answered, enriched later by the source's plugin under a lease, and
//! ended together with the events they produced.

use crate::{AuditRecord, Intake, NewEvent, StoreResult};
use async_trait::async_trait;
use serde::Serialize;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryIntake {
    /// Stored; it will be enriched.
    Stored { delivery_id: i64 },
    /// The same content was received before (a redelivery): nothing new.
    Duplicate { delivery_id: i64 },
    /// The token was seen with other content: refused.
    Replay,
}

crate::column_enum! {
    /// Where a delivery stands.
    pub enum DeliveryState {
        /// Waiting to be enriched (first time or after a failure).
        Pending = "pending",
        Running = "running",
        /// Its events are stored (possibly none).
        Done = "done",
        /// The source plugin refused it for good (bad data, an unknown record).
        Rejected = "rejected",
        /// Attempts exhausted; replay after the fix.
        Dead = "dead",
    }
}

/// A stored delivery.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
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

/// Webhook deliveries and their enrichment queue.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
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
}
