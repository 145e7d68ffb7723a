//! What a Tenure plugin may reach, and nothing more.
//!
//! Every capability a plugin imports (outbound HTTP, LDAP, a private key-value
//! store, the clock) is implemented here in plain Rust, independent of
//! wasmtime. The runtime crate binds these to the WIT imports.
//!
//! Access follows two-sided grants: a plugin's manifest *requests* a
//! capability, a tenant's config *grants* it, and the plugin gets the
//! intersection. Every denial names the config key that would allow it.

pub mod clock;
pub mod config;
pub mod dn;
pub mod egress;
pub mod grants;
pub mod http;
pub mod kv;
pub mod kv_overlay;
pub mod ldap;
pub mod notify;
pub mod oauth;
pub mod passwords;
pub mod secret;

pub use clock::{Clock, ManualClock, ShiftedClock, SystemClock};
pub use config::{
    ConfigError, ConnectionConfig, HttpAuth, HttpConnection, LdapConnection, PluginQuota, TenantConfig,
};
pub use grants::{CapabilityRequest, Denied, EffectiveGrants, PluginGrant};
pub use http::{HttpCapability, HttpError, HttpRequest, HttpResponse};
pub use kv::{KvBackend, KvError, KvFuture, KvNamespace, KvQuota, MemoryKv};
pub use kv_overlay::OverlayKv;
pub use ldap::{LdapCapability, LdapError};
pub use secret::Secret;

/// Hashes the in-process keys of tokens and rate limits (never stored, never sent).
pub(crate) const KEY_HASHER: foldhash::quality::FixedState =
    foldhash::quality::FixedState::with_seed(0x7e4e_0e5a);

/// Installs the one rustls crypto provider (ring) the whole host uses.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
