//! Operators' commands and the reads behind the API: each command is one call
//! that checks, writes and audits in one store write, then wakes the workers
//! that have something new to do. The API server calls these, never the store.

use crate::audit_events::{self as ev, AuditEvent};
use crate::{InvalidEvent, Pipeline, PipelineError};
use tenure_store::{
    AuditEntry, AuditFilter, ConflictDecision, ConflictRow, DeliveryFilter, DeliveryRow, EventRow, Guard,
    JobDetail, JobFilter, JobRow, Kpis, ReportKind, ReportRow, StoreError,
};

/// Entries an audit export reads at a time.
pub const AUDIT_PAGE: usize = 1_000;

/// Who runs a command: their tenant and their name (the audit's actor).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
}

/// What a tenant's auditor learns from verifying the audit chain.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct TenantVerifyReport {
    pub ok: bool,
    pub tenant: String,
    pub problem: Option<TenantProblem>,
    /// The chain's head is not recorded outside the database.
    pub head_file_missing: bool,
}

/// Why the chain does not verify; `seq` only when the entry is the tenant's own.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct TenantProblem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub reason: String,
}

fn not_found(what: String) -> PipelineError {
    StoreError::NotFound(what).into()
}

impl Pipeline {
    /// Makes a dead, held or cancelled job run again (audited).
    pub async fn replay_job(&self, actor: Actor<'_>, id: i64) -> Result<JobRow, PipelineError> {
        let job = self.store.replay(actor.tenant, id, actor.name).await?;
        self.wake();
        Ok(job)
    }

    /// Cancels a job that has not completed (audited).
    pub async fn cancel_job(&self, actor: Actor<'_>, id: i64) -> Result<JobRow, PipelineError> {
        let job = self.store.cancel(actor.tenant, id, actor.name).await?;
        self.wake();
        Ok(job)
    }

    /// Decides a matching conflict; its job runs again (audited).
    pub async fn resolve_conflict(
        &self,
        actor: Actor<'_>,
        id: i64,
        decision: ConflictDecision,
    ) -> Result<ConflictRow, PipelineError> {
        let row = self
            .store
            .resolve_conflict(actor.tenant, id, decision, actor.name)
            .await?;
        self.wake();
        Ok(row)
    }

    /// Approves a destination's tripped mass-change guard; its held jobs run (audited).
    pub async fn approve_guard(&self, actor: Actor<'_>, destination: &str) -> Result<i64, PipelineError> {
        let tenant = self.tenant(actor.tenant)?;
        if !tenant.destinations.iter().any(|d| d.name == destination) {
            return Err(InvalidEvent {
                field: "destination".into(),
                reason: format!("no destination {destination:?}"),
            }
            .into());
        }
        let released = self
            .store
            .approve_guard(actor.tenant, destination, actor.name)
            .await?;
        self.wake();
        Ok(released)
    }

    /// Shows a vaulted initial password once: taken and audited in one write. None
    /// when there is none (already revealed, or the policy discards them).
    pub async fn reveal_initial_password(
        &self,
        actor: Actor<'_>,
        dn: &str,
    ) -> Result<Option<String>, PipelineError> {
        let name = crate::passwords::vault_name(actor.tenant, dn);
        let audit = ev::AdminInitialPasswordRevealed { dn }.record(actor.tenant, actor.name);
        Ok(self.store.take_secret(&name, vec![audit]).await?)
    }

    /// Makes a dead or rejected webhook delivery pending again (audited).
    pub async fn replay_delivery(&self, actor: Actor<'_>, id: i64) -> Result<DeliveryRow, PipelineError> {
        let row = self.store.replay_delivery(actor.tenant, id, actor.name).await?;
        self.deliveries_arrived();
        Ok(row)
    }

    /// Records that `actor` exports the tenant's audit entries (before the first is sent,
    /// so an export cut short is on record too).
    pub async fn note_audit_export(&self, actor: Actor<'_>, format: &str) -> Result<(), PipelineError> {
        let exported = ev::AdminAuditExported {
            format,
            entries: None,
        };
        self.store
            .append_audit(vec![exported.record(actor.tenant, actor.name)])
            .await?;
        Ok(())
    }

