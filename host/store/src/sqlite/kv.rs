//! Plugin key-value data in the same database: reads on a reader connection,
//! writes group-committed by the writer, quotas kept in `kv_usage`.

use super::SqliteStore;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use tenure_capabilities::kv::{MAX_BYTES_PER_STORE, MAX_KEYS_PER_STORE};
use tenure_capabilities::{KvBackend, KvError, KvFuture, KvNamespace};

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
                    Ok(c.prepare_cached("SELECT value FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key = ?3")?
                        .query_row(params![ns.tenant, ns.plugin, key], |r| r.get(0))
                        .optional()?)
                })
                .map_err(err)
        })
    }

    fn set<'a>(&'a self, ns: &'a KvNamespace, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        let (ns, key, value) = (ns.clone(), key.to_string(), value.to_vec());
        Box::pin(async move {
            let outcome = self
                .0
                .writer
                .write(move |ctx| {
                    let c = ctx.conn;
                    let old: Option<i64> = c
                        .prepare_cached("SELECT length(value) FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key = ?3")?
                        .query_row(params![ns.tenant, ns.plugin, key], |r| r.get(0))
                        .optional()?;
                    let (keys, bytes): (i64, i64) = c
                        .prepare_cached("SELECT keys, bytes FROM kv_usage WHERE tenant = ?1 AND plugin = ?2")?
                        .query_row(params![ns.tenant, ns.plugin], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .unwrap_or((0, 0));
                    let new_keys = keys + i64::from(old.is_none());
                    let new_bytes =
                        bytes - old.map(|o| o + key.len() as i64).unwrap_or(0) + (key.len() + value.len()) as i64;
                    if new_keys > MAX_KEYS_PER_STORE as i64 {
                        return Ok(Err(KvError::TooLarge(format!("the store is full: {MAX_KEYS_PER_STORE} keys"))));
                    }
                    if new_bytes > MAX_BYTES_PER_STORE as i64 {
                        return Ok(Err(KvError::TooLarge(format!("the store is full: {MAX_BYTES_PER_STORE} bytes"))));
                    }
                    c.prepare_cached(
                        "INSERT INTO kv (tenant, plugin, key, value) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![ns.tenant, ns.plugin, key, value])?;
                    c.prepare_cached(
                        "INSERT INTO kv_usage (tenant, plugin, keys, bytes) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant, plugin) DO UPDATE SET keys = excluded.keys, bytes = excluded.bytes",
                    )?
                    .execute(params![ns.tenant, ns.plugin, new_keys, new_bytes])?;
                    Ok(Ok(()))
                })
                .await
                .map_err(err)?;
            outcome
        })
    }

    fn remove<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, ()> {
        let (ns, key) = (ns.clone(), key.to_string());
        Box::pin(async move {
            self.0
                .writer
                .write(move |ctx| {
                    let removed: Option<i64> = ctx
                        .conn
                        .prepare_cached(
                            "DELETE FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key = ?3 RETURNING length(value)",
                        )?
                        .query_row(params![ns.tenant, ns.plugin, key], |r| r.get(0))
                        .optional()?;
                    if let Some(len) = removed {
                        ctx.conn
                            .prepare_cached(
                                "UPDATE kv_usage SET keys = keys - 1, bytes = bytes - ?3 WHERE tenant = ?1 AND plugin = ?2",
                            )?
                            .execute(params![ns.tenant, ns.plugin, len + key.len() as i64])?;
                    }
                    Ok(())
                })
                .await
                .map_err(err)
        })
    }

    fn list_keys<'a>(&'a self, ns: &'a KvNamespace, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.0
                .read(|c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT key FROM kv WHERE tenant = ?1 AND plugin = ?2 AND key >= ?3
                         AND substr(key, 1, length(?3)) = ?3 ORDER BY key LIMIT 100000",
                    )?;
                    let keys = stmt
                        .query_map(params![ns.tenant, ns.plugin, prefix], |r| r.get(0))?
                        .collect::<Result<Vec<String>, _>>()?;
                    Ok(keys)
                })
                .map_err(err)
        })
    }
}
