//! Chaining the audit log. A write stores its entries with its change (`audit_pending`,
//! one statement, no lock shared between writes); the sealer moves the committed ones
//! into the chain in batches: under the lock of the one `audit_head` row it numbers them
//! in the order they were stored, hashes each over the one before, appends them to
//! `audit` and removes them from `audit_pending`, all in one transaction. Every host runs
//! a sealer; one at a time holds the head, so each batch extends the one chain, and a host's
//! sealer that finds the head taken leaves the round to the host holding it. Whatever
//! reads the chain (listings, verification, checkpoints) seals first, waiting for the head,
//! so it sees every entry committed before it asked.

use super::row::{RowExt, to_stored};
use super::write::AuditColumns;
use crate::audit::entry_hash_text;
use crate::{AuditKind, AuditRecord, StoreError, StoreResult};
use sqlx::{PgConnection, PgPool};

/// Entries chained per transaction.
const BATCH: i64 = 1_000;

/// How often each host's sealer looks for entries to chain.
pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The chain's head as the database has it.
#[derive(Debug, Clone)]
pub(crate) struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// Locks the chain's head (until the transaction ends) and reads it.
pub(crate) async fn lock_head(c: &mut PgConnection) -> StoreResult<ChainHead> {
    let (seq, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(c)
            .await?;
    Ok(ChainHead {
        seq,
        hash: hex::encode(hash),
    })
}

/// Chains every committed entry not yet chained; returns how many.
pub(crate) async fn seal(pool: &PgPool, key: &[u8; 32]) -> StoreResult<u64> {
    seal_in_turn(pool, key, Turn::Wait).await
}

/// What a sealer does when another holds the chain's head.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Turn {
    /// Waits for it (whoever reads the chain next needs every entry sealed).
    Wait,
    /// Leaves the round to it (a host's periodic sealing: the holder chains what is there).
    Skip,
}

async fn seal_in_turn(pool: &PgPool, key: &[u8; 32], turn: Turn) -> StoreResult<u64> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let mut head = match turn {
            Turn::Wait => lock_head(&mut tx).await?,
            Turn::Skip => match try_lock_head(&mut tx).await? {
                Some(head) => head,
                None => return Ok(total),
            },
        };
        let chained = seal_batch(&mut tx, key, &mut head).await?;
        tx.commit().await?;
        total += chained;
        if chained < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// The chain's head, locked, unless another transaction holds it.
async fn try_lock_head(c: &mut PgConnection) -> StoreResult<Option<ChainHead>> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE SKIP LOCKED")
            .fetch_optional(c)
            .await?;
    Ok(row.map(|(seq, hash)| ChainHead {
        seq,
        hash: hex::encode(hash),
    }))
}

/// Chains up to one batch of entries after `head` (whose row the caller has locked),
/// advancing it; returns how many.
pub(crate) async fn seal_batch(
    c: &mut PgConnection,
    key: &[u8; 32],
    head: &mut ChainHead,
) -> StoreResult<u64> {
    let rows = sqlx::query(
        "SELECT id, ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id, data
         FROM audit_pending ORDER BY id LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&mut *c)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let n = rows.len();
    let (mut ids, mut seqs, mut ts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut columns, mut data, mut hashes) = (
        AuditColumns::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in &rows {
        let record = AuditRecord {
            tenant: r.at(2)?,
            kind: r.parsed::<AuditKind>(3)?,
            actor: r.at(4)?,
            person_key: r.at(5)?,
            destination: r.at(6)?,
            event_id: r.at(7)?,
            job_id: r.at(8)?,
            data: serde_json::Value::Null,
        };
        let (id, ts_ms, details): (i64, i64, String) = (r.at(0)?, r.at(1)?, r.at(9)?);
        let seq = head.seq + 1;
        let hash = entry_hash_text(key, &head.hash, seq, ts_ms, &record, &details);
        hashes.push(hex::decode(&hash).map_err(|e| StoreError::Database(e.to_string()))?);
        *head = ChainHead { seq, hash };
        ids.push(id);
        seqs.push(seq);
        ts.push(ts_ms);
        columns.push(record);
        data.push(to_stored(&details));
    }
    let query = sqlx::query(
        "INSERT INTO audit (seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id, data,
             hash)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::bigint[], $9::bigint[], $10::bytea[], $11::bytea[])",
    )
    .bind(&seqs)
    .bind(&ts);
    columns
        .bind_to(query)
        .bind(&data)
        .bind(&hashes)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM audit_pending WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *c)
        .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq)
        .bind(hex::decode(&head.hash).map_err(|e| StoreError::Database(e.to_string()))?)
        .execute(&mut *c)
        .await?;
    Ok(n as u64)
}

/// Each host's sealer: chains what was committed, every [`EVERY`], until the store is dropped.
pub(crate) async fn run(pool: PgPool, key: [u8; 32]) {
    loop {
        if let Err(e) = seal_in_turn(&pool, &key, Turn::Skip).await {
            tracing::warn!(error = %e, "cannot chain the audit entries now; trying again");
        }
        tokio::time::sleep(EVERY).await;
    }
}
