//! The plugin registry: versions, hot swap, rollback, tenants and warm pools.

use crate::bindings::Imports;
use crate::bindings::connector_world::ConnectorPluginPre;
use crate::bindings::rules_world::RulesPluginPre;
use crate::bindings::source_world::SourcePluginPre;
use crate::cache::ComponentCache;
use crate::engine::{RuntimeOptions, build_engine, start_epoch_ticker};
use crate::error::RuntimeError;
use crate::host_state::{Binding, HostState, Services};
use crate::instance::{InstanceLimits, PluginHandle, Warm};
use crate::manifest::{PluginKind, PluginManifest};
use crate::quota::{LiveHosts, QuotaCounters, TenantQuota};
use crate::wit_version::{self, WitVersion};
use arc_swap::ArcSwap;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tenure_capabilities::{CapabilityRequest, EffectiveGrants, KvNamespace, TenantConfig};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

/// Pre-linked, type-checked instantiation of one component (built once per version).
pub(crate) enum Pre {
    Rules(RulesPluginPre<HostState>),
    Connector(ConnectorPluginPre<HostState>),
    Source(SourcePluginPre<HostState>),
}

/// One registered version of a plugin. Immutable once built; warm instances
/// per tenant hang off it, so dropping the version drops its instances.
pub struct PluginVersion {
    pub manifest: PluginManifest,
    pub kind: PluginKind,
    pub wit: WitVersion,
    /// Hex SHA-256 of the component bytes.
    pub sha256: String,
    /// `manifest version + "+" + first 8 hex of the SHA-256`.
    pub label: String,
    pub(crate) pre: Pre,
    engine: Engine,
    warm: Mutex<HashMap<String, Vec<Warm>>>,
    /// Tenants that moved off this version: their calls still running finish on it, but the
    /// instances they give back are dropped, never kept warm.
    retired: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for PluginVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginVersion")
            .field("name", &self.manifest.name)
            .field("label", &self.label)
            .field("kind", &self.kind)
            .field("wit", &self.wit)
            .finish_non_exhaustive()
    }
}

impl PluginVersion {
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn take_warm(&self, tenant: &str, generation: u64, limits: &InstanceLimits) -> Option<Warm> {
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        let idle = warm.get_mut(tenant)?;
        while let Some(w) = idle.pop() {
            limits.idle.fetch_sub(1, Ordering::Relaxed);
            if w.generation == generation {
                return Some(w);
            }
        }
        None
    }

    /// Keeps an instance for reuse, within the per-tenant and runtime-wide idle caps.
    pub(crate) fn put_warm(&self, tenant: &str, mut instance: Warm, limit: usize, limits: &InstanceLimits) {
        let owner = tenant.split('\u{0}').next().unwrap_or(tenant);
        if self
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(owner)
        {
            return;
        }
        instance.release();
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        let idle = match warm.get_mut(tenant) {
            Some(idle) => idle,
            None => warm.entry(tenant.to_string()).or_default(),
        };
        let reserved = limits
            .idle
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limits.max_idle).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            return;
        }
        if idle.len() < limit {
            idle.push(instance);
        } else {
            limits.idle.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `tenant` no longer runs this version: its warm instances (live, draft and shadow pools) go, and
    /// those its running calls give back are dropped.
    fn retire_for(&self, tenant: &str, limits: &InstanceLimits) {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string());
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        let draft = format!("{tenant}\u{0}draft");
        let shadow = format!("{tenant}\u{0}shadow");
        let dropped: usize = [tenant, draft.as_str(), shadow.as_str()]
            .iter()
            .filter_map(|pool| warm.remove(*pool))
            .map(|idle| idle.len())
            .sum();
        limits.idle.fetch_sub(dropped, Ordering::Relaxed);
    }

    /// `tenant` runs this version (again).
    fn reinstate_for(&self, tenant: &str) {
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }
}

struct PluginSlot {
    /// The version tenants run unless they activated another.
    current: ArcSwap<PluginVersion>,
    /// The tenant whose private upload `current` is, when no version offered to every tenant
    /// exists yet: other tenants then run no version of the plugin at all.
    default_owner: RwLock<Option<String>>,
    /// Every version registered, oldest first, for rollback.
    history: Mutex<Vec<Arc<PluginVersion>>>,
    /// Versions tenants activated for themselves, by tenant.
    active: RwLock<HashMap<String, Arc<PluginVersion>>>,
}

