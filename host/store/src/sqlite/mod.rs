//! The embedded store: one SQLite file in WAL mode, a writer thread that
//! group-commits, and a small pool of reader connections.

mod deliveries;
mod kv;
mod writer;

use crate::audit::{Verifier, VerifyReport};
use crate::crypto::MasterKey;
use crate::*;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use writer::Writer;

/// How the embedded store opens its file.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// `FULL` (the default) makes every acknowledged write survive power loss;
    /// `NORMAL` survives a process crash only.
    pub synchronous_full: bool,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    head_file: PathBuf,
    audit_key: [u8; 32],
    master: MasterKey,
    me: Weak<SqliteStore>,
}

const SCHEMA: &str = include_str!("schema.sql");

impl SqliteStore {
    /// Opens (creating if needed) the database and starts its writer.
    pub fn open(options: &SqliteOptions, master: MasterKey) -> StoreResult<Arc<SqliteStore>> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(&options.path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if options.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoint less often: fewer, larger copies from the WAL into the database.
        conn.pragma_update(None, "wal_autocheckpoint", 8000)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // The writer runs a few dozen distinct statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(SCHEMA)?;
        let audit_key = master.derive("tenure audit chain v1");
        let head_file = head_file_for(&options.path);
        let writer = Writer::start(conn, audit_key, head_file.clone())?;
        Ok(Arc::new_cyclic(|me| SqliteStore {
            writer,
            readers: Mutex::new(Vec::new()),
            path: options.path.clone(),
            head_file,
            audit_key,
            master,
            me: me.clone(),
        }))
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on a pooled reader connection.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.set_prepared_statement_cache_capacity(128);
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        result
    }

    /// Runs a long read (export, verify) off the async threads.
    async fn read_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let me = self.me.upgrade().ok_or(StoreError::Closed)?;
        tokio::task::spawn_blocking(move || me.read(f))
            .await
            .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

fn head_file_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".audit-head");
    path.with_file_name(name)
}

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

const EVENT_COLUMNS: &str = "e.id, e.tenant, e.source, e.kind, e.person_key, e.source_record_id, e.idempotency_key, e.actor, e.received_ms, e.body";

fn event_row(r: &Row<'_>, at: usize) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(at)?,
        tenant: r.get(at + 1)?,
        source: r.get(at + 2)?,
        kind: r.get(at + 3)?,
        person_key: r.get(at + 4)?,
        source_record_id: r.get(at + 5)?,
        idempotency_key: r.get(at + 6)?,
        actor: r.get(at + 7)?,
        received_ms: r.get(at + 8)?,
        body: r.get(at + 9)?,
    })
}

const JOB_COLUMNS: &str = "j.id, j.tenant, j.person_key, j.event_id, e.kind, j.state, j.attempts, j.max_attempts, \
     j.run_at_ms, j.last_error, j.hold_reason, j.created_ms, j.finished_ms";

fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let state: String = r.get(5)?;
    Ok(JobRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        person_key: r.get(2)?,
        event_id: r.get(3)?,
        kind: r.get(4)?,
        state: JobState::parse(&state).unwrap_or(JobState::Dead),
        attempts: r.get(6)?,
        max_attempts: r.get(7)?,
        run_at_ms: r.get(8)?,
        last_error: r.get(9)?,
        hold_reason: r.get(10)?,
        created_ms: r.get(11)?,
        finished_ms: r.get(12)?,
    })
}

fn load_job(c: &Connection, tenant: &str, id: i64) -> StoreResult<Option<JobRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id WHERE j.tenant = ?1 AND j.id = ?2"
    ))?
    .query_row(params![tenant, id], job_row)
    .optional()?)
}

