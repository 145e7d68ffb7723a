//! Signed audit checkpoints leaving the host: `tenure audit checkpoint`, the schedule
//! `tenure serve` runs from `[audit_checkpoints]`, and where each one is written (a
//! file on other storage, appended; an HTTP endpoint, posted).

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tenure_store::Store;
use tenure_store::checkpoint::{Checkpoint, CheckpointSigner};
use tokio::sync::watch;

/// `[audit_checkpoints]`: where signed checkpoints of the audit chain go, and how often.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Seconds between checkpoints while `tenure serve` runs (at least 10).
    #[serde(default = "default_every")]
    pub every_secs: u64,
    /// A file to append each checkpoint to (one JSON line); keep it on storage the host
    /// cannot rewrite (another machine, a write-once bucket mount).
    pub file: Option<PathBuf>,
    /// An HTTP(S) endpoint each checkpoint is POSTed to as JSON.
    pub url: Option<String>,
    /// The bearer token for `url` (use `${ENV}` or `${secret:NAME}`).
    pub token: Option<String>,
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("every_secs", &self.every_secs)
            .field("file", &self.file)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

fn default_every() -> u64 {
    3600
}

/// Where one checkpoint is written.
#[derive(Debug, Clone)]
pub enum Destination {
    File(PathBuf),
    Stdout,
    Http {
        url: reqwest::Url,
        token: Option<String>,
    },
}

impl CheckpointConfig {
    /// The configured destinations, checked (a bearer token crosses the network only over
    /// https, or to this machine).
    pub fn destinations(&self) -> Result<Vec<Destination>> {
        let mut out = Vec::new();
        if let Some(file) = &self.file {
            out.push(Destination::File(file.clone()));
        }
        if let Some(url) = &self.url {
            out.push(http_destination(url, self.token.clone())?);
        }
        Ok(out)
    }
}

/// An HTTP destination from its URL, refusing a token over plain http to another machine.
pub fn http_destination(url: &str, token: Option<String>) -> Result<Destination> {
    let url = reqwest::Url::parse(url).with_context(|| format!("audit_checkpoints.url: {url:?}"))?;
    let loopback = tenure_capabilities::egress::is_loopback_url(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback || token.is_none() => {}
        "http" => bail!("audit_checkpoints.url: the token would cross the network unencrypted; use https://"),
        other => bail!("audit_checkpoints.url: scheme {other:?} is not http or https"),
    }
    Ok(Destination::Http { url, token })
}

/// Writes one checkpoint to each destination; every destination is tried, and the
/// first failure is returned after all were.
pub async fn publish(checkpoint: &Checkpoint, destinations: &[Destination]) -> Result<()> {
    let mut first_error = None;
    for destination in destinations {
        let written = match destination {
            Destination::Stdout => {
                print!("{}", checkpoint.to_line());
                Ok(())
            }
            Destination::File(path) => append(path, checkpoint),
            Destination::Http { url, token } => post(url, token.as_deref(), checkpoint).await,
        };
        if let Err(e) = written {
            tracing::warn!(seq = checkpoint.seq, error = %format!("{e:#}"), "audit checkpoint not written");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn append(path: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("checkpoint file {}", path.display()))?;
    file.write_all(checkpoint.to_line().as_bytes())
        .and_then(|_| file.sync_data())
        .with_context(|| format!("checkpoint file {}", path.display()))
}

async fn post(url: &reqwest::Url, token: Option<&str>, checkpoint: &Checkpoint) -> Result<()> {
    tenure_capabilities::install_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut request = client.post(url.clone()).json(checkpoint);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("checkpoint endpoint {url}"))?;
    if !response.status().is_success() {
        bail!("checkpoint endpoint {url} answered {}", response.status());
    }
    Ok(())
}

/// Takes one checkpoint (audited as `audit.checkpointed`) and writes it out.
pub async fn take(store: &dyn Store, actor: &str, destinations: &[Destination]) -> Result<Checkpoint> {
    let signer = Arc::new(store.checkpoint_signer()?);
    let checkpoint = store.audit_checkpoint(signer, actor).await?;
    publish(&checkpoint, destinations).await?;
    Ok(checkpoint)
}

/// Takes a checkpoint every `every_secs` until `shutdown` turns true (a failed write is
/// logged and the next one tried on time).
pub async fn run_schedule(
    store: Arc<dyn Store>,
    config: &CheckpointConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let destinations = config.destinations()?;
    if destinations.is_empty() {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(config.every_secs.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
        match take(store.as_ref(), "system", &destinations).await {
            Ok(c) => tracing::info!(seq = c.seq, "audit checkpoint written"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "audit checkpoint failed"),
        }
    }
}

/// Reads a checkpoint file and checks every signature against the trusted key.
pub fn read_verified(path: &Path, trusted_public_key: &str) -> Result<Vec<Checkpoint>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--checkpoint {}", path.display()))?;
    let checkpoints =
        Checkpoint::parse_all(&text).with_context(|| format!("--checkpoint {}", path.display()))?;
    for checkpoint in &checkpoints {
        checkpoint
            .verify(trusted_public_key)
            .with_context(|| format!("--checkpoint {}", path.display()))?;
    }
    Ok(checkpoints)
}

/// The signer's public key, for operators to record beside the checkpoint destination.
pub fn public_key(store: &dyn Store) -> Result<String> {
    Ok(CheckpointSigner::public_key(&store.checkpoint_signer()?))
}
