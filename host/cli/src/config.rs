//! The host config file: plugin folder, cache, store, server, queue, API
//! tokens and tenants, with `${ENV}` and `${secret:NAME}` interpolation in
//! every string value (errors name the field).

use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tenure_capabilities::config::interpolate_with;
use tenure_capabilities::{ConnectionConfig, PluginGrant, TenantConfig};
use tenure_pipeline::{DestinationConfig, QueueConfig, RuleSetPolicy, SourceConfig, TenantPipeline};
use tenure_server::Role;

/// `tenure.toml`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Where built plugins (`*.wasm` + `*.toml`) are read from.
    #[serde(default = "default_plugins")]
    pub plugins_dir: PathBuf,
    /// Where compiled components are cached.
    #[serde(default = "default_cache")]
    pub cache_dir: PathBuf,
    /// The embedded store.
    #[serde(default)]
    pub store: StoreConfig,
    /// The HTTP API.
    #[serde(default)]
    pub server: ServerConfig,
    /// The durable queue and its workers.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Who may call the API.
    #[serde(default)]
    pub api_tokens: Vec<TokenConfig>,
    /// The tenants this host serves, by name.
    #[serde(default)]
    pub tenants: BTreeMap<String, HostTenant>,
    /// Signed checkpoints of the audit chain, written outside the host on a schedule.
    #[serde(default)]
    pub audit_checkpoints: Option<crate::checkpoints::CheckpointConfig>,
}

/// `[store]`: where Tenure keeps its state: the embedded SQLite file (the default), or a
/// PostgreSQL database that several hosts share.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file (WAL mode), when `url` is not set.
    pub path: PathBuf,
    /// `full` (acknowledged events survive power loss) or `normal` (they survive a process crash).
    /// SQLite only: PostgreSQL's own `synchronous_commit` decides there.
    pub synchronous: Synchronous,
    /// The master key file: SQLite creates it on first start (mode 0600) unless
    /// `TENURE_MASTER_KEY` is set; PostgreSQL never creates one (every host needs the same key:
    /// set `TENURE_MASTER_KEY`, or point this at a copy of the deployment's key).
    pub key_file: Option<PathBuf>,
    /// `postgres://user:password@host:port/database` (add `?sslmode=verify-full` for TLS): the
    /// PostgreSQL database every host of the deployment shares, instead of `path`. Give the
    /// password with `${ENV}` or `${file:...}` (the store's own secrets are not open yet).
    pub url: Option<String>,
    /// Connections this host keeps to PostgreSQL at most. With several hosts, size the
    /// connections to the database (some 4 to 8 per database core in all) and divide them over
    /// the hosts (docs/scale-out.md, Sizing).
    pub max_connections: u32,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("path", &self.path)
            .field("synchronous", &self.synchronous)
            .field("key_file", &self.key_file)
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// `store.synchronous`: what an acknowledged write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Power loss: the write-ahead log is fsynced before the answer.
    Full,
    /// A process crash: the answer follows the commit.
    Normal,
}

impl Synchronous {
    /// The store's setting.
    pub fn durability(self) -> tenure_store::Durability {
        match self {
            Synchronous::Full => tenure_store::Durability::PowerLoss,
            Synchronous::Normal => tenure_store::Durability::ProcessCrash,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("tenure.db"),
            synchronous: Synchronous::Full,
            key_file: None,
            url: None,
            max_connections: 16,
        }
    }
}

/// `[server]`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The address and port the API listens on.
    pub listen: String,
    /// Seconds a client gets to send a request's headers; a slower one is disconnected.
    pub header_read_timeout_secs: u64,
    /// Seconds from a request's headers to its answer (body included); later, 408.
    pub request_timeout_secs: u64,
    /// The bearer token `/metrics` asks for (use `${ENV}` or `${secret:NAME}`); without one,
    /// `/metrics` answers anyone who reaches the listener.
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            metrics_token: None,
        }
    }
}

impl ServerConfig {
    /// The server's deadlines.
    pub fn limits(&self) -> tenure_server::ServeLimits {
        tenure_server::ServeLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs.max(1)),
            ..tenure_server::ServeLimits::default()
        }
    }
}

