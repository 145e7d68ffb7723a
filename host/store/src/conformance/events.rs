//! Events, identity, cursors and unique names.

use super::{audited, claim, complete, event, intake, jobs, now};
use crate::*;
use std::sync::Arc;

pub async fn intake_deduplicates_by_idempotency_key(store: Arc<dyn Store>) {
    let first = intake(&store, vec![event("a", "p1"), event("b", "p2")]).await;
    assert!(
        first.iter().all(|i| matches!(i, Intake::Accepted { .. })),
        "{first:?}"
    );
    // The same key again, alone or in a batch: the same event and job, nothing new.
    let again = intake(&store, vec![event("a", "p1"), event("c", "p3")]).await;
    assert_eq!(
        again[0],
        Intake::Duplicate {
            event_id: first[0].event_id(),
            job_id: first[0].job_id()
        }
    );
    assert!(matches!(again[1], Intake::Accepted { .. }));
    // Keys are per tenant.
    let mut other = event("a", "p1");
    other.tenant = "other".into();
    assert!(matches!(
        intake(&store, vec![other]).await[0],
        Intake::Accepted { .. }
    ));
    assert_eq!(jobs(&store, None).await.len(), 3);
    assert_eq!(audited(&store, AuditKind::EventReceived).await.len(), 3);
    let stored = store.event("t", first[0].event_id()).await.unwrap().unwrap();
    assert_eq!(
        (stored.kind, stored.person_key.as_str(), stored.body.as_str()),
        (RecordKind::Person(EventKind::Joiner), "p1", "{\"record\":\"a\"}")
    );
    assert!(store.event("other", first[0].event_id()).await.unwrap().is_none());
}

pub async fn intake_links_people_across_sources(store: Arc<dyn Store>) {
    let mut hr = event("hr-1", "hr:1");
    hr.link_keys = vec!["id:hr:1".into(), "email:ada@x.test".into()];
    intake(&store, vec![hr]).await;
    // Another source's record with the same email joins the person.
    let mut ats = event("lever-9", "lever:9");
    ats.source = "lever".into();
    ats.link_keys = vec!["id:lever:9".into(), "email:ada@x.test".into()];
    intake(&store, vec![ats]).await;
    let rows = jobs(&store, None).await;
    assert_eq!(
        rows.iter().map(|j| j.person_key.as_str()).collect::<Vec<_>>(),
        ["hr:1", "hr:1"]
    );
    for key in ["id:lever:9", "email:ada@x.test", "id:hr:1"] {
        assert_eq!(
            store
                .identity_owner("t", &[key.to_string()])
                .await
                .unwrap()
                .as_deref(),
            Some("hr:1"),
            "{key}"
        );
    }
    assert_eq!(store.identity_owner("t", &["id:x:1".into()]).await.unwrap(), None);
    // The first key already known wins.
    let keys = vec!["id:x:1".to_string(), "id:lever:9".to_string()];
    assert_eq!(
        store.identity_owner("t", &keys).await.unwrap().as_deref(),
        Some("hr:1")
    );
}

pub async fn intake_stores_the_cursor_with_its_events(store: Arc<dyn Store>) {
    assert_eq!(store.cursor("t", "hr").await.unwrap(), None);
    let cursor = CursorUpdate {
        tenant: "t".into(),
        source: "hr".into(),
        cursor: "page-2".into(),
    };
    store.intake(vec![event("a", "p1")], Some(cursor)).await.unwrap();
    assert_eq!(store.cursor("t", "hr").await.unwrap().as_deref(), Some("page-2"));
    let cursor = CursorUpdate {
        tenant: "t".into(),
        source: "hr".into(),
        cursor: "page-3".into(),
    };
    store.intake(vec![], Some(cursor)).await.unwrap();
    assert_eq!(store.cursor("t", "hr").await.unwrap().as_deref(), Some("page-3"));
    assert_eq!(store.cursor("t", "lever").await.unwrap(), None);
}

