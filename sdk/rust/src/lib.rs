//! The Rust SDK for Tenure plugins.
//!
//! A plugin implements one kind: a [`plugin::Connector`], [`plugin::Source`]
//! or [`plugin::Rules`], and exports it with one macro. A whole connector:
//!
//! ```no_run
//! use tenure_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Settings { base_path: String }
//!
//! struct Tickets { api: Client }
//!
//! impl Connector for Tickets {
//!     type Settings = Settings;
//!     const OPERATIONS: &'static [OperationKind] = &[OperationKind::OpenTicket];
//!     fn new(s: Settings) -> Result<Self, PluginError> { Ok(Tickets { api: Client::new(s.base_path) }) }
//!     fn lookup(&mut self, _: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> { Ok(vec![]) }
//!     fn open_ticket(&mut self, t: Ticket) -> Result<Outcome, PluginError> {
//!         let id: String = self.api.post("/tickets", &t)?.json()?;
//!         Ok(Outcome::created(id, "opened"))
//!     }
//! }
//! tenure_sdk::connector_plugin!(Tickets);
//! ```
//!
//! Settings arrive typed ([`settings`]), HTTP answers map to the errors the host
//! retries on ([`http`]), the private key-value store holds JSON ([`kv_json`]),
//! and `log` records and panics reach the host. The raw worlds ([`rules`],
//! [`connector`], [`source`]) and their `Guest` traits stay available for
//! plugins that need them.
//!
//! The WIT this crate binds is vendored in `wit/since_v0.1.0` (the host reads
//! the same files), so the crate builds on its own.
//!
//! Host capabilities (HTTP and LDAP through named connections, a private
//! key-value store, the clock) are in [`host`]. A plugin never holds a secret:
//! it names a connection and the host attaches the credentials.

#[allow(missing_docs, clippy::all)]
mod imports {
    wit_bindgen::generate!({
        path: "wit/since_v0.1.0",
        world: "imports",
        generate_all,
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// The host's imports: types, log, clock, http, ldap, kv.
pub mod host {
    pub use crate::imports::tenure::plugin::{clock, http, kv, ldap, log, types};
}

/// The shared data types (person, accounts, operations, errors).
pub use host::types;
pub use host::types::*;

/// Generates one plugin world's bindings and export macro, reusing the shared imports.
macro_rules! plugin_world {
    ($(#[$doc:meta])* $module:ident, $iface:ident, $world:literal, $export:literal, $bindings:literal) => {
        $(#[$doc])*
        #[allow(missing_docs, clippy::all)]
        pub mod $module {
            wit_bindgen::generate!({
                path: "wit/since_v0.1.0",
                world: $world,
                with: {
                    "tenure:plugin/types@0.1.0": crate::imports::tenure::plugin::types,
                    "tenure:plugin/log@0.1.0": crate::imports::tenure::plugin::log,
                    "tenure:plugin/clock@0.1.0": crate::imports::tenure::plugin::clock,
                    "tenure:plugin/http@0.1.0": crate::imports::tenure::plugin::http,
                    "tenure:plugin/ldap@0.1.0": crate::imports::tenure::plugin::ldap,
                    "tenure:plugin/kv@0.1.0": crate::imports::tenure::plugin::kv,
                },
                additional_derives: [serde::Serialize, serde::Deserialize],
                pub_export_macro: true,
                export_macro_name: $export,
                default_bindings_module: $bindings,
            });
            pub use exports::tenure::plugin::$iface::*;
        }
    };
}

plugin_world!(
    /// Bindings of the `rules-plugin` world.
    rules, rules, "rules-plugin", "export_rules", "tenure_sdk::rules"
);
plugin_world!(
    /// Bindings of the `connector-plugin` world.
    connector, connector, "connector-plugin", "export_connector", "tenure_sdk::connector"
);
plugin_world!(
    /// Bindings of the `source-plugin` world.
    source, source, "source-plugin", "export_source", "tenure_sdk::source"
);

#[cfg(all(feature = "fast-alloc", target_family = "wasm"))]
mod heap;

/// The plugin's global allocator: a per-call arena (see [`call_arena`]) in front
/// of talc (feature `fast-alloc`, on by default), whose heap starts inside the
/// initial linear memory (see `heap.rs`).
#[cfg(all(feature = "fast-alloc", target_family = "wasm"))]
#[global_allocator]
// SAFETY: a component instance runs single-threaded WebAssembly, and this is the
// only use of `heap::global`.
static ALLOCATOR: tenure_call_arena::CallArena<heap::Heap> =
    tenure_call_arena::CallArena::new(unsafe { heap::global() });

/// Turns the per-call arena on or off (it starts off).
///
/// With it on, small allocations are bumped out of a chunk that empties as a
/// whole once a call's last allocation is freed, which is much cheaper than a
/// general-purpose allocator for a call that builds and drops many small
/// strings. Turn it on once the plugin's long-lived state is built (at the end
/// of `configure`), and off before building it again: anything allocated with
/// the arena on that lives on pins its chunk (safe, but that chunk is then
/// not reused). Without the `fast-alloc` feature, or off WebAssembly, this
/// does nothing.
pub fn call_arena(on: bool) {
    #[cfg(all(feature = "fast-alloc", target_family = "wasm"))]
    ALLOCATOR.set_enabled(on);
    #[cfg(not(all(feature = "fast-alloc", target_family = "wasm")))]
    let _ = on;
}

/// The per-call arena's counters (all zero when it is not in use).
pub fn call_arena_stats() -> tenure_call_arena::ArenaStats {
    #[cfg(all(feature = "fast-alloc", target_family = "wasm"))]
    return ALLOCATOR.stats();
    #[cfg(not(all(feature = "fast-alloc", target_family = "wasm")))]
    tenure_call_arena::ArenaStats::default()
}

pub mod errors;
pub mod http;
pub mod kv_json;
mod logging;
pub mod person;
pub mod plugin;
pub mod reserved;
pub mod settings;
mod values;

pub use logging::init;

pub use connector::export_connector;
pub use plugin::{Connector, Rules, Source};

/// What most plugins need in one import.
pub mod prelude {
    pub use crate::connector::OperationKind;
    pub use crate::http::Client;
    pub use crate::plugin::{Connector, Rules, Source};
    pub use crate::source::{Payload, PollResult};
    pub use crate::types::*;
}
pub use rules::export_rules;
pub use source::export_source;
