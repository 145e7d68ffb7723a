//! The job queue: claims with leases in per-person order, attempts, holds, replays.
//!
//! A claim locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so hosts claiming at
//! once take different jobs without waiting for each other; per-person order holds across
//! hosts because a person's later job is not runnable while an earlier one is unfinished
//! (a job another host is claiming is still `available`, hence unfinished).

use super::notifications::insert_notification;
use super::operations::{op_columns, op_row, record_op_results};
use super::row::RowExt;
use super::schedule::write_lifecycle;
use super::write::PgWrite;
use super::{PgStore, event_columns, event_row};
use crate::*;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

/// A job waits while an earlier job of the same person is unfinished. (The person's earlier
/// jobs are read by the person's index and filtered by state behind a fence, so no plan walks
/// every earlier job in those states instead.)
macro_rules! in_person_order {
    () => {
        " AND NOT EXISTS (SELECT 1 FROM (SELECT p.state FROM jobs p
              WHERE p.tenant = j.tenant AND p.person_key = j.person_key AND p.id < j.id OFFSET 0) earlier
              WHERE earlier.state IN ('available', 'retryable', 'running', 'dead', 'held'))"
    };
}

/// Takes the jobs the inner query selects: marks them running under the lease.
macro_rules! take_jobs {
    ($filter:expr) => {
        concat!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $3,
                 lease_until_ms = $4
             WHERE id IN (SELECT j.id FROM jobs j WHERE ",
            $filter,
            in_person_order!(),
            " ORDER BY j.id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, tenant, person_key, attempts, max_attempts, created_ms, event_id"
        )
    };
}

/// Jobs whose lease expired (their host died): another host's, never the claimer's own,
/// whose workers may still be running them.
const CLAIM_EXPIRED: &str =
    take_jobs!("j.state = 'running' AND j.lease_until_ms < $1 AND j.lease_owner <> $3");
/// One tenant's waiting jobs (`$5`).
const CLAIM_TENANT: &str =
    take_jobs!("j.tenant = $5 AND j.state IN ('available', 'retryable') AND j.run_at_ms <= $1");
/// Every tenant's waiting jobs, in arrival order.
const CLAIM_WAITING: &str = take_jobs!("j.state IN ('available', 'retryable') AND j.run_at_ms <= $1");

macro_rules! job_columns {
    () => {
        "j.id, j.tenant, j.person_key, j.event_id, e.kind, j.state, j.attempts, j.max_attempts, j.run_at_ms, \
         j.last_error, j.hold_reason, j.created_ms, j.finished_ms"
    };
}

fn job_row(r: &PgRow) -> StoreResult<JobRow> {
    Ok(JobRow {
        id: r.at(0)?,
        tenant: r.at(1)?,
        person_key: r.at(2)?,
        event_id: r.at(3)?,
        kind: r.parsed(4)?,
        state: r.parsed(5)?,
        attempts: r.count(6)?,
        max_attempts: r.count(7)?,
        run_at_ms: r.at(8)?,
        last_error: r.at(9)?,
        hold_reason: r.at(10)?,
        created_ms: r.at(11)?,
        finished_ms: r.at(12)?,
    })
}

async fn load_job(c: &mut PgConnection, tenant: &str, id: i64) -> StoreResult<Option<JobRow>> {
    sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.tenant = $1 AND j.id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(c)
    .await?
    .map(|r| job_row(&r))
    .transpose()
}

/// Runs one claim query and loads the claimed jobs' events, in id order.
async fn take(
    w: &mut PgWrite,
    sql: &'static str,
    (now_ms, limit, owner, until_ms): (i64, usize, &str, i64),
    tenant: Option<&str>,
    claimed: &mut Vec<ClaimedJob>,
) -> StoreResult<()> {
    let mut query = sqlx::query(sql)
        .bind(now_ms)
        .bind(limit as i64)
        .bind(owner)
        .bind(until_ms);
    if let Some(t) = tenant {
        query = query.bind(t);
    }
    let rows = query.fetch_all(w.conn()).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        jobs.push((
            r.at::<i64>(0)?,
            r.at::<String>(1)?,
            r.at::<String>(2)?,
            r.count(3)?,
            r.count(4)?,
            r.at::<i64>(5)?,
            r.at::<i64>(6)?,
        ));
    }
    jobs.sort_by_key(|j| j.0);
    let event_ids: Vec<i64> = jobs.iter().map(|j| j.6).collect();
    let events = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events e WHERE e.id = ANY($1)"
    ))
    .bind(&event_ids)
    .fetch_all(w.conn())
    .await?
    .iter()
    .map(|r| event_row(r, 0))
    .collect::<StoreResult<Vec<_>>>()?;
    let mut events: std::collections::HashMap<i64, EventRow> =
        events.into_iter().map(|e| (e.id, e)).collect();
    for (id, tenant, person_key, attempt, max_attempts, created_ms, event_id) in jobs {
        let event = events
            .remove(&event_id)
            .ok_or_else(|| StoreError::NotFound(format!("event {event_id} of job {id}")))?;
        claimed.push(ClaimedJob {
            id,
            tenant,
            person_key,
            attempt,
            max_attempts,
            created_ms,
            event,
            rule_set: None,
        });
    }
    Ok(())
}

