//! The mass-change guard, matching conflicts and plans held for approval.

use super::{SqliteStore, check_lease};
use crate::*;
use rusqlite::{OptionalExtension, Row, params};

fn conflict_row(r: &Row<'_>) -> rusqlite::Result<ConflictRow> {
    let candidates: String = r.get(6)?;
    let decision: Option<String> = r.get(7)?;
    Ok(ConflictRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        destination: r.get(2)?,
        person_key: r.get(3)?,
        job_id: r.get(4)?,
        kind: r.get(5)?,
        candidates: serde_json::from_str(&candidates).unwrap_or_default(),
        decision: decision.and_then(|d| serde_json::from_str(&d).ok()),
        decided_by: r.get(8)?,
        created_ms: r.get(9)?,
    })
}

const CONFLICT_COLUMNS: &str =
    "id, tenant, destination, person_key, job_id, kind, candidates, decision, decided_by, created_ms";

fn guard_row(r: &Row<'_>) -> rusqlite::Result<Guard> {
    Ok(Guard {
        tenant: r.get(0)?,
        destination: r.get(1)?,
        tripped: r.get::<_, i64>(2)? != 0,
        budget: r.get(3)?,
        reason: r.get(4)?,
        tripped_ms: r.get(5)?,
    })
}

#[async_trait::async_trait]
impl GuardStore for SqliteStore {
    async fn guard_admit(&self, req: GuardRequest) -> StoreResult<GuardDecision> {
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let (t, d) = (&req.tenant, &req.destination);
                let row: Option<(i64, i64, Option<String>)> = c
                    .prepare_cached(
                        "SELECT tripped, budget, reason FROM guards WHERE tenant = ?1 AND \
                        destination = ?2",
                    )?
                    .query_row(params![t, d], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let (tripped, budget, reason) = row.unwrap_or((0, 0, None));
                if tripped != 0 {
                    return Ok(GuardDecision::Held {
                        why: reason.unwrap_or_default(),
                        newly_tripped: false,
                    });
                }
                let admitted_before = c
                    .prepare_cached(
                        "SELECT 1 FROM guard_admissions WHERE tenant = ?1 AND destination = ?2 \
                        AND job_id = ?3",
                    )?
                    .query_row(params![t, d, req.job_id], |_| Ok(()))
                    .optional()?
                    .is_some();
                let window: i64 = c
                    .prepare_cached(
                        "SELECT count(*) FROM guard_admissions WHERE tenant = ?1 AND destination \
                        = ?2 AND at_ms >= ?3",
                    )?
                    .query_row(params![t, d, req.now_ms - req.window_ms], |r| r.get(0))?;
                if admitted_before {
                    return Ok(GuardDecision::Admitted {
                        recent: window,
                        by_approval: false,
                    });
                }
                let recent = window + 1;
                let managed: i64 = c
                    .prepare_cached("SELECT count(*) FROM links WHERE tenant = ?1 AND destination = ?2")?
                    .query_row(params![t, d], |r| r.get(0))?;
                let over_count = req.max_accounts.is_some_and(|n| recent > n);
                let over_share = req.max_percent.is_some_and(|pct| {
                    managed > 0
                        && managed >= req.min_population
                        && recent as f64 * 100.0 / managed as f64 > pct
                });
                let admit = |by_approval| -> StoreResult<GuardDecision> {
                    c.prepare_cached(
                        "INSERT INTO guard_admissions (tenant, destination, job_id, at_ms) \
                        VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![t, d, req.job_id, req.now_ms])?;
                    Ok(GuardDecision::Admitted { recent, by_approval })
                };
                if !over_count && !over_share {
                    return admit(false);
                }
                if budget > 0 {
                    c.prepare_cached(
                        "UPDATE guards SET budget = budget - 1 WHERE tenant = ?1 AND \
                        destination = ?2",
                    )?
                    .execute(params![t, d])?;
                    return admit(true);
                }
                let why = format!(
                    "{recent} people would have accounts disabled, deleted, moved or stripped of groups \
                        within {} s \
                     (limits: {:?} people, {:?}% of {managed} managed accounts)",
                    req.window_ms / 1000,
                    req.max_accounts,
                    req.max_percent
                );
                c.prepare_cached(
                    "INSERT INTO guards (tenant, destination, tripped, budget, reason, tripped_ms) VALUES \
                        (?1, ?2, 1, 0, ?3, ?4)
                     ON CONFLICT (tenant, destination) DO UPDATE SET tripped = 1, budget = 0, reason = \
                         excluded.reason,
                         tripped_ms = excluded.tripped_ms",
                )?
                .execute(params![t, d, why, req.now_ms])?;
                let mut alert = req.alert;
                alert.data = serde_json::json!({ "why": why, "recent": recent, "managed": managed });
                ctx.audit(alert)?;
                Ok(GuardDecision::Held {
                    why,
                    newly_tripped: true,
                })
            })
            .await
    }

