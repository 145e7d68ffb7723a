//! A tenant's connections and plugin grants, as read from the config file.

use crate::grants::PluginGrant;
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a config value was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `${VAR}` reference names an environment variable that is not set.
    #[error("{field}: environment variable {var} is not set")]
    MissingEnv { field: String, var: String },
    /// A value is present but unusable.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// One tenant: the connections its plugins may use and what each plugin is granted.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Named connections (`[tenants.T.connections.NAME]`).
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// Per-plugin grants and settings (`[tenants.T.plugins.PLUGIN]`).
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginGrant>,
    /// The tenant's share of the plugin host (`[tenants.T.plugin_quota]`).
    #[serde(default)]
    pub plugin_quota: PluginQuota,
}

/// `[tenants.T.plugin_quota]`: how much of the plugin host one tenant may use, over all its plugins
/// (drafts and shadow runs included). A call past a limit waits or is put off with the reason, and
/// only that tenant's jobs are delayed; other tenants never wait for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PluginQuota {
    /// Plugin calls the tenant may have running at once; a call past it waits for one to end, up
    /// to its deadline (default: no limit but the host's instance slots).
    pub max_concurrent_calls: Option<u32>,
    /// Plugin calls the tenant may start per minute, with bursts of a tenth of a minute's worth
    /// (at least one); a call past it is put off until the tenant earns another (default: none).
    /// For the deployment: with several hosts each allows its share.
    pub calls_per_minute: Option<u32>,
}

/// A named connection. Credentials live here and never reach a plugin.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConnectionConfig {
    Http(HttpConnection),
    Ldap(LdapConnection),
}

impl ConnectionConfig {
    /// `http` or `ldap`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectionConfig::Http(_) => "http",
            ConnectionConfig::Ldap(_) => "ldap",
        }
    }
}

/// An HTTP API: a base URL (scheme, host, port and path prefix) and its credentials.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConnection {
    /// Base URL; plugin paths are appended to it and may not leave it.
    pub url: String,
    /// How the host authenticates each request (the plugin never sees the credentials).
    #[serde(default)]
    pub auth: HttpAuth,
    /// Upper bound for one request's time (milliseconds).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// A token bucket shared by every call on this connection (Lever: 10 per second,
    /// bursts of 20); requests wait for a token instead of being refused.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// How often a 429 answer is retried here, after its `Retry-After`, before the
    /// plugin sees it.
    #[serde(default)]
    pub retry_429: u32,
    /// Send the credentials over plain `http://` to a host other than this machine (test
    /// servers only; loopback is always allowed).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Let this connection reach loopback, private, link-local and metadata addresses (an
    /// on-premises app, a test server). Otherwise they are refused, also when the URL's
    /// name resolves to one.
    #[serde(default)]
    pub allow_private_network: bool,
    /// The base URL parsed once, for every request on the connection (leave it default).
    #[serde(skip)]
    #[schemars(skip)]
    pub parsed: ParsedUrl,
}

/// A connection's base URL as last parsed, kept with the text it was parsed from: a `url`
/// changed afterwards is parsed again, never answered from the old one.
#[derive(Debug, Clone, Default)]
pub struct ParsedUrl(std::sync::OnceLock<(String, url::Url)>);

impl ParsedUrl {
    /// `text` parsed, from the cache when it was parsed before.
    pub fn get(&self, text: &str) -> Result<std::borrow::Cow<'_, url::Url>, url::ParseError> {
        if let Some((cached, url)) = self.0.get()
            && cached == text
        {
            return Ok(std::borrow::Cow::Borrowed(url));
        }
        let url = url::Url::parse(text)?;
        // Another caller may have cached it meanwhile; either way this answer is right.
        let _ = self.0.set((text.to_string(), url.clone()));
        Ok(std::borrow::Cow::Owned(url))
    }
}

/// Requests per second and the burst a connection allows.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second in the long run.
    pub per_second: f64,
    /// Requests allowed at once before the rate applies.
    pub burst: u32,
}

