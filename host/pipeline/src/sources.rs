//! Source plugins: pushed payloads (`parse`) and scheduled polling (`poll`)
//! whose cursor is stored in the same transaction as the events it produced,
//! so a crash never skips or repeats a page.

use crate::event::{InvalidEvent, ValidEvent};
use crate::{Pipeline, PipelineError, now_ms};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tenure_runtime::wit;
use tenure_store::{CursorUpdate, Intake};
use tokio::sync::watch;

/// A source of a tenant (`[[tenants.T.sources]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source name on person ids and in the audit log.
    pub name: String,
    /// The source plugin.
    pub plugin: String,
    /// Poll every this many seconds (none: push only).
    pub poll_secs: Option<u64>,
    /// Signed webhooks at `/hooks/lever/{name}` (the source's name must be unique across tenants).
    #[serde(default)]
    pub webhook: Option<crate::webhooks::WebhookConfig>,
}

/// Checks an event a source plugin produced.
pub fn validate_plugin_event(source: &str, event: wit::PersonEvent) -> Result<ValidEvent, InvalidEvent> {
    let bad = |field: &str, reason: &str| InvalidEvent {
        field: field.into(),
        reason: reason.into(),
    };
    if event.source_record_id.is_empty() {
        return Err(bad(
            "source_record_id",
            "a source plugin must give every event a record id",
        ));
    }
    if event
        .person
        .ids
        .iter()
        .any(|i| i.id.is_empty() || i.source.is_empty())
    {
        return Err(bad("person.ids", "ids must have a source and an id"));
    }
    let person_key = crate::event::person_key(source, &event.person)
        .ok_or_else(|| bad("person.ids", "must name at least one id"))?;
    Ok(ValidEvent {
        source: source.into(),
        person_key,
        event,
    })
}

impl Pipeline {
    /// Stores events a source produced (de-duplicated by source and record id) and, when
    /// given, the cursor after them, in one transaction. Invalid events are reported, not stored.
    pub async fn ingest_from_source(
        &self,
        tenant: &str,
        source: &str,
        events: Vec<wit::PersonEvent>,
        cursor: Option<String>,
    ) -> Result<(Vec<Intake>, Vec<InvalidEvent>), PipelineError> {
        self.tenant(tenant)?;
        let mut new = Vec::new();
        let mut rejected = Vec::new();
        for e in events {
            match validate_plugin_event(source, e) {
                Ok(valid) => {
                    let key = format!("{source}:{}", valid.event.source_record_id);
                    new.push(self.new_event(tenant, &format!("source:{source}"), key, valid)?);
                }
                Err(err) => rejected.push(err),
            }
        }
        let cursor = cursor.map(|c| CursorUpdate {
            tenant: tenant.into(),
            source: source.into(),
            cursor: c,
        });
        let intake = self.store.intake(new, cursor).await?;
        self.wake.notify_one();
        Ok((intake, rejected))
    }

    /// Runs a pushed payload through the source's plugin and stores the events.
    pub async fn ingest_payload(
        &self,
        tenant: &str,
        source: &str,
        payload: wit::source::Payload,
    ) -> Result<(Vec<Intake>, Vec<InvalidEvent>), PipelineError> {
        let config = self.tenant(tenant)?;
        let Some(s) = config.sources.iter().find(|s| s.name == source) else {
            return Err(InvalidEvent {
                field: "source".into(),
                reason: format!("no source named {source:?}"),
            }
            .into());
        };
        let plugin = self.runtime.plugin(tenant, &s.plugin)?;
        let events = plugin.parse(&payload).await?;
        self.ingest_from_source(tenant, source, events, None).await
    }

    /// Polls every source with an interval until shutdown.
    pub async fn run_pollers(
        self: Arc<Self>,
        sources: Vec<(String, SourceConfig)>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut tasks = Vec::new();
        for (tenant, source) in sources.into_iter().filter(|(_, s)| s.poll_secs.is_some()) {
            let (me, mut stop) = (self.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                let every = Duration::from_secs(source.poll_secs.unwrap_or(60).max(1));
                loop {
                    let more = me.poll_once(&tenant, &source).await;
                    if *stop.borrow() {
                        break;
                    }
                    if more {
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// One poll; true when the source says more is waiting.
    pub async fn poll_once(&self, tenant: &str, source: &SourceConfig) -> bool {
        let span = tracing::info_span!("poll", tenant, source = %source.name);
        let _guard = span.enter();
        let plugin = match self.runtime.plugin(tenant, &source.plugin) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "source plugin unavailable");
                return false;
            }
        };
        let cursor = match self.store.cursor(tenant, &source.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the cursor");
                return false;
            }
        };
        let started = now_ms();
        match plugin.poll(cursor.as_deref()).await {
            Ok(page) => {
                let count = page.events.len();
                match self
                    .ingest_from_source(tenant, &source.name, page.events, page.next_cursor)
                    .await
                {
                    Ok((_, rejected)) => {
                        for r in &rejected {
                            tracing::warn!(field = %r.field, reason = %r.reason, "source event rejected");
                        }
                        tracing::info!(
                            count,
                            rejected = rejected.len(),
                            ms = now_ms() - started,
                            "polled"
                        );
                        page.has_more
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot store polled events; the cursor stays");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "poll failed");
                false
            }
        }
    }
}
