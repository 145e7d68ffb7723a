//! A test harness for Tenure plugin authors: load a built plugin into the real
//! host (the same wasmtime runtime, grants and limits as production) and run
//! it against JSON fixtures.
//!
//! A rules fixture is one JSON file:
//!
//! ```json
//! { "name": "engineer in Berlin",
//!   "person": { "given_name": "Ada", "department": "Engineering", "status": "Active" },
//!   "context": { "event": "Joiner", "destinations": ["ad"] },
//!   "expect": { "accounts": [ { "destination": "ad", "groups": ["Eng"] } ] } }
//! ```
//!
//! `person` fields left out take empty defaults. `expect` is matched as a
//! subset: every key given must match, keys left out are not checked, and
//! arrays must match element by element.

pub mod connector;
pub mod ldap_replay;
pub mod replay;
mod tape;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenure_capabilities::{Clock, KvBackend, MemoryKv, PluginGrant, SystemClock, TenantConfig};
use tenure_runtime::wit::{self, Person};
use tenure_runtime::{PluginVersion, Runtime, RuntimeOptions, Services};

/// What went wrong while loading or running fixtures.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("plugin {name:?} is not built at {path}: run `plugins/build.sh` first")]
    NotBuilt { name: String, path: String },
    #[error(transparent)]
    Runtime(#[from] tenure_runtime::RuntimeError),
    #[error(transparent)]
    Call(#[from] tenure_runtime::CallError),
    #[error("fixture {file}: {reason}")]
    Fixture { file: String, reason: String },
}

/// The key that authenticates the components test processes cache in
/// `target/component-cache` (a host derives its own from the master key).
pub const TEST_CACHE_KEY: [u8; 32] = *b"tenure test component cache key!";

/// Where built plugins are: `$PLUGIN_DIR`, else `target/plugins` in the workspace.
pub fn plugin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    workspace_root().join("target/plugins")
}

/// The workspace root (the folder with the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A runtime with in-memory key-value data, ready to load plugins from [`plugin_dir`].
pub struct Harness {
    runtime: Runtime,
}

impl Harness {
    /// A harness with the system clock and default limits.
    pub fn new() -> Result<Self, HarnessError> {
        Self::with(
            RuntimeOptions::default(),
            Arc::new(MemoryKv::default()),
            Arc::new(SystemClock),
        )
    }