/// `[[api_tokens]]`: who may call the API, with which role, for which tenant.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The caller's name, recorded as the actor of what it does.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The one tenant it sees.
    pub tenant: String,
    /// The sources it may post events for (the event's `source` and every `person.ids[].source`).
    /// Required for the `source` role. Empty for `hr` and `it`: any source the tenant does not
    /// receive by signed webhook or by polling.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The bearer token (use `${ENV}` or `${secret:NAME}`).
    pub token: String,
    /// The person who holds this token, when it is not its name: four eyes on rule-set publishing
    /// compares people, so two tokens of one person cannot write and publish the same version.
    #[serde(default)]
    pub person: Option<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// `[tenants.T]`: its connections and plugin grants, its rules plugin, destinations and sources.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTenant {
    /// Named connections its plugins may be granted (`[tenants.T.connections.NAME]`).
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// Per-plugin grants, settings and limits (`[tenants.T.plugins.PLUGIN]`).
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginGrant>,
    /// The tenant's share of the plugin host: concurrent calls and calls per minute
    /// (`[tenants.T.plugin_quota]`).
    #[serde(default)]
    pub plugin_quota: tenure_capabilities::PluginQuota,
    /// The rules plugin (required to run the pipeline for this tenant).
    pub rules: Option<String>,
    /// How rule-set versions are published (`four_eyes`).
    #[serde(default)]
    pub rule_sets: RuleSetPolicy,
    /// Linking one person across sources (`link_by`, `authority`).
    #[serde(default)]
    pub identity: tenure_pipeline::identity::IdentityConfig,
    /// Its destinations, in dependency order (`[[tenants.T.destinations]]`).
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// Its sources: pushed payloads, webhooks and polling (`[[tenants.T.sources]]`).
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// What happens to generated initial passwords: `discard` (default) or `vault`.
    #[serde(default)]
    pub initial_passwords: tenure_pipeline::passwords::InitialPasswords,
    /// Contract notices and scheduled reconciliation (`[tenants.T.lifecycle]`).
    #[serde(default)]
    pub lifecycle: tenure_pipeline::LifecycleConfig,
    /// Notification channels and the events that use them (`[tenants.T.notifications]`).
    #[serde(default)]
    pub notifications: tenure_pipeline::notify::NotificationsConfig,
    /// The OpenID provider its people sign in with, and which of its groups give which roles
    /// (`[tenants.T.oidc]`).
    #[serde(default)]
    pub oidc: Option<tenure_server::oidc::OidcConfig>,
    /// Whose plugin uploads the tenant accepts (`[tenants.T.plugin_trust]`): the publishers'
    /// Ed25519 keys, and whether unsigned uploads are allowed.
    #[serde(default)]
    pub plugin_trust: tenure_registry::TrustPolicy,
}

impl HostTenant {
    /// The part the plugin runtime enforces.
    pub fn runtime_config(&self) -> TenantConfig {
        TenantConfig {
            connections: self.connections.clone(),
            plugins: self.plugins.clone(),
            plugin_quota: self.plugin_quota.clone(),
        }
    }

    /// The part the pipeline runs, if the tenant has a rules plugin.
    pub fn pipeline(&self) -> Option<TenantPipeline> {
        Some(TenantPipeline {
            rules: self.rules.clone()?,
            rule_sets: self.rule_sets.clone(),
            identity: self.identity.clone(),
            destinations: self.destinations.clone(),
            sources: self.sources.clone(),
            initial_passwords: self.initial_passwords,
            lifecycle: self.lifecycle.clone(),
            notifications: self.notifications.clone(),
        })
    }
}

fn default_plugins() -> PathBuf {
    PathBuf::from("target/plugins")
}

fn default_cache() -> PathBuf {
    PathBuf::from("target/component-cache")
}

