//! What only the SQLite backend can show: its file (append-only audit, sealed
//! secrets, quota bookkeeping) and its query plans. Behaviour every backend
//! shares is in the conformance suite (`tests/conformance_sqlite.rs`).

use super::*;
use crate::crypto::MasterKey;
use crate::kpis::date_start_ms;

fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let options = SqliteOptions {
        path: dir.path().join("t.db"),
        durability: crate::Durability::PowerLoss,
        accept_audit_head: false,
    };
    SqliteStore::open(&options, MasterKey::from_bytes([1; 32])).unwrap()
}

#[tokio::test]
async fn the_audit_table_is_append_only_and_secrets_are_sealed_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .append_audit(vec![AuditRecord::new("t", AuditKind::AdminSecretSet, "it")])
        .await
        .unwrap();
    let conn = Connection::open(store.path()).unwrap();
    for sql in ["UPDATE audit SET actor = 'x'", "DELETE FROM audit"] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    store.put_secret("lever", "s3cret").await.unwrap();
    let raw: Vec<u8> = conn
        .query_row("SELECT ciphertext FROM secrets", [], |r| r.get(0))
        .unwrap();
    assert!(!raw.windows(6).any(|w| w == b"s3cret"));
}

#[tokio::test]
async fn an_edited_or_truncated_audit_file_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let records = (0..3)
        .map(|i| AuditRecord::new("t", AuditKind::AdminSecretSet, "it").data(serde_json::json!({ "n": i })))
        .collect();
    store.append_audit(records).await.unwrap();
    assert!(store.verify_audit().await.unwrap().ok());
    // Past the triggers (as someone with the file would): an edit breaks the chain.
    let conn = Connection::open(store.path()).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;
         UPDATE audit SET data = '{\"n\":9}' WHERE seq = 2;",
    )
    .unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.problem.map(|p| p.seq), Some(2));
}

#[tokio::test]
async fn audit_details_are_stored_compressed_and_hashes_as_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let summary = "added a-17 to Finance";
    let details = serde_json::json!({ "anchor": "a-17", "key": "ad/add/Finance", "op": "add-member",
        "status": "done", "summary": summary, "target": "Finance" });
    store
        .append_audit(vec![
            AuditRecord::new("t", AuditKind::OpApplied, "system").data(details.clone()),
        ])
        .await
        .unwrap();
    let conn = Connection::open(store.path()).unwrap();
    let (data, hash): (Vec<u8>, Vec<u8>) = conn
        .query_row("SELECT data, hash FROM audit", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(data.len() * 2 < details.to_string().len(), "{} bytes", data.len());
    assert!(!data.windows(summary.len()).any(|w| w == summary.as_bytes()));
    assert_eq!(hash.len(), 32);
    let entries = store.audit(AuditFilter::default()).await.unwrap();
    assert_eq!(entries[0].record.data, details);
    assert_eq!(entries[0].hash, hex::encode(&hash));
    assert_eq!(entries[0].prev_hash, crate::audit::GENESIS);
}

#[tokio::test]
async fn an_audit_log_written_before_the_compact_encoding_still_verifies_and_grows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let records = |from: i64| {
        (from..from + 3)
            .map(|i| {
                AuditRecord::new("t", AuditKind::AdminSecretSet, "it").data(serde_json::json!({ "n": i }))
            })
            .collect::<Vec<_>>()
    };
    store.append_audit(records(0)).await.unwrap();
    let before = store.audit(AuditFilter::default()).await.unwrap();
    drop(store);
    // The layout before: details and hashes as text, and each entry's previous hash stored too.
    let conn = Connection::open(dir.path().join("t.db")).unwrap();
    conn.execute_batch(
        "DROP TABLE audit;
         CREATE TABLE audit (seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, tenant TEXT NOT NULL,
             kind TEXT NOT NULL, actor TEXT NOT NULL, person_key TEXT, destination TEXT, event_id INTEGER,
             job_id INTEGER, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    )
    .unwrap();
    for e in &before {
        conn.execute(
            "INSERT INTO audit VALUES (?1, ?2, 't', 'admin.secret_set', 'it', \
                NULL, NULL, NULL, NULL, ?3, ?4, ?5)",
            params![e.seq, e.ts_ms, e.record.data.to_string(), e.prev_hash, e.hash],
        )
        .unwrap();
    }
    drop(conn);
    let store = open(&dir);
    assert!(
        store.verify_audit().await.unwrap().ok(),
        "the old rows verify after the migration"
    );
    store.append_audit(records(3)).await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.entries, 6);
    let after = store.audit(AuditFilter::default()).await.unwrap();
    assert_eq!(
        after[..3].iter().map(|e| &e.hash).collect::<Vec<_>>(),
        before.iter().map(|e| &e.hash).collect::<Vec<_>>()
    );
    assert_eq!(
        after[3].prev_hash, before[2].hash,
        "the chain continues from the old rows"
    );
    assert_eq!(after[5].record.data, serde_json::json!({ "n": 5 }));
    let columns: Vec<String> = Connection::open(store.path())
        .unwrap()
        .prepare("SELECT name FROM pragma_table_info('audit')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!columns.iter().any(|c| c == "prev_hash"), "{columns:?}");
}

