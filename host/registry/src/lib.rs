//! The plugin registry in the host, behind the API and the CLI: an upload is checked (manifest,
//! size, signature against the tenant's trusted publishers, kind and contract version, linking),
//! compiled once and kept by digest with its manifest, uploader and signer; each tenant activates
//! its own version of each plugin (hot: calls that start afterwards run it, calls under way finish
//! on theirs) and rolls back to any earlier one. Every change is audited. Files in the plugins
//! directory seed the registry as versions offered to every tenant.

mod live;
pub mod signature;

pub use signature::{PluginSignature, SignatureError, SigningKey, TrustPolicy};

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tenure_pipeline::audit_events::{self as ev, AuditEvent};
use tenure_rulesets::impact::{ImpactLimits, ImpactReport};
use tenure_rulesets::{RuleSetError, RuleSets};
use tenure_runtime::{PluginKind, PluginManifest, PluginVersion, Runtime, RuntimeError};
use tenure_store::{
    NewActivation, NewPluginVersion, ReportKind, ReportRow, Store, StoreError, StoredPluginKind,
    StoredPluginVersion,
};

/// Shadow reports kept per tenant (the newest).
const SHADOW_REPORTS_KEPT: usize = 50;

/// The largest component accepted (the biggest first-party plugin, Python rules, is 18 MiB).
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;
/// Who seeded a version from the plugins directory, in the registry and the audit.
pub const SEEDED_BY: &str = "plugins_dir";

/// Why a registry request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The upload or one of its fields is wrong.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The signature does not satisfy the tenant's trust policy.
    #[error("signature: {0}")]
    Untrusted(SignatureError),
    #[error("not found: {0}")]
    NotFound(String),
    /// The tenant's policy holds the activation (four eyes, a shadow run first).
    #[error("{0}")]
    Denied(String),
    /// Another population-wide evaluation runs for the tenant, its budget is spent, or its
    /// previous upload is still being compiled; `field` names what was throttled.
    #[error("{reason}")]
    Throttled {
        field: &'static str,
        reason: String,
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("runtime: {0}")]
    Runtime(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Invalid {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// A plugin upload.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The manifest's TOML text (`plugin.toml`).
    pub manifest: &'a str,
    /// The component's bytes (`plugin.wasm`).
    pub component: &'a [u8],
    pub signature: Option<&'a PluginSignature>,
}

/// One version as a tenant sees it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VersionView {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub kind: StoredPluginKind,
    pub wit: String,
    /// `tenant` (uploaded by the tenant, seen by it alone) or `everyone`.
    pub offered_to: String,
    pub signer: Option<String>,
    pub uploaded_by: String,
    pub uploaded_ms: i64,
    pub size_bytes: i64,
    /// Whether the tenant runs it.
    pub active: bool,
}

/// A plugin as a tenant sees it: the version it runs and every version it may run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PluginView {
    pub name: String,
    pub kind: StoredPluginKind,
    /// The version the tenant runs (absent when the host could not load any).
    pub active: Option<String>,
    /// What that version may use: what its manifest requests and the tenant grants.
    pub grants: Option<tenure_capabilities::CapabilityRequest>,
    pub versions: Vec<VersionView>,
}

/// The outcome of an upload.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Uploaded {
    /// False when the tenant already had these exact bytes (nothing changed).
    pub new: bool,
    pub version: VersionView,
}

/// The outcome of an activation or rollback.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Activated {
    pub name: String,
    pub version: String,
    pub previous: String,
}

/// A shadow run and where its report is kept.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Shadowed {
    pub report_id: i64,
    pub report: ShadowReport,
}

/// What a shadow run compared: desired states (a rules plugin) or plans (a connector).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ShadowReport {
    /// Per destination, how many people would change and how.
    Rules(ImpactReport<String>),
    /// Per person and destination, the plans of both versions where they differ.
    Connector(tenure_pipeline::shadow::ConnectorShadowReport),
}

/// How long a live shadow listens, and how much its report lists.
#[derive(Debug, Clone, Copy)]
pub struct LivePeriod {
    pub seconds: u64,
    pub limits: ImpactLimits,
}