/// The `${secret:NAME}` references in a config file, so they can be fetched before loading.
pub fn secret_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut names = Vec::new();
    let mut rest = text.as_str();
    while let Some(pos) = rest.find("${secret:") {
        rest = &rest[pos + 9..];
        if let Some(end) = rest.find('}') {
            names.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

impl HostConfig {
    /// Reads and interpolates a config file; relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with_secrets(path, &HashMap::new())
    }

    /// [`HostConfig::load`] resolving `${secret:NAME}` from `secrets`.
    pub fn load_with_secrets(path: &Path, secrets: &HashMap<String, String>) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut value: toml::Value =
            toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let lookup = |name: &str| {
            if let Some(secret) = name.strip_prefix("secret:") {
                secrets.get(secret).cloned()
            } else if let Some(file) = name.strip_prefix("file:") {
                std::fs::read_to_string(base.join(file)).ok()
            } else {
                std::env::var(name).ok()
            }
        };
        interpolate(&mut value, "", &lookup)?;
        let mut config: HostConfig = value
            .try_into()
            .with_context(|| format!("invalid config in {}", path.display()))?;
        for dir in [
            &mut config.plugins_dir,
            &mut config.cache_dir,
            &mut config.store.path,
        ] {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        if let Some(key) = config.store.key_file.as_mut()
            && key.is_relative()
        {
            *key = base.join(&*key);
        }
        check_tenant_names(config.tenants.keys())?;
        for (name, tenant) in &config.tenants {
            if let Some(oidc) = &tenant.oidc {
                oidc.check(&format!("tenants.{name}.oidc"))
                    .map_err(anyhow::Error::msg)?;
            }
        }
        check_tokens(&config.api_tokens)?;
        for (i, t) in config.api_tokens.iter().enumerate() {
            if t.token.len() < 16 {
                anyhow::bail!(
                    "api_tokens[{i}].token: must be at least 16 characters (token {})",
                    t.name
                );
            }
            if !config.tenants.contains_key(&t.tenant) {
                anyhow::bail!("api_tokens[{i}].tenant: no tenant named {:?}", t.tenant);
            }
        }
        for (tenant, t) in config.tenants.iter_mut() {
            for (name, grant) in t.plugins.iter_mut() {
                if let Some(rules) = grant.rule_set.as_mut()
                    && let Some(file) = rules.strip_prefix("@")
                {
                    let file = base.join(file);
                    *rules = std::fs::read_to_string(&file).with_context(|| {
                        format!(
                            "tenants.{tenant}.plugins.{name}.rule_set: cannot read {}",
                            file.display()
                        )
                    })?;
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, d) in t.destinations.iter().enumerate() {
                if !seen.insert(d.name.clone()) {
                    anyhow::bail!(
                        "tenants.{tenant}.destinations[{i}].name: {:?} is used twice",
                        d.name
                    );
                }
                if d.matching.is_empty() {
                    anyhow::bail!("tenants.{tenant}.destinations[{i}].matching: name at least one attribute");
                }
            }
        }
        Ok(config)
    }
}

fn interpolate(value: &mut toml::Value, path: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    match value {
        toml::Value::String(s) => *s = interpolate_with(path, s, lookup)?,
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, &p, lookup)?;
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                interpolate(v, &format!("{path}[{i}]"), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Tenant names are identifiers: they prefix keys in the store (`initial-password:<tenant>:<dn>`,
/// key-value namespaces), so a `:` or `/` in one could reach into another tenant's keys.
fn check_tenant_names<'a>(names: impl Iterator<Item = &'a String>) -> Result<()> {
    for name in names {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            // `/api/v1/session/oidc/callback` is the providers' way back, not a tenant's sign-in.
            && name != "callback";
        if !ok {
            anyhow::bail!(
                "tenants.{name:?}: a tenant name is 1 to 64 letters, digits, '-', '_' or '.' \
                 (and not \"callback\")"
            );
        }
    }
    Ok(())
}

/// Token names are unique identifiers (they name the actor and its idempotency keys), secrets are
/// unique (a shared secret would make two callers one), and a `source` token names its sources.
fn check_tokens(tokens: &[TokenConfig]) -> Result<()> {
    for (i, t) in tokens.iter().enumerate() {
        let name_ok = !t.name.is_empty()
            && t.name.len() <= 64
            && t.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            anyhow::bail!("api_tokens[{i}].name: must be 1 to 64 letters, digits, '-', '_' or '.'");
        }
        if let Some(j) = tokens[..i].iter().position(|o| o.name == t.name) {
            anyhow::bail!("api_tokens[{i}].name: {:?} is taken by api_tokens[{j}]", t.name);
        }
        if let Some(j) = tokens[..i].iter().position(|o| o.token == t.token) {
            anyhow::bail!(
                "api_tokens[{i}].token: the same secret as api_tokens[{j}]; give each caller its own"
            );
        }
        if !Role::MACHINES.contains(&t.role) {
            anyhow::bail!(
                "api_tokens[{i}].role: {} is a person's role; a token is source, hr, it or auditor \
                 (people sign in: tenure users add, or [tenants.T.oidc])",
                t.role
            );
        }
        if t.role == Role::Source && t.sources.is_empty() {
            anyhow::bail!(
                "api_tokens[{i}].sources: a source token names the sources it posts for (token {})",
                t.name
            );
        }
        if let Some(bad) = t
            .sources
            .iter()
            .find(|s| tenure_pipeline::event::check_source(s).is_err())
        {
            anyhow::bail!("api_tokens[{i}].sources: {bad:?} is not a source name");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tenure-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn interpolates_env_reads_rule_files_and_resolves_paths() {
        let dir = temp_dir("ok");
        write(&dir, "rules.txt", "destination ad\n");
        // SAFETY: a variable only this test reads.
        unsafe { std::env::set_var("TENURE_CLI_TEST_TOKEN", "tok-123") };
        let path = write(
            &dir,
            "tenure.toml",
            r#"
            plugins_dir = "plugins"
            [tenants.acme.connections.crm]
            kind = "http"
            allow_private_network = true
            url = "https://crm.example.test"
            auth = { type = "bearer", token = "${TENURE_CLI_TEST_TOKEN}" }
            [tenants.acme.plugins.rules-basic]
            rule_set = "@rules.txt"
            "#,
        );
        let config = HostConfig::load(&path).unwrap();
        assert_eq!(config.plugins_dir, dir.join("plugins"));
        assert_eq!(config.cache_dir, dir.join("target/component-cache"));
        let acme = &config.tenants["acme"];
        assert_eq!(
            acme.plugins["rules-basic"].rule_set.as_deref(),
            Some("destination ad\n")
        );
        match &acme.connections["crm"] {
            tenure_capabilities::ConnectionConfig::Http(c) => match &c.auth {
                tenure_capabilities::HttpAuth::Bearer { token } => assert_eq!(token.expose(), "tok-123"),
                other => panic!("unexpected auth {other:?}"),
            },
            other => panic!("unexpected connection {other:?}"),
        }
        assert!(
            !format!("{config:?}").contains("tok-123"),
            "secrets are redacted in Debug"
        );
    }

    #[test]
    fn token_names_and_secrets_are_unique_and_a_source_token_names_its_sources() {
        let token = |name: &str, role: Role, secret: &str, sources: &[&str]| TokenConfig {
            name: name.into(),
            role,
            tenant: "acme".into(),
            token: secret.into(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            person: None,
        };
        let ok = [
            token("hr-feed", Role::Source, "secret-one-0123456789", &["hr"]),
            token("it", Role::It, "secret-two-0123456789", &[]),
        ];
        assert!(check_tokens(&ok).is_ok());
        let err = |tokens: &[TokenConfig]| check_tokens(tokens).unwrap_err().to_string();
        let unbound = [token("feed", Role::Source, "secret-one-0123456789", &[])];
        assert!(
            err(&unbound).contains("api_tokens[0].sources: a source token names"),
            "{}",
            err(&unbound)
        );
        let twice = [
            ok[1].clone_with("it", "secret-three-0123456789"),
            ok[1].clone_with("it", "secret-four-0123"),
        ];
        assert!(err(&twice).contains("api_tokens[1].name: \"it\" is taken by api_tokens[0]"));
        let same_secret = [
            ok[0].clone_with("a", "same-secret-0123456789"),
            ok[1].clone_with("b", "same-secret-0123456789"),
        ];
        assert!(err(&same_secret).contains("api_tokens[1].token: the same secret as api_tokens[0]"));
        let odd = [token("it/admin", Role::It, "secret-two-0123456789", &[])];
        assert!(err(&odd).contains("api_tokens[0].name: must be 1 to 64 letters"));
        // A person's role is not a machine's.
        let owner = [token("boss", Role::Owner, "secret-five-0123456789", &[])];
        assert!(
            err(&owner).contains("api_tokens[0].role: owner is a person's role"),
            "{}",
            err(&owner)
        );
        let auditor = [token("audit-export", Role::Auditor, "secret-six-0123456789", &[])];
        assert!(check_tokens(&auditor).is_ok());
    }

    #[test]
    fn tenant_names_cannot_reach_into_another_tenants_keys() {
        let names = ["acme".to_string(), "acme-eu_2.prod".to_string()];
        assert!(check_tenant_names(names.iter()).is_ok());
        for bad in ["acme:cn=x", "a/b", "", "ünï", "callback"] {
            let err = check_tenant_names([bad.to_string()].iter())
                .unwrap_err()
                .to_string();
            assert!(err.contains("a tenant name is 1 to 64"), "{bad}: {err}");
        }
    }

    impl TokenConfig {
        fn clone_with(&self, name: &str, secret: &str) -> TokenConfig {
            TokenConfig {
                name: name.into(),
                role: self.role,
                tenant: self.tenant.clone(),
                token: secret.into(),
                sources: self.sources.clone(),
                person: self.person.clone(),
            }
        }
    }

    #[test]
    fn secrets_come_from_the_store_and_tokens_are_checked() {
        let dir = temp_dir("secret");
        let text = r#"
            [[api_tokens]]
            name = "it"
            role = "it"
            tenant = "acme"
            token = "${secret:it-token}"
            [tenants.acme]
            rules = "rules-basic"
            "#;
        let path = write(&dir, "tenure.toml", text);
        assert_eq!(secret_names(&path).unwrap(), ["it-token"]);
        let secrets: HashMap<String, String> =
            [("it-token".to_string(), "from-the-store-0123".to_string())].into();
        let config = HostConfig::load_with_secrets(&path, &secrets).unwrap();
        assert_eq!(config.api_tokens[0].token, "from-the-store-0123");
        assert!(
            !format!("{config:?}").contains("from-the-store"),
            "tokens are not in Debug output"
        );
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            err.contains("api_tokens[0].token: secret \"it-token\" is not in the store"),
            "{err}"
        );
        let short: HashMap<String, String> = [("it-token".to_string(), "short".to_string())].into();
        let err = format!("{:#}", HostConfig::load_with_secrets(&path, &short).unwrap_err());
        assert!(
            err.contains("api_tokens[0].token: must be at least 16 characters"),
            "{err}"
        );
    }

    #[test]
    fn cloud_credentials_read_keys_from_files_beside_the_config() {
        let dir = temp_dir("cloud");
        write(
            &dir,
            "graph.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let path = write(
            &dir,
            "tenure.toml",
            r#"
            [tenants.acme.connections.graph]
            kind = "http"
            url = "https://graph.microsoft.com/v1.0"
            auth = { type = "oauth2-jwt", token_url = "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                     client_id = "app", scopes = ["https://graph.microsoft.com/.default"],
                     private_key = "${file:graph.pem}", certificate_thumbprint = "AA" }
            [tenants.acme.connections.okta]
            kind = "http"
            url = "https://example.okta.com"
            auth = { type = "ssws", token = "okta-token" }
            "#,
        );
        let config = HostConfig::load(&path).unwrap();
        let acme = &config.tenants["acme"];
        match &acme.connections["graph"] {
            ConnectionConfig::Http(h) => match &h.auth {
                tenure_capabilities::HttpAuth::OAuth2Jwt { private_key, .. } => {
                    assert!(private_key.expose().starts_with("-----BEGIN PRIVATE KEY-----"))
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        let missing = write(
            &dir,
            "missing.toml",
            "[tenants.acme.connections.g]\nkind = \"http\"\nurl = \"https://x.test\"\n\
             auth = { type = \"oauth2\", token_url = \"https://x.test/t\", client_id = \"a\", \
             client_secret = \"${file:nope.txt}\" }\n",
        );
        let err = format!("{:#}", HostConfig::load(&missing).unwrap_err());
        assert!(
            err.contains("tenants.acme.connections.g.auth.client_secret: file \"nope.txt\" cannot be read"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let dir = temp_dir("err");
        let path = write(
            &dir,
            "tenure.toml",
            "[tenants.acme.connections.crm]\nkind = \"http\"\nallow_private_network = true\n\
             url = \"${TENURE_CLI_TEST_UNSET_VAR}\"\n",
        );
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            err.contains(
                "tenants.acme.connections.crm.url: environment variable TENURE_CLI_TEST_UNSET_VAR is not set"
            ),
            "{err}"
        );
        let path = write(
            &dir,
            "bad.toml",
            "[tenants.acme.plugins.p]\nrule_set = \"@missing.txt\"\n",
        );
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(
            err.contains("tenants.acme.plugins.p.rule_set: cannot read"),
            "{err}"
        );
        let path = write(&dir, "typo.toml", "plugin_dir = \"x\"\n");
        let err = format!("{:#}", HostConfig::load(&path).unwrap_err());
        assert!(err.contains("unknown field `plugin_dir`"), "{err}");
    }
}
