//! The embedded SQLite store against the backend conformance suite.

use std::sync::Arc;
use tenure_store::crypto::MasterKey;
use tenure_store::{SqliteOptions, SqliteStore, Store};

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions {
        path: dir.path().join("conformance.db"),
        durability: tenure_store::Durability::ProcessCrash,
        accept_audit_head: false,
    };
    let store = SqliteStore::open(&options, MasterKey::from_bytes([7; 32])).expect("open");
    (store, dir)
}

tenure_store::conformance_suite!(sqlite);
