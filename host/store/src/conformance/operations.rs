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

/// One person's job, received and claimed by `w`, with its lease.
async fn one_job(store: &Arc<dyn Store>) -> (ClaimedJob, JobLease) {
    intake(store, vec![event("a", "p1")]).await;
    let job = claim(store, "w").await.remove(0);
    let lease = job.lease("w");
    (job, lease)
}

pub async fn an_operation_is_one_record_per_key_across_attempts(store: Arc<dyn Store>) {
    let (job, lease) = one_job(&store).await;
    // A plan's intents are recorded together, before the first is sent; ids in order.
    let planned = vec![
        op(job.id, "ad/create", OperationKind::Create),
        op(job.id, "ad/add/g1", OperationKind::AddMember),
    ];
    let ids = store.ops_started(&lease, vec![], planned, vec![]).await.unwrap();
    let [create, add] = ids[..] else {
        panic!("one id per operation: {ids:?}");
    };
    assert!(create < add, "ids in the order given: {ids:?}");
    let started = store.operations(job.id).await.unwrap();
    assert!(started.iter().all(|o| o.status == OperationStatus::Started));
    // Results go with the job's next write, several at once and in order.
    let created = done(
        create,
        OperationStatus::Done,
        Some("CN=a"),
        Some(link("p1", Some("CN=a"), &[])),
    );
    let failed = done(add, OperationStatus::Failed, None, None);
    store.ops_finished(&lease, vec![created, failed]).await.unwrap();
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
            .finish(&lease, retry, vec![], vec![], None, vec![])
            .await
            .unwrap()
    );
    let again = claim(&store, "w").await.remove(0);
    // An earlier operation's result goes with the next intents.
    let again_lease = again.lease("w");
    let readd = op(job.id, "ad/add/g1", OperationKind::AddMember);
    let first = store
        .ops_started(&again_lease, vec![], vec![readd], vec![])
        .await
        .unwrap();
    assert_eq!(first, [add]);
    let readd_failed = done(add, OperationStatus::Failed, None, None);
    let next = op(job.id, "ad/add/g2", OperationKind::AddMember);
    store
        .ops_started(&again_lease, vec![readd_failed], vec![next], vec![])
        .await
        .unwrap();
    let ops = store.operations(job.id).await.unwrap();
    assert_eq!(ops[1].status, OperationStatus::Failed);
    assert_eq!(
        store
            .ops_started(&again_lease, vec![], vec![], vec![])
            .await
            .unwrap(),
        Vec::<i64>::new(),
        "no intents, no ids"
    );
    assert_eq!((ops.len(), ops[2].status), (3, OperationStatus::Started));
}

/// Several results that change one link in one write leave it as the last of them says, and
/// a link of another destination stays as its own result says.
pub async fn of_several_results_for_one_link_the_last_stands(store: Arc<dyn Store>) {
    let (job, lease) = one_job(&store).await;
    let planned = vec![
        op(job.id, "ad/create", OperationKind::Create),
        op(job.id, "ad/add/g1", OperationKind::AddMember),
        op(job.id, "google/create", OperationKind::Create),
        op(job.id, "ad/add/g2", OperationKind::AddMember),
    ];
    let ids = store.ops_started(&lease, vec![], planned, vec![]).await.unwrap();
    let mut google = link("p1", Some("g-1"), &[]);
    google.destination = "google".into();
    let results = vec![
        done(
            ids[0],
            OperationStatus::Done,
            Some("CN=a"),
            Some(link("p1", Some("CN=a"), &[])),
        ),
        done(
            ids[1],
            OperationStatus::Done,
            None,
            Some(link("p1", Some("CN=a"), &["g1"])),
        ),
        done(ids[2], OperationStatus::Done, Some("g-1"), Some(google)),
        done(
            ids[3],
            OperationStatus::Done,
            None,
            Some(link("p1", Some("CN=a"), &["g1", "g2"])),
        ),
    ];
    store.ops_finished(&lease, results).await.unwrap();
    let ad = store.link("t", "ad", "p1").await.unwrap().unwrap();
    assert_eq!(
        (ad.anchor.as_str(), ad.managed_groups.as_slice()),
        ("CN=a", &["g1".to_string(), "g2".into()][..])
    );
    let google = store.link("t", "google", "p1").await.unwrap().unwrap();
    assert_eq!(google.anchor, "g-1");
    // Removed and made again in one write: it stands.
    let again = vec![
        op(job.id, "ad/delete", OperationKind::Delete),
        op(job.id, "ad/create-again", OperationKind::Create),
    ];
    let ids = store.ops_started(&lease, vec![], again, vec![]).await.unwrap();
    let results = vec![
        done(ids[0], OperationStatus::Done, None, Some(link("p1", None, &[]))),
        done(
            ids[1],
            OperationStatus::Done,
            Some("CN=b"),
            Some(link("p1", Some("CN=b"), &[])),
        ),
    ];
    store.ops_finished(&lease, results).await.unwrap();
    assert_eq!(store.link("t", "ad", "p1").await.unwrap().unwrap().anchor, "CN=b");
    let ops = store.operations(job.id).await.unwrap();
    assert!(ops.iter().all(|o| o.status == OperationStatus::Done), "{ops:?}");
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

pub async fn finish_records_the_operations_results_and_the_lifecycle(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1")]).await;
    let job = claim(&store, "w").await.remove(0);
    let lease = job.lease("w");
    let ids = store
        .ops_started(
            &lease,
            vec![],
            vec![op(job.id, "ad/create", OperationKind::Create)],
            vec![],
        )
        .await
        .unwrap();
    let last = done(
        ids[0],
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
        name: None,
        email: None,
    };
    let audit = vec![AuditRecord::new("t", AuditKind::JobCompleted, "system").job(job.id)];
    assert!(
        store
            .finish(&lease, Finish::Completed, audit, vec![last], Some(row), vec![])
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