#[tokio::test]
async fn damaged_compressed_details_fail_verification_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let records = (0..3)
        .map(|i| {
            AuditRecord::new("t", AuditKind::OpApplied, "system")
                .data(serde_json::json!({ "key": "ad/create", "op": "create", "status": "done", "n": i }))
        })
        .collect();
    store.append_audit(records).await.unwrap();
    let conn = Connection::open(store.path()).unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update;
         UPDATE audit SET data = substr(data, 1, length(data) - 2) WHERE seq = 2;",
    )
    .unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.problem.map(|p| p.seq), Some(2));
    let entries = store.audit(AuditFilter::default()).await.unwrap();
    assert!(
        entries[1]
            .record
            .data
            .as_str()
            .is_some_and(|s| s.starts_with("<unreadable"))
    );
}

#[tokio::test]
async fn event_bodies_are_stored_compressed_and_older_text_bodies_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let body = concat!(
        r#"{"v":1,"kind":"joiner","person":{"ids":[{"source":"hr","id":"E42"}],"given_name":"Ada","#,
        r#""family_name":"Lovelace","emails":[{"kind":"work","value":"ada@example.com","primary":true}],"#,
        r#""department":"Engineering","status":"active"},"source_record_id":"hire-E42"}"#
    );
    let mut first = crate::conformance::event("k1", "hr:E42");
    first.body = body.into();
    let mut second = crate::conformance::event("k2", "hr:E43");
    second.body = body.replace("E42", "E43");
    store.intake(vec![first, second], None).await.unwrap();
    let conn = Connection::open(store.path()).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT body FROM events WHERE idempotency_key = 'k1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        stored.len() * 2 < body.len(),
        "{} bytes from {}",
        stored.len(),
        body.len()
    );
    let first_id: i64 = conn
        .query_row("SELECT id FROM events WHERE idempotency_key = 'k1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(store.event("t", first_id).await.unwrap().unwrap().body, body);
    // A row written before the compact encoding keeps its text body.
    conn.execute("UPDATE events SET body = ?1 WHERE idempotency_key = 'k2'", [body])
        .unwrap();
    let second_id = first_id + 1;
    assert_eq!(store.event("t", second_id).await.unwrap().unwrap().body, body);
}

#[tokio::test]
async fn kv_quotas_are_kept_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let kv = store.kv();
    let a = tenure_capabilities::KvNamespace {
        tenant: "a".into(),
        plugin: "p".into(),
    };
    kv.set(&a, "user/1", b"x").await.unwrap();
    kv.set(&a, "user/2", b"y").await.unwrap();
    kv.remove(&a, "user/1").await.unwrap();
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

