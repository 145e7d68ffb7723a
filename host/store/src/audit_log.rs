//! The audit log (hash-chained, append-only), the field's KPIs and stored reports.

use crate::audit::{AuditAnchor, VerifyReport};
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::{AuditKind, StoreResult};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One audit record to append.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditRecord {
    pub tenant: String,
    /// What happened.
    pub kind: AuditKind,
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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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

impl AuditRecord {
    /// A record of `kind` by `actor` (an API token name, `source:<name>` or `system`).
    pub fn new(tenant: impl Into<String>, kind: AuditKind, actor: impl Into<String>) -> Self {
        AuditRecord {
            tenant: tenant.into(),
            kind,
            actor: actor.into(),
            person_key: None,
            destination: None,
            event_id: None,
            job_id: None,
            data: serde_json::Value::Null,
        }
    }

    pub fn person(mut self, person_key: impl Into<String>) -> Self {
        self.person_key = Some(person_key.into());
        self
    }

    pub fn destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = Some(destination.into());
        self
    }

    pub fn event(mut self, event_id: i64) -> Self {
        self.event_id = Some(event_id);
        self
    }

    pub fn job(mut self, job_id: i64) -> Self {
        self.job_id = Some(job_id);
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// The field's key performance indicators.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
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

crate::column_enum! {
    /// What a stored report is.
    pub enum ReportKind {
        /// A reconciliation run (drift, repairs, access review).
        Reconcile = "reconciliation",
        /// A plugin version's shadow run: what activating it would change, person by person.
        PluginShadow = "plugin-shadow",
    }
}

/// A stored report (a reconciliation run).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReportRow {
    pub id: i64,
    pub tenant: String,
    pub kind: ReportKind,
    /// Short JSON summary (counts).
    pub summary: serde_json::Value,
    /// The whole report (JSON); empty in listings.
    pub body: serde_json::Value,
    pub created_ms: i64,
}

/// The audit log, KPIs and reports.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends audit records (admin actions, alerts) in their own transaction.
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()>;
    /// Entries in sequence order.
    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Recomputes the hash chain and reports the first entry that does not hold.
    async fn verify_audit(&self) -> StoreResult<VerifyReport> {
        self.verify_audit_through(Vec::new()).await
    }
    /// Verifies as [`verify_audit`](Self::verify_audit), and that the chain passes through
    /// each anchor (a head a signed checkpoint recorded).
    async fn verify_audit_through(&self, anchors: Vec<AuditAnchor>) -> StoreResult<VerifyReport>;
    /// Signs a checkpoint of the chain's durable head and audits that it was taken.
    async fn audit_checkpoint(
        &self,
        signer: std::sync::Arc<CheckpointSigner>,
        actor: &str,
    ) -> StoreResult<Checkpoint>;
    async fn kpis(&self, tenant: &str) -> StoreResult<Kpis>;
    /// The KPIs per `bucket_ms` (> 0) from `since_ms` to `until_ms`, per source (events by
    /// when they arrived) and per destination (operations by when they started).
    async fn kpi_series(
        &self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        bucket_ms: i64,
    ) -> StoreResult<crate::KpiSeries>;
    /// Stores a report and keeps only the tenant's newest `keep` of its kind; returns its id.
    async fn put_report(
        &self,
        tenant: &str,
        kind: ReportKind,
        summary: serde_json::Value,
        body: serde_json::Value,
        now_ms: i64,
        keep: usize,
    ) -> StoreResult<i64>;
    /// Replaces a kept report's summary and body (a report that was started, now finished);
    /// false when the tenant has no report `id` (any more).
    async fn update_report(
        &self,
        tenant: &str,
        id: i64,
        summary: serde_json::Value,
        body: serde_json::Value,
    ) -> StoreResult<bool>;
    async fn report(&self, tenant: &str, id: i64) -> StoreResult<Option<ReportRow>>;
    /// A tenant's reports of a kind, newest first, without their bodies.
    async fn reports(&self, tenant: &str, kind: ReportKind, limit: usize) -> StoreResult<Vec<ReportRow>>;
}
