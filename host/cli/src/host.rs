//! Builds a running host from its config: store, plugin runtime, pipeline
//! and HTTP API, and runs them until a shutdown signal.

use crate::config::{HostConfig, secret_names};
use anyhow::{Context, Result, bail};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tenure_capabilities::SystemClock;
use tenure_pipeline::{Pipeline, PipelineConfig, SourceConfig};
use tenure_registry::PluginRegistry;
use tenure_runtime::{Runtime, RuntimeOptions, Services};
use tenure_server::{ApiToken, AppState};
use tenure_store::crypto::MasterKey;
use tenure_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};
use tokio::sync::watch;

/// Everything a running host holds.
pub struct Host {
    pub pipeline: Arc<Pipeline>,
    pub state: AppState,
    pub sources: Vec<(String, SourceConfig)>,
    /// The HTTP server's deadlines.
    pub limits: tenure_server::ServeLimits,
}

/// Set by `tenure audit accept-head`: open the store even when its audit head file disagrees.
static ACCEPT_AUDIT_HEAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes this process open the store despite an audit head mismatch (to accept it).
pub fn accept_audit_head_at_open() {
    ACCEPT_AUDIT_HEAD.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn accept_audit_head() -> bool {
    ACCEPT_AUDIT_HEAD.load(std::sync::atomic::Ordering::Relaxed)
}

/// Opens the store a config names: PostgreSQL when `store.url` is set, else the SQLite file.
pub async fn open_store(config: &HostConfig) -> Result<Arc<dyn Store>> {
    match &config.store.url {
        Some(url) => Ok(open_postgres(config, url).await?),
        None => Ok(open_sqlite(config)?),
    }
}

/// Opens the PostgreSQL database every host of a deployment shares.
async fn open_postgres(config: &HostConfig, url: &str) -> Result<Arc<PgStore>> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("store.url: expected postgres://user:password@host:port/database");
    }
    let master = MasterKey::load_existing(config.store.key_file.as_deref())?;
    let options = PgOptions {
        max_connections: config.store.max_connections,
        ..PgOptions::new(url)
    };
    PgStore::open(&options, master)
        .await
        .context("cannot open the PostgreSQL store (store.url)")
}

/// Opens the embedded SQLite store a config names (the key made on first start).
pub fn open_sqlite(config: &HostConfig) -> Result<Arc<SqliteStore>> {
    if config.store.url.is_some() {
        bail!("this command works on the embedded SQLite store; this config names a PostgreSQL store.url");
    }
    let key_file = config
        .store
        .key_file
        .clone()
        .unwrap_or_else(|| config.store.path.with_extension("key"));
    let master = MasterKey::load_or_create(&key_file)?;
    if std::env::var_os(tenure_store::crypto::MASTER_KEY_ENV).is_none() {
        for warning in key_placement_warnings(&key_file, &config.store.path) {
            tracing::warn!(key_file = %key_file.display(), "{warning}");
        }
    }
    let options = SqliteOptions {
        path: config.store.path.clone(),
        durability: config.store.synchronous.durability(),
        accept_audit_head: accept_audit_head(),
    };
    SqliteStore::open(&options, master)
        .with_context(|| format!("cannot open the store at {}", config.store.path.display()))
}

/// What is wrong with where the master key file is kept: beside the database (a
/// copy or backup of the data directory then carries the key that opens its secrets
/// and authenticates its audit log), or readable by other users.
pub fn key_placement_warnings(key_file: &Path, database: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let dir_of = |p: &Path| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
    };
    if dir_of(key_file) == dir_of(database) {
        warnings.push(
            "the master key file is in the database's directory: a copy or backup of that directory carries \
                the key to its secrets and audit log. Keep it elsewhere (store.key_file) or set \
                TENURE_MASTER_KEY"
                .to_string(),
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(key_file)
            && meta.permissions().mode() & 0o077 != 0
        {
            warnings.push(format!(
                "the master key file is readable by other users (mode {:o}); chmod 600 it",
                meta.permissions().mode() & 0o777
            ));
        }
    }
    warnings
}

