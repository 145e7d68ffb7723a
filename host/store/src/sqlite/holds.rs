//! Plans held for approval, for [`GuardStore`]'s methods on SQLite.

use super::check_lease;
use super::writer::WriteCtx;
use crate::*;
use rusqlite::{Connection, OptionalExtension, Row, params};

const HOLD_COLUMNS: &str = "id, tenant, destination, person_key, job_id, operations, state, decided_by, \
    decided_ms, note, created_ms";

fn hold_row(r: &Row<'_>) -> rusqlite::Result<HoldRow> {
    let operations: String = r.get(5)?;
    Ok(HoldRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        destination: r.get(2)?,
        person_key: r.get(3)?,
        job_id: r.get(4)?,
        operations: serde_json::from_str(&operations).unwrap_or_default(),
        state: r.get(6)?,
        decided_by: r.get(7)?,
        decided_ms: r.get(8)?,
        note: r.get(9)?,
        created_ms: r.get(10)?,
    })
}

fn hold_by_id(c: &Connection, tenant: &str, id: i64) -> StoreResult<Option<HoldRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE tenant = ?1 AND id = ?2"
    ))?
    .query_row(params![tenant, id], hold_row)
    .optional()?)
}

pub(super) fn hold_plan(
    ctx: &mut WriteCtx<'_>,
    lease: &JobLease,
    hold: &NewHold,
    audit: Vec<AuditRecord>,
) -> StoreResult<HoldRow> {
    check_lease(ctx.conn, lease)?;
    ctx.conn
        .prepare_cached(
            "UPDATE holds SET state = 'superseded' WHERE tenant = ?1 AND job_id = ?2 AND destination = ?3 \
                AND state IN ('pending', 'approved')",
        )?
        .execute(params![hold.tenant, hold.job_id, hold.destination])?;
    let id: i64 = ctx
        .conn
        .prepare_cached(
            "INSERT INTO holds (tenant, destination, person_key, job_id, operations, state, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) RETURNING id",
        )?
        .query_row(
            params![
                hold.tenant,
                hold.destination,
                hold.person_key,
                hold.job_id,
                serde_json::to_string(&hold.operations)?,
                ctx.now_ms
            ],
            |r| r.get(0),
        )?;
    ctx.audit_all(audit)?;
    hold_by_id(ctx.conn, &hold.tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("hold {id}")))
}

pub(super) fn hold_of(
    c: &Connection,
    tenant: &str,
    job_id: i64,
    destination: &str,
) -> StoreResult<Option<HoldRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE tenant = ?1 AND job_id = ?2 AND destination = ?3 \
            ORDER BY id DESC LIMIT 1"
    ))?
    .query_row(params![tenant, job_id, destination], hold_row)
    .optional()?)
}

pub(super) fn holds(c: &Connection, f: &HoldFilter) -> StoreResult<Vec<HoldRow>> {
    let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
    Ok(c.prepare_cached(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds WHERE tenant = ?1 AND (?2 IS NULL OR state = ?2)
            AND (?3 IS NULL OR destination = ?3) AND (?4 IS NULL OR person_key = ?4) AND id > ?5
         ORDER BY id LIMIT ?6"
    ))?
    .query_map(
        params![
            f.tenant,
            f.state,
            f.destination,
            f.person_key,
            f.after_id.unwrap_or(0),
            limit
        ],
        hold_row,
    )?
    .collect::<Result<_, _>>()?)
}

pub(super) fn decide_holds(
    ctx: &mut WriteCtx<'_>,
    tenant: &str,
    ids: &[i64],
    decision: HoldDecision,
    actor: &str,
    note: Option<&str>,
) -> StoreResult<Vec<HoldRow>> {
    let (state, kind) = match decision {
        HoldDecision::Approve => (HoldState::Approved, AuditKind::PlanApproved),
        HoldDecision::Reject => (HoldState::Rejected, AuditKind::PlanRejected),
    };
    let mut decided = Vec::new();
    for &id in ids {
        let changed = ctx
            .conn
            .prepare_cached(
                "UPDATE holds SET state = ?3, decided_by = ?4, decided_ms = ?5, note = ?6
                 WHERE tenant = ?1 AND id = ?2 AND state = 'pending'",
            )?
            .execute(params![tenant, id, state, actor, ctx.now_ms, note])?;
        if changed == 0 {
            continue;
        }
        let Some(row) = hold_by_id(ctx.conn, tenant, id)? else {
            continue;
        };
        ctx.conn
            .prepare_cached(
                "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = ?2 WHERE id = ?1 \
                    AND state = 'held'",
            )?
            .execute(params![row.job_id, ctx.now_ms])?;
        ctx.audit(
            AuditRecord::new(tenant, kind, actor)
                .person(&row.person_key)
                .destination(&row.destination)
                .job(row.job_id)
                .data(serde_json::json!({ "hold": id, "note": note })),
        )?;
        decided.push(row);
    }
    Ok(decided)
}

pub(super) fn hold_applied(
    ctx: &mut WriteCtx<'_>,
    lease: &JobLease,
    id: i64,
    audit: Vec<AuditRecord>,
) -> StoreResult<()> {
    check_lease(ctx.conn, lease)?;
    ctx.conn
        .prepare_cached("UPDATE holds SET state = 'applied' WHERE id = ?1 AND state = 'approved'")?
        .execute(params![id])?;
    ctx.audit_all(audit)?;
    Ok(())
}
