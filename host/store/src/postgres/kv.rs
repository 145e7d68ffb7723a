//! Plugin key-value data in the same database, quotas kept in `kv_usage`. A plugin call's
//! writes go in one round trip, the `tenure_kv_apply` function (migration 0003): it locks the
//! keys the call read and writes (advisory locks, in one order, so two writes never wait on
//! each other in a circle), checks what the call read, writes, and keeps the quota. Two
//! calls that touch the same key run one after the other on any host, others side by side.
//!
//! A namespace's usage is counted in [`USAGE_SHARDS`] rows, each write changing one (chosen by
//! its connection) by the difference it makes, last, so writes from many workers do not queue
//! on one row until their commits. The quota still holds across hosts: a write whose change
//! is small takes the quick way (its shard, then the sum) only while the namespace stays
//! within half its quota, where even one such write in flight on every other shard cannot
//! carry it over; otherwise it locks every shard of the namespace and checks the exact sum.

use super::PgStore;
use crate::StoreError;
use std::collections::HashSet;
use std::sync::Arc;
use tenure_capabilities::kv::MAX_LISTED_KEYS;
use tenure_capabilities::{KvBackend, KvError, KvFuture, KvNamespace, KvQuota};

/// Rows a namespace's usage is counted in.
const USAGE_SHARDS: i32 = 16;

/// What `tenure_kv_apply` raises when the quota refuses a write, with the totals it would
/// have made ("<keys> <bytes>").
const QUOTA_REFUSED: &str = "TNK01";

/// What it raises when its quick check found the namespace past half its quota: the call is
/// made again to check exactly.
const CHECK_EXACTLY: &str = "TNK02";

/// [`KvBackend`] over a [`PgStore`].
pub(crate) struct PgKv(pub Arc<PgStore>);

fn err(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}

type Entries = [(String, Option<Vec<u8>>)];

impl PgKv {
    /// The writes, if every expected value still holds; the key that changed otherwise.
    async fn apply(
        &self,
        ns: &KvNamespace,
        expected: &Entries,
        writes: &Entries,
        quota: KvQuota,
    ) -> Result<Option<String>, KvError> {
        // The last write of a key in the batch is the one that counts.
        let mut seen = HashSet::with_capacity(writes.len());
        let (keys, values): (Vec<&str>, Vec<Option<&[u8]>>) = writes
            .iter()
            .rev()
            .filter(|(key, _)| seen.insert(key.as_str()))
            .map(|(key, value)| (key.as_str(), value.as_deref()))
            .unzip();
        let (expected_keys, expected_values): (Vec<&str>, Vec<Option<&[u8]>>) =
            expected.iter().map(|(k, v)| (k.as_str(), v.as_deref())).unzip();
        let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let mut exact = false;
        loop {
            let row: Result<(String, Option<String>), sqlx::Error> = sqlx::query_as(
                "SELECT outcome, changed_key FROM tenure_kv_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&ns.tenant)
            .bind(&ns.plugin)
            .bind(&expected_keys)
            .bind(&expected_values)
            .bind(&keys)
            .bind(&values)
            .bind(limit(quota.keys))
            .bind(limit(quota.bytes))
            .bind(USAGE_SHARDS)
            .bind(exact)
            .fetch_one(self.0.pool())
            .await;
            return match row {
                Ok((outcome, changed)) if outcome == "changed" => Ok(Some(changed.unwrap_or_default())),
                Ok(_) => Ok(None),
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(CHECK_EXACTLY) && !exact => {
                    exact = true;
                    continue;
                }
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(QUOTA_REFUSED) => {
                    let totals: Vec<usize> = e
                        .message()
                        .split(' ')
                        .map(|n| n.parse::<i64>().unwrap_or(0).max(0) as usize)
                        .collect();
                    let (keys, bytes) = (totals.first().copied(), totals.get(1).copied());
                    quota.check(keys.unwrap_or(usize::MAX), bytes.unwrap_or(usize::MAX))?;
                    Err(KvError::TooLarge(format!(
                        "the store's quota refused the write (keys and bytes after it: {})",
                        e.message()
                    )))
                }
                Err(e) => Err(err(StoreError::from(e))),
            };
        }
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
            match self.apply(ns, &expected, &writes, quota).await? {
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
