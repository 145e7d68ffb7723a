//! The notification queue: queued once per key with its audit, claimed with a lease by the
//! senders of any host (`FOR UPDATE SKIP LOCKED`), ended sent, retried or dead.

use super::PgStore;
use super::row::RowExt;
use super::write::PgWrite;
use crate::*;
use sqlx::postgres::PgRow;

/// Queues a notification inside a write (with its audit), unless one with its key was queued:
/// its id, or `None`.
pub(super) async fn insert_notification(w: &mut PgWrite, n: NewNotification) -> StoreResult<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notifications (tenant, channel, event, dedupe_key, person_key, recipients, subject, body,
             state, max_attempts, run_at_ms, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10)
         ON CONFLICT (tenant, dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(&n.tenant)
    .bind(&n.channel)
    .bind(&n.event)
    .bind(&n.dedupe_key)
    .bind(&n.person_key)
    .bind(serde_json::to_string(&n.recipients)?)
    .bind(&n.subject)
    .bind(&n.body)
    .bind(i64::from(n.max_attempts))
    .bind(n.now_ms)
    .fetch_optional(w.conn())
    .await?;
    if let Some(id) = id {
        for mut a in n.audit {
            if let serde_json::Value::Object(m) = &mut a.data {
                m.insert("notification".into(), id.into());
            }
            w.audit(a);
        }
    }
    Ok(id)
}

macro_rules! columns {
    () => {
        "id, tenant, channel, event, dedupe_key, person_key, recipients, state, attempts, max_attempts, \
         run_at_ms, last_error, created_ms, sent_ms, subject, body"
    };
}

fn row(r: &PgRow) -> StoreResult<NotificationRow> {
    Ok(NotificationRow {
        id: r.at(0)?,
        tenant: r.at(1)?,
        channel: r.at(2)?,
        event: r.at(3)?,
        dedupe_key: r.at(4)?,
        person_key: r.at(5)?,
        recipients: r.json(6)?.unwrap_or_default(),
        state: r.parsed(7)?,
        attempts: r.count(8)?,
        max_attempts: r.count(9)?,
        run_at_ms: r.at(10)?,
        last_error: r.at(11)?,
        created_ms: r.at(12)?,
        sent_ms: r.at(13)?,
        subject: r.at(14)?,
        body: r.at(15)?,
    })
}

#[async_trait::async_trait]
impl NotificationStore for PgStore {
    async fn queue_notification(&self, n: NewNotification) -> StoreResult<Option<i64>> {
        let mut w = self.begin().await?;
        let id = insert_notification(&mut w, n).await?;
        w.commit().await?;
        Ok(id)
    }

    async fn claim_notifications(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<NotificationRow>> {
        let mut rows = sqlx::query(concat!(
            "UPDATE notifications SET state = 'sending', attempts = attempts + 1, lease_owner = $3,
                 lease_until_ms = $4
             WHERE id IN (SELECT id FROM notifications
                          WHERE state IN ('pending', 'sending') AND run_at_ms <= $1
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
        rows.sort_by_key(|n| (n.run_at_ms, n.id));
        Ok(rows)
    }

    async fn finish_notification(
        &self,
        id: i64,
        owner: &str,
        finish: NotificationFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<bool> {
        let mut w = self.begin().await?;
        let held: Option<(i64, i64)> = sqlx::query_as(
            "SELECT attempts, max_attempts FROM notifications
             WHERE id = $1 AND lease_owner = $2 AND state = 'sending' FOR UPDATE",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(w.conn())
        .await?;
        let Some((attempts, max_attempts)) = held else {
            return Ok(false);
        };
        let now = w.now_ms;
        let (state, error) = match finish {
            NotificationFinish::Sent => (NotificationState::Sent, None),
            NotificationFinish::Dead { error } => (NotificationState::Dead, Some(error)),
            NotificationFinish::Retry {
                error, charge: true, ..
            } if attempts >= max_attempts => (
                NotificationState::Dead,
                Some(format!("{error} (gave up after {attempts} attempts)")),
            ),
            NotificationFinish::Retry {
                run_at_ms,
                error,
                charge,
            } => {
                sqlx::query(
                    "UPDATE notifications SET state = 'pending', run_at_ms = $2, last_error = $3,
                         lease_owner = NULL, lease_until_ms = NULL, attempts = attempts - $4 WHERE id = $1",
                )
                .bind(id)
                .bind(run_at_ms)
                .bind(error)
                .bind(i64::from(!charge))
                .execute(w.conn())
                .await?;
                w.audit_all(audit);
                w.commit().await?;
                return Ok(true);
            }
        };
        sqlx::query(
            "UPDATE notifications SET state = $2, last_error = $3,
                 sent_ms = CASE WHEN $2 = 'sent' THEN $4 END,
                 lease_owner = NULL, lease_until_ms = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(error)
        .bind(now)
        .execute(w.conn())
        .await?;
        w.audit_all(audit);
        w.commit().await?;
        Ok(true)
    }

    async fn notifications(&self, tenant: &str, limit: usize) -> StoreResult<Vec<NotificationRow>> {
        let limit = if limit == 0 { 100 } else { limit.min(10_000) } as i64;
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM notifications WHERE tenant = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(tenant)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(row)
        .collect()
    }
}