/// A live shadow that started, and when it ends.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LiveStarted {
    pub until_ms: i64,
    /// Its report, listed as `running` until the period ends (then `done`, under the same id), or
    /// `interrupted` when the host stopped first.
    pub report: i64,
}

/// Where a shadow report stands (its summary's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowStatus {
    /// A live shadow whose period has not ended.
    Running,
    Done,
    /// A live shadow whose host stopped before its period ended: what it compared was lost.
    Interrupted,
}

impl ShadowReport {
    fn kind(&self) -> &'static str {
        match self {
            ShadowReport::Rules(_) => "rules",
            ShadowReport::Connector(_) => "connector",
        }
    }

    /// The active version compared against.
    fn against(&self) -> Option<&str> {
        match self {
            ShadowReport::Rules(r) => r.against.as_deref(),
            ShadowReport::Connector(r) => Some(&r.against),
        }
    }

    fn people(&self) -> usize {
        match self {
            ShadowReport::Rules(r) => r.people,
            ShadowReport::Connector(r) => r.people,
        }
    }

    /// People the candidate (or the rules) could not handle.
    fn errors(&self) -> usize {
        match self {
            ShadowReport::Rules(r) => r.errors.len() + r.errors_not_listed,
            ShadowReport::Connector(r) => r.candidate_errors + r.rule_errors,
        }
    }

    fn truncated(&self) -> bool {
        match self {
            ShadowReport::Rules(r) => r.truncated,
            ShadowReport::Connector(r) => r.truncated,
        }
    }

    /// The summary's counts: per destination and kind of change, or plans compared.
    fn counts(&self) -> serde_json::Value {
        match self {
            ShadowReport::Rules(r) => {
                let counts: BTreeMap<&String, &BTreeMap<String, usize>> =
                    r.destinations.iter().map(|(d, i)| (d, &i.counts)).collect();
                serde_json::json!(counts)
            }
            ShadowReport::Connector(r) => serde_json::json!({ "compared": r.compared, "same": r.same,
                "different": r.different, "by_destination": r.by_destination }),
        }
    }
}

/// The registry. Cheap to clone.
#[derive(Clone)]
pub struct PluginRegistry {
    store: Arc<dyn Store>,
    runtime: Runtime,
    trust: Arc<BTreeMap<String, TrustPolicy>>,
    /// Activations run one at a time, so the runtime ends as the store's log says.
    switching: Arc<tokio::sync::Mutex<()>>,
    /// Rules shadows running on live events.
    live: Arc<live::LiveShadows>,
    /// The report of the live shadow each tenant runs in this process.
    live_reports: Arc<Mutex<HashMap<String, i64>>>,
    /// Compiling a component takes a core for up to seconds: one at a time, off the runtime's
    /// threads, so a burst of uploads never stalls jobs or the API.
    compiling: Arc<tokio::sync::Semaphore>,
    /// Tenants with an upload being compiled (one each at a time).
    uploading: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// A tenant's claim on its one upload at a time; released when dropped.
struct UploadClaim {
    tenant: String,
    uploading: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        self.uploading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.tenant);
    }
}

/// Whether `tenant` may see and run a kept version: its own, or one offered to everyone.
fn visible_to(v: &StoredPluginVersion, tenant: &str) -> bool {
    v.owner.as_deref().is_none_or(|o| o == tenant)
}

fn stored_kind(kind: PluginKind) -> StoredPluginKind {
    match kind {
        PluginKind::Rules => StoredPluginKind::Rules,
        PluginKind::Connector => StoredPluginKind::Connector,
        PluginKind::Source => StoredPluginKind::Source,
    }
}

impl PluginRegistry {
    /// A registry over `store` and `runtime`, with each tenant's trust policy.
    pub fn new(store: Arc<dyn Store>, runtime: Runtime, trust: BTreeMap<String, TrustPolicy>) -> Self {
        PluginRegistry {
            store,
            runtime,
            trust: Arc::new(trust),
            switching: Arc::default(),
            live: Arc::default(),
            live_reports: Arc::default(),
            compiling: Arc::new(tokio::sync::Semaphore::new(1)),
            uploading: Arc::default(),
        }
    }

