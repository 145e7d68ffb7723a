//! The notification queue.

use super::{audited, claim, event, intake, now};
use crate::*;
use std::sync::Arc;

fn notification(key: &str) -> NewNotification {
    NewNotification {
        tenant: "t".into(),
        channel: "it-email".into(),
        event: "account-ready".into(),
        dedupe_key: key.into(),
        person_key: Some("hr:1".into()),
        recipients: vec!["manager@example.test".into()],
        subject: "Accounts ready".into(),
        body: "Ada's accounts are ready.".into(),
        max_attempts: 2,
        now_ms: now(),
        audit: vec![
            AuditRecord::new("t", AuditKind::NotificationQueued, "system")
                .data(serde_json::json!({ "channel": "it-email" })),
        ],
    }
}

pub async fn notifications_are_queued_once_per_key(store: Arc<dyn Store>) {
    let id = store
        .queue_notification(notification("account-ready:hr:1:1"))
        .await
        .unwrap()
        .expect("queued");
    assert_eq!(
        store
            .queue_notification(notification("account-ready:hr:1:1"))
            .await
            .unwrap(),
        None,
        "the same key again queues nothing"
    );
    let queued = audited(&store, AuditKind::NotificationQueued).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].record.data["notification"].as_i64(), Some(id));
    let rows = store.notifications("t", 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].state,
            rows[0].recipients.as_slice(),
            rows[0].body.as_str()
        ),
        (
            NotificationState::Pending,
            &["manager@example.test".to_string()][..],
            "Ada's accounts are ready."
        )
    );
    assert!(store.notifications("other", 10).await.unwrap().is_empty());
}

/// A job's notifications are queued with its end or not at all: a stale attempt queues none,
/// and the end that is written queues them (once per key) with the job's state.
pub async fn notifications_go_with_the_jobs_end(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let job = claim(&store, "w").await.remove(0);
    let end = |key: &str| (Finish::Completed, vec![notification(key), notification(key)]);
    let (finish, notes) = end("account-ready:hr:1:1");
    let stale = store
        .finish(&job.lease("other"), finish, vec![], vec![], None, notes)
        .await
        .unwrap();
    assert!(!stale, "another owner's end is refused");
    assert!(
        store.notifications("t", 10).await.unwrap().is_empty(),
        "and queues nothing"
    );
    let (finish, notes) = end("account-ready:hr:1:1");
    let ended = store
        .finish(&job.lease("w"), finish, vec![], vec![], None, notes)
        .await
        .unwrap();
    assert!(ended);
    let rows = store.notifications("t", 10).await.unwrap();
    assert_eq!(rows.len(), 1, "once per key: {rows:?}");
    assert_eq!(audited(&store, AuditKind::NotificationQueued).await.len(), 1);
}

pub async fn notifications_are_leased_retried_and_end_sent_or_dead(store: Arc<dyn Store>) {
    let a = store
        .queue_notification(notification("a"))
        .await
        .unwrap()
        .unwrap();
    let b = store
        .queue_notification(notification("b"))
        .await
        .unwrap()
        .unwrap();
    let t = now();
    let claimed = store.claim_notifications("w1", t, 60_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|n| n.id).collect::<Vec<_>>(), [a, b]);
    assert!(
        store
            .claim_notifications("w2", t, 60_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // Only the lease holder ends an attempt.
    assert!(
        !store
            .finish_notification(a, "w2", NotificationFinish::Sent, vec![])
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_notification(a, "w1", NotificationFinish::Sent, vec![])
            .await
            .unwrap()
    );
    // An uncharged retry (the channel's rate limit) gives the attempt back.
    let retry = |charge| NotificationFinish::Retry {
        run_at_ms: t,
        error: "429".into(),
        charge,
    };
    assert!(
        store
            .finish_notification(b, "w1", retry(false), vec![])
            .await
            .unwrap()
    );
    let again = store.claim_notifications("w1", t, 60_000, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    assert!(
        store
            .finish_notification(b, "w1", retry(true), vec![])
            .await
            .unwrap()
    );
    let last = store.claim_notifications("w1", t, 60_000, 10).await.unwrap();
    assert_eq!(last[0].attempts, 2);
    let audit =
        vec![AuditRecord::new("t", AuditKind::NotificationDead, "system").data(serde_json::json!({}))];
    assert!(
        store
            .finish_notification(b, "w1", retry(true), audit)
            .await
            .unwrap()
    );
    let rows = store.notifications("t", 10).await.unwrap();
    let state = |id| {
        rows.iter()
            .find(|n| n.id == id)
            .map(|n| (n.state, n.sent_ms.is_some()))
    };
    assert_eq!(state(a), Some((NotificationState::Sent, true)));
    assert_eq!(state(b), Some((NotificationState::Dead, false)));
    assert!(rows.iter().any(|n| {
        n.last_error
            .as_deref()
            .is_some_and(|e| e.contains("gave up after 2"))
    }));
    assert_eq!(audited(&store, AuditKind::NotificationDead).await.len(), 1);
    // An expired lease goes to another sender.
    let c = store
        .queue_notification(notification("c"))
        .await
        .unwrap()
        .unwrap();
    // Claimed from the time it was queued (under load, well after `t`).
    let t = now();
    store.claim_notifications("w1", t, 1, 10).await.unwrap();
    let taken = store.claim_notifications("w2", t + 10, 60_000, 10).await.unwrap();
    assert_eq!(taken.iter().map(|n| n.id).collect::<Vec<_>>(), [c]);
    assert!(
        !store
            .finish_notification(c, "w1", NotificationFinish::Sent, vec![])
            .await
            .unwrap()
    );
}
