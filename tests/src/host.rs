//! An in-process Tenure host for tests: a fresh SQLite store in a temporary
//! folder, the real plugin runtime with built plugins, the pipeline workers and
//! the HTTP API on a loopback port.

use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenure_capabilities::{Clock, SystemClock, TenantConfig};
use tenure_pipeline::{Pipeline, PipelineConfig, QueueConfig, TenantPipeline};
use tenure_registry::{PluginRegistry, TrustPolicy};
use tenure_runtime::{Runtime, RuntimeOptions, Services};
use tenure_server::{ApiToken, AppState, Role};
use tenure_store::crypto::MasterKey;
use tenure_store::{
    DeliveryFilter, DeliveryState, DeliveryStore, HealthStore, ScheduleStore, SecretStore, SqliteOptions,
    SqliteStore, Store,
};
use tokio::sync::watch;

/// The tenant every test host serves.
pub const TENANT: &str = "t";
/// Tokens by role.
pub const IT_TOKEN: &str = "it-token-0123456789";
pub const AUDITOR_TOKEN: &str = "auditor-token-0123456789";
pub const SOURCE_TOKEN: &str = "source-token-0123456789";
/// A second IT admin (`it-reviewer`), for four-eyes publishing.
pub const IT2_TOKEN: &str = "it2-token-0123456789";
/// A second token of the person behind [`IT_TOKEN`] (`it-admin`), named `it-admin-ci`.
pub const IT_SAME_PERSON_TOKEN: &str = "it-same-person-token-0123456789";
/// An HR token (`hr-author`).
pub const HR_TOKEN: &str = "hr-token-0123456789";

/// What to run.
pub struct HostSpec {
    /// The runtime side of the tenant: connections and plugin grants.
    pub tenant: TenantConfig,
    pub pipeline: TenantPipeline,
    pub queue: QueueConfig,
    /// Plugins to load from the plugin folder.
    pub plugins: Vec<&'static str>,
}

/// A running host.
pub struct TestHost {
    pub base: String,
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<SqliteStore>,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A tenant config from TOML (the `[tenants.T]` runtime part).
pub fn tenant_toml(text: &str) -> TenantConfig {
    toml_from(text)
}

/// A pipeline tenant from TOML (`rules`, `[[destinations]]`).
pub fn pipeline_toml(text: &str) -> TenantPipeline {
    toml_from(text)
}

fn toml_from<T: serde::de::DeserializeOwned>(text: &str) -> T {
    toml::from_str(text).expect("test config")
}

impl TestHost {
    pub async fn start(spec: HostSpec) -> TestHost {
        Self::start_in(spec, tempfile::tempdir().expect("temp dir")).await
    }

    /// Starts a host whose clock (the pipeline's and the plugins') is `clock`.
    pub async fn start_with_clock(spec: HostSpec, dir: tempfile::TempDir, clock: Arc<dyn Clock>) -> TestHost {
        Self::start_clocked(spec, dir, clock).await
    }

    /// Starts a host on an existing folder (its store survives restarts).
    pub async fn start_in(spec: HostSpec, dir: tempfile::TempDir) -> TestHost {
        Self::start_clocked(spec, dir, Arc::new(SystemClock)).await
    }

    /// Starts a host whose plugins go through the plugin registry, as `tenure serve` loads them:
    /// `spec.plugins` seed it (offered to every tenant), the versions and activations it keeps are
    /// restored, and uploads are checked against `trust`.
    pub async fn start_with_registry(spec: HostSpec, dir: tempfile::TempDir, trust: TrustPolicy) -> TestHost {
        Self::start_full(spec, dir, Arc::new(SystemClock), Some(trust)).await
    }

    async fn start_clocked(spec: HostSpec, dir: tempfile::TempDir, clock: Arc<dyn Clock>) -> TestHost {
        Self::start_full(spec, dir, clock, None).await
    }

