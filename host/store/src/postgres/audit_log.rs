//! The audit log, KPIs and reports.

use super::PgStore;
use super::row::{RowExt, stored_json};
use crate::audit::{AuditAnchor, GENESIS, Verifier, VerifyReport};
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::*;
use sqlx::postgres::PgRow;

/// An entry's columns, its previous hash (the hash of the entry before it) included.
macro_rules! audit_columns {
    () => {
        "seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id, data, \
         (SELECT p.hash FROM audit p WHERE p.seq = audit.seq - 1), hash"
    };
}

/// Entries verified per read.
const VERIFY_PAGE: i64 = 10_000;

/// An entry, and its details exactly as the hash covers them.
fn audit_row_and_details(r: &PgRow) -> StoreResult<(AuditEntry, String)> {
    let data = stored_json(&r.at::<Vec<u8>>(9)?);
    let seq: i64 = r.at(0)?;
    let previous: Option<Vec<u8>> = r.at(10)?;
    let entry = AuditEntry {
        seq,
        ts_ms: r.at(1)?,
        record: AuditRecord {
            tenant: r.at(2)?,
            kind: r.parsed(3)?,
            actor: r.at(4)?,
            person_key: r.at(5)?,
            destination: r.at(6)?,
            event_id: r.at(7)?,
            job_id: r.at(8)?,
            data: serde_json::from_str(&data).unwrap_or_else(|_| serde_json::Value::String(data.clone())),
        },
        prev_hash: match previous {
            None if seq == 1 => GENESIS.to_string(),
            previous => hex::encode(previous.unwrap_or_default()),
        },
        hash: hex::encode(r.at::<Vec<u8>>(11)?),
    };
    Ok((entry, data))
}

fn report_row(r: &PgRow) -> StoreResult<ReportRow> {
    Ok(ReportRow {
        id: r.at(0)?,
        tenant: r.at(1)?,
        kind: r.parsed(2)?,
        summary: r.json(3)?.unwrap_or(serde_json::Value::Null),
        body: r.json(4)?.unwrap_or(serde_json::Value::Null),
        created_ms: r.at(5)?,
    })
}

/// The time zone a lifecycle document names, if any.
pub(super) fn time_zone_of(doc: Option<&str>) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(doc?).ok()?;
    doc.get("time_zone")?.as_str().map(String::from)
}

