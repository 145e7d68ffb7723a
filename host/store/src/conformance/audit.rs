//! The audit chain, its filters, KPIs and reports.

use super::{claim, complete, event, intake, now};
use crate::audit::GENESIS;
use crate::*;
use std::sync::Arc;

fn record(kind: AuditKind, person: &str) -> AuditRecord {
    AuditRecord::new("t", kind, "system")
        .person(person)
        .destination("ad")
        .data(serde_json::json!({ "n": 1 }))
}

pub async fn the_audit_chain_links_every_entry_and_verifies(store: Arc<dyn Store>) {
    store
        .append_audit(vec![record(AuditKind::AdminSecretSet, "p1")])
        .await
        .unwrap();
    intake(&store, vec![event("a", "p1")]).await;
    store
        .append_audit(vec![
            record(AuditKind::OpApplied, "p1"),
            record(AuditKind::OpFailed, "p2"),
        ])
        .await
        .unwrap();
    let entries = store.audit(AuditFilter::default()).await.unwrap();
    assert_eq!(entries.len(), 4);
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "sequence without gaps");
        assert_eq!(e.prev_hash, prev, "each entry names the one before");
        assert_eq!(e.hash.len(), 64);
        prev = e.hash.clone();
    }
    let report = store.verify_audit().await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        (report.entries, report.head_seq, report.head_hash.as_str()),
        (4, 4, prev.as_str())
    );
}

pub async fn audit_entries_are_filtered_and_redacted(store: Arc<dyn Store>) {
    let secret = AuditRecord::new("t", AuditKind::AdminSecretSet, "it").data(
        serde_json::json!({ "name": "lever", "api_token": "tok-123", "nested": [{ "password": "pw" }] }),
    );
    let mut elsewhere = record(AuditKind::OpApplied, "p1");
    elsewhere.tenant = "other".into();
    store
        .append_audit(vec![
            secret,
            record(AuditKind::OpApplied, "p1"),
            record(AuditKind::OpFailed, "p2"),
            elsewhere,
        ])
        .await
        .unwrap();
    let all = store.audit(AuditFilter::default()).await.unwrap();
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("tok-123") && !text.contains("\"pw\""), "{text}");
    assert_eq!(all[0].record.data["name"], "lever");
    let of = |filter: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit(filter)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    let tenant = || AuditFilter {
        tenant: Some("t".into()),
        ..AuditFilter::default()
    };
    assert_eq!(of(tenant()).await, [1, 2, 3]);
    assert_eq!(
        of(AuditFilter {
            person_key: Some("p2".into()),
            ..tenant()
        })
        .await,
        [3]
    );
    assert_eq!(
        of(AuditFilter {
            kind_prefix: Some("op.".into()),
            ..tenant()
        })
        .await,
        [2, 3]
    );
    assert_eq!(
        of(AuditFilter {
            after_seq: Some(2),
            ..AuditFilter::default()
        })
        .await,
        [3, 4]
    );
    assert_eq!(
        of(AuditFilter {
            limit: Some(1),
            ..tenant()
        })
        .await,
        [1]
    );
    assert_eq!(
        of(AuditFilter {
            destination: Some("google".into()),
            ..tenant()
        })
        .await,
        Vec::<i64>::new()
    );
    let t = now();
    assert_eq!(
        of(AuditFilter {
            since_ms: Some(t + 60_000),
            ..tenant()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        of(AuditFilter {
            until_ms: Some(t + 60_000),
            ..tenant()
        })
        .await,
        [1, 2, 3]
    );
}

pub async fn reports_are_stored_listed_without_bodies_and_finished_in_place(store: Arc<dyn Store>) {
    let t = now();
    let first = store
        .put_report(
            "t",
            ReportKind::Reconcile,
            serde_json::json!({ "drift": 1 }),
            serde_json::json!({ "rows": [1] }),
            t,
            10,
        )
        .await
        .unwrap();
    let second = store
        .put_report(
            "t",
            ReportKind::Reconcile,
            serde_json::json!({ "drift": 2 }),
            serde_json::json!({ "rows": [2] }),
            t,
            10,
        )
        .await
        .unwrap();
    let listed = store.reports("t", ReportKind::Reconcile, 10).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [second, first]);
    assert!(
        listed
            .iter()
            .all(|r| r.body.is_null() && r.kind == ReportKind::Reconcile)
    );
    assert_eq!(listed[0].summary["drift"], 2);
    let full = store.report("t", first).await.unwrap().unwrap();
    assert_eq!(full.body["rows"][0], 1);
    assert!(store.report("other", first).await.unwrap().is_none());
    assert_eq!(
        store.reports("t", ReportKind::Reconcile, 1).await.unwrap().len(),
        1
    );
    // Retention: only the newest `keep` of a tenant's reports stay.
    let third = store
        .put_report(
            "t",
            ReportKind::Reconcile,
            serde_json::json!({}),
            serde_json::json!({}),
            t,
            2,
        )
        .await
        .unwrap();
    let kept: Vec<i64> = store
        .reports("t", ReportKind::Reconcile, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, [third, second]);
    assert!(store.report("t", first).await.unwrap().is_none());
    // A started report is finished in place, under its id; another tenant's is not reached.
    let done = serde_json::json!({ "status": "done" });
    let rows = serde_json::json!({ "rows": [3] });
    assert!(
        store
            .update_report("t", third, done.clone(), rows.clone())
            .await
            .unwrap()
    );
    let finished = store.report("t", third).await.unwrap().unwrap();
    assert_eq!((&finished.summary, &finished.body), (&done, &rows));
    assert!(
        !store
            .update_report("other", third, done.clone(), rows)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_report("t", first, done, serde_json::json!({}))
            .await
            .unwrap()
    );
}

