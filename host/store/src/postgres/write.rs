//! One write: a transaction, and the audit entries it makes, stored with it (one statement
//! for all of them and the write's notices) and chained in batches afterwards by [`super::seal`].

use crate::audit::redact;
use crate::{AuditRecord, Change, StoreResult};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::collections::BTreeSet;

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
    audit: Vec<PendingAudit>,
    /// What the other hosts are told when this write commits, and on which channel.
    notes: BTreeSet<String>,
    channel: String,
}

impl PgWrite {
    pub async fn begin(pool: &PgPool, channel: &str) -> StoreResult<PgWrite> {
        Ok(PgWrite {
            tx: pool.begin().await?,
            now_ms: now_ms(),
            audit: Vec::new(),
            notes: BTreeSet::new(),
            channel: channel.to_string(),
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

    /// Stores the audit entries (to be chained) and the notices in one statement, and commits.
    pub async fn commit(mut self) -> StoreResult<()> {
        let audit = std::mem::take(&mut self.audit);
        let notes: Vec<String> = std::mem::take(&mut self.notes).into_iter().collect();
        if !audit.is_empty() || !notes.is_empty() {
            let (now_ms, channel) = (self.now_ms, self.channel.clone());
            store_pending(&mut self.tx, now_ms, audit, &channel, notes).await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// Stores audit entries to be chained and queues the notices (sent at commit), in one
/// statement. (A data-modifying `WITH` runs once whatever the query reads of it.)
async fn store_pending(
    c: &mut PgConnection,
    ts_ms: i64,
    audit: Vec<PendingAudit>,
    channel: &str,
    notes: Vec<String>,
) -> StoreResult<()> {
    let mut columns = AuditColumns::with_capacity(audit.len());
    let mut data = Vec::with_capacity(audit.len());
    for PendingAudit { record, data: d } in audit {
        columns.push(record);
        data.push(d);
    }
    let query = sqlx::query(
        "WITH stored AS (
             INSERT INTO audit_pending (ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id,
                 data)
             SELECT $1, e.tenant, e.kind, e.actor, e.person_key, e.destination, e.event_id, e.job_id, e.data
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                 $8::bigint[], $9::text[]) WITH ORDINALITY AS e(tenant, kind, actor, person_key, destination,
                 event_id, job_id, data, n)
             ORDER BY e.n
         )
         SELECT pg_notify($10, note) FROM unnest($11::text[]) note",
    )
    .bind(ts_ms);
    columns
        .bind_to(query)
        .bind(data)
        .bind(channel)
        .bind(notes)
        .execute(c)
        .await?;
    Ok(())
}

/// Audit records split into one array per column (their details apart), for an `UNNEST`
/// insert: of a write's entries, and of the sealer's chained batch.
pub(crate) struct AuditColumns {
    pub tenant: Vec<String>,
    pub kind: Vec<&'static str>,
    pub actor: Vec<String>,
    pub person: Vec<Option<String>>,
    pub destination: Vec<Option<String>>,
    pub event: Vec<Option<i64>>,
    pub job: Vec<Option<i64>>,
}

impl AuditColumns {
    pub fn with_capacity(n: usize) -> Self {
        AuditColumns {
            tenant: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            person: Vec::with_capacity(n),
            destination: Vec::with_capacity(n),
            event: Vec::with_capacity(n),
            job: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, record: AuditRecord) {
        self.tenant.push(record.tenant);
        self.kind.push(record.kind.as_str());
        self.actor.push(record.actor);
        self.person.push(record.person_key);
        self.destination.push(record.destination);
        self.event.push(record.event_id);
        self.job.push(record.job_id);
    }

    /// Binds the seven columns, in this order, as the query's next parameters.
    pub fn bind_to(self, query: PgQuery<'_>) -> PgQuery<'_> {
        query
            .bind(self.tenant)
            .bind(self.kind)
            .bind(self.actor)
            .bind(self.person)
            .bind(self.destination)
            .bind(self.event)
            .bind(self.job)
    }
}

/// A statement with its parameters bound so far.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
