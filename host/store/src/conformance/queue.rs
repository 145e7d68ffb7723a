//! The job queue: order, leases, fencing, retries, holds and operator commands.

use super::{audited, claim, complete, event, intake, jobs, now};
use crate::*;
use std::sync::Arc;

pub async fn claims_run_each_persons_jobs_in_order(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("b", "p1"), event("c", "p2")]).await;
    // p1's second event waits for its first; p2 runs beside it.
    let claimed = claim(&store, "w").await;
    let keys: Vec<_> = claimed.iter().map(|j| j.event.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["a", "c"]);
    assert!(claimed.iter().all(|j| j.attempt == 1 && j.max_attempts == 3));
    assert!(claim(&store, "w").await.is_empty());
    let first = claimed.iter().find(|j| j.event.idempotency_key == "a").unwrap();
    assert!(complete(&store, &first.lease("w")).await);
    let next = claim(&store, "w").await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event.idempotency_key, "b");
    // A dead job still blocks its person's later jobs (they would undo its intent).
    let dead = Finish::Dead { error: "boom".into() };
    assert!(
        store
            .finish(&next[0].lease("w"), dead, vec![], vec![], None, vec![])
            .await
            .unwrap()
    );
    intake(&store, vec![event("d", "p1")]).await;
    assert!(claim(&store, "w").await.is_empty());
}

pub async fn expired_leases_go_to_another_owner_and_fence_the_old_attempt(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let t0 = now();
    let first = store.claim("w", t0, 1_000, 10, vec![]).await.unwrap().remove(0);
    // Another owner cannot end a job it does not hold.
    assert!(!complete(&store, &first.lease("other")).await);
    // Expired, it is never reclaimed by its own owner (its worker may still run it)...
    assert!(
        store
            .claim("w", t0 + 5_000, 1_000, 10, vec![])
            .await
            .unwrap()
            .is_empty()
    );
    // ...but by another, and it counts as an attempt.
    let second = store
        .claim("w2", t0 + 5_000, 60_000, 10, vec![])
        .await
        .unwrap()
        .remove(0);
    assert_eq!((second.id, second.attempt), (first.id, 2));
    // The first attempt's writes are fenced off: it can record nothing more.
    let stale = first.lease("w");
    let op = NewOperation {
        job_id: first.id,
        tenant: "t".into(),
        destination: "d".into(),
        op_key: "d/create".into(),
        kind: OperationKind::Create,
        target: None,
        destructive: false,
        now_ms: t0,
    };
    assert!(matches!(
        store.ops_started(&stale, vec![], vec![op], vec![]).await,
        Err(StoreError::Fenced(_))
    ));
    let link = LinkUpdate {
        tenant: "t".into(),
        destination: "d".into(),
        person_key: "p1".into(),
        link: Some(Link {
            anchor: "a1".into(),
            managed_groups: vec![],
        }),
    };
    assert!(matches!(
        store.put_link(&stale, link, vec![]).await,
        Err(StoreError::Fenced(_))
    ));
    let row = LifecycleRow {
        person_key: "p1".into(),
        state: Some(LifecycleState::Active),
        manager_key: None,
        doc: "{}".into(),
        updated_ms: t0,
        name: None,
        email: None,
    };
    assert!(matches!(
        store.put_lifecycle(&stale, "t", row).await,
        Err(StoreError::Fenced(_))
    ));
    assert!(!complete(&store, &stale).await);
    assert!(store.link("t", "d", "p1").await.unwrap().is_none());
    assert!(complete(&store, &second.lease("w2")).await);
}