pub async fn events_are_found_by_record_person_and_source(store: Arc<dyn Store>) {
    let mut first = event("k1", "p1");
    first.source_record_id = "rec".into();
    let mut second = event("k2", "p1");
    second.source_record_id = "rec".into();
    let mut withdrawn = event("k3", "p1");
    withdrawn.kind = RecordKind::Person(EventKind::Withdrawn);
    let mut other_source = event("k4", "p1");
    other_source.source = "lever".into();
    let ids: Vec<i64> = intake(
        &store,
        vec![first, second, withdrawn, other_source, event("k5", "p2")],
    )
    .await
    .iter()
    .map(Intake::event_id)
    .collect();
    let newest = store.event_by_record("t", "hr", "rec").await.unwrap().unwrap();
    assert_eq!(newest.id, ids[1]);
    assert!(
        store
            .event_by_record("t", "lever", "rec")
            .await
            .unwrap()
            .is_none()
    );
    // Every person with events, page by page.
    assert_eq!(store.person_keys("t", None, 100).await.unwrap(), ["p1", "p2"]);
    assert_eq!(store.person_keys("t", None, 1).await.unwrap(), ["p1"]);
    assert_eq!(store.person_keys("t", Some("p1"), 1).await.unwrap(), ["p2"]);
    assert!(store.person_keys("t", Some("p2"), 1).await.unwrap().is_empty());
    // The newest of each source for one person, newest first.
    let per_source: Vec<(String, i64)> = store
        .latest_events_of("t", "p1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.source, e.id))
        .collect();
    assert_eq!(
        per_source,
        [("lever".to_string(), ids[3]), ("hr".to_string(), ids[2])]
    );
    // The full record before an event passes over a withdrawal (it carries ids only).
    let before = store.record_before("t", "p1", ids[3]).await.unwrap().unwrap();
    assert_eq!(before.id, ids[1]);
    assert!(store.record_before("t", "p1", ids[0]).await.unwrap().is_none());
}

pub async fn a_newer_record_supersedes_a_job_held_on_a_rules_error(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("x", "p2")]).await;
    let claimed = claim(&store, "w").await;
    for job in &claimed {
        let held = Finish::Held {
            reason: format!("rules: {}: no family name", job.person_key),
        };
        assert!(
            store
                .finish(&job.lease("w"), held, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    let newer = intake(&store, vec![event("b", "p1")]).await;
    let rows = jobs(&store, None).await;
    let state = |id: i64| rows.iter().find(|j| j.id == id).map(|j| j.state);
    let p1_first = claimed.iter().find(|j| j.person_key == "p1").unwrap().id;
    let p2 = claimed.iter().find(|j| j.person_key == "p2").unwrap().id;
    assert_eq!(state(p1_first), Some(JobState::Cancelled));
    assert_eq!(state(p2), Some(JobState::Held), "another person's hold stays");
    assert_eq!(state(newer[0].job_id()), Some(JobState::Available));
    let superseded = audited(&store, AuditKind::JobSuperseded).await;
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0].record.job_id, Some(p1_first));
}

pub async fn newer_applied_finds_completed_newer_records(store: Arc<dyn Store>) {
    let mut newer = event("new", "p1");
    newer.occurred_ms = Some(2_000);
    intake(&store, vec![newer]).await;
    // Not applied yet: nothing to protect.
    assert_eq!(store.newer_applied("t", "p1", 1_000).await.unwrap(), None);
    let job = claim(&store, "w").await.remove(0);
    assert!(complete(&store, &job.lease("w")).await);
    assert_eq!(
        store.newer_applied("t", "p1", 1_000).await.unwrap(),
        Some(job.event.id)
    );
    assert_eq!(store.newer_applied("t", "p1", 2_000).await.unwrap(), None);
    assert_eq!(store.newer_applied("t", "p2", 1_000).await.unwrap(), None);
}

pub async fn unique_names_are_claimed_once_case_insensitively(store: Arc<dyn Store>) {
    assert!(store.claim_name("t", "login", "ada.byron", "p1").await.unwrap());
    assert!(!store.claim_name("t", "login", "Ada.Byron", "p2").await.unwrap());
    assert!(
        store.claim_name("t", "login", "ADA.BYRON", "p1").await.unwrap(),
        "the holder again"
    );
    assert!(
        store
            .claim_name("other", "login", "ada.byron", "p2")
            .await
            .unwrap(),
        "per tenant"
    );
    assert!(
        store.claim_name("t", "mail", "ada.byron", "p2").await.unwrap(),
        "per attribute"
    );
    assert_eq!(
        store.claimed_name("t", "login", "p1").await.unwrap().as_deref(),
        Some("ada.byron")
    );
    // A new value gives the old one up.
    assert!(
        store
            .claim_name("t", "login", "ada.lovelace", "p1")
            .await
            .unwrap()
    );
    assert!(store.claim_name("t", "login", "ada.byron", "p2").await.unwrap());
    assert_eq!(
        store.claimed_name("t", "login", "p1").await.unwrap().as_deref(),
        Some("ada.lovelace")
    );
    assert_eq!(store.claimed_name("t", "login", "p3").await.unwrap(), None);
    let _ = now();
}
