//! Operations (intent before the call, result after) and links.

use super::row::RowExt;
use super::write::PgWrite;
use super::{PgStore, check_lease};
use crate::*;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

/// A person's link to one destination, by the whole primary key.
pub(super) const LINK_OF: &str =
    "SELECT anchor, managed_groups FROM links WHERE tenant = $1 AND destination = $2 AND person_key = $3";

macro_rules! op_columns {
    () => {
        "id, job_id, destination, op_key, kind, target, status, detail, anchor, started_ms, finished_ms"
    };
}
pub(super) use op_columns;

pub(super) fn op_row(r: &PgRow) -> StoreResult<OperationRow> {
    Ok(OperationRow {
        id: r.at(0)?,
        job_id: r.at(1)?,
        destination: r.at(2)?,
        op_key: r.at(3)?,
        kind: r.parsed(4)?,
        target: r.at(5)?,
        status: r.parsed(6)?,
        detail: r.at(7)?,
        anchor: r.at(8)?,
        started_ms: r.at(9)?,
        finished_ms: r.at(10)?,
    })
}

/// Records operations' results in order, with their links and audit entries. Of several
/// results that change one link (a create, then its group memberships), the last is written:
/// the others would be overwritten in the same transaction.
pub(super) async fn record_op_results(w: &mut PgWrite, results: Vec<FinishedOp>) -> StoreResult<()> {
    let last_of_link = |i: usize, l: &LinkUpdate| {
        !results[i + 1..].iter().any(|later| {
            later.link.as_ref().is_some_and(|m| {
                (&m.tenant, &m.destination, &m.person_key) == (&l.tenant, &l.destination, &l.person_key)
            })
        })
    };
    let written: Vec<bool> = results
        .iter()
        .enumerate()
        .map(|(i, done)| done.link.as_ref().is_some_and(|l| last_of_link(i, l)))
        .collect();
    for (done, write) in results.into_iter().zip(written) {
        let r = &done.result;
        sqlx::query(
            "UPDATE operations SET status = $2, detail = $3, anchor = coalesce($4, anchor), finished_ms = $5,
                 failures = failures + CASE WHEN $2 = 'failed' THEN 1 ELSE 0 END WHERE id = $1",
        )
        .bind(done.op_id)
        .bind(r.status.as_str())
        .bind(&r.detail)
        .bind(&r.anchor)
        .bind(r.now_ms)
        .execute(w.conn())
        .await?;
        if let Some(l) = done.link.as_ref().filter(|_| write) {
            write_link(w.conn(), l, r.now_ms).await?;
        }
        w.audit_all(done.audit);
    }
    Ok(())
}

async fn write_link(c: &mut PgConnection, l: &LinkUpdate, now_ms: i64) -> StoreResult<()> {
    match &l.link {
        Some(link) => {
            sqlx::query(
                "INSERT INTO links (tenant, destination, person_key, anchor, managed_groups, updated_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, destination, person_key) DO UPDATE SET anchor = excluded.anchor,
                     managed_groups = excluded.managed_groups, updated_ms = excluded.updated_ms",
            )
            .bind(&l.tenant)
            .bind(&l.destination)
            .bind(&l.person_key)
            .bind(&link.anchor)
            .bind(serde_json::to_string(&link.managed_groups)?)
            .bind(now_ms)
            .execute(c)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM links WHERE tenant = $1 AND destination = $2 AND person_key = $3")
                .bind(&l.tenant)
                .bind(&l.destination)
                .bind(&l.person_key)
                .execute(c)
                .await?;
        }
    }
    Ok(())
}

fn link_of(anchor: String, groups: &str) -> Link {
    Link {
        anchor,
        managed_groups: serde_json::from_str(groups).unwrap_or_default(),
    }
}

