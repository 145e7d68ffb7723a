//! Operations (intent before the call, result after) and links.

use super::writer::{PreparedAudit, WriteCtx, prepare};
use super::{SqliteStore, check_lease};
use crate::*;
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(super) fn op_row(r: &Row<'_>) -> rusqlite::Result<OperationRow> {
    Ok(OperationRow {
        id: r.get(0)?,
        job_id: r.get(1)?,
        destination: r.get(2)?,
        op_key: r.get(3)?,
        kind: r.get(4)?,
        target: r.get(5)?,
        status: r.get(6)?,
        detail: r.get(7)?,
        anchor: r.get(8)?,
        started_ms: r.get(9)?,
        finished_ms: r.get(10)?,
    })
}

pub(super) const OP_COLUMNS: &str =
    "id, job_id, destination, op_key, kind, target, status, detail, anchor, started_ms, finished_ms";

/// An operation's result with its audit records prepared off the writer thread.
pub(super) struct PreparedResult {
    done: FinishedOp,
    audit: Vec<PreparedAudit>,
}

impl From<FinishedOp> for PreparedResult {
    fn from(mut done: FinishedOp) -> Self {
        let audit = prepare(std::mem::take(&mut done.audit));
        PreparedResult { done, audit }
    }
}

/// Operations' results with their audit records prepared (on the caller's thread).
pub(super) fn prepare_results(done: Vec<FinishedOp>) -> Vec<PreparedResult> {
    done.into_iter().map(PreparedResult::from).collect()
}

/// Records operations' results in order.
pub(super) fn record_op_results(ctx: &mut WriteCtx<'_>, results: Vec<PreparedResult>) -> StoreResult<()> {
    results.into_iter().try_for_each(|r| record_op_result(ctx, r))
}

fn record_op_result(ctx: &mut WriteCtx<'_>, result: PreparedResult) -> StoreResult<()> {
    let PreparedResult { done, audit } = result;
    let r = &done.result;
    ctx.conn
        .prepare_cached(
            "UPDATE operations SET status = ?2, detail = ?3, anchor = coalesce(?4, anchor), finished_ms = ?5,
             failures = failures + (?2 = 'failed') WHERE id = ?1",
        )?
        .execute(params![done.op_id, r.status, r.detail, r.anchor, r.now_ms])?;
    if let Some(l) = &done.link {
        write_link(ctx.conn, l, r.now_ms)?;
    }
    ctx.audit_all(audit)
}

fn write_link(c: &Connection, l: &LinkUpdate, now_ms: i64) -> StoreResult<()> {
    match &l.link {
        Some(link) => {
            c.prepare_cached(
                "INSERT INTO links (tenant, destination, person_key, anchor, managed_groups, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, destination, person_key) DO UPDATE SET anchor = excluded.anchor,
                     managed_groups = excluded.managed_groups, updated_ms = excluded.updated_ms",
            )?
            .execute(params![
                l.tenant,
                l.destination,
                l.person_key,
                link.anchor,
                serde_json::to_string(&link.managed_groups)?,
                now_ms
            ])?;
        }
        None => {
            c.prepare_cached("DELETE FROM links WHERE tenant = ?1 AND destination = ?2 AND person_key = ?3")?
                .execute(params![l.tenant, l.destination, l.person_key])?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl OperationStore for SqliteStore {
    async fn ops_started(
        &self,
        lease: &JobLease,
        previous: Vec<FinishedOp>,
        ops: Vec<NewOperation>,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Vec<i64>> {
        let lease = lease.clone();
        let previous = prepare_results(previous);
        let audit = prepare(audit);
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                record_op_results(ctx, previous)?;
                let mut insert = ctx.conn.prepare_cached(
                    "INSERT INTO operations (job_id, tenant, destination, op_key, kind, target, destructive, \
                        status, started_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'started', ?8)
                     ON CONFLICT (job_id, op_key) DO UPDATE SET status = 'started', started_ms = \
                         excluded.started_ms,
                         target = excluded.target, finished_ms = NULL
                     RETURNING id",
                )?;
                let ids = ops
                    .iter()
                    .map(|op| {
                        insert.query_row(
                            params![
                                op.job_id,
                                op.tenant,
                                op.destination,
                                op.op_key,
                                op.kind,
                                op.target,
                                op.destructive,
                                op.now_ms
                            ],
                            |r| r.get(0),
                        )
                    })
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                drop(insert);
                ctx.audit_all(audit)?;
                Ok(ids)
            })
            .await
    }

    async fn ops_finished(&self, lease: &JobLease, done: Vec<FinishedOp>) -> StoreResult<()> {
        let lease = lease.clone();
        let done = prepare_results(done);
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                record_op_results(ctx, done)
            })
            .await
    }

    async fn put_link(&self, lease: &JobLease, link: LinkUpdate, audit: Vec<AuditRecord>) -> StoreResult<()> {
        let lease = lease.clone();
        let audit = prepare(audit);
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                write_link(ctx.conn, &link, ctx.now_ms)?;
                ctx.audit_all(audit)
            })
            .await
    }

    async fn operations(&self, job_id: i64) -> StoreResult<Vec<OperationRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations WHERE job_id = ?1 ORDER BY id"
            ))?
            .query_map([job_id], op_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn link(&self, tenant: &str, destination: &str, person_key: &str) -> StoreResult<Option<Link>> {
        self.read(|c| {
            let row: Option<(String, String)> = c
                .prepare_cached(
                    "SELECT anchor, managed_groups FROM links WHERE tenant = ?1 AND destination = ?2 AND \
                        person_key = ?3",
                )?
                .query_row(params![tenant, destination, person_key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok(row.map(|(anchor, groups)| Link {
                anchor,
                managed_groups: serde_json::from_str(&groups).unwrap_or_default(),
            }))
        })
    }

    async fn links(&self, tenant: &str, destination: &str) -> StoreResult<Vec<(String, Link)>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT person_key, anchor, managed_groups FROM links
                 WHERE tenant = ?1 AND destination = ?2 ORDER BY person_key",
            )?
            .query_map(params![tenant, destination], |r| {
                let groups: String = r.get(2)?;
                Ok((
                    r.get(0)?,
                    Link {
                        anchor: r.get(1)?,
                        managed_groups: serde_json::from_str(&groups).unwrap_or_default(),
                    },
                ))
            })?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn anchor_owner(
        &self,
        tenant: &str,
        destination: &str,
        anchor: &str,
    ) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT person_key FROM links WHERE tenant = ?1 AND destination = ?2 AND anchor = ?3",
            )?
            .query_row(params![tenant, destination, anchor], |r| r.get(0))
            .optional()?)
        })
    }

    async fn managed_count(&self, tenant: &str, destination: &str) -> StoreResult<i64> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT count(*) FROM links WHERE tenant = ?1 AND destination = ?2")?
                    .query_row(params![tenant, destination], |r| r.get(0))?,
            )
        })
    }
}
