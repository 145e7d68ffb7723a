//! Sealed secrets and the plugins' key-value data.

use super::{PgStore, kv::PgKv};
use crate::*;
use std::sync::Arc;

impl PgStore {
    fn unseal(&self, name: &str, nonce: &[u8], sealed: &[u8]) -> StoreResult<String> {
        let plain = self.master.open(name, nonce, sealed)?;
        String::from_utf8(plain).map_err(|_| StoreError::Crypto(format!("secret {name} is not UTF-8")))
    }
}

#[async_trait::async_trait]
impl SecretStore for PgStore {
    async fn put_secret(&self, name: &str, value: &str) -> StoreResult<()> {
        let (nonce, sealed) = self.master.seal(name, value.as_bytes())?;
        sqlx::query(
            "INSERT INTO secrets (name, nonce, ciphertext, updated_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                 updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(nonce)
        .bind(sealed)
        .bind(super::write::now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn secret(&self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT nonce, ciphertext FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        row.map(|(nonce, sealed)| self.unseal(name, &nonce, &sealed))
            .transpose()
    }

    async fn take_secret(&self, name: &str, audit: Vec<AuditRecord>) -> StoreResult<Option<String>> {
        let mut w = self.begin().await?;
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("DELETE FROM secrets WHERE name = $1 RETURNING nonce, ciphertext")
                .bind(name)
                .fetch_optional(w.conn())
                .await?;
        if row.is_some() {
            w.audit_all(audit);
        }
        w.commit().await?;
        row.map(|(nonce, sealed)| self.unseal(name, &nonce, &sealed))
            .transpose()
    }

    fn kv(&self) -> Arc<dyn tenure_capabilities::KvBackend> {
        match self.me.upgrade() {
            Some(me) => Arc::new(PgKv(me)),
            None => Arc::new(tenure_capabilities::MemoryKv::default()),
        }
    }
}