pub async fn kpis_count_events_jobs_and_time_to_provision(store: Arc<dyn Store>) {
    let mut early = event("a", "p1");
    early.start_date = Some("2999-01-01".into());
    let mut late = event("b", "p2");
    late.start_date = Some("2001-01-01".into());
    let mut update = event("c", "p3");
    update.kind = RecordKind::Person(EventKind::Update);
    intake(&store, vec![early, late, update]).await;
    let claimed = claim(&store, "w").await;
    for job in &claimed {
        assert!(complete(&store, &job.lease("w")).await);
    }
    let k = store.kpis("t").await.unwrap();
    assert_eq!((k.events, k.completed_jobs, k.dead_jobs), (3, 3, 0));
    assert!(k.time_to_provision_p50_ms.is_some() && k.time_to_provision_p95_ms.is_some());
    // Of the joiners with a start date, the one done before it.
    assert_eq!((k.first_day_ready, k.first_day_total), (1, 2));
    assert_eq!(k.first_day_access_rate, Some(0.5));
    assert_eq!(k.errors_per_1000_events, 0.0);
    assert_eq!(store.kpis("other").await.unwrap().events, 0);
}

/// First-day access counts from midnight where the person works: two joiners with the
/// same start date, done at the same moment, one on UTC-12 (ready: their day has not
/// begun) and one on UTC+14 (late: it began hours ago).
pub async fn first_day_access_counts_from_the_persons_midnight(store: Arc<dyn Store>) {
    let start = chrono::DateTime::from_timestamp_millis(now() - 12 * 3_600_000)
        .map(|t| t.date_naive() + chrono::Days::new(1))
        .expect("a date")
        .to_string();
    let mut west = event("w", "west");
    west.start_date = Some(start.clone());
    let mut east = event("e", "east");
    east.start_date = Some(start);
    intake(&store, vec![west, east]).await;
    for job in claim(&store, "w").await {
        let zone = if job.person_key == "west" {
            "Etc/GMT+12"
        } else {
            "Etc/GMT-14"
        };
        let row = LifecycleRow {
            person_key: job.person_key.clone(),
            state: Some(LifecycleState::Active),
            manager_key: None,
            doc: format!("{{\"time_zone\":\"{zone}\"}}"),
            updated_ms: now(),
            name: None,
            email: None,
        };
        store.put_lifecycle(&job.lease("w"), "t", row).await.unwrap();
        assert!(complete(&store, &job.lease("w")).await);
    }
    let k = store.kpis("t").await.unwrap();
    assert_eq!((k.first_day_ready, k.first_day_total), (1, 2));
}
