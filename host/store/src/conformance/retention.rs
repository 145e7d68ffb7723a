//! Retention of finished operational rows.

use super::{claim, event, intake, now};
use crate::*;
use std::sync::Arc;

pub async fn finished_operational_rows_are_pruned_and_open_work_stays(store: Arc<dyn Store>) {
    let t = now();
    // Deliveries: a ping is stored done; a real one waits for enrichment.
    let delivery = |token: &str, ping: bool| NewDelivery {
        tenant: "t".into(),
        source: "lever".into(),
        token: token.into(),
        digest: token.into(),
        event: "candidateHired".into(),
        headers: vec![],
        body: b"{}".to_vec(),
        keep_token_ms: 3_600_000,
        ping,
        max_attempts: 3,
        audit: vec![],
    };
    store.store_delivery(delivery("ping", true)).await.unwrap();
    store.store_delivery(delivery("hire", false)).await.unwrap();
    // Actions: one done, one still pending.
    let action = |destination: &str, due_ms: i64| NewScheduledAction {
        tenant: "t".into(),
        person_key: "p1".into(),
        destination: destination.into(),
        action: ActionKind::Delete,
        due_ms,
        reason: "test".into(),
        now_ms: t,
    };
    store.schedule_action(action("ad", t)).await.unwrap();
    store
        .schedule_action(action("scim", t + 86_400_000))
        .await
        .unwrap();
    let due = store.take_due_actions(t, 10).await.unwrap();
    store
        .finish_action(due[0].id, ActionState::Done, "deleted", t)
        .await
        .unwrap();
    // Notifications: one sent, one still to send.
    let notification = |key: &str| NewNotification {
        tenant: "t".into(),
        channel: "mail".into(),
        event: "account-ready".into(),
        dedupe_key: key.into(),
        person_key: None,
        recipients: vec![],
        subject: "s".into(),
        body: "b".into(),
        max_attempts: 3,
        now_ms: t,
        audit: vec![],
    };
    let sent = store
        .queue_notification(notification("sent"))
        .await
        .unwrap()
        .unwrap();
    store.claim_notifications("w", t, 60_000, 1).await.unwrap();
    store
        .finish_notification(sent, "w", NotificationFinish::Sent, vec![])
        .await
        .unwrap();
    store.queue_notification(notification("waiting")).await.unwrap();
    // A guard admission.
    intake(&store, vec![event("e1", "p1")]).await;
    let job = claim(&store, "w").await.remove(0);
    store
        .guard_admit(GuardRequest {
            tenant: "t".into(),
            destination: "ad".into(),
            job_id: job.id,
            now_ms: t,
            window_ms: 3_600_000,
            max_accounts: Some(10),
            max_percent: None,
            min_population: 0,
            alert: AuditRecord::new("t", AuditKind::GuardTripped, "system"),
        })
        .await
        .unwrap();
    // A session that ended at `t`, and another person's still live.
    for (id, login, expires_ms) in [(1u8, "ada", t), (2, "bob", i64::MAX)] {
        let session = NewSession {
            tenant: "t".into(),
            login: login.into(),
            digest: [id; 32],
            csrf_digest: [id; 32],
            expires_ms,
        };
        store.sign_in_succeeded(session, vec![]).await.unwrap();
    }
    // Leases: one that ran out long ago (its host died), one still held.
    assert!(
        store
            .hold_lease("host:dead", "dead", t - 10_000, t - 5_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .hold_lease("host:alive", "alive", t, t + 3_600_000)
            .await
            .unwrap()
    );
    let audit_before = store.audit(AuditFilter::default()).await.unwrap().len();

    // Nothing finished before an earlier cutoff.
    assert_eq!(
        store.prune_finished(t - 60_000, 10).await.unwrap(),
        Pruned::default()
    );
    // One row of each kind at a time, then nothing left.
    let later = t + 60_000;
    let first = store.prune_finished(later, 1).await.unwrap();
    assert_eq!(
        first,
        Pruned {
            deliveries: 1,
            actions: 1,
            admissions: 1,
            notifications: 1,
            sessions: 1,
            leases: 1
        }
    );
    assert_eq!(store.prune_finished(later, 10).await.unwrap().total(), 0);

    let deliveries = store
        .deliveries(DeliveryFilter {
            tenant: "t".into(),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1, "the delivery still to enrich stays");
    assert_eq!(deliveries[0].state, DeliveryState::Pending);
    let actions = store.scheduled_actions("t", false).await.unwrap();
    assert_eq!(actions.len(), 1, "the pending action stays");
    assert_eq!(actions[0].state, ActionState::Pending);
    let notifications = store.notifications("t", 10).await.unwrap();
    assert_eq!(notifications.len(), 1, "the notification still to send stays");
    assert_eq!(notifications[0].state, NotificationState::Pending);
    assert_eq!(
        store.live_leases("host:", t).await.unwrap(),
        1,
        "the held lease stays"
    );
    assert!(
        !store
            .hold_lease("host:alive", "other", t, t + 1_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store.audit(AuditFilter::default()).await.unwrap().len(),
        audit_before,
        "the audit is never pruned"
    );
    assert!(
        store.event("t", job.event.id).await.unwrap().is_some(),
        "events stay"
    );
}
