//! Source plugins: pushed payloads (`parse`) and scheduled polling (`poll`)
//! whose cursor is stored in the same transaction as the events it produced,
//! so a crash never skips or repeats a page.

use crate::event::{InvalidEvent, ValidEvent};
use crate::{Pipeline, PipelineError, now_ms};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tenure_runtime::wit;
use tenure_store::{CursorUpdate, Intake};
use tokio::sync::watch;

/// A source of a tenant (`[[tenants.T.sources]]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source name on person ids and in the audit log.
    pub name: String,
    /// The source plugin.
    pub plugin: String,
    /// Poll every this many seconds (none: push only).
    pub poll_secs: Option<u64>,
    /// Or poll on a cron schedule, in UTC: five fields (`*/15 * * * *`) or six with seconds.
    #[serde(default)]
    pub poll_cron: Option<String>,
    /// Signed webhooks at `/hooks/lever/{name}` (the source's name must be unique across tenants).
    #[serde(default)]
    pub webhook: Option<crate::webhooks::WebhookConfig>,
}

/// Where a source's poller stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PollerState {
    /// Its last poll succeeded (or none has run yet).
    Polling,
    /// Its last poll failed; it keeps polling on schedule.
    Failing,
    /// Its poller is not running any more (never expected; readiness fails).
    Stopped,
}

/// A polled source's health, as `/readyz` reports it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceHealth {
    pub tenant: String,
    pub source: String,
    pub state: PollerState,
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

/// What a backfill did so far.
#[derive(Debug, Default, Clone)]
pub struct BackfillReport {
    pub pages: usize,
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Waits for the source's rate limit (not failures).
    pub rate_limited: usize,
}

/// Consecutive failed polls (other than rate limits) a backfill takes before it stops.
const BACKFILL_FAILURES: u32 = 5;

/// What one polled page did.
#[derive(Debug)]
pub struct PolledPage {
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: Vec<InvalidEvent>,
    /// The cursor now stored.
    pub cursor: Option<String>,
    pub has_more: bool,
}

impl SourceConfig {
    /// The source's cron schedule, checked (`None` without `poll_cron`).
    pub fn cron(&self) -> Result<Option<cron::Schedule>, InvalidEvent> {
        let Some(text) = &self.poll_cron else {
            return Ok(None);
        };
        let fields = text.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {text}")
        } else {
            text.clone()
        };
        full.parse::<cron::Schedule>()
            .map(Some)
            .map_err(|e| InvalidEvent {
                field: format!("sources.{}.poll_cron", self.name),
                reason: format!("{text:?} is not a cron schedule: {e}"),
            })
    }

    /// How long to wait before the next scheduled poll.
    fn next_wait(&self, schedule: Option<&cron::Schedule>) -> Option<Duration> {
        if let Some(s) = schedule {
            let next = s.upcoming(chrono::Utc).next()?;
            return Some((next - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO));
        }
        self.poll_secs.map(|secs| Duration::from_secs(secs.max(1)))
    }
}

/// Checks an event a source plugin produced exactly as an event posted to the API
/// is checked, and that it carries a record id (its de-duplication key).
pub fn validate_plugin_event(source: &str, event: wit::PersonEvent) -> Result<ValidEvent, InvalidEvent> {
    crate::event::check_source(source)?;
    if event.source_record_id.is_empty() {
        return Err(InvalidEvent {
            field: "source_record_id".into(),
            reason: "a source plugin must give every event a record id".into(),
        });
    }
    crate::event::check_event(&event)?;
    let person_key = crate::event::person_key(source, &event.person).ok_or_else(|| InvalidEvent {
        field: "person.ids".into(),
        reason: "must name at least one id".into(),
    })?;
    Ok(ValidEvent {
        source: source.into(),
        person_key,
        event,
    })
}

