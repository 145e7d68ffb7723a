//! Tenure's durable state, grouped by aggregate: each aggregate is a trait of its
//! own file with its records, and [`Store`] is their sum, so callers hold one
//! handle (`Arc<dyn Store>`) and a backend implements the aggregates one by one.
//!
//! | aggregate | trait | keeps |
//! |---|---|---|
//! | events and identity | [`EventStore`] | events (stored once, before the answer), identity, cursors |
//! | unique names | [`NameStore`] | who holds which unique value |
//! | webhook deliveries | [`DeliveryStore`] | raw deliveries and their enrichment queue |
//! | queue | [`JobStore`] | jobs with leases, per-person order, retries, holds |
//! | operations and links | [`OperationStore`] | every planned and applied change; person-to-account links |
//! | guards and conflicts | [`GuardStore`] | the mass-change guard, matching conflicts |
//! | schedule and lifecycle | [`ScheduleStore`] | dated actions, lifecycle records |
//! | rule sets | [`RuleSetStore`] | versions and the published head |
//! | audit | [`AuditStore`] | the hash-chained audit log, KPIs, reports |
//! | secrets | [`SecretStore`] | sealed secrets, plugin key-value data |
//! | health | [`HealthStore`] | readiness, queue depth |
//! | access | [`AccessStore`] | people's accounts and sessions, API tokens made at run time |
//! | leases | [`LeaseStore`] | work one host does alone (a source's polls) |
//!
//! Every state and kind kept in a column is an enum with one spelling
//! ([`column_enum!`]). Event bodies are Tenure's own versioned [`envelope`].
//! [`SqliteStore`] is the embedded default (one file, WAL, one writer thread that
//! group-commits); [`PgStore`] keeps several hosts on one PostgreSQL database, which
//! coordinate through it alone (row locks, `SKIP LOCKED` claims, constraints, leases,
//! and a [`ChangeFeed`] over `LISTEN`/`NOTIFY`). Every backend must pass
//! [`conformance`], the suite written once against the traits.

pub mod access;
pub mod audit;
mod audit_kind;
mod audit_log;
mod changes;
pub mod checkpoint;
pub mod compact_json;
#[macro_use]
pub mod column;
pub mod conformance;
pub mod crypto;
mod deliveries;
pub mod envelope;
mod events;
mod guards;
mod health;
mod holds;
mod jobs;
mod keys;
mod kpis;
mod leases;
mod names;
mod notifications;
mod operations;
mod plugins;
mod postgres;
mod retention;
mod rule_sets;
mod schedule;
mod secrets;
mod sqlite;

pub use access::*;
pub use audit_kind::AuditKind;
pub use audit_log::*;
pub use changes::*;
pub use deliveries::*;
pub use events::*;
pub use guards::*;
pub use health::*;
pub use holds::*;
pub use jobs::*;
pub use keys::StoreKeys;
pub use kpis::*;
pub use leases::*;
pub use names::*;
pub use notifications::*;
pub use operations::*;
pub use plugins::*;
pub use postgres::{CopyReport, PgOptions, PgStore};
pub use retention::*;
pub use rule_sets::*;
pub use schedule::*;
pub use secrets::*;
pub use sqlite::{Durability, SqliteOptions, SqliteStore};

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
    /// The audit head file disagrees with the database: the store will not open.
    #[error("{0}")]
    AuditHead(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
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

/// The durable state of a Tenure deployment: every aggregate.
pub trait Store:
    EventStore
    + NameStore
    + DeliveryStore
    + NotificationStore
    + PluginStore
    + JobStore
    + OperationStore
    + GuardStore
    + ScheduleStore
    + RuleSetStore
    + AuditStore
    + SecretStore
    + HealthStore
    + RetentionStore
    + AccessStore
    + LeaseStore
    + StoreKeys
    + ChangeFeed
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: EventStore
        + NameStore
        + DeliveryStore
        + NotificationStore
        + PluginStore
        + JobStore
        + OperationStore
        + GuardStore
        + ScheduleStore
        + RuleSetStore
        + AuditStore
        + SecretStore
        + HealthStore
        + RetentionStore
        + AccessStore
        + LeaseStore
        + StoreKeys
        + ChangeFeed
        + Send
        + Sync
        + 'static
{
}

/// Every aggregate trait, for calling store methods on a concrete store
/// (`Arc<SqliteStore>`); through `dyn Store` they need no import.
pub mod prelude {
    pub use crate::{
        AccessStore, AuditStore, DeliveryStore, EventStore, GuardStore, HealthStore, JobStore, LeaseStore,
        NameStore, NotificationStore, OperationStore, PluginStore, RetentionStore, RuleSetStore,
        ScheduleStore, SecretStore, Store,
    };
}
