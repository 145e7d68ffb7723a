//! Versions of a tenant's rule set: drafts (checked and tested when saved),
//! publish (an atomic switch in the running host, no restart), rollback to any
//! earlier version, four-eyes publishing, and diffs.

use crate::impact::{self, ImpactLimits, ImpactReport};
use crate::{RuleSetError, TestReport, cases, check};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tenure_pipeline::audit_events::{self as ev, AuditEvent};
use tenure_pipeline::plan::TICKET_CHECK;
use tenure_pipeline::{Pipeline, PipelineConfig, now_ms};
use tenure_runtime::{PluginHandle, Runtime};
use tenure_store::{NewRuleSet, Publish, RuleSetHead, RuleSetVersion, Store};

/// Hold reason of jobs whose rules evaluation failed on the person's data or
/// the rule set; publishing a new version releases them.
pub const RULES_HOLD_PREFIX: &str = "rules:";

/// The rule-set lifecycle of every tenant that runs the pipeline.
#[derive(Clone)]
pub struct RuleSets {
    pipeline: Arc<Pipeline>,
    store: Arc<dyn Store>,
    runtime: Runtime,
    impacts: Arc<crate::throttle::ImpactThrottle>,
}

/// A saved draft and what its checks found.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Draft {
    pub version: RuleSetVersion,
    pub tests: TestReport,
}

/// A publish (or rollback).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Published {
    pub head: RuleSetHead,
    /// Whether an earlier version was brought back.
    pub rollback: bool,
    /// Jobs held on a rules error that were put back in the queue.
    pub released: u64,
}

/// A version's summary for listings (without the document).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VersionSummary {
    pub version: i64,
    pub author: String,
    pub message: String,
    pub created_ms: i64,
    pub tests_passed: bool,
    pub current: bool,
}

