//! Host bindings generated from the frozen WIT in `sdk/rust/wit/since_v0.1.0`.
//!
//! The imports (types, log, clock, http, ldap, kv) are generated once; each
//! plugin world reuses them through `with`, so one set of host trait impls
//! and one set of Rust types serve every plugin kind.

#[allow(missing_docs, clippy::all)]
mod imports {
    wasmtime::component::bindgen!({
        path: "../../sdk/rust/wit/since_v0.1.0",
        world: "imports",
        imports: { default: async },
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema],
    });
}

/// Generates one plugin world's bindings, reusing the shared imports.
macro_rules! plugin_world {
    ($module:ident, $world:literal) => {
        #[allow(missing_docs, clippy::all)]
        pub(crate) mod $module {
            wasmtime::component::bindgen!({
                path: "../../sdk/rust/wit/since_v0.1.0",
                world: $world,
                imports: { default: async },
                exports: { default: async },
                with: {
                    "tenure:plugin/types": super::imports::tenure::plugin::types,
                    "tenure:plugin/log": super::imports::tenure::plugin::log,
                    "tenure:plugin/clock": super::imports::tenure::plugin::clock,
                    "tenure:plugin/http": super::imports::tenure::plugin::http,
                    "tenure:plugin/ldap": super::imports::tenure::plugin::ldap,
                    "tenure:plugin/kv": super::imports::tenure::plugin::kv,
                },
                additional_derives: [serde::Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema],
            });
        }
    };
}

plugin_world!(rules_world, "rules-plugin");
plugin_world!(connector_world, "connector-plugin");
plugin_world!(source_world, "source-plugin");

pub(crate) use imports::Imports;

/// The WIT types as Rust types, for callers of the runtime.
pub mod wit {
    pub use super::imports::tenure::plugin::types::*;
    pub use super::imports::tenure::plugin::{clock, http, kv, ldap, log, types};

    /// The `rules` interface's own types.
    pub mod rules {
        pub use super::super::rules_world::exports::tenure::plugin::rules::{
            Context, Evaluation, TraceEntry, TraceLevel,
        };
    }
    /// The `connector` interface's own types.
    pub mod connector {
        pub use super::super::connector_world::exports::tenure::plugin::connector::{
            Capabilities, OperationKind,
        };
    }
    /// The `source` interface's own types.
    pub mod source {
        pub use super::super::source_world::exports::tenure::plugin::source::{Payload, PollResult};
    }
}

impl wit::Person {
    /// A person known only by one source id: every other field empty, status active.
    pub fn with_id(source: &str, id: &str) -> Self {
        wit::Person {
            ids: vec![wit::SourceId {
                source: source.into(),
                id: id.into(),
            }],
            given_name: None,
            family_name: None,
            preferred_name: None,
            emails: Vec::new(),
            phones: Vec::new(),
            title: None,
            department: None,
            team: None,
            location: None,
            country: None,
            time_zone: None,
            manager: None,
            employment_type: None,
            start_date: None,
            end_date: None,
            status: wit::PersonStatus::Active,
            custom: Vec::new(),
        }
    }
}
