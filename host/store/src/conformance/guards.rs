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
