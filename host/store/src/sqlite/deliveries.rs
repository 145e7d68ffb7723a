//! Webhook deliveries: stored raw (with replay and redelivery checks) before the
//! sender is answered, claimed with a lease by the enrichment workers, and ended
//! together with the events they produced.

use super::events::{intake_events, with_received_data};
use super::{SqliteStore, writer::WriteCtx};
use crate::*;
use rusqlite::{OptionalExtension, Row, params};

const COLUMNS: &str = "id, tenant, source, event, state, attempts, max_attempts, run_at_ms, last_error, \
    events, \
     received_ms, finished_ms, headers, body";

fn row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let headers: String = r.get(12)?;
    Ok(DeliveryRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        source: r.get(2)?,
        event: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get(5)?,
        max_attempts: r.get(6)?,
        run_at_ms: r.get(7)?,
        last_error: r.get(8)?,
        events: r.get(9)?,
        received_ms: r.get(10)?,
        finished_ms: r.get(11)?,
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        body: r.get(13)?,
    })
}

/// Stores a verified delivery, unless its token or its content was seen before.
fn store(ctx: &mut WriteCtx<'_>, d: NewDelivery) -> StoreResult<DeliveryIntake> {
    let c = ctx.conn;
    // This source's tokens older than its delivery window can never be replayed (they are
    // stale); other sources keep theirs for their own windows.
    c.prepare_cached("DELETE FROM webhook_tokens WHERE tenant = ?1 AND source = ?2 AND seen_ms < ?3")?
        .execute(params![d.tenant, d.source, ctx.now_ms - d.keep_token_ms])?;
    let fresh = c
        .prepare_cached(
            "INSERT INTO webhook_tokens (tenant, source, token, seen_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![d.tenant, d.source, d.token, ctx.now_ms])?;
    let same_content: Option<(i64, String)> = c
        .prepare_cached("SELECT id, token FROM deliveries WHERE tenant = ?1 AND source = ?2 AND digest = ?3")?
        .query_row(params![d.tenant, d.source, d.digest], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match (fresh, same_content) {
        // The token again, with the content it came with: the sender retrying.
        (0, Some((id, token))) if token == d.token => {
            return Ok(DeliveryIntake::Duplicate { delivery_id: id });
        }
        // The token again with other content: a replay.
        (0, _) => return Ok(DeliveryIntake::Replay),
        // A new token for content already received: a redelivery.
        (_, Some((id, _))) => {
            ctx.audit_all(
                d.audit
                    .into_iter()
                    .map(|mut a| {
                        a.kind = AuditKind::WebhookRedelivered;
                        a
                    })
                    .collect(),
            )?;
            return Ok(DeliveryIntake::Duplicate { delivery_id: id });
        }
        (_, None) => {}
    }
    let state = if d.ping {
        DeliveryState::Done
    } else {
        DeliveryState::Pending
    };
    let headers = serde_json::to_string(&d.headers)?;
    let id: i64 = c
        .prepare_cached(
            "INSERT INTO deliveries (tenant, source, token, digest, event, headers, body, state, max_attempts,
                                     run_at_ms, received_ms, finished_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, CASE WHEN ?8 = 'done' THEN ?10 END)
             RETURNING id",
        )?
        .query_row(
            params![d.tenant, d.source, d.token, d.digest, d.event, headers, d.body, state, d.max_attempts,
                ctx.now_ms],
            |r| r.get(0),
        )?;
    let audit = d
        .audit
        .into_iter()
        .map(|mut a| {
            if let serde_json::Value::Object(m) = &mut a.data {
                m.insert("delivery".into(), id.into());
            }
            a
        })
        .collect();
    ctx.audit_all(audit)?;
    Ok(DeliveryIntake::Stored { delivery_id: id })
}

#[async_trait::async_trait]
impl DeliveryStore for SqliteStore {
    async fn store_delivery(&self, delivery: NewDelivery) -> StoreResult<DeliveryIntake> {
        self.writer.write_urgent(move |ctx| store(ctx, delivery)).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let owner = owner.to_string();
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let ids: Vec<i64> = c
                    .prepare_cached(
                        "SELECT id FROM deliveries INDEXED BY deliveries_ready
                         WHERE state IN ('pending', 'running') AND run_at_ms <= ?1
                           AND (state = 'pending' OR lease_until_ms < ?1)
                         ORDER BY run_at_ms, id LIMIT ?2",
                    )?
                    .query_map(params![now_ms, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(
                        c.prepare_cached(&format!(
                            "UPDATE deliveries SET state = 'running', attempts = attempts + 1, lease_owner = \
                                ?2,
                                 lease_until_ms = ?3 WHERE id = ?1 RETURNING {COLUMNS}"
                        ))?
                        .query_row(params![id, owner, now_ms + lease_ms], row)?,
                    );
                }
                Ok(out)
            })
            .await
    }

    async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        finish: DeliveryFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<Vec<Intake>>> {
        let owner = owner.to_string();
        self.writer
            .write(move |ctx| {
                let held: Option<(u32, u32)> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT attempts, max_attempts FROM deliveries
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'",
                    )?
                    .query_row(params![id, owner], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((attempts, max_attempts)) = held else {
                    return Ok(None);
                };
                let now = ctx.now_ms;
                let end = |state: DeliveryState, error: Option<&str>, events: i64| -> StoreResult<()> {
                    ctx.conn
                        .prepare_cached(
                            "UPDATE deliveries SET state = ?2, last_error = ?3, events = ?4, finished_ms = ?5,
                                 lease_owner = NULL, lease_until_ms = NULL WHERE id = ?1",
                        )?
                        .execute(params![id, state, error, events, now])?;
                    Ok(())
                };
                let intake = match finish {
                    DeliveryFinish::Done { events } => {
                        let intake = intake_events(ctx, with_received_data(events))?;
                        let accepted = intake
                            .iter()
                            .filter(|i| matches!(i, Intake::Accepted { .. }))
                            .count() as i64;
                        end(DeliveryState::Done, None, accepted)?;
                        intake
                    }
                    DeliveryFinish::Rejected { reason } => {
                        end(DeliveryState::Rejected, Some(&reason), 0)?;
                        Vec::new()
                    }
                    DeliveryFinish::Dead { error } => {
                        end(DeliveryState::Dead, Some(&error), 0)?;
                        Vec::new()
                    }
                    DeliveryFinish::Retry {
                        error, charge: true, ..
                    } if attempts >= max_attempts => {
                        end(
                            DeliveryState::Dead,
                            Some(&format!(
                                "{error} (gave up after {attempts} \
                            attempts)"
                            )),
                            0,
                        )?;
                        Vec::new()
                    }
                    DeliveryFinish::Retry {
                        run_at_ms,
                        error,
                        charge,
                    } => {
                        ctx.conn
                            .prepare_cached(
                                "UPDATE deliveries SET state = 'pending', run_at_ms = ?2, last_error = ?3,
                                     lease_owner = NULL, lease_until_ms = NULL, attempts = attempts - ?4 \
                                         WHERE id = ?1",
                            )?
                            .execute(params![id, run_at_ms, error, i64::from(!charge)])?;
                        Vec::new()
                    }
                };
                ctx.audit_all(audit)?;
                Ok(Some(intake))
            })
            .await
    }

    async fn extend_delivery_leases(&self, owner: &str, ids: Vec<i64>, until_ms: i64) -> StoreResult<()> {
        let owner = owner.to_string();
        self.writer
            .write(move |ctx| {
                let mut stmt = ctx.conn.prepare_cached(
                    "UPDATE deliveries SET lease_until_ms = ?3 WHERE id = ?1 AND lease_owner = ?2 AND state \
                        = 'running'",
                )?;
                for id in ids {
                    stmt.execute(params![id, owner, until_ms])?;
                }
                Ok(())
            })
            .await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        self.read(|c| {
            let limit = if filter.limit == 0 {
                100
            } else {
                filter.limit.min(10_000)
            } as i64;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deliveries WHERE tenant = ?1 AND (?2 IS NULL OR source = ?2)
                 AND (?3 IS NULL OR state = ?3) ORDER BY id DESC LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(params![filter.tenant, filter.source, filter.state, limit], row)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    async fn replay_delivery(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<DeliveryRow> {
        let (tenant, actor) = (tenant.to_string(), actor.to_string());
        self.writer
            .write(move |ctx| {
                let replayed = ctx
                    .conn
                    .prepare_cached(&format!(
                        "UPDATE deliveries SET state = 'pending', run_at_ms = ?3, attempts = 0, finished_ms \
                            = NULL
                         WHERE tenant = ?1 AND id = ?2 AND state IN ('dead', 'rejected') RETURNING {COLUMNS}"
                    ))?
                    .query_row(params![tenant, id, ctx.now_ms], row)
                    .optional()?;
                let Some(d) = replayed else {
                    return Err(StoreError::Conflict(format!(
                        "delivery {id} is not dead or rejected (only those can be replayed)"
                    )));
                };
                ctx.audit(
                    AuditRecord::new(&tenant, AuditKind::AdminDeliveryReplayed, actor)
                        .data(serde_json::json!({ "delivery": id, "source": d.source })),
                )?;
                Ok(d)
            })
            .await
    }
}