#[async_trait::async_trait]
impl JobStore for PgStore {
    async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
        tenants: Vec<String>,
    ) -> StoreResult<Vec<ClaimedJob>> {
        let mut w = self.begin().await?;
        let mut claimed = Vec::with_capacity(limit);
        let until = now_ms + lease_ms;
        // 1. Jobs whose lease expired (their host died).
        take(
            &mut w,
            CLAIM_EXPIRED,
            (now_ms, limit, owner, until),
            None,
            &mut claimed,
        )
        .await?;
        // 2. A fair share per tenant, so one tenant's backlog cannot starve another.
        if tenants.len() > 1 && claimed.len() < limit {
            let share = (limit - claimed.len()).div_ceil(tenants.len());
            for tenant in &tenants {
                let room = (limit - claimed.len()).min(share);
                if room == 0 {
                    break;
                }
                take(
                    &mut w,
                    CLAIM_TENANT,
                    (now_ms, room, owner, until),
                    Some(tenant),
                    &mut claimed,
                )
                .await?;
            }
        }
        // 3. The rest in arrival order.
        if claimed.len() < limit {
            let room = limit - claimed.len();
            take(
                &mut w,
                CLAIM_WAITING,
                (now_ms, room, owner, until),
                None,
                &mut claimed,
            )
            .await?;
        }
        // The rule-set version each tenant runs, for the hosts that may lag behind it.
        let tenants: Vec<&str> = claimed.iter().map(|j| j.tenant.as_str()).collect();
        let heads: Vec<(String, i64)> =
            sqlx::query_as("SELECT tenant, version FROM rule_set_current WHERE tenant = ANY($1)")
                .bind(&tenants)
                .fetch_all(w.conn())
                .await?;
        for job in &mut claimed {
            job.rule_set = heads.iter().find(|(t, _)| *t == job.tenant).map(|(_, v)| *v);
        }
        w.commit().await?;
        Ok(claimed)
    }

    async fn extend_leases(&self, owner: &str, job_ids: Vec<i64>, until_ms: i64) -> StoreResult<Vec<i64>> {
        let mut held: Vec<i64> = sqlx::query_scalar(
            "UPDATE jobs SET lease_until_ms = $3 WHERE id = ANY($1) AND lease_owner = $2 AND state = 'running'
             RETURNING id",
        )
        .bind(&job_ids)
        .bind(owner)
        .bind(until_ms)
        .fetch_all(self.pool())
        .await?;
        held.sort_by_key(|id| job_ids.iter().position(|j| j == id));
        Ok(held)
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
        let job_id = lease.job_id;
        let mut w = self.begin().await?;
        let current = sqlx::query(
            "SELECT attempts, max_attempts, tenant FROM jobs
             WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND state = 'running' FOR UPDATE",
        )
        .bind(job_id)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .fetch_optional(w.conn())
        .await?;
        let Some(current) = current else {
            return Ok(false);
        };
        let (attempts, max_attempts, tenant): (u32, u32, String) =
            (current.count(0)?, current.count(1)?, current.at(2)?);
        record_op_results(&mut w, ops_done).await?;
        if let Some(row) = &lifecycle {
            write_lifecycle(w.conn(), &tenant, row).await?;
        }
        let now = w.now_ms;
        match finish {
            Finish::Completed => {
                // Completed, and whether the person's next job waits for it, in one round trip.
                let next_waits: bool = sqlx::query_scalar(concat!(
                    "WITH j AS (UPDATE jobs SET state = 'completed', finished_ms = $2, lease_owner = NULL,
                         lease_until_ms = NULL, hold_reason = NULL WHERE id = $1
                         RETURNING tenant, person_key, id)
                     SELECT EXISTS (SELECT 1 FROM j, ",
                    next_waiting_of_person!(),
                    ")"
                ))
                .bind(job_id)
                .bind(now)
                .fetch_one(w.conn())
                .await?;
                if next_waits {
                    w.note(Change::Jobs);
                }
            }
            Finish::Retry { error, charge, .. } if charge && attempts >= max_attempts => {
                sqlx::query(
                    "UPDATE jobs SET state = 'dead', finished_ms = $2, last_error = $3, lease_owner = NULL,
                         lease_until_ms = NULL WHERE id = $1",
                )
                .bind(job_id)
                .bind(now)
                .bind(format!("{error} (gave up after {attempts} attempts)"))
                .execute(w.conn())
                .await?;
            }
            Finish::Retry {
                run_at_ms,
                error,
                charge,
            } => {
                sqlx::query(
                    "UPDATE jobs SET state = 'retryable', run_at_ms = $2, last_error = $3, lease_owner = NULL,
                         lease_until_ms = NULL, attempts = attempts - $4 WHERE id = $1",
                )
                .bind(job_id)
                .bind(run_at_ms)
                .bind(error)
                .bind(i64::from(!charge))
                .execute(w.conn())
                .await?;
            }
            Finish::Dead { error } => {
                sqlx::query(
                    "UPDATE jobs SET state = 'dead', finished_ms = $2, last_error = $3, lease_owner = NULL,
                         lease_until_ms = NULL WHERE id = $1",
                )
                .bind(job_id)
                .bind(now)
                .bind(error)
                .execute(w.conn())
                .await?;
            }
            Finish::Held { reason } => {
                sqlx::query(
                    "UPDATE jobs SET state = 'held', hold_reason = $2, lease_owner = NULL,
                        lease_until_ms = NULL,
                         attempts = attempts - 1 WHERE id = $1",
                )
                .bind(job_id)
                .bind(reason)
                .execute(w.conn())
                .await?;
            }
        }
        w.audit_all(audit);
        for n in notifications {
            insert_notification(&mut w, n).await?;
        }
        w.commit().await?;
        Ok(true)
    }

    async fn jobs(&self, filter: JobFilter) -> StoreResult<Vec<JobRow>> {
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(10_000)
        } as i64;
        sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs j JOIN events e ON e.id = j.event_id
              WHERE j.tenant = $1 AND ($2::text IS NULL OR j.state = $2) AND ($3::text IS NULL OR
                  j.person_key = $3)
              ORDER BY j.id DESC LIMIT $4"
        ))
        .bind(&filter.tenant)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(&filter.person_key)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(job_row)
        .collect()
    }

    async fn job(&self, tenant: &str, id: i64) -> StoreResult<Option<JobDetail>> {
        let mut c = self.pool().acquire().await?;
        let Some(job) = load_job(&mut c, tenant, id).await? else {
            return Ok(None);
        };
        let event = super::load_event(&mut c, job.event_id).await?;
        let operations = sqlx::query(concat!(
            "SELECT ",
            op_columns!(),
            " FROM operations WHERE job_id = $1 ORDER BY id"
        ))
        .bind(id)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(op_row)
        .collect::<StoreResult<Vec<_>>>()?;
        let event_body = serde_json::from_str(&event.body).unwrap_or(serde_json::Value::Null);
        Ok(Some(JobDetail {
            job,
            event,
            event_body,
            operations,
        }))
    }

    async fn replay(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow> {
        let mut w = self.begin().await?;
        let job = locked_job(&mut w, tenant, id).await?;
        if !matches!(job.state, JobState::Dead | JobState::Cancelled | JobState::Held) {
            return Err(StoreError::Conflict(format!(
                "job {id} is {}; only dead, held or cancelled jobs can be replayed",
                job.state.as_str()
            )));
        }
        let now = w.now_ms;
        sqlx::query(
            "UPDATE jobs SET state = 'available', attempts = 0, run_at_ms = $2, finished_ms = NULL,
                 hold_reason = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(w.conn())
        .await?;
        w.note(Change::Jobs);
        w.audit(
            AuditRecord::new(tenant, AuditKind::JobReplayed, actor)
                .person(&job.person_key)
                .event(job.event_id)
                .job(id)
                .data(serde_json::json!({ "previous_state": job.state, "last_error": job.last_error })),
        );
        let row = load_job(w.conn(), tenant, id).await?;
        w.commit().await?;
        row.ok_or_else(|| StoreError::NotFound(format!("job {id}")))
    }

    async fn cancel(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow> {
        let mut w = self.begin().await?;
        let job = locked_job(&mut w, tenant, id).await?;
        if matches!(job.state, JobState::Completed | JobState::Cancelled) {
            return Err(StoreError::Conflict(format!(
                "job {id} is already {}",
                job.state.as_str()
            )));
        }
        let now = w.now_ms;
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_ms = $2, lease_owner = NULL, lease_until_ms = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(w.conn())
        .await?;
        note_next_of_person(&mut w, id).await?;
        w.audit(
            AuditRecord::new(tenant, AuditKind::JobCancelled, actor)
                .person(&job.person_key)
                .event(job.event_id)
                .job(id)
                .data(serde_json::json!({ "previous_state": job.state })),
        );
        let row = load_job(w.conn(), tenant, id).await?;
        w.commit().await?;
        row.ok_or_else(|| StoreError::NotFound(format!("job {id}")))
    }

    async fn has_unfinished(&self, tenant: &str, person_key: &str) -> StoreResult<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM (SELECT state FROM jobs WHERE tenant = $1 AND person_key = $2 OFFSET 0) mine
             WHERE mine.state IN ('available', 'retryable', 'running') LIMIT 1",
        )
        .bind(tenant)
        .bind(person_key)
        .fetch_optional(self.pool())
        .await?
        .is_some())
    }

    async fn release_held(&self, tenant: &str, reason_prefix: &str, actor: &str) -> StoreResult<u64> {
        let mut w = self.begin().await?;
        let released = release_held_in(&mut w, tenant, reason_prefix, actor).await?;
        w.commit().await?;
        Ok(released)
    }
}

