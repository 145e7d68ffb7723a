//! Following the other hosts of a deployment (several hosts on one PostgreSQL): their
//! changes wake this host's workers at once, and a rule-set version another host
//! published is loaded here before any job runs under it. Each claimed job carries the
//! version its tenant runs ([`tenure_store::ClaimedJob::rule_set`]), so a job never runs
//! an older one even when a change notice was lost; the notice only makes the switch
//! come before the next job. On one host (SQLite) every version is published here and
//! the feed stays silent.

use crate::Pipeline;
use std::sync::Arc;
use tenure_store::Change;
use tokio::sync::{broadcast, watch};

impl Pipeline {
    /// Records the rule-set version this host runs for `tenant` (None: none runs).
    pub fn rule_set_running(&self, tenant: &str, version: Option<i64>) {
        let mut running = self.rule_sets_running.lock().unwrap_or_else(|p| p.into_inner());
        match version {
            Some(v) => running.insert(tenant.to_string(), v),
            None => running.remove(tenant),
        };
    }

    /// The rule-set version this host runs for `tenant`.
    pub fn running_rule_set(&self, tenant: &str) -> Option<i64> {
        self.rule_sets_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .copied()
    }

    /// Loads the tenant's published rule-set version when this host runs another one (a
    /// publish or rollback on another host). Returns the version it runs now.
    pub async fn follow_rule_set(&self, tenant: &str) -> Option<i64> {
        let plugin = self.config.tenants.get(tenant)?.rules.clone();
        let _one_at_a_time = self.following.lock().await;
        let running = self.running_rule_set(tenant);
        let head = match self.store.current_rule_set(tenant).await {
            Ok(head) => head?,
            Err(e) => {
                tracing::error!(tenant, error = %e, "cannot read the published rule set");
                return running;
            }
        };
        if running == Some(head.version) {
            return running;
        }
        let document = match self.store.rule_set(tenant, head.version).await {
            Ok(Some(v)) => v.document,
            other => {
                tracing::error!(
                    tenant,
                    version = head.version,
                    ?other,
                    "cannot read the published rule set"
                );
                return running;
            }
        };
        if let Err(e) = self.runtime.set_rule_set(tenant, &plugin, &document) {
            tracing::error!(tenant, version = head.version, error = %e, "cannot load the published rule set");
            return running;
        }
        self.rule_set_running(tenant, Some(head.version));
        tracing::info!(tenant, version = head.version, published_by = %head.published_by,
            "rule set published on another host: running it here");
        Some(head.version)
    }

    /// Acts on the changes other hosts announce until `shutdown`: new jobs and deliveries
    /// wake the workers; a published rule set is loaded.
    pub(crate) async fn follow_changes(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.store.changes();
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                _ = shutdown.changed() => return,
            };
            match change {
                Ok(Change::Jobs) => self.wake.notify_one(),
                Ok(Change::Deliveries) => self.deliveries_arrived(),
                Ok(Change::RuleSet { tenant }) => {
                    self.follow_rule_set(&tenant).await;
                }
                Ok(Change::Plugins) => {}
                Ok(Change::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    let tenants: Vec<String> = self.config.tenants.keys().cloned().collect();
                    for tenant in tenants {
                        self.follow_rule_set(&tenant).await;
                    }
                    self.deliveries_arrived();
                    self.wake.notify_one();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
