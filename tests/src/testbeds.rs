//! The real servers of `scripts/testbeds/` (OpenLDAP, Samba AD, scim2-server):
//! started (or reused) on demand, their settings read from the script's output.

use std::collections::HashMap;

/// Runs `scripts/testbeds/<script> start` and returns its `KEY=VALUE` settings.
pub fn start(script: &str) -> HashMap<String, String> {
    run_script(script, "start", &[])
}

/// Runs `scripts/testbeds/<script> <command>` with `env` added; its `KEY=VALUE` output.
pub fn run_script(script: &str, command: &str, env: &[(&str, &str)]) -> HashMap<String, String> {
    let path = tenure_plugin_test::workspace_root()
        .join("scripts/testbeds")
        .join(script);
    let out = std::process::Command::new("bash")
        .arg(&path)
        .arg(command)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{script} {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// A PostgreSQL server of the test bed: the shared one, or one of a test's own (a test that
/// restarts its server must not cut the connections of the tests beside it).
#[derive(Debug, Clone, Copy)]
pub struct PostgresBed {
    /// `TB_POSTGRES_DIR` and `TB_POSTGRES_PORT` for `postgres.sh`, or None for the shared one.
    pub own: Option<(&'static str, u16)>,
}

impl PostgresBed {
    /// The server every test shares.
    pub const SHARED: PostgresBed = PostgresBed { own: None };

    fn env(&self) -> Vec<(&'static str, String)> {
        match self.own {
            Some((dir, port)) => vec![
                ("TB_POSTGRES_DIR", dir.to_string()),
                ("TB_POSTGRES_PORT", port.to_string()),
            ],
            None => Vec::new(),
        }
    }

    /// Runs `postgres.sh <command>` for this server; its settings.
    pub fn run(&self, command: &str) -> HashMap<String, String> {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_script("postgres.sh", command, &env)
    }

    /// A new, empty database on this server (started if needed): its URL.
    pub async fn fresh_database(&self, prefix: &str) -> String {
        let server = self.run("start")["TENURE_TEST_POSTGRES_URL"].clone();
        let database = format!("{prefix}_{}", run_id());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
            .await
            .expect("connect to the test bed's PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
            .expect("create a database");
        let (prefix, _) = server.rsplit_once('/').expect("a URL with a database");
        format!("{prefix}/{database}")
    }
}

/// A new, empty database on the shared PostgreSQL (started if needed): its URL.
pub async fn fresh_postgres_database(prefix: &str) -> String {
    PostgresBed::SHARED.fresh_database(prefix).await
}

/// A short suffix unique to this test run (names in long-lived servers must not collide).
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:06x}",
        (nanos as u64 ^ u64::from(std::process::id()) << 20) & 0xff_ffff
    )
}

/// Replaces every `$KEY` of `env` in `text`.
pub fn fill(text: &str, env: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = env.keys().collect();
    // Longest first, so `$A_URL` is not cut short by `$A`.
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut out = text.to_string();
    for k in keys {
        out = out.replace(&format!("${k}"), &env[k]);
    }
    out
}

/// Generated passwords, as the host's password policy receives them.
#[derive(Default)]
pub struct CapturePasswords(pub std::sync::Mutex<Vec<(String, String)>>);

impl tenure_capabilities::ldap::PasswordSink for CapturePasswords {
    fn deliver(&self, _tenant: &str, _connection: &str, dn: &str, password: &tenure_capabilities::Secret) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((dn.to_string(), password.expose().to_string()));
    }
}

impl CapturePasswords {
    /// The newest password generated for `dn` (compared case-insensitively).
    pub fn for_dn(&self, dn: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|(d, _)| d.eq_ignore_ascii_case(dn))
            .map(|(_, p)| p.clone())
    }
}

/// One tenant of the test SCIM server, reached directly (setup and checks), with its
/// control layer (faults, the no-PATCH mode, the request log).
pub struct ScimTenant {
    /// `http://127.0.0.1:18080/<tenant>/v2`.
    pub url: String,
    pub token: String,
    control: String,
    client: reqwest::Client,
}