impl PluginSlot {
    fn new(version: Arc<PluginVersion>, owner: Option<&str>) -> Self {
        PluginSlot {
            current: ArcSwap::new(version.clone()),
            default_owner: RwLock::new(owner.map(str::to_string)),
            history: Mutex::new(vec![version]),
            active: RwLock::default(),
        }
    }

    /// The version `tenant` runs; none when the only default is another tenant's private upload.
    fn version_for(&self, tenant: &str) -> Option<Arc<PluginVersion>> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = active.get(tenant) {
            return Some(v.clone());
        }
        let owner = self.default_owner.read().unwrap_or_else(|p| p.into_inner());
        match owner.as_deref() {
            Some(o) if o != tenant => None,
            _ => Some(self.current.load_full()),
        }
    }

    fn find(&self, label: &str) -> Option<Arc<PluginVersion>> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().rev().find(|v| v.label == label).cloned()
    }
}

/// What a handle runs besides the tenant's live configuration.
#[derive(Clone, Copy)]
enum Draft<'a> {
    /// The tenant's own configuration and key-value store.
    Live,
    /// Another rule-set document (tests and impact previews of a draft).
    RuleSet(&'a str),
    /// A candidate version under shadow (live configuration, scratch key-value store).
    Shadow,
}

struct TenantEntry {
    config: Arc<TenantConfig>,
    generation: u64,
    /// Kept across config changes that leave the quota as it was (a rule set published).
    quota: Arc<TenantQuota>,
}

