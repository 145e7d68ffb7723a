//! `[tenants.T.oidc]`: the OpenID provider a tenant's people sign in with, and how the
//! provider's groups become Tenure roles.

use serde::Deserialize;
use std::collections::BTreeMap;
use tenure_capabilities::Secret;
use tenure_store::Role;

/// People of the tenant sign in with this OpenID Connect provider (authorization code with
/// PKCE); their accounts are made at first sign-in and their roles follow the provider's groups
/// at every sign-in.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer (`https://login.example.com/`); its discovery document is read from
    /// `{issuer}/.well-known/openid-configuration`. https, or http on a loopback address (tests).
    pub issuer: String,
    /// The client id Tenure is registered under.
    pub client_id: String,
    /// The client's secret (`${secret:NAME}`); left out for a public client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// This host's callback, as registered with the provider:
    /// `https://tenure.example.com/api/v1/session/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked for; `openid` is always sent.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim that is the person's login in Tenure (and the actor in the audit log).
    #[serde(default = "default_login_claim")]
    pub login_claim: String,
    /// The claim that lists the person's groups (a list of names, or one name).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Each provider group and the roles it gives (`"Tenure admins" = ["owner"]`); people roles
    /// only. A person none of whose groups is listed is refused.
    pub roles: BTreeMap<String, Vec<Role>>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_login_claim() -> String {
    "email".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

impl OidcConfig {
    /// What is wrong with it, naming the field under `at` (`tenants.acme.oidc`).
    pub fn check(&self, at: &str) -> Result<(), String> {
        let url_field = |field: &str, value: &str| -> Result<url::Url, String> {
            let url = url::Url::parse(value).map_err(|e| format!("{at}.{field}: not a URL ({e})"))?;
            if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) {
                Ok(url)
            } else {
                Err(format!(
                    "{at}.{field}: must be https (http only on a loopback address)"
                ))
            }
        };
        url_field("issuer", &self.issuer)?;
        url_field("redirect_url", &self.redirect_url)?;
        if self.client_id.trim().is_empty() {
            return Err(format!("{at}.client_id: must not be empty"));
        }
        for (field, value) in [
            ("login_claim", &self.login_claim),
            ("groups_claim", &self.groups_claim),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{at}.{field}: must not be empty"));
            }
        }
        if self.roles.is_empty() {
            return Err(format!("{at}.roles: map at least one group to roles"));
        }
        for (group, roles) in &self.roles {
            if let Some(role) = roles.iter().find(|r| !Role::PEOPLE.contains(r)) {
                return Err(format!(
                    "{at}.roles.{group:?}: {role} is a token's role; people hold owner, hr-admin, \
                     it-admin, operator or auditor"
                ));
            }
        }
        Ok(())
    }

    /// The roles `groups` give, sorted and each once.
    pub fn roles_of(&self, groups: &[String]) -> Vec<Role> {
        let mut roles: Vec<Role> = groups
            .iter()
            .filter_map(|g| self.roles.get(g))
            .flatten()
            .copied()
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        let text = r#"
            issuer = "https://idp.example"
            client_id = "tenure"
            redirect_url = "https://tenure.example/api/v1/session/oidc/callback"
            [roles]
            "IT" = ["it-admin", "operator"]
            "Audit" = ["auditor"]
            "Ops" = ["operator"]
        "#;
        toml::from_str(text).unwrap()
    }

    #[test]
    fn groups_give_the_union_of_their_roles() {
        let c = config();
        assert!(c.check("tenants.acme.oidc").is_ok());
        let groups = ["Ops", "IT", "Sales"].map(String::from);
        assert_eq!(c.roles_of(&groups), vec![Role::ItAdmin, Role::Operator]);
        assert!(c.roles_of(&["Sales".to_string()]).is_empty());
    }

    #[test]
    fn a_bad_config_names_its_field() {
        let mut c = config();
        c.issuer = "http://idp.example".into();
        assert!(
            c.check("tenants.acme.oidc")
                .unwrap_err()
                .starts_with("tenants.acme.oidc.issuer")
        );
        c.issuer = "http://127.0.0.1:9000".into();
        assert!(c.check("t").is_ok());
        c.roles.insert("Machines".into(), vec![Role::Source]);
        let err = c.check("t").unwrap_err();
        assert!(
            err.contains("t.roles.\"Machines\"") && err.contains("source"),
            "{err}"
        );
    }
}
