//! Events, identity links and cursors.

use super::writer::{PreparedAudit, WriteCtx};
use super::{EVENT_COLUMNS, SqliteStore, event_row};
use crate::*;
use rusqlite::{OptionalExtension, params};

/// The ids of a person's newest event from each source.
pub(super) const NEWEST_PER_SOURCE: &str = concat!(
    "SELECT max(id) FROM events INDEXED BY events_person_id ",
    "WHERE tenant = ?1 AND person_key = ?2 GROUP BY source"
);
#[async_trait::async_trait]
impl EventStore for SqliteStore {
    async fn intake(&self, events: Vec<NewEvent>, cursor: Option<CursorUpdate>) -> StoreResult<Vec<Intake>> {
        let events = with_received_data(events);
        self.writer
            .write_urgent(move |ctx| {
                let out = intake_events(ctx, events)?;
                if let Some(c) = cursor {
                    ctx.conn
                        .prepare_cached(
                            "INSERT INTO cursors (tenant, source, cursor, updated_ms) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (tenant, source) DO UPDATE SET cursor = excluded.cursor, updated_ms \
                                 = excluded.updated_ms",
                        )?
                        .execute(params![c.tenant, c.source, c.cursor, ctx.now_ms])?;
                }
                Ok(out)
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
    async fn event(&self, tenant: &str, id: i64) -> StoreResult<Option<EventRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.tenant = ?1 AND e.id = ?2"
            ))?
            .query_row(params![tenant, id], |r| event_row(r, 0))
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
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.tenant = ?1 AND e.source = ?2 AND \
                    e.source_record_id = ?3
                 ORDER BY e.id DESC LIMIT 1"
            ))?
            .query_row(params![tenant, source, record_id], |r| event_row(r, 0))
            .optional()?)
        })
    }
    async fn person_keys(&self, tenant: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT DISTINCT person_key FROM events INDEXED BY events_person_id
                 WHERE tenant = ?1 AND person_key > ?2 ORDER BY person_key LIMIT ?3",
            )?
            .query_map(params![tenant, after.unwrap_or(""), limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
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
    async fn record_before(
        &self,
        tenant: &str,
        person_key: &str,
        before_id: i64,
    ) -> StoreResult<Option<EventRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e INDEXED BY events_person_id
                 WHERE e.tenant = ?1 AND e.person_key = ?2 AND e.id < ?3 AND e.kind NOT IN ('withdrawn', \
                     'deleted')
                 ORDER BY e.id DESC LIMIT 1"
            ))?
            .query_row(params![tenant, person_key, before_id], |r| event_row(r, 0))
            .optional()?)
        })
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
}

/// An event ready for the writer: its body compressed and its `event.received` details encoded.
pub(super) struct PreparedEvent {
    event: NewEvent,
    body: crate::compact_json::Compact,
    received: String,
}

/// Prepares events on the caller's thread, so that the one writer thread only inserts.
pub(super) fn with_received_data(events: Vec<NewEvent>) -> Vec<PreparedEvent> {
    events
        .into_iter()
        .map(|mut event| {
            let received = crate::audit::redact(serde_json::json!({
                "source": event.source, "kind": event.kind, "source_record_id": event.source_record_id,
                "idempotency_key": event.idempotency_key,
            }))
            .to_string();
            let body = crate::compact_json::compress(&std::mem::take(&mut event.body));
            PreparedEvent {
                event,
                body,
                received,
            }
        })
        .collect()
}

/// Stores events, their jobs and their audit entries (the body of every intake).
pub(super) fn intake_events(ctx: &mut WriteCtx<'_>, events: Vec<PreparedEvent>) -> StoreResult<Vec<Intake>> {
    let mut out = Vec::with_capacity(events.len());
    for PreparedEvent {
        event: mut ev,
        body,
        received,
    } in events
    {
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
                    ev.kind.to_column(),
                    ev.source_record_id,
                    ev.start_date,
                    body,
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
        ctx.audit(PreparedAudit::encoded(
            AuditRecord::new(&ev.tenant, AuditKind::EventReceived, &ev.actor)
                .person(&ev.person_key)
                .event(event_id)
                .job(job_id),
            received,
        ))?;
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
            ctx.audit(
                AuditRecord::new(&ev.tenant, AuditKind::JobSuperseded, &ev.actor)
                    .person(&ev.person_key)
                    .event(event_id)
                    .job(old)
                    .data(
                        serde_json::json!({ "by_job": job_id, "reason": "newer record for a person held on \
                        a rules error" }),
                    ),
            )?;
        }
        out.push(Intake::Accepted { event_id, job_id });
    }
    Ok(out)
}

/// The person an event belongs to across sources: the owner of its source's own
/// key (`id:...`, first in `link_keys`), else of any other link key, else its own;
/// every key is then recorded for that person.
fn link_person(ctx: &mut WriteCtx<'_>, ev: &NewEvent) -> StoreResult<String> {
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
