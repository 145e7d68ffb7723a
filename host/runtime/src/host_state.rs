//! Per-instance store data and the host side of every WIT import.

use crate::bindings::wit::{clock, http, kv, ldap, log, types};
use std::sync::Arc;
use tenure_capabilities as caps;
use tenure_capabilities::{Clock, EffectiveGrants, KvBackend, KvNamespace, TenantConfig};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest guest log line kept; longer ones are cut.
const MAX_LOG_BYTES: usize = 4096;
/// Log lines one call may emit; the rest are dropped, with one warning.
pub(crate) const LOG_LINES_PER_CALL: u32 = 1000;

/// The host services plugins reach through their imports, shared by all tenants.
pub struct Services {
    pub http: caps::HttpCapability,
    pub ldap: caps::LdapCapability,
    pub kv: Arc<dyn KvBackend>,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Real HTTP and LDAP, the given key-value backend and clock.
    pub fn new(kv: Arc<dyn KvBackend>, clock: Arc<dyn Clock>) -> Result<Self, caps::HttpError> {
        Ok(Self {
            http: caps::HttpCapability::new()?,
            ldap: caps::LdapCapability::default(),
            kv,
            clock,
        })
    }

    /// Hands the initial passwords LDAP and HTTP generate to `sink` (the tenants' policies).
    pub fn with_passwords(mut self, sink: Arc<dyn caps::passwords::PasswordSink>) -> Self {
        self.ldap = caps::LdapCapability::new(sink.clone());
        self.http = self.http.with_passwords(sink);
        self
    }
}

/// One plugin version bound to one tenant: who is calling and what it may reach.
pub(crate) struct Binding {
    pub tenant: String,
    pub plugin: String,
    pub version: String,
    pub grants: EffectiveGrants,
    pub tenant_config: Arc<TenantConfig>,
    pub kv_namespace: KvNamespace,
    /// How much that store may hold (the tenant's grant).
    pub kv_quota: tenure_capabilities::KvQuota,
    /// The key-value data this binding reads and writes: the host's, or for a draft rule
    /// set a throwaway store of its own (a draft's test and impact runs leave nothing behind).
    pub kv: Arc<dyn KvBackend>,
    pub services: Arc<Services>,
    /// Bumped when the tenant's config changes, so stale warm instances are dropped.
    pub generation: u64,
    /// The warm pool this binding's instances return to: the tenant's own, or a
    /// separate one for instances running a draft rule set.
    pub pool: String,
    /// A shadow run: HTTP reads only (GET, HEAD) and no LDAP writes; whatever else the plugin
    /// sends is refused before it leaves the host.
    pub read_only: bool,
}

impl Binding {
    /// Refuses a write of a read-only (shadow) binding, naming what was refused.
    fn refuse_write(&self, what: impl FnOnce() -> String) -> Option<String> {
        self.read_only.then(|| {
            format!(
                "a shadow run only reads: {} is refused (version {} is not active)",
                what(),
                self.version
            )
        })
    }
}

/// Caps the total linear memory of one store, over all its memories (a component may
/// hold up to 32), and records whether it was hit.
pub(crate) struct MemoryLimiter {
    pub limit: usize,
    pub hit: bool,
    /// The bytes of every memory of the store so far.
    total: usize,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        MemoryLimiter {
            limit,
            hit: false,
            total: 0,
        }
    }

    /// Whether one memory may grow from `current` to `desired` bytes; if so, counted.
    fn admit(&mut self, current: usize, desired: usize) -> bool {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            self.hit = true;
            return false;
        }
        self.total = total;
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.admit(current, desired))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// What a store carries: an empty WASI context (grants nothing), the binding and limits.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub binding: Arc<Binding>,
    /// The message the guest's panic hook reported, if any.
    pub panic: Option<String>,
    /// Log lines this call may still emit.
    pub log_budget: u32,
    /// This call's key-value writes (`None` removes), committed together when the call succeeds.
    pub kv_pending: std::collections::BTreeMap<String, Option<Vec<u8>>>,
    kv_pending_bytes: usize,
    /// What this call read from the store (first read of each key), so a write of a key it
    /// read is committed only if nobody changed the key meanwhile.
    kv_read: std::collections::BTreeMap<String, Option<Vec<u8>>>,
}

/// One call's key-value writes and, for each key it read before writing, what it read.
#[derive(Debug, Default)]
pub struct KvWrites {
    pub writes: Vec<(String, Option<Vec<u8>>)>,
    pub expected: Vec<(String, Option<Vec<u8>>)>,
}

