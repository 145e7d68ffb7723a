//! The audit log, KPIs and reports.

use super::SqliteStore;
use super::stored_json;
use super::writer::stored_hash;
use crate::audit::{AuditAnchor, GENESIS, Verifier, VerifyReport};
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::*;
use rusqlite::{OptionalExtension, Row, params};

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(audit_row_and_details(r)?.0)
}

/// An entry, and its details exactly as the hash covers them.
fn audit_row_and_details(r: &Row<'_>) -> rusqlite::Result<(AuditEntry, String)> {
    let data = stored_json(r.get_ref(9)?);
    let entry = AuditEntry {
        seq: r.get(0)?,
        ts_ms: r.get(1)?,
        record: AuditRecord {
            tenant: r.get(2)?,
            kind: r.get(3)?,
            actor: r.get(4)?,
            person_key: r.get(5)?,
            destination: r.get(6)?,
            event_id: r.get(7)?,
            job_id: r.get(8)?,
            data: serde_json::from_str(&data).unwrap_or_else(|_| serde_json::Value::String(data.clone())),
        },
        prev_hash: match r.get_ref(10)? {
            rusqlite::types::ValueRef::Null if r.get::<_, i64>(0)? == 1 => GENESIS.to_string(),
            previous => stored_hash(previous),
        },
        hash: stored_hash(r.get_ref(11)?),
    };
    Ok((entry, data))
}

/// An entry's previous hash: the hash of the entry before it (not stored twice).
macro_rules! previous_hash {
    () => {
        "(SELECT p.hash FROM audit p WHERE p.seq = audit.seq - 1)"
    };
}
const PREVIOUS_HASH: &str = previous_hash!();

/// An entry's columns.
const AUDIT_COLUMNS: &str = concat!(
    "seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id, data, ",
    previous_hash!(),
    ", hash"
);

fn report_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReportRow> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let text: String = r.get(i)?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    };
    Ok(ReportRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        kind: r.get(2)?,
        summary: json(3)?,
        body: json(4)?,
        created_ms: r.get(5)?,
    })
}

