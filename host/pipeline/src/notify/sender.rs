//! Sends queued notifications: claims the due ones with a lease, keeps each channel under its
//! rate (a message that would exceed it waits without spending an attempt, as does one the
//! channel answered 429), retries transient failures with backoff, and ends the rest sent or
//! dead, each audited without its body.

use crate::audit_events::{self as ev, AuditEvent};
use crate::{Pipeline, backoff_ms};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_capabilities::notify::{Message, Notifier, SendError};
use tenure_store::{AuditRecord, NotificationFinish, NotificationRow};

/// How long a claimed notification is held before another sender may take it.
const LEASE_MS: i64 = 120_000;
/// Notifications claimed at once.
const BATCH: usize = 16;
/// How often the queue is looked at when nothing woke the sender.
const IDLE: Duration = Duration::from_secs(1);

/// The sender's loop; runs until the task is aborted.
pub(crate) async fn run(p: Arc<Pipeline>) {
    if p.config
        .tenants
        .values()
        .all(|t| t.notifications.rules.is_empty())
    {
        return;
    }
    let notifier = match Notifier::new() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "notifications cannot be sent");
            return;
        }
    };
    // When each channel may send next, by (tenant, channel).
    let mut next_send: HashMap<(String, String), Instant> = HashMap::new();
    loop {
        let claimed = match p
            .store
            .claim_notifications(&p.owner, p.now(), LEASE_MS, BATCH)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim notifications");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            let _ = tokio::time::timeout(IDLE, p.notifications_waiting.notified()).await;
            continue;
        }
        for n in claimed {
            let (finish, audit) = attempt(&p, &notifier, &mut next_send, &n).await;
            if let Err(e) = p.store.finish_notification(n.id, &p.owner, finish, audit).await {
                tracing::error!(error = %e, notification = n.id, "cannot record a notification's attempt");
            }
        }
    }
}

async fn attempt(
    p: &Pipeline,
    notifier: &Notifier,
    next_send: &mut HashMap<(String, String), Instant>,
    n: &NotificationRow,
) -> (NotificationFinish, Vec<AuditRecord>) {
    let record = |r: AuditRecord| match &n.person_key {
        Some(person) => r.person(person),
        None => r,
    };
    let dead = |error: String| {
        let audit = ev::NotificationDead {
            notification: n.id,
            channel: &n.channel,
            attempt: n.attempts,
            error: &error,
        }
        .record(&n.tenant, "system");
        (NotificationFinish::Dead { error }, vec![record(audit)])
    };
    let Some(channel) = p
        .config
        .tenants
        .get(&n.tenant)
        .and_then(|t| t.notifications.channels.get(&n.channel))
    else {
        return dead(format!(
            "config: channel {:?} is not configured any more",
            n.channel
        ));
    };
    let key = (n.tenant.clone(), n.channel.clone());
    let now = Instant::now();
    if let Some(at) = next_send.get(&key).filter(|at| **at > now) {
        // The channel's own rate: wait without spending an attempt.
        let wait = at.duration_since(now);
        return (
            NotificationFinish::Retry {
                run_at_ms: p.now() + wait.as_millis() as i64,
                error: "waiting for the channel's rate limit".into(),
                charge: false,
            },
            vec![],
        );
    }
    next_send.insert(key.clone(), now + Duration::from_secs(60) / channel.per_minute());
    let message = Message {
        id: format!("n{}-{}", n.id, n.tenant),
        to: n.recipients.clone(),
        subject: n.subject.clone(),
        body: n.body.clone(),
    };
    let event = n.event.as_str();
    match notifier.send(channel, &message).await {
        Ok(summary) => {
            tracing::info!(tenant = %n.tenant, channel = %n.channel, event, "notification sent");
            let audit = ev::NotificationSent {
                notification: n.id,
                channel: &n.channel,
                attempt: n.attempts,
                summary: &summary,
            }
            .record(&n.tenant, "system");
            (NotificationFinish::Sent, vec![record(audit)])
        }
        Err(SendError::Permanent(error)) => dead(error),
        Err(e) => {
            let (run_at_ms, charge) = match &e {
                SendError::RateLimited { wait, .. } => {
                    next_send.insert(key, now + *wait);
                    (p.now() + wait.as_millis() as i64, false)
                }
                _ => (
                    p.now() + backoff_ms(&p.config.queue, n.attempts, None) as i64,
                    true,
                ),
            };
            let error = e.to_string();
            if charge && n.attempts >= n.max_attempts {
                return dead(format!("{error} (gave up after {} attempts)", n.attempts));
            }
            tracing::warn!(tenant = %n.tenant, channel = %n.channel, event, %error, "notification not sent");
            let audit = ev::NotificationFailed {
                notification: n.id,
                channel: &n.channel,
                attempt: n.attempts,
                error: &error,
                retry_at_ms: run_at_ms,
            }
            .record(&n.tenant, "system");
            (
                NotificationFinish::Retry {
                    run_at_ms,
                    error,
                    charge,
                },
                vec![record(audit)],
            )
        }
    }
}