impl KvWrites {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Most bytes one call may write to its key-value store before it returns.
pub const KV_BYTES_PER_CALL: usize = 16 * 1024 * 1024;

impl HostState {
    pub fn new(binding: Arc<Binding>, memory_limit: usize) -> Self {
        Self {
            // No preopens, env, args, sockets or DNS; stdio closed.
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            binding,
            panic: None,
            log_budget: LOG_LINES_PER_CALL,
            kv_pending: Default::default(),
            kv_pending_bytes: 0,
            kv_read: Default::default(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_LOG_BYTES {
        let mut end = MAX_LOG_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(" [truncated]");
    }
    s
}

impl types::Host for HostState {}

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let b = &self.binding;
        if self.log_budget == 0 {
            tracing::warn!(target: "tenure::plugin", tenant = %b.tenant, plugin = %b.plugin,
                version = %b.version,
                "plugin logged {LOG_LINES_PER_CALL} lines in one call; dropping the rest of this call's \
                    logs");
            return;
        }
        let message = truncate(message);
        let (tenant, plugin, version) = (b.tenant.as_str(), b.plugin.as_str(), b.version.as_str());
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "tenure::plugin", tenant, plugin, version, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "tenure::plugin", tenant, plugin, version, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "tenure::plugin", tenant, plugin, version, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "tenure::plugin", tenant, plugin, version, "{message}")
            }
            log::Level::Error => {
                tracing::error!(target: "tenure::plugin", tenant, plugin, version, "{message}")
            }
        }
    }

    async fn report_panic(&mut self, message: String) {
        let message = truncate(message);
        let b = &self.binding;
        tracing::error!(target: "tenure::plugin", tenant = %b.tenant, plugin = %b.plugin,
            version = %b.version, "plugin panicked: {message}");
        self.panic = Some(message);
    }
}

impl clock::Host for HostState {
    async fn now_ms(&mut self) -> i64 {
        self.binding.services.clock.now_ms()
    }
}

impl http::Host for HostState {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, http::HttpError> {
        self.settle_kv().await.map_err(http::HttpError::Transport)?;
        let b = self.binding.clone();
        let connection = req.connection.clone();
        let reads = ["GET", "HEAD"].iter().any(|m| req.method.eq_ignore_ascii_case(m));
        if !reads && let Some(reason) = b.refuse_write(|| format!("{} {}", req.method, req.path)) {
            return Err(http::HttpError::Denied(reason));
        }
        let request = caps::HttpRequest {
            connection: req.connection,
            method: req.method,
            path: req.path,
            headers: req.headers,
            body: req.body,
            timeout_ms: req.timeout_ms,
        };
        let result = b.services.http.send(&b.grants, &b.tenant_config, request).await;
        if let Err(caps::HttpError::Denied(reason)) = &result {
            tracing::warn!(target: "tenure::plugin", tenant = %b.tenant, plugin = %b.plugin, connection,
                "http denied: {reason}");
        }
        result
            .map(|r| http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(|e| match e {
                caps::HttpError::Denied(m) => http::HttpError::Denied(m),
                caps::HttpError::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
                caps::HttpError::Timeout => http::HttpError::Timeout,
                caps::HttpError::Transport(m) => http::HttpError::Transport(m),
            })
    }
}

fn ldap_error(e: caps::ldap::LdapError) -> ldap::LdapError {
    use caps::ldap::LdapError as E;
    match e {
        E::Denied(m) => ldap::LdapError::Denied(m),
        E::Failed {
            code,
            message,
            matched_dn,
        } => ldap::LdapError::Failed(ldap::LdapResult {
            code,
            message,
            matched_dn,
        }),
        E::Transport(m) => ldap::LdapError::Transport(m),
        E::Timeout => ldap::LdapError::Timeout,
    }
}

fn ldap_values(values: Vec<ldap::Value>) -> Vec<caps::ldap::LdapValue> {
    use caps::ldap::{LdapValue, PasswordEncoding};
    values
        .into_iter()
        .map(|v| match v {
            ldap::Value::Text(s) => LdapValue::Text(s),
            ldap::Value::Bytes(b) => LdapValue::Bytes(b),
            ldap::Value::GeneratedPassword(ldap::PasswordEncoding::AdUnicodePwd) => {
                LdapValue::GeneratedPassword(PasswordEncoding::AdUnicodePwd)
            }
            ldap::Value::GeneratedPassword(ldap::PasswordEncoding::Utf8) => {
                LdapValue::GeneratedPassword(PasswordEncoding::Utf8)
            }
        })
        .collect()
}

impl HostState {
    /// Waits until the key-value writes answered so far are durable: nothing leaves
    /// the host on the strength of data a power loss could take back.
    fn settle_kv(&self) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let binding = self.binding.clone();
        async move {
            binding
                .services
                .kv
                .settle()
                .await
                .map_err(|e| format!("earlier key-value writes are not durable: {e}"))
        }
    }

