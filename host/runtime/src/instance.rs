//! Calling a plugin: a warm instance per tenant, a deadline, and typed failures.

use crate::bindings::connector_world::ConnectorPlugin;
use crate::bindings::rules_world::RulesPlugin;
use crate::bindings::source_world::SourcePlugin;
use crate::bindings::wit::{self, PluginError};
use crate::bounds::Bounded;
use crate::error::CallError;
use crate::host_state::{Binding, HostState, LOG_LINES_PER_CALL};
use crate::manifest::PluginKind;
use crate::registry::{PluginVersion, Pre};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use wasmtime::{Store, Trap};

/// The exports of one live instance.
pub(crate) enum Exports {
    Rules(RulesPlugin),
    Connector(ConnectorPlugin),
    Source(SourcePlugin),
}

/// A configured instance that can take calls; returned to its pool after a clean call.
pub(crate) struct Warm {
    store: Store<HostState>,
    exports: Exports,
    pub generation: u64,
    /// Held while the instance is in a call (its busy slot, and a draft's shares); idle
    /// instances hold none.
    permits: Vec<OwnedSemaphorePermit>,
}

impl Warm {
    /// Gives back the busy slot (the instance goes idle or away).
    pub(crate) fn release(&mut self) {
        self.permits.clear();
    }
}

/// Which share of the instance slots a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Jobs, previews and everything else that acts for the tenant now.
    Provisioning,
    /// Draft rule sets: their tests and impact previews. They get a bounded share of
    /// the slots, runtime-wide and per tenant, so they never take what provisioning needs.
    Draft,
}

/// The runtime-wide bounds on live instances: `busy` permits for instances in
/// a call, and a cap on idle warm ones. The pooling allocator has room for both.
pub(crate) struct InstanceLimits {
    pub busy: Arc<Semaphore>,
    pub idle: AtomicUsize,
    pub max_idle: usize,
    /// Draft calls in a call at once, over all tenants.
    pub drafts: Arc<Semaphore>,
    /// Draft calls one tenant may have at once.
    pub drafts_per_tenant: usize,
    pub tenant_drafts: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
}

impl InstanceLimits {
    /// The semaphore of one tenant's draft calls.
    fn tenant_drafts(&self, tenant: &str) -> Arc<Semaphore> {
        let mut map = self.tenant_drafts.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.drafts_per_tenant)))
            .clone()
    }
}

/// One plugin version bound to one tenant. Holding a handle pins the version:
/// a hot swap that happens meanwhile affects only handles taken after it.
#[derive(Clone)]
pub struct PluginHandle {
    pub(crate) version: Arc<PluginVersion>,
    pub(crate) binding: Arc<Binding>,
    pub(crate) deadline: Duration,
    pub(crate) memory_limit: usize,
    pub(crate) warm_limit: usize,
    pub(crate) limits: Arc<InstanceLimits>,
    /// The tenant's share of the host, taken before the host-wide slots.
    pub(crate) quota: Arc<crate::quota::TenantQuota>,
    pub(crate) lane: Lane,
}

impl std::fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHandle")
            .field("tenant", &self.binding.tenant)
            .field("plugin", &self.binding.plugin)
            .field("version", &self.binding.version)
            .finish()
    }
}

type Raw<T> = Result<wasmtime::Result<T>, tokio::time::error::Elapsed>;

/// One call of an export: refuse a wrong kind, take an instance within the
/// call's deadline, run the export under the same deadline, settle the instance.
macro_rules! call_export {
    ($handle:ident, $kind:ident, |$p:ident, $store:ident| $call:expr) => {{
        $handle.expect(PluginKind::$kind)?;
        let until = Instant::now() + $handle.deadline;
        let mut warm = $handle.checkout(until).await?;
        let r = {
            let Exports::$kind($p) = &warm.exports else {
                return Err($handle.wrong_kind(PluginKind::$kind.as_str()));
            };
            let $store = &mut warm.store;
            $handle.run(until, $call).await
        };
        let writes = warm.store.data_mut().take_kv_writes();
        if matches!(r, Ok(Ok(Ok(_)))) && !writes.is_empty() {
            $handle.commit_kv(writes).await?;
        }
        $handle.settle(warm, r)
    }};
}

impl PluginHandle {
    /// The same handle drawing on the draft share of the slots (an impact preview's
    /// baseline runs there with its candidate, never in provisioning's share).
    pub fn in_draft_lane(mut self) -> Self {
        self.lane = Lane::Draft;
        self
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.binding.plugin
    }

    /// The version this handle calls (`manifest version+sha prefix`).
    pub fn version(&self) -> &str {
        &self.binding.version
    }

    /// The tenant this handle calls for.
    pub fn tenant(&self) -> &str {
        &self.binding.tenant
    }

    /// The manifest of the version this handle calls.
    pub fn manifest(&self) -> &crate::manifest::PluginManifest {
        &self.version.manifest
    }

    /// The plugin's kind.
    pub fn kind(&self) -> PluginKind {
        self.version.kind
    }

