//! Enrichment of stored webhook deliveries: each is claimed with a lease, run
//! through its source's plugin (`parse`, which calls the vendor's API), and ended
//! together with the events it produced in one transaction. A rate limit's wait
//! is not a failed attempt; other failures retry with backoff until the
//! delivery's attempts run out (then it is dead, audited, and replayable). A
//! delivery the plugin refuses for good (bad data, a record the vendor does not
//! have) is rejected and audited, never retried in vain.

use crate::audit_events::{self as ev, AuditEvent};
use crate::event::InvalidEvent;
use crate::{Failure, FailureClass, Pipeline, backoff_ms};
use std::sync::Arc;
use tenure_runtime::{CallError, wit};
use tenure_store::{AuditRecord, DeliveryFinish, DeliveryRow, Intake};
use tracing::Instrument;

impl Pipeline {
    /// Enriches one claimed delivery to the end of this attempt.
    pub(crate) async fn enrich(self: &Arc<Self>, d: DeliveryRow) {
        let span = tracing::info_span!("delivery", tenant = %d.tenant, source = %d.source, delivery = d.id,
            event = %d.event, attempt = d.attempts);
        async move {
            let (finish, audit, outcome) = self.enrich_attempt(&d).await;
            match self.store.finish_delivery(d.id, &self.owner, finish, audit).await {
                Ok(Some(intake)) => {
                    self.metrics.enrichment(&d.tenant, &d.source, outcome);
                    if intake.iter().any(|i| matches!(i, Intake::Accepted { .. })) {
                        self.wake.notify_one();
                    }
                }
                Ok(None) => tracing::warn!("lease lost before the enrichment ended; another worker owns it"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot record the enrichment; it is retried when its lease \
                        ends")
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn enrich_attempt(&self, d: &DeliveryRow) -> (DeliveryFinish, Vec<AuditRecord>, &'static str) {
        let actor = format!("webhook:{}", d.source);
        let plugin = self
            .tenant(&d.tenant)
            .ok()
            .and_then(|t| t.sources.iter().find(|s| s.name == d.source))
            .map(|s| s.plugin.clone())
            .ok_or_else(|| format!("tenant {} has no source {:?} any more", d.tenant, d.source))
            .and_then(|plugin| self.runtime.plugin(&d.tenant, &plugin).map_err(|e| e.to_string()));
        let handle = match plugin {
            Ok(h) => h,
            // Not configured (any more): dead until the config is fixed and it is replayed.
            Err(error) => {
                let error = format!("config: {error}");
                let audit = ev::WebhookDead {
                    delivery: d.id,
                    event: &d.event,
                    attempts: None,
                    error: &error,
                }
                .record(&d.tenant, &actor);
                return (DeliveryFinish::Dead { error }, vec![audit], "dead");
            }
        };
        let payload = wit::source::Payload {
            content_type: "application/json".into(),
            headers: d.headers.clone(),
            body: d.body.clone(),
        };
        let events = match handle.parse(&payload).await {
            Ok(events) => events,
            Err(e) => return self.enrichment_failed(d, &e, &actor),
        };
        let mut new = Vec::with_capacity(events.len());
        let mut refused: Vec<InvalidEvent> = Vec::new();
        for e in events {
            let valid = crate::sources::validate_plugin_event(&d.source, e).and_then(|valid| {
                let key = format!("{}:{}", d.source, valid.event.source_record_id);
                self.new_event(&d.tenant, &format!("source:{}", d.source), key, valid)
                    .map_err(|e| InvalidEvent {
                        field: "event".into(),
                        reason: e.to_string(),
                    })
            });
            match valid {
                Ok(n) => new.push(n),
                Err(err) => refused.push(err),
            }
        }
        let enriched = ev::WebhookEnriched {
            delivery: d.id,
            event: &d.event,
            events: new.len(),
            attempt: d.attempts,
        };
        let mut audit = vec![enriched.record(&d.tenant, &actor)];
        audit.extend(refused.iter().map(|r| {
            ev::WebhookEventRejected {
                delivery: d.id,
                field: &r.field,
                reason: &r.reason,
            }
            .record(&d.tenant, &actor)
        }));
        (DeliveryFinish::Done { events: new }, audit, "done")
    }

    /// How a failed enrichment ends: a refusal for good is rejected, a rate limit
    /// waits without spending an attempt, anything else retries until it is dead.
    fn enrichment_failed(
        &self,
        d: &DeliveryRow,
        e: &CallError,
        actor: &str,
    ) -> (DeliveryFinish, Vec<AuditRecord>, &'static str) {
        let f = Failure::of_call(e);
        let refused_for_good = match e {
            CallError::Plugin {
                error: wit::PluginError::InvalidInput(i),
                ..
            } => Some((i.field.clone(), i.reason.clone())),
            CallError::Plugin {
                error: wit::PluginError::NotFound(m),
                ..
            } => Some((
                "data".into(),
                format!("the source does not have this record: {m}"),
            )),
            _ => None,
        };
        if let Some((field, reason)) = refused_for_good {
            let audit = ev::WebhookRejected {
                delivery: Some(d.id),
                event: Some(&d.event),
                status: 422,
                field: &field,
                reason: &reason,
                left_out_before: None,
            }
            .record(&d.tenant, actor);
            tracing::warn!(%field, %reason, "delivery rejected by its source plugin");
            return (
                DeliveryFinish::Rejected {
                    reason: format!("{field}: {reason}"),
                },
                vec![audit],
                "rejected",
            );
        }
        let error = format!("{}: {}", f.class, f.message);
        if f.class != FailureClass::RateLimited && (!f.retry || d.attempts >= d.max_attempts) {
            tracing::error!(%error, "delivery dead after {} attempts", d.attempts);
            let audit = ev::WebhookDead {
                delivery: d.id,
                event: &d.event,
                attempts: Some(d.attempts),
                error: &error,
            }
            .record(&d.tenant, actor);
            return (DeliveryFinish::Dead { error }, vec![audit], "dead");
        }
        let delay = backoff_ms(&self.config.queue, d.attempts, f.retry_after_ms);
        tracing::info!(%error, delay_ms = delay, "enrichment will retry");
        let charge = f.class != FailureClass::RateLimited;
        (
            DeliveryFinish::Retry {
                run_at_ms: self.now() + delay as i64,
                error,
                charge,
            },
            Vec::new(),
            if charge { "retry" } else { "rate-limited" },
        )
    }
}
