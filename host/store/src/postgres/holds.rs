//! Plans held for approval, for [`GuardStore`]'s methods on PostgreSQL.

use super::check_lease;
use super::row::RowExt;
use super::write::PgWrite;
use crate::*;
use sqlx::PgPool;
use sqlx::postgres::PgRow;

macro_rules! hold_columns {
    () => {
        "id, tenant, destination, person_key, job_id, operations, state, decided_by, decided_ms,
            note, created_ms"
    };
}

fn hold_row(r: &PgRow) -> StoreResult<HoldRow> {
    Ok(HoldRow {
        id: r.at(0)?,
        tenant: r.at(1)?,
        destination: r.at(2)?,
        person_key: r.at(3)?,
        job_id: r.at(4)?,
        operations: r.json(5)?.unwrap_or_default(),
        state: r.parsed(6)?,
        decided_by: r.at(7)?,
        decided_ms: r.at(8)?,
        note: r.at(9)?,
        created_ms: r.at(10)?,
    })
}

pub(super) async fn hold_plan(
    w: &mut PgWrite,
    lease: &JobLease,
    hold: &NewHold,
    audit: Vec<AuditRecord>,
) -> StoreResult<HoldRow> {
    check_lease(w.conn(), lease).await?;
    sqlx::query(
        "UPDATE holds SET state = 'superseded' WHERE tenant = $1 AND job_id = $2 AND destination = $3
           AND state IN ('pending', 'approved')",
    )
    .bind(&hold.tenant)
    .bind(hold.job_id)
    .bind(&hold.destination)
    .execute(w.conn())
    .await?;
    let now = w.now_ms;
    let row = sqlx::query(concat!(
        "INSERT INTO holds (tenant, destination, person_key, job_id, operations, state, created_ms)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING ",
        hold_columns!()
    ))
    .bind(&hold.tenant)
    .bind(&hold.destination)
    .bind(&hold.person_key)
    .bind(hold.job_id)
    .bind(serde_json::to_string(&hold.operations)?)
    .bind(now)
    .fetch_one(w.conn())
    .await?;
    w.audit_all(audit);
    hold_row(&row)
}

pub(super) async fn hold_of(
    pool: &PgPool,
    tenant: &str,
    job_id: i64,
    destination: &str,
) -> StoreResult<Option<HoldRow>> {
    sqlx::query(concat!(
        "SELECT ",
        hold_columns!(),
        " FROM holds WHERE tenant = $1 AND job_id = $2 AND destination = $3 ORDER BY id DESC LIMIT 1"
    ))
    .bind(tenant)
    .bind(job_id)
    .bind(destination)
    .fetch_optional(pool)
    .await?
    .map(|r| hold_row(&r))
    .transpose()
}

pub(super) async fn holds(pool: &PgPool, f: &HoldFilter) -> StoreResult<Vec<HoldRow>> {
    let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
    sqlx::query(concat!(
        "SELECT ",
        hold_columns!(),
        " FROM holds WHERE tenant = $1 AND ($2::text IS NULL OR state = $2)
             AND ($3::text IS NULL OR destination = $3) AND ($4::text IS NULL OR person_key = $4) AND id > $5
          ORDER BY id LIMIT $6"
    ))
    .bind(&f.tenant)
    .bind(f.state.map(|s| s.as_str()))
    .bind(&f.destination)
    .bind(&f.person_key)
    .bind(f.after_id.unwrap_or(0))
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(hold_row)
    .collect()
}

pub(super) async fn decide_holds(
    w: &mut PgWrite,
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
    let now = w.now_ms;
    for &id in ids {
        let row = sqlx::query(concat!(
            "UPDATE holds SET state = $3, decided_by = $4, decided_ms = $5, note = $6
             WHERE tenant = $1 AND id = $2 AND state = 'pending' RETURNING ",
            hold_columns!()
        ))
        .bind(tenant)
        .bind(id)
        .bind(state.as_str())
        .bind(actor)
        .bind(now)
        .bind(note)
        .fetch_optional(w.conn())
        .await?;
        let Some(row) = row else { continue };
        let row = hold_row(&row)?;
        sqlx::query(
            "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = $2 WHERE id = $1
                AND state = 'held'",
        )
        .bind(row.job_id)
        .bind(now)
        .execute(w.conn())
        .await?;
        w.note(Change::Jobs);
        w.audit(
            AuditRecord::new(tenant, kind, actor)
                .person(&row.person_key)
                .destination(&row.destination)
                .job(row.job_id)
                .data(serde_json::json!({ "hold": id, "note": note })),
        );
        decided.push(row);
    }
    Ok(decided)
}