    /// Rules: the desired account per destination and the trace.
    pub async fn evaluate(
        &self,
        person: &wit::Person,
        context: &wit::rules::Context,
    ) -> Result<wit::rules::Evaluation, CallError> {
        call_export!(self, Rules, |p, store| p
            .tenure_plugin_rules()
            .call_evaluate(store, person, context))
    }

    /// Connector: what it supports and how it matches accounts.
    pub async fn describe(&self) -> Result<wit::connector::Capabilities, CallError> {
        call_export!(self, Connector, |p, store| async {
            p.tenure_plugin_connector().call_describe(store).await.map(Ok)
        })
    }

    /// Connector: accounts matching the keys.
    pub async fn lookup(&self, keys: &[wit::MatchKey]) -> Result<Vec<wit::Account>, CallError> {
        call_export!(self, Connector, |p, store| p
            .tenure_plugin_connector()
            .call_lookup_accounts(store, keys))
    }

    /// Connector: apply one operation.
    pub async fn apply(&self, op: &wit::Operation) -> Result<wit::Outcome, CallError> {
        call_export!(self, Connector, |p, store| p
            .tenure_plugin_connector()
            .call_apply(store, op))
    }

    /// Source: events from a received payload.
    pub async fn parse(&self, payload: &wit::source::Payload) -> Result<Vec<wit::PersonEvent>, CallError> {
        call_export!(self, Source, |p, store| p
            .tenure_plugin_source()
            .call_parse(store, payload))
    }

    /// Source: changes since `cursor`.
    pub async fn poll(&self, cursor: Option<&str>) -> Result<wit::source::PollResult, CallError> {
        call_export!(self, Source, |p, store| p
            .tenure_plugin_source()
            .call_poll(store, cursor))
    }

    /// Commits one successful call's key-value writes together. A call that fails, traps
    /// or times out leaves nothing behind.
    async fn commit_kv(&self, call: crate::host_state::KvWrites) -> Result<(), CallError> {
        let b = &self.binding;
        b.kv.apply_checked(&b.kv_namespace, call.expected, call.writes, b.kv_quota)
            .await
            .map_err(|e| CallError::Plugin {
                plugin: self.label(),
                error: match e {
                    tenure_capabilities::KvError::TooLarge(m) => {
                        PluginError::Permanent(format!("key-value store: {m}"))
                    }
                    // Another call won the race for a key this one read and wrote: its
                    // writes are dropped and the caller retries it.
                    other => PluginError::Transient(format!("key-value store: {other}")),
                },
            })
    }

    /// Refuses a call for another plugin kind before any instance is taken.
    fn expect(&self, kind: PluginKind) -> Result<(), CallError> {
        if self.version.kind == kind {
            Ok(())
        } else {
            Err(self.wrong_kind(kind.as_str()))
        }
    }

    fn wrong_kind(&self, wanted: &'static str) -> CallError {
        CallError::WrongKind {
            plugin: self.label(),
            kind: self.version.kind.as_str(),
            wanted,
        }
    }

    fn label(&self) -> String {
        format!(
            "{}@{} (tenant {})",
            self.binding.plugin, self.binding.version, self.binding.tenant
        )
    }

    /// Runs one step of a call; every step of one call shares the call's deadline.
    async fn run<T>(&self, until: Instant, call: impl Future<Output = wasmtime::Result<T>>) -> Raw<T> {
        tokio::time::timeout_at(until, call).await
    }

    /// A warm instance of this version for this tenant, or a new configured one.
    ///
    /// Waits (up to the call's deadline) for one of the runtime's busy slots, so
    /// a burst of calls queues instead of failing when the pool is exhausted.
    async fn checkout(&self, until: Instant) -> Result<Warm, CallError> {
        let waited = Instant::now();
        let mut permits = Vec::with_capacity(4);
        if let Some(permit) = self.quota.admit(|| self.label(), until).await? {
            permits.push(permit);
        }
        let mut semaphores = Vec::with_capacity(3);
        if self.lane == Lane::Draft {
            semaphores.push(self.limits.tenant_drafts(&self.binding.tenant));
            semaphores.push(self.limits.drafts.clone());
        }
        semaphores.push(self.limits.busy.clone());
        for semaphore in semaphores {
            let permit = tokio::time::timeout_at(until, semaphore.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| CallError::Busy {
                    plugin: self.label(),
                    waited_ms: waited.elapsed().as_millis() as u64,
                })?;
            permits.push(permit);
        }
        let mut warm = match self
            .version
            .take_warm(&self.binding.pool, self.binding.generation, &self.limits)
        {
            Some(warm) => warm,
            None => self.instantiate(until).await?,
        };
        warm.permits = permits;
        warm.store.data_mut().log_budget = LOG_LINES_PER_CALL;
        Ok(warm)
    }

