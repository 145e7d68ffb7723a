//! The mass-change guard, matching conflicts and plans held for approval.

use super::row::RowExt;
use super::{LockPurpose, PgStore, check_lease, lock_for};
use crate::*;
use sqlx::postgres::PgRow;

macro_rules! conflict_columns {
    () => {
        "id, tenant, destination, person_key, job_id, kind, candidates, decision, decided_by, created_ms"
    };
}

fn conflict_row(r: &PgRow) -> StoreResult<ConflictRow> {
    Ok(ConflictRow {
        id: r.at(0)?,
        tenant: r.at(1)?,
        destination: r.at(2)?,
        person_key: r.at(3)?,
        job_id: r.at(4)?,
        kind: r.parsed(5)?,
        candidates: r.json(6)?.unwrap_or_default(),
        decision: r.json(7)?,
        decided_by: r.at(8)?,
        created_ms: r.at(9)?,
    })
}

fn guard_row(r: &PgRow) -> StoreResult<Guard> {
    Ok(Guard {
        tenant: r.at(0)?,
        destination: r.at(1)?,
        tripped: r.at(2)?,
        budget: r.at(3)?,
        reason: r.at(4)?,
        tripped_ms: r.at(5)?,
    })
}

#[async_trait::async_trait]
impl GuardStore for PgStore {
    async fn guard_admit(&self, req: GuardRequest) -> StoreResult<GuardDecision> {
        let (t, d) = (req.tenant.as_str(), req.destination.as_str());
        let mut w = self.begin().await?;
        // One admission at a time per destination, across hosts: the window is counted and
        // added to under the lock.
        lock_for(w.conn(), LockPurpose::Guard, &format!("{t}\n{d}")).await?;
        let row: Option<(bool, i64, Option<String>)> = sqlx::query_as(
            "SELECT tripped, budget, reason FROM guards WHERE tenant = $1 AND destination = $2",
        )
        .bind(t)
        .bind(d)
        .fetch_optional(w.conn())
        .await?;
        let (tripped, budget, reason) = row.unwrap_or((false, 0, None));
        if tripped {
            return Ok(GuardDecision::Held {
                why: reason.unwrap_or_default(),
                newly_tripped: false,
            });
        }
        let admitted_before = sqlx::query(
            "SELECT 1 FROM guard_admissions WHERE tenant = $1 AND destination = $2 AND job_id = $3",
        )
        .bind(t)
        .bind(d)
        .bind(req.job_id)
        .fetch_optional(w.conn())
        .await?
        .is_some();
        let window: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM guard_admissions WHERE tenant = $1 AND destination = $2 AND at_ms >= $3",
        )
        .bind(t)
        .bind(d)
        .bind(req.now_ms - req.window_ms)
        .fetch_one(w.conn())
        .await?;
        if admitted_before {
            return Ok(GuardDecision::Admitted {
                recent: window,
                by_approval: false,
            });
        }
        let recent = window + 1;
        let managed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM links WHERE tenant = $1 AND destination = $2")
                .bind(t)
                .bind(d)
                .fetch_one(w.conn())
                .await?;
        let over_count = req.max_accounts.is_some_and(|n| recent > n);
        let over_share = req.max_percent.is_some_and(|pct| {
            managed > 0 && managed >= req.min_population && recent as f64 * 100.0 / managed as f64 > pct
        });
        let by_approval = if !over_count && !over_share {
            Some(false)
        } else if budget > 0 {
            sqlx::query("UPDATE guards SET budget = budget - 1 WHERE tenant = $1 AND destination = $2")
                .bind(t)
                .bind(d)
                .execute(w.conn())
                .await?;
            Some(true)
        } else {
            None
        };
        if let Some(by_approval) = by_approval {
            sqlx::query(
                "INSERT INTO guard_admissions (tenant, destination, job_id, at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(t)
            .bind(d)
            .bind(req.job_id)
            .bind(req.now_ms)
            .execute(w.conn())
            .await?;
            w.commit().await?;
            return Ok(GuardDecision::Admitted { recent, by_approval });
        }
        let why = format!(
            "{recent} people would have accounts disabled, deleted, moved or stripped of groups within {} s \
             (limits: {:?} people, {:?}% of {managed} managed accounts)",
            req.window_ms / 1000,
            req.max_accounts,
            req.max_percent
        );
        sqlx::query(
            "INSERT INTO guards (tenant, destination, tripped, budget, reason, tripped_ms)
             VALUES ($1, $2, true, 0, $3, $4)
             ON CONFLICT (tenant, destination) DO UPDATE SET tripped = true, budget = 0,
                 reason = excluded.reason, tripped_ms = excluded.tripped_ms",
        )
        .bind(t)
        .bind(d)
        .bind(&why)
        .bind(req.now_ms)
        .execute(w.conn())
        .await?;
        let mut alert = req.alert.clone();
        alert.data = serde_json::json!({ "why": why, "recent": recent, "managed": managed });
        w.audit(alert);
        w.commit().await?;
        Ok(GuardDecision::Held {
            why,
            newly_tripped: true,
        })
    }

