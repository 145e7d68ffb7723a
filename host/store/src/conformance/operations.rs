//! Operations and links.

use super::{audited, claim, event, intake, now};
use crate::*;
use std::sync::Arc;

fn op(job_id: i64, key: &str, kind: OperationKind) -> NewOperation {
    NewOperation {
        job_id,
        tenant: "t".into(),
        destination: "ad".into(),
        op_key: key.into(),
        kind,
        target: None,
        destructive: kind.is_destructive(),
        now_ms: now(),
    }
}

fn link(person: &str, anchor: Option<&str>, groups: &[&str]) -> LinkUpdate {
    LinkUpdate {
        tenant: "t".into(),
        destination: "ad".into(),
        person_key: person.into(),
        link: anchor.map(|a| Link {
            anchor: a.into(),
            managed_groups: groups.iter().map(|g| g.to_string()).collect(),
        }),
    }
}

fn done(op_id: i64, status: OperationStatus, anchor: Option<&str>, link: Option<LinkUpdate>) -> FinishedOp {
    FinishedOp {
        op_id,
        result: OpResult {
            status,
            detail: format!("{status}"),
            anchor: anchor.map(String::from),
            now_ms: now(),
        },
        link,
        audit: vec![
            AuditRecord::new("t", AuditKind::OpApplied, "system").data(serde_json::json!({ "op": op_id })),
        ],
    }
}

pub async fn an_operation_is_one_record_per_key_across_attempts(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let job = claim(&store, "w").await.remove(0);
    let lease = job.lease("w");
    let create = store
        .op_started(
            &lease,
            None,
            op(job.id, "ad/create", OperationKind::Create),
            vec![],
        )
        .await
        .unwrap();
    // The next operation's intent carries the previous result: one write per operation.
    let previous = done(
        create,
        OperationStatus::Done,
        Some("CN=a"),
        Some(link("p1", Some("CN=a"), &[])),
    );
    let add = store
        .op_started(
            &lease,
            Some(previous),
            op(job.id, "ad/add/g1", OperationKind::AddMember),
            vec![],
        )
        .await
        .unwrap();
    store
        .op_finished(&lease, done(add, OperationStatus::Failed, None, None))
        .await
        .unwrap();
    let ops = store.operations(job.id).await.unwrap();
    let view: Vec<_> = ops
        .iter()
        .map(|o| (o.op_key.as_str(), o.kind, o.status))
        .collect();
    assert_eq!(
        view,
        [
            ("ad/create", OperationKind::Create, OperationStatus::Done),
            ("ad/add/g1", OperationKind::AddMember, OperationStatus::Failed)
        ]
    );
    assert_eq!(ops[0].anchor.as_deref(), Some("CN=a"));
    assert!(ops[0].finished_ms.is_some());
    assert_eq!(
        store
            .link("t", "ad", "p1")
            .await
            .unwrap()
            .map(|l| l.anchor)
            .as_deref(),
        Some("CN=a")
    );
    assert_eq!(audited(&store, AuditKind::OpApplied).await.len(), 2);
    // The same key in a later attempt is the same operation, started again.
    let retry = Finish::Retry {
        run_at_ms: 0,
        error: "boom".into(),
        charge: true,
    };
    assert!(
        store
            .finish(&lease, retry, vec![], None, None, vec![])
            .await
            .unwrap()
    );
    let again = claim(&store, "w").await.remove(0);
    let id = store
        .op_started(
            &again.lease("w"),
            None,
            op(job.id, "ad/add/g1", OperationKind::AddMember),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(id, add);
    let ops = store.operations(job.id).await.unwrap();
    assert_eq!((ops.len(), ops[1].status), (2, OperationStatus::Started));
}

pub async fn links_are_written_found_counted_and_removed(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("b", "p2")]).await;
    let claimed = claim(&store, "w").await;
    for (job, anchor) in claimed.iter().zip(["CN=a", "CN=b"]) {
        let update = link(&job.person_key, Some(anchor), &["g1"]);
        store.put_link(&job.lease("w"), update, vec![]).await.unwrap();
    }
    assert_eq!(store.managed_count("t", "ad").await.unwrap(), 2);
    assert_eq!(store.managed_count("t", "google").await.unwrap(), 0);
    assert_eq!(
        store.anchor_owner("t", "ad", "CN=b").await.unwrap().as_deref(),
        Some("p2")
    );
    assert_eq!(store.anchor_owner("t", "ad", "CN=z").await.unwrap(), None);
    let all = store.links("t", "ad").await.unwrap();
    assert_eq!(
        all.iter()
            .map(|(p, l)| (p.as_str(), l.anchor.as_str()))
            .collect::<Vec<_>>(),
        [("p1", "CN=a"), ("p2", "CN=b")]
    );
    assert_eq!(all[0].1.managed_groups, ["g1"]);
    // A linked person is known even without a lifecycle record.
    assert_eq!(store.known_people("t", None, 10).await.unwrap(), ["p1", "p2"]);
    assert_eq!(store.known_people("t", Some("p1"), 10).await.unwrap(), ["p2"]);
    assert!(store.known_people("other", None, 10).await.unwrap().is_empty());
    // A person linked in two destinations is one person, and a page holds distinct people.
    let mut google = link("p1", Some("g-1"), &[]);
    google.destination = "google".into();
    store
        .put_link(&claimed[0].lease("w"), google, vec![])
        .await
        .unwrap();
    assert_eq!(store.known_people("t", None, 2).await.unwrap(), ["p1", "p2"]);
    // Rewritten in place, and removed when the account is deleted.
    let p1 = &claimed[0];
    store
        .put_link(&p1.lease("w"), link("p1", Some("CN=a2"), &["g1", "g2"]), vec![])
        .await
        .unwrap();
    let l = store.link("t", "ad", "p1").await.unwrap().unwrap();
    assert_eq!((l.anchor.as_str(), l.managed_groups.len()), ("CN=a2", 2));
    store
        .put_link(&p1.lease("w"), link("p1", None, &[]), vec![])
        .await
        .unwrap();
    assert!(store.link("t", "ad", "p1").await.unwrap().is_none());
    assert_eq!(store.managed_count("t", "ad").await.unwrap(), 1);
}