    async fn approve_guard(&self, tenant: &str, destination: &str, actor: &str) -> StoreResult<i64> {
        let (tenant, destination, actor) = (tenant.to_string(), destination.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let reason = format!("guard:{destination}");
                let tripped = ctx
                    .conn
                    .prepare_cached("SELECT tripped FROM guards WHERE tenant = ?1 AND destination = ?2")?
                    .query_row(params![tenant, destination], |r| r.get::<_, i64>(0))
                    .optional()?
                    .unwrap_or(0);
                if tripped == 0 {
                    return Err(StoreError::Conflict(format!(
                        "the guard of destination {destination} is not tripped"
                    )));
                }
                let released = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = ?3
                         WHERE tenant = ?1 AND state = 'held' AND hold_reason = ?2",
                    )?
                    .execute(params![tenant, reason, ctx.now_ms])? as i64;
                ctx.conn
                    .prepare_cached(
                        "UPDATE guards SET tripped = 0, budget = ?3 WHERE tenant = ?1 AND destination = ?2",
                    )?
                    .execute(params![tenant, destination, released])?;
                ctx.audit(
                    AuditRecord::new(&tenant, AuditKind::GuardApproved, actor)
                        .destination(&destination)
                        .data(serde_json::json!({ "released_jobs": released })),
                )?;
                Ok(released)
            })
            .await
    }

    async fn guards(&self, tenant: &str) -> StoreResult<Vec<Guard>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT tenant, destination, tripped, budget, reason, tripped_ms FROM guards WHERE tenant = \
                    ?1 ORDER BY destination",
            )?
            .query_map([tenant], guard_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn open_conflict(
        &self,
        lease: &JobLease,
        conflict: NewConflict,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<i64> {
        let lease = lease.clone();
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                let id = ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO conflicts (tenant, destination, person_key, job_id, kind, candidates, \
                            created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                    )?
                    .query_row(
                        params![
                            conflict.tenant,
                            conflict.destination,
                            conflict.person_key,
                            conflict.job_id,
                            conflict.kind,
                            serde_json::to_string(&conflict.candidates)?,
                            conflict.now_ms
                        ],
                        |r| r.get(0),
                    )?;
                ctx.audit_all(audit)?;
                Ok(id)
            })
            .await
    }

    async fn conflict_decision(
        &self,
        tenant: &str,
        job_id: i64,
        destination: &str,
    ) -> StoreResult<Option<ConflictRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE tenant = ?1 AND job_id = ?2 AND destination \
                    = ?3
                 AND decision IS NOT NULL ORDER BY id DESC LIMIT 1"
            ))?
            .query_row(params![tenant, job_id, destination], conflict_row)
            .optional()?)
        })
    }

    async fn conflicts(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ConflictRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE tenant = ?1 AND (?2 = 0 OR decision IS NULL) \
                    ORDER BY id"
            ))?
            .query_map(params![tenant, open_only], conflict_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn resolve_conflict(
        &self,
        tenant: &str,
        id: i64,
        decision: ConflictDecision,
        actor: &str,
    ) -> StoreResult<ConflictRow> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let row = c
                    .prepare_cached(&format!(
                        "SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE tenant = ?1 AND \
                        id = ?2"
                    ))?
                    .query_row(params![tenant, id], conflict_row)
                    .optional()?
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
                c.prepare_cached("UPDATE conflicts SET decision = ?2, decided_by = ?3 WHERE id = ?1")?
                    .execute(params![id, serde_json::to_string(&decision)?, actor])?;
                c.prepare_cached(
                    "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = ?2 WHERE id = ?1 \
                        AND state = 'held'",
                )?
                .execute(params![row.job_id, ctx.now_ms])?;
                ctx.audit(
                    AuditRecord::new(&tenant, AuditKind::ConflictResolved, &actor)
                        .person(&row.person_key)
                        .destination(&row.destination)
                        .job(row.job_id)
                        .data(serde_json::json!({ "conflict": id, "decision": decision })),
                )?;
                Ok(ConflictRow {
                    decision: Some(decision),
                    decided_by: Some(actor),
                    ..row
                })
            })
            .await
    }

    async fn hold_plan(
        &self,
        lease: &JobLease,
        hold: NewHold,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<HoldRow> {
        let lease = lease.clone();
        self.writer
            .write(move |ctx| super::holds::hold_plan(ctx, &lease, &hold, audit))
            .await
    }

    async fn hold_of(&self, tenant: &str, job_id: i64, destination: &str) -> StoreResult<Option<HoldRow>> {
        self.read(|c| super::holds::hold_of(c, tenant, job_id, destination))
    }

    async fn holds(&self, filter: HoldFilter) -> StoreResult<Vec<HoldRow>> {
        self.read(|c| super::holds::holds(c, &filter))
    }

    async fn decide_holds(
        &self,
        tenant: &str,
        ids: Vec<i64>,
        decision: HoldDecision,
        actor: &str,
        note: Option<String>,
    ) -> StoreResult<Vec<HoldRow>> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                super::holds::decide_holds(ctx, &tenant, &ids, decision, &actor, note.as_deref())
            })
            .await
    }

    async fn hold_applied(&self, lease: &JobLease, id: i64, audit: Vec<AuditRecord>) -> StoreResult<()> {
        let lease = lease.clone();
        self.writer
            .write(move |ctx| super::holds::hold_applied(ctx, &lease, id, audit))
            .await
    }
}
