//! Errors of the plugin host.

use crate::wit::PluginError;

/// Why a plugin could not be registered or found.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("plugin {plugin:?}: {reason}")]
    InvalidPlugin { plugin: String, reason: String },
    #[error("{0}")]
    UnsupportedWit(String),
    #[error("plugin manifest {path}: {reason}")]
    Manifest { path: String, reason: String },
    #[error("no plugin named {0:?} is registered")]
    UnknownPlugin(String),
    #[error("plugin {plugin:?} has no version {version:?} to roll back to")]
    UnknownVersion { plugin: String, version: String },
    #[error("no tenant named {0:?} is configured")]
    UnknownTenant(String),
    #[error("component cache at {path}: {reason}")]
    Cache { path: String, reason: String },
}

/// Why a call into a plugin did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin ran past its deadline and was stopped.
    #[error("plugin {plugin} ran past its {deadline_ms} ms deadline and was stopped")]
    Timeout { plugin: String, deadline_ms: u64 },
    /// The plugin tried to grow memory past its limit and was stopped.
    #[error("plugin {plugin} exceeded its memory limit of {limit_mib} MiB and was stopped")]
    OutOfMemory { plugin: String, limit_mib: u64 },
    /// The plugin trapped (a panic, an abort, an invalid operation).
    #[error("plugin {plugin} trapped: {message}")]
    Trap { plugin: String, message: String },
    /// Every instance slot stayed busy for the whole deadline (retry later).
    #[error("plugin {plugin}: all instance slots were busy for {waited_ms} ms; retry later")]
    Busy { plugin: String, waited_ms: u64 },
    /// The tenant is over its plugin quota: the call is put off (only this tenant waits).
    #[error("plugin {plugin}: {reason}; retry in {retry_after_ms} ms")]
    OverQuota {
        plugin: String,
        reason: String,
        retry_after_ms: u64,
    },
    /// The plugin could not be instantiated or configured.
    #[error("plugin {plugin} could not start: {message}")]
    Start { plugin: String, message: String },
    /// The plugin does not export the called interface.
    #[error("plugin {plugin} is a {kind} plugin and cannot be called as a {wanted} plugin")]
    WrongKind {
        plugin: String,
        kind: &'static str,
        wanted: &'static str,
    },
    /// The plugin answered with its own typed error.
    #[error("plugin {plugin} returned an error: {error}")]
    Plugin { plugin: String, error: PluginError },
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginError::Transient(m) => write!(f, "transient: {m}"),
            PluginError::RateLimited(ms) => write!(f, "rate limited: retry after {ms} ms"),
            PluginError::Unauthorized(m) => write!(f, "unauthorized: {m}"),
            PluginError::InvalidInput(i) => write!(f, "invalid input: {}: {}", i.field, i.reason),
            PluginError::Conflict(m) => write!(f, "conflict: {m}"),
            PluginError::NotFound(m) => write!(f, "not found: {m}"),
            PluginError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

impl std::error::Error for PluginError {}