fn op_row(r: &Row<'_>) -> rusqlite::Result<OperationRow> {
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

const OP_COLUMNS: &str =
    "id, job_id, destination, op_key, kind, target, status, detail, anchor, started_ms, finished_ms";

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

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let data: String = r.get(9)?;
    Ok(AuditEntry {
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
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
        },
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

const AUDIT_COLUMNS: &str =
    "seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, job_id, data, prev_hash, hash";

/// Midnight UTC of an ISO date (`2026-03-01`), in milliseconds.
pub(crate) fn date_start_ms(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.split('-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Some(crate::days_from_civil(y, m, d) * 86_400_000)
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn intake(&self, events: Vec<NewEvent>, cursor: Option<CursorUpdate>) -> StoreResult<Vec<Intake>> {
        self.writer
            .write_urgent(move |ctx| {
                let out = intake_events(ctx, events)?;
                if let Some(c) = cursor {
                    ctx.conn
                        .prepare_cached(
                            "INSERT INTO cursors (tenant, source, cursor, updated_ms) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (tenant, source) DO UPDATE SET cursor = excluded.cursor, updated_ms = excluded.updated_ms",
                        )?
                        .execute(params![c.tenant, c.source, c.cursor, ctx.now_ms])?;
                }
                Ok(out)
            })
            .await
    }

    async fn store_delivery(&self, delivery: NewDelivery) -> StoreResult<DeliveryIntake> {
        self.store_delivery_impl(delivery).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRow>> {
        self.claim_deliveries_impl(owner, now_ms, lease_ms, limit).await
    }

    async fn extend_delivery_leases(&self, owner: &str, ids: Vec<i64>, until_ms: i64) -> StoreResult<()> {
        self.extend_delivery_leases_impl(owner, ids, until_ms).await
    }

    async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        finish: DeliveryFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<Vec<Intake>>> {
        self.finish_delivery_impl(id, owner, finish, audit).await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        self.deliveries_impl(filter).await
    }

    async fn replay_delivery(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<DeliveryRow> {
        self.replay_delivery_impl(tenant, id, actor).await
    }

    async fn record_before(
        &self,
        tenant: &str,
        person_key: &str,
        before_id: i64,
    ) -> StoreResult<Option<EventRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e INDEXED BY events_person_id
                 WHERE e.tenant = ?1 AND e.person_key = ?2 AND e.id < ?3 AND e.kind NOT IN ('withdrawn', 'deleted')
                 ORDER BY e.id DESC LIMIT 1"
            ))?
            .query_row(params![tenant, person_key, before_id], |r| event_row(r, 0))
            .optional()?)
        })
    }

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
                                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?2, lease_until_ms = ?3
                                 WHERE id = ?1
                                 RETURNING id, tenant, person_key, attempts, max_attempts, created_ms, event_id",
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
                        let event = c
                            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"))?
                            .query_row([job.6], |r| event_row(r, 0))?;
                        claimed.push(ClaimedJob {
                            id: job.0,
                            tenant: job.1,
                            person_key: job.2,
                            attempt: job.3,
                            max_attempts: job.4,
                            created_ms: job.5,
                            event,
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
                    "UPDATE jobs SET lease_until_ms = ?3 WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
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
        last_op: Option<FinishedOp>,
        lifecycle: Option<LifecycleRow>,
    ) -> StoreResult<bool> {
        let lease = lease.clone();
        let job_id = lease.job_id;
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
                if let Some(done) = last_op {
                    record_op_result(ctx, done)?;
                }
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
                    Finish::Retry { run_at_ms, error, charge } if charge && attempts >= max_attempts => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'dead', finished_ms = ?2, last_error = ?3, lease_owner = NULL,
                             lease_until_ms = NULL WHERE id = ?1",
                        )?
                        .execute(params![job_id, now, format!("{error} (gave up after {attempts} attempts)")])?;
                        let _ = run_at_ms;
                    }
                    Finish::Retry { run_at_ms, error, charge } => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'retryable', run_at_ms = ?2, last_error = ?3, lease_owner = NULL,
                             lease_until_ms = NULL, attempts = attempts - ?4 WHERE id = ?1",
                        )?
                        .execute(params![job_id, run_at_ms, error, i64::from(!charge)])?;
                    }
                    Finish::Dead { error } => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'dead', finished_ms = ?2, last_error = ?3, lease_owner = NULL,
                             lease_until_ms = NULL WHERE id = ?1",
                        )?
                        .execute(params![job_id, now, error])?;
                    }
                    Finish::Held { reason } => {
                        c.prepare_cached(
                            "UPDATE jobs SET state = 'held', hold_reason = ?2, lease_owner = NULL, lease_until_ms = NULL,
                             attempts = attempts - 1 WHERE id = ?1",
                        )?
                        .execute(params![job_id, reason])?;
                    }
                }
                ctx.audit_all(audit)?;
                Ok(true)
            })
            .await
    }

    async fn op_started(
        &self,
        lease: &JobLease,
        previous: Option<FinishedOp>,
        op: NewOperation,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<i64> {
        let lease = lease.clone();
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                if let Some(done) = previous {
                    record_op_result(ctx, done)?;
                }
                let id = ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO operations (job_id, tenant, destination, op_key, kind, target, destructive, status, started_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'started', ?8)
                         ON CONFLICT (job_id, op_key) DO UPDATE SET status = 'started', started_ms = excluded.started_ms,
                             target = excluded.target, finished_ms = NULL
                         RETURNING id",
                    )?
                    .query_row(
                        params![op.job_id, op.tenant, op.destination, op.op_key, op.kind, op.target, op.destructive, op.now_ms],
                        |r| r.get(0),
                    )?;
                ctx.audit_all(audit)?;
                Ok(id)
            })
            .await
    }

    async fn op_finished(&self, lease: &JobLease, done: FinishedOp) -> StoreResult<()> {
        let lease = lease.clone();
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                record_op_result(ctx, done)
            })
            .await
    }

    async fn put_link(&self, lease: &JobLease, link: LinkUpdate, audit: Vec<AuditRecord>) -> StoreResult<()> {
        let lease = lease.clone();
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
                    "SELECT anchor, managed_groups FROM links WHERE tenant = ?1 AND destination = ?2 AND person_key = ?3",
                )?
                .query_row(params![tenant, destination, person_key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(row.map(|(anchor, groups)| Link { anchor, managed_groups: serde_json::from_str(&groups).unwrap_or_default() }))
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

    async fn guard_admit(&self, req: GuardRequest) -> StoreResult<GuardDecision> {
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let (t, d) = (&req.tenant, &req.destination);
                let row: Option<(i64, i64, Option<String>)> = c
                    .prepare_cached("SELECT tripped, budget, reason FROM guards WHERE tenant = ?1 AND destination = ?2")?
                    .query_row(params![t, d], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let (tripped, budget, reason) = row.unwrap_or((0, 0, None));
                if tripped != 0 {
                    return Ok(GuardDecision::Held { why: reason.unwrap_or_default(), newly_tripped: false });
                }
                let admitted_before = c
                    .prepare_cached("SELECT 1 FROM guard_admissions WHERE tenant = ?1 AND destination = ?2 AND job_id = ?3")?
                    .query_row(params![t, d, req.job_id], |_| Ok(()))
                    .optional()?
                    .is_some();
                let window: i64 = c
                    .prepare_cached("SELECT count(*) FROM guard_admissions WHERE tenant = ?1 AND destination = ?2 AND at_ms >= ?3")?
                    .query_row(params![t, d, req.now_ms - req.window_ms], |r| r.get(0))?;
                if admitted_before {
                    return Ok(GuardDecision::Admitted { recent: window, by_approval: false });
                }
                let recent = window + 1;
                let managed: i64 = c
                    .prepare_cached("SELECT count(*) FROM links WHERE tenant = ?1 AND destination = ?2")?
                    .query_row(params![t, d], |r| r.get(0))?;
                let over_count = req.max_accounts.is_some_and(|n| recent > n);
                let over_share = req.max_percent.is_some_and(|pct| {
                    managed > 0 && managed >= req.min_population && recent as f64 * 100.0 / managed as f64 > pct
                });
                let admit = |by_approval| -> StoreResult<GuardDecision> {
                    c.prepare_cached("INSERT INTO guard_admissions (tenant, destination, job_id, at_ms) VALUES (?1, ?2, ?3, ?4)")?
                        .execute(params![t, d, req.job_id, req.now_ms])?;
                    Ok(GuardDecision::Admitted { recent, by_approval })
                };
                if !over_count && !over_share {
                    return admit(false);
                }
                if budget > 0 {
                    c.prepare_cached("UPDATE guards SET budget = budget - 1 WHERE tenant = ?1 AND destination = ?2")?
                        .execute(params![t, d])?;
                    return admit(true);
                }
                let why = format!(
                    "{recent} people would have accounts disabled, deleted, moved or stripped of groups within {} s \
                     (limits: {:?} people, {:?}% of {managed} managed accounts)",
                    req.window_ms / 1000,
                    req.max_accounts,
                    req.max_percent
                );
                c.prepare_cached(
                    "INSERT INTO guards (tenant, destination, tripped, budget, reason, tripped_ms) VALUES (?1, ?2, 1, 0, ?3, ?4)
                     ON CONFLICT (tenant, destination) DO UPDATE SET tripped = 1, budget = 0, reason = excluded.reason,
                         tripped_ms = excluded.tripped_ms",
                )?
                .execute(params![t, d, why, req.now_ms])?;
                let mut alert = req.alert;
                alert.data = serde_json::json!({ "why": why, "recent": recent, "managed": managed });
                ctx.audit(alert)?;
                Ok(GuardDecision::Held { why, newly_tripped: true })
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
                ctx.audit(AuditRecord {
                    tenant: tenant.clone(),
                    kind: "guard.approved".into(),
                    actor,
                    destination: Some(destination.clone()),
                    data: serde_json::json!({ "released_jobs": released }),
                    ..AuditRecord::default()
                })?;
                Ok(released)
            })
            .await
    }

    async fn guards(&self, tenant: &str) -> StoreResult<Vec<Guard>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT tenant, destination, tripped, budget, reason, tripped_ms FROM guards WHERE tenant = ?1 ORDER BY destination",
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
                        "INSERT INTO conflicts (tenant, destination, person_key, job_id, kind, candidates, created_ms)
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
                "SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE tenant = ?1 AND job_id = ?2 AND destination = ?3
                 AND decision IS NOT NULL ORDER BY id DESC LIMIT 1"
            ))?
            .query_row(params![tenant, job_id, destination], conflict_row)
            .optional()?)
        })
    }

    async fn conflicts(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ConflictRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE tenant = ?1 AND (?2 = 0 OR decision IS NULL) ORDER BY id"
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
                    .prepare_cached(&format!("SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE tenant = ?1 AND id = ?2"))?
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
                    "UPDATE jobs SET state = 'available', hold_reason = NULL, run_at_ms = ?2 WHERE id = ?1 AND state = 'held'",
                )?
                .execute(params![row.job_id, ctx.now_ms])?;
                ctx.audit(AuditRecord {
                    tenant: tenant.clone(),
                    kind: "conflict.resolved".into(),
                    actor: actor.clone(),
                    person_key: Some(row.person_key.clone()),
                    destination: Some(row.destination.clone()),
                    job_id: Some(row.job_id),
                    data: serde_json::json!({ "conflict": id, "decision": decision }),
                    ..AuditRecord::default()
                })?;
                Ok(ConflictRow { decision: Some(decision), decided_by: Some(actor), ..row })
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
            let event = c
                .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"))?
                .query_row([job.event_id], |r| event_row(r, 0))?;
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
                let job = load_job(ctx.conn, &tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
                if !matches!(job.state, JobState::Dead | JobState::Cancelled | JobState::Held) {
                    return Err(StoreError::Conflict(format!(
                        "job {id} is {}; only dead, held or cancelled jobs can be replayed",
                        job.state.as_str()
                    )));
                }
                ctx.conn
                    .prepare_cached(
                        "UPDATE jobs SET state = 'available', attempts = 0, run_at_ms = ?2, finished_ms = NULL,
                         hold_reason = NULL WHERE id = ?1",
                    )?
                    .execute(params![id, ctx.now_ms])?;
                ctx.audit(AuditRecord {
                    tenant: tenant.clone(),
                    kind: "job.replayed".into(),
                    actor,
                    person_key: Some(job.person_key.clone()),
                    event_id: Some(job.event_id),
                    job_id: Some(id),
                    data: serde_json::json!({ "previous_state": job.state, "last_error": job.last_error }),
                    ..AuditRecord::default()
                })?;
                load_job(ctx.conn, &tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("job {id}")))
            })
            .await
    }

    async fn cancel(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<JobRow> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let job = load_job(ctx.conn, &tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
                if matches!(job.state, JobState::Completed | JobState::Cancelled) {
                    return Err(StoreError::Conflict(format!("job {id} is already {}", job.state.as_str())));
                }
                ctx.conn
                    .prepare_cached(
                        "UPDATE jobs SET state = 'cancelled', finished_ms = ?2, lease_owner = NULL, lease_until_ms = NULL
                         WHERE id = ?1",
                    )?
                    .execute(params![id, ctx.now_ms])?;
                ctx.audit(AuditRecord {
                    tenant: tenant.clone(),
                    kind: "job.cancelled".into(),
                    actor,
                    person_key: Some(job.person_key.clone()),
                    event_id: Some(job.event_id),
                    job_id: Some(id),
                    data: serde_json::json!({ "previous_state": job.state }),
                    ..AuditRecord::default()
                })?;
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

    async fn newer_applied(
        &self,
        tenant: &str,
        person_key: &str,
        occurred_ms: i64,
    ) -> StoreResult<Option<i64>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT e.id FROM jobs j JOIN events e ON e.id = j.event_id
                 WHERE j.tenant = ?1 AND j.person_key = ?2 AND j.state = 'completed' AND e.occurred_ms > ?3
                 ORDER BY e.occurred_ms DESC LIMIT 1",
            )?
            .query_row(params![tenant, person_key, occurred_ms], |r| r.get(0))
            .optional()?)
        })
    }

    async fn event_by_record(
        &self,
        tenant: &str,
        source: &str,
        record_id: &str,
    ) -> StoreResult<Option<EventRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.tenant = ?1 AND e.source = ?2 AND e.source_record_id = ?3
                 ORDER BY e.id DESC LIMIT 1"
            ))?
            .query_row(params![tenant, source, record_id], |r| event_row(r, 0))
            .optional()?)
        })
    }

    async fn event(&self, tenant: &str, id: i64) -> StoreResult<Option<EventRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.tenant = ?1 AND e.id = ?2"
            ))?
            .query_row(params![tenant, id], |r| event_row(r, 0))
            .optional()?)
        })
    }

    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        self.writer.write(move |ctx| ctx.audit_all(records)).await
    }

    async fn audit(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.read_blocking(move |c| {
            let limit = filter.limit.unwrap_or(100_000).min(1_000_000) as i64;
            Ok(c.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit
                 WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR person_key = ?2) AND (?3 IS NULL OR destination = ?3)
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

    async fn verify_audit(&self) -> StoreResult<VerifyReport> {
        let key = self.audit_key;
        let recorded_head = std::fs::read_to_string(&self.head_file).ok().and_then(|text| {
            let mut parts = text.split_whitespace();
            Some((parts.next()?.parse::<i64>().ok()?, parts.next()?.to_string()))
        });
        self.read_blocking(move |c| {
            let mut verifier = Verifier::new(&key);
            let mut stmt = c.prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let data: String = row.get(9)?;
                verifier.push_stored(&audit_row(row)?, &data);
            }
            Ok(verifier.finish(recorded_head))
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<Vec<(String, String, i64)>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT tenant, state, count(*) FROM jobs GROUP BY tenant, state")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?,
            )
        })
    }

    async fn kpis(&self, tenant: &str) -> StoreResult<Kpis> {
        let tenant = tenant.to_string();
        self.read_blocking(move |c| {
            let count = |sql: &str| -> StoreResult<i64> { Ok(c.query_row(sql, [&tenant], |r| r.get(0))?) };
            let events = count("SELECT count(*) FROM events WHERE tenant = ?1")?;
            let completed_jobs = count("SELECT count(*) FROM jobs WHERE tenant = ?1 AND state = 'completed'")?;
            let dead_jobs = count("SELECT count(*) FROM jobs WHERE tenant = ?1 AND state = 'dead'")?;
            let failures = count("SELECT coalesce(sum(failures), 0) FROM operations WHERE tenant = ?1")?;
            let mut stmt = c.prepare(
                "SELECT j.finished_ms - e.received_ms, j.finished_ms, e.start_date FROM jobs j JOIN events e ON e.id = j.event_id
                 WHERE j.tenant = ?1 AND j.state = 'completed' AND e.kind IN ('joiner', 'rehire')
                 ORDER BY j.id DESC LIMIT 100000",
            )?;
            let rows: Vec<(i64, i64, Option<String>)> =
                stmt.query_map([&tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            let mut durations: Vec<i64> = rows.iter().map(|r| r.0).collect();
            durations.sort_unstable();
            let (mut ready, mut total) = (0, 0);
            for (_, finished, start) in &rows {
                if let Some(start_ms) = start.as_deref().and_then(date_start_ms) {
                    total += 1;
                    if *finished < start_ms {
                        ready += 1;
                    }
                }
            }
            Ok(Kpis {
                events,
                completed_jobs,
                dead_jobs,
                time_to_provision_p50_ms: percentile(&durations, 0.5),
                time_to_provision_p95_ms: percentile(&durations, 0.95),
                first_day_ready: ready,
                first_day_total: total,
                first_day_access_rate: (total > 0).then(|| ready as f64 / total as f64),
                errors_per_1000_events: if events > 0 { failures as f64 * 1000.0 / events as f64 } else { 0.0 },
            })
        })
        .await
    }

    async fn cursor(&self, tenant: &str, source: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT cursor FROM cursors WHERE tenant = ?1 AND source = ?2")?
                    .query_row(params![tenant, source], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    async fn put_rule_set(&self, new: NewRuleSet, audit: Vec<AuditRecord>) -> StoreResult<RuleSetVersion> {
        self.writer
            .write(move |ctx| {
                let version: i64 = ctx
                    .conn
                    .prepare_cached("SELECT coalesce(max(version), 0) + 1 FROM rule_set_versions WHERE tenant = ?1")?
                    .query_row([&new.tenant], |r| r.get(0))?;
                let tests = new.tests.to_string();
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO rule_set_versions (tenant, version, document, author, message, created_ms, tests_passed, tests)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        new.tenant,
                        version,
                        new.document,
                        new.author,
                        new.message,
                        ctx.now_ms,
                        new.tests_passed,
                        tests
                    ])?;
                for mut record in audit {
                    if let serde_json::Value::Object(m) = &mut record.data {
                        m.insert("version".into(), version.into());
                    }
                    ctx.audit(record)?;
                }
                Ok(RuleSetVersion {
                    tenant: new.tenant,
                    version,
                    author: new.author,
                    message: new.message,
                    created_ms: ctx.now_ms,
                    tests_passed: new.tests_passed,
                    tests: new.tests,
                    document: new.document,
                })
            })
            .await
    }

    async fn rule_sets(&self, tenant: &str) -> StoreResult<Vec<RuleSetVersion>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {RULE_SET_COLUMNS} FROM rule_set_versions WHERE tenant = ?1 ORDER BY version"
            ))?
            .query_map([tenant], rule_set_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn rule_set(&self, tenant: &str, version: i64) -> StoreResult<Option<RuleSetVersion>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {RULE_SET_COLUMNS} FROM rule_set_versions WHERE tenant = ?1 AND version = ?2"
            ))?
            .query_row(params![tenant, version], rule_set_row)
            .optional()?)
        })
    }

    async fn publish_rule_set(
        &self,
        tenant: &str,
        version: i64,
        actor: &str,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<RuleSetHead> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let exists: Option<i64> = ctx
                    .conn
                    .prepare_cached("SELECT version FROM rule_set_versions WHERE tenant = ?1 AND version = ?2")?
                    .query_row(params![tenant, version], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("rule set version {version}")));
                }
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO rule_set_current (tenant, version, published_by, published_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant) DO UPDATE SET version = excluded.version,
                             published_by = excluded.published_by, published_ms = excluded.published_ms",
                    )?
                    .execute(params![tenant, version, actor, ctx.now_ms])?;
                ctx.audit_all(audit)?;
                Ok(RuleSetHead {
                    version,
                    published_by: actor,
                    published_ms: ctx.now_ms,
                })
            })
            .await
    }

    async fn current_rule_set(&self, tenant: &str) -> StoreResult<Option<RuleSetHead>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT version, published_by, published_ms FROM rule_set_current WHERE tenant = ?1",
            )?
            .query_row([tenant], |r| {
                Ok(RuleSetHead {
                    version: r.get(0)?,
                    published_by: r.get(1)?,
                    published_ms: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    async fn release_held(&self, tenant: &str, reason_prefix: &str, actor: &str) -> StoreResult<u64> {
        let (tenant, prefix, actor) = (tenant.to_string(), reason_prefix.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
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
                    ctx.audit(AuditRecord {
                        tenant: tenant.clone(),
                        kind: "job.released".into(),
                        actor: actor.clone(),
                        person_key: Some(person_key.clone()),
                        destination: None,
                        event_id: None,
                        job_id: Some(*id),
                        data: serde_json::json!({ "reason": prefix }),
                    })?;
                }
                Ok(ids.len() as u64)
            })
            .await
    }

    async fn latest_events(&self, tenant: &str, limit: usize) -> StoreResult<Vec<EventRow>> {
        let tenant = tenant.to_string();
        self.read_blocking(move |c| {
            Ok(c.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e
                 WHERE e.id IN (SELECT max(id) FROM events WHERE tenant = ?1 GROUP BY person_key)
                 ORDER BY e.person_key LIMIT ?2"
            ))?
            .query_map(params![tenant, limit as i64], |r| event_row(r, 0))?
            .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn identity_owner(&self, tenant: &str, keys: &[String]) -> StoreResult<Option<String>> {
        self.read(|c| {
            for key in keys {
                let owner: Option<String> = c
                    .prepare_cached("SELECT person_key FROM identities WHERE tenant = ?1 AND key = ?2")?
                    .query_row(params![tenant, key], |r| r.get(0))
                    .optional()?;
                if owner.is_some() {
                    return Ok(owner);
                }
            }
            Ok(None)
        })
    }

    async fn latest_events_of(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<EventRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.id IN ({NEWEST_PER_SOURCE}) ORDER BY e.id DESC"
            ))?
            .query_map(params![tenant, person_key], |r| event_row(r, 0))?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn schedule_action(&self, a: NewScheduledAction) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let added = ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, state, reason, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![a.tenant, a.person_key, a.destination, a.action, a.due_ms, a.reason, a.now_ms])?;
                Ok(added == 1)
            })
            .await
    }

    async fn cancel_actions(
        &self,
        tenant: &str,
        person_key: &str,
        destination: Option<&str>,
        action: ActionMatch<'_>,
        note: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (kind, prefix) = match action {
            ActionMatch::Is(a) => (a.to_string(), false),
            ActionMatch::StartsWith(a) => (a.to_string(), true),
        };
        let args = (
            tenant.to_string(),
            person_key.to_string(),
            destination.map(String::from),
            kind,
            note.to_string(),
        );
        self.writer
            .write(move |ctx| {
                let (tenant, person_key, destination, kind, note) = &args;
                Ok(ctx
                    .conn
                    .prepare_cached(
                        "UPDATE scheduled_actions SET state = 'cancelled', finished_ms = ?5, note = ?6
                         WHERE tenant = ?1 AND person_key = ?2 AND (?3 IS NULL OR destination = ?3)
                           AND (action = ?4 OR (?7 AND substr(action, 1, length(?4)) = ?4))
                           AND state IN ('pending', 'queued')",
                    )?
                    .execute(params![
                        tenant,
                        person_key,
                        destination,
                        kind,
                        now_ms,
                        note,
                        prefix
                    ])? as u64)
            })
            .await
    }

    async fn reschedule_action(&self, a: NewScheduledAction) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let open: Option<(i64, String, i64)> = c
                    .prepare_cached(
                        "SELECT id, state, due_ms FROM scheduled_actions
                         WHERE tenant = ?1 AND person_key = ?2 AND destination = ?3 AND action = ?4
                           AND state IN ('pending', 'queued')",
                    )?
                    .query_row(params![a.tenant, a.person_key, a.destination, a.action], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                match open {
                    Some((_, state, _)) if state == "queued" => Ok(false),
                    Some((_, _, due)) if due == a.due_ms => Ok(false),
                    Some((id, _, _)) => {
                        c.prepare_cached("UPDATE scheduled_actions SET due_ms = ?2, reason = ?3 WHERE id = ?1")?
                            .execute(params![id, a.due_ms, a.reason])?;
                        Ok(true)
                    }
                    None => {
                        c.prepare_cached(
                            "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, state, reason, created_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
                        )?
                        .execute(params![a.tenant, a.person_key, a.destination, a.action, a.due_ms, a.reason, a.now_ms])?;
                        Ok(true)
                    }
                }
            })
            .await
    }

    async fn lifecycle(&self, tenant: &str, person_key: &str) -> StoreResult<Option<LifecycleRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT person_key, state, manager_key, doc, updated_ms FROM lifecycles WHERE tenant = ?1 AND person_key = ?2",
            )?
            .query_row(params![tenant, person_key], lifecycle_row)
            .optional()?)
        })
    }

    async fn put_lifecycle(&self, lease: &JobLease, tenant: &str, row: LifecycleRow) -> StoreResult<()> {
        let (lease, tenant) = (lease.clone(), tenant.to_string());
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                write_lifecycle(ctx.conn, &tenant, &row)
            })
            .await
    }

    async fn lifecycles(&self, tenant: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT person_key, state, manager_key, doc, updated_ms FROM lifecycles
                 WHERE tenant = ?1 ORDER BY person_key LIMIT ?2",
            )?
            .query_map(params![tenant, limit as i64], lifecycle_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn reports_of(&self, tenant: &str, manager_keys: Vec<String>) -> StoreResult<Vec<String>> {
        self.read(|c| {
            let mut out = Vec::new();
            let mut q = c.prepare_cached(REPORTS_OF)?;
            for key in &manager_keys {
                for row in q.query_map(params![tenant, key], |r| r.get::<_, String>(0))? {
                    let person = row?;
                    if !out.contains(&person) {
                        out.push(person);
                    }
                }
            }
            Ok(out)
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

    async fn put_report(
        &self,
        tenant: &str,
        kind: &str,
        summary: serde_json::Value,
        body: serde_json::Value,
        now_ms: i64,
    ) -> StoreResult<i64> {
        let (tenant, kind) = (tenant.to_string(), kind.to_string());
        let (summary, body) = (summary.to_string(), body.to_string());
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO reports (tenant, kind, summary, body, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![tenant, kind, summary, body, now_ms])?;
                Ok(ctx.conn.last_insert_rowid())
            })
            .await
    }

    async fn report(&self, tenant: &str, id: i64) -> StoreResult<Option<ReportRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, tenant, kind, summary, body, created_ms FROM reports WHERE tenant = ?1 AND id = ?2",
            )?
            .query_row(params![tenant, id], report_row)
            .optional()?)
        })
    }

    async fn reports(&self, tenant: &str, kind: &str, limit: usize) -> StoreResult<Vec<ReportRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, tenant, kind, summary, 'null', created_ms FROM reports
                 WHERE tenant = ?1 AND kind = ?2 ORDER BY id DESC LIMIT ?3",
            )?
            .query_map(params![tenant, kind, limit as i64], report_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn take_due_actions(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduledAction>> {
        // Scanned every second: an idle host answers from a reader, without a write.
        let any_due = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT 1 FROM scheduled_actions WHERE state = 'pending' AND due_ms <= ?1 LIMIT 1",
            )?
            .query_row(params![now_ms], |_| Ok(()))
            .optional()?
            .is_some())
        })?;
        if !any_due {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |ctx| {
                let due: Vec<ScheduledAction> = ctx
                    .conn
                    .prepare_cached(&format!(
                        "UPDATE scheduled_actions SET state = 'queued'
                         WHERE id IN (SELECT id FROM scheduled_actions WHERE state = 'pending' AND due_ms <= ?1
                                      ORDER BY due_ms LIMIT ?2)
                         RETURNING {ACTION_COLUMNS}"
                    ))?
                    .query_map(params![now_ms, limit as i64], action_row)?
                    .collect::<Result<_, _>>()?;
                Ok(due)
            })
            .await
    }

    async fn finish_action(&self, id: i64, state: &str, note: &str, now_ms: i64) -> StoreResult<()> {
        let (state, note) = (state.to_string(), note.to_string());
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "UPDATE scheduled_actions SET state = ?2, note = ?3, finished_ms = ?4
                         WHERE id = ?1 AND state IN ('pending', 'queued')",
                    )?
                    .execute(params![id, state, note, now_ms])?;
                Ok(())
            })
            .await
    }

    async fn scheduled_action(&self, id: i64) -> StoreResult<Option<ScheduledAction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM scheduled_actions WHERE id = ?1"
            ))?
            .query_row(params![id], action_row)
            .optional()?)
        })
    }

    async fn scheduled_actions(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ScheduledAction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM scheduled_actions
                 WHERE tenant = ?1 AND (?2 = 0 OR state IN ('pending', 'queued')) ORDER BY id DESC LIMIT 10000"
            ))?
            .query_map(params![tenant, open_only as i64], action_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn open_actions(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<ScheduledAction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM scheduled_actions {OPEN_ACTIONS_OF}"
            ))?
            .query_map(params![tenant, person_key], action_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn claim_name(
        &self,
        tenant: &str,
        attribute: &str,
        value: &str,
        person_key: &str,
    ) -> StoreResult<bool> {
        let (tenant, attribute, value, person_key) = (
            tenant.to_string(),
            attribute.to_string(),
            value.to_string(),
            person_key.to_string(),
        );
        self.writer
            .write(move |ctx| {
                let key = value.to_lowercase();
                let holder: Option<String> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT person_key FROM name_claims WHERE tenant = ?1 AND attribute = ?2 AND value_key = ?3",
                    )?
                    .query_row(params![tenant, attribute, key], |r| r.get(0))
                    .optional()?;
                match holder {
                    Some(h) if h != person_key => return Ok(false),
                    Some(_) => return Ok(true),
                    None => {}
                }
                // One value per person and attribute: a rename gives the old one up.
                ctx.conn
                    .prepare_cached("DELETE FROM name_claims WHERE tenant = ?1 AND attribute = ?2 AND person_key = ?3")?
                    .execute(params![tenant, attribute, person_key])?;
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO name_claims (tenant, attribute, value_key, value, person_key, claimed_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![tenant, attribute, key, value, person_key, ctx.now_ms])?;
                Ok(true)
            })
            .await
    }

    async fn claimed_name(
        &self,
        tenant: &str,
        attribute: &str,
        person_key: &str,
    ) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT value FROM name_claims WHERE tenant = ?1 AND attribute = ?2 AND person_key = ?3",
            )?
            .query_row(params![tenant, attribute, person_key], |r| r.get(0))
            .optional()?)
        })
    }

    async fn put_secret(&self, name: &str, value: &str) -> StoreResult<()> {
        let (nonce, sealed) = self.master.seal(name, value.as_bytes())?;
        let name = name.to_string();
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO secrets (name, nonce, ciphertext, updated_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                             updated_ms = excluded.updated_ms",
                    )?
                    .execute(params![name, nonce, sealed, ctx.now_ms])?;
                Ok(())
            })
            .await
    }

    async fn secret(&self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self.read(|c| {
            Ok(
                c.prepare_cached("SELECT nonce, ciphertext FROM secrets WHERE name = ?1")?
                    .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            )
        })?;
        row.map(|(nonce, sealed)| {
            let plain = self.master.open(name, &nonce, &sealed)?;
            String::from_utf8(plain).map_err(|_| StoreError::Crypto(format!("secret {name} is not UTF-8")))
        })
        .transpose()
    }

    async fn take_secret(&self, name: &str) -> StoreResult<Option<String>> {
        let key = name.to_string();
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .writer
            .write(move |ctx| {
                let row = ctx
                    .conn
                    .prepare_cached("DELETE FROM secrets WHERE name = ?1 RETURNING nonce, ciphertext")?
                    .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                Ok(row)
            })
            .await?;
        row.map(|(nonce, sealed)| {
            let plain = self.master.open(name, &nonce, &sealed)?;
            String::from_utf8(plain).map_err(|_| StoreError::Crypto(format!("secret {name} is not UTF-8")))
        })
        .transpose()
    }

    fn kv(&self) -> Arc<dyn tenure_capabilities::KvBackend> {
        match self.me.upgrade() {
            Some(me) => Arc::new(kv::SqliteKv(me)),
            None => Arc::new(tenure_capabilities::MemoryKv::default()),
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))?;
        self.writer.write(|_| Ok(())).await
    }
}