/// Records operations as started (again, on a later attempt), in one statement; their ids in
/// the order given.
async fn insert_operations(w: &mut PgWrite, ops: &[NewOperation]) -> StoreResult<Vec<i64>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    // One row per key (a key given twice is one operation, as when each was upserted in turn).
    let unique: Vec<&NewOperation> = ops
        .iter()
        .enumerate()
        .filter(|(i, op)| {
            !ops[i + 1..]
                .iter()
                .any(|later| later.job_id == op.job_id && later.op_key == op.op_key)
        })
        .map(|(_, op)| op)
        .collect();
    let column = |f: fn(&NewOperation) -> Option<String>| unique.iter().map(|o| f(o)).collect::<Vec<_>>();
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO operations (job_id, tenant, destination, op_key, kind, target, destructive, status,
             started_ms)
         SELECT o.job_id, o.tenant, o.destination, o.op_key, o.kind, o.target, o.destructive, 'started',
             o.now_ms
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[],
             $8::bigint[]) AS o(job_id, tenant, destination, op_key, kind, target, destructive, now_ms)
         ON CONFLICT (job_id, op_key) DO UPDATE SET status = 'started',
             started_ms = excluded.started_ms, target = excluded.target, finished_ms = NULL
         RETURNING job_id, op_key, id",
    )
    .bind(unique.iter().map(|o| o.job_id).collect::<Vec<_>>())
    .bind(column(|o| Some(o.tenant.clone())))
    .bind(column(|o| Some(o.destination.clone())))
    .bind(column(|o| Some(o.op_key.clone())))
    .bind(column(|o| Some(o.kind.as_str().to_string())))
    .bind(column(|o| o.target.clone()))
    .bind(unique.iter().map(|o| o.destructive).collect::<Vec<_>>())
    .bind(unique.iter().map(|o| o.now_ms).collect::<Vec<_>>())
    .fetch_all(w.conn())
    .await?;
    // RETURNING keeps no order: each operation finds its row by its key.
    ops.iter()
        .map(|op| {
            rows.iter()
                .find(|(job, key, _)| *job == op.job_id && *key == op.op_key)
                .map(|(_, _, id)| *id)
                .ok_or_else(|| StoreError::Database(format!("operation {} was not recorded", op.op_key)))
        })
        .collect()
}

#[async_trait::async_trait]
impl OperationStore for PgStore {
    async fn ops_started(
        &self,
        lease: &JobLease,
        previous: Vec<FinishedOp>,
        ops: Vec<NewOperation>,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Vec<i64>> {
        let mut w = self.begin().await?;
        check_lease(w.conn(), lease).await?;
        record_op_results(&mut w, previous).await?;
        let ids = insert_operations(&mut w, &ops).await?;
        w.audit_all(audit);
        w.commit().await?;
        Ok(ids)
    }

    async fn ops_finished(&self, lease: &JobLease, done: Vec<FinishedOp>) -> StoreResult<()> {
        let mut w = self.begin().await?;
        check_lease(w.conn(), lease).await?;
        record_op_results(&mut w, done).await?;
        w.commit().await
    }

    async fn put_link(&self, lease: &JobLease, link: LinkUpdate, audit: Vec<AuditRecord>) -> StoreResult<()> {
        let mut w = self.begin().await?;
        check_lease(w.conn(), lease).await?;
        let now = w.now_ms;
        write_link(w.conn(), &link, now).await?;
        w.audit_all(audit);
        w.commit().await
    }

    async fn operations(&self, job_id: i64) -> StoreResult<Vec<OperationRow>> {
        sqlx::query(concat!(
            "SELECT ",
            op_columns!(),
            " FROM operations WHERE job_id = $1 ORDER BY id"
        ))
        .bind(job_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(op_row)
        .collect()
    }

    async fn link(&self, tenant: &str, destination: &str, person_key: &str) -> StoreResult<Option<Link>> {
        let row: Option<(String, String)> = sqlx::query_as(LINK_OF)
            .bind(tenant)
            .bind(destination)
            .bind(person_key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|(anchor, groups)| link_of(anchor, &groups)))
    }

    async fn links(&self, tenant: &str, destination: &str) -> StoreResult<Vec<(String, Link)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT person_key, anchor, managed_groups FROM links
             WHERE tenant = $1 AND destination = $2 ORDER BY person_key",
        )
        .bind(tenant)
        .bind(destination)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(person, anchor, groups)| (person, link_of(anchor, &groups)))
            .collect())
    }

    async fn anchor_owner(
        &self,
        tenant: &str,
        destination: &str,
        anchor: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT person_key FROM links WHERE tenant = $1 AND destination = $2 AND anchor = $3 LIMIT 1",
        )
        .bind(tenant)
        .bind(destination)
        .bind(anchor)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn managed_count(&self, tenant: &str, destination: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM links WHERE tenant = $1 AND destination = $2")
                .bind(tenant)
                .bind(destination)
                .fetch_one(self.pool())
                .await?,
        )
    }
}
