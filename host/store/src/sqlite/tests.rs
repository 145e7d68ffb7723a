use super::*;
use crate::crypto::MasterKey;

fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let options = SqliteOptions {
        path: dir.path().join("t.db"),
        synchronous_full: true,
    };
    SqliteStore::open(&options, MasterKey::from_bytes([1; 32])).unwrap()
}

fn event(key: &str, person: &str) -> NewEvent {
    NewEvent {
        tenant: "t".into(),
        source: "api".into(),
        idempotency_key: key.into(),
        person_key: person.into(),
        kind: "joiner".into(),
        body: "{}".into(),
        source_record_id: key.into(),
        start_date: Some("2030-01-01".into()),
        occurred_ms: None,
        actor: "test".into(),
        received_ms: 1,
        max_attempts: 3,
        link_keys: Vec::new(),
    }
}

#[tokio::test]
async fn intake_deduplicates_and_claims_in_person_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = store
        .intake(vec![event("a", "p1"), event("b", "p1"), event("c", "p2")], None)
        .await
        .unwrap();
    assert!(matches!(first[0], Intake::Accepted { .. }));
    let again = store.intake(vec![event("a", "p1")], None).await.unwrap();
    assert_eq!(
        again[0],
        Intake::Duplicate {
            event_id: first[0].event_id(),
            job_id: 1
        }
    );
    // p1's second event waits for its first; p2 runs in parallel.
    let claimed = store.claim("w", 10, 1000, 10, vec![]).await.unwrap();
    let keys: Vec<_> = claimed.iter().map(|j| j.event.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["a", "c"]);
    assert!(store.claim("w", 10, 1000, 10, vec![]).await.unwrap().is_empty());
    // Another owner cannot finish a job it does not hold.
    assert!(
        !store
            .finish(&claimed[0].lease("other"), Finish::Completed, vec![], None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish(&claimed[0].lease("w"), Finish::Completed, vec![], None, None)
            .await
            .unwrap()
    );
    let next = store.claim("w", 10, 1000, 10, vec![]).await.unwrap();
    assert_eq!(next[0].event.idempotency_key, "b");
    // An expired lease is never reclaimed by its own host (its worker may still run it)...
    assert!(store.claim("w", 5000, 1000, 10, vec![]).await.unwrap().is_empty());
    // ...but by another host, and it counts as an attempt.
    let reclaimed = store.claim("w2", 5000, 1000, 10, vec![]).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert!(reclaimed.iter().all(|j| j.attempt == 2));
    // The first attempt's writes are fenced off: it can record nothing more.
    let stale = next[0].lease("w");
    let op = NewOperation {
        job_id: stale.job_id,
        tenant: "t".into(),
        destination: "d".into(),
        op_key: "create".into(),
        kind: "create".into(),
        target: None,
        destructive: false,
        now_ms: 5000,
    };
    assert!(matches!(
        store.op_started(&stale, None, op, vec![]).await,
        Err(StoreError::Fenced(_))
    ));
    assert!(
        !store
            .finish(&stale, Finish::Completed, vec![], None, None)
            .await
            .unwrap()
    );
    let current = reclaimed.iter().find(|j| j.id == stale.job_id).unwrap();
    assert!(
        store
            .finish(&current.lease("w2"), Finish::Completed, vec![], None, None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn retries_end_in_dead_letter_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.intake(vec![event("a", "p1")], None).await.unwrap();
    for attempt in 1..=3 {
        let job = store
            .claim("w", 100 * attempt, 10, 1, vec![])
            .await
            .unwrap()
            .remove(0);
        let retry = Finish::Retry {
            run_at_ms: 0,
            error: "boom".into(),
            charge: true,
        };
        assert!(
            store
                .finish(&job.lease("w"), retry, vec![], None, None)
                .await
                .unwrap()
        );
    }
    let dead = store.jobs(JobFilter {
        tenant: "t".into(),
        state: Some(JobState::Dead),
        ..Default::default()
    });
    let dead = dead.await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].last_error.as_deref().unwrap().contains("gave up after 3"));
    let err = store.cancel("t", 999, "admin").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
    let replayed = store.replay("t", dead[0].id, "admin").await.unwrap();
    assert_eq!(replayed.state, JobState::Available);
    assert!(store.replay("t", dead[0].id, "admin").await.is_err());
    assert!(store.verify_audit().await.unwrap().ok());
}

