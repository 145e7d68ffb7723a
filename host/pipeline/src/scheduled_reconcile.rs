//! Each tenant's scheduled reconciliation (`lifecycle.reconcile_every`): planned at start-up,
//! run by the one host that takes it as due, and ended as interrupted only once that host is
//! gone.
//!
//! The host running a reconciliation holds a lease on it (`reconcile:<action id>`), renewed
//! while it runs. A reconciliation left queued with no live holder (its host stopped or lost
//! the database mid-run) is ended as interrupted by whichever host finds it first, at start-up
//! or in a sweep once per lease period, and the next run is planned; one that a live host is
//! still running is left to it.

use crate::Pipeline;
use std::sync::Arc;
use std::time::Duration;
use tenure_store::{ActionKind, ActionState, ScheduledAction, StoreError};

/// How long a hold on a running reconciliation lasts unless its host renews it.
pub(crate) const RECONCILE_LEASE: Duration = Duration::from_secs(60);
/// How often the running host renews it.
const RENEW_EVERY: Duration = Duration::from_secs(RECONCILE_LEASE.as_secs() / 3);

/// The lease that says which host runs the scheduled reconciliation `action_id`.
pub(crate) fn lease_name(action_id: i64) -> String {
    format!("reconcile:{action_id}")
}

impl Pipeline {
    /// Each tenant with `lifecycle.reconcile_every` has its next run scheduled
    /// (at start-up; each run then schedules the next).
    pub(crate) async fn plan_reconciliations(&self) -> Result<(), StoreError> {
        for tenant in self.config.tenants.keys() {
            self.schedule_reconcile(tenant).await?;
        }
        Ok(())
    }

    async fn schedule_reconcile(&self, tenant: &str) -> Result<(), StoreError> {
        let Some(every) = self
            .config
            .tenants
            .get(tenant)
            .and_then(|t| t.lifecycle.reconcile_every)
        else {
            return Ok(());
        };
        self.store
            .schedule_action(tenure_store::NewScheduledAction {
                tenant: tenant.into(),
                person_key: String::new(),
                destination: String::new(),
                action: ActionKind::Reconcile,
                due_ms: self.now() + every.0,
                reason: format!("lifecycle.reconcile_every {} ms", every.0),
                now_ms: self.now(),
            })
            .await?;
        Ok(())
    }

    /// Holds (or renews) this host's lease on the reconciliation `action_id`; false when
    /// another live host holds it or the store cannot say.
    async fn hold_reconcile_lease(&self, action_id: i64) -> bool {
        self.holds_lease(&lease_name(action_id), RECONCILE_LEASE).await
    }

    /// Runs a reconciliation this host has just taken as due, on a task of its own.
    pub(crate) async fn start_scheduled_reconcile(self: Arc<Self>, action: ScheduledAction) {
        if !self.hold_reconcile_lease(action.id).await {
            // Taken by this host a moment ago: only a host that found it abandoned in between
            // (and has ended it) can hold it now.
            tracing::warn!(action = action.id, "reconciliation held elsewhere; not run here");
            return;
        }
        tokio::spawn(async move { self.scheduled_reconcile(action).await });
    }

    async fn scheduled_reconcile(&self, action: ScheduledAction) {
        let request = crate::reconcile::ReconcileRequest {
            destination: None,
            dry_run: false,
            actor: "scheduler".into(),
        };
        let run = self.reconcile(&action.tenant, request);
        tokio::pin!(run);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + RENEW_EVERY, RENEW_EVERY);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                _ = renew.tick() => {
                    if !self.hold_reconcile_lease(action.id).await {
                        tracing::warn!(
                            tenant = %action.tenant,
                            action = action.id,
                            "lost the reconciliation's lease (the store was out of reach); another host \
                             may end it as interrupted"
                        );
                    }
                }
            }
        };
        let (state, note) = match outcome {
            Ok(r) => (ActionState::Done, format!("report {}", r.id)),
            Err(e) => {
                tracing::error!(tenant = %action.tenant, error = %e, "scheduled reconciliation failed");
                (ActionState::Cancelled, format!("failed: {e}"))
            }
        };
        if let Err(e) = self
            .store
            .finish_action(action.id, state, &note, self.now())
            .await
        {
            tracing::error!(error = %e, "cannot record the reconciliation's end");
        }
        if let Err(e) = self
            .store
            .release_lease(&lease_name(action.id), &self.owner)
            .await
        {
            tracing::warn!(action = action.id, error = %e, "reconciliation lease not released");
        }
        if let Err(e) = self.schedule_reconcile(&action.tenant).await {
            tracing::error!(error = %e, "cannot schedule the next reconciliation");
        }
    }

    /// Ends a queued reconciliation as interrupted if no live host holds it (taking its lease
    /// proves that), and plans the next run; true when it was ended.
    pub(crate) async fn end_if_abandoned(&self, action: &ScheduledAction) -> Result<bool, StoreError> {
        if action.action != ActionKind::Reconcile || action.state != ActionState::Queued {
            return Ok(false);
        }
        if !self.hold_reconcile_lease(action.id).await {
            return Ok(false);
        }
        self.store
            .finish_action(
                action.id,
                ActionState::Cancelled,
                "interrupted: the host running it stopped or lost the database",
                self.now(),
            )
            .await?;
        self.store
            .release_lease(&lease_name(action.id), &self.owner)
            .await?;
        tracing::warn!(tenant = %action.tenant, action = action.id, "scheduled reconciliation interrupted");
        self.schedule_reconcile(&action.tenant).await?;
        Ok(true)
    }

    /// Ends the reconciliations whose hosts are gone (the dispatcher calls this once per lease
    /// period); how many.
    pub async fn end_abandoned_reconciliations(&self) -> Result<usize, StoreError> {
        let mut ended = 0;
        for tenant in self.config.tenants.keys() {
            if self
                .config
                .tenants
                .get(tenant)
                .is_none_or(|t| t.lifecycle.reconcile_every.is_none())
            {
                continue;
            }
            for action in self.store.scheduled_actions(tenant, true).await? {
                if self.end_if_abandoned(&action).await? {
                    ended += 1;
                }
            }
        }
        Ok(ended)
    }
}