#[async_trait::async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        let mut w = self.begin().await?;
        w.audit_all(records);
        w.commit().await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.seal().await?;
        let limit = filter.limit.unwrap_or(100_000).min(1_000_000) as i64;
        sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit
              WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR person_key = $2)
                AND ($3::text IS NULL OR destination = $3)
                AND ($4::bigint IS NULL OR ts_ms >= $4) AND ($5::bigint IS NULL OR ts_ms < $5)
                AND ($6::text IS NULL OR starts_with(kind, $6)) AND seq > coalesce($7, 0)
              ORDER BY seq LIMIT $8"
        ))
        .bind(&filter.tenant)
        .bind(&filter.person_key)
        .bind(&filter.destination)
        .bind(filter.since_ms)
        .bind(filter.until_ms)
        .bind(&filter.kind_prefix)
        .bind(filter.after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| Ok(audit_row_and_details(r)?.0))
        .collect()
    }

    async fn verify_audit_through(&self, anchors: Vec<AuditAnchor>) -> StoreResult<VerifyReport> {
        self.seal().await?;
        // The head the appends keep: the log is verified up to it, a page at a time (entries
        // appended meanwhile are after it).
        let (head_seq, head_hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(self.pool())
                .await?;
        let mut verifier = Verifier::new(&self.audit_key).with_anchors(anchors);
        let mut after = 0_i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id,
                    data, NULL::bytea,
                     hash
                 FROM audit WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            )
            .bind(after)
            .bind(head_seq)
            .bind(VERIFY_PAGE)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.at(0)?;
            for r in &rows {
                let (mut entry, data) = audit_row_and_details(r)?;
                entry.prev_hash = verifier.previous_hash().to_string();
                verifier.push_stored(&entry, &data);
            }
        }
        Ok(verifier.finish(Some((head_seq, hex::encode(head_hash))).filter(|(seq, _)| *seq > 0)))
    }

    async fn audit_checkpoint(
        &self,
        signer: std::sync::Arc<CheckpointSigner>,
        actor: &str,
    ) -> StoreResult<Checkpoint> {
        let mut w = self.begin().await?;
        // The head is locked until this write commits; every entry committed so far is chained
        // first, so the checkpoint covers them, and the checkpoint's own entry follows.
        let mut head = super::seal::lock_head(w.conn()).await?;
        while super::seal::seal_batch(w.conn(), &self.audit_key, &mut head).await? > 0 {}
        let checkpoint = signer.sign(head.seq, &head.hash, w.now_ms);
        w.audit(
            AuditRecord::new("*", AuditKind::AuditCheckpointed, actor)
                .data(serde_json::json!({ "seq": checkpoint.seq, "public_key": checkpoint.public_key })),
        );
        w.commit().await?;
        Ok(checkpoint)
    }

    async fn kpis(&self, tenant: &str) -> StoreResult<Kpis> {
        let counts: (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events WHERE tenant = $1),
                    (SELECT count(*) FROM jobs WHERE tenant = $1 AND state = 'completed'),
                    (SELECT count(*) FROM jobs WHERE tenant = $1 AND state = 'dead'),
                    (SELECT coalesce(sum(failures), 0)::bigint FROM operations WHERE tenant = $1)",
        )
        .bind(tenant)
        .fetch_one(self.pool())
        .await?;
        let (events, completed_jobs, dead_jobs, failures) = counts;
        let rows: Vec<(i64, i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT e.received_ms, j.finished_ms, e.start_date,
                    CASE WHEN e.start_date IS NOT NULL THEN l.doc END
             FROM jobs j JOIN events e ON e.id = j.event_id
             LEFT JOIN lifecycles l ON l.tenant = j.tenant AND l.person_key = j.person_key
             WHERE j.tenant = $1 AND j.state = 'completed' AND e.kind IN ('joiner', 'rehire')
             ORDER BY j.id DESC LIMIT 100000",
        )
        .bind(tenant)
        .fetch_all(self.pool())
        .await?;
        let mut hires = crate::kpis::HireStats::default();
        for (received_ms, finished_ms, start_date, doc) in &rows {
            let zone = time_zone_of(doc.as_deref());
            hires.add(crate::kpis::Hire {
                received_ms: *received_ms,
                finished_ms: *finished_ms,
                start_date: start_date.as_deref(),
                time_zone: zone.as_deref(),
            });
        }
        Ok(hires.kpis(events, completed_jobs, dead_jobs, failures))
    }

    async fn kpi_series(
        &self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        bucket_ms: i64,
    ) -> StoreResult<KpiSeries> {
        super::kpis::kpi_series(self.pool(), tenant, since_ms, until_ms, bucket_ms).await
    }

    async fn put_report(
        &self,
        tenant: &str,
        kind: ReportKind,
        summary: serde_json::Value,
        body: serde_json::Value,
        now_ms: i64,
        keep: usize,
    ) -> StoreResult<i64> {
        let mut w = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reports (tenant, kind, summary, body, created_ms) VALUES ($1, $2, $3, $4,
                $5) RETURNING id",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(summary.to_string())
        .bind(body.to_string())
        .bind(now_ms)
        .fetch_one(w.conn())
        .await?;
        sqlx::query(
            "DELETE FROM reports WHERE tenant = $1 AND kind = $2 AND id <= (SELECT id FROM reports
                 WHERE tenant = $1 AND kind = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(keep.max(1) as i64)
        .execute(w.conn())
        .await?;
        w.commit().await?;
        Ok(id)
    }

    async fn update_report(
        &self,
        tenant: &str,
        id: i64,
        summary: serde_json::Value,
        body: serde_json::Value,
    ) -> StoreResult<bool> {
        Ok(
            sqlx::query("UPDATE reports SET summary = $3, body = $4 WHERE tenant = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .bind(summary.to_string())
                .bind(body.to_string())
                .execute(self.pool())
                .await?
                .rows_affected()
                == 1,
        )
    }

    async fn report(&self, tenant: &str, id: i64) -> StoreResult<Option<ReportRow>> {
        sqlx::query(
            "SELECT id, tenant, kind, summary, body, created_ms FROM reports WHERE tenant = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(|r| report_row(&r))
        .transpose()
    }

    async fn reports(&self, tenant: &str, kind: ReportKind, limit: usize) -> StoreResult<Vec<ReportRow>> {
        sqlx::query(
            "SELECT id, tenant, kind, summary, 'null', created_ms FROM reports
             WHERE tenant = $1 AND kind = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(report_row)
        .collect()
    }
}