    /// Registers `x.wasm` (manifest `x.toml` beside it) from the plugins directory as the version
    /// every tenant runs unless it activated another, and keeps it in the registry (offered to
    /// every tenant; the operator put it there, so no signature is asked for).
    pub async fn seed_file(&self, wasm: &Path) -> Result<Arc<PluginVersion>, RegistryError> {
        let manifest_path = wasm.with_extension("toml");
        let manifest_text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            invalid(
                "manifest",
                format!("cannot read {}: {e}", manifest_path.display()),
            )
        })?;
        let manifest = PluginManifest::parse(&manifest_path.display().to_string(), &manifest_text)
            .map_err(|e| invalid("manifest", e.to_string()))?;
        let bytes = std::fs::read(wasm)
            .map_err(|e| invalid("component", format!("cannot read {}: {e}", wasm.display())))?;
        let version = self
            .runtime
            .register(manifest, &bytes)
            .map_err(|e| RegistryError::Runtime(e.to_string()))?;
        self.keep(&version, None, None, SEEDED_BY, &manifest_text, &bytes)
            .await?;
        Ok(version)
    }

    /// Brings back, at start, each tenant's latest activation, compiling only the versions tenants
    /// run (any other kept version is compiled when it is activated or shadowed). A version that no
    /// longer loads is logged and its tenants run the default. Run again, it switches to what
    /// another host of the deployment activated since (the versions already running are kept).
    pub async fn restore(&self) -> Result<(), RegistryError> {
        let mut latest: HashMap<(String, String), String> = HashMap::new();
        for a in self.store.plugin_activations().await? {
            latest.insert((a.tenant, a.name), a.label);
        }
        for ((tenant, name), label) in latest {
            if self
                .runtime
                .active(&tenant, &name)
                .is_ok_and(|a| a.label == label)
            {
                continue;
            }
            let loaded = match self.stored_version(&tenant, &name, &label).await {
                Ok(stored) if self.runtime.version(&name, &label).is_err() => {
                    self.load(&stored).await.map(|_| ())
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            }
            .and_then(|()| {
                self.runtime
                    .activate(&tenant, &name, &label)
                    .map(|_| ())
                    .map_err(|e| RegistryError::Runtime(e.to_string()))
            });
            if let Err(e) = loaded {
                tracing::error!(%tenant, plugin = %name, version = %label, error = %e,
                    "the tenant's activated plugin version does not load; it runs the default");
            }
        }
        Ok(())
    }

    /// Checks, compiles and keeps an upload for `tenant` (seen by it alone); it does not run
    /// until the tenant activates it.
    pub async fn upload(
        &self,
        tenant: &str,
        actor: &str,
        upload: Upload<'_>,
    ) -> Result<Uploaded, RegistryError> {
        if upload.component.is_empty() {
            return Err(invalid("component", "is empty"));
        }
        if upload.component.len() > MAX_COMPONENT_BYTES {
            return Err(invalid(
                "component",
                format!(
                    "is {} bytes; the most a plugin may have is {MAX_COMPONENT_BYTES}",
                    upload.component.len()
                ),
            ));
        }
        let manifest = PluginManifest::parse("manifest", upload.manifest)
            .map_err(|e| invalid("manifest", e.to_string()))?;
        let trust = self.trust.get(tenant).cloned().unwrap_or_default();
        let signer = trust
            .verify(
                &manifest.name,
                upload.component,
                upload.manifest,
                upload.signature,
            )
            .map_err(RegistryError::Untrusted)?;
        let name = manifest.name.clone();
        let _claim = self.claim_upload(tenant)?;
        let version = self
            .compile(manifest, upload.component.to_vec(), Some(tenant.to_string()))
            .await?
            .map_err(|e| match e {
                RuntimeError::InvalidPlugin { reason, .. } => invalid("component", reason),
                other => invalid("component", other.to_string()),
            })?;
        let new = self
            .keep(
                &version,
                Some(tenant),
                signer.as_deref(),
                actor,
                upload.manifest,
                upload.component,
            )
            .await?;
        let view = self
            .visible(tenant, &name)
            .await?
            .into_iter()
            .find(|v| v.sha256 == version.sha256 && v.offered_to == "tenant")
            .ok_or_else(|| RegistryError::NotFound(format!("plugin {name} version {}", version.label)))?;
        Ok(Uploaded { new, version: view })
    }

    /// Makes `label` the version of `name` that `tenant` runs from now on.
    pub async fn activate(
        &self,
        tenant: &str,
        actor: &str,
        name: &str,
        label: &str,
    ) -> Result<Activated, RegistryError> {
        self.switch(tenant, actor, name, label, false).await
    }

    /// Goes back to `label`, or (without one) to the version the tenant ran before the current one.
    pub async fn rollback(
        &self,
        tenant: &str,
        actor: &str,
        name: &str,
        label: Option<&str>,
    ) -> Result<Activated, RegistryError> {
        let target = match label {
            Some(l) => l.to_string(),
            None => self.previous(tenant, name).await?,
        };
        self.switch(tenant, actor, name, &target, true).await
    }

    /// Every plugin the tenant may run, with its versions (oldest first) and the one it runs.
    pub async fn list(&self, tenant: &str) -> Result<Vec<PluginView>, RegistryError> {
        let versions = self.visible_all(tenant).await?;
        let mut plugins: BTreeMap<String, PluginView> = BTreeMap::new();
        for v in versions {
            plugins
                .entry(v.name.clone())
                .or_insert_with(|| PluginView {
                    name: v.name.clone(),
                    kind: v.kind,
                    active: self.runtime.active(tenant, &v.name).ok().map(|a| a.label.clone()),
                    grants: self.runtime.grants(tenant, &v.name).ok(),
                    versions: Vec::new(),
                })
                .versions
                .push(v);
        }
        Ok(plugins.into_values().collect())
    }

    async fn switch(
        &self,
        tenant: &str,
        actor: &str,
        name: &str,
        label: &str,
        rollback: bool,
    ) -> Result<Activated, RegistryError> {
        let _one_at_a_time = self.switching.lock().await;
        let stored = self.stored_version(tenant, name, label).await?;
        if !rollback {
            self.check_policy(tenant, actor, &stored).await?;
        }
        if self.runtime.version(name, label).is_err() {
            self.load(&stored).await?;
        }
        let previous = self
            .runtime
            .active(tenant, name)
            .map_err(|e| RegistryError::Runtime(e.to_string()))?
            .label
            .clone();
        let audit = if rollback {
            ev::PluginRolledBack {
                plugin: name,
                version: label,
                previous: &previous,
            }
            .record(tenant, actor)
        } else {
            ev::PluginActivated {
                plugin: name,
                version: label,
                previous: &previous,
            }
            .record(tenant, actor)
        };
        self.store
            .activate_plugin(NewActivation {
                tenant: tenant.to_string(),
                name: name.to_string(),
                label: label.to_string(),
                activated_by: actor.to_string(),
                reason: rollback.then(|| "rollback".to_string()),
                audit: vec![audit],
            })
            .await?;
        self.runtime
            .activate(tenant, name, label)
            .map_err(|e| RegistryError::Runtime(e.to_string()))?;
        Ok(Activated {
            name: name.to_string(),
            version: label.to_string(),
            previous,
        })
    }

    /// Runs version `label` of a plugin beside the active one on every person (or the first
    /// `limits.people`) and keeps the report: for the tenant's rules plugin, per destination,
    /// how many people would change and how; for a connector, plan against plan, in plan-only
    /// mode (describe and lookups against the live destination, nothing applied). Writes
    /// nothing else.
    pub async fn shadow(
        &self,
        rule_sets: &RuleSets,
        tenant: &str,
        actor: &str,
        name: &str,
        label: &str,
        limits: ImpactLimits,
    ) -> Result<Shadowed, RegistryError> {
        let stored = self.stored_version(tenant, name, label).await?;
        let is_rules = rule_sets.rules_plugin(tenant) == Some(name);
        if !is_rules && stored.kind != StoredPluginKind::Connector {
            return Err(invalid(
                "plugin",
                format!(
                    "a shadow run compares desired states (the tenant's rules plugin, {}) or plans (a \
                     connector); {name} is a {} plugin",
                    rule_sets.rules_plugin(tenant).unwrap_or("none"),
                    stored.kind
                ),
            ));
        }
        if self.runtime.version(name, label).is_err() {
            self.load(&stored).await?;
        }
        let failed = |e: RuleSetError| match e {
            RuleSetError::Throttled(t) => RegistryError::Throttled {
                field: "shadow",
                reason: t.reason,
                retry_after_secs: t.retry_after_secs,
            },
            RuleSetError::Store(s) => RegistryError::Store(s),
            other => RegistryError::Runtime(other.to_string()),
        };
        let report = if is_rules {
            ShadowReport::Rules(
                rule_sets
                    .plugin_impact(tenant, label, limits)
                    .await
                    .map_err(failed)?,
            )
        } else {
            let compared = rule_sets.connector_impact(tenant, name, label, limits).await;
            ShadowReport::Connector(compared.map_err(failed)?)
        };
        let report_id = self
            .keep_report(tenant, actor, name, label, &report, serde_json::json!({}), None)
            .await?;
        Ok(Shadowed { report_id, report })
    }

    /// Starts a shadow of version `label` of the tenant's rules plugin on live events: for
    /// `seconds`, each person whose job completes is compared under both versions, off the job's
    /// path; the report is kept (and audited) when the period ends. One per tenant at a time.
    pub async fn shadow_live(
        &self,
        rule_sets: &RuleSets,
        tenant: &str,
        actor: &str,
        name: &str,
        label: &str,
        period: LivePeriod,
    ) -> Result<LiveStarted, RegistryError> {
        let LivePeriod { seconds, limits } = period;
        if !(1..=live::MAX_LIVE_SECONDS).contains(&seconds) {
            return Err(invalid(
                "live_seconds",
                format!("between 1 and {} (a week)", live::MAX_LIVE_SECONDS),
            ));
        }
        let stored = self.stored_version(tenant, name, label).await?;
        if rule_sets.rules_plugin(tenant) != Some(name) {
            return Err(invalid(
                "plugin",
                format!(
                    "a live shadow compares desired states, so it runs the tenant's rules plugin ({}); a \
                     connector's shadow is plan-only over everyone",
                    rule_sets.rules_plugin(tenant).unwrap_or("none")
                ),
            ));
        }
        if self.runtime.version(name, label).is_err() {
            self.load(&stored).await?;
        }
        let Some(people) = self.live.start(tenant) else {
            return Err(RegistryError::Denied(format!(
                "a live shadow already runs for this tenant; wait for its report ({} {name})",
                "GET /api/v1/plugins/{name}/shadows"
            )));
        };
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
        let until_ms = tenure_pipeline::now_ms() + (seconds as i64) * 1000;
        // Listed as running from now on, so a host that stops before the end leaves a trace.
        let running = serde_json::json!({
            "plugin": name, "kind": "rules", "version": label, "by": actor,
            "status": ShadowStatus::Running, "live_seconds": seconds, "until_ms": until_ms,
        });
        let report = match self
            .store
            .put_report(
                tenant,
                ReportKind::PluginShadow,
                running,
                serde_json::Value::Null,
                tenure_pipeline::now_ms(),
                SHADOW_REPORTS_KEPT,
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.live.end(tenant);
                return Err(e.into());
            }
        };
        self.live_reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string(), report);
        let (this, rule_sets) = (self.clone(), rule_sets.clone());
        let (tenant, actor, name, label) = (
            tenant.to_string(),
            actor.to_string(),
            name.to_string(),
            label.to_string(),
        );
        tokio::spawn(async move {
            let compared = rule_sets
                .live_plugin_impact(&tenant, &label, people, until, limits)
                .await;
            let missed = this.live.end(&tenant);
            let kept = match compared {
                Ok(compared) => {
                    let extra = serde_json::json!({ "live_seconds": seconds, "missed": missed });
                    let compared = ShadowReport::Rules(compared);
                    this.keep_report(&tenant, &actor, &name, &label, &compared, extra, Some(report))
                        .await
                }
                Err(e) => Err(RegistryError::Runtime(e.to_string())),
            };
            {
                // Only its own entry: the next live shadow may have started since `end`.
                let mut running = this.live_reports.lock().unwrap_or_else(|p| p.into_inner());
                if running.get(&tenant) == Some(&report) {
                    running.remove(&tenant);
                }
            }
            if let Err(e) = kept {
                tracing::error!(tenant, plugin = name, version = label, error = %e, "live shadow failed");
            }
        });
        Ok(LiveStarted { until_ms, report })
    }

    /// The listener the pipeline tells of completed jobs (for live shadows).
    pub fn job_listener(&self) -> Arc<dyn tenure_pipeline::JobListener> {
        self.live.clone()
    }

    /// Stores a shadow report with its summary (and `extra` fields), in place of the running
    /// one `started` when given, and audits it; its id.
    #[allow(clippy::too_many_arguments)]
    async fn keep_report(
        &self,
        tenant: &str,
        actor: &str,
        name: &str,
        label: &str,
        report: &ShadowReport,
        extra: serde_json::Value,
        started: Option<i64>,
    ) -> Result<i64, RegistryError> {
        let (against, people, errors) = (report.against(), report.people(), report.errors());
        let mut summary = serde_json::json!({
            "plugin": name,
            "kind": report.kind(),
            "version": label,
            "against": against,
            "people": people,
            "truncated": report.truncated(),
            "errors": errors,
            "counts": report.counts(),
            "by": actor,
            "status": ShadowStatus::Done,
        });
        if let (Some(summary), serde_json::Value::Object(extra)) = (summary.as_object_mut(), extra) {
            summary.extend(extra);
        }
        let body = serde_json::to_value(report).map_err(|e| RegistryError::Runtime(e.to_string()))?;
        let updated = match started {
            Some(id) => self
                .store
                .update_report(tenant, id, summary.clone(), body.clone())
                .await?
                .then_some(id),
            None => None,
        };
        let report_id = match updated {
            Some(id) => id,
            // Never started, or pruned meanwhile by newer reports: kept as a new one.
            None => {
                self.store
                    .put_report(
                        tenant,
                        ReportKind::PluginShadow,
                        summary,
                        body,
                        tenure_pipeline::now_ms(),
                        SHADOW_REPORTS_KEPT,
                    )
                    .await?
            }
        };
        let record = ev::PluginShadowed {
            plugin: name,
            version: label,
            against,
            report: report_id,
            people,
            errors,
        }
        .record(tenant, actor);
        self.store.append_audit(vec![record]).await?;
        Ok(report_id)
    }

    /// One of the tenant's shadow reports of `name`, with its body.
    pub async fn shadow_report(&self, tenant: &str, name: &str, id: i64) -> Result<ReportRow, RegistryError> {
        let mut row = self
            .store
            .report(tenant, id)
            .await?
            .filter(|r| r.kind == ReportKind::PluginShadow && r.summary["plugin"] == name)
            .ok_or_else(|| RegistryError::NotFound(format!("shadow report {id} of {name}")))?;
        self.settle_interrupted(tenant, &mut row).await?;
        Ok(row)
    }

    /// The tenant's shadow reports of `name`, newest first, without their bodies.
    pub async fn shadows(&self, tenant: &str, name: &str) -> Result<Vec<ReportRow>, RegistryError> {
        let mut rows: Vec<ReportRow> = self
            .store
            .reports(tenant, ReportKind::PluginShadow, SHADOW_REPORTS_KEPT)
            .await?
            .into_iter()
            .filter(|r| r.summary["plugin"] == name)
            .collect();
        for row in &mut rows {
            self.settle_interrupted(tenant, row).await?;
        }
        Ok(rows)
    }

    /// A report listed as running that no live shadow of this process runs belongs to a host
    /// that stopped before the period ended (one store serves one host): it is marked
    /// interrupted, in the store and in `row`.
    async fn settle_interrupted(&self, tenant: &str, row: &mut ReportRow) -> Result<(), RegistryError> {
        let status = serde_json::from_value::<ShadowStatus>(row.summary["status"].clone()).ok();
        if status != Some(ShadowStatus::Running) {
            return Ok(());
        }
        let ours = self
            .live_reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            == Some(&row.id);
        if ours {
            return Ok(());
        }
        if let Some(summary) = row.summary.as_object_mut() {
            summary.insert("status".into(), serde_json::json!(ShadowStatus::Interrupted));
            summary.insert(
                "reason".into(),
                "the host stopped before the period ended; what it compared was not kept: start \
                 another live shadow"
                    .into(),
            );
        }
        // A running report has no body yet.
        self.store
            .update_report(tenant, row.id, row.summary.clone(), serde_json::Value::Null)
            .await?;
        Ok(())
    }

    /// A version `tenant` may run: its own or one offered to everyone.
    async fn stored_version(
        &self,
        tenant: &str,
        name: &str,
        label: &str,
    ) -> Result<StoredPluginVersion, RegistryError> {
        self.store
            .plugin_versions()
            .await?
            .into_iter()
            .find(|v| v.name == name && v.label == label && v.owner.as_deref().is_none_or(|o| o == tenant))
            .ok_or_else(|| RegistryError::NotFound(format!("plugin {name} version {label}")))
    }

    /// The tenant's conditions on an activation: four eyes, a shadow run first.
    async fn check_policy(
        &self,
        tenant: &str,
        actor: &str,
        stored: &StoredPluginVersion,
    ) -> Result<(), RegistryError> {
        let policy = self.trust.get(tenant).cloned().unwrap_or_default();
        if policy.four_eyes && stored.owner.is_some() && stored.uploaded_by == actor {
            return Err(RegistryError::Denied(format!(
                "four eyes: {actor} uploaded {} {}; another administrator activates it",
                stored.name, stored.label
            )));
        }
        if policy.require_shadow
            && matches!(stored.kind, StoredPluginKind::Rules | StoredPluginKind::Connector)
        {
            let shadowed = self
                .shadows(tenant, &stored.name)
                .await?
                .iter()
                .any(|r| r.summary["version"] == stored.label.as_str());
            if !shadowed {
                return Err(RegistryError::Denied(format!(
                    "the tenant requires a shadow run before activation: POST /api/v1/plugins/{}/shadow \
                     with version {} first",
                    stored.name, stored.label
                )));
            }
        }
        Ok(())
    }

    /// The version the tenant ran before its current one: its activation before the latest with
    /// another version, or else the default every tenant runs.
    async fn previous(&self, tenant: &str, name: &str) -> Result<String, RegistryError> {
        let current = self
            .runtime
            .active(tenant, name)
            .map_err(|_| RegistryError::NotFound(format!("plugin {name}")))?
            .label
            .clone();
        let activations = self.store.plugin_activations().await?;
        let earlier = activations
            .iter()
            .rev()
            .filter(|a| a.tenant == tenant && a.name == name)
            .map(|a| &a.label)
            .find(|l| **l != current)
            .cloned();
        let default = self
            .runtime
            .current(name)
            .map(|v| v.label.clone())
            .ok()
            .filter(|l| *l != current);
        earlier.or(default).ok_or_else(|| {
            RegistryError::NotFound(format!("an earlier version of plugin {name} to roll back to"))
        })
    }

    /// Compiles a kept version into the runtime.
    async fn load(&self, stored: &StoredPluginVersion) -> Result<Arc<PluginVersion>, RegistryError> {
        let manifest = PluginManifest::parse("manifest", &stored.manifest)
            .map_err(|e| RegistryError::Runtime(e.to_string()))?;
        let bytes = self
            .store
            .plugin_component(&stored.name, &stored.sha256)
            .await?
            .ok_or_else(|| {
                RegistryError::NotFound(format!("the component of {} {}", stored.name, stored.label))
            })?;
        self.compile(manifest, bytes, stored.owner.clone())
            .await?
            .map_err(|e| RegistryError::Runtime(e.to_string()))
    }

    /// Claims the tenant's one upload at a time: a second while the first compiles is throttled.
    fn claim_upload(&self, tenant: &str) -> Result<UploadClaim, RegistryError> {
        let mut uploading = self.uploading.lock().unwrap_or_else(|p| p.into_inner());
        if !uploading.insert(tenant.to_string()) {
            return Err(RegistryError::Throttled {
                field: "component",
                reason: "an upload of this tenant is still being compiled; send the next when it is \
                         answered"
                    .into(),
                retry_after_secs: 1,
            });
        }
        Ok(UploadClaim {
            tenant: tenant.to_string(),
            uploading: self.uploading.clone(),
        })
    }

    /// Compiles and registers a version (private to `owner` when given) on a blocking thread,
    /// one compilation at a time.
    async fn compile(
        &self,
        manifest: PluginManifest,
        bytes: Vec<u8>,
        owner: Option<String>,
    ) -> Result<Result<Arc<PluginVersion>, RuntimeError>, RegistryError> {
        let _turn = self
            .compiling
            .acquire()
            .await
            .map_err(|_| RegistryError::Runtime("the registry is shutting down".into()))?;
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || match owner {
            Some(owner) => runtime.add_private_version(manifest, &bytes, &owner),
            None => runtime.add_version(manifest, &bytes),
        })
        .await
        .map_err(|e| RegistryError::Runtime(format!("compiling the component failed: {e}")))
    }

    /// Keeps a version in the store (audited when new).
    async fn keep(
        &self,
        version: &PluginVersion,
        owner: Option<&str>,
        signer: Option<&str>,
        actor: &str,
        manifest: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        let record = ev::PluginUploaded {
            plugin: &version.manifest.name,
            version: &version.label,
            sha256: &version.sha256,
            kind: version.kind.as_str(),
            wit: &version.wit.to_string(),
            owner,
            signer,
            size_bytes: bytes.len(),
        }
        .record(owner.unwrap_or("*"), actor);
        Ok(self
            .store
            .put_plugin_version(NewPluginVersion {
                name: version.manifest.name.clone(),
                label: version.label.clone(),
                sha256: version.sha256.clone(),
                owner: owner.map(str::to_string),
                kind: stored_kind(version.kind),
                wit: version.wit.to_string(),
                manifest: manifest.to_string(),
                component: bytes.to_vec(),
                signer: signer.map(str::to_string),
                uploaded_by: actor.to_string(),
                audit: vec![record],
            })
            .await?)
    }

    async fn visible_all(&self, tenant: &str) -> Result<Vec<VersionView>, RegistryError> {
        let stored = self.store.plugin_versions().await?;
        Ok(stored
            .into_iter()
            .filter(|v| visible_to(v, tenant))
            .map(|v| {
                let active = self
                    .runtime
                    .active(tenant, &v.name)
                    .is_ok_and(|a| a.label == v.label);
                VersionView {
                    offered_to: if v.owner.is_some() { "tenant" } else { "everyone" }.to_string(),
                    name: v.name,
                    version: v.label,
                    sha256: v.sha256,
                    kind: v.kind,
                    wit: v.wit,
                    signer: v.signer,
                    uploaded_by: v.uploaded_by,
                    uploaded_ms: v.uploaded_ms,
                    size_bytes: v.size_bytes,
                    active,
                }
            })
            .collect())
    }

    async fn visible(&self, tenant: &str, name: &str) -> Result<Vec<VersionView>, RegistryError> {
        Ok(self
            .visible_all(tenant)
            .await?
            .into_iter()
            .filter(|v| v.name == name)
            .collect())
    }
}
