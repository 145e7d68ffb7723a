//! The plugin registry: every component uploaded or seeded, kept by digest with its manifest,
//! uploader and signer, and each tenant's activations, newest last (the newest is the version
//! the tenant runs; the ones before it are where a rollback goes).

use crate::*;
use async_trait::async_trait;
use serde::Serialize;

crate::column_enum! {
    /// Which plugin world a component exports.
    pub enum StoredPluginKind {
        Rules = "rules",
        Connector = "connector",
        Source = "source",
    }
}

/// A component to keep.
#[derive(Debug, Clone)]
pub struct NewPluginVersion {
    pub name: String,
    /// `manifest version + "+" + first 8 hex of the digest`.
    pub label: String,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// The tenant that uploaded it and alone sees it; `None`: offered to every tenant.
    pub owner: Option<String>,
    pub kind: StoredPluginKind,
    /// The plugin contract it was built against (`0.1.0`).
    pub wit: String,
    /// The manifest's text, as uploaded.
    pub manifest: String,
    pub component: Vec<u8>,
    /// The publisher whose key signed it, when it was signed.
    pub signer: Option<String>,
    pub uploaded_by: String,
    /// Written with the version, only when it is new.
    pub audit: Vec<AuditRecord>,
}

/// A kept version, without its bytes.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StoredPluginVersion {
    pub name: String,
    pub label: String,
    pub sha256: String,
    pub owner: Option<String>,
    pub kind: StoredPluginKind,
    pub wit: String,
    pub signer: Option<String>,
    pub uploaded_by: String,
    pub uploaded_ms: i64,
    pub size_bytes: i64,
    #[serde(skip)]
    pub manifest: String,
}

/// A tenant's choice of a version to run.
#[derive(Debug, Clone)]
pub struct NewActivation {
    pub tenant: String,
    pub name: String,
    pub label: String,
    pub activated_by: String,
    /// Why (a rollback says so).
    pub reason: Option<String>,
    pub audit: Vec<AuditRecord>,
}

/// One recorded activation.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PluginActivation {
    pub id: i64,
    pub tenant: String,
    pub name: String,
    pub label: String,
    pub activated_by: String,
    pub activated_ms: i64,
    pub reason: Option<String>,
}

/// The plugin registry.
#[async_trait]
pub trait PluginStore: Send + Sync {
    /// Keeps a version with its audit in one transaction; false (nothing written) when the same
    /// owner already keeps these bytes under this name.
    async fn put_plugin_version(&self, v: NewPluginVersion) -> StoreResult<bool>;
    /// Every kept version, oldest first, without the bytes.
    async fn plugin_versions(&self) -> StoreResult<Vec<StoredPluginVersion>>;
    /// The bytes of the version of `name` with this digest.
    async fn plugin_component(&self, name: &str, sha256: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Records an activation with its audit; returns its id.
    async fn activate_plugin(&self, a: NewActivation) -> StoreResult<i64>;
    /// Every activation, oldest first.
    async fn plugin_activations(&self) -> StoreResult<Vec<PluginActivation>>;
}
