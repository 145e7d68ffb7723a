//! Secrets, plugin key-value data and health.

use super::{claim, event, intake};
use crate::*;
use std::sync::Arc;

pub async fn secrets_round_trip_and_a_taken_secret_is_gone(store: Arc<dyn Store>) {
    assert!(store.secret("lever").await.unwrap().is_none());
    store.put_secret("lever", "s3cret").await.unwrap();
    assert_eq!(store.secret("lever").await.unwrap().as_deref(), Some("s3cret"));
    store.put_secret("lever", "rotated").await.unwrap();
    assert_eq!(store.secret("lever").await.unwrap().as_deref(), Some("rotated"));
    store.put_secret("initial-password:t:CN=a", "pw!").await.unwrap();
    let revealed = || {
        vec![AuditRecord::new(
            "t",
            AuditKind::AdminInitialPasswordRevealed,
            "it",
        )]
    };
    assert_eq!(
        store
            .take_secret("initial-password:t:CN=a", revealed())
            .await
            .unwrap()
            .as_deref(),
        Some("pw!")
    );
    // Gone, and the second attempt leaves no audit entry of a reveal that did not happen.
    assert!(
        store
            .take_secret("initial-password:t:CN=a", revealed())
            .await
            .unwrap()
            .is_none()
    );
    let reveals = store
        .audit(AuditFilter::default())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.record.kind == AuditKind::AdminInitialPasswordRevealed)
        .count();
    assert_eq!(reveals, 1);
    assert!(store.secret("initial-password:t:CN=a").await.unwrap().is_none());
}

pub async fn key_value_data_keeps_namespaces_apart(store: Arc<dyn Store>) {
    let kv = store.kv();
    let ns = |tenant: &str, plugin: &str| tenure_capabilities::KvNamespace {
        tenant: tenant.into(),
        plugin: plugin.into(),
    };
    let (a, b, c) = (ns("a", "p"), ns("b", "p"), ns("a", "q"));
    kv.set(&a, "user/1", b"x").await.unwrap();
    kv.set(&a, "user/2", b"y").await.unwrap();
    kv.set(&a, "other", b"z").await.unwrap();
    assert_eq!(kv.get(&a, "user/1").await.unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(kv.get(&b, "user/1").await.unwrap(), None, "per tenant");
    assert_eq!(kv.get(&c, "user/1").await.unwrap(), None, "per plugin");
    assert_eq!(kv.list_keys(&a, "user/").await.unwrap(), ["user/1", "user/2"]);
    kv.set(&a, "user/1", b"x2").await.unwrap();
    assert_eq!(kv.get(&a, "user/1").await.unwrap().as_deref(), Some(&b"x2"[..]));
    kv.remove(&a, "user/1").await.unwrap();
    assert_eq!(kv.get(&a, "user/1").await.unwrap(), None);
}

/// A call's write of a key it read goes in only if the key still holds what it read: of two calls
/// that read a counter and write it back, one succeeds and the other is told, with nothing written.
pub async fn a_write_of_a_key_changed_since_it_was_read_is_refused(store: Arc<dyn Store>) {
    let kv = store.kv();
    let ns = tenure_capabilities::KvNamespace {
        tenant: "t".into(),
        plugin: "p".into(),
    };
    let quota = tenure_capabilities::KvQuota::default();
    let write = |v: &str| vec![("seq".to_string(), Some(v.as_bytes().to_vec()))];
    // Both read "seq" as absent; the first write wins.
    kv.apply_checked(&ns, vec![("seq".into(), None)], write("1"), quota)
        .await
        .unwrap();
    let lost = kv
        .apply_checked(
            &ns,
            vec![("seq".into(), None)],
            [write("1"), vec![("account/1".into(), Some(b"b".to_vec()))]].concat(),
            quota,
        )
        .await;
    assert_eq!(lost, Err(tenure_capabilities::KvError::Changed("seq".into())));
    assert_eq!(
        kv.get(&ns, "account/1").await.unwrap(),
        None,
        "nothing of it was written"
    );
    // Read again, it goes in.
    kv.apply_checked(&ns, vec![("seq".into(), Some(b"1".to_vec()))], write("2"), quota)
        .await
        .unwrap();
    assert_eq!(kv.get(&ns, "seq").await.unwrap().as_deref(), Some(&b"2"[..]));
}

/// A namespace never holds more than its quota, however many writes race for the last room:
/// exactly as many single-key writes as the quota allows go in, the next is refused, and a key
/// removed makes room for one more. Then a batch that would overflow it at once is refused whole.
pub async fn concurrent_writes_never_carry_a_namespace_past_its_quota(store: Arc<dyn Store>) {
    let kv = store.kv();
    let ns = tenure_capabilities::KvNamespace {
        tenant: "t".into(),
        plugin: "quota".into(),
    };
    let quota = tenure_capabilities::KvQuota {
        keys: 200,
        bytes: 1 << 20,
    };
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..40 {
        let (kv, ns) = (kv.clone(), ns.clone());
        writers.spawn(async move {
            let mut stored = 0;
            for n in 0..8 {
                let write = vec![(format!("k/{writer}/{n}"), Some(b"v".to_vec()))];
                match kv.apply_checked(&ns, Vec::new(), write, quota).await {
                    Ok(()) => stored += 1,
                    Err(tenure_capabilities::KvError::TooLarge(_)) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            stored
        });
    }
    let mut stored = 0;
    while let Some(n) = writers.join_next().await {
        stored += n.unwrap();
    }
    assert_eq!(stored, 200, "of 320 writes, as many as the quota holds");
    let one_more = vec![("k/extra".to_string(), Some(b"v".to_vec()))];
    assert!(matches!(
        kv.apply_checked(&ns, Vec::new(), one_more.clone(), quota).await,
        Err(tenure_capabilities::KvError::TooLarge(_))
    ));
    let first = kv.list_keys(&ns, "k/").await.unwrap()[0].clone();
    kv.remove(&ns, &first).await.unwrap();
    kv.apply_checked(&ns, Vec::new(), one_more, quota).await.unwrap();
    // A roomy namespace refuses a batch that would overflow it, and keeps nothing of it.
    let roomy = tenure_capabilities::KvNamespace {
        tenant: "t".into(),
        plugin: "roomy".into(),
    };
    let batch: Vec<_> = (0..201)
        .map(|n| (format!("b/{n}"), Some(b"v".to_vec())))
        .collect();
    assert!(matches!(
        kv.apply_checked(&roomy, Vec::new(), batch, quota).await,
        Err(tenure_capabilities::KvError::TooLarge(_))
    ));
    assert!(kv.list_keys(&roomy, "b/").await.unwrap().is_empty());
}

pub async fn the_store_answers_and_counts_its_queue(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    intake(&store, vec![event("a", "p1"), event("b", "p2"), event("c", "p3")]).await;
    claim(&store, "w").await;
    intake(&store, vec![event("d", "p4")]).await;
    let mut depth: Vec<(String, JobState, i64)> = store
        .queue_depth()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.tenant, d.state, d.jobs))
        .collect();
    depth.sort();
    assert_eq!(
        depth,
        [
            ("t".into(), JobState::Available, 1),
            ("t".into(), JobState::Running, 3)
        ]
    );
}