    /// A harness with custom options, key-value backend and clock.
    pub fn with(
        options: RuntimeOptions,
        kv: Arc<dyn KvBackend>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, HarnessError> {
        let services = Services::new(kv, clock)
            .map_err(|e| HarnessError::Runtime(tenure_runtime::RuntimeError::Engine(e.to_string())))?;
        Self::with_services(options, services)
    }

    /// A harness with custom options and host services (for example an LDAP
    /// capability with a test password sink).
    pub fn with_services(options: RuntimeOptions, services: Services) -> Result<Self, HarnessError> {
        let options = RuntimeOptions {
            cache_dir: options
                .cache_dir
                .or_else(|| Some(workspace_root().join("target/component-cache"))),
            cache_key: options
                .cache_key
                .or(Some(tenure_runtime::CacheKey(TEST_CACHE_KEY))),
            ..options
        };
        Ok(Self {
            runtime: Runtime::new(options, services)?,
        })
    }

    /// A harness around a runtime built elsewhere (its own cache and key, for example).
    pub fn with_runtime(runtime: Runtime) -> Self {
        Self { runtime }
    }

    /// The runtime under test.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Registers `<plugin_dir>/<file>.wasm` with its manifest.
    pub fn load(&self, file: &str) -> Result<Arc<PluginVersion>, HarnessError> {
        let path = plugin_dir().join(format!("{file}.wasm"));
        if !path.exists() {
            return Err(HarnessError::NotBuilt {
                name: file.to_string(),
                path: path.display().to_string(),
            });
        }
        Ok(self.runtime.register_file(&path)?)
    }

    /// Adds a tenant from TOML text (`[connections.*]`, `[plugins.*]`).
    pub fn tenant(&self, name: &str, toml_text: &str) -> Result<(), HarnessError> {
        let config: TenantConfig = toml::from_str(toml_text).map_err(|e| HarnessError::Fixture {
            file: format!("tenant {name}"),
            reason: e.to_string(),
        })?;
        self.runtime.set_tenant(name, config);
        Ok(())
    }

    /// A handle on `plugin` as `tenant` configured it, for direct calls
    /// (`describe`, `lookup`, `apply`, `parse`, `poll`, `evaluate`).
    pub fn plugin(&self, tenant: &str, plugin: &str) -> Result<tenure_runtime::PluginHandle, HarnessError> {
        Ok(self.runtime.plugin(tenant, plugin)?)
    }

    /// Adds a tenant whose `plugin` gets `rule_set` (and no capability grants).
    pub fn tenant_with_rule_set(&self, tenant: &str, plugin: &str, rule_set: &str) {
        let mut config = TenantConfig::default();
        config.plugins.insert(
            plugin.to_string(),
            PluginGrant {
                rule_set: Some(rule_set.to_string()),
                ..PluginGrant::default()
            },
        );
        self.runtime.set_tenant(tenant, config);
    }

    /// Runs every `*.json` rules fixture in `dir` against `plugin` for `tenant`
    /// and returns one line per failure (empty when all pass).
    pub async fn run_rules_fixtures(
        &self,
        tenant: &str,
        plugin: &str,
        dir: &Path,
    ) -> Result<FixtureReport, HarnessError> {
        let handle = self.runtime.plugin(tenant, plugin)?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| HarnessError::Fixture {
                file: dir.display().to_string(),
                reason: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut report = FixtureReport::default();
        for file in files {
            let name = file.display().to_string();
            let fixture_err = |reason: String| HarnessError::Fixture {
                file: name.clone(),
                reason,
            };
            let text = std::fs::read_to_string(&file).map_err(|e| fixture_err(e.to_string()))?;
            let fixture: RulesFixture =
                serde_json::from_str(&text).map_err(|e| fixture_err(e.to_string()))?;
            report.run += 1;
            let failures = rules_fixture(&handle, &fixture).await.map_err(fixture_err)?;
            report
                .failures
                .extend(failures.into_iter().map(|f| format!("{}: {f}", fixture.name)));
        }
        Ok(report)
    }
}

/// The outcome of one fixture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureResult {
    pub name: String,
    /// What differed, one line each (empty: passed).
    pub failures: Vec<String>,
}

impl Harness {
    /// Runs every fixture in `dir` (`*.json`, in name order) against `version`, each under a
    /// tenant of its own (so each starts with an empty key-value store): rules fixtures with
    /// `dir/rule-set.*` as the rule set when there is one, connector fixtures against their
    /// recorded HTTP exchanges, source fixtures from a pushed payload to the events expected.
    pub async fn run_fixture_dir(
        &self,
        version: &PluginVersion,
        dir: &Path,
    ) -> Result<Vec<FixtureResult>, HarnessError> {
        let dir_err = |reason: String| HarnessError::Fixture {
            file: dir.display().to_string(),
            reason,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| dir_err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(dir_err("no fixtures (*.json)".into()));
        }
        let plugin = version.manifest.name.as_str();
        let mut results = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let tenant = format!("fixture-{i}");
            let name = file.display().to_string();
            let fixture_err = |reason: String| HarnessError::Fixture {
                file: name.clone(),
                reason,
            };
            let text = std::fs::read_to_string(file).map_err(|e| fixture_err(e.to_string()))?;
            let result = match version.kind {
                tenure_runtime::PluginKind::Rules => {
                    let rule_set = rule_set_in(dir).map_err(dir_err)?;
                    self.tenant_with_rule_set(&tenant, plugin, &rule_set);
                    let fixture: RulesFixture =
                        serde_json::from_str(&text).map_err(|e| fixture_err(e.to_string()))?;
                    let handle = self.runtime.plugin(&tenant, plugin)?;
                    FixtureResult {
                        failures: rules_fixture(&handle, &fixture).await.map_err(fixture_err)?,
                        name: fixture.name,
                    }
                }
                tenure_runtime::PluginKind::Connector => {
                    let fixture: connector::ConnectorFixture =
                        serde_json::from_str(&text).map_err(|e| fixture_err(e.to_string()))?;
                    let replay = replay::Replay::start(fixture.http.clone())
                        .await
                        .map_err(|e| fixture_err(format!("cannot start the replay server: {e}")))?;
                    let ldap = ldap_replay::LdapReplay::start(fixture.ldap.clone())
                        .await
                        .map_err(|e| fixture_err(format!("cannot start the LDAP replay server: {e}")))?;
                    let replays = Replays {
                        http: &replay,
                        ldap: Some(&ldap),
                    };
                    self.tenant(&tenant, &fixture_tenant(version, &fixture.settings, &replays)?)?;
                    let handle = self.runtime.plugin(&tenant, plugin)?;
                    FixtureResult {
                        failures: connector::run(&handle, &replays, &fixture).await?,
                        name: fixture.name,
                    }
                }
                tenure_runtime::PluginKind::Source => {
                    let fixture: SourceFixture =
                        serde_json::from_str(&text).map_err(|e| fixture_err(e.to_string()))?;
                    let replay = replay::Replay::start(Vec::new())
                        .await
                        .map_err(|e| fixture_err(format!("cannot start the replay server: {e}")))?;
                    let replays = Replays {
                        http: &replay,
                        ldap: None,
                    };
                    self.tenant(&tenant, &fixture_tenant(version, &fixture.settings, &replays)?)?;
                    let handle = self.runtime.plugin(&tenant, plugin)?;
                    FixtureResult {
                        failures: source_fixture(&handle, &fixture).await,
                        name: fixture.name,
                    }
                }
            };
            results.push(result);
        }
        Ok(results)
    }
}

