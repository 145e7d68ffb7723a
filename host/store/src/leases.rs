//! Leases on work that one host of a deployment must do alone (a source's polls): a host
//! holds a lease while it renews it, and another takes it over once it has run out (its
//! holder died or lost the database). Each host also holds one on itself, so the hosts can
//! count how many of them are alive.

use crate::StoreResult;
use async_trait::async_trait;

/// Named leases.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `owner` until `until_ms`, or renews it; false while
    /// another owner holds it (its lease not yet run out at `now_ms`).
    async fn hold_lease(&self, name: &str, owner: &str, now_ms: i64, until_ms: i64) -> StoreResult<bool>;
    /// Gives the lease up, if `owner` holds it (another host may take it at once).
    async fn release_lease(&self, name: &str, owner: &str) -> StoreResult<()>;
    /// How many leases whose names start with `prefix` are held at `now_ms` (not run out).
    async fn live_leases(&self, prefix: &str, now_ms: i64) -> StoreResult<u64>;
}