/// How the host authenticates requests on a connection.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum HttpAuth {
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer {
        /// The bearer token.
        token: Secret,
    },
    /// `Authorization: Basic base64(username:password)` (Lever: the API key as user, no password).
    Basic {
        /// The user name (Lever: the API key).
        username: Secret,
        /// The password (empty when absent).
        #[serde(default = "empty_secret")]
        password: Secret,
    },
    /// A custom header such as `X-Api-Key`.
    Header {
        /// The header's name.
        name: String,
        /// The header's value.
        value: Secret,
    },
    /// `Authorization: SSWS TOKEN` (an Okta API token).
    Ssws {
        /// The API token.
        token: Secret,
    },
    /// OAuth2 client credentials with a client secret: the host fetches a bearer token from
    /// `token_url` and keeps it until shortly before it expires (Microsoft identity platform:
    /// `https://login.microsoftonline.com/TENANT/oauth2/v2.0/token`, scope
    /// `https://graph.microsoft.com/.default`).
    #[serde(rename = "oauth2")]
    OAuth2 {
        /// The token endpoint.
        token_url: String,
        /// The application (client) id.
        client_id: String,
        /// Scopes asked for (sent space-separated).
        #[serde(default)]
        scopes: Vec<String>,
        /// The client secret.
        client_secret: Secret,
        /// Bind tokens to a key the host holds (DPoP, RFC 9449): for apps that require it.
        #[serde(default)]
        dpop: bool,
    },
    /// OAuth2 client credentials with a signed assertion (`private_key_jwt`, RFC 7523): Microsoft
    /// certificate credentials, Okta service apps. The host signs a short-lived JWT (RS256 for an
    /// RSA key, ES256 for P-256) with `iss` and `sub` the client id and `aud` the token endpoint.
    #[serde(rename = "oauth2-jwt")]
    OAuth2Jwt {
        /// The token endpoint (also the assertion's audience).
        token_url: String,
        /// The application (client) id.
        client_id: String,
        /// Scopes asked for (sent space-separated; Okta: `okta.users.manage` ...).
        #[serde(default)]
        scopes: Vec<String>,
        /// The private key, PEM (PKCS#8, or PKCS#1 for RSA): `${secret:NAME}`, `${file:PATH}` or
        /// `${ENV}`.
        private_key: Secret,
        /// The key's id, sent as the assertion's `kid` (Okta: the key id shown for the app).
        #[serde(default)]
        key_id: Option<String>,
        /// The certificate's SHA-1 thumbprint in hex, as the Entra portal shows it; sent as `x5t`.
        #[serde(default)]
        certificate_thumbprint: Option<String>,
        /// Bind tokens to a key the host holds (DPoP, RFC 9449): Okta service apps with "Require
        /// Demonstrating Proof of Possession" (the default for new ones). The host makes the key,
        /// signs a proof for every request and answers the servers' nonces.
        #[serde(default)]
        dpop: bool,
    },
    /// A Google service account with domain-wide delegation: the host signs the JWT bearer grant
    /// (RS256, `sub` the admin it acts as) and fetches a token from Google's endpoint.
    #[serde(rename = "google-service-account")]
    GoogleServiceAccount {
        /// The service account's JSON key file, whole: `${file:PATH}` or `${secret:NAME}`.
        key: Secret,
        /// The admin the service account acts as (domain-wide delegation's subject).
        subject: String,
        /// Scopes asked for (`https://www.googleapis.com/auth/admin.directory.user` ...).
        scopes: Vec<String>,
        /// Another token endpoint than the key file's `token_uri` (tests).
        #[serde(default)]
        token_url: Option<String>,
    },
}

fn empty_secret() -> Secret {
    Secret::new("")
}

