//! The mass-change guard and matching conflicts.

use super::{audited, claim, event, intake, jobs, now};
use crate::*;
use std::sync::Arc;

fn request(job_id: i64, max_accounts: i64) -> GuardRequest {
    GuardRequest {
        tenant: "t".into(),
        destination: "ad".into(),
        job_id,
        now_ms: now(),
        window_ms: 3_600_000,
        max_accounts: Some(max_accounts),
        max_percent: None,
        min_population: 0,
        alert: AuditRecord::new("t", AuditKind::GuardTripped, "system").destination("ad"),
    }
}

pub async fn the_guard_trips_over_its_limit_and_an_approval_gives_a_budget(store: Arc<dyn Store>) {
    let events: Vec<_> = (0..4)
        .map(|i| event(&format!("e{i}"), &format!("p{i}")))
        .collect();
    intake(&store, events).await;
    let claimed = claim(&store, "w").await;
    let admitted = |d: &GuardDecision| matches!(d, GuardDecision::Admitted { .. });
    let first = store.guard_admit(request(claimed[0].id, 2)).await.unwrap();
    assert_eq!(
        first,
        GuardDecision::Admitted {
            recent: 1,
            by_approval: false
        }
    );
    // The same job asking again is not counted twice.
    assert!(admitted(
        &store.guard_admit(request(claimed[0].id, 2)).await.unwrap()
    ));
    assert!(admitted(
        &store.guard_admit(request(claimed[1].id, 2)).await.unwrap()
    ));
    let tripped = store.guard_admit(request(claimed[2].id, 2)).await.unwrap();
    assert!(
        matches!(
            tripped,
            GuardDecision::Held {
                newly_tripped: true,
                ..
            }
        ),
        "{tripped:?}"
    );
    // Tripped: everyone waits, without a second alert.
    let again = store.guard_admit(request(claimed[3].id, 2)).await.unwrap();
    assert!(
        matches!(
            again,
            GuardDecision::Held {
                newly_tripped: false,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(audited(&store, AuditKind::GuardTripped).await.len(), 1);
    let guards = store.guards("t").await.unwrap();
    assert!(guards[0].tripped && guards[0].reason.is_some(), "{guards:?}");
    for job in &claimed[2..] {
        let held = Finish::Held {
            reason: "guard:ad".into(),
        };
        assert!(
            store
                .finish(&job.lease("w"), held, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    // Approval releases the held jobs with a budget of that many changes.
    assert_eq!(store.approve_guard("t", "ad", "it-admin").await.unwrap(), 2);
    assert!(matches!(
        store.approve_guard("t", "ad", "it-admin").await,
        Err(StoreError::Conflict(_))
    ));
    let released = claim(&store, "w").await;
    assert_eq!(released.len(), 2);
    for job in &released {
        let d = store.guard_admit(request(job.id, 2)).await.unwrap();
        assert!(
            matches!(
                d,
                GuardDecision::Admitted {
                    by_approval: true,
                    ..
                }
            ),
            "{d:?}"
        );
    }
    assert_eq!(store.guards("t").await.unwrap()[0].budget, 0);
    assert_eq!(audited(&store, AuditKind::GuardApproved).await.len(), 1);
}

pub async fn conflicts_are_decided_once_and_release_their_job(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let job = claim(&store, "w").await.remove(0);
    let conflict = NewConflict {
        tenant: "t".into(),
        destination: "ad".into(),
        person_key: "p1".into(),
        job_id: job.id,
        kind: ConflictKind::Ambiguous,
        candidates: vec!["CN=a".into(), "CN=b".into()],
        now_ms: now(),
    };
    let id = store
        .open_conflict(&job.lease("w"), conflict, vec![])
        .await
        .unwrap();
    let held = Finish::Held {
        reason: "conflict:ad".into(),
    };
    assert!(
        store
            .finish(&job.lease("w"), held, vec![], vec![], None, vec![])
            .await
            .unwrap()
    );
    assert!(
        store
            .conflict_decision("t", job.id, "ad")
            .await
            .unwrap()
            .is_none()
    );
    let open = store.conflicts("t", true).await.unwrap();
    assert_eq!((open.len(), open[0].kind), (1, ConflictKind::Ambiguous));
    // Only a candidate can be merged.
    let wrong = ConflictDecision::Merge {
        anchor: "CN=z".into(),
    };
    assert!(matches!(
        store.resolve_conflict("t", id, wrong, "it").await,
        Err(StoreError::Conflict(_))
    ));
    let merge = ConflictDecision::Merge {
        anchor: "CN=b".into(),
    };
    let decided = store
        .resolve_conflict("t", id, merge.clone(), "it")
        .await
        .unwrap();
    assert_eq!(
        (decided.decision.as_ref(), decided.decided_by.as_deref()),
        (Some(&merge), Some("it"))
    );
    assert!(matches!(
        store
            .resolve_conflict("t", id, ConflictDecision::Skip, "it")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .resolve_conflict("t", 999_999, ConflictDecision::Skip, "it")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .conflict_decision("t", job.id, "ad")
            .await
            .unwrap()
            .and_then(|c| c.decision),
        Some(merge)
    );
    assert!(store.conflicts("t", true).await.unwrap().is_empty());
    assert_eq!(store.conflicts("t", false).await.unwrap().len(), 1);
    assert_eq!(jobs(&store, Some(JobState::Available)).await.len(), 1);
    assert_eq!(audited(&store, AuditKind::ConflictResolved).await.len(), 1);
}

fn hold(job_id: i64, person: &str, op: &str) -> NewHold {
    NewHold {
        tenant: "t".into(),
        destination: "entra".into(),
        person_key: person.into(),
        job_id,
        operations: vec![serde_json::json!({ "op": op })],
    }
}

pub async fn held_plans_are_decided_once_in_bulk_and_release_their_jobs(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("b", "p2"), event("c", "p3")]).await;
    let claimed = claim(&store, "w").await;
    let mut ids = Vec::new();
    for (job, person) in claimed.iter().zip(["p1", "p2", "p3"]) {
        let lease = job.lease("w");
        let audit = vec![AuditRecord::new("t", AuditKind::PlanHeld, "system").job(job.id)];
        let held = store
            .hold_plan(&lease, hold(job.id, person, "create"), audit)
            .await
            .unwrap();
        assert_eq!((held.state, held.job_id), (HoldState::Pending, job.id));
        ids.push(held.id);
        let finish = Finish::Held {
            reason: "supervised:entra".into(),
        };
        assert!(
            store
                .finish(&lease, finish, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    // Another worker's lease cannot hold a plan.
    let stale = claimed[0].lease("other");
    assert!(
        store
            .hold_plan(&stale, hold(claimed[0].id, "p1", "x"), vec![])
            .await
            .is_err()
    );
    let pending = HoldFilter {
        tenant: "t".into(),
        state: Some(HoldState::Pending),
        limit: 100,
        ..HoldFilter::default()
    };
    assert_eq!(store.holds(pending.clone()).await.unwrap().len(), 3);
    let page = HoldFilter {
        after_id: Some(ids[0]),
        limit: 1,
        ..pending.clone()
    };
    assert_eq!(
        store
            .holds(page)
            .await
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect::<Vec<_>>(),
        [ids[1]]
    );

    // Two approved in one call, the third rejected; deciding again changes nothing.
    let approved = store
        .decide_holds(
            "t",
            vec![ids[0], ids[1], 999_999],
            HoldDecision::Approve,
            "op",
            Some("pilot".into()),
        )
        .await
        .unwrap();
    assert_eq!(approved.iter().map(|h| h.id).collect::<Vec<_>>(), ids[..2]);
    assert!(
        approved
            .iter()
            .all(|h| h.state == HoldState::Approved && h.decided_by.as_deref() == Some("op"))
    );
    let rejected = store
        .decide_holds("t", vec![ids[2]], HoldDecision::Reject, "op", None)
        .await
        .unwrap();
    assert_eq!(rejected[0].state, HoldState::Rejected);
    let again = store
        .decide_holds("t", ids.clone(), HoldDecision::Reject, "op", None)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    // Another tenant's ids are not this tenant's.
    assert!(
        store
            .decide_holds("u", ids.clone(), HoldDecision::Approve, "op", None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(jobs(&store, Some(JobState::Available)).await.len(), 3);
    assert_eq!(audited(&store, AuditKind::PlanApproved).await.len(), 2);
    assert_eq!(audited(&store, AuditKind::PlanRejected).await.len(), 1);

    // Run again: a new plan supersedes the approved one; the approved one applied is marked.
    let rerun = claim(&store, "w2").await;
    let first = rerun
        .iter()
        .find(|j| j.id == claimed[0].id)
        .expect("released job");
    let lease = first.lease("w2");
    let newer = store
        .hold_plan(&lease, hold(first.id, "p1", "update"), vec![])
        .await
        .unwrap();
    let latest = store
        .hold_of("t", first.id, "entra")
        .await
        .unwrap()
        .expect("a hold");
    assert_eq!((latest.id, latest.state), (newer.id, HoldState::Pending));
    let all = HoldFilter {
        tenant: "t".into(),
        limit: 100,
        ..HoldFilter::default()
    };
    let states: Vec<HoldState> = store
        .holds(all.clone())
        .await
        .unwrap()
        .iter()
        .map(|h| h.state)
        .collect();
    use HoldState::*;
    assert_eq!(states, [Superseded, Approved, Rejected, Pending]);
    let second = rerun
        .iter()
        .find(|j| j.id == claimed[1].id)
        .expect("released job");
    store
        .hold_applied(&second.lease("w2"), ids[1], vec![])
        .await
        .unwrap();
    let states: Vec<HoldState> = store.holds(all).await.unwrap().iter().map(|h| h.state).collect();
    assert_eq!(states, [Superseded, Applied, Rejected, Pending]);
}