pub async fn finish_records_the_last_operation_and_the_lifecycle(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let job = claim(&store, "w").await.remove(0);
    let lease = job.lease("w");
    let id = store
        .op_started(
            &lease,
            None,
            op(job.id, "ad/create", OperationKind::Create),
            vec![],
        )
        .await
        .unwrap();
    let last = done(
        id,
        OperationStatus::Done,
        Some("CN=a"),
        Some(link("p1", Some("CN=a"), &[])),
    );
    let row = LifecycleRow {
        person_key: "p1".into(),
        state: Some(LifecycleState::Active),
        manager_key: Some("hr:m".into()),
        doc: "{\"facts\":1}".into(),
        updated_ms: now(),
    };
    let audit = vec![AuditRecord::new("t", AuditKind::JobCompleted, "system").job(job.id)];
    assert!(
        store
            .finish(&lease, Finish::Completed, audit, Some(last), Some(row), vec![])
            .await
            .unwrap()
    );
    assert_eq!(
        store.operations(job.id).await.unwrap()[0].status,
        OperationStatus::Done
    );
    assert!(store.link("t", "ad", "p1").await.unwrap().is_some());
    let life = store.lifecycle("t", "p1").await.unwrap().unwrap();
    assert_eq!(
        (life.state, life.doc.as_str()),
        (Some(LifecycleState::Active), "{\"facts\":1}")
    );
    assert_eq!(audited(&store, AuditKind::JobCompleted).await.len(), 1);
    assert_eq!(audited(&store, AuditKind::OpApplied).await.len(), 1);
}
