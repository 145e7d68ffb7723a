//! The job queue: claims with leases in per-person order, attempts, holds, replays.

use super::notifications::insert_notification;
use super::operations::{OP_COLUMNS, op_row, prepare_results, record_op_results};
use super::schedule::write_lifecycle;
use super::writer::WriteCtx;
use super::writer::prepare;
use super::{SqliteStore, load_event};
use crate::*;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// The claim's queries. A job waits while an earlier job of the same person is unfinished.
macro_rules! claim_sql {
    ($from:literal, $filter:literal) => {
        concat!(
            "SELECT j.id FROM jobs j INDEXED BY ",
            $from,
            " WHERE ",
            $filter,
            " AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.tenant = j.tenant AND p.person_key = j.person_key
                 AND p.id < j.id AND p.state IN ('available', 'retryable', 'running', 'dead', 'held'))
             ORDER BY j.id LIMIT ?2"
        )
    };
}
/// Jobs whose lease expired (their host died): another host's (`?3`), never the claimer's
/// own, whose workers may still be running them.
const CLAIM_EXPIRED: &str = claim_sql!(
    "jobs_ready",
    "j.state = 'running' AND j.lease_until_ms < ?1 AND j.lease_owner <> ?3"
);
/// One tenant's waiting jobs (`?3`).
const CLAIM_TENANT: &str = claim_sql!(
    "jobs_waiting_tenant",
    "j.tenant = ?3 AND j.state IN ('available', 'retryable') AND j.run_at_ms <= ?1"
);
/// Every tenant's waiting jobs, in arrival order.
const CLAIM_WAITING: &str = claim_sql!(
    "jobs_waiting",
    "j.state IN ('available', 'retryable') AND j.run_at_ms <= ?1"
);

pub(super) const JOB_COLUMNS: &str = "j.id, j.tenant, j.person_key, j.event_id, e.kind, j.state, j.attempts, \
    j.max_attempts, \
     j.run_at_ms, j.last_error, j.hold_reason, j.created_ms, j.finished_ms";

pub(super) fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        person_key: r.get(2)?,
        event_id: r.get(3)?,
        kind: r.get(4)?,
        state: r.get(5)?,
        attempts: r.get(6)?,
        max_attempts: r.get(7)?,
        run_at_ms: r.get(8)?,
        last_error: r.get(9)?,
        hold_reason: r.get(10)?,
        created_ms: r.get(11)?,
        finished_ms: r.get(12)?,
    })
}

pub(super) fn load_job(c: &Connection, tenant: &str, id: i64) -> StoreResult<Option<JobRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.tenant = ?1 AND j.id = \
            ?2"
    ))?
    .query_row(params![tenant, id], job_row)
    .optional()?)
}

