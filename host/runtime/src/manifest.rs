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

/// Access a connector applies beyond its operations (each travels as a reserved attribute of a
/// create or an update). A rule set's output of a kind the connector does not keep is reported as
/// unsupported in the plan, never sent and silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessField {
    /// Licences (Entra SKUs, Google licences).
    Licenses,
    /// App assignments (Okta apps, Entra app roles).
    AppAssignments,
    /// An account expiry date kept by the destination (AD's `accountExpires`).
    Expiry,
    /// Distribution lists: mail lists whose membership the connector writes like a group's
    /// (Google Groups, AD distribution groups). Rule sets' `distribution_lists` are refused at
    /// publish for any other destination.
    DistributionLists,
    /// Microsoft 365 groups (Entra). Rule sets' `m365_groups` are refused at publish for any
    /// other destination.
    M365Groups,
}

impl AccessField {
    /// The name used in manifests and plans.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessField::Licenses => "licenses",
            AccessField::AppAssignments => "app-assignments",
            AccessField::Expiry => "expiry",
            AccessField::DistributionLists => "distribution-lists",
            AccessField::M365Groups => "m365-groups",
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
    /// Connectors: the access fields the destination keeps (`licenses`, `app-assignments`,
    /// `expiry`).
    #[serde(default)]
    pub keeps: Vec<AccessField>,
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
        if !manifest.keeps.is_empty() && manifest.kind != PluginKind::Connector {
            return Err(RuntimeError::Manifest {
                path: path_for_errors.to_string(),
                reason: format!(
                    "keeps: only a connector keeps access fields, not a {} plugin",
                    manifest.kind.as_str()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_says_which_access_fields_it_keeps_and_nothing_else_may() {
        let connector =
            "name = \"c\"\nversion = \"1\"\nkind = \"connector\"\nkeeps = [\"licenses\", \"expiry\"]\n";
        let m = PluginManifest::parse("c.toml", connector).unwrap();
        assert_eq!(m.keeps, [AccessField::Licenses, AccessField::Expiry]);
        let rules = "name = \"r\"\nversion = \"1\"\nkind = \"rules\"\nkeeps = [\"licenses\"]\n";
        let err = PluginManifest::parse("r.toml", rules).unwrap_err().to_string();
        assert!(
            err.contains("r.toml") && err.contains("keeps: only a connector"),
            "{err}"
        );
        let unknown = "name = \"c\"\nversion = \"1\"\nkind = \"connector\"\nkeeps = [\"mailboxes\"]\n";
        let err = PluginManifest::parse("c.toml", unknown).unwrap_err().to_string();
        assert!(err.contains("mailboxes"), "{err}");
    }
}