    async fn approve_guard(&self, tenant: &str, destination: &str, actor: &str) -> StoreResult<i64> {
        let mut w = self.begin().await?;
        lock_for(w.conn(), LockPurpose::Guard, &format!("{tenant}\n{destination}")).await?;
        let tripped: bool =
            sqlx::query_scalar("SELECT tripped FROM guards WHERE tenant = $1 AND destination = $2")
                .bind(tenant)
                .bind(destination)
                .fetch_optional(w.conn())
                .await?
                .unwrap_or(false);
        if !tripped {
            return Err(StoreError::Conflict(format!(
                "the guard of destination {destination} is not tripped"
            )));
        }
        let now = w.now_ms;
        let released = sqlx::query(
            "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = $3
             WHERE tenant = $1 AND state = 'held' AND hold_reason = $2",
        )
        .bind(tenant)
        .bind(format!("guard:{destination}"))
        .bind(now)
        .execute(w.conn())
        .await?
        .rows_affected() as i64;
        sqlx::query("UPDATE guards SET tripped = false, budget = $3 WHERE tenant = $1 AND destination = $2")
            .bind(tenant)
            .bind(destination)
            .bind(released)
            .execute(w.conn())
            .await?;
        w.note(Change::Jobs);
        w.audit(
            AuditRecord::new(tenant, AuditKind::GuardApproved, actor)
                .destination(destination)
                .data(serde_json::json!({ "released_jobs": released })),
        );
        w.commit().await?;
        Ok(released)
    }

    async fn guards(&self, tenant: &str) -> StoreResult<Vec<Guard>> {
        sqlx::query(
            "SELECT tenant, destination, tripped, budget, reason, tripped_ms FROM guards WHERE tenant = $1
             ORDER BY destination",
        )
        .bind(tenant)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(guard_row)
        .collect()
    }

