//! Which Tenure WIT a component was built against, and whether this host speaks it.

use crate::error::RuntimeError;
use crate::manifest::PluginKind;
use wasmtime::Engine;
use wasmtime::component::Component;

/// A `major.minor.patch` WIT package version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WitVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl WitVersion {
    fn parse(s: &str) -> Option<Self> {
        let core = s.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
        let v = Self {
            major: it.next()??,
            minor: it.next()??,
            patch: it.next()??,
        };
        it.next().is_none().then_some(v)
    }

    /// Semver compatibility as the component model linker applies it
    /// (for 0.x, the minor version must match).
    fn compatible_with(self, supported: WitVersion) -> bool {
        if self.major != supported.major {
            return false;
        }
        if self.major == 0 {
            self.minor == supported.minor
        } else {
            self.minor <= supported.minor
        }
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// WIT versions this host supports, each frozen under `sdk/rust/wit/since_v<version>/`.
pub const SUPPORTED_WIT: &[WitVersion] = &[WitVersion {
    major: 0,
    minor: 1,
    patch: 0,
}];

const PACKAGE: &str = "tenure:plugin/";

/// What a component's exports and imports say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentInfo {
    pub kind: PluginKind,
    pub wit: WitVersion,
}

/// Finds the plugin kind and WIT version from the component's exports, and
/// refuses a version this host does not support with a message that says what to do.
pub fn inspect(engine: &Engine, plugin: &str, component: &Component) -> Result<ComponentInfo, RuntimeError> {
    let ty = component.component_type();
    let supported = SUPPORTED_WIT
        .iter()
        .map(|v| format!("{}.{}.x (wit/since_v{v})", v.major, v.minor))
        .collect::<Vec<_>>()
        .join(", ");
    let mut found = None;
    let mut names: Vec<(String, bool)> = ty.exports(engine).map(|(n, _)| (n.to_string(), true)).collect();
    names.extend(ty.imports(engine).map(|(n, _)| (n.to_string(), false)));
    for (name, is_export) in &names {
        let Some(rest) = name.strip_prefix(PACKAGE) else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let Some(version) = WitVersion::parse(version) else {
            return Err(RuntimeError::UnsupportedWit(format!(
                "plugin {plugin:?} uses {name:?} without a valid version; this host supports {supported}"
            )));
        };
        if !SUPPORTED_WIT.iter().any(|s| version.compatible_with(*s)) {
            return Err(RuntimeError::UnsupportedWit(format!(
                "plugin {plugin:?} needs Tenure WIT tenure:plugin@{version} ({name}), which this host does \
                    not support; \
                 it supports {supported}. Rebuild the plugin with an SDK for a supported version, or upgrade \
                     Tenure."
            )));
        }
        if *is_export {
            let kind = match iface {
                "rules" => PluginKind::Rules,
                "connector" => PluginKind::Connector,
                "source" => PluginKind::Source,
                _ => continue,
            };
            if found.is_some() {
                return Err(RuntimeError::InvalidPlugin {
                    plugin: plugin.to_string(),
                    reason: "exports more than one plugin interface; a plugin is exactly one of source, \
                        rules, connector"
                        .into(),
                });
            }
            found = Some(ComponentInfo { kind, wit: version });
        }
    }
    found.ok_or_else(|| RuntimeError::InvalidPlugin {
        plugin: plugin.to_string(),
        reason: format!(
            "exports none of tenure:plugin/source, rules or connector; this host supports {supported}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rules() {
        let v = |s| WitVersion::parse(s).unwrap();
        let s = SUPPORTED_WIT[0];
        assert!(v("0.1.0").compatible_with(s));
        assert!(v("0.1.7").compatible_with(s));
        assert!(!v("0.2.0").compatible_with(s));
        assert!(!v("1.1.0").compatible_with(s));
        assert!(WitVersion::parse("0.1").is_none());
        assert_eq!(v("0.1.0-rc.1"), v("0.1.0"));
    }
}