#[async_trait::async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        self.writer.write(move |ctx| ctx.audit_all(records)).await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.read_blocking(move |c| {
            let limit = filter.limit.unwrap_or(100_000).min(1_000_000) as i64;
            Ok(c.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR person_key = ?2) AND (?3 IS NULL OR \
                     destination = ?3)
                   AND (?4 IS NULL OR ts_ms >= ?4) AND (?5 IS NULL OR ts_ms < ?5)
                   AND (?6 IS NULL OR substr(kind, 1, length(?6)) = ?6) AND seq > coalesce(?7, 0)
                 ORDER BY seq LIMIT ?8"
            ))?
            .query_map(
                params![
                    filter.tenant,
                    filter.person_key,
                    filter.destination,
                    filter.since_ms,
                    filter.until_ms,
                    filter.kind_prefix,
                    filter.after_seq,
                    limit
                ],
                audit_row,
            )?
            .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn verify_audit_through(&self, anchors: Vec<AuditAnchor>) -> StoreResult<VerifyReport> {
        let key = self.audit_key;
        let head_file = super::head::read(&self.head_file, &key);
        let recorded_head = head_file.head();
        let tampered = match &head_file {
            super::head::HeadFile::Tampered(why) => Some(why.clone()),
            _ => None,
        };
        let missing = head_file == super::head::HeadFile::Missing;
        let report = self
            .read_blocking(move |c| {
                let mut verifier = Verifier::new(&key).with_anchors(anchors);
                // The previous hash is not stored: the verifier holds the one before in order,
                // so the per-entry lookup the listings do is left out here.
                let columns = AUDIT_COLUMNS.replace(PREVIOUS_HASH, "NULL");
                let mut stmt = c.prepare(&format!("SELECT {columns} FROM audit ORDER BY seq"))?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let (mut entry, data) = audit_row_and_details(row)?;
                    entry.prev_hash = verifier.previous_hash().to_string();
                    verifier.push_stored(&entry, &data);
                }
                Ok(verifier.finish(recorded_head))
            })
            .await?;
        let mut report = report;
        report.head_file_missing = missing && report.entries > 0;
        if report.problem.is_none()
            && let Some(why) = tampered
        {
            report.problem = Some(crate::audit::VerifyProblem {
                seq: report.head_seq,
                reason: format!("the audit head file: {why}"),
            });
        }
        Ok(report)
    }

    async fn audit_checkpoint(
        &self,
        signer: std::sync::Arc<CheckpointSigner>,
        actor: &str,
    ) -> StoreResult<Checkpoint> {
        let actor = actor.to_string();
        // Taken inside a write, so the head it signs is answered only once durable.
        self.writer
            .write(move |ctx| {
                let head = ctx.chain_head();
                let checkpoint = signer.sign(head.seq, &head.hash, ctx.now_ms);
                let record = AuditRecord::new("*", AuditKind::AuditCheckpointed, actor)
                    .data(serde_json::json!({ "seq": checkpoint.seq, "public_key": checkpoint.public_key }));
                ctx.audit(record)?;
                Ok(checkpoint)
            })
            .await
    }

    async fn kpis(&self, tenant: &str) -> StoreResult<Kpis> {
        let tenant = tenant.to_string();
        self.read_blocking(move |c| {
            let count = |sql: &str| -> StoreResult<i64> { Ok(c.query_row(sql, [&tenant], |r| r.get(0))?) };
            let events = count("SELECT count(*) FROM events WHERE tenant = ?1")?;
            let completed_jobs = count(
                "SELECT count(*) FROM jobs WHERE tenant = ?1 AND state = \
                'completed'",
            )?;
            let dead_jobs = count("SELECT count(*) FROM jobs WHERE tenant = ?1 AND state = 'dead'")?;
            let failures = count("SELECT coalesce(sum(failures), 0) FROM operations WHERE tenant = ?1")?;
            let mut stmt = c.prepare(
                "SELECT e.received_ms, j.finished_ms, e.start_date, json_extract(l.doc, '$.time_zone')
                 FROM jobs j JOIN events e ON e.id = j.event_id
                 LEFT JOIN lifecycles l ON l.tenant = j.tenant AND l.person_key = j.person_key
                 WHERE j.tenant = ?1 AND j.state = 'completed' AND e.kind IN ('joiner', 'rehire')
                 ORDER BY j.id DESC LIMIT 100000",
            )?;
            let mut hires = crate::kpis::HireStats::default();
            let mut rows = stmt.query([&tenant])?;
            while let Some(r) = rows.next()? {
                let (start_date, zone): (Option<String>, Option<String>) = (r.get(2)?, r.get(3)?);
                hires.add(crate::kpis::Hire {
                    received_ms: r.get(0)?,
                    finished_ms: r.get(1)?,
                    start_date: start_date.as_deref(),
                    time_zone: zone.as_deref(),
                });
            }
            Ok(hires.kpis(events, completed_jobs, dead_jobs, failures))
        })
        .await
    }

    async fn kpi_series(
        &self,
        tenant: &str,
        since_ms: i64,
        until_ms: i64,
        bucket_ms: i64,
    ) -> StoreResult<KpiSeries> {
        let tenant = tenant.to_string();
        self.read_blocking(move |c| super::kpis::kpi_series(c, &tenant, since_ms, until_ms, bucket_ms))
            .await
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
        let tenant = tenant.to_string();
        let (summary, body) = (summary.to_string(), body.to_string());
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO reports (tenant, kind, summary, body, created_ms) VALUES (?1, ?2, ?3, \
                            ?4, ?5)",
                    )?
                    .execute(params![tenant, kind, summary, body, now_ms])?;
                let id = ctx.conn.last_insert_rowid();
                ctx.conn
                    .prepare_cached(
                        "DELETE FROM reports WHERE tenant = ?1 AND kind = ?2 AND id <= (SELECT id FROM \
                            reports WHERE tenant = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                    )?
                    .execute(params![tenant, kind, keep.max(1) as i64])?;
                Ok(id)
            })
            .await
    }

    async fn update_report(
        &self,
        tenant: &str,
        id: i64,
        summary: serde_json::Value,
        body: serde_json::Value,
    ) -> StoreResult<bool> {
        let tenant = tenant.to_string();
        let (summary, body) = (summary.to_string(), body.to_string());
        self.writer
            .write(move |ctx| {
                let changed = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE reports SET summary = ?3, body = ?4 WHERE tenant = ?1 AND id = ?2",
                    )?
                    .execute(params![tenant, id, summary, body])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn report(&self, tenant: &str, id: i64) -> StoreResult<Option<ReportRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, tenant, kind, summary, body, created_ms FROM reports WHERE tenant = ?1 AND id = \
                    ?2",
            )?
            .query_row(params![tenant, id], report_row)
            .optional()?)
        })
    }

    async fn reports(&self, tenant: &str, kind: ReportKind, limit: usize) -> StoreResult<Vec<ReportRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, tenant, kind, summary, 'null', created_ms FROM reports
                 WHERE tenant = ?1 AND kind = ?2 ORDER BY id DESC LIMIT ?3",
            )?
            .query_map(params![tenant, kind, limit as i64], report_row)?
            .collect::<Result<_, _>>()?)
        })
    }
}
