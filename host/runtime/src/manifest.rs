//! A plugin's manifest: who it is, what kind, and which capabilities it requests.

use crate::error::RuntimeError;
use serde::Deserialize;
use std::path::Path;
use tenure_capabilities::CapabilityRequest;

/// The three plugin kinds, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Source,
    Rules,
    Connector,
}

impl PluginKind {
    /// The name used in manifests and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Source => "source",
            PluginKind::Rules => "rules",
            PluginKind::Connector => "connector",
        }
    }
}

/// `<plugin>.toml`, shipped next to `<plugin>.wasm`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    #[serde(default)]
    pub description: String,
    /// What the plugin asks for; the tenant's grant decides what it gets.
    #[serde(default)]
    pub capabilities: CapabilityRequest,
}

impl PluginManifest {
    /// Parses a manifest, naming the file in any error.
    pub fn parse(path_for_errors: &str, text: &str) -> Result<Self, RuntimeError> {
        let manifest: Self = toml::from_str(text).map_err(|e| RuntimeError::Manifest {
            path: path_for_errors.to_string(),
            reason: e.to_string(),
        })?;
        let valid_name = !manifest.name.is_empty()
            && manifest
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            return Err(RuntimeError::Manifest {
                path: path_for_errors.to_string(),
                reason: format!(
                    "name {:?} must be non-empty lowercase letters, digits, '-' or '_'",
                    manifest.name
                ),
            });
        }
        Ok(manifest)
    }

    /// Reads the manifest beside a `.wasm` file (`x.wasm` -> `x.toml`).
    pub fn for_component(wasm: &Path) -> Result<Self, RuntimeError> {
        let path = wasm.with_extension("toml");
        let text = std::fs::read_to_string(&path).map_err(|e| RuntimeError::Manifest {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }
}
