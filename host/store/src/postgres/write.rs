//! One write: a transaction, and the audit entries it makes, chained when it commits.
//!
//! The chain is one for the deployment. Its head is a row (`audit_head`) that the commit
//! locks just before it appends, so entries of concurrent hosts are chained in the order
//! their transactions commit, each hash over the one before, and the lock is held only
//! for the appends and the commit itself.

use crate::audit::{entry_hash_text, redact};
use crate::{AuditRecord, Change, StoreError, StoreResult};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::collections::BTreeSet;

/// The chain's head as the database has it.
#[derive(Debug, Clone)]
pub(crate) struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// An audit record redacted and encoded, waiting for the commit.
pub(crate) struct PendingAudit {
    record: AuditRecord,
    /// The details as JSON text (what the hash covers).
    data: String,
}

impl From<AuditRecord> for PendingAudit {
    fn from(mut record: AuditRecord) -> Self {
        let data = redact(std::mem::take(&mut record.data)).to_string();
        PendingAudit { record, data }
    }
}

impl PendingAudit {
    /// A record whose details were encoded (and redacted) already.
    pub fn encoded(record: AuditRecord, data: String) -> Self {
        PendingAudit { record, data }
    }
}

/// A write under way.
pub(crate) struct PgWrite {
    tx: Transaction<'static, Postgres>,
    /// The write's time (what its rows are stamped with).
    pub now_ms: i64,
    key: [u8; 32],
    audit: Vec<PendingAudit>,
    /// The head, once this write has locked it.
    head: Option<ChainHead>,
    /// What the other hosts are told when this write commits.
    notes: BTreeSet<String>,
}

impl PgWrite {
    pub async fn begin(pool: &PgPool, key: [u8; 32]) -> StoreResult<PgWrite> {
        Ok(PgWrite {
            tx: pool.begin().await?,
            now_ms: now_ms(),
            key,
            audit: Vec::new(),
            head: None,
            notes: BTreeSet::new(),
        })
    }

    /// The transaction's connection.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Adds an audit entry, chained when the write commits.
    pub fn audit(&mut self, record: impl Into<PendingAudit>) {
        self.audit.push(record.into());
    }

    pub fn audit_all<R: Into<PendingAudit>>(&mut self, records: Vec<R>) {
        self.audit.extend(records.into_iter().map(Into::into));
    }

    /// Tells every host of `change` once this write commits (a `NOTIFY`, delivered only if
    /// the transaction commits).
    pub fn note(&mut self, change: Change) {
        self.notes.insert(change.to_payload());
    }

    /// Locks the chain's head and reads it (appends of other writes wait until this commits).
    pub async fn chain_head(&mut self) -> StoreResult<ChainHead> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let (seq, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *self.tx)
                .await?;
        let head = ChainHead {
            seq,
            hash: hex::encode(hash),
        };
        self.head = Some(head.clone());
        Ok(head)
    }

    /// Chains the audit entries and commits.
    pub async fn commit(mut self) -> StoreResult<()> {
        if !self.audit.is_empty() {
            let mut head = self.chain_head().await?;
            // Stamped when chained, so the times follow the chain's order.
            let ts_ms = now_ms();
            for PendingAudit { record, data } in std::mem::take(&mut self.audit) {
                let seq = head.seq + 1;
                let hash = entry_hash_text(&self.key, &head.hash, seq, ts_ms, &record, &data);
                let stored_hash = hex::decode(&hash).map_err(|e| StoreError::Database(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO audit (seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, \
                         job_id, data, hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(seq)
                .bind(ts_ms)
                .bind(&record.tenant)
                .bind(record.kind.as_str())
                .bind(&record.actor)
                .bind(&record.person_key)
                .bind(&record.destination)
                .bind(record.event_id)
                .bind(record.job_id)
                .bind(super::row::to_stored(&data))
                .bind(stored_hash)
                .execute(&mut *self.tx)
                .await?;
                head = crate::postgres::write::ChainHead { seq, hash };
            }
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(head.seq)
                .bind(hex::decode(&head.hash).map_err(|e| StoreError::Database(e.to_string()))?)
                .execute(&mut *self.tx)
                .await?;
        }
        for payload in std::mem::take(&mut self.notes) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::CHANGES_CHANNEL)
                .bind(payload)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
