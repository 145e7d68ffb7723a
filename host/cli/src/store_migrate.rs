//! `tenure store migrate`: an embedded SQLite store copied into PostgreSQL, checked.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use tenure_store::crypto::MasterKey;
use tenure_store::{AuditStore, CopyReport, PgOptions, PgStore, SqliteOptions, SqliteStore};

/// Copies `from` (`sqlite:PATH`) into the empty database at `to` and checks the copy.
pub async fn run(from: &str, to: &str, key_file: Option<PathBuf>) -> Result<CopyReport> {
    let Some(path) = from.strip_prefix("sqlite:").map(PathBuf::from) else {
        bail!("--from: expected sqlite:PATH");
    };
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to: expected postgres://user:password@host:port/database");
    }
    if !path.exists() {
        bail!("--from: {} does not exist", path.display());
    }
    let key_file = key_file.unwrap_or_else(|| path.with_extension("key"));
    let master = MasterKey::load_existing(Some(&key_file))?;
    // Opened as the host opens it: its schema brought up to date and its head file checked;
    // a chain that does not verify is not copied.
    let source = SqliteStore::open(
        &SqliteOptions {
            path: path.clone(),
            durability: tenure_store::Durability::PowerLoss,
            accept_audit_head: false,
        },
        master.clone(),
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    let verified = source.verify_audit().await?;
    if let Some(problem) = verified.problem {
        bail!(
            "the source's audit chain does not verify at entry {}: {}; fix that before copying",
            problem.seq,
            problem.reason
        );
    }
    drop(source);
    let target = PgStore::open(&PgOptions::new(to), master)
        .await
        .context("cannot open the PostgreSQL store (--to)")?;
    let report = target.copy_from_sqlite(&path).await?;
    target.close().await;
    Ok(report)
}
