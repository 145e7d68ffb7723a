//! Named leases (one host polls each source).

use super::SqliteStore;
use crate::*;
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl LeaseStore for SqliteStore {
    async fn hold_lease(&self, name: &str, owner: &str, now_ms: i64, until_ms: i64) -> StoreResult<bool> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.writer
            .write(move |ctx| {
                Ok(ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO leases (name, owner, until_ms) VALUES (?1, ?2, ?4)
                         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
                         WHERE leases.owner = excluded.owner OR leases.until_ms < ?3
                         RETURNING 1",
                    )?
                    .query_row(params![name, owner, now_ms, until_ms], |_| Ok(()))
                    .optional()?
                    .is_some())
            })
            .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> StoreResult<()> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached("DELETE FROM leases WHERE name = ?1 AND owner = ?2")?
                    .execute(params![name, owner])?;
                Ok(())
            })
            .await
    }

    async fn live_leases(&self, prefix: &str, now_ms: i64) -> StoreResult<u64> {
        let prefix = prefix.to_string();
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT count(*) FROM leases WHERE substr(name, 1, length(?1)) = ?1 AND until_ms >= ?2",
            )?
            .query_row(params![prefix, now_ms], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
        })
    }
}
