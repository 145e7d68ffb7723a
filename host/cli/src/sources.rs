//! `tenure sources backfill` and `import`. Backfill polls a source page by page until it has no more,
//! from its stored cursor (or `--since-ms`), with a progress bar. Each page and
//! its cursor are stored in one transaction, so an interrupted backfill resumes
//! where it stopped; the events are applied by `tenure serve`.

use crate::host;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Duration;

/// `tenure sources backfill`: polls until the source has no more pages.
pub async fn backfill(config_path: &Path, tenant: &str, source: &str, since_ms: Option<i64>) -> Result<()> {
    let (config, store) = host::load_config(config_path).await?;
    let source_config = config
        .tenants
        .get(tenant)
        .with_context(|| format!("no tenant {tenant:?} in {}", config_path.display()))?
        .sources
        .iter()
        .find(|s| s.name == source)
        .cloned()
        .with_context(|| format!("tenant {tenant} has no source {source:?}"))?;
    let host = host::build(config, store).await?;
    let pipeline = host.pipeline.clone();
    if let Some(since) = since_ms {
        pipeline
            .ingest_from_source(tenant, source, Vec::new(), Some(since.to_string()))
            .await
            .context("cannot set the cursor")?;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let result = pipeline
        .backfill(tenant, &source_config, |page, r| {
            for rejected in &page.rejected {
                bar.println(format!("rejected: {}: {}", rejected.field, rejected.reason));
            }
            bar.set_message(format!(
                "{} pages, {} events stored, {} already known, {} rejected; cursor {}",
                r.pages,
                r.stored,
                r.duplicates,
                r.rejected,
                page.cursor.as_deref().unwrap_or("-")
            ));
        })
        .await;
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            bar.abandon_with_message(format!("stopped: {e} (run again to resume)"));
            bail!("backfill of {source} stopped: {e}");
        }
    };
    bar.finish();
    println!(
        "backfill of {tenant}/{source}: {} pages, {} new events, {} already known, {} rejected",
        r.pages, r.stored, r.duplicates, r.rejected
    );
    Ok(())
}

/// `tenure sources import`: one file through the source's plugin, stored durably.
pub async fn import(config_path: &Path, tenant: &str, source: &str, file: &Path) -> Result<()> {
    let body = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        _ => bail!("{}: name the file .csv or .json", file.display()),
    };
    let (config, store) = host::load_config(config_path).await?;
    let host = host::build(config, store).await?;
    let payload = tenure_runtime::wit::source::Payload {
        content_type: content_type.into(),
        headers: Vec::new(),
        body,
    };
    // The operator at the command line holds the store's key: their import is audited like an
    // IT administrator's upload with a reason, even for a source that receives signed webhooks.
    let reason = format!("tenure sources import {}", file.display());
    let upload = tenure_pipeline::intake::Upload {
        headers: &[],
        authority: tenure_pipeline::intake::PayloadAuthority::Reason(&reason),
    };
    let operator = tenure_pipeline::intake::Poster {
        name: "cli",
        sources: tenure_pipeline::intake::SourceScope::PushSources,
    };
    let (intake, rejected) = host
        .pipeline
        .ingest_payload(tenant, &operator, source, upload, payload)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    for r in &rejected {
        eprintln!("rejected: {}: {}", r.field, r.reason);
    }
    let stored = intake
        .iter()
        .filter(|i| matches!(i, tenure_store::Intake::Accepted { .. }))
        .count();
    println!(
        "import of {} into {tenant}/{source}: {stored} new events, {} already known, {} rejected",
        file.display(),
        intake.len() - stored,
        rejected.len()
    );
    if !rejected.is_empty() {
        bail!("{} record(s) rejected", rejected.len());
    }
    Ok(())
}