#[tokio::test]
async fn audit_is_append_only_and_secrets_are_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.intake(vec![event("a", "p1")], None).await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.entries, report.ok()), (1, true));
    let conn = Connection::open(store.path()).unwrap();
    let err = conn.execute("UPDATE audit SET actor = 'x'", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    store.put_secret("lever", "s3cret").await.unwrap();
    assert_eq!(store.secret("lever").await.unwrap().as_deref(), Some("s3cret"));
    let raw: Vec<u8> = conn
        .query_row("SELECT ciphertext FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert!(!raw.windows(6).any(|w| w == b"s3cret"));
}

#[tokio::test]
async fn kv_keeps_quotas_and_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let kv = store.kv();
    let a = tenure_capabilities::KvNamespace {
        tenant: "a".into(),
        plugin: "p".into(),
    };
    let b = tenure_capabilities::KvNamespace {
        tenant: "b".into(),
        plugin: "p".into(),
    };
    kv.set(&a, "user/1", b"x").await.unwrap();
    kv.set(&a, "user/2", b"y").await.unwrap();
    assert_eq!(kv.get(&b, "user/1").await.unwrap(), None);
    assert_eq!(kv.list_keys(&a, "user/").await.unwrap(), vec!["user/1", "user/2"]);
    kv.remove(&a, "user/1").await.unwrap();
    assert_eq!(kv.get(&a, "user/1").await.unwrap(), None);
    let usage: (i64, i64) = Connection::open(store.path())
        .unwrap()
        .query_row("SELECT keys, bytes FROM kv_usage WHERE tenant = 'a'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(usage, (1, 7));
}

#[test]
fn dates_convert_to_epoch_days() {
    assert_eq!(date_start_ms("1970-01-02"), Some(86_400_000));
    assert_eq!(date_start_ms("2026-03-01"), Some(1_772_323_200_000));
    assert_eq!(date_start_ms("nope"), None);
}

#[tokio::test]
async fn a_tenants_backlog_does_not_starve_another() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let flood: Vec<NewEvent> = (0..50)
        .map(|i| event(&format!("a{i}"), &format!("p{i}")))
        .collect();
    store.intake(flood, None).await.unwrap();
    let mut other = event("b0", "q0");
    other.tenant = "other".into();
    store.intake(vec![other], None).await.unwrap();
    let tenants = vec!["t".to_string(), "other".to_string()];
    let claimed = store.claim("w", 10, 1000, 4, tenants).await.unwrap();
    let by_tenant = |t: &str| claimed.iter().filter(|j| j.tenant == t).count();
    assert_eq!(
        (claimed.len(), by_tenant("other"), by_tenant("t")),
        (4, 1, 3),
        "work-conserving and fair"
    );
    // Without tenants (one tenant), arrival order.
    let next = store.claim("w", 10, 1000, 2, vec![]).await.unwrap();
    assert_eq!(
        next.iter()
            .map(|j| j.event.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["a3", "a4"]
    );
}

#[tokio::test]
async fn scheduled_actions_keep_their_first_date_fire_once_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let action = |due_ms: i64| NewScheduledAction {
        tenant: "t".into(),
        person_key: "p1".into(),
        destination: "ad".into(),
        action: "delete".into(),
        due_ms,
        reason: "leaver".into(),
        now_ms: 1,
    };
    assert!(store.schedule_action(action(100)).await.unwrap());
    // A second leaver event does not push the date back.
    assert!(!store.schedule_action(action(500)).await.unwrap());
    assert!(store.take_due_actions(99, 10).await.unwrap().is_empty());
    let due = store.take_due_actions(100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].due_ms, due[0].state.as_str()), (100, "queued"));
    // Taken once: a second scan (another host) gets nothing.
    assert!(store.take_due_actions(1_000, 10).await.unwrap().is_empty());
    store
        .finish_action(due[0].id, "done", "deleted", 120)
        .await
        .unwrap();
    let done = store.scheduled_action(due[0].id).await.unwrap().unwrap();
    assert_eq!(
        (done.state.as_str(), done.note.as_deref()),
        ("done", Some("deleted"))
    );

    // A rehire cancels what is still open; nothing then fires.
    assert!(store.schedule_action(action(200)).await.unwrap());
    assert_eq!(
        store
            .cancel_actions("t", "p1", Some("ad"), ActionMatch::Is("delete"), "rehired", 150)
            .await
            .unwrap(),
        1
    );
    assert!(store.take_due_actions(1_000, 10).await.unwrap().is_empty());
    assert!(store.scheduled_actions("t", true).await.unwrap().is_empty());
    assert_eq!(store.scheduled_actions("t", false).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_taken_secret_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .put_secret("initial-password:t:CN=a", "s3cret!")
        .await
        .unwrap();
    assert_eq!(
        store
            .take_secret("initial-password:t:CN=a")
            .await
            .unwrap()
            .as_deref(),
        Some("s3cret!")
    );
    assert!(
        store
            .take_secret("initial-password:t:CN=a")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.secret("initial-password:t:CN=a").await.unwrap().is_none());
}

/// Every job runs these; a plan that scans a table would slow each job as the store grows.
#[tokio::test]
async fn the_queries_every_job_runs_use_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let plans = [
        (NEWEST_PER_SOURCE.to_string(), "events_person"),
        (REPORTS_OF.to_string(), "lifecycles_by_manager"),
        (
            format!("SELECT id FROM scheduled_actions {OPEN_ACTIONS_OF}"),
            "scheduled_actions_open",
        ),
    ];
    for (sql, index) in plans {
        let plan: Vec<String> = store
            .read(|c| {
                let mut q = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let rows = q.query_map(params!["t", "p"], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains(&format!("INDEX {index} ("))),
            "{sql}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{sql}: {plan:?}"
        );
    }
}