/// The rule set beside the fixtures (`rule-set.yaml`, `.yml`, `.json` or `.txt`), or none.
fn rule_set_in(dir: &Path) -> Result<String, String> {
    for ext in ["yaml", "yml", "json", "txt"] {
        let path = dir.join(format!("rule-set.{ext}"));
        if path.exists() {
            return std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()));
        }
    }
    Ok(String::new())
}

/// The replay servers a fixture's connections point at.
pub(crate) struct Replays<'a> {
    pub http: &'a replay::Replay,
    /// None: the fixture kind has no LDAP recordings (a source's).
    pub ldap: Option<&'a ldap_replay::LdapReplay>,
}

impl Replays<'_> {
    /// What went wrong in either server.
    pub fn problems(&self) -> Vec<String> {
        let mut out = self.http.problems();
        out.extend(self.ldap.map(|l| l.problems()).unwrap_or_default());
        out
    }
}

/// A fixture's tenant: what the manifest asks for, granted, with every HTTP and LDAP
/// connection pointed at its replay server.
fn fixture_tenant(
    version: &PluginVersion,
    settings: &std::collections::BTreeMap<String, String>,
    replays: &Replays<'_>,
) -> Result<String, HarnessError> {
    let asked = &version.manifest.capabilities;
    let mut connections = toml::Table::new();
    for name in &asked.http {
        let mut c = toml::Table::new();
        c.insert("kind".into(), "http".into());
        c.insert("url".into(), replays.http.url(name).into());
        c.insert("allow_private_network".into(), true.into());
        connections.insert(name.clone(), c.into());
    }
    if let Some(ldap) = asked.ldap.first() {
        let Some(server) = replays.ldap else {
            return Err(HarnessError::Fixture {
                file: version.manifest.name.clone(),
                reason: format!("LDAP connection {ldap:?}: only connector fixtures record LDAP results"),
            });
        };
        for name in &asked.ldap {
            let mut c = toml::Table::new();
            c.insert("kind".into(), "ldap".into());
            c.insert("url".into(), server.url().into());
            c.insert("bind_dn".into(), ldap_replay::LdapReplay::bind_dn(name).into());
            c.insert("password".into(), "replayed".into());
            c.insert("allow_plaintext".into(), true.into());
            connections.insert(name.clone(), c.into());
        }
    }
    let mut grants = toml::Table::new();
    grants.insert("kv".into(), asked.kv.into());
    grants.insert(
        "http".into(),
        toml::Value::Array(asked.http.iter().map(|h| h.clone().into()).collect()),
    );
    grants.insert(
        "ldap".into(),
        toml::Value::Array(asked.ldap.iter().map(|l| l.clone().into()).collect()),
    );
    let mut grant = toml::Table::new();
    grant.insert("grants".into(), grants.into());
    grant.insert(
        "settings".into(),
        toml::Value::Table(
            settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect(),
        ),
    );
    let mut plugins = toml::Table::new();
    plugins.insert(version.manifest.name.clone(), grant.into());
    let mut tenant = toml::Table::new();
    tenant.insert("connections".into(), connections.into());
    tenant.insert("plugins".into(), plugins.into());
    Ok(tenant.to_string())
}

/// A source fixture: a pushed payload and the events it must give.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFixture {
    name: String,
    #[serde(default)]
    settings: std::collections::BTreeMap<String, String>,
    payload: PayloadIn,
    /// `{"events": [...]}` matched as a subset, or `{"error": "text"}`.
    expect: Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadIn {
    #[serde(default = "json_type")]
    content_type: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    /// Text as it is; anything else sent as its JSON.
    body: Json,
}

fn json_type() -> String {
    "application/json".into()
}