    fn note_ldap_denial<T>(&self, connection: &str, r: &Result<T, caps::ldap::LdapError>) {
        if let Err(caps::ldap::LdapError::Denied(reason)) = r {
            let b = &self.binding;
            tracing::warn!(target: "tenure::plugin", tenant = %b.tenant, plugin = %b.plugin, connection,
                "ldap denied: {reason}");
        }
    }
}

impl ldap::Host for HostState {
    async fn search(&mut self, req: ldap::SearchRequest) -> Result<Vec<ldap::Entry>, ldap::LdapError> {
        self.settle_kv().await.map_err(ldap::LdapError::Transport)?;
        let b = self.binding.clone();
        let connection = req.connection.clone();
        let request = caps::ldap::SearchRequest {
            connection: req.connection,
            base: req.base,
            scope: match req.scope {
                ldap::Scope::Base => caps::ldap::SearchScope::Base,
                ldap::Scope::OneLevel => caps::ldap::SearchScope::OneLevel,
                ldap::Scope::Subtree => caps::ldap::SearchScope::Subtree,
            },
            filter: req.filter,
            attributes: req.attributes,
            page_size: req.page_size,
            limit: req.limit,
        };
        let r = b.services.ldap.search(&b.grants, &b.tenant_config, request).await;
        self.note_ldap_denial(&connection, &r);
        r.map(|entries| {
            entries
                .into_iter()
                .map(|e| ldap::Entry {
                    dn: e.dn,
                    text: e.text,
                    binary: e.binary,
                })
                .collect()
        })
        .map_err(ldap_error)
    }

    async fn add(
        &mut self,
        connection: String,
        dn: String,
        attributes: Vec<ldap::Attribute>,
    ) -> Result<(), ldap::LdapError> {
        let b = self.binding.clone();
        if let Some(reason) = b.refuse_write(|| format!("LDAP add of {dn}")) {
            return Err(ldap::LdapError::Denied(reason));
        }
        self.settle_kv().await.map_err(ldap::LdapError::Transport)?;
        let attrs = attributes
            .into_iter()
            .map(|a| caps::ldap::LdapAttribute {
                name: a.name,
                values: ldap_values(a.values),
            })
            .collect();
        let r = b
            .services
            .ldap
            .add(&b.grants, &b.tenant_config, &connection, &dn, attrs)
            .await;
        self.note_ldap_denial(&connection, &r);
        r.map_err(ldap_error)
    }

    async fn modify(
        &mut self,
        connection: String,
        dn: String,
        changes: Vec<ldap::Modification>,
    ) -> Result<(), ldap::LdapError> {
        let b = self.binding.clone();
        if let Some(reason) = b.refuse_write(|| format!("LDAP modify of {dn}")) {
            return Err(ldap::LdapError::Denied(reason));
        }
        self.settle_kv().await.map_err(ldap::LdapError::Transport)?;
        let mods = changes
            .into_iter()
            .map(|m| caps::ldap::LdapModification {
                op: match m.op {
                    ldap::ModOp::Add => caps::ldap::ModOp::Add,
                    ldap::ModOp::Delete => caps::ldap::ModOp::Delete,
                    ldap::ModOp::Replace => caps::ldap::ModOp::Replace,
                },
                attribute: m.attribute,
                values: ldap_values(m.values),
            })
            .collect();
        let r = b
            .services
            .ldap
            .modify(&b.grants, &b.tenant_config, &connection, &dn, mods)
            .await;
        self.note_ldap_denial(&connection, &r);
        r.map_err(ldap_error)
    }

    async fn modify_dn(
        &mut self,
        connection: String,
        dn: String,
        new_rdn: String,
        delete_old_rdn: bool,
        new_superior: Option<String>,
    ) -> Result<(), ldap::LdapError> {
        let b = self.binding.clone();
        if let Some(reason) = b.refuse_write(|| format!("LDAP rename of {dn}")) {
            return Err(ldap::LdapError::Denied(reason));
        }
        self.settle_kv().await.map_err(ldap::LdapError::Transport)?;
        let r = b
            .services
            .ldap
            .modify_dn(
                &b.grants,
                &b.tenant_config,
                &connection,
                &dn,
                &new_rdn,
                delete_old_rdn,
                new_superior.as_deref(),
            )
            .await;
        self.note_ldap_denial(&connection, &r);
        r.map_err(ldap_error)
    }

