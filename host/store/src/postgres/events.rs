//! Events, identity links and cursors.

use super::row::{RowExt, to_stored};
use super::write::{PendingAudit, PgWrite};
use super::{LockPurpose, PgStore, event_columns, event_row, lock_for};
use crate::*;

#[async_trait::async_trait]
impl EventStore for PgStore {
    async fn intake(&self, events: Vec<NewEvent>, cursor: Option<CursorUpdate>) -> StoreResult<Vec<Intake>> {
        let mut w = self.begin().await?;
        let out = intake_events(&mut w, events).await?;
        if let Some(c) = cursor {
            let now = w.now_ms;
            sqlx::query(
                "INSERT INTO cursors (tenant, source, cursor, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, source) DO UPDATE SET cursor = excluded.cursor,
                     updated_ms = excluded.updated_ms",
            )
            .bind(c.tenant)
            .bind(c.source)
            .bind(c.cursor)
            .bind(now)
            .execute(w.conn())
            .await?;
        }
        w.commit().await?;
        Ok(out)
    }

    async fn cursor(&self, tenant: &str, source: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT cursor FROM cursors WHERE tenant = $1 AND source = $2")
                .bind(tenant)
                .bind(source)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn event(&self, tenant: &str, id: i64) -> StoreResult<Option<EventRow>> {
        sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e WHERE e.tenant = $1 AND e.id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(|r| event_row(&r, 0))
        .transpose()
    }

    async fn event_by_record(
        &self,
        tenant: &str,
        source: &str,
        record_id: &str,
    ) -> StoreResult<Option<EventRow>> {
        sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e WHERE e.tenant = $1 AND e.source = $2 AND e.source_record_id = $3
              ORDER BY e.id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(source)
        .bind(record_id)
        .fetch_optional(self.pool())
        .await?
        .map(|r| event_row(&r, 0))
        .transpose()
    }

    async fn person_keys(&self, tenant: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT person_key FROM events WHERE tenant = $1 AND person_key > $2
             ORDER BY person_key LIMIT $3",
        )
        .bind(tenant)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?)
    }

    async fn latest_events_of(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<EventRow>> {
        sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e WHERE e.id IN (SELECT max(id) FROM events WHERE tenant = $1 AND person_key = $2
                 GROUP BY source) ORDER BY e.id DESC"
        ))
        .bind(tenant)
        .bind(person_key)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| event_row(r, 0))
        .collect()
    }

    async fn record_before(
        &self,
        tenant: &str,
        person_key: &str,
        before_id: i64,
    ) -> StoreResult<Option<EventRow>> {
        sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events e WHERE e.tenant = $1 AND e.person_key = $2 AND e.id < $3
                 AND e.kind NOT IN ('withdrawn', 'deleted')
              ORDER BY e.id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(person_key)
        .bind(before_id)
        .fetch_optional(self.pool())
        .await?
        .map(|r| event_row(&r, 0))
        .transpose()
    }

    async fn identity_owner(&self, tenant: &str, keys: &[String]) -> StoreResult<Option<String>> {
        let mut c = self.pool().acquire().await?;
        for key in keys {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT person_key FROM identities WHERE tenant = $1 AND key = $2")
                    .bind(tenant)
                    .bind(key)
                    .fetch_optional(&mut *c)
                    .await?;
            if owner.is_some() {
                return Ok(owner);
            }
        }
        Ok(None)
    }

    async fn newer_applied(
        &self,
        tenant: &str,
        person_key: &str,
        occurred_ms: i64,
    ) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT e.id FROM jobs j JOIN events e ON e.id = j.event_id
             WHERE j.tenant = $1 AND j.person_key = $2 AND j.state = 'completed' AND e.occurred_ms > $3
             ORDER BY e.occurred_ms DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(person_key)
        .bind(occurred_ms)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// Stores events, their jobs and their audit entries (the body of every intake).