/// The config with placeholders for its `${secret:NAME}` references (enough to open its
/// store), and the names.
fn config_without_secrets(path: &Path) -> Result<(HostConfig, Vec<String>)> {
    let names = secret_names(path)?;
    let placeholder = "x".repeat(32);
    let placeholders: HashMap<String, String> =
        names.iter().map(|n| (n.clone(), placeholder.clone())).collect();
    let config = HostConfig::load_with_secrets(path, &placeholders)?;
    if config
        .store
        .url
        .as_deref()
        .is_some_and(|u| u.contains(&placeholder))
    {
        bail!("store.url: cannot come from the store's own secrets; use ${{ENV}} or ${{file:...}}");
    }
    Ok((config, names))
}

/// Opens the store a config names without resolving its secrets (to add them); also
/// returns the secrets the config references.
pub async fn open_store_of(path: &Path) -> Result<(Arc<dyn Store>, Vec<String>)> {
    let (config, names) = config_without_secrets(path)?;
    Ok((open_store(&config).await?, names))
}

/// Opens the embedded SQLite store a config names (commands that only it has).
pub fn open_sqlite_of(path: &Path) -> Result<Arc<SqliteStore>> {
    open_sqlite(&config_without_secrets(path)?.0)
}

/// Loads a config, resolving `${secret:NAME}` from the store it names.
pub async fn load_config(path: &Path) -> Result<(HostConfig, Arc<dyn Store>)> {
    let (store, names) = open_store_of(path).await?;
    let mut secrets = HashMap::new();
    for name in names {
        if let Some(v) = store.secret(&name).await? {
            secrets.insert(name, v);
        }
    }
    Ok((HostConfig::load_with_secrets(path, &secrets)?, store))
}

/// Builds the host from a loaded config and its store, and brings each tenant's
/// rule set up to its published version (importing the config file's on first start).
pub async fn build(config: HostConfig, store: Arc<dyn Store>) -> Result<Host> {
    let limits = config.server.limits();
    let metrics_token = config.server.metrics_token.clone();
    let policies = config
        .tenants
        .iter()
        .map(|(name, t)| (name.clone(), t.initial_passwords))
        .collect();
    let services = Services::new(store.kv(), Arc::new(SystemClock))?.with_passwords(
        tenure_pipeline::passwords::PasswordVault::start(store.clone(), policies),
    );
    let runtime = Runtime::new(
        RuntimeOptions {
            cache_dir: Some(config.cache_dir.clone()),
            cache_key: Some(tenure_runtime::CacheKey(store.component_cache_key())),
            ..RuntimeOptions::for_workers(config.queue.concurrency)
        },
        services,
    )?;
    let mut plugins = BTreeSet::new();
    for t in config.tenants.values() {
        plugins.extend(t.rules.iter().cloned());
        plugins.extend(t.destinations.iter().map(|d| d.connector.clone()));
        plugins.extend(t.sources.iter().map(|s| s.plugin.clone()));
        plugins.extend(t.plugins.keys().cloned());
    }
    let mut trust = std::collections::BTreeMap::new();
    for (name, t) in &config.tenants {
        t.plugin_trust
            .validate()
            .map_err(|e| anyhow::anyhow!("tenants.{name}.plugin_trust.{e}"))?;
        trust.insert(name.clone(), t.plugin_trust.clone());
    }
    let registry = PluginRegistry::new(store.clone(), runtime.clone(), trust);
    for name in &plugins {
        let path = config.plugins_dir.join(format!("{name}.wasm"));
        if !path.exists() {
            continue;
        }
        let version = registry
            .seed_file(&path)
            .await
            .with_context(|| format!("loading plugin {name} from {}", path.display()))?;
        tracing::info!(plugin = %name, version = %version.label, "plugin loaded");
    }
    registry
        .restore()
        .await
        .context("restoring the plugin registry")?;
    for name in &plugins {
        if runtime.current(name).is_err() {
            bail!(
                "plugin {name}: no {} and no version in the registry (run plugins/build.sh first)",
                config.plugins_dir.join(format!("{name}.wasm")).display()
            );
        }
    }
    let mut tenants = std::collections::BTreeMap::new();
    let mut sources = Vec::new();
    let mut config_rule_sets = Vec::new();
    for (name, t) in &config.tenants {
        if let Some(rules) = &t.rules {
            let document = t.plugins.get(rules).and_then(|g| g.rule_set.clone());
            config_rule_sets.push((name.clone(), document));
        }
        runtime.set_tenant(name, t.runtime_config());
        if let Some(p) = t.pipeline() {
            for s in &p.sources {
                s.cron()
                    .map_err(|e| anyhow::anyhow!("tenants.{name}.{}: {}", e.field, e.reason))?;
            }
            sources.extend(p.sources.iter().map(|s| (name.clone(), s.clone())));
            tenants.insert(name.clone(), p);
        }
    }
    // A webhook URL names only its source, so webhook sources are unique across tenants.
    let mut hooks = BTreeSet::new();
    for (tenant, s) in sources.iter().filter(|(_, s)| s.webhook.is_some()) {
        if !hooks.insert(s.name.clone()) {
            bail!(
                "tenants.{tenant}.sources: another tenant already has a webhook source named {:?}",
                s.name
            );
        }
    }
    let pipeline_config = PipelineConfig {
        queue: config.queue.clone(),
        tenants,
    };
    let pipeline = Pipeline::new(store.clone(), runtime, pipeline_config)?;
    let tokens = config
        .api_tokens
        .iter()
        .map(|t| {
            ApiToken::new(&t.name, t.role, &t.tenant, &t.token)
                .for_sources(t.sources.clone())
                .held_by(t.person.as_deref().unwrap_or(&t.name))
        })
        .collect();
    let providers = config
        .tenants
        .iter()
        .filter_map(|(name, t)| Some((name.clone(), t.oidc.clone()?)))
        .collect();
    let oidc = tenure_server::oidc::OidcProviders::new(providers, store.sign_in_key())
        .map_err(anyhow::Error::msg)?;
    let mut state = AppState::new(pipeline.clone(), tokens)
        .with_plugin_registry(registry)
        .with_oidc(oidc);
    if let Some(token) = &metrics_token {
        state = state.with_metrics_token(token);
    }
    for (tenant, document) in config_rule_sets {
        let head = state
            .rule_sets
            .bootstrap(&tenant, document.as_deref())
            .await
            .with_context(|| format!("loading the rule set of tenant {tenant}"))?;
        if let Some(h) = head {
            tracing::info!(%tenant, version = h.version, published_by = %h.published_by, "rule set in force");
        }
    }
    Ok(Host {
        pipeline,
        state,
        sources,
        limits,
    })
}