    /// The tenant's next page of audit entries after `after_seq` (an export reads page by
    /// page as it sends, never the whole log at once).
    pub async fn audit_page(
        &self,
        tenant: &str,
        filter: &AuditFilter,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PipelineError> {
        let filter = AuditFilter {
            tenant: Some(tenant.to_string()),
            after_seq: Some(after_seq.max(filter.after_seq.unwrap_or(0))),
            limit: Some(limit.clamp(1, AUDIT_PAGE)),
            ..filter.clone()
        };
        Ok(self.store.audit(filter).await?)
    }

    /// Records that an access review was exported.
    pub async fn note_access_review(
        &self,
        actor: Actor<'_>,
        destination: Option<&str>,
    ) -> Result<(), PipelineError> {
        let exported = ev::AdminAccessReviewExported { destination };
        Ok(self
            .store
            .append_audit(vec![exported.record(actor.tenant, actor.name)])
            .await?)
    }

    /// A stored event with its job.
    pub async fn event_with_job(
        &self,
        tenant: &str,
        id: i64,
    ) -> Result<(EventRow, Option<JobRow>), PipelineError> {
        let event = self
            .store
            .event(tenant, id)
            .await?
            .ok_or_else(|| not_found(format!("event {id}")))?;
        let jobs = self
            .store
            .jobs(JobFilter {
                tenant: tenant.to_string(),
                person_key: Some(event.person_key.clone()),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let job = jobs.into_iter().find(|j| j.event_id == id);
        Ok((event, job))
    }

    pub async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobRow>, PipelineError> {
        Ok(self.store.jobs(filter).await?)
    }

    pub async fn job(&self, tenant: &str, id: i64) -> Result<JobDetail, PipelineError> {
        self.store
            .job(tenant, id)
            .await?
            .ok_or_else(|| not_found(format!("job {id}")))
    }

    pub async fn conflicts(&self, tenant: &str, open_only: bool) -> Result<Vec<ConflictRow>, PipelineError> {
        Ok(self.store.conflicts(tenant, open_only).await?)
    }

    pub async fn guards(&self, tenant: &str) -> Result<Vec<Guard>, PipelineError> {
        Ok(self.store.guards(tenant).await?)
    }

    pub async fn kpis(&self, tenant: &str) -> Result<Kpis, PipelineError> {
        Ok(self.store.kpis(tenant).await?)
    }

    pub async fn verify_audit(&self) -> Result<tenure_store::audit::VerifyReport, PipelineError> {
        Ok(self.store.verify_audit().await?)
    }

    /// The chain verified for one tenant's auditor: whether it holds, and the broken entry
    /// only if it is the tenant's own. Nothing about the log's size, head or other tenants.
    pub async fn verify_audit_for(&self, tenant: &str) -> Result<TenantVerifyReport, PipelineError> {
        let report = self.store.verify_audit().await?;
        let problem = match report.problem {
            None => None,
            Some(p) => {
                let filter = tenure_store::AuditFilter {
                    after_seq: Some(p.seq - 1),
                    limit: Some(1),
                    ..Default::default()
                };
                let broken = self.store.audit(filter).await?;
                let own = broken
                    .first()
                    .is_some_and(|e| e.seq == p.seq && e.record.tenant == tenant);
                Some(if own {
                    TenantProblem {
                        seq: Some(p.seq),
                        reason: p.reason,
                    }
                } else {
                    TenantProblem {
                        seq: None,
                        reason: "an entry outside this tenant does not verify; the operator's `tenure audit \
                                 verify` names it"
                            .into(),
                    }
                })
            }
        };
        Ok(TenantVerifyReport {
            ok: problem.is_none() && !report.head_file_missing,
            tenant: tenant.to_string(),
            problem,
            head_file_missing: report.head_file_missing,
        })
    }

    pub async fn deliveries(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryRow>, PipelineError> {
        Ok(self.store.deliveries(filter).await?)
    }

    /// A tenant's notifications, newest first (their bodies are not shown).
    pub async fn notifications(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<tenure_store::NotificationRow>, PipelineError> {
        self.tenant(tenant)?;
        Ok(self.store.notifications(tenant, limit).await?)
    }

    /// A tenant's reconciliation reports, newest first, without their bodies.
    pub async fn reconciliations(&self, tenant: &str) -> Result<Vec<ReportRow>, PipelineError> {
        Ok(self.store.reports(tenant, ReportKind::Reconcile, 100).await?)
    }

    /// One reconciliation report.
    pub async fn reconciliation(
        &self,
        tenant: &str,
        id: i64,
    ) -> Result<crate::reconcile::ReconcileReport, PipelineError> {
        let row = self
            .store
            .report(tenant, id)
            .await?
            .filter(|r| r.kind == ReportKind::Reconcile)
            .ok_or_else(|| not_found(format!("reconciliation {id}")))?;
        serde_json::from_value(row.body).map_err(|e| {
            StoreError::Database(format!("stored reconciliation {id} cannot be read: {e}")).into()
        })
    }

    /// Whether the store answers (readiness).
    pub async fn store_ready(&self) -> Result<(), PipelineError> {
        Ok(self.store.ping().await?)
    }
}