    async fn open_conflict(
        &self,
        lease: &JobLease,
        conflict: NewConflict,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<i64> {
        let mut w = self.begin().await?;
        check_lease(w.conn(), lease).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO conflicts (tenant, destination, person_key, job_id, kind, candidates, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&conflict.tenant)
        .bind(&conflict.destination)
        .bind(&conflict.person_key)
        .bind(conflict.job_id)
        .bind(conflict.kind.as_str())
        .bind(serde_json::to_string(&conflict.candidates)?)
        .bind(conflict.now_ms)
        .fetch_one(w.conn())
        .await?;
        w.audit_all(audit);
        w.commit().await?;
        Ok(id)
    }

    async fn conflict_decision(
        &self,
        tenant: &str,
        job_id: i64,
        destination: &str,
    ) -> StoreResult<Option<ConflictRow>> {
        sqlx::query(concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM conflicts WHERE tenant = $1 AND job_id = $2 AND destination = $3
                 AND decision IS NOT NULL ORDER BY id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(job_id)
        .bind(destination)
        .fetch_optional(self.pool())
        .await?
        .map(|r| conflict_row(&r))
        .transpose()
    }

    async fn conflicts(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ConflictRow>> {
        sqlx::query(concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM conflicts WHERE tenant = $1 AND (NOT $2 OR decision IS NULL) ORDER BY id"
        ))
        .bind(tenant)
        .bind(open_only)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(conflict_row)
        .collect()
    }

    async fn resolve_conflict(
        &self,
        tenant: &str,
        id: i64,
        decision: ConflictDecision,
        actor: &str,
    ) -> StoreResult<ConflictRow> {
        let mut w = self.begin().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            conflict_columns!(),
            " FROM conflicts WHERE tenant = $1 AND id = $2 FOR UPDATE"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(w.conn())
        .await?
        .map(|r| conflict_row(&r))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("conflict {id}")))?;
        if row.decision.is_some() {
            return Err(StoreError::Conflict(format!("conflict {id} is already decided")));
        }
        if let ConflictDecision::Merge { anchor } = &decision
            && !row.candidates.contains(anchor)
        {
            return Err(StoreError::Conflict(format!(
                "anchor {anchor:?} is not one of the candidates {:?}",
                row.candidates
            )));
        }
        sqlx::query("UPDATE conflicts SET decision = $2, decided_by = $3 WHERE id = $1")
            .bind(id)
            .bind(serde_json::to_string(&decision)?)
            .bind(actor)
            .execute(w.conn())
            .await?;
        let now = w.now_ms;
        sqlx::query(
            "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = $2 WHERE
            id = $1 AND state = 'held'",
        )
        .bind(row.job_id)
        .bind(now)
        .execute(w.conn())
        .await?;
        w.note(Change::Jobs);
        w.audit(
            AuditRecord::new(tenant, AuditKind::ConflictResolved, actor)
                .person(&row.person_key)
                .destination(&row.destination)
                .job(row.job_id)
                .data(serde_json::json!({ "conflict": id, "decision": decision })),
        );
        w.commit().await?;
        Ok(ConflictRow {
            decision: Some(decision),
            decided_by: Some(actor.to_string()),
            ..row
        })
    }

    async fn hold_plan(
        &self,
        lease: &JobLease,
        hold: NewHold,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<HoldRow> {
        let mut w = self.begin().await?;
        let row = super::holds::hold_plan(&mut w, lease, &hold, audit).await?;
        w.commit().await?;
        Ok(row)
    }

    async fn hold_of(&self, tenant: &str, job_id: i64, destination: &str) -> StoreResult<Option<HoldRow>> {
        super::holds::hold_of(self.pool(), tenant, job_id, destination).await
    }

    async fn holds(&self, filter: HoldFilter) -> StoreResult<Vec<HoldRow>> {
        super::holds::holds(self.pool(), &filter).await
    }

    async fn decide_holds(
        &self,
        tenant: &str,
        ids: Vec<i64>,
        decision: HoldDecision,
        actor: &str,
        note: Option<String>,
    ) -> StoreResult<Vec<HoldRow>> {
        let mut w = self.begin().await?;
        let rows = super::holds::decide_holds(&mut w, tenant, &ids, decision, actor, note.as_deref()).await?;
        w.commit().await?;
        Ok(rows)
    }

    async fn hold_applied(&self, lease: &JobLease, id: i64, audit: Vec<AuditRecord>) -> StoreResult<()> {
        let mut w = self.begin().await?;
        check_lease(w.conn(), lease).await?;
        sqlx::query("UPDATE holds SET state = 'applied' WHERE id = $1 AND state = 'approved'")
            .bind(id)
            .execute(w.conn())
            .await?;
        w.audit_all(audit);
        w.commit().await
    }
}
