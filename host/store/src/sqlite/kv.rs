//! Plugin key-value data in the same database: reads on a reader connection,
//! writes group-committed by the writer, quotas kept in `kv_usage`.

use super::SqliteStore;
use crate::StoreError;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use tenure_capabilities::kv::MAX_LISTED_KEYS;
use tenure_capabilities::{KvBackend, KvError, KvFuture, KvNamespace, KvQuota};

/// [`KvBackend`] over a [`SqliteStore`].
pub(crate) struct SqliteKv(pub Arc<SqliteStore>);

fn err(e: impl std::fmt::Display) -> KvError {
    KvError::Other(e.to_string())
}

impl KvBackend for SqliteKv {
    fn get<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.0
                .read(|c| {
                    Ok(c.prepare_cached(
                        "SELECT value FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key = ?3",
                    )?
                    .query_row(params![ns.tenant, ns.plugin, key], |r| r.get(0))
                    .optional()?)
                })
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
        let ns = ns.clone();
        Box::pin(async move {
            let changed = self
                .0
                .writer
                // Durable with the host's record of the call that follows; anything
                // a plugin sends out first waits for it (`settle`).
                .write_visible(move |ctx| {
                    let c = ctx.conn;
                    // Checked in the write transaction, before anything is written.
                    for (key, value) in &expected {
                        let now: Option<Vec<u8>> = c
                            .prepare_cached(
                                "SELECT value FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key = ?3",
                            )?
                            .query_row(params![ns.tenant, ns.plugin, key], |r| r.get(0))
                            .optional()?;
                        if now != *value {
                            return Ok(Some(key.clone()));
                        }
                    }
                    let (mut keys, mut bytes): (i64, i64) = c
                        .prepare_cached("SELECT keys, bytes FROM kv_usage WHERE tenant = ?1 AND plugin = ?2")?
                        .query_row(params![ns.tenant, ns.plugin], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .unwrap_or((0, 0));
                    for (key, value) in &writes {
                        let old: Option<i64> = c
                            .prepare_cached(
                                "SELECT length(value) FROM kv WHERE tenant = ?1 AND plugin = ?2 \
                                AND key = ?3",
                            )?
                            .query_row(params![ns.tenant, ns.plugin, key], |r| r.get(0))
                            .optional()?;
                        if let Some(old) = old {
                            keys -= 1;
                            bytes -= old + key.len() as i64;
                        }
                        match value {
                            Some(v) => {
                                keys += 1;
                                bytes += (key.len() + v.len()) as i64;
                                c.prepare_cached(
                                    "INSERT INTO kv (tenant, plugin, key, value) VALUES (?1, ?2, ?3, ?4)
                                     ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value",
                                )?
                                .execute(params![ns.tenant, ns.plugin, key, v])?;
                            }
                            None => {
                                c.prepare_cached(
                                    "DELETE FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key = \
                                    ?3",
                                )?
                                .execute(params![ns.tenant, ns.plugin, key])?;
                            }
                        }
                    }
                    // A refusal rolls the whole batch back.
                    quota
                        .check(keys.max(0) as usize, bytes.max(0) as usize)
                        .map_err(|e| StoreError::Conflict(e.to_string()))?;
                    c.prepare_cached(
                        "INSERT INTO kv_usage (tenant, plugin, keys, bytes) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant, plugin) DO UPDATE SET keys = excluded.keys, bytes = \
                             excluded.bytes",
                    )?
                    .execute(params![ns.tenant, ns.plugin, keys, bytes])?;
                    Ok(None)
                })
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

    fn settle(&self) -> KvFuture<'_, ()> {
        Box::pin(async move { self.0.settle_early_answers().await.map_err(err) })
    }

    fn list_keys<'a>(&'a self, ns: &'a KvNamespace, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.0
                .read(|c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT key FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key >= ?3
                         AND substr(key, 1, length(?3)) = ?3 ORDER BY key LIMIT ?4",
                    )?;
                    let keys = stmt
                        .query_map(
                            params![ns.tenant, ns.plugin, prefix, MAX_LISTED_KEYS as i64],
                            |r| r.get(0),
                        )?
                        .collect::<Result<Vec<String>, _>>()?;
                    Ok(keys)
                })
                .map_err(err)
        })
    }
}