/// One source fixture; what differed.
async fn source_fixture(handle: &tenure_runtime::PluginHandle, fixture: &SourceFixture) -> Vec<String> {
    let body = match &fixture.payload.body {
        Json::String(text) => text.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    };
    let payload = wit::source::Payload {
        content_type: fixture.payload.content_type.clone(),
        headers: fixture.payload.headers.clone(),
        body,
    };
    match handle.parse(&payload).await {
        Ok(events) => {
            let actual = json!({ "events": events });
            match subset(&fixture.expect, &actual, "expect") {
                Ok(()) if fixture.expect.get("error").is_some() => {
                    vec![format!("parsed, expected an error; got {actual}")]
                }
                Ok(()) => vec![],
                Err(path) => vec![format!("{path}; got {actual}")],
            }
        }
        Err(e) => match fixture.expect.get("error").and_then(Json::as_str) {
            Some(want) if e.to_string().contains(want) => vec![],
            _ => vec![format!("call failed: {e}")],
        },
    }
}

/// One rules fixture; what differed.
async fn rules_fixture(
    handle: &tenure_runtime::PluginHandle,
    fixture: &RulesFixture,
) -> Result<Vec<String>, String> {
    let person = person_from_json(fixture.person.clone())?;
    let context = context_from_json(fixture.context.clone())?;
    let mut failures = vec![];
    match handle.evaluate(&person, &context).await {
        Ok(evaluation) => {
            let actual = serde_json::to_value(&evaluation).map_err(|e| e.to_string())?;
            if let Err(path) = subset(&fixture.expect, &actual, "expect") {
                failures.push(format!("{path}; got {actual}"));
            }
        }
        Err(e) => match fixture.expect.get("error").and_then(Json::as_str) {
            Some(want) if e.to_string().contains(want) => {}
            _ => failures.push(format!("call failed: {e}")),
        },
    }
    Ok(failures)
}

/// The outcome of a fixture run.
#[derive(Debug, Default)]
pub struct FixtureReport {
    pub run: usize,
    pub failures: Vec<String>,
}

#[derive(Deserialize)]
struct RulesFixture {
    name: String,
    person: Json,
    #[serde(default)]
    context: Json,
    expect: Json,
}

/// A person from partial JSON: fields left out take empty defaults.
pub fn person_from_json(partial: Json) -> Result<Person, String> {
    let mut full = json!({
        "ids": [], "emails": [], "phones": [], "custom": [], "status": "Active"
    });
    merge(&mut full, partial);
    serde_json::from_value(full).map_err(|e| format!("person: {e}"))
}

/// A rules context from partial JSON (defaults: a joiner, every destination, time 0, full trace).
pub fn context_from_json(partial: Json) -> Result<wit::rules::Context, String> {
    let mut full = json!({ "event": "Joiner", "destinations": [], "now_ms": 0, "trace": "All" });
    merge(&mut full, partial);
    serde_json::from_value(full).map_err(|e| format!("context: {e}"))
}

fn merge(base: &mut Json, overlay: Json) {
    if let (Json::Object(b), Json::Object(o)) = (base, overlay) {
        for (k, v) in o {
            b.insert(k, v);
        }
    }
}

/// Checks that `expected` is a subset of `actual`; on mismatch returns the path.
pub fn subset(expected: &Json, actual: &Json, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Json::Object(e), Json::Object(a)) => {
            for (k, ev) in e {
                if k == "error" && path == "expect" {
                    continue;
                }
                let av = a.get(k).ok_or_else(|| format!("{path}.{k} is missing"))?;
                subset(ev, av, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Json::Array(e), Json::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!("{path} has {} items, expected {}", a.len(), e.len()));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset(ev, av, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path} is {actual}, expected {expected}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_matching() {
        let actual = json!({"a": 1, "b": [ {"x": 1, "y": 2} ], "c": "z"});
        assert!(subset(&json!({"b": [ {"x": 1} ]}), &actual, "expect").is_ok());
        assert_eq!(
            subset(&json!({"a": 2}), &actual, "expect").unwrap_err(),
            "expect.a is 1, expected 2"
        );
        assert!(subset(&json!({"b": []}), &actual, "expect").is_err());
        assert!(subset(&json!({"q": 1}), &actual, "expect").is_err());
    }

    #[test]
    fn partial_person() {
        let p =
            person_from_json(json!({"given_name": "Ada", "custom": [["level", {"Text": "L5"}]]})).unwrap();
        assert_eq!(p.given_name.as_deref(), Some("Ada"));
        assert_eq!(p.custom.len(), 1);
        assert!(
            person_from_json(json!({"status": "Nope"}))
                .unwrap_err()
                .contains("person")
        );
    }
}
