//! Sealed secrets and the plugins' key-value data.

use super::{SqliteStore, kv::SqliteKv};
use crate::*;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

#[async_trait::async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(&self, name: &str, value: &str) -> StoreResult<()> {
        let (nonce, sealed) = self.master.seal(name, value.as_bytes())?;
        let name = name.to_string();
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO secrets (name, nonce, ciphertext, updated_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = \
                             excluded.ciphertext,
                             updated_ms = excluded.updated_ms",
                    )?
                    .execute(params![name, nonce, sealed, ctx.now_ms])?;
                Ok(())
            })
            .await
    }

    async fn secret(&self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT nonce, ciphertext FROM secrets WHERE name = ?1")?
                    .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            )
        })?;
        row.map(|(nonce, sealed)| {
            let plain = self.master.open(name, &nonce, &sealed)?;
            String::from_utf8(plain).map_err(|_| StoreError::Crypto(format!("secret {name} is not UTF-8")))
        })
        .transpose()
    }

    async fn take_secret(&self, name: &str, audit: Vec<AuditRecord>) -> StoreResult<Option<String>> {
        let key = name.to_string();
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .writer
            .write(move |ctx| {
                let row = ctx
                    .conn
                    .prepare_cached("DELETE FROM secrets WHERE name = ?1 RETURNING nonce, ciphertext")?
                    .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if row.is_some() {
                    ctx.audit_all(audit)?;
                }
                Ok(row)
            })
            .await?;
        row.map(|(nonce, sealed)| {
            let plain = self.master.open(name, &nonce, &sealed)?;
            String::from_utf8(plain).map_err(|_| StoreError::Crypto(format!("secret {name} is not UTF-8")))
        })
        .transpose()
    }

    fn kv(&self) -> Arc<dyn tenure_capabilities::KvBackend> {
        match self.me.upgrade() {
            Some(me) => Arc::new(SqliteKv(me)),
            None => Arc::new(tenure_capabilities::MemoryKv::default()),
        }
    }
}
