//! Plugin key-value data in the same database, quotas kept in `kv_usage`. Writes lock the
//! keys they read and write (advisory locks, in one order, so two writes never wait on each
//! other in a circle): two calls that touch the same key run one after the other on any
//! host, others side by side. The namespace's usage row is changed last, by the difference
//! the write makes, so the quota holds across hosts while its lock is held only to the commit.

use super::{LockPurpose, PgStore};
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
        let keys: Vec<String> = expected
            .iter()
            .chain(&writes)
            .map(|(k, _)| format!("{}\n{}\n{k}", ns.tenant, ns.plugin))
            .collect();
        // One statement, the locks in the order of their keys' hashes: the same on every host.
        sqlx::query(
            "SELECT pg_advisory_xact_lock($1, h)
             FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($2::text[]) k ORDER BY h) l",
        )
        .bind(LockPurpose::KvKey as i32)
        .bind(&keys)
        .execute(w.conn())
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
        // What the writes change in the namespace's usage.
        let (mut keys, mut bytes) = (0_i64, 0_i64);
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
        let (total_keys, total_bytes): (i64, i64) = sqlx::query_as(
            "INSERT INTO kv_usage (tenant, plugin, keys, bytes) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, plugin) DO UPDATE SET keys = kv_usage.keys + excluded.keys,
                 bytes = kv_usage.bytes + excluded.bytes
             RETURNING keys, bytes",
        )
        .bind(&ns.tenant)
        .bind(&ns.plugin)
        .bind(keys)
        .bind(bytes)
        .fetch_one(w.conn())
        .await?;
        // A refusal rolls the whole batch back.
        quota
            .check(total_keys.max(0) as usize, total_bytes.max(0) as usize)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
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