/// The person's later jobs that wait, for a job `j` (a lateral subquery and its condition):
/// the later jobs read by the person's index and only then filtered by state, behind a fence
/// (`OFFSET 0`), so no plan walks every waiting job of the queue instead (what a plan on the
/// waiting-jobs index, made while the table was small, does under a burst).
macro_rules! next_waiting_of_person {
    () => {
        "LATERAL (SELECT n.state FROM jobs n
             WHERE n.tenant = j.tenant AND n.person_key = j.person_key AND n.id > j.id OFFSET 0) later
         WHERE later.state IN ('available', 'retryable')"
    };
}
use next_waiting_of_person;

/// Tells the other hosts when a job's end lets its person's next job run.
async fn note_next_of_person(w: &mut PgWrite, job_id: i64) -> StoreResult<()> {
    let next_waits = sqlx::query(concat!(
        "SELECT 1 FROM jobs j, ",
        next_waiting_of_person!(),
        " AND j.id = $1 LIMIT 1"
    ))
    .bind(job_id)
    .fetch_optional(w.conn())
    .await?
    .is_some();
    if next_waits {
        w.note(Change::Jobs);
    }
    Ok(())
}

/// A tenant's job, its row locked for the rest of the write (one read).
async fn locked_job(w: &mut PgWrite, tenant: &str, id: i64) -> StoreResult<JobRow> {
    sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.tenant = $1 AND j.id = $2 FOR UPDATE OF j"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(w.conn())
    .await?
    .map(|r| job_row(&r))
    .transpose()?
    .ok_or_else(|| StoreError::NotFound(format!("job {id}")))
}

/// Puts a tenant's held jobs whose reason starts with `prefix` back in the queue, audited.
pub(super) async fn release_held_in(
    w: &mut PgWrite,
    tenant: &str,
    prefix: &str,
    actor: &str,
) -> StoreResult<u64> {
    let now = w.now_ms;
    let rows = sqlx::query(
        "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = $3
         WHERE tenant = $1 AND state = 'held' AND starts_with(hold_reason, $2)
         RETURNING id, person_key",
    )
    .bind(tenant)
    .bind(prefix)
    .bind(now)
    .fetch_all(w.conn())
    .await?;
    if !rows.is_empty() {
        w.note(Change::Jobs);
    }
    let mut released = Vec::with_capacity(rows.len());
    for r in &rows {
        released.push((r.at::<i64>(0)?, r.at::<String>(1)?));
    }
    released.sort_by_key(|(id, _)| *id);
    for (id, person_key) in &released {
        w.audit(
            AuditRecord::new(tenant, AuditKind::JobReleased, actor)
                .person(person_key.as_str())
                .job(*id)
                .data(serde_json::json!({ "reason": prefix })),
        );
    }
    Ok(released.len() as u64)
}
