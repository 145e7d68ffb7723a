//! The notification queue: queued once per key with its audit, claimed with a lease by the
//! senders, ended sent, retried or dead.

use super::SqliteStore;
use super::writer::WriteCtx;
use crate::*;
use rusqlite::{OptionalExtension, Row, params};

/// Queues a notification inside a write (with its audit), unless one with its key was queued:
/// its id, or `None`.
pub(super) fn insert_notification(ctx: &mut WriteCtx<'_>, n: NewNotification) -> StoreResult<Option<i64>> {
    let recipients = serde_json::to_string(&n.recipients)?;
    let id: Option<i64> = ctx
        .conn
        .prepare_cached(
            "INSERT INTO notifications (tenant, channel, event, dedupe_key, person_key,
                 recipients, subject, body, state, max_attempts, run_at_ms, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10, ?10)
             ON CONFLICT (tenant, dedupe_key) DO NOTHING RETURNING id",
        )?
        .query_row(
            params![
                n.tenant,
                n.channel,
                n.event,
                n.dedupe_key,
                n.person_key,
                recipients,
                n.subject,
                n.body,
                n.max_attempts,
                n.now_ms
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = id {
        let audit = n
            .audit
            .into_iter()
            .map(|mut a| {
                if let serde_json::Value::Object(m) = &mut a.data {
                    m.insert("notification".into(), id.into());
                }
                a
            })
            .collect();
        ctx.audit_all(audit)?;
    }
    Ok(id)
}

const COLUMNS: &str = "id, tenant, channel, event, dedupe_key, person_key, recipients, state, attempts, \
    max_attempts, run_at_ms, last_error, created_ms, sent_ms, subject, body";

fn row(r: &Row<'_>) -> rusqlite::Result<NotificationRow> {
    let recipients: String = r.get(6)?;
    Ok(NotificationRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        channel: r.get(2)?,
        event: r.get(3)?,
        dedupe_key: r.get(4)?,
        person_key: r.get(5)?,
        recipients: serde_json::from_str(&recipients).unwrap_or_default(),
        state: r.get(7)?,
        attempts: r.get(8)?,
        max_attempts: r.get(9)?,
        run_at_ms: r.get(10)?,
        last_error: r.get(11)?,
        created_ms: r.get(12)?,
        sent_ms: r.get(13)?,
        subject: r.get(14)?,
        body: r.get(15)?,
    })
}

#[async_trait::async_trait]
impl NotificationStore for SqliteStore {
    async fn queue_notification(&self, n: NewNotification) -> StoreResult<Option<i64>> {
        self.writer.write(move |ctx| insert_notification(ctx, n)).await
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<NotificationRow>> {
        let owner = owner.to_string();
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let ids: Vec<i64> = c
                    .prepare_cached(
                        "SELECT id FROM notifications INDEXED BY notifications_ready
                         WHERE state IN ('pending', 'sending') AND run_at_ms <= ?1
                           AND (state = 'pending' OR lease_until_ms < ?1)
                         ORDER BY run_at_ms, id LIMIT ?2",
                    )?
                    .query_map(params![now_ms, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(
                        c.prepare_cached(&format!(
                            "UPDATE notifications SET state = 'sending', attempts = attempts + 1,
                                 lease_owner = ?2, lease_until_ms = ?3 WHERE id = ?1 RETURNING {COLUMNS}"
                        ))?
                        .query_row(params![id, owner, now_ms + lease_ms], row)?,
                    );
                }
                Ok(out)
            })
            .await
    }

    async fn finish_notification(
        &self,
        id: i64,
        owner: &str,
        finish: NotificationFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<bool> {
        let owner = owner.to_string();
        self.writer
            .write(move |ctx| {
                let held: Option<(u32, u32)> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT attempts, max_attempts FROM notifications
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'",
                    )?
                    .query_row(params![id, owner], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((attempts, max_attempts)) = held else {
                    return Ok(false);
                };
                let now = ctx.now_ms;
                let end = |state: NotificationState, error: Option<&str>| -> StoreResult<()> {
                    ctx.conn
                        .prepare_cached(
                            "UPDATE notifications SET state = ?2, last_error = ?3,
                                 sent_ms = CASE WHEN ?2 = 'sent' THEN ?4 END,
                                 lease_owner = NULL, lease_until_ms = NULL WHERE id = ?1",
                        )?
                        .execute(params![id, state, error, now])?;
                    Ok(())
                };
                match finish {
                    NotificationFinish::Sent => end(NotificationState::Sent, None)?,
                    NotificationFinish::Dead { error } => end(NotificationState::Dead, Some(&error))?,
                    NotificationFinish::Retry {
                        error, charge: true, ..
                    } if attempts >= max_attempts => end(
                        NotificationState::Dead,
                        Some(&format!("{error} (gave up after {attempts} attempts)")),
                    )?,
                    NotificationFinish::Retry {
                        run_at_ms,
                        error,
                        charge,
                    } => {
                        ctx.conn
                            .prepare_cached(
                                "UPDATE notifications SET state = 'pending', run_at_ms = ?2, last_error = ?3,
                                     lease_owner = NULL, lease_until_ms = NULL, attempts = attempts - ?4
                                 WHERE id = ?1",
                            )?
                            .execute(params![id, run_at_ms, error, i64::from(!charge)])?;
                    }
                }
                ctx.audit_all(audit)?;
                Ok(true)
            })
            .await
    }

    async fn notifications(&self, tenant: &str, limit: usize) -> StoreResult<Vec<NotificationRow>> {
        self.read(|c| {
            let limit = if limit == 0 { 100 } else { limit.min(10_000) } as i64;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM notifications WHERE tenant = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt
                .query_map(params![tenant, limit], row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}