pub async fn heartbeats_extend_only_leases_still_held(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("b", "p2")]).await;
    let t0 = now();
    let claimed = store.claim("w", t0, 1_000, 10, vec![]).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|j| j.id).collect();
    assert!(complete(&store, &claimed[1].lease("w")).await);
    let held = store.extend_leases("w", ids.clone(), t0 + 60_000).await.unwrap();
    assert_eq!(held, vec![claimed[0].id]);
    assert!(
        store
            .extend_leases("other", ids, t0 + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    // Extended: another owner cannot take it when the first lease would have expired.
    assert!(
        store
            .claim("w2", t0 + 5_000, 1_000, 10, vec![])
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn retries_end_in_dead_letter_and_a_replay(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    for attempt in 1..=3u32 {
        let job = claim(&store, "w").await.remove(0);
        assert_eq!(job.attempt, attempt);
        let retry = Finish::Retry {
            run_at_ms: 0,
            error: "boom".into(),
            charge: true,
        };
        assert!(
            store
                .finish(&job.lease("w"), retry, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    let dead = jobs(&store, Some(JobState::Dead)).await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("gave up after 3"),
        "{dead:?}"
    );
    let replayed = store.replay("t", dead[0].id, "admin").await.unwrap();
    assert_eq!((replayed.state, replayed.attempts), (JobState::Available, 0));
    assert_eq!(claim(&store, "w").await.len(), 1);
}

pub async fn an_uncharged_retry_gives_the_attempt_back(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    for _ in 0..5 {
        let job = claim(&store, "w").await.remove(0);
        assert_eq!(job.attempt, 1, "a wait is not an attempt");
        let wait = Finish::Retry {
            run_at_ms: 0,
            error: "rate-limited".into(),
            charge: false,
        };
        assert!(
            store
                .finish(&job.lease("w"), wait, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    let rows = jobs(&store, None).await;
    assert_eq!((rows[0].state, rows[0].attempts), (JobState::Retryable, 0));
    // A retry in the future is not claimed before its time.
    let job = claim(&store, "w").await.remove(0);
    let later = Finish::Retry {
        run_at_ms: now() + 3_600_000,
        error: "later".into(),
        charge: true,
    };
    assert!(
        store
            .finish(&job.lease("w"), later, vec![], vec![], None, vec![])
            .await
            .unwrap()
    );
    assert!(claim(&store, "w").await.is_empty());
}

pub async fn held_jobs_are_released_by_reason(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("b", "p2"), event("c", "p3")]).await;
    let reasons = ["guard:ad", "guard:ad", "conflict:ad"];
    for (job, reason) in claim(&store, "w").await.iter().zip(reasons) {
        let held = Finish::Held {
            reason: reason.into(),
        };
        assert!(
            store
                .finish(&job.lease("w"), held, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    let held = jobs(&store, Some(JobState::Held)).await;
    assert_eq!(held.len(), 3);
    assert_eq!(held[0].hold_reason.as_deref(), Some("guard:ad"));
    // A hold is not an attempt.
    assert!(held.iter().all(|j| j.attempts == 0));
    assert_eq!(store.release_held("t", "guard:", "admin").await.unwrap(), 2);
    assert_eq!(jobs(&store, Some(JobState::Held)).await.len(), 1);
    assert_eq!(claim(&store, "w").await.len(), 2);
    assert_eq!(audited(&store, AuditKind::JobReleased).await.len(), 2);
}

pub async fn cancel_and_replay_are_checked_and_audited(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let id = jobs(&store, None).await[0].id;
    assert!(matches!(
        store.replay("t", id, "admin").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.cancel("t", 999_999, "admin").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.cancel("other", id, "admin").await,
        Err(StoreError::NotFound(_))
    ));
    let cancelled = store.cancel("t", id, "admin").await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(matches!(
        store.cancel("t", id, "admin").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(claim(&store, "w").await.is_empty());
    assert_eq!(
        store.replay("t", id, "admin").await.unwrap().state,
        JobState::Available
    );
    let detail = store.job("t", id).await.unwrap().unwrap();
    assert_eq!((detail.job.id, detail.event.idempotency_key.as_str()), (id, "a"));
    let cancels = audited(&store, AuditKind::JobCancelled).await;
    let replays = audited(&store, AuditKind::JobReplayed).await;
    assert_eq!((cancels.len(), replays.len()), (1, 1));
    assert_eq!(cancels[0].record.actor, "admin");
    assert_eq!(cancels[0].record.job_id, Some(id));
}

pub async fn a_tenants_backlog_does_not_starve_another(store: Arc<dyn Store>) {
    let flood: Vec<NewEvent> = (0..50)
        .map(|i| event(&format!("a{i}"), &format!("p{i}")))
        .collect();
    intake(&store, flood).await;
    let mut other = event("b0", "q0");
    other.tenant = "other".into();
    intake(&store, vec![other]).await;
    let tenants = vec!["t".to_string(), "other".to_string()];
    let claimed = store.claim("w", now(), 60_000, 4, tenants).await.unwrap();
    let by_tenant = |t: &str| claimed.iter().filter(|j| j.tenant == t).count();
    assert_eq!(
        (claimed.len(), by_tenant("other"), by_tenant("t")),
        (4, 1, 3),
        "work-conserving and fair"
    );
    // Without tenants, arrival order.
    let next = store.claim("w", now(), 60_000, 2, vec![]).await.unwrap();
    let keys: Vec<_> = next.iter().map(|j| j.event.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["a3", "a4"]);
}

pub async fn unfinished_jobs_are_seen_per_person(store: Arc<dyn Store>) {
    assert!(!store.has_unfinished("t", "p1").await.unwrap());
    intake(&store, vec![event("a", "p1")]).await;
    assert!(store.has_unfinished("t", "p1").await.unwrap());
    assert!(!store.has_unfinished("t", "p2").await.unwrap());
    let job = claim(&store, "w").await.remove(0);
    assert!(store.has_unfinished("t", "p1").await.unwrap(), "running");
    assert!(complete(&store, &job.lease("w")).await);
    assert!(!store.has_unfinished("t", "p1").await.unwrap());
    let by_person = store
        .jobs(JobFilter {
            tenant: "t".into(),
            state: Some(JobState::Completed),
            person_key: Some("p1".into()),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(by_person.len(), 1);
    assert_eq!(by_person[0].kind, RecordKind::Person(EventKind::Joiner));
}
