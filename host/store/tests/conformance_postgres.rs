//! The PostgreSQL store against the backend conformance suite, on a real PostgreSQL
//! (`scripts/testbeds/postgres.sh` installs and starts it on loopback). Each case gets a
//! schema of its own, so cases run in parallel on one database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tenure_store::crypto::MasterKey;
use tenure_store::{PgOptions, PgStore, Store};

/// The server's URL: `TENURE_TEST_POSTGRES_URL`, or the test bed's (started if needed).
fn url() -> String {
    if let Ok(url) = std::env::var("TENURE_TEST_POSTGRES_URL") {
        return url;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/testbeds/postgres.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "postgres.sh start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("TENURE_TEST_POSTGRES_URL="))
        .map(String::from)
        .expect("postgres.sh prints TENURE_TEST_POSTGRES_URL")
}

/// A schema name no other case of any run uses.
fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "conformance_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

async fn postgres() -> (Arc<dyn Store>, ()) {
    let options = PgOptions {
        max_connections: 4,
        schema: Some(fresh_schema()),
        ..PgOptions::new(url())
    };
    let store = PgStore::open(&options, MasterKey::from_bytes([7; 32]))
        .await
        .expect("open the PostgreSQL store");
    (store, ())
}

tenure_store::conformance_suite!(postgres);
