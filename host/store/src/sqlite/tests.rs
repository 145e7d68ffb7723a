//! What only the SQLite backend can show: its file (append-only audit, sealed
//! secrets, quota bookkeeping) and its query plans. Behaviour every backend
//! shares is in the conformance suite (`tests/conformance_sqlite.rs`).

use super::*;
use crate::crypto::MasterKey;

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
        (events::NEWEST_PER_SOURCE.to_string(), "events_person"),
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
