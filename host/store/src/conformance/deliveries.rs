//! Webhook deliveries.

use super::{audited, event, now};
use crate::*;
use std::sync::Arc;

fn delivery(token: &str, digest: &str) -> NewDelivery {
    NewDelivery {
        tenant: "t".into(),
        source: "lever".into(),
        token: token.into(),
        digest: digest.into(),
        event: "candidateHired".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: format!("{{\"d\":\"{digest}\"}}").into_bytes(),
        keep_token_ms: 3_600_000,
        ping: false,
        max_attempts: 3,
        audit: vec![
            AuditRecord::new("t", AuditKind::WebhookReceived, "source:lever").data(serde_json::json!({})),
        ],
    }
}

pub async fn deliveries_are_deduplicated_by_token_and_content(store: Arc<dyn Store>) {
    let first = store.store_delivery(delivery("tok-1", "d1")).await.unwrap();
    let DeliveryIntake::Stored { delivery_id } = first else {
        panic!("{first:?}")
    };
    // The sender retrying: the same token and content.
    assert_eq!(
        store.store_delivery(delivery("tok-1", "d1")).await.unwrap(),
        DeliveryIntake::Duplicate { delivery_id }
    );
    // The token again with other content: a replay.
    assert_eq!(
        store.store_delivery(delivery("tok-1", "d2")).await.unwrap(),
        DeliveryIntake::Replay
    );
    // Other token, same content: a redelivery, audited as such.
    assert_eq!(
        store.store_delivery(delivery("tok-2", "d1")).await.unwrap(),
        DeliveryIntake::Duplicate { delivery_id }
    );
    assert_eq!(audited(&store, AuditKind::WebhookRedelivered).await.len(), 1);
    let received = audited(&store, AuditKind::WebhookReceived).await;
    assert_eq!(
        (received.len(), received[0].record.data["delivery"].as_i64()),
        (1, Some(delivery_id))
    );
    // A ping is stored as done: nothing to enrich.
    let mut ping = delivery("tok-3", "d3");
    ping.ping = true;
    store.store_delivery(ping).await.unwrap();
    let rows = store
        .deliveries(DeliveryFilter {
            tenant: "t".into(),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    let states: Vec<DeliveryState> = rows.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [DeliveryState::Done, DeliveryState::Pending],
        "newest first"
    );
    assert_eq!(rows[1].body, b"{\"d\":\"d1\"}");
    assert_eq!(rows[1].headers[0].0, "content-type");
}

pub async fn deliveries_are_leased_and_end_with_their_events(store: Arc<dyn Store>) {
    for (token, digest) in [("a", "da"), ("b", "db")] {
        store.store_delivery(delivery(token, digest)).await.unwrap();
    }
    let t = now();
    let claimed = store.claim_deliveries("w", t, 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed
            .iter()
            .all(|d| d.state == DeliveryState::Running && d.attempts == 1)
    );
    assert!(
        store
            .claim_deliveries("w2", t, 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    store
        .extend_delivery_leases("w", vec![claimed[0].id], t + 60_000)
        .await
        .unwrap();
    // The second's lease expires: another worker takes it; the first worker's end is refused.
    let taken = store.claim_deliveries("w2", t + 5_000, 60_000, 10).await.unwrap();
    assert_eq!(taken.iter().map(|d| d.id).collect::<Vec<_>>(), [claimed[1].id]);
    let stale = store
        .finish_delivery(
            claimed[1].id,
            "w",
            DeliveryFinish::Rejected { reason: "x".into() },
            vec![],
        )
        .await
        .unwrap();
    assert!(stale.is_none());
    // Done: its events are stored in the same write.
    let done = DeliveryFinish::Done {
        events: vec![event("hire-1", "lever:1")],
    };
    let intake = store
        .finish_delivery(claimed[0].id, "w", done, vec![])
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(intake[..], [Intake::Accepted { .. }]));
    assert_eq!(store.person_keys("t", None, 10).await.unwrap().len(), 1);
    // Attempts exhausted: dead; a replay makes it pending again.
    let retry = DeliveryFinish::Retry {
        run_at_ms: 0,
        error: "lever 500".into(),
        charge: true,
    };
    store
        .finish_delivery(taken[0].id, "w2", retry.clone(), vec![])
        .await
        .unwrap()
        .unwrap();
    let again = store.claim_deliveries("w2", now(), 60_000, 10).await.unwrap();
    assert_eq!(again[0].attempts, 3, "two leases and this one");
    store
        .finish_delivery(again[0].id, "w2", retry, vec![])
        .await
        .unwrap()
        .unwrap();
    let dead = store
        .deliveries(DeliveryFilter {
            tenant: "t".into(),
            state: Some(DeliveryState::Dead),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("gave up"),
        "{dead:?}"
    );
    assert_eq!(dead[0].events, 0);
    let replayed = store.replay_delivery("t", dead[0].id, "it").await.unwrap();
    assert_eq!((replayed.state, replayed.attempts), (DeliveryState::Pending, 0));
    assert!(matches!(
        store.replay_delivery("t", dead[0].id, "it").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(audited(&store, AuditKind::AdminDeliveryReplayed).await.len(), 1);
}

pub async fn each_source_keeps_its_replay_tokens_for_its_own_window(store: Arc<dyn Store>) {
    // Lever keeps its tokens an hour; another source's short window must not prune them.
    store.store_delivery(delivery("lever-tok", "l1")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut other = delivery("other-tok", "o1");
    other.source = "other".into();
    other.keep_token_ms = 1;
    store.store_delivery(other).await.unwrap();
    assert_eq!(
        store.store_delivery(delivery("lever-tok", "l2")).await.unwrap(),
        DeliveryIntake::Replay,
        "a replay of Lever's token within Lever's window"
    );
}
