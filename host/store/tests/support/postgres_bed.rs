// The test bed's PostgreSQL (`scripts/testbeds/postgres.sh` installs and starts it on
// loopback): its URL, and schemas no other test of any run uses.

/// The server's URL: `TENURE_TEST_POSTGRES_URL`, or the test bed's (started if needed).
pub fn url() -> String {
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
pub fn fresh_schema(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}