/// The plugin host. Cheap to clone; all clones share one engine and registry.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ComponentCache,
    options: RuntimeOptions,
    services: Arc<Services>,
    plugins: RwLock<HashMap<String, Arc<PluginSlot>>>,
    tenants: RwLock<HashMap<String, TenantEntry>>,
    generations: AtomicU64,
    limits: Arc<InstanceLimits>,
    /// The deployment's hosts alive, for each host's share of the tenants' calls per minute.
    hosts: Arc<LiveHosts>,
    /// (tenant, plugin) whose rule set is withheld until one is published.
    withheld: RwLock<std::collections::HashSet<(String, String)>>,
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker.
    pub fn new(options: RuntimeOptions, services: Services) -> Result<Self, RuntimeError> {
        let engine = build_engine(&options)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        Imports::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        start_epoch_ticker(&engine, options.epoch_tick);
        let limits = Arc::new(InstanceLimits {
            busy: Arc::new(tokio::sync::Semaphore::new(options.max_instances as usize)),
            idle: AtomicUsize::new(0),
            max_idle: options.max_idle_instances as usize,
            drafts: Arc::new(tokio::sync::Semaphore::new(options.draft_limit())),
            drafts_per_tenant: options.draft_limit_per_tenant(),
            tenant_drafts: Default::default(),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                cache: ComponentCache::new(options.cache_dir.clone(), options.cache_key),
                engine,
                linker,
                options,
                services: Arc::new(services),
                plugins: RwLock::new(HashMap::new()),
                tenants: RwLock::new(HashMap::new()),
                generations: AtomicU64::new(1),
                limits,
                withheld: RwLock::default(),
                hosts: Arc::default(),
            }),
        })
    }

    /// The host services (key-value backend, clock) this runtime hands plugins.
    pub fn services(&self) -> &Arc<Services> {
        &self.inner.services
    }

    /// Compiles (or loads from cache) and registers a plugin version, which
    /// becomes current at once for every tenant that did not activate a version of its own.
    /// Calls already running finish on the old version.
    pub fn register(
        &self,
        manifest: PluginManifest,
        wasm: &[u8],
    ) -> Result<Arc<PluginVersion>, RuntimeError> {
        let version = self.add_version(manifest, wasm)?;
        let slot = self.slot(&version.manifest.name)?;
        let old = slot.current.swap(version.clone());
        if !Arc::ptr_eq(&old, &version) {
            self.moved_default(&slot, &old, &version);
        }
        tracing::info!(plugin = %version.manifest.name, version = %version.label,
            kind = version.kind.as_str(), wit = %version.wit, "plugin registered");
        Ok(version)
    }

    /// Compiles (or loads from cache) a plugin version and keeps it beside the others, without
    /// making it run anywhere (unless it is the plugin's first). The same bytes give the same
    /// version back. A plugin keeps its kind: a version of another kind is refused.
    pub fn add_version(
        &self,
        manifest: PluginManifest,
        wasm: &[u8],
    ) -> Result<Arc<PluginVersion>, RuntimeError> {
        self.add_owned_version(manifest, wasm, None)
    }

    /// [`add_version`](Self::add_version) for a version `owner` uploaded for itself: it never
    /// becomes what other tenants run, even as the plugin's first version.
    pub fn add_private_version(
        &self,
        manifest: PluginManifest,
        wasm: &[u8],
        owner: &str,
    ) -> Result<Arc<PluginVersion>, RuntimeError> {
        self.add_owned_version(manifest, wasm, Some(owner))
    }

    fn add_owned_version(
        &self,
        manifest: PluginManifest,
        wasm: &[u8],
        owner: Option<&str>,
    ) -> Result<Arc<PluginVersion>, RuntimeError> {
        let inner = &self.inner;
        let (component, sha256) = inner.cache.load(&inner.engine, wasm)?;
        if let Ok(slot) = self.slot(&manifest.name) {
            let history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(same) = history.iter().find(|v| v.sha256 == sha256) {
                return Ok(same.clone());
            }
            let kind = slot.current.load().kind;
            if kind != manifest.kind {
                return Err(RuntimeError::InvalidPlugin {
                    plugin: manifest.name.clone(),
                    reason: format!(
                        "kind: the plugin is a {} plugin; a version cannot make it a {} plugin",
                        kind.as_str(),
                        manifest.kind.as_str()
                    ),
                });
            }
        }
        let info = wit_version::inspect(&inner.engine, &manifest.name, &component)?;
        if info.kind != manifest.kind {
            return Err(RuntimeError::InvalidPlugin {
                plugin: manifest.name.clone(),
                reason: format!(
                    "manifest says kind = {:?} but the component exports the {} interface",
                    manifest.kind.as_str(),
                    info.kind.as_str()
                ),
            });
        }
        let invalid = |e: wasmtime::Error| RuntimeError::InvalidPlugin {
            plugin: manifest.name.clone(),
            reason: format!("cannot link against this host: {e:#}"),
        };
        let instance_pre = inner.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = match info.kind {
            PluginKind::Rules => Pre::Rules(RulesPluginPre::new(instance_pre).map_err(invalid)?),
            PluginKind::Connector => Pre::Connector(ConnectorPluginPre::new(instance_pre).map_err(invalid)?),
            PluginKind::Source => Pre::Source(SourcePluginPre::new(instance_pre).map_err(invalid)?),
        };
        let version = Arc::new(PluginVersion {
            label: format!("{}+{}", manifest.version, &sha256[..8]),
            kind: info.kind,
            wit: info.wit,
            sha256,
            manifest,
            pre,
            engine: inner.engine.clone(),
            warm: Mutex::new(HashMap::new()),
            retired: Mutex::new(HashSet::new()),
        });
        let name = version.manifest.name.clone();
        let mut plugins = inner.plugins.write().unwrap_or_else(|p| p.into_inner());
        match plugins.get(&name) {
            Some(slot) => {
                let mut history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
                // A racing add of the same bytes keeps the first.
                if let Some(same) = history.iter().find(|v| v.sha256 == version.sha256) {
                    return Ok(same.clone());
                }
                history.push(version.clone());
                // The first version offered to every tenant replaces a private default; the
                // tenant that uploaded it keeps running its own (locks in `version_for`'s order).
                let mut active = slot.active.write().unwrap_or_else(|p| p.into_inner());
                let mut default_owner = slot.default_owner.write().unwrap_or_else(|p| p.into_inner());
                if owner.is_none()
                    && let Some(uploader) = default_owner.take()
                {
                    active.entry(uploader).or_insert_with(|| slot.current.load_full());
                    slot.current.store(version.clone());
                }
            }
            None => {
                plugins.insert(name, Arc::new(PluginSlot::new(version.clone(), owner)));
            }
        }
        Ok(version)
    }

    /// Makes `label` the version of `plugin` that `tenant` runs, for calls that start from now
    /// on; calls already running finish on the version they started with, and its warm
    /// instances for the tenant are retired. Returns the version the tenant ran before.
    pub fn activate(
        &self,
        tenant: &str,
        plugin: &str,
        label: &str,
    ) -> Result<Arc<PluginVersion>, RuntimeError> {
        let slot = self.slot(plugin)?;
        let target = slot.find(label).ok_or_else(|| RuntimeError::UnknownVersion {
            plugin: plugin.to_string(),
            version: label.to_string(),
        })?;
        // The default the tenant runs if it activated nothing yet (none: another tenant's
        // private upload, and then it "had" the version it now activates).
        let default = {
            let owner = slot.default_owner.read().unwrap_or_else(|p| p.into_inner());
            match owner.as_deref() {
                Some(o) if o != tenant => target.clone(),
                _ => slot.current.load_full(),
            }
        };
        let previous = {
            let mut active = slot.active.write().unwrap_or_else(|p| p.into_inner());
            let previous = active
                .insert(tenant.to_string(), target.clone())
                .unwrap_or(default);
            target.reinstate_for(tenant);
            previous
        };
        if !Arc::ptr_eq(&previous, &target) {
            previous.retire_for(tenant, &self.inner.limits);
        }
        tracing::info!(tenant, plugin, from = %previous.label, to = %target.label,
            "plugin version activated");
        Ok(previous)
    }

    /// The version of `plugin` that `tenant` runs.
    pub fn active(&self, tenant: &str, plugin: &str) -> Result<Arc<PluginVersion>, RuntimeError> {
        self.slot(plugin)?
            .version_for(tenant)
            .ok_or_else(|| RuntimeError::UnknownPlugin(plugin.to_string()))
    }

    /// One registered version of a plugin.
    pub fn version(&self, plugin: &str, label: &str) -> Result<Arc<PluginVersion>, RuntimeError> {
        self.slot(plugin)?
            .find(label)
            .ok_or_else(|| RuntimeError::UnknownVersion {
                plugin: plugin.to_string(),
                version: label.to_string(),
            })
    }

    /// The default moved from `old` to `new`: tenants without a version of their own leave `old`.
    fn moved_default(&self, slot: &PluginSlot, old: &Arc<PluginVersion>, new: &Arc<PluginVersion>) {
        let active = slot.active.read().unwrap_or_else(|p| p.into_inner());
        let tenants: Vec<String> = self
            .inner
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|t| !active.contains_key(*t))
            .cloned()
            .collect();
        for tenant in &tenants {
            new.reinstate_for(tenant);
            old.retire_for(tenant, &self.inner.limits);
        }
    }

    /// Registers `x.wasm` with the manifest `x.toml` beside it.
    pub fn register_file(&self, wasm: &Path) -> Result<Arc<PluginVersion>, RuntimeError> {
        let manifest = PluginManifest::for_component(wasm)?;
        let bytes = std::fs::read(wasm).map_err(|e| RuntimeError::InvalidPlugin {
            plugin: manifest.name.clone(),
            reason: format!("cannot read {}: {e}", wasm.display()),
        })?;
        self.register(manifest, &bytes)
    }

    /// Makes an earlier version current again: the one with `label`, or the
    /// one before the current when `label` is `None`.
    pub fn rollback(&self, plugin: &str, label: Option<&str>) -> Result<Arc<PluginVersion>, RuntimeError> {
        let slot = self.slot(plugin)?;
        let history = slot.history.lock().unwrap_or_else(|p| p.into_inner());
        let current = slot.current.load_full();
        let target = match label {
            Some(l) => history.iter().rev().find(|v| v.label == l),
            None => {
                let pos = history.iter().rposition(|v| Arc::ptr_eq(v, &current));
                pos.and_then(|p| p.checked_sub(1)).and_then(|p| history.get(p))
            }
        }
        .cloned()
        .ok_or_else(|| RuntimeError::UnknownVersion {
            plugin: plugin.to_string(),
            version: label.unwrap_or("<previous>").to_string(),
        })?;
        drop(history);
        let old = slot.current.swap(target.clone());
        if !Arc::ptr_eq(&old, &target) {
            self.moved_default(&slot, &old, &target);
        }
        tracing::info!(plugin, from = %old.label, to = %target.label, "plugin rolled back");
        Ok(target)
    }

    /// The current version of a plugin.
    pub fn current(&self, plugin: &str) -> Result<Arc<PluginVersion>, RuntimeError> {
        Ok(self.slot(plugin)?.current.load_full())
    }

    /// Every registered version of a plugin, oldest first.
    pub fn versions(&self, plugin: &str) -> Result<Vec<Arc<PluginVersion>>, RuntimeError> {
        Ok(self
            .slot(plugin)?
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone())
    }

    /// Adds or replaces a tenant's config. Warm instances built under the old
    /// config are not reused.
    pub fn set_tenant(&self, name: &str, config: TenantConfig) {
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
        let mut tenants = self.inner.tenants.write().unwrap_or_else(|p| p.into_inner());
        let quota = match tenants.get(name) {
            Some(old) if old.config.plugin_quota == config.plugin_quota => old.quota.clone(),
            old => Arc::new(TenantQuota::new(
                name,
                &config.plugin_quota,
                old.map(|o| o.quota.counters.clone()).unwrap_or_default(),
                self.inner.hosts.clone(),
            )),
        };
        tenants.insert(
            name.to_string(),
            TenantEntry {
                config: Arc::new(config),
                generation,
                quota,
            },
        );
    }

    /// Records how many hosts of the deployment are alive (this one included): each host then
    /// allows its share of every tenant's calls per minute.
    pub fn set_live_hosts(&self, hosts: u64) {
        self.inner.hosts.set(hosts);
    }

    /// The deployment's hosts alive, as last recorded (1 for a host alone).
    pub fn live_hosts(&self) -> u32 {
        self.inner.hosts.get()
    }

    /// Each tenant's plugin calls running (when it has a concurrency limit) and its quota refusals.
    pub fn quota_usage(&self) -> Vec<(String, Option<u64>, Arc<QuotaCounters>)> {
        let tenants = self.inner.tenants.read().unwrap_or_else(|p| p.into_inner());
        tenants
            .iter()
            .map(|(name, t)| (name.clone(), t.quota.running(), t.quota.counters.clone()))
            .collect()
    }

    /// What the version of `plugin` that `tenant` runs may use: what its manifest requests and
    /// the tenant grants it.
    pub fn grants(&self, tenant: &str, plugin: &str) -> Result<CapabilityRequest, RuntimeError> {
        let version = self.active(tenant, plugin)?;
        let tenants = self.inner.tenants.read().unwrap_or_else(|p| p.into_inner());
        let entry = tenants
            .get(tenant)
            .ok_or_else(|| RuntimeError::UnknownTenant(tenant.to_string()))?;
        Ok(EffectiveGrants::new(tenant, plugin, &version.manifest.capabilities, &entry.config).effective())
    }

    /// A handle on the current version of `plugin` for `tenant`.
    pub fn plugin(&self, tenant: &str, plugin: &str) -> Result<PluginHandle, RuntimeError> {
        self.handle(tenant, plugin, None)
    }

    /// A handle on `plugin` for `tenant` that runs `rule_set` instead of the
    /// tenant's current one (tests and impact previews of a draft). Its instances
    /// live in a pool of their own, so live traffic never meets a draft.
    pub fn plugin_with_rule_set(
        &self,
        tenant: &str,
        plugin: &str,
        rule_set: &str,
    ) -> Result<PluginHandle, RuntimeError> {
        self.handle(tenant, plugin, Some(rule_set))
    }

    /// Replaces the rule set `plugin` runs for `tenant` (an atomic switch: calls
    /// already running finish on the old one, new calls get the new one).
    pub fn set_rule_set(&self, tenant: &str, plugin: &str, rule_set: &str) -> Result<(), RuntimeError> {
        self.inner
            .withheld
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.to_string(), plugin.to_string()));
        let mut config = {
            let tenants = self.inner.tenants.read().unwrap_or_else(|p| p.into_inner());
            let entry = tenants
                .get(tenant)
                .ok_or_else(|| RuntimeError::UnknownTenant(tenant.to_string()))?;
            (*entry.config).clone()
        };
        config.plugins.entry(plugin.to_string()).or_default().rule_set = Some(rule_set.to_string());
        self.set_tenant(tenant, config);
        Ok(())
    }

    /// Whether `tenant` has no rule set for `plugin` to run until one is published
    /// ([`Runtime::withhold_rule_set`]).
    pub fn rule_set_withheld(&self, tenant: &str, plugin: &str) -> bool {
        self.inner
            .withheld
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(tenant.to_string(), plugin.to_string()))
    }

    /// Takes away the rule set `plugin` runs for `tenant` until [`Runtime::set_rule_set`]
    /// gives one: the pipeline holds the tenant's jobs meanwhile, rather than run an
    /// unreviewed document.
    pub fn withhold_rule_set(&self, tenant: &str, plugin: &str) -> Result<(), RuntimeError> {
        self.inner
            .withheld
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tenant.to_string(), plugin.to_string()));
        let mut config = {
            let tenants = self.inner.tenants.read().unwrap_or_else(|p| p.into_inner());
            let entry = tenants
                .get(tenant)
                .ok_or_else(|| RuntimeError::UnknownTenant(tenant.to_string()))?;
            (*entry.config).clone()
        };
        if let Some(grant) = config.plugins.get_mut(plugin) {
            grant.rule_set = None;
        }
        self.set_tenant(tenant, config);
        Ok(())
    }

    /// A handle on version `label` of `plugin` for `tenant`, whatever version the tenant runs: a
    /// shadow run compares it with the active one before it is activated. It draws on the draft
    /// share of the slots, keeps its warm instances apart, reads the tenant's key-value data but
    /// keeps its writes to itself, and may only read over HTTP and LDAP.
    pub fn candidate(&self, tenant: &str, plugin: &str, label: &str) -> Result<PluginHandle, RuntimeError> {
        let version = self.version(plugin, label)?;
        self.handle_on(tenant, plugin, version, Draft::Shadow)
    }

    fn handle(
        &self,
        tenant: &str,
        plugin: &str,
        rule_set: Option<&str>,
    ) -> Result<PluginHandle, RuntimeError> {
        let version = self
            .slot(plugin)?
            .version_for(tenant)
            .ok_or_else(|| RuntimeError::UnknownPlugin(plugin.to_string()))?;
        let draft = match rule_set {
            Some(text) => Draft::RuleSet(text),
            None => Draft::Live,
        };
        self.handle_on(tenant, plugin, version, draft)
    }

    fn handle_on(
        &self,
        tenant: &str,
        plugin: &str,
        version: Arc<PluginVersion>,
        draft: Draft<'_>,
    ) -> Result<PluginHandle, RuntimeError> {
        let (config, generation, quota) = {
            let tenants = self.inner.tenants.read().unwrap_or_else(|p| p.into_inner());
            let entry = tenants
                .get(tenant)
                .ok_or_else(|| RuntimeError::UnknownTenant(tenant.to_string()))?;
            (entry.config.clone(), entry.generation, entry.quota.clone())
        };
        let scratch = || -> Arc<dyn tenure_capabilities::KvBackend> {
            Arc::new(tenure_capabilities::MemoryKv::default())
        };
        let (config, generation, pool, kv) = match draft {
            Draft::Live => (
                config,
                generation,
                tenant.to_string(),
                self.inner.services.kv.clone(),
            ),
            Draft::RuleSet(text) => {
                let mut draft = (*config).clone();
                draft.plugins.entry(plugin.to_string()).or_default().rule_set = Some(text.to_string());
                let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
                (
                    Arc::new(draft),
                    generation,
                    format!("{tenant}\u{0}draft"),
                    scratch(),
                )
            }
            // A shadow reads the tenant's real data and keeps its own writes.
            Draft::Shadow => (
                config,
                generation,
                format!("{tenant}\u{0}shadow"),
                Arc::new(tenure_capabilities::OverlayKv::over(
                    self.inner.services.kv.clone(),
                )) as _,
            ),
        };
        let grant = config.plugins.get(plugin);
        let options = &self.inner.options;
        let deadline = grant
            .and_then(|g| g.deadline_ms)
            .map(std::time::Duration::from_millis)
            .unwrap_or(options.default_deadline);
        let memory_mib = grant
            .and_then(|g| g.memory_mib)
            .unwrap_or(options.default_memory_mib)
            .min(options.max_memory_mib);
        let binding = Arc::new(Binding {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            version: version.label.clone(),
            grants: EffectiveGrants::new(tenant, plugin, &version.manifest.capabilities, &config),
            kv_namespace: KvNamespace {
                tenant: tenant.to_string(),
                plugin: plugin.to_string(),
            },
            kv_quota: tenure_capabilities::KvQuota::granted(
                grant.and_then(|g| g.kv_max_keys),
                grant.and_then(|g| g.kv_max_mib),
            ),
            tenant_config: config,
            kv,
            services: self.inner.services.clone(),
            generation,
            pool,
            read_only: matches!(draft, Draft::Shadow),
        });
        Ok(PluginHandle {
            version,
            binding,
            deadline,
            memory_limit: (memory_mib as usize) << 20,
            warm_limit: options.warm_per_tenant,
            limits: self.inner.limits.clone(),
            quota,
            lane: match draft {
                Draft::Live => crate::instance::Lane::Provisioning,
                Draft::RuleSet(_) | Draft::Shadow => crate::instance::Lane::Draft,
            },
        })
    }

    fn slot(&self, plugin: &str) -> Result<Arc<PluginSlot>, RuntimeError> {
        self.inner
            .plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(plugin)
            .cloned()
            .ok_or_else(|| RuntimeError::UnknownPlugin(plugin.to_string()))
    }
}
