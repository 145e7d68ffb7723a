//! Secrets (sealed with the master key; a one-time reveal removes them) and the
//! plugins' key-value data, kept in the same database.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use std::sync::Arc;
use tenure_capabilities::KvBackend;

/// Secrets and plugin key-value data.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Stores a secret encrypted with the master key.
    async fn put_secret(&self, name: &str, value: &str) -> StoreResult<()>;
    async fn secret(&self, name: &str) -> StoreResult<Option<String>>;
    /// Reads a secret and removes it in the same write (a one-time reveal), with
    /// `audit` written in that write when there was one to take.
    async fn take_secret(&self, name: &str, audit: Vec<AuditRecord>) -> StoreResult<Option<String>>;
    /// The plugin key-value backend kept in the same database.
    fn kv(&self) -> Arc<dyn KvBackend>;
}
