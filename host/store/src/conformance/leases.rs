//! Named leases: one holder at a time, renewed by it, taken over once run out.

use super::*;

pub async fn a_lease_has_one_holder_until_it_runs_out_or_is_given_up(store: Arc<dyn Store>) {
    let t0 = now();
    assert!(store.hold_lease("poll:t:hr", "a", t0, t0 + 1_000).await.unwrap());
    // Another host waits while the lease holds; its holder renews it.
    assert!(
        !store
            .hold_lease("poll:t:hr", "b", t0 + 500, t0 + 1_500)
            .await
            .unwrap()
    );
    assert!(
        store
            .hold_lease("poll:t:hr", "a", t0 + 900, t0 + 2_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_lease("poll:t:hr", "b", t0 + 1_500, t0 + 2_500)
            .await
            .unwrap()
    );
    // Other leases are apart.
    assert!(
        store
            .hold_lease("poll:t:lever", "b", t0, t0 + 1_000)
            .await
            .unwrap()
    );
    // Not renewed, it runs out and passes on; the old holder then waits.
    assert!(
        store
            .hold_lease("poll:t:hr", "b", t0 + 2_001, t0 + 3_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_lease("poll:t:hr", "a", t0 + 2_002, t0 + 3_000)
            .await
            .unwrap()
    );
    // Given up (only by its holder), it is free at once.
    store.release_lease("poll:t:hr", "a").await.unwrap();
    assert!(
        !store
            .hold_lease("poll:t:hr", "a", t0 + 2_003, t0 + 3_000)
            .await
            .unwrap()
    );
    store.release_lease("poll:t:hr", "b").await.unwrap();
    assert!(
        store
            .hold_lease("poll:t:hr", "a", t0 + 2_004, t0 + 3_000)
            .await
            .unwrap()
    );
}

pub async fn live_leases_are_counted_by_prefix_until_they_run_out(store: Arc<dyn Store>) {
    let t0 = now();
    assert_eq!(store.live_leases("host:", t0).await.unwrap(), 0);
    assert!(store.hold_lease("host:a", "a", t0, t0 + 1_000).await.unwrap());
    assert!(store.hold_lease("host:b", "b", t0, t0 + 2_000).await.unwrap());
    assert!(store.hold_lease("poll:t:hr", "a", t0, t0 + 2_000).await.unwrap());
    assert_eq!(store.live_leases("host:", t0 + 500).await.unwrap(), 2);
    assert_eq!(
        store.live_leases("host:", t0 + 1_000).await.unwrap(),
        2,
        "held through its last ms"
    );
    assert_eq!(
        store.live_leases("host:", t0 + 1_001).await.unwrap(),
        1,
        "a's ran out"
    );
    assert_eq!(store.live_leases("poll:", t0 + 500).await.unwrap(), 1);
    store.release_lease("host:b", "b").await.unwrap();
    assert_eq!(store.live_leases("host:", t0 + 500).await.unwrap(), 1);
    // A prefix is matched as text, not as a pattern.
    assert_eq!(store.live_leases("host%", t0 + 500).await.unwrap(), 0);
    assert_eq!(store.live_leases("h_st:", t0 + 500).await.unwrap(), 0);
}