    async fn start_full(
        spec: HostSpec,
        dir: tempfile::TempDir,
        clock: Arc<dyn Clock>,
        trust: Option<TrustPolicy>,
    ) -> TestHost {
        tenure_capabilities::install_crypto_provider();
        let options = SqliteOptions {
            path: dir.path().join("tenure.db"),
            durability: tenure_store::Durability::PowerLoss,
            accept_audit_head: false,
        };
        let store = SqliteStore::open(&options, MasterKey::from_bytes([9; 32])).expect("open store");
        let services = Services::new(store.kv(), clock)
            .expect("services")
            .with_passwords(tenure_pipeline::passwords::PasswordVault::start(
                store.clone() as Arc<dyn Store>,
                [(TENANT.to_string(), spec.pipeline.initial_passwords)].into(),
            ));
        let cache = tenure_plugin_test::workspace_root().join("target/component-cache");
        let runtime = Runtime::new(
            RuntimeOptions {
                cache_dir: Some(cache),
                cache_key: Some(tenure_runtime::CacheKey(tenure_plugin_test::TEST_CACHE_KEY)),
                ..RuntimeOptions::for_workers(spec.queue.concurrency)
            },
            services,
        )
        .expect("runtime");
        let registry = trust.map(|trust| {
            PluginRegistry::new(
                store.clone() as Arc<dyn Store>,
                runtime.clone(),
                [(TENANT.to_string(), trust)].into(),
            )
        });
        for p in &spec.plugins {
            let path = tenure_plugin_test::plugin_dir().join(format!("{p}.wasm"));
            match &registry {
                Some(r) => r.seed_file(&path).await.map(|_| ()).map_err(|e| e.to_string()),
                None => runtime
                    .register_file(&path)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            }
            .unwrap_or_else(|e| panic!("plugin {p}: {e} (run plugins/build.sh)"));
        }
        if let Some(r) = &registry {
            r.restore().await.expect("restore the plugin registry");
        }
        runtime.set_tenant(TENANT, spec.tenant);
        let config = PipelineConfig {
            queue: spec.queue,
            tenants: [(TENANT.to_string(), spec.pipeline)].into(),
        };
        let pipeline = Pipeline::new(store.clone() as Arc<dyn Store>, runtime, config).expect("pipeline");
        let tokens = vec![
            ApiToken::new("it-admin", Role::It, TENANT, IT_TOKEN),
            ApiToken::new("auditor", Role::Auditor, TENANT, AUDITOR_TOKEN),
            ApiToken::new("hr-feed", Role::Source, TENANT, SOURCE_TOKEN).for_sources(vec![
                "hr".into(),
                "lever".into(),
                "api".into(),
            ]),
            ApiToken::new("it-reviewer", Role::It, TENANT, IT2_TOKEN),
            ApiToken::new("it-admin-ci", Role::It, TENANT, IT_SAME_PERSON_TOKEN).held_by("it-admin"),
            ApiToken::new("hr-author", Role::Hr, TENANT, HR_TOKEN),
        ];
        let mut state = AppState::new(pipeline.clone(), tokens);
        if let Some(r) = registry {
            state = state.with_plugin_registry(r);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, shutdown) = watch::channel(false);
        let mut rx = shutdown.clone();
        let server = tokio::spawn(async move {
            tenure_server::serve(
                listener,
                tenure_server::router(state),
                tenure_server::ServeLimits::default(),
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            )
            .await;
        });
        let workers = tokio::spawn(pipeline.clone().run_workers(shutdown, Duration::from_secs(5)));
        TestHost {
            base,
            pipeline,
            store,
            dir,
            client: reqwest::Client::new(),
            stop,
            tasks: vec![server, workers],
        }
    }

