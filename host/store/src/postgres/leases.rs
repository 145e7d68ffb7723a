//! Named leases (one host polls each source): the upsert takes a lease only from its
//! holder or once it ran out, so of two hosts trying at once one wins.

use super::PgStore;
use crate::*;

#[async_trait::async_trait]
impl LeaseStore for PgStore {
    async fn hold_lease(&self, name: &str, owner: &str, now_ms: i64, until_ms: i64) -> StoreResult<bool> {
        Ok(sqlx::query(
            "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $4)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE leases.owner = excluded.owner OR leases.until_ms < $3
             RETURNING 1",
        )
        .bind(name)
        .bind(owner)
        .bind(now_ms)
        .bind(until_ms)
        .fetch_optional(self.pool())
        .await?
        .is_some())
    }

    async fn release_lease(&self, name: &str, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn live_leases(&self, prefix: &str, now_ms: i64) -> StoreResult<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM leases WHERE starts_with(name, $1) AND until_ms >= $2")
                .bind(prefix)
                .bind(now_ms)
                .fetch_one(self.pool())
                .await?;
        Ok(n.max(0) as u64)
    }
}
