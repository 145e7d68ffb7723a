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

/// KPIs over time: events bucketed by arrival per source, provisioned joiners and their time
/// to provision, first-day access, failures counted for the source and the destination.
pub async fn kpis_over_time_are_bucketed_per_source_and_destination(store: Arc<dyn Store>) {
    const HOUR: i64 = 3_600_000;
    let since = now() - 3 * HOUR;
    let at = |hours_in: i64, key: &str, person: &str, source: &str| {
        let mut e = event(key, person);
        e.source = source.into();
        e.received_ms = since + hours_in * HOUR + 60_000;
        e
    };
    let mut ready = at(0, "a", "p1", "hr");
    ready.start_date = Some("2999-01-01".into());
    let mut update = at(0, "b", "p2", "hr");
    update.kind = RecordKind::Person(EventKind::Update);
    let lever = at(1, "c", "p3", "lever");
    let outside = at(-1, "d", "p4", "hr");
    intake(&store, vec![outside, ready, update, lever]).await;
    for job in claim(&store, "w").await {
        let lease = job.lease("w");
        if job.person_key == "p3" {
            // Lever's hire: one operation in `ad` that fails once, then applies.
            let mut planned = NewOperation {
                job_id: job.id,
                tenant: "t".into(),
                destination: "ad".into(),
                op_key: "ad/create".into(),
                kind: OperationKind::Create,
                target: None,
                destructive: false,
                now_ms: now(),
            };
            let ids = store
                .ops_started(&lease, vec![], vec![planned.clone()], vec![])
                .await
                .unwrap();
            let result = |status| OpResult {
                status,
                detail: String::new(),
                anchor: None,
                now_ms: now(),
            };
            let failed = FinishedOp {
                op_id: ids[0],
                result: result(OperationStatus::Failed),
                link: None,
                audit: vec![],
            };
            planned.now_ms = now();
            store
                .ops_started(&lease, vec![failed], vec![planned], vec![])
                .await
                .unwrap();
            let applied = FinishedOp {
                op_id: ids[0],
                result: result(OperationStatus::Done),
                link: None,
                audit: vec![],
            };
            store.ops_finished(&lease, vec![applied]).await.unwrap();
        }
        assert!(complete(&store, &lease).await);
    }
    let series = store.kpi_series("t", since, now() + HOUR, HOUR).await.unwrap();
    assert_eq!((series.since_ms, series.bucket_ms), (since, HOUR));
    let sources: Vec<_> = series
        .sources
        .iter()
        .map(|p| {
            (
                p.start_ms - since,
                p.source.as_str(),
                p.events,
                p.provisioned,
                p.failures,
            )
        })
        .collect();
    assert_eq!(
        sources,
        [(0, "hr", 2, 1, 0), (HOUR, "lever", 1, 1, 1)],
        "the event before `since` is outside; an update is not provisioned"
    );
    let hr = &series.sources[0];
    assert_eq!((hr.first_day_ready, hr.first_day_total), (1, 1));
    assert!(hr.time_to_provision_p50_ms.is_some_and(|ms| ms > 0));
    assert_eq!(series.sources[1].first_day_total, 0, "no start date");
    // Operations by when they started: this hour, in `ad`.
    assert_eq!(series.destinations.len(), 1, "{:?}", series.destinations);
    let ad = &series.destinations[0];
    assert_eq!(
        (ad.destination.as_str(), ad.operations, ad.failures),
        ("ad", 1, 1)
    );
    assert_eq!(ad.start_ms, crate::bucket_of(now(), since, HOUR));
    // Another tenant, or a window with nothing in it, has no points.
    assert_eq!(
        store
            .kpi_series("other", since, now() + HOUR, HOUR)
            .await
            .unwrap()
            .sources
            .len(),
        0
    );
    let empty = store
        .kpi_series("t", since - 10 * HOUR, since - 5 * HOUR, HOUR)
        .await
        .unwrap();
    assert!(empty.sources.is_empty() && empty.destinations.is_empty());
}