/// How long past its next poll a host's lease on a source lasts (another host takes the polls
/// over this long after it stopped).
const POLL_LEASE_MARGIN: Duration = Duration::from_secs(30);

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
                    let event = self.new_event(tenant, &format!("source:{source}"), key, valid)?;
                    let skew = self.max_future_skew_ms();
                    match crate::intake::check_not_in_future(event.occurred_ms, event.received_ms, skew) {
                        Ok(()) => new.push(event),
                        Err(err) => rejected.push(err),
                    }
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

    /// Runs a pushed payload through the source's plugin and stores the events. The
    /// poster must be allowed to speak for the source; a source that receives signed
    /// webhooks takes a payload only with its signature (checked on `headers` and the
    /// body, as the webhook route does) or an IT administrator's audited reason.
    pub async fn ingest_payload(
        &self,
        tenant: &str,
        poster: &crate::intake::Poster<'_>,
        source: &str,
        upload: crate::intake::Upload<'_>,
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
        poster.may_upload_for(source)?;
        if let Some(webhook) = &s.webhook {
            match upload.authority {
                crate::intake::PayloadAuthority::Reason(reason) => {
                    use crate::audit_events::AuditEvent;
                    let audit = crate::audit_events::SourcePayloadOverride {
                        source,
                        reason,
                        bytes: payload.body.len(),
                    };
                    self.store
                        .append_audit(vec![audit.record(tenant, poster.name)])
                        .await?;
                }
                crate::intake::PayloadAuthority::Signature => {
                    webhook
                        .scheme
                        .scheme()
                        .verify(webhook, upload.headers, &payload.body, crate::now_ms())
                        .map_err(|r| crate::intake::NotAllowed {
                            field: r.field,
                            reason: format!(
                                "{}; {source:?} receives signed webhooks, so an upload needs the same \
                                 signature, or an IT token and an X-Tenure-Reason header",
                                r.reason
                            ),
                        })?;
                }
            }
        }
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
        for (tenant, source) in sources {
            let schedule = match source.cron() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(tenant, source = %source.name, "{}: {}", e.field, e.reason);
                    continue;
                }
            };
            if source.next_wait(schedule.as_ref()).is_none() {
                continue;
            }
            self.set_health(&tenant, &source.name, |_| {});
            let (me, mut stop) = (self.clone(), shutdown.clone());
            let (watch_tenant, watch_source, watcher) = (tenant.clone(), source.name.clone(), self.clone());
            let task = tokio::spawn(async move {
                loop {
                    // A cron source waits for its first slot; an interval source polls at once.
                    if schedule.is_some() {
                        let Some(wait) = source.next_wait(schedule.as_ref()) else {
                            break;
                        };
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => break,
                        }
                    }
                    // One host of a deployment polls each source (each page renews its lease).
                    let hold =
                        source.next_wait(schedule.as_ref()).unwrap_or(POLL_LEASE_MARGIN) + POLL_LEASE_MARGIN;
                    while me.holds_poll_lease(&tenant, &source.name, hold).await
                        && me.clone().poll_guarded(&tenant, &source).await
                        && !*stop.borrow()
                    {}
                    if *stop.borrow() {
                        break;
                    }
                    if schedule.is_none() {
                        let Some(wait) = source.next_wait(None) else { break };
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => break,
                        }
                    }
                }
                // Stopping: another host may take the polls over at once.
                let lease = format!("poll:{tenant}:{}", source.name);
                if let Err(e) = me.store.release_lease(&lease, &me.owner).await {
                    tracing::warn!(tenant, source = %source.name, error = %e, "poll lease not released");
                }
            });
            // A poller that ends without a shutdown is reported stopped.
            let shutting_down = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let ended = task.await;
                if !*shutting_down.borrow() {
                    let why = match ended {
                        Err(e) if e.is_panic() => "the poller panicked".to_string(),
                        _ => "the poller ended".to_string(),
                    };
                    tracing::error!(tenant = %watch_tenant, source = %watch_source, "{why}");
                    watcher.set_health(&watch_tenant, &watch_source, |h| {
                        h.state = PollerState::Stopped;
                        h.last_error = Some(why);
                    });
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// One poll; true when the source says more is waiting.
    /// Polls one page and stores it with its cursor (one transaction).
    pub async fn poll_page(&self, tenant: &str, source: &SourceConfig) -> Result<PolledPage, PipelineError> {
        let plugin = self.runtime.plugin(tenant, &source.plugin)?;
        let cursor = self.store.cursor(tenant, &source.name).await?;
        let page = plugin.poll(cursor.as_deref()).await?;
        let (intake, rejected) = self
            .ingest_from_source(tenant, &source.name, page.events, page.next_cursor.clone())
            .await?;
        Ok(PolledPage {
            stored: intake
                .iter()
                .filter(|i| matches!(i, Intake::Accepted { .. }))
                .count(),
            duplicates: intake
                .iter()
                .filter(|i| matches!(i, Intake::Duplicate { .. }))
                .count(),
            rejected,
            cursor: page.next_cursor,
            has_more: page.has_more,
        })
    }

    /// Polls a source page by page until it has no more, from its stored cursor. Each
    /// page is stored with its cursor (an interrupted backfill resumes where it stopped).
    /// A rate limit is waited out; other failures are retried a few times with backoff.
    /// `progress` sees every page.
    pub async fn backfill(
        &self,
        tenant: &str,
        source: &SourceConfig,
        mut progress: impl FnMut(&PolledPage, &BackfillReport),
    ) -> Result<BackfillReport, PipelineError> {
        let mut report = BackfillReport::default();
        let mut failures = 0u32;
        loop {
            let page = match self.poll_page(tenant, source).await {
                Ok(p) => p,
                Err(PipelineError::Call(e)) => {
                    let f = crate::Failure::of_call(&e);
                    if f.class == crate::FailureClass::RateLimited {
                        report.rate_limited += 1;
                        let wait = f.retry_after_ms.unwrap_or(1000).clamp(100, 120_000);
                        tracing::info!(wait_ms = wait, "backfill: the source asks to wait");
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        continue;
                    }
                    failures += 1;
                    if !f.retry || failures >= BACKFILL_FAILURES {
                        return Err(PipelineError::Call(e));
                    }
                    let wait = 500u64 << failures;
                    tracing::warn!(error = %e, wait_ms = wait, "backfill: poll failed; trying again");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            failures = 0;
            report.pages += 1;
            report.stored += page.stored;
            report.duplicates += page.duplicates;
            report.rejected += page.rejected.len();
            progress(&page, &report);
            if !page.has_more {
                return Ok(report);
            }
        }
    }

    /// Every polled source's health.
    pub fn source_health(&self) -> Vec<SourceHealth> {
        self.pollers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn set_health(&self, tenant: &str, source: &str, change: impl FnOnce(&mut SourceHealth)) {
        let mut pollers = self.pollers.lock().unwrap_or_else(|p| p.into_inner());
        let h = pollers
            .entry((tenant.to_string(), source.to_string()))
            .or_insert_with(|| SourceHealth {
                tenant: tenant.into(),
                source: source.into(),
                state: PollerState::Polling,
                last_ok_ms: None,
                last_error: None,
                consecutive_failures: 0,
            });
        change(h);
    }

    /// One poll on its own task, so that even a bug reached by one page (a panic)
    /// fails that poll, not the source's poller; true when more pages wait.
    async fn poll_guarded(self: Arc<Self>, tenant: &str, source: &SourceConfig) -> bool {
        let (me, t, s) = (self.clone(), tenant.to_string(), source.clone());
        let outcome = tokio::spawn(async move { me.poll_once(&t, &s).await }).await;
        match outcome {
            Ok(more) => more,
            Err(e) => {
                let why = if e.is_panic() {
                    "a poll panicked (a bug); the poller goes on at the next poll"
                } else {
                    "a poll was cancelled"
                };
                tracing::error!(tenant, source = %source.name, "{why}");
                self.set_health(tenant, &source.name, |h| {
                    h.state = PollerState::Failing;
                    h.last_error = Some(why.into());
                    h.consecutive_failures += 1;
                });
                false
            }
        }
    }

    /// Whether this host polls `source` now: one host of a deployment does, holding a lease it
    /// renews at each poll for `hold`; another host takes over once the lease has run out (its
    /// holder stopped or lost the database).
    async fn holds_poll_lease(&self, tenant: &str, source: &str, hold: Duration) -> bool {
        self.holds_lease(&format!("poll:{tenant}:{source}"), hold).await
    }

    /// Polls one page for the scheduler, logging the outcome; true when more pages wait.
    pub async fn poll_once(&self, tenant: &str, source: &SourceConfig) -> bool {
        let span = tracing::info_span!("poll", tenant, source = %source.name);
        let _guard = span.enter();
        let started = now_ms();
        match self.poll_page(tenant, source).await {
            Ok(page) => {
                for r in &page.rejected {
                    tracing::warn!(field = %r.field, reason = %r.reason, "source event rejected");
                }
                tracing::info!(
                    stored = page.stored,
                    duplicates = page.duplicates,
                    rejected = page.rejected.len(),
                    ms = now_ms() - started,
                    "polled"
                );
                self.set_health(tenant, &source.name, |h| {
                    h.state = PollerState::Polling;
                    h.last_ok_ms = Some(now_ms());
                    h.consecutive_failures = 0;
                });
                page.has_more
            }
            Err(e) => {
                tracing::warn!(error = %e, "poll failed; the cursor stays");
                self.set_health(tenant, &source.name, |h| {
                    h.state = PollerState::Failing;
                    h.last_error = Some(e.to_string());
                    h.consecutive_failures += 1;
                });
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(cron: Option<&str>, secs: Option<u64>) -> SourceConfig {
        SourceConfig {
            name: "lever".into(),
            plugin: "lever".into(),
            poll_secs: secs,
            poll_cron: cron.map(str::to_string),
            webhook: None,
        }
    }

    #[test]
    fn cron_schedules_take_five_or_six_fields_and_bad_ones_name_the_key() {
        assert!(source(Some("*/15 * * * *"), None).cron().unwrap().is_some());
        assert!(source(Some("30 */15 * * * *"), None).cron().unwrap().is_some());
        let e = source(Some("every day"), None).cron().unwrap_err();
        assert_eq!(e.field, "sources.lever.poll_cron");
        let s = source(Some("* * * * *"), None);
        let wait = s.next_wait(s.cron().unwrap().as_ref()).unwrap();
        assert!(
            wait <= Duration::from_secs(60),
            "the next minute is at most a minute away"
        );
        assert_eq!(
            source(None, Some(5)).next_wait(None),
            Some(Duration::from_secs(5))
        );
        assert_eq!(source(None, None).next_wait(None), None, "push only");
    }
}