impl RuleSets {
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        RuleSets {
            store: pipeline.store().clone(),
            runtime: pipeline.runtime().clone(),
            pipeline,
            impacts: Arc::default(),
        }
    }

    fn config(&self) -> &PipelineConfig {
        self.pipeline.config()
    }

    fn plugin(&self, tenant: &str) -> Result<&str, RuleSetError> {
        self.config()
            .tenants
            .get(tenant)
            .map(|t| t.rules.as_str())
            .ok_or_else(|| RuleSetError::NotFound(format!("tenant {tenant} runs no rules plugin")))
    }

    /// The rules plugin the tenant runs, if it runs one.
    pub fn rules_plugin(&self, tenant: &str) -> Option<&str> {
        self.plugin(tenant).ok()
    }

    fn destinations(&self, tenant: &str) -> Vec<String> {
        self.config()
            .tenants
            .get(tenant)
            .map(|t| t.destinations.iter().map(|d| d.name.clone()).collect())
            .unwrap_or_default()
    }

    /// A handle that runs `document` for `tenant`, isolated from live traffic.
    pub fn draft_handle(&self, tenant: &str, document: &str) -> Result<PluginHandle, RuleSetError> {
        let plugin = self.plugin(tenant)?;
        self.runtime
            .plugin_with_rule_set(tenant, plugin, document)
            .map_err(|e| RuleSetError::Runtime(e.to_string()))
    }

    /// A handle for `document` once the plugin has accepted it (compiled and evaluated once).
    pub async fn checked_draft(&self, tenant: &str, document: &str) -> Result<PluginHandle, RuleSetError> {
        let handle = self.draft_handle(tenant, document)?;
        check(&handle, now_ms()).await?;
        Ok(handle)
    }

    /// Checks and tests a document without saving it.
    pub async fn test(&self, tenant: &str, document: &str) -> Result<TestReport, RuleSetError> {
        let handle = self.draft_handle(tenant, document)?;
        let now = now_ms();
        check(&handle, now).await?;
        cases::run(&handle, document, now).await
    }

    /// Startup: run the stored current version; with none, import the config
    /// file's rule set as version 1 and publish it as any version is published: only
    /// when its tests pass, and under four eyes never by itself (it waits, as a draft
    /// by `config`, for an administrator to publish it; until then no rule set runs and
    /// jobs are held).
    pub async fn bootstrap(
        &self,
        tenant: &str,
        config_document: Option<&str>,
    ) -> Result<Option<RuleSetHead>, RuleSetError> {
        let plugin = self.plugin(tenant)?.to_string();
        if let Some(head) = self.store.current_rule_set(tenant).await? {
            let version = self
                .store
                .rule_set(tenant, head.version)
                .await?
                .ok_or_else(|| RuleSetError::NotFound(format!("rule set version {}", head.version)))?;
            self.runtime
                .set_rule_set(tenant, &plugin, &version.document)
                .map_err(|e| RuleSetError::Runtime(e.to_string()))?;
            self.pipeline.rule_set_running(tenant, Some(head.version));
            // The store is the source of truth once a version is published: a
            // changed config file becomes a draft to review, never a silent switch.
            if let Some(document) = config_document {
                let known = self
                    .store
                    .rule_sets(tenant)
                    .await?
                    .iter()
                    .any(|v| v.document == document);
                if !known {
                    let draft = self
                        .draft(tenant, document, "config", "changed in the config file")
                        .await?;
                    tracing::warn!(
                        tenant,
                        draft = draft.version.version,
                        running = head.version,
                        "the config file's rule set differs from the published one; saved it as a draft to \
                            review and publish"
                    );
                }
            }
            return Ok(Some(head));
        }
        let Some(document) = config_document else {
            return Ok(None);
        };
        let mut tests = self.test(tenant, document).await.unwrap_or_else(|e| TestReport {
            cases: vec![crate::CaseResult {
                name: "load".into(),
                passed: false,
                failures: vec![e.to_string()],
            }],
        });
        // Outputs its destinations cannot apply hold it back like a failing test.
        if let Err(e) = self.check_outputs(tenant, document).await {
            tests.cases.push(crate::CaseResult {
                name: "outputs".into(),
                passed: false,
                failures: vec![e.to_string()],
            });
        }
        let version = self
            .store
            .put_rule_set(
                NewRuleSet {
                    tenant: tenant.to_string(),
                    document: document.to_string(),
                    author: "config".into(),
                    message: "imported from the config file".into(),
                    tests_passed: tests.failed() == 0,
                    tests: serde_json::to_value(&tests).unwrap_or_default(),
                },
                vec![
                    ev::RulesImported {
                        tests: json!(tests.summary()),
                    }
                    .record(tenant, "system"),
                ],
            )
            .await?;
        let four_eyes = self
            .config()
            .tenants
            .get(tenant)
            .is_some_and(|t| t.rule_sets.four_eyes);
        if tests.failed() > 0 || four_eyes {
            self.runtime
                .withhold_rule_set(tenant, &plugin)
                .map_err(|e| RuleSetError::Runtime(e.to_string()))?;
            tracing::error!(
                tenant,
                draft = version.version,
                tests_failed = tests.failed(),
                four_eyes,
                "the config file's rule set was saved as a draft but not published (its tests fail, or four \
                    eyes needs an administrator to publish it); jobs are held until a version is published"
            );
            return Ok(None);
        }
        let published = self
            .store
            .publish_rule_set(Publish {
                tenant: tenant.to_string(),
                version: version.version,
                actor: "config".into(),
                audit: vec![
                    ev::RulesPublished {
                        rollback: false,
                        version: version.version,
                        previous: None,
                        author: None,
                        message: None,
                    }
                    .record(tenant, "system"),
                ],
                release_held: None,
            })
            .await?;
        self.pipeline
            .rule_set_running(tenant, Some(published.head.version));
        Ok(Some(published.head))
    }

    /// Saves a draft: the plugin must accept it (else the error names the field);
    /// its tests run and their results are kept with it.
    pub async fn draft(
        &self,
        tenant: &str,
        document: &str,
        author: &str,
        message: &str,
    ) -> Result<Draft, RuleSetError> {
        if message.trim().is_empty() {
            return Err(RuleSetError::Invalid {
                field: "message".into(),
                reason: "say what changed and why (the change log)".into(),
            });
        }
        let tests = self.test(tenant, document).await?;
        let version = self
            .store
            .put_rule_set(
                NewRuleSet {
                    tenant: tenant.to_string(),
                    document: document.to_string(),
                    author: author.to_string(),
                    message: message.to_string(),
                    tests_passed: tests.failed() == 0,
                    tests: serde_json::to_value(&tests).unwrap_or_default(),
                },
                vec![
                    ev::RulesDrafted {
                        message,
                        tests: json!(tests.summary()),
                    }
                    .record(tenant, author),
                ],
            )
            .await?;
        Ok(Draft { version, tests })
    }

    pub async fn versions(&self, tenant: &str) -> Result<Vec<VersionSummary>, RuleSetError> {
        let current = self.store.current_rule_set(tenant).await?.map(|h| h.version);
        Ok(self
            .store
            .rule_sets(tenant)
            .await?
            .into_iter()
            .map(|v| VersionSummary {
                current: Some(v.version) == current,
                version: v.version,
                author: v.author,
                message: v.message,
                created_ms: v.created_ms,
                tests_passed: v.tests_passed,
            })
            .collect())
    }

    pub async fn version(&self, tenant: &str, version: i64) -> Result<RuleSetVersion, RuleSetError> {
        self.store
            .rule_set(tenant, version)
            .await?
            .ok_or_else(|| RuleSetError::NotFound(format!("rule set version {version}")))
    }

    pub async fn current(&self, tenant: &str) -> Result<Option<RuleSetHead>, RuleSetError> {
        Ok(self.store.current_rule_set(tenant).await?)
    }

    /// Publishes `version` (or brings an earlier one back): refuses a version whose
    /// tests failed, and under four eyes a publisher who wrote it. The running host
    /// switches at once; jobs held on a rules error go back in the queue.
    pub async fn publish(&self, tenant: &str, version: i64, actor: &str) -> Result<Published, RuleSetError> {
        let plugin = self.plugin(tenant)?.to_string();
        let four_eyes = self
            .config()
            .tenants
            .get(tenant)
            .is_some_and(|t| t.rule_sets.four_eyes);
        let v = self.version(tenant, version).await?;
        if !v.tests_passed {
            return Err(RuleSetError::Denied(format!(
                "version {version} failed its tests; fix them and save a new draft"
            )));
        }
        if four_eyes && v.author == actor {
            return Err(RuleSetError::Denied(format!(
                "four eyes: {actor} wrote version {version}; someone else must publish it"
            )));
        }
        // Every output must reach its destination (refused here, not dropped at apply time).
        self.check_outputs(tenant, &v.document).await?;
        // The plugin must still accept it (a plugin upgrade may have changed that).
        check(&self.draft_handle(tenant, &v.document)?, now_ms()).await?;
        let previous = self.store.current_rule_set(tenant).await?;
        let rollback = previous.as_ref().is_some_and(|p| p.version > version);
        // The running host switches first, so a job released below never runs the old
        // version; if the store cannot record the publish, the switch is undone.
        self.runtime
            .set_rule_set(tenant, &plugin, &v.document)
            .map_err(|e| RuleSetError::Runtime(e.to_string()))?;
        let publish = Publish {
            tenant: tenant.to_string(),
            version,
            actor: actor.to_string(),
            audit: vec![
                ev::RulesPublished {
                    rollback,
                    version,
                    previous: previous.as_ref().map(|p| p.version),
                    author: Some(&v.author),
                    message: Some(&v.message),
                }
                .record(tenant, actor),
            ],
            release_held: Some(RULES_HOLD_PREFIX.to_string()),
        };
        let stored = match self.store.publish_rule_set(publish).await {
            Ok(p) => p,
            Err(e) => {
                self.restore_running(tenant, &plugin, previous.as_ref()).await;
                return Err(e.into());
            }
        };
        let (head, released) = (stored.head, stored.released);
        self.pipeline.rule_set_running(tenant, Some(head.version));
        if released > 0 {
            self.pipeline.wake();
        }
        tracing::info!(tenant, version, actor, rollback, released, "rule set published");
        Ok(Published {
            head,
            rollback,
            released,
        })
    }

    /// Refuses a document that gives a destination an output its connector cannot apply.
    async fn check_outputs(&self, tenant: &str, document: &str) -> Result<(), RuleSetError> {
        let Some(uses) = crate::outputs::uses(document) else {
            return Ok(());
        };
        let mut refused = Vec::new();
        for (destination, outputs) in uses.outputs.iter().filter(|(_, o)| !o.is_empty()) {
            let Some((connector, caps)) = self
                .pipeline
                .destination_caps(tenant, destination)
                .await
                .map_err(RuleSetError::Runtime)?
            else {
                continue;
            };
            refused.extend(crate::outputs::refusals(
                destination,
                &connector,
                outputs,
                &caps.described.operations,
                &caps.keeps,
            ));
        }
        refused.extend(self.check_tickets(tenant, uses.tickets).await?);
        if refused.is_empty() {
            return Ok(());
        }
        Err(RuleSetError::Denied(format!(
            "the rule set gives outputs its destinations cannot apply: {}",
            refused.join("; ")
        )))
    }

    /// Has each desk that checks ticket templates (its connector lists `tenure-ticket-check`)
    /// check the rule set's templates for it: the ones it refuses, named. A desk that cannot
    /// be reached now is not asked (its connector checks again when a ticket opens).
    async fn check_tickets(
        &self,
        tenant: &str,
        tickets: BTreeMap<String, Vec<crate::outputs::TicketUse>>,
    ) -> Result<Vec<String>, RuleSetError> {
        let mut refused = Vec::new();
        for (destination, uses) in tickets {
            let Some((connector, caps)) = self
                .pipeline
                .destination_caps(tenant, &destination)
                .await
                .map_err(RuleSetError::Runtime)?
            else {
                continue;
            };
            let checks = caps.described.matching_keys.iter().any(|k| k == TICKET_CHECK);
            if !checks {
                continue;
            }
            let desk = self
                .pipeline
                .runtime()
                .plugin(tenant, &connector)
                .map_err(|e| RuleSetError::Runtime(e.to_string()))?;
            for u in uses {
                let value = json!({ "template": u.template, "fields": u.fields }).to_string();
                let key = tenure_runtime::wit::MatchKey {
                    attribute: TICKET_CHECK.into(),
                    value,
                };
                match desk.lookup(&[key]).await {
                    Ok(_) => {}
                    Err(tenure_runtime::CallError::Plugin {
                        error: tenure_runtime::wit::PluginError::InvalidInput(i),
                        ..
                    }) => refused.push(format!(
                        "destination {destination:?} cannot open ticket {:?} ({}): {}: {}",
                        u.template, u.by, i.field, i.reason
                    )),
                    Err(e) => {
                        tracing::warn!(tenant, destination, error = %e,
                            "the desk could not check a ticket template")
                    }
                }
            }
        }
        Ok(refused)
    }

    /// Puts the previously published version back in the running host (after a
    /// publish the store could not record).
    async fn restore_running(&self, tenant: &str, plugin: &str, previous: Option<&RuleSetHead>) {
        let Some(previous) = previous else {
            return;
        };
        match self.store.rule_set(tenant, previous.version).await {
            Ok(Some(v)) => match self.runtime.set_rule_set(tenant, plugin, &v.document) {
                Ok(()) => self.pipeline.rule_set_running(tenant, Some(previous.version)),
                Err(e) => tracing::error!(tenant, error = %e, "cannot restore the published rule set"),
            },
            other => tracing::error!(tenant, ?other, "cannot read the published rule set to restore it"),
        }
    }

    /// A unified diff between two versions' documents.
    pub async fn diff(&self, tenant: &str, from: i64, to: i64) -> Result<String, RuleSetError> {
        let a = self.version(tenant, from).await?;
        let b = self.version(tenant, to).await?;
        Ok(similar::TextDiff::from_lines(&a.document, &b.document)
            .unified_diff()
            .context_radius(3)
            .header(&format!("version {from}"), &format!("version {to}"))
            .to_string())
    }

    /// What publishing `version` would change for every known person (or the first
    /// `limits.people`), against the current version; walks the people a page at a
    /// time and writes nothing.
    pub async fn impact(
        &self,
        tenant: &str,
        version: i64,
        limits: ImpactLimits,
    ) -> Result<ImpactReport, RuleSetError> {
        let plugin = self.plugin(tenant)?;
        let _running = self.impacts.start(tenant).map_err(RuleSetError::Throttled)?;
        let draft = self.version(tenant, version).await?;
        let current = self.store.current_rule_set(tenant).await?;
        let live = self
            .runtime
            .plugin(tenant, plugin)
            .map_err(|e| RuleSetError::Runtime(e.to_string()))?
            .in_draft_lane();
        let candidate = self.draft_handle(tenant, &draft.document)?;
        let labels = impact::Labels {
            version,
            against: current.map(|c| c.version),
        };
        let report = ImpactReport::new(labels, &self.destinations(tenant), limits);
        self.walk(tenant, (&live, &candidate), report, limits).await
    }

    /// What running version `label` of the tenant's rules plugin would change for every known
    /// person (or the first `limits.people`), against the version it runs now, under the
    /// published rule set: a plugin's shadow run. Writes nothing.
    pub async fn plugin_impact(
        &self,
        tenant: &str,
        label: &str,
        limits: ImpactLimits,
    ) -> Result<ImpactReport<String>, RuleSetError> {
        let plugin = self.plugin(tenant)?;
        let _running = self.impacts.start(tenant).map_err(RuleSetError::Throttled)?;
        let runtime_error = |e: tenure_runtime::RuntimeError| RuleSetError::Runtime(e.to_string());
        let live = self
            .runtime
            .plugin(tenant, plugin)
            .map_err(runtime_error)?
            .in_draft_lane();
        let candidate = self
            .runtime
            .candidate(tenant, plugin, label)
            .map_err(runtime_error)?;
        let labels = impact::Labels {
            version: label.to_string(),
            against: Some(live.version().to_string()),
        };
        let report = ImpactReport::new(labels, &self.destinations(tenant), limits);
        self.walk(tenant, (&live, &candidate), report, limits).await
    }

    /// A rules plugin's shadow on live events: until `until`, each person whose job completed
    /// (sent on `people`) is compared under version `label` and the version the tenant runs, as
    /// [`plugin_impact`](Self::plugin_impact) compares everyone. `people` counts comparisons (a
    /// person with two events counts twice). Writes nothing.
    pub async fn live_plugin_impact(
        &self,
        tenant: &str,
        label: &str,
        mut people: tokio::sync::mpsc::Receiver<String>,
        until: tokio::time::Instant,
        limits: ImpactLimits,
    ) -> Result<ImpactReport<String>, RuleSetError> {
        let plugin = self.plugin(tenant)?;
        let runtime_error = |e: tenure_runtime::RuntimeError| RuleSetError::Runtime(e.to_string());
        let candidate = self
            .runtime
            .candidate(tenant, plugin, label)
            .map_err(runtime_error)?;
        let mut report = ImpactReport::new(
            impact::Labels {
                version: label.to_string(),
                against: None,
            },
            &self.destinations(tenant),
            limits,
        );
        loop {
            let person_key = match tokio::time::timeout_at(until, people.recv()).await {
                Ok(Some(person_key)) => person_key,
                Ok(None) | Err(_) => return Ok(report),
            };
            if limits.people.is_some_and(|max| report.people >= max) {
                report.truncated = true;
                return Ok(report);
            }
            // The version the tenant runs now (it may have changed since the run began).
            let live = self
                .runtime
                .plugin(tenant, plugin)
                .map_err(runtime_error)?
                .in_draft_lane();
            report.against = Some(live.version().to_string());
            report
                .add(&self.pipeline, tenant, (&live, &candidate), &person_key)
                .await;
        }
    }

    /// What version `label` of connector `plugin` would plan, against the version the tenant
    /// runs, for every known person (or the first `limits.people`) under the tenant's active
    /// rules: a connector's plan-only shadow run. Describes and looks up only; writes nothing.
    pub async fn connector_impact(
        &self,
        tenant: &str,
        plugin: &str,
        label: &str,
        limits: ImpactLimits,
    ) -> Result<tenure_pipeline::shadow::ConnectorShadowReport, RuleSetError> {
        let _running = self.impacts.start(tenant).map_err(RuleSetError::Throttled)?;
        let candidate = self
            .runtime
            .candidate(tenant, plugin, label)
            .map_err(|e| RuleSetError::Runtime(e.to_string()))?;
        let limits = tenure_pipeline::shadow::ShadowLimits {
            people: limits.people,
            detail: limits.detail,
        };
        self.pipeline
            .connector_shadow(tenant, &candidate, limits)
            .await
            .map_err(|e| RuleSetError::Runtime(e.to_string()))
    }

    /// Adds everyone (a page at a time, up to `limits.people`) to `report`.
    async fn walk<L: std::fmt::Display>(
        &self,
        tenant: &str,
        handles: (&PluginHandle, &PluginHandle),
        mut report: ImpactReport<L>,
        limits: ImpactLimits,
    ) -> Result<ImpactReport<L>, RuleSetError> {
        let mut left = limits.people.unwrap_or(usize::MAX);
        let mut after: Option<String> = None;
        loop {
            let want = IMPACT_PAGE.min(left.saturating_add(1));
            let page = self.store.person_keys(tenant, after.as_deref(), want).await?;
            for person_key in &page {
                if left == 0 {
                    report.truncated = true;
                    return Ok(report);
                }
                left -= 1;
                report.add(&self.pipeline, tenant, handles, person_key).await;
            }
            if page.len() < want {
                return Ok(report);
            }
            after = page.last().cloned();
        }
    }
}

/// People read per page by an impact preview.
const IMPACT_PAGE: usize = 500;