/// Serves the API and runs the workers and pollers until `shutdown` turns true.
pub async fn run(
    host: &Host,
    listener: tokio::net::TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let workers = tokio::spawn(
        host.pipeline
            .clone()
            .run_workers(shutdown.clone(), Duration::from_secs(10)),
    );
    let pollers = tokio::spawn(
        host.pipeline
            .clone()
            .run_pollers(host.sources.clone(), shutdown.clone()),
    );
    let plugins = tokio::spawn(follow_plugins(
        host.state.plugins.clone(),
        host.pipeline.store().changes(),
    ));
    let mut stop = shutdown.clone();
    tenure_server::serve(
        listener,
        tenure_server::router(host.state.clone()),
        host.limits,
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    )
    .await;
    let _ = workers.await;
    let _ = pollers.await;
    plugins.abort();
    Ok(())
}

/// Switches to the plugin versions other hosts of the deployment activate (announced on the
/// store's change feed; after a reconnect, whatever changed meanwhile).
async fn follow_plugins(
    registry: PluginRegistry,
    mut changes: tokio::sync::broadcast::Receiver<tenure_store::Change>,
) {
    use tenure_store::Change;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match changes.recv().await {
            Ok(Change::Plugins | Change::Resync) | Err(RecvError::Lagged(_)) => {
                if let Err(e) = registry.restore().await {
                    tracing::error!(error = %e, "cannot follow the plugin versions activated on other hosts");
                }
            }
            Ok(_) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// Turns true on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = tx.send(true);
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing in-flight jobs");
        let _ = tx.send(true);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::key_placement_warnings;

    #[test]
    fn a_key_beside_the_database_or_open_to_others_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tenure.db");
        let beside = dir.path().join("tenure.key");
        std::fs::write(&beside, "k").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&beside, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let warnings = key_placement_warnings(&beside, &db);
        assert!(
            warnings.iter().any(|w| w.contains("database's directory")),
            "{warnings:?}"
        );
        #[cfg(unix)]
        assert!(warnings.iter().any(|w| w.contains("mode 644")), "{warnings:?}");

        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let apart = keys.join("tenure.key");
        std::fs::write(&apart, "k").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&apart, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(key_placement_warnings(&apart, &db).is_empty());
    }
}
