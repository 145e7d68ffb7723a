//! Webhook deliveries: stored raw (with replay and redelivery checks, decided by the
//! tables' keys across hosts) before the sender is answered, claimed with a lease by the
//! enrichment workers, and ended together with the events they produced.

use super::PgStore;
use super::events::intake_events;
use super::row::RowExt;
use super::write::PgWrite;
use crate::*;
use sqlx::postgres::PgRow;

macro_rules! columns {
    () => {
        "id, tenant, source, event, state, attempts, max_attempts, run_at_ms, last_error, events, \
         received_ms, finished_ms, headers, body"
    };
}

fn row(r: &PgRow) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.at(0)?,
        tenant: r.at(1)?,
        source: r.at(2)?,
        event: r.at(3)?,
        state: r.parsed(4)?,
        attempts: r.count(5)?,
        max_attempts: r.count(6)?,
        run_at_ms: r.at(7)?,
        last_error: r.at(8)?,
        events: r.at(9)?,
        received_ms: r.at(10)?,
        finished_ms: r.at(11)?,
        headers: r.json(12)?.unwrap_or_default(),
        body: r.at(13)?,
    })
}

/// Stores a verified delivery, unless its token or its content was seen before.
async fn store(w: &mut PgWrite, d: NewDelivery) -> StoreResult<DeliveryIntake> {
    let now = w.now_ms;
    // This source's tokens older than its delivery window can never be replayed (they are
    // stale); other sources keep theirs for their own windows.
    sqlx::query("DELETE FROM webhook_tokens WHERE tenant = $1 AND source = $2 AND seen_ms < $3")
        .bind(&d.tenant)
        .bind(&d.source)
        .bind(now - d.keep_token_ms)
        .execute(w.conn())
        .await?;
    let fresh = sqlx::query(
        "INSERT INTO webhook_tokens (tenant, source, token, seen_ms) VALUES ($1, $2, $3, $4) ON
            CONFLICT DO NOTHING",
    )
    .bind(&d.tenant)
    .bind(&d.source)
    .bind(&d.token)
    .bind(now)
    .execute(w.conn())
    .await?
    .rows_affected()
        == 1;
    let same_content: Option<(i64, String)> =
        sqlx::query_as("SELECT id, token FROM deliveries WHERE tenant = $1 AND source = $2 AND digest = $3")
            .bind(&d.tenant)
            .bind(&d.source)
            .bind(&d.digest)
            .fetch_optional(w.conn())
            .await?;
    match (fresh, same_content) {
        // The token again, with the content it came with: the sender retrying.
        (false, Some((id, token))) if token == d.token => {
            return Ok(DeliveryIntake::Duplicate { delivery_id: id });
        }
        // The token again with other content: a replay.
        (false, _) => return Ok(DeliveryIntake::Replay),
        // A new token for content already received: a redelivery.
        (true, Some((id, _))) => return redelivered(w, d, id).await,
        (true, None) => {}
    }
    let state = if d.ping {
        DeliveryState::Done
    } else {
        DeliveryState::Pending
    };
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO deliveries (tenant, source, token, digest, event, headers, body, state, max_attempts,
                                 run_at_ms, received_ms, finished_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, CASE WHEN $8 = 'done' THEN $10 END)
         ON CONFLICT (tenant, source, digest) DO NOTHING RETURNING id",
    )
    .bind(&d.tenant)
    .bind(&d.source)
    .bind(&d.token)
    .bind(&d.digest)
    .bind(&d.event)
    .bind(serde_json::to_string(&d.headers)?)
    .bind(&d.body)
    .bind(state.as_str())
    .bind(i64::from(d.max_attempts))
    .bind(now)
    .fetch_optional(w.conn())
    .await?;
    let Some(id) = id else {
        // Another host stored the same content under another token meanwhile.
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM deliveries WHERE tenant = $1 AND source = $2 AND digest = $3")
                .bind(&d.tenant)
                .bind(&d.source)
                .bind(&d.digest)
                .fetch_one(w.conn())
                .await?;
        return redelivered(w, d, id).await;
    };
    for mut a in d.audit {
        if let serde_json::Value::Object(m) = &mut a.data {
            m.insert("delivery".into(), id.into());
        }
        w.audit(a);
    }
    if !d.ping {
        w.note(Change::Deliveries);
    }
    Ok(DeliveryIntake::Stored { delivery_id: id })
}

/// Content already received, under a new token: audited as a redelivery.
async fn redelivered(w: &mut PgWrite, d: NewDelivery, id: i64) -> StoreResult<DeliveryIntake> {
    for mut a in d.audit {
        a.kind = AuditKind::WebhookRedelivered;
        w.audit(a);
    }
    Ok(DeliveryIntake::Duplicate { delivery_id: id })
}