    async fn instantiate(&self, until: Instant) -> Result<Warm, CallError> {
        let mut store = Store::new(
            self.version.engine(),
            HostState::new(self.binding.clone(), self.memory_limit),
        );
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let grant = self.binding.tenant_config.plugins.get(&self.binding.plugin);
        let settings: Vec<(String, String)> = grant
            .map(|g| g.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let exports = match &self.version.pre {
            Pre::Rules(pre) => {
                let p = self.run(until, pre.instantiate_async(&mut store)).await;
                let p = self.started(&mut store, p)?;
                let rule_set = grant.and_then(|g| g.rule_set.clone()).unwrap_or_default();
                let r = self
                    .run(
                        until,
                        p.tenure_plugin_rules()
                            .call_configure(&mut store, &rule_set, &settings),
                    )
                    .await;
                self.configured(&store, r)?;
                let writes = store.data_mut().take_kv_writes();
                if !writes.is_empty() {
                    self.commit_kv(writes).await?;
                }
                Exports::Rules(p)
            }
            Pre::Connector(pre) => {
                let p = self.run(until, pre.instantiate_async(&mut store)).await;
                let p = self.started(&mut store, p)?;
                let r = self
                    .run(
                        until,
                        p.tenure_plugin_connector().call_configure(&mut store, &settings),
                    )
                    .await;
                self.configured(&store, r)?;
                let writes = store.data_mut().take_kv_writes();
                if !writes.is_empty() {
                    self.commit_kv(writes).await?;
                }
                Exports::Connector(p)
            }
            Pre::Source(pre) => {
                let p = self.run(until, pre.instantiate_async(&mut store)).await;
                let p = self.started(&mut store, p)?;
                let r = self
                    .run(
                        until,
                        p.tenure_plugin_source().call_configure(&mut store, &settings),
                    )
                    .await;
                self.configured(&store, r)?;
                let writes = store.data_mut().take_kv_writes();
                if !writes.is_empty() {
                    self.commit_kv(writes).await?;
                }
                Exports::Source(p)
            }
        };
        Ok(Warm {
            store,
            exports,
            generation: self.binding.generation,
            permits: Vec::new(),
        })
    }

    fn started<T>(&self, store: &mut Store<HostState>, r: Raw<T>) -> Result<T, CallError> {
        match r {
            Ok(Ok(p)) => Ok(p),
            other => Err(self.failure(store.data(), other.map(|r| r.map(|_| ())), "instantiation")),
        }
    }

    fn configured(&self, store: &Store<HostState>, r: Raw<Result<(), PluginError>>) -> Result<(), CallError> {
        match r {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(CallError::Start {
                plugin: self.label(),
                message: format!("configure failed: {error}"),
            }),
            other => Err(self.failure(store.data(), other.map(|r| r.map(|_| ())), "configure")),
        }
    }

    /// Maps a finished call: clean results return the instance to the pool;
    /// a trap, timeout or memory exhaustion drops it (a trapped instance is poisoned).
    /// What the plugin returned is capped at the host boundary ([`crate::bounds`]).
    fn settle<T: Bounded>(&self, warm: Warm, r: Raw<Result<T, PluginError>>) -> Result<T, CallError> {
        match r {
            Ok(Ok(Ok(mut v))) => {
                self.version
                    .put_warm(&self.binding.pool, warm, self.warm_limit, &self.limits);
                v.bound().map_err(|why| CallError::Plugin {
                    plugin: self.label(),
                    error: PluginError::Permanent(format!("the plugin {why}")),
                })?;
                Ok(v)
            }
            Ok(Ok(Err(mut error))) => {
                self.version
                    .put_warm(&self.binding.pool, warm, self.warm_limit, &self.limits);
                let _ = error.bound();
                Err(CallError::Plugin {
                    plugin: self.label(),
                    error,
                })
            }
            other => Err(self.failure(warm.store.data(), other.map(|r| r.map(|_| ())), "call")),
        }
    }

    fn failure(&self, state: &HostState, r: Raw<()>, phase: &str) -> CallError {
        let plugin = self.label();
        let error = match r {
            Err(_) => {
                return CallError::Timeout {
                    plugin,
                    deadline_ms: self.deadline.as_millis() as u64,
                };
            }
            Ok(Ok(())) => {
                return CallError::Start {
                    plugin,
                    message: format!("{phase} did not finish"),
                };
            }
            Ok(Err(e)) => e,
        };
        if state.limiter.hit {
            return CallError::OutOfMemory {
                plugin,
                limit_mib: (self.memory_limit >> 20) as u64,
            };
        }
        if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return CallError::Timeout {
                plugin,
                deadline_ms: self.deadline.as_millis() as u64,
            };
        }
        let mut message = match &state.panic {
            Some(panic) => format!("panicked: {panic}"),
            None => format!("{error:#}"),
        };
        if phase != "call" {
            message = format!("during {phase}: {message}");
        }
        tracing::warn!(tenant = %self.binding.tenant, plugin = %self.binding.plugin,
            version = %self.binding.version, "plugin failed: {message}");
        CallError::Trap { plugin, message }
    }
}