pub(super) async fn intake_events(w: &mut PgWrite, events: Vec<NewEvent>) -> StoreResult<Vec<Intake>> {
    let mut out = Vec::with_capacity(events.len());
    for mut ev in events {
        if !ev.link_keys.is_empty() {
            ev.person_key = link_person(w, &ev).await?;
        }
        let received = crate::audit::redact(serde_json::json!({
            "source": ev.source, "kind": ev.kind, "source_record_id": ev.source_record_id,
            "idempotency_key": ev.idempotency_key,
        }))
        .to_string();
        // The event, its job and the cancelling of the person's jobs it supersedes (held
        // because the rules failed on the person's data: events carry the whole person) in
        // one statement; no row when the idempotency key was seen before.
        let now = w.now_ms;
        let inserted: Option<(i64, i64, Vec<i64>)> = sqlx::query_as(
            "WITH ev AS (
                 INSERT INTO events (tenant, source, idempotency_key, person_key, kind, source_record_id,
                                     start_date, body, actor, received_ms, occurred_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (tenant, idempotency_key) DO NOTHING RETURNING id
             ), job AS (
                 INSERT INTO jobs (tenant, person_key, event_id, state, max_attempts, run_at_ms, created_ms)
                 SELECT $1, $4, ev.id, 'available', $12, $10, $10 FROM ev RETURNING id, event_id
             ), superseded AS (
                 UPDATE jobs SET state = 'cancelled', hold_reason = 'superseded by event ' || job.event_id,
                     finished_ms = $13
                 FROM job
                 WHERE jobs.tenant = $1 AND jobs.person_key = $4 AND jobs.state = 'held' AND jobs.id < job.id
                   AND jobs.hold_reason LIKE 'rules:%' RETURNING jobs.id
             )
             SELECT job.event_id, job.id, coalesce((SELECT array_agg(id ORDER BY id) FROM superseded), '{}')
             FROM job",
        )
        .bind(&ev.tenant)
        .bind(&ev.source)
        .bind(&ev.idempotency_key)
        .bind(&ev.person_key)
        .bind(ev.kind.to_column())
        .bind(&ev.source_record_id)
        .bind(&ev.start_date)
        .bind(to_stored(&ev.body))
        .bind(&ev.actor)
        .bind(ev.received_ms)
        .bind(ev.occurred_ms)
        .bind(i64::from(ev.max_attempts))
        .bind(now)
        .fetch_optional(w.conn())
        .await?;
        let Some((event_id, job_id, superseded)) = inserted else {
            let r = sqlx::query(
                "SELECT e.id, j.id FROM events e JOIN jobs j ON j.event_id = e.id
                 WHERE e.tenant = $1 AND e.idempotency_key = $2",
            )
            .bind(&ev.tenant)
            .bind(&ev.idempotency_key)
            .fetch_one(w.conn())
            .await?;
            out.push(Intake::Duplicate {
                event_id: r.at(0)?,
                job_id: r.at(1)?,
            });
            continue;
        };
        w.audit(PendingAudit::encoded(
            AuditRecord::new(&ev.tenant, AuditKind::EventReceived, &ev.actor)
                .person(&ev.person_key)
                .event(event_id)
                .job(job_id),
            received,
        ));
        for old in superseded {
            w.audit(
                AuditRecord::new(&ev.tenant, AuditKind::JobSuperseded, &ev.actor)
                    .person(&ev.person_key)
                    .event(event_id)
                    .job(old)
                    .data(serde_json::json!({
                        "by_job": job_id, "reason": "newer record for a person held on a rules error"
                    })),
            );
        }
        out.push(Intake::Accepted { event_id, job_id });
        w.note(Change::Jobs);
    }
    Ok(out)
}

/// The person an event belongs to across sources: the owner of its source's own
/// key (`id:...`, first in `link_keys`), else of any other link key, else its own;
/// every key is then recorded for that person. Links of one tenant are made one at a
/// time across hosts, so two events cannot each claim a new person for the same key.
async fn link_person(w: &mut PgWrite, ev: &NewEvent) -> StoreResult<String> {
    lock_for(w.conn(), LockPurpose::Identity, &ev.tenant).await?;
    let mut owner: Option<String> = None;
    for key in &ev.link_keys {
        owner = sqlx::query_scalar("SELECT person_key FROM identities WHERE tenant = $1 AND key = $2")
            .bind(&ev.tenant)
            .bind(key)
            .fetch_optional(w.conn())
            .await?;
        if owner.is_some() {
            break;
        }
    }
    let person = owner.unwrap_or_else(|| ev.person_key.clone());
    for key in &ev.link_keys {
        sqlx::query(
            "INSERT INTO identities (tenant, key, person_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&ev.tenant)
        .bind(key)
        .bind(&person)
        .execute(w.conn())
        .await?;
    }
    Ok(person)
}