#[async_trait::async_trait]
impl DeliveryStore for PgStore {
    async fn store_delivery(&self, delivery: NewDelivery) -> StoreResult<DeliveryIntake> {
        let mut w = self.begin().await?;
        let intake = store(&mut w, delivery).await?;
        w.commit().await?;
        Ok(intake)
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let mut rows = sqlx::query(concat!(
            "UPDATE deliveries SET state = 'running', attempts = attempts + 1, lease_owner = $3,
                 lease_until_ms = $4
             WHERE id IN (SELECT id FROM deliveries
                          WHERE state IN ('pending', 'running') AND run_at_ms <= $1
                            AND (state = 'pending' OR lease_until_ms < $1)
                          ORDER BY run_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING ",
            columns!()
        ))
        .bind(now_ms)
        .bind(limit as i64)
        .bind(owner)
        .bind(now_ms + lease_ms)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(row)
        .collect::<StoreResult<Vec<_>>>()?;
        rows.sort_by_key(|d| (d.run_at_ms, d.id));
        Ok(rows)
    }

    async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        finish: DeliveryFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<Vec<Intake>>> {
        let mut w = self.begin().await?;
        let held: Option<(i64, i64)> = sqlx::query_as(
            "SELECT attempts, max_attempts FROM deliveries
             WHERE id = $1 AND lease_owner = $2 AND state = 'running' FOR UPDATE",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(w.conn())
        .await?;
        let Some((attempts, max_attempts)) = held else {
            return Ok(None);
        };
        let (end, intake) = match finish {
            DeliveryFinish::Done { events } => {
                let intake = intake_events(&mut w, events).await?;
                let accepted = intake
                    .iter()
                    .filter(|i| matches!(i, Intake::Accepted { .. }))
                    .count() as i64;
                (Some((DeliveryState::Done, None, accepted)), intake)
            }
            DeliveryFinish::Rejected { reason } => {
                (Some((DeliveryState::Rejected, Some(reason), 0)), Vec::new())
            }
            DeliveryFinish::Dead { error } => (Some((DeliveryState::Dead, Some(error), 0)), Vec::new()),
            DeliveryFinish::Retry {
                error, charge: true, ..
            } if attempts >= max_attempts => (
                Some((
                    DeliveryState::Dead,
                    Some(format!("{error} (gave up after {attempts} attempts)")),
                    0,
                )),
                Vec::new(),
            ),
            DeliveryFinish::Retry {
                run_at_ms,
                error,
                charge,
            } => {
                sqlx::query(
                    "UPDATE deliveries SET state = 'pending', run_at_ms = $2, last_error = $3,
                         lease_owner = NULL, lease_until_ms = NULL, attempts = attempts - $4 WHERE id = $1",
                )
                .bind(id)
                .bind(run_at_ms)
                .bind(error)
                .bind(i64::from(!charge))
                .execute(w.conn())
                .await?;
                (None, Vec::new())
            }
        };
        if let Some((state, error, events)) = end {
            let now = w.now_ms;
            sqlx::query(
                "UPDATE deliveries SET state = $2, last_error = $3, events = $4, finished_ms = $5,
                     lease_owner = NULL, lease_until_ms = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(state.as_str())
            .bind(error)
            .bind(events)
            .bind(now)
            .execute(w.conn())
            .await?;
        }
        w.audit_all(audit);
        w.commit().await?;
        Ok(Some(intake))
    }

    async fn extend_delivery_leases(&self, owner: &str, ids: Vec<i64>, until_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET lease_until_ms = $3 WHERE id = ANY($1) AND lease_owner = $2 AND
                state = 'running'",
        )
        .bind(&ids)
        .bind(owner)
        .bind(until_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        let limit = if filter.limit == 0 {
            100
        } else {
            filter.limit.min(10_000)
        } as i64;
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM deliveries WHERE tenant = $1 AND ($2::text IS NULL OR source = $2)
                 AND ($3::text IS NULL OR state = $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(&filter.tenant)
        .bind(&filter.source)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(row)
        .collect()
    }

    async fn replay_delivery(&self, tenant: &str, id: i64, actor: &str) -> StoreResult<DeliveryRow> {
        let mut w = self.begin().await?;
        let now = w.now_ms;
        let replayed = sqlx::query(concat!(
            "UPDATE deliveries SET state = 'pending', run_at_ms = $3, attempts = 0, finished_ms = NULL
             WHERE tenant = $1 AND id = $2 AND state IN ('dead', 'rejected') RETURNING ",
            columns!()
        ))
        .bind(tenant)
        .bind(id)
        .bind(now)
        .fetch_optional(w.conn())
        .await?;
        let Some(d) = replayed else {
            return Err(StoreError::Conflict(format!(
                "delivery {id} is not dead or rejected (only those can be replayed)"
            )));
        };
        let d = row(&d)?;
        w.note(Change::Deliveries);
        w.audit(
            AuditRecord::new(tenant, AuditKind::AdminDeliveryReplayed, actor)
                .data(serde_json::json!({ "delivery": id, "source": d.source })),
        );
        w.commit().await?;
        Ok(d)
    }
}