    async fn delete_entry(&mut self, connection: String, dn: String) -> Result<(), ldap::LdapError> {
        let b = self.binding.clone();
        if let Some(reason) = b.refuse_write(|| format!("LDAP delete of {dn}")) {
            return Err(ldap::LdapError::Denied(reason));
        }
        self.settle_kv().await.map_err(ldap::LdapError::Transport)?;
        let r = b
            .services
            .ldap
            .delete(&b.grants, &b.tenant_config, &connection, &dn)
            .await;
        self.note_ldap_denial(&connection, &r);
        r.map_err(ldap_error)
    }
}

fn kv_error(e: caps::KvError) -> kv::KvError {
    match e {
        caps::KvError::Denied(m) => kv::KvError::Denied(m),
        caps::KvError::TooLarge(m) => kv::KvError::TooLarge(m),
        changed @ caps::KvError::Changed(_) => kv::KvError::Other(changed.to_string()),
        caps::KvError::Other(m) => kv::KvError::Other(m),
    }
}

impl HostState {
    fn kv_allowed(&self) -> Result<(), kv::KvError> {
        self.binding
            .grants
            .check_kv()
            .map_err(|d| kv::KvError::Denied(d.0))
    }
}

impl HostState {
    /// Takes this call's pending key-value writes, with what it read of the keys it writes.
    pub fn take_kv_writes(&mut self) -> KvWrites {
        self.kv_pending_bytes = 0;
        let mut read = std::mem::take(&mut self.kv_read);
        let writes: Vec<_> = std::mem::take(&mut self.kv_pending).into_iter().collect();
        let expected = writes
            .iter()
            .filter_map(|(key, _)| read.remove_entry(key))
            .collect();
        KvWrites { writes, expected }
    }

    fn stage(&mut self, key: String, value: Option<Vec<u8>>) -> Result<(), kv::KvError> {
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        if self.kv_pending_bytes + size > KV_BYTES_PER_CALL {
            return Err(kv::KvError::TooLarge(format!(
                "one call may write at most {KV_BYTES_PER_CALL} bytes to its key-value store"
            )));
        }
        self.kv_pending_bytes += size;
        self.kv_pending.insert(key, value);
        Ok(())
    }
}

impl kv::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::KvError> {
        self.kv_allowed()?;
        caps::kv::check_sizes(&key, None).map_err(kv_error)?;
        if let Some(staged) = self.kv_pending.get(&key) {
            return Ok(staged.clone());
        }
        let b = &self.binding;
        let value = b.kv.get(&b.kv_namespace, &key).await.map_err(kv_error)?;
        self.kv_read.entry(key).or_insert_with(|| value.clone());
        Ok(value)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::KvError> {
        self.kv_allowed()?;
        caps::kv::check_sizes(&key, Some(&value)).map_err(kv_error)?;
        self.stage(key, Some(value))
    }

    async fn remove(&mut self, key: String) -> Result<(), kv::KvError> {
        self.kv_allowed()?;
        caps::kv::check_sizes(&key, None).map_err(kv_error)?;
        self.stage(key, None)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, kv::KvError> {
        self.kv_allowed()?;
        let b = &self.binding;
        let mut keys: std::collections::BTreeSet<String> =
            b.kv.list_keys(&b.kv_namespace, &prefix)
                .await
                .map_err(kv_error)?
                .into_iter()
                .collect();
        for (k, v) in self
            .kv_pending
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            if v.is_some() {
                keys.insert(k.clone());
            } else {
                keys.remove(k);
            }
        }
        Ok(keys.into_iter().collect())
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::MemoryLimiter;

    #[test]
    fn the_memory_limit_caps_the_sum_of_all_memories() {
        const MIB: usize = 1 << 20;
        let mut limiter = MemoryLimiter::new(128 * MIB);
        assert!(limiter.admit(0, 100 * MIB), "the first memory");
        assert!(
            !limiter.admit(0, 100 * MIB),
            "a second memory may not take the total past the limit"
        );
        assert!(limiter.hit);
        assert!(limiter.admit(0, 28 * MIB), "up to the limit in total");
        assert!(
            limiter.admit(100 * MIB, 100 * MIB),
            "a memory that does not grow costs nothing more"
        );
        assert!(
            !limiter.admit(28 * MIB, 29 * MIB),
            "one byte past the total is refused"
        );
    }
}