impl ScimTenant {
    /// Starts (or reuses) the server; the tenant `<name>-<run id>` starts empty.
    pub fn start(name: &str) -> ScimTenant {
        tenure_capabilities::install_crypto_provider();
        let env = start("scim2-server.sh");
        let base = &env["TENURE_TEST_SCIM_BASE"];
        let tenant = format!("{name}-{}", run_id());
        ScimTenant {
            url: format!("{base}/{tenant}/v2"),
            token: env["TENURE_TEST_SCIM_TOKEN"].clone(),
            control: format!("{base}/_control/{tenant}"),
            client: reqwest::Client::new(),
        }
    }

    /// A request to `<url><path>`: the status and the JSON body (null when empty).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/scim+json");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("SCIM request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// Creates a resource and returns its id.
    pub async fn create(&self, endpoint: &str, resource: serde_json::Value) -> String {
        let (status, body) = self
            .request(reqwest::Method::POST, endpoint, Some(resource))
            .await;
        assert_eq!(status, 201, "POST {endpoint}: {body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Creates a group and returns its id.
    pub async fn group(&self, name: &str) -> String {
        let group = serde_json::json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name });
        self.create("/Groups", group).await
    }

    /// The displayNames of the groups a user is in, sorted.
    pub async fn groups_of(&self, id: &str) -> Vec<String> {
        let (_, body) = self
            .get(&format!("/Groups?filter=members.value%20eq%20%22{id}%22"))
            .await;
        let mut names: Vec<String> = body["Resources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g["displayName"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Queues an injected answer (`{"status": 429, "retry_after": 1, "count": 1, "methods": [..]}`).
    pub async fn fault(&self, spec: serde_json::Value) {
        let r = self
            .client
            .post(format!("{}/faults", self.control))
            .json(&spec)
            .send()
            .await
            .expect("fault");
        assert!(r.status().is_success());
    }

    /// Makes every request to this tenant wait `ms` before it is answered (a slow application).
    pub async fn latency(&self, ms: u64) {
        let r = self
            .client
            .post(format!("{}/latency", self.control))
            .json(&serde_json::json!({ "ms": ms }))
            .send()
            .await
            .expect("latency");
        assert!(r.status().is_success());
    }

    /// Turns PATCH off for this tenant.
    pub async fn no_patch(&self) {
        let r = self
            .client
            .post(format!("{}/no-patch", self.control))
            .send()
            .await
            .expect("no-patch");
        assert!(r.status().is_success());
    }

    /// Every request this tenant received.
    pub async fn requests(&self) -> Vec<serde_json::Value> {
        self.client
            .get(format!("{}/requests", self.control))
            .send()
            .await
            .expect("requests")
            .json()
            .await
            .expect("request log")
    }
}

/// A connector plugin's `apply` in a harness tenant, with the plugin's own error.
pub async fn apply(
    h: &tenure_plugin_test::Harness,
    tenant: &str,
    plugin: &str,
    op: tenure_runtime::wit::Operation,
) -> Result<tenure_runtime::wit::Outcome, tenure_runtime::wit::PluginError> {
    let handle = h.runtime().plugin(tenant, plugin).expect("plugin");
    handle.apply(&op).await.map_err(plugin_error)
}

/// A connector plugin's lookup by one key, with the plugin's own error.
pub async fn lookup(
    h: &tenure_plugin_test::Harness,
    tenant: &str,
    plugin: &str,
    attribute: &str,
    value: &str,
) -> Result<Vec<tenure_runtime::wit::Account>, tenure_runtime::wit::PluginError> {
    let handle = h.runtime().plugin(tenant, plugin).expect("plugin");
    let key = tenure_runtime::wit::MatchKey {
        attribute: attribute.into(),
        value: value.into(),
    };
    handle.lookup(&[key]).await.map_err(plugin_error)
}

fn plugin_error(e: tenure_runtime::CallError) -> tenure_runtime::wit::PluginError {
    match e {
        tenure_runtime::CallError::Plugin { error, .. } => error,
        other => panic!("expected the plugin's own error, got {other}"),
    }
}