/// An LDAP or Active Directory server and the account the host binds as.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapConnection {
    /// `ldaps://host:636` or `ldap://host:389`.
    pub url: String,
    /// The DN (or, for AD, the user principal name) the host binds as.
    pub bind_dn: String,
    /// The bind password.
    pub password: Secret,
    /// Upgrade a plain `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA that signed the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow a simple bind over an unencrypted connection (test servers only).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Upper bound for one operation's time (milliseconds).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The subtrees a plugin may search, write, move into and delete in (each DN and
    /// everything below it; the root DSE may always be read). Empty: the whole directory.
    #[serde(default)]
    pub base_dns: Vec<String>,
    /// The attributes a plugin may write (case-insensitive; include `objectClass` for
    /// adds). Empty: any attribute but the secret ones, which only generated passwords reach.
    #[serde(default)]
    pub writable_attributes: Vec<String>,
}

/// Replaces every `${NAME}` in `text` with the environment variable `NAME`.
/// `$${` escapes a literal `${`. `field` names the place for the error.
pub fn interpolate_env(field: &str, text: &str) -> Result<String, ConfigError> {
    interpolate_with(field, text, |name| std::env::var(name).ok())
}

/// [`interpolate_env`] with a custom lookup (for tests).
pub fn interpolate_with(
    field: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(stripped) = after.strip_prefix("${") {
            let end = stripped.find('}').ok_or_else(|| ConfigError::Invalid {
                field: field.to_string(),
                reason: "unclosed ${ in value".into(),
            })?;
            let name = &stripped[..end];
            // `${secret:NAME}` names a secret kept encrypted in the store (resolved by the caller's lookup).
            if let Some(secret) = name.strip_prefix("secret:") {
                if secret.is_empty()
                    || !secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                {
                    return Err(ConfigError::Invalid {
                        field: field.to_string(),
                        reason: format!("invalid secret name {secret:?}"),
                    });
                }
                let value = lookup(name).ok_or_else(|| ConfigError::Invalid {
                    field: field.to_string(),
                    reason: format!(
                        "secret {secret:?} is not in the store (add it with `tenure secrets set {secret}`)"
                    ),
                })?;
                out.push_str(&value);
                rest = &stripped[end + 1..];
                continue;
            }
            // `${file:PATH}` is a file's content (a private key, a service account's key file).
            if let Some(path) = name.strip_prefix("file:") {
                let value = lookup(name).ok_or_else(|| ConfigError::Invalid {
                    field: field.to_string(),
                    reason: format!("file {path:?} cannot be read (it must exist and be readable by tenure)"),
                })?;
                out.push_str(&value);
                rest = &stripped[end + 1..];
                continue;
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::Invalid {
                    field: field.to_string(),
                    reason: format!("invalid environment variable name {name:?}"),
                });
            }
            let value = lookup(name).ok_or_else(|| ConfigError::MissingEnv {
                field: field.to_string(),
                var: name.to_string(),
            })?;
            out.push_str(&value);
            rest = &stripped[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_escapes() {
        let env = |n: &str| (n == "TOKEN").then(|| "abc".to_string());
        assert_eq!(
            interpolate_with("f", "Bearer ${TOKEN}!", env).unwrap(),
            "Bearer abc!"
        );
        assert_eq!(
            interpolate_with("f", "cost $5 $${X}", env).unwrap(),
            "cost $5 ${X}"
        );
        let err = interpolate_with("connections.x.token", "${NOPE}", env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connections.x.token: environment variable NOPE is not set"
        );
        assert!(interpolate_with("f", "${OPEN", env).is_err());
    }

    #[test]
    fn parses_connections() {
        let cfg: TenantConfig = toml::from_str(
            r#"
            [connections.lever]
            kind = "http"
            allow_private_network = true
            url = "https://api.lever.co/v1"
            auth = { type = "basic", username = "key" }
            [connections.ad]
            kind = "ldap"
            url = "ldaps://127.0.0.1:636"
            bind_dn = "CN=svc,DC=example,DC=test"
            password = "pw"
            [plugins.lever-source.grants]
            http = ["lever"]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.connections["lever"].kind(), "http");
        assert_eq!(cfg.connections["ad"].kind(), "ldap");
        assert_eq!(cfg.plugins["lever-source"].grants.http, vec!["lever".to_string()]);
        assert!(format!("{cfg:?}").contains("[redacted]"));
        assert!(!format!("{cfg:?}").contains("\"pw\""));
    }
}