    /// Stops the server and the workers; returns the folder so a new host can reopen the store.
    pub async fn stop(self) -> tempfile::TempDir {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.dir
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Posts a signed Lever webhook delivery to the `lever` source's hook; the status and body.
    pub async fn post_lever_delivery(&self, delivery: &Value) -> (u16, String) {
        let resp = self
            .client
            .post(format!("{}/hooks/lever/lever", self.base))
            .header("content-type", "application/json")
            .body(delivery.to_string())
            .send()
            .await
            .expect("the delivery");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Posts an event as the source token.
    pub async fn post_event(&self, event: &Value, key: &str) -> (u16, Value) {
        self.request(
            reqwest::Method::POST,
            "/api/v1/events",
            SOURCE_TOKEN,
            Some(event),
            Some(key),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .request(reqwest::Method::GET, path, IT_TOKEN, None, None)
            .await;
        assert!(status < 300, "GET {path}: {status} {body}");
        body
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, IT_TOKEN, Some(body), None)
            .await
    }

    /// Webhook deliveries still waiting for (or in) enrichment.
    pub async fn deliveries_busy(&self) -> usize {
        let mut busy = 0;
        for state in [DeliveryState::Pending, DeliveryState::Running] {
            busy += self
                .store
                .deliveries(DeliveryFilter {
                    tenant: TENANT.into(),
                    source: None,
                    state: Some(state),
                    limit: 10_000,
                })
                .await
                .expect("deliveries")
                .len();
        }
        busy
    }

    /// The person's account in the sandbox destination, found by `employeeId`.
    pub async fn sandbox_account(&self, employee_id: &str) -> Option<tenure_runtime::wit::Account> {
        let sandbox = self
            .pipeline
            .runtime()
            .plugin(TENANT, "sandbox")
            .expect("sandbox");
        let key = tenure_runtime::wit::MatchKey {
            attribute: "employeeId".into(),
            value: employee_id.into(),
        };
        let found = sandbox.lookup(&[key]).await.expect("lookup");
        assert!(found.len() <= 1, "one account per person: {found:?}");
        found.into_iter().next()
    }

    /// Runs the scheduled actions that are due (by the host's clock) and waits until no job
    /// or due action is left (or panics after about 20 s).
    pub async fn settle_scheduled(&self) {
        let started = Instant::now();
        loop {
            self.pipeline.fire_due_actions().await.expect("fire due actions");
            self.wait_idle(Duration::from_secs(60)).await;
            let now = self.pipeline.now();
            let busy: Vec<_> = self
                .store
                .scheduled_actions(TENANT, true)
                .await
                .expect("actions")
                .into_iter()
                .filter(|a| a.state == tenure_store::ActionState::Queued || a.due_ms <= now)
                .collect();
            if busy.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "scheduled work never settled: {busy:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no webhook delivery waits for enrichment and no job is available,
    /// running or retryable (or panics after `limit`).
    pub async fn wait_idle(&self, limit: Duration) {
        let started = Instant::now();
        // One indexed existence check per poll: counting every job (the queue depth) each
        // 20 ms would take CPU from the host being measured.
        let db = rusqlite::Connection::open_with_flags(
            self.store.path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("a read-only view of the store");
        db.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
        loop {
            // Deliveries first: an enrichment ends in the same write that queues its jobs.
            let enriching = self.deliveries_busy().await;
            let busy: bool = db
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM jobs WHERE state IN ('available', 'running', 'retryable'))",
                    [],
                    |r| r.get(0),
                )
                .expect("busy jobs");
            if !busy && enriching == 0 {
                return;
            }
            if started.elapsed() >= limit {
                let depth = self.store.queue_depth().await.expect("queue depth");
                panic!("jobs and {enriching} deliveries still busy after {limit:?}: {depth:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every account the sandbox destination holds, as it stores them.
    pub async fn sandbox_accounts(&self) -> Vec<Value> {
        let kv = self.store.kv();
        let ns = tenure_capabilities::KvNamespace {
            tenant: TENANT.into(),
            plugin: "sandbox".into(),
        };
        let mut out = Vec::new();
        for key in kv.list_keys(&ns, "account/").await.expect("sandbox keys") {
            let raw = kv
                .get(&ns, &key)
                .await
                .expect("sandbox account")
                .expect("listed key");
            out.push(serde_json::from_slice(&raw).expect("sandbox JSON"));
        }
        out
    }

    /// Audit entries (as JSON) of this tenant, optionally for one person.
    pub async fn audit(&self, person: Option<&str>) -> Vec<Value> {
        let path = match person {
            Some(p) => format!("/api/v1/audit?person={p}"),
            None => "/api/v1/audit".into(),
        };
        let (status, body) = self
            .request(reqwest::Method::GET, &path, AUDITOR_TOKEN, None, None)
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().expect("audit").clone()
    }
}

/// A joiner event for `id` in the API format.
pub fn joiner(id: &str, department: &str) -> Value {
    serde_json::json!({
        "kind": "joiner", "source": "hr", "source_record_id": format!("hire-{id}"),
        "person": { "ids": [{"source": "hr", "id": id}], "given_name": format!("Given{id}"),
            "family_name": "Test",
                    "department": department, "emails": [{"value": format!("p{id}@example.test"),
                        "primary": true}] }
    })
}

/// The standard rules for pipeline tests: one destination named `dest`.
pub fn rules(destination: &str) -> String {
    format!(
        "destination {destination}\n\
         rule eng: department == \"Engineering\" => group:Engineering, ou:OU=Engineering\n\
         rule sales: department == \"Sales\" => group:Sales, ou:OU=Sales\n\
         rule leaver: status == \"terminated\" => disable\n\
         default => ou:OU=People, group:All-Staff\n\
         set employeeId = \"{{id}}\"\n\
         set mail = \"{{email}}\"\n\
         set department = \"{{department}}\"\n"
    )
}