#[async_trait::async_trait]
impl JobStore for SqliteStore {
    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
        tenants: Vec<String>,
    ) -> StoreResult<Vec<ClaimedJob>> {
        let owner = owner.to_string();
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let mut claimed = Vec::with_capacity(limit);
                // Marks the jobs running under this owner's lease and loads their events.
                let take = |ids: Vec<i64>, claimed: &mut Vec<ClaimedJob>| -> StoreResult<()> {
                    for id in ids {
                        let job = c
                            .prepare_cached(
                                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = \
                                    ?2, lease_until_ms = ?3
                                 WHERE id = ?1
                                 RETURNING id, tenant, person_key, attempts, max_attempts, created_ms, \
                                     event_id",
                            )?
                            .query_row(params![id, owner, now_ms + lease_ms], |r| {
                                Ok((
                                    r.get::<_, i64>(0)?,
                                    r.get::<_, String>(1)?,
                                    r.get::<_, String>(2)?,
                                    r.get::<_, u32>(3)?,
                                    r.get::<_, u32>(4)?,
                                    r.get::<_, i64>(5)?,
                                    r.get::<_, i64>(6)?,
                                ))
                            })?;
                        let event = load_event(c, job.6)?;
                        claimed.push(ClaimedJob {
                            id: job.0,
                            tenant: job.1,
                            person_key: job.2,
                            attempt: job.3,
                            max_attempts: job.4,
                            created_ms: job.5,
                            event,
                            rule_set: None,
                        });
                    }
                    Ok(())
                };
                // 1. Jobs whose lease expired (their host died).
                let expired: Vec<i64> = c
                    .prepare_cached(CLAIM_EXPIRED)?
                    .query_map(params![now_ms, limit as i64, owner], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                take(expired, &mut claimed)?;
                // 2. A fair share per tenant, so one tenant's backlog cannot starve another.
                if tenants.len() > 1 && claimed.len() < limit {
                    let share = (limit - claimed.len()).div_ceil(tenants.len());
                    for tenant in &tenants {
                        let room = (limit - claimed.len()).min(share);
                        if room == 0 {
                            break;
                        }
                        let ids: Vec<i64> = c
                            .prepare_cached(CLAIM_TENANT)?
                            .query_map(params![now_ms, room as i64, tenant], |r| r.get(0))?
                            .collect::<Result<_, _>>()?;
                        take(ids, &mut claimed)?;
                    }
                }
                // 3. The rest in arrival order.
                if claimed.len() < limit {
                    let ids: Vec<i64> = c
                        .prepare_cached(CLAIM_WAITING)?
                        .query_map(params![now_ms, (limit - claimed.len()) as i64], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    take(ids, &mut claimed)?;
                }
                // The rule-set version each tenant runs, for the hosts that may lag behind it.
                let mut head = c.prepare_cached("SELECT version FROM rule_set_current WHERE tenant = ?1")?;
                for job in &mut claimed {
                    job.rule_set = head.query_row([&job.tenant], |r| r.get(0)).optional()?;
                }
                Ok(claimed)
            })
            .await
    }

    async fn extend_leases(&self, owner: &str, job_ids: Vec<i64>, until_ms: i64) -> StoreResult<Vec<i64>> {
        let owner = owner.to_string();
        // Heartbeats go ahead of the workers' writes: a long queue must not cost a lease.
        self.writer
            .write_urgent(move |ctx| {
                let mut stmt = ctx.conn.prepare_cached(
                    "UPDATE jobs SET lease_until_ms = ?3 WHERE id = ?1 AND lease_owner = ?2 AND state = \
                        'running'",
                )?;
                let mut held = Vec::with_capacity(job_ids.len());
                for id in job_ids {
                    if stmt.execute(params![id, owner, until_ms])? == 1 {
                        held.push(id);
                    }
                }
                Ok(held)
            })
            .await
    }

    async fn finish(
        &self,
        lease: &JobLease,
        finish: Finish,
        audit: Vec<AuditRecord>,
        ops_done: Vec<FinishedOp>,
        lifecycle: Option<LifecycleRow>,
        notifications: Vec<NewNotification>,
    ) -> StoreResult<bool> {
        let lease = lease.clone();
        let job_id = lease.job_id;
        let audit = prepare(audit);
        let ops_done = prepare_results(ops_done);
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let current: Option<(u32, u32, String)> = c
                    .prepare_cached(
                        "SELECT attempts, max_attempts, tenant FROM jobs
                         WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'running'",
                    )?
                    .query_row(params![job_id, lease.owner, lease.attempt], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                let Some((attempts, max_attempts, tenant)) = current else {
                    return Ok(false);
                };
                record_op_results(ctx, ops_done)?;
                if let Some(row) = &lifecycle {
                    write_lifecycle(c, &tenant, row)?;
                }
                let now = ctx.now_ms;
                match finish {
                    Finish::Completed => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'completed', finished_ms = ?2, lease_owner = NULL,
                             lease_until_ms = NULL, hold_reason = NULL WHERE id = ?1",
                        )?
                        .execute(params![job_id, now])?;
                    }
                    Finish::Retry {
                        run_at_ms,
                        error,
                        charge,
                    } if charge && attempts >= max_attempts => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'dead', finished_ms = ?2, last_error = ?3, lease_owner \
                                = NULL,
                             lease_until_ms = NULL WHERE id = ?1",
                        )?
                        .execute(params![
                            job_id,
                            now,
                            format!(
                                "{error} (gave up after {attempts} \
                            attempts)"
                            )
                        ])?;
                        let _ = run_at_ms;
                    }
                    Finish::Retry {
                        run_at_ms,
                        error,
                        charge,
                    } => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'retryable', run_at_ms = ?2, last_error = ?3, \
                                lease_owner = NULL,
                             lease_until_ms = NULL, attempts = attempts - ?4 WHERE id = ?1",
                        )?
                        .execute(params![
                            job_id,
                            run_at_ms,
                            error,
                            i64::from(!charge)
                        ])?;
                    }
                    Finish::Dead { error } => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'dead', finished_ms = ?2, last_error = ?3, lease_owner \
                                = NULL,
                             lease_until_ms = NULL WHERE id = ?1",
                        )?
                        .execute(params![job_id, now, error])?;
                    }
                    Finish::Held { reason } => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'held', hold_reason = ?2, lease_owner = NULL, \
                                lease_until_ms = NULL,
                             attempts = attempts - 1 WHERE id = ?1",
                        )?
                        .execute(params![job_id, reason])?;
                    }
                }
                ctx.audit_all(audit)?;
                for n in notifications {
                    insert_notification(ctx, n)?;
                }
                Ok(true)
            })
            .await
    }

    async fn jobs(&self, filter: JobFilter) -> StoreResult<Vec<JobRow>> {
        self.read(|c| {
            let limit = if filter.limit == 0 {
                100
            } else {
                filter.limit.min(10_000)
            } as i64;
            Ok(c.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id
                 WHERE j.tenant = ?1 AND (?2 IS NULL OR j.state = ?2) AND (?3 IS NULL OR j.person_key = ?3)
                 ORDER BY j.id DESC LIMIT ?4"
            ))?
            .query_map(
                params![
                    filter.tenant,
                    filter.state.map(|s| s.as_str()),
                    filter.person_key,
                    limit
                ],
                job_row,
            )?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn job(&self, tenant: &str, id: i64) -> StoreResult<Option<JobDetail>> {
        self.read(|c| {
            let Some(job) = load_job(c, tenant, id)? else {
                return Ok(None);
            };
            let event = load_event(c, job.event_id)?;
            let operations = c
                .prepare_cached(&format!(
                    "SELECT {OP_COLUMNS} FROM operations WHERE job_id = ?1 ORDER BY id"
                ))?
                .query_map([id], op_row)?
                .collect::<Result<_, _>>()?;
            let event_body = serde_json::from_str(&event.body).unwrap_or(serde_json::Value::Null);
            Ok(Some(JobDetail {
                job,
                event,
                event_body,
                operations,
            }))
        })
    }

    async fn replay(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let job = load_job(ctx.conn, &tenant, id)?.ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "job \
                    {id}"
                    ))
                })?;
                if !matches!(job.state, JobState::Dead | JobState::Cancelled | JobState::Held) {
                    return Err(StoreError::Conflict(format!(
                        "job {id} is {}; only dead, held or cancelled jobs can be replayed",
                        job.state.as_str()
                    )));
                }
                ctx.conn
                    .prepare_cached(
                        "UPDATE jobs SET state = 'available', attempts = 0, run_at_ms = ?2, finished_ms = \
                            NULL,
                         hold_reason = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, ctx.now_ms])?;
                ctx.audit(
                    AuditRecord::new(&tenant, AuditKind::JobReplayed, actor)
                        .person(&job.person_key)
                        .event(job.event_id)
                        .job(id)
                        .data(
                            serde_json::json!({ "previous_state": job.state, "last_error": job.last_error }),
                        ),
                )?;
                load_job(ctx.conn, &tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("job {id}")))
            })
            .await
    }

    async fn cancel(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let job = load_job(ctx.conn, &tenant, id)?.ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "job \
                    {id}"
                    ))
                })?;
                if matches!(job.state, JobState::Completed | JobState::Cancelled) {
                    return Err(StoreError::Conflict(format!(
                        "job {id} is already {}",
                        job.state.as_str()
                    )));
                }
                ctx.conn
                    .prepare_cached(
                        "UPDATE jobs SET state = 'cancelled', finished_ms = ?2, lease_owner = NULL, \
                            lease_until_ms = NULL
                         WHERE id = ?1",
                    )?
                    .execute(params![id, ctx.now_ms])?;
                ctx.audit(
                    AuditRecord::new(&tenant, AuditKind::JobCancelled, actor)
                        .person(&job.person_key)
                        .event(job.event_id)
                        .job(id)
                        .data(serde_json::json!({ "previous_state": job.state })),
                )?;
                load_job(ctx.conn, &tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("job {id}")))
            })
            .await
    }

    async fn has_unfinished(&self, tenant: &str, person_key: &str) -> StoreResult<bool> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT 1 FROM jobs WHERE tenant = ?1 AND person_key = ?2
                 AND state IN ('available', 'retryable', 'running') LIMIT 1",
            )?
            .query_row(params![tenant, person_key], |_| Ok(()))
            .optional()?
            .is_some())
        })
    }

    async fn release_held(&self, tenant: &str, reason_prefix: &str, actor: &str) -> StoreResult<u64> {
        let (tenant, prefix, actor) = (tenant.to_string(), reason_prefix.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| release_held_in(ctx, &tenant, &prefix, &actor))
            .await
    }
}

/// Puts a tenant's held jobs whose reason starts with `prefix` back in the queue, audited.
pub(super) fn release_held_in(
    ctx: &mut WriteCtx<'_>,
    tenant: &str,
    prefix: &str,
    actor: &str,
) -> StoreResult<u64> {
    let ids: Vec<(i64, String)> = ctx
        .conn
        .prepare_cached(
            "SELECT id, person_key FROM jobs WHERE tenant = ?1 AND state = 'held'
               AND substr(hold_reason, 1, length(?2)) = ?2",
        )?
        .query_map(params![tenant, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, person_key) in &ids {
        ctx.conn
            .prepare_cached(
                "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id, ctx.now_ms])?;
        let record = AuditRecord::new(tenant, AuditKind::JobReleased, actor)
            .person(person_key.as_str())
            .job(*id)
            .data(serde_json::json!({ "reason": prefix }));
        ctx.audit(record)?;
    }
    Ok(ids.len() as u64)
}