const ACTION_COLUMNS: &str =
    "id, tenant, person_key, destination, action, due_ms, state, reason, created_ms, finished_ms, note";

fn lifecycle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LifecycleRow> {
    Ok(LifecycleRow {
        person_key: r.get(0)?,
        state: r.get(1)?,
        manager_key: r.get(2)?,
        doc: r.get(3)?,
        updated_ms: r.get(4)?,
    })
}

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

fn action_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduledAction> {
    Ok(ScheduledAction {
        id: r.get(0)?,
        tenant: r.get(1)?,
        person_key: r.get(2)?,
        destination: r.get(3)?,
        action: r.get(4)?,
        due_ms: r.get(5)?,
        state: r.get(6)?,
        reason: r.get(7)?,
        created_ms: r.get(8)?,
        finished_ms: r.get(9)?,
        note: r.get(10)?,
    })
}

/// Stores events, their jobs and their audit entries (the body of every intake).
fn intake_events(ctx: &mut writer::WriteCtx<'_>, events: Vec<NewEvent>) -> StoreResult<Vec<Intake>> {
    let mut out = Vec::with_capacity(events.len());
    for mut ev in events {
        if !ev.link_keys.is_empty() {
            ev.person_key = link_person(ctx, &ev)?;
        }
        let inserted = ctx
            .conn
            .prepare_cached(
                "INSERT INTO events (tenant, source, idempotency_key, person_key, kind, source_record_id,
                                     start_date, body, actor, received_ms, occurred_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (tenant, idempotency_key) DO NOTHING RETURNING id",
            )?
            .query_row(
                params![
                    ev.tenant,
                    ev.source,
                    ev.idempotency_key,
                    ev.person_key,
                    ev.kind,
                    ev.source_record_id,
                    ev.start_date,
                    ev.body,
                    ev.actor,
                    ev.received_ms,
                    ev.occurred_ms
                ],
                |r| r.get::<_, i64>(0),
            )
            .optional()?;
        let Some(event_id) = inserted else {
            let (event_id, job_id) = ctx
                .conn
                .prepare_cached(
                    "SELECT e.id, j.id FROM events e JOIN jobs j ON j.event_id = e.id
                     WHERE e.tenant = ?1 AND e.idempotency_key = ?2",
                )?
                .query_row(params![ev.tenant, ev.idempotency_key], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            out.push(Intake::Duplicate { event_id, job_id });
            continue;
        };
        let job_id: i64 = ctx
            .conn
            .prepare_cached(
                "INSERT INTO jobs (tenant, person_key, event_id, state, max_attempts, run_at_ms, created_ms)
                 VALUES (?1, ?2, ?3, 'available', ?4, ?5, ?5) RETURNING id",
            )?
            .query_row(
                params![
                    ev.tenant,
                    ev.person_key,
                    event_id,
                    ev.max_attempts,
                    ev.received_ms
                ],
                |r| r.get(0),
            )?;
        ctx.audit(AuditRecord {
            tenant: ev.tenant.clone(),
            kind: "event.received".into(),
            actor: ev.actor.clone(),
            person_key: Some(ev.person_key.clone()),
            destination: None,
            event_id: Some(event_id),
            job_id: Some(job_id),
            data: serde_json::json!({
                "source": ev.source, "kind": ev.kind, "source_record_id": ev.source_record_id,
                "idempotency_key": ev.idempotency_key,
            }),
        })?;
        // A job held because the rules failed on this person's data is
        // superseded by the newer record (events carry the whole person).
        let superseded: Vec<i64> = ctx
            .conn
            .prepare_cached(
                "UPDATE jobs SET state = 'cancelled', hold_reason = 'superseded by event ' || ?3,
                     finished_ms = ?4
                 WHERE tenant = ?1 AND person_key = ?2 AND state = 'held' AND id < ?5
                   AND substr(hold_reason, 1, 6) = 'rules:' RETURNING id",
            )?
            .query_map(
                params![ev.tenant, ev.person_key, event_id, ctx.now_ms, job_id],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        for old in superseded {
            ctx.audit(AuditRecord {
                tenant: ev.tenant.clone(),
                kind: "job.superseded".into(),
                actor: ev.actor.clone(),
                person_key: Some(ev.person_key.clone()),
                destination: None,
                event_id: Some(event_id),
                job_id: Some(old),
                data: serde_json::json!({ "by_job": job_id, "reason": "newer record for a person held on a rules error" }),
            })?;
        }
        out.push(Intake::Accepted { event_id, job_id });
    }
    Ok(out)
}

/// The person an event belongs to across sources: the owner of its source's own
/// key (`id:...`, first in `link_keys`), else of any other link key, else its own;
/// every key is then recorded for that person.
fn link_person(ctx: &mut writer::WriteCtx<'_>, ev: &NewEvent) -> StoreResult<String> {
    let mut owner: Option<String> = None;
    for key in &ev.link_keys {
        owner = ctx
            .conn
            .prepare_cached("SELECT person_key FROM identities WHERE tenant = ?1 AND key = ?2")?
            .query_row(params![ev.tenant, key], |r| r.get(0))
            .optional()?;
        if owner.is_some() {
            break;
        }
    }
    let person = owner.unwrap_or_else(|| ev.person_key.clone());
    for key in &ev.link_keys {
        ctx.conn
            .prepare_cached(
                "INSERT INTO identities (tenant, key, person_key) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![ev.tenant, key, person])?;
    }
    Ok(person)
}

const RULE_SET_COLUMNS: &str = "tenant, version, author, message, created_ms, tests_passed, tests, document";

fn rule_set_row(r: &Row<'_>) -> rusqlite::Result<RuleSetVersion> {
    let tests: String = r.get(6)?;
    Ok(RuleSetVersion {
        tenant: r.get(0)?,
        version: r.get(1)?,
        author: r.get(2)?,
        message: r.get(3)?,
        created_ms: r.get(4)?,
        tests_passed: r.get(5)?,
        tests: serde_json::from_str(&tests).unwrap_or(serde_json::Value::Null),
        document: r.get(7)?,
    })
}

// Queries every job runs, kept here so that a test can check their plans use an
// index (a scan grows with the tables: at 10,000 events one made the pipeline 6x slower).

/// The ids of a person's newest event from each source.
const NEWEST_PER_SOURCE: &str =
    "SELECT max(id) FROM events WHERE tenant = ?1 AND person_key = ?2 GROUP BY source";
/// The people whose manager is `?2`.
const REPORTS_OF: &str =
    "SELECT person_key FROM lifecycles WHERE tenant = ?1 AND manager_key = ?2 ORDER BY person_key";
/// A person's open scheduled actions (the clause after `FROM scheduled_actions`).
const OPEN_ACTIONS_OF: &str =
    "WHERE tenant = ?1 AND person_key = ?2 AND state IN ('pending', 'queued') ORDER BY id";

/// Inserts or replaces a person's lifecycle record.
fn write_lifecycle(c: &Connection, tenant: &str, row: &LifecycleRow) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO lifecycles (tenant, person_key, state, manager_key, doc, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant, person_key) DO UPDATE SET state = excluded.state,
           manager_key = excluded.manager_key, doc = excluded.doc, updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        tenant,
        row.person_key,
        row.state,
        row.manager_key,
        row.doc,
        row.updated_ms
    ])?;
    Ok(())
}

/// Refuses a write of an attempt that no longer holds its job's lease.
fn check_lease(c: &Connection, lease: &JobLease) -> StoreResult<()> {
    let held = c
        .prepare_cached(
            "SELECT 1 FROM jobs WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'running'",
        )?
        .query_row(params![lease.job_id, lease.owner, lease.attempt], |_| Ok(()))
        .optional()?
        .is_some();
    if held {
        Ok(())
    } else {
        Err(StoreError::Fenced(format!(
            "attempt {} of job {} no longer holds its lease",
            lease.attempt, lease.job_id
        )))
    }
}

fn record_op_result(ctx: &mut writer::WriteCtx<'_>, done: FinishedOp) -> StoreResult<()> {
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
    ctx.audit_all(done.audit)
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

#[cfg(test)]
mod tests;
