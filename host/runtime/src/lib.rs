//! Tenure's WebAssembly plugin host.
//!
//! One [`Runtime`] owns one wasmtime engine (pooling allocator, epoch
//! interruption), a compiled-component cache on disk, the registry of plugin
//! versions and the tenants' grants. Callers take a [`PluginHandle`] (a
//! snapshot of one plugin version bound to one tenant) and call it; traps,
//! timeouts and out-of-memory come back as a typed [`CallError`] and the host
//! carries on.
//!
//! ```text
//!   register(manifest, wasm) ──► cache ──► version check ──► InstancePre
//!   plugin(tenant, name) ──► PluginHandle ──► warm instance (per tenant)
//!                                                   ──► call with deadline
//! ```

pub mod bindings;
pub mod bounds;
mod cache;
mod engine;
mod error;
mod host_state;
mod instance;
mod manifest;
mod quota;
mod registry;
mod wit_version;

pub use bindings::wit;
pub use engine::{CacheKey, RuntimeOptions};
pub use error::{CallError, RuntimeError};
pub use host_state::Services;
pub use instance::PluginHandle;
pub use manifest::{AccessField, PluginKind, PluginManifest};
pub use quota::QuotaCounters;
pub use registry::{PluginVersion, Runtime};
pub use wit_version::{SUPPORTED_WIT, WitVersion};
