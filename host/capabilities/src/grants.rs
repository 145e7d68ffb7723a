//! Two-sided grants: what a plugin asks for, what a tenant allows, and the intersection.

use crate::config::TenantConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Capabilities named in a plugin manifest (`[capabilities]`) or granted by a tenant
/// (`[tenants.T.plugins.P.grants]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    /// HTTP connection names.
    #[serde(default)]
    pub http: Vec<String>,
    /// LDAP connection names.
    #[serde(default)]
    pub ldap: Vec<String>,
    /// A private key-value store.
    #[serde(default)]
    pub kv: bool,
}

/// What a tenant gives one plugin: its grants, settings and (for rules plugins) the rule set.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginGrant {
    /// The capabilities granted (the plugin gets those its manifest also requests).
    #[serde(default)]
    pub grants: CapabilityRequest,
    /// Non-secret settings passed to the plugin's `configure`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The rule-set document handed to a rules plugin's `configure`.
    #[serde(default)]
    pub rule_set: Option<String>,
    /// Per-call deadline in milliseconds (host default when absent).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Memory limit per instance in MiB (host default when absent).
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// Most keys the plugin's key-value store may hold (default 100,000; at most 50,000,000).
    #[serde(default)]
    pub kv_max_keys: Option<usize>,
    /// Most MiB (keys and values) the plugin's key-value store may hold (default 256;
    /// at most 65,536).
    #[serde(default)]
    pub kv_max_mib: Option<usize>,
}

/// A refused capability. The message says which config key to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Denied {}

/// The intersection of a plugin's request and a tenant's grant, with enough
/// context to explain any denial.
#[derive(Debug, Clone)]
pub struct EffectiveGrants {
    tenant: String,
    plugin: String,
    requested: CapabilityRequest,
    granted: CapabilityRequest,
    /// Connection name -> kind (`http`/`ldap`) as the tenant defines them.
    defined: BTreeMap<String, &'static str>,
}

impl EffectiveGrants {
    /// Intersects `requested` (the manifest) with what `tenant_config` grants `plugin`.
    pub fn new(
        tenant: &str,
        plugin: &str,
        requested: &CapabilityRequest,
        tenant_config: &TenantConfig,
    ) -> Self {
        let granted = tenant_config
            .plugins
            .get(plugin)
            .map(|g| g.grants.clone())
            .unwrap_or_default();
        let defined = tenant_config
            .connections
            .iter()
            .map(|(name, c)| (name.clone(), c.kind()))
            .collect();
        Self {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            requested: requested.clone(),
            granted,
            defined,
        }
    }

    /// The tenant these grants belong to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The plugin these grants belong to.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// What the plugin may use: what it requests and the tenant grants.
    pub fn effective(&self) -> CapabilityRequest {
        let both = |requested: &[String], granted: &[String]| -> Vec<String> {
            requested
                .iter()
                .filter(|c| granted.contains(c))
                .cloned()
                .collect()
        };
        CapabilityRequest {
            http: both(&self.requested.http, &self.granted.http),
            ldap: both(&self.requested.ldap, &self.granted.ldap),
            kv: self.requested.kv && self.granted.kv,
        }
    }

    /// Allows an HTTP connection, or says which key to change.
    pub fn check_http(&self, connection: &str) -> Result<(), Denied> {
        self.check("http", connection, &self.requested.http, &self.granted.http)
    }

    /// Allows an LDAP connection, or says which key to change.
    pub fn check_ldap(&self, connection: &str) -> Result<(), Denied> {
        self.check("ldap", connection, &self.requested.ldap, &self.granted.ldap)
    }

    /// Allows the private key-value store, or says which key to change.
    pub fn check_kv(&self) -> Result<(), Denied> {
        let (t, p) = (&self.tenant, &self.plugin);
        if !self.requested.kv {
            return Err(Denied(format!(
                "plugin {p:?} does not request a key-value store: set `kv = true` under [capabilities] in \
                    its manifest ({p}.toml)"
            )));
        }
        if !self.granted.kv {
            return Err(Denied(format!(
                "tenant {t:?} has not granted a key-value store to plugin {p:?}: set \
                    `tenants.{t}.plugins.{p}.grants.kv = true`"
            )));
        }
        Ok(())
    }

    fn check(&self, kind: &str, name: &str, requested: &[String], granted: &[String]) -> Result<(), Denied> {
        let (t, p) = (&self.tenant, &self.plugin);
        if !requested.iter().any(|r| r == name) {
            return Err(Denied(format!(
                "plugin {p:?} does not request {kind} connection {name:?}: add {name:?} to `{kind}` under \
                    [capabilities] in its manifest ({p}.toml)"
            )));
        }
        if !granted.iter().any(|g| g == name) {
            return Err(Denied(format!(
                "tenant {t:?} has not granted {kind} connection {name:?} to plugin {p:?}: add {name:?} to \
                    `tenants.{t}.plugins.{p}.grants.{kind}`"
            )));
        }
        match self.defined.get(name) {
            Some(k) if *k == kind => Ok(()),
            Some(other) => Err(Denied(format!(
                "connection {name:?} of tenant {t:?} is an {other} connection, not {kind}: fix \
                    `tenants.{t}.connections.{name}.kind`"
            ))),
            None => Err(Denied(format!(
                "tenant {t:?} defines no connection {name:?}: add [tenants.{t}.connections.{name}] with kind \
                    = \"{kind}\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantConfig {
        toml::from_str(
            r#"
            [connections.crm]
            kind = "http"
            allow_private_network = true
            url = "http://127.0.0.1:1/api"
            [connections.dir]
            kind = "ldap"
            url = "ldap://127.0.0.1:1"
            bind_dn = "cn=admin"
            password = "x"
            [plugins.p.grants]
            http = ["crm", "missing"]
            ldap = ["crm"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn intersection_and_messages() {
        let req = CapabilityRequest {
            http: vec!["crm".into(), "missing".into(), "extra".into()],
            ldap: vec!["crm".into(), "dir".into()],
            kv: true,
        };
        let g = EffectiveGrants::new("acme", "p", &req, &tenant());
        assert!(g.check_http("crm").is_ok());
        let e = g.check_http("other").unwrap_err().0;
        assert!(e.contains("add \"other\" to `http` under [capabilities]"), "{e}");
        let e = g.check_http("extra").unwrap_err().0;
        assert!(e.contains("tenants.acme.plugins.p.grants.http"), "{e}");
        let e = g.check_http("missing").unwrap_err().0;
        assert!(e.contains("[tenants.acme.connections.missing]"), "{e}");
        let e = g.check_ldap("crm").unwrap_err().0;
        assert!(e.contains("is an http connection, not ldap"), "{e}");
        let e = g.check_ldap("dir").unwrap_err().0;
        assert!(e.contains("tenants.acme.plugins.p.grants.ldap"), "{e}");
        let e = g.check_kv().unwrap_err().0;
        assert!(e.contains("tenants.acme.plugins.p.grants.kv = true"), "{e}");
    }
}
