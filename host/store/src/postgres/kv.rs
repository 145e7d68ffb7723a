//! Plugin key-value data in the same database, quotas kept in `kv_usage`. A namespace's
//! writes are made one at a time across hosts (an advisory lock), so checked writes and
//! quotas hold when several hosts run the same plugin.

use super::{LockPurpose, PgStore, lock_for};
use crate::StoreError;
use std::sync::Arc;
use tenure_capabilities::kv::MAX_LISTED_KEYS;
use tenure_capabilities::{KvBackend, KvError, KvFuture, KvNamespace, KvQuota};

/// [`KvBackend`] over a [`PgStore`].
pub(crate) struct PgKv(pub Arc<PgStore>);

fn err(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}

impl PgKv {
    /// The writes, if every expected value still holds; the key that changed otherwise.
    async fn apply(
        &self,
        ns: &KvNamespace,
        expected: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> Result<Option<String>, StoreError> {
        let mut w = self.0.begin().await?;
        lock_for(
            w.conn(),
            LockPurpose::KvNamespace,
            &format!("{}\n{}", ns.tenant, ns.plugin),
        )
        .await?;
        // Checked in the write transaction, before anything is written.
        for (key, value) in &expected {
            let now: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT value FROM kv WHERE tenant = $1 AND plugin = $2 AND key = $3")
                    .bind(&ns.tenant)
                    .bind(&ns.plugin)
                    .bind(key)
                    .fetch_optional(w.conn())
                    .await?;
            if now != *value {
                return Ok(Some(key.clone()));
            }
        }
        let (mut keys, mut bytes): (i64, i64) =
            sqlx::query_as("SELECT keys, bytes FROM kv_usage WHERE tenant = $1 AND plugin = $2")
                .bind(&ns.tenant)
                .bind(&ns.plugin)
                .fetch_optional(w.conn())
                .await?
                .unwrap_or((0, 0));
        for (key, value) in &writes {
            let old: Option<i32> = sqlx::query_scalar(
                "SELECT length(value) FROM kv WHERE tenant = $1 AND plugin = $2 AND key = $3",
            )
            .bind(&ns.tenant)
            .bind(&ns.plugin)
            .bind(key)
            .fetch_optional(w.conn())
            .await?;
            if let Some(old) = old {
                keys -= 1;
                bytes -= i64::from(old) + key.len() as i64;
            }
            match value {
                Some(v) => {
                    keys += 1;
                    bytes += (key.len() + v.len()) as i64;
                    sqlx::query(
                        "INSERT INTO kv (tenant, plugin, key, value) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(&ns.tenant)
                    .bind(&ns.plugin)
                    .bind(key)
                    .bind(v)
                    .execute(w.conn())
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM kv WHERE tenant = $1 AND plugin = $2 AND key = $3")
                        .bind(&ns.tenant)
                        .bind(&ns.plugin)
                        .bind(key)
                        .execute(w.conn())
                        .await?;
                }
            }
        }
        // A refusal rolls the whole batch back.
        quota
            .check(keys.max(0) as usize, bytes.max(0) as usize)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        sqlx::query(
            "INSERT INTO kv_usage (tenant, plugin, keys, bytes) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, plugin) DO UPDATE SET keys = excluded.keys, bytes = excluded.bytes",
        )
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(keys)
        .bind(bytes)
        .execute(w.conn())
        .await?;
        w.commit().await?;
        Ok(None)
    }
}

impl KvBackend for PgKv {
    fn get<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT value FROM kv WHERE tenant = $1 AND plugin = $2 AND key = $3")
                .bind(&ns.tenant)
                .bind(&ns.plugin)
                .bind(key)
                .fetch_optional(self.0.pool())
                .await
                .map_err(err)
        })
    }

    fn apply_checked<'a>(
        &'a self,
        ns: &'a KvNamespace,
        expected: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> KvFuture<'a, ()> {
        Box::pin(async move {
            let changed = self
                .apply(ns, expected, writes, quota)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => KvError::TooLarge(m),
                    other => err(other),
                })?;
            match changed {
                Some(key) => Err(KvError::Changed(key)),
                None => Ok(()),
            }
        })
    }

    fn list_keys<'a>(&'a self, ns: &'a KvNamespace, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT key FROM kv WHERE tenant = $1 AND plugin = $2 AND starts_with(key, $3)
                 ORDER BY key LIMIT $4",
            )
            .bind(&ns.tenant)
            .bind(&ns.plugin)
            .bind(prefix)
            .bind(MAX_LISTED_KEYS as i64)
            .fetch_all(self.0.pool())
            .await
            .map_err(err)
        })
    }
}
