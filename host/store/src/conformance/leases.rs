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
