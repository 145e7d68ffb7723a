//! Operations (intent before the call, result after) and links.

use super::row::RowExt;
use super::write::PgWrite;
use super::{PgStore, check_lease};
use crate::*;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

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

/// Records operations' results in order, with their links and audit entries.
pub(super) async fn record_op_results(w: &mut PgWrite, results: Vec<FinishedOp>) -> StoreResult<()> {
    for done in results {
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
        if let Some(l) = &done.link {
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
        let mut ids = Vec::with_capacity(ops.len());
        for op in &ops {
            ids.push(
                sqlx::query_scalar(
                    "INSERT INTO operations (job_id, tenant, destination, op_key, kind, target, destructive,
                         status, started_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'started', $8)
                     ON CONFLICT (job_id, op_key) DO UPDATE SET status = 'started',
                         started_ms = excluded.started_ms, target = excluded.target, finished_ms = NULL
                     RETURNING id",
                )
                .bind(op.job_id)
                .bind(&op.tenant)
                .bind(&op.destination)
                .bind(&op.op_key)
                .bind(op.kind.as_str())
                .bind(&op.target)
                .bind(op.destructive)
                .bind(op.now_ms)
                .fetch_one(w.conn())
                .await?,
            );
        }
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
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT anchor, managed_groups FROM links WHERE tenant = $1 AND destination = $2 AND
                person_key = $3",
        )
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
