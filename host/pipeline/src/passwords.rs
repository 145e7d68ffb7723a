//! What happens to the initial passwords the host generates for new directory
//! accounts (`[tenants.T] initial_passwords`). A plugin never sees them.
//!
//! - `discard` (default): written to the account and kept nowhere; the person
//!   sets their own through the organisation's reset process.
//! - `vault`: also kept encrypted in the store until an IT admin reveals it once
//!   (`POST /api/v1/initial-passwords/reveal`), which deletes it.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tenure_capabilities::Secret;
use tenure_capabilities::ldap::PasswordSink;
use tenure_store::Store;
use tokio::sync::mpsc;

/// A tenant's initial-password policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InitialPasswords {
    #[default]
    Discard,
    Vault,
}

/// The store's name for an account's initial password.
pub fn vault_name(tenant: &str, dn: &str) -> String {
    format!("initial-password:{tenant}:{}", dn.to_lowercase())
}

/// Applies each tenant's policy to the passwords the LDAP capability generates.
pub struct PasswordVault {
    policies: HashMap<String, InitialPasswords>,
    tx: mpsc::UnboundedSender<(String, Secret)>,
}

impl PasswordVault {
    /// The sink, and the task that writes vaulted passwords to the store (spawned on the
    /// current runtime; it ends when the sink is dropped).
    pub fn start(store: Arc<dyn Store>, policies: HashMap<String, InitialPasswords>) -> Arc<PasswordVault> {
        let (tx, mut rx) = mpsc::unbounded_channel::<(String, Secret)>();
        tokio::spawn(async move {
            while let Some((name, password)) = rx.recv().await {
                if let Err(e) = store.put_secret(&name, password.expose()).await {
                    // The account keeps the password; only the copy for IT is lost.
                    tracing::error!(error = %e, secret = %name, "cannot keep an initial password in the \
                        vault");
                }
            }
        });
        Arc::new(PasswordVault { policies, tx })
    }
}

impl PasswordSink for PasswordVault {
    fn deliver(&self, tenant: &str, connection: &str, dn: &str, password: &Secret) {
        match self.policies.get(tenant).copied().unwrap_or_default() {
            InitialPasswords::Discard => {
                tracing::info!(
                    tenant,
                    connection,
                    dn,
                    "generated an initial password; policy: discard"
                );
            }
            InitialPasswords::Vault => {
                let name = vault_name(tenant, dn);
                if self.tx.send((name, password.clone())).is_err() {
                    tracing::error!(
                        tenant,
                        dn,
                        "the password vault is not running; the initial password is not kept"
                    );
                } else {
                    tracing::info!(
                        tenant,
                        connection,
                        dn,
                        "generated an initial password; policy: vault"
                    );
                }
            }
        }
    }
}