/// Every job runs these; a plan that scans a table would slow each job as the store grows.
#[tokio::test]
async fn the_queries_every_job_runs_use_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let plans = [
        (events::NEWEST_PER_SOURCE.to_string(), "events_person_id"),
        (schedule::REPORTS_OF.to_string(), "lifecycles_by_manager"),
        (
            format!("SELECT id FROM scheduled_actions {}", schedule::OPEN_ACTIONS_OF),
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

#[test]
fn every_state_and_kind_reads_back_from_its_column() {
    let conn = Connection::open_in_memory().unwrap();
    fn round<T: rusqlite::ToSql + rusqlite::types::FromSql + PartialEq + std::fmt::Debug>(
        c: &Connection,
        v: T,
    ) {
        let back: T = c.query_row("SELECT ?1", [&v], |r| r.get(0)).unwrap();
        assert_eq!(back, v);
    }
    JobState::ALL.iter().for_each(|v| round(&conn, *v));
    AuditKind::ALL.iter().for_each(|v| round(&conn, *v));
    OperationStatus::ALL.iter().for_each(|v| round(&conn, *v));
    for k in [
        ActionKind::Notice { days: 14 },
        ActionKind::LeaverStep(3),
        ActionKind::Wake,
    ] {
        round(&conn, k);
        round(&conn, RecordKind::Scheduled(k));
    }
    round(&conn, RecordKind::Person(EventKind::LeaveStart));
    let bad: rusqlite::Result<JobState> = conn.query_row("SELECT 'exploded'", [], |r| r.get(0));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("\"exploded\" is not a JobState")
    );
}

#[tokio::test]
async fn a_key_value_write_answered_at_commit_is_durable_once_settled() {
    use tenure_capabilities::{KvBackend, KvNamespace};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(
        store.writer.early_answers_durable(),
        0,
        "nothing answered early yet"
    );
    let kv = kv::SqliteKv(store.clone());
    let ns = KvNamespace {
        tenant: "t".into(),
        plugin: "sandbox".into(),
    };
    kv.set(&ns, "account/1", b"{}").await.unwrap();
    let target = store.writer.early_answers_durable();
    assert!(target >= 1, "the write was answered at its batch's commit");
    kv.settle().await.unwrap();
    assert!(
        *store.durable.borrow() >= target,
        "settled means the syncer made that batch durable"
    );
    // A write answered after its fsync moves the durable mark past every earlier batch.
    store
        .append_audit(vec![AuditRecord::new("t", AuditKind::AdminSecretSet, "it")])
        .await
        .unwrap();
    assert!(*store.durable.borrow() > target);
    assert_eq!(
        kv.get(&ns, "account/1").await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
}

#[tokio::test]
async fn the_audit_head_file_follows_only_durable_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..20 {
        let record =
            AuditRecord::new("t", AuditKind::AdminSecretSet, "it").data(serde_json::json!({ "n": i }));
        store.append_audit(vec![record]).await.unwrap();
        // Answered means synced and recorded: the head file names this entry.
        let recorded = head::read(&store.head_file, &store.audit_key);
        assert_eq!(recorded.head().map(|(seq, _)| seq), Some(i + 1), "{recorded:?}");
    }
}

#[tokio::test]
async fn a_readiness_ping_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let before = store.writer.batches_committed();
    for _ in 0..50 {
        store.ping().await.unwrap();
    }
    assert_eq!(
        store.writer.batches_committed(),
        before,
        "no transaction, no fsync"
    );
    store
        .append_audit(vec![AuditRecord::new("t", AuditKind::AdminSecretSet, "it")])
        .await
        .unwrap();
    assert_eq!(store.writer.batches_committed(), before + 1);
}

#[tokio::test]
async fn a_lifecycle_table_from_before_people_search_gains_its_columns_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    let conn = Connection::open(dir.path().join("t.db")).unwrap();
    conn.execute_batch(
        "DROP TABLE lifecycles;
         CREATE TABLE lifecycles (tenant TEXT NOT NULL, person_key TEXT NOT NULL, state TEXT NOT NULL,
             manager_key TEXT, doc TEXT NOT NULL, updated_ms INTEGER NOT NULL,
             PRIMARY KEY (tenant, person_key));
         INSERT INTO lifecycles VALUES ('t', 'hr:1', 'active', NULL, '{}', 5);",
    )
    .unwrap();
    drop(conn);
    let store = open(&dir);
    let row = store.lifecycle("t", "hr:1").await.unwrap().expect("kept");
    assert_eq!((row.updated_ms, row.name, row.email), (5, None, None));
    assert_eq!(store.find_people("t", "hr:", 10).await.unwrap().len(), 1);
    drop(store);
    // Opening again finds the columns there and changes nothing.
    let store = open(&dir);
    assert!(store.lifecycle("t", "hr:1").await.unwrap().is_some());
}
