//! Tenure's provisioning pipeline.
//!
//! An event is validated ([`event`]), stored with its job before it is
//! acknowledged ([`Pipeline::submit`]), claimed by the queue's workers in
//! per-person order ([`worker`]), evaluated by the tenant's rules plugin,
//! planned against each destination's live state ([`plan`]), checked by the
//! safety guards, applied through connector plugins ([`process`]) and audited
//! at every step. [`preview`] runs the same path without writing anything.

pub mod admin;
pub mod audit_events;
pub mod config;
pub mod connections;
mod deliveries;
pub mod desired;
pub mod event;
mod follow;
pub mod identity;
pub mod intake;
pub mod lifecycle;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod passwords;
pub mod people;
pub mod plan;
mod presence;
pub mod preview;
mod process;
pub mod reconcile;
pub mod redaction;
mod resolve;
pub mod retention;
pub mod schedule;
mod scheduled_reconcile;
pub mod shadow;
pub mod sources;
pub mod stored;
pub mod supervision;
pub mod text;
pub mod webhooks;
pub mod worker;

pub use config::*;
pub use event::{EventIn, InvalidEvent, ValidEvent, parse_event};
pub use resolve::match_keys;
pub use sources::SourceConfig;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenure_runtime::{CallError, Runtime, RuntimeError, wit};
use tenure_store::{Intake, NewEvent, Store, StoreError};
use tokio::sync::Notify;

/// Why the pipeline refused or could not take a request.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// The caller may not speak for the source it posted for.
    #[error(transparent)]
    NotAllowed(#[from] intake::NotAllowed),
    #[error("no tenant named {0:?} is configured")]
    UnknownTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A setting is wrong (named in the message).
    #[error("tenant {tenant}: {message}")]
    Config { tenant: String, message: String },
}

/// What kind of failure a call met; its name labels metrics and the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    Transient,
    RateLimited,
    Unauthorized,
    InvalidInput,
    Conflict,
    NotFound,
    Permanent,
    Timeout,
    OutOfMemory,
    Trap,
    Busy,
    Start,
    Config,
    Store,
    /// The attempt lost its job's lease (another attempt owns the job, or the lease
    /// could not be confirmed): it stops and writes nothing more.
    LeaseLost,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::RateLimited => "rate-limited",
            FailureClass::Unauthorized => "unauthorized",
            FailureClass::InvalidInput => "invalid-input",
            FailureClass::Conflict => "conflict",
            FailureClass::NotFound => "not-found",
            FailureClass::Permanent => "permanent",
            FailureClass::Timeout => "timeout",
            FailureClass::OutOfMemory => "out-of-memory",
            FailureClass::Trap => "trap",
            FailureClass::Busy => "busy",
            FailureClass::Start => "start",
            FailureClass::Config => "config",
            FailureClass::Store => "store",
            FailureClass::LeaseLost => "lease-lost",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a failed call is treated.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What kind of failure (labels metrics and the audit).
    pub class: FailureClass,
    pub message: String,
    /// Worth retrying.
    pub retry: bool,
    /// The earliest retry the destination asked for.
    pub retry_after_ms: Option<u64>,
}

impl Failure {
    pub fn of_call(e: &CallError) -> Failure {
        use FailureClass as C;
        let (class, retry, retry_after_ms) = match e {
            CallError::Plugin { error, .. } => match error {
                wit::PluginError::Transient(_) => (C::Transient, true, None),
                wit::PluginError::RateLimited(ms) => (C::RateLimited, true, Some(*ms)),
                wit::PluginError::Unauthorized(_) => (C::Unauthorized, true, None),
                wit::PluginError::InvalidInput(_) => (C::InvalidInput, false, None),
                wit::PluginError::Conflict(_) => (C::Conflict, true, None),
                wit::PluginError::NotFound(_) => (C::NotFound, true, None),
                wit::PluginError::Permanent(_) => (C::Permanent, false, None),
            },
            CallError::Timeout { .. } => (C::Timeout, true, None),
            CallError::OutOfMemory { .. } => (C::OutOfMemory, true, None),
            CallError::Trap { .. } => (C::Trap, true, None),
            CallError::Busy { .. } => (C::Busy, true, None),
            // The tenant's own quota: waited out like a destination's rate limit, never charged.
            CallError::OverQuota { retry_after_ms, .. } => (C::RateLimited, true, Some(*retry_after_ms)),
            CallError::Start { .. } => (C::Start, true, None),
            CallError::WrongKind { .. } => (C::Config, false, None),
        };
        Failure {
            class,
            message: e.to_string(),
            retry,
            retry_after_ms,
        }
    }

    pub fn config(message: impl Into<String>) -> Failure {
        Failure {
            class: FailureClass::Config,
            message: message.into(),
            retry: false,
            retry_after_ms: None,
        }
    }

    pub fn store(e: &StoreError) -> Failure {
        Failure {
            class: match e {
                StoreError::Fenced(_) => FailureClass::LeaseLost,
                _ => FailureClass::Store,
            },
            message: e.to_string(),
            retry: true,
            retry_after_ms: None,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::store(&e)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The delay before attempt `attempt + 1`: exponential from `base`, capped, with
/// equal jitter, and never sooner than the destination asked.
pub fn backoff_ms(q: &QueueConfig, attempt: u32, retry_after_ms: Option<u64>) -> u64 {
    let exp = q
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
        .min(q.backoff_max_ms);
    let jittered = exp / 2 + fastrand::u64(0..=exp / 2);
    match retry_after_ms {
        // Honour Retry-After exactly, plus a little jitter so that retries do not stampede.
        Some(ra) => ra + fastrand::u64(0..=ra / 10 + 1),
        None => jittered,
    }
}

/// A destination held back: until when, and the refusal that asked for it.
pub(crate) struct Throttle {
    until: std::time::Instant,
    why: String,
}

/// The pipeline of one host.
pub struct Pipeline {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Runtime,
    pub(crate) config: PipelineConfig,
    pub metrics: metrics::Metrics,
    pub(crate) wake: Notify,
    pub(crate) owner: String,
    capabilities: Mutex<HashMap<(String, String, String), Arc<plan::ConnectorCaps>>>,
    pub(crate) refusals: webhooks::RefusalSampler,
    /// Webhook deliveries each source may still send now.
    pub(crate) webhook_rates: webhooks::DeliveryLimiter,
    /// Set when a webhook delivery was stored (or may be waiting): the dispatcher claims them.
    pub(crate) deliveries_waiting: std::sync::atomic::AtomicBool,
    /// Until when each running job's lease is known to hold (from its claim and the
    /// heartbeats the store confirmed).
    pub(crate) leases: Mutex<HashMap<i64, std::time::Instant>>,
    /// Destinations that asked to be left alone (a 429's `Retry-After`, a plugin quota), by
    /// (tenant, destination): until then no job calls them.
    pub(crate) throttles: Mutex<HashMap<(String, String), Throttle>>,
    /// What this host last saw of each destination, by (tenant, destination).
    pub(crate) connections: Mutex<HashMap<(String, String), connections::Seen>>,
    /// Each polled source's health, by (tenant, source).
    pub(crate) pollers: Mutex<std::collections::BTreeMap<(String, String), sources::SourceHealth>>,
    /// Wakes the notification sender when one was queued.
    pub(crate) notifications_waiting: Notify,
    /// Told of each job that completed (a live shadow run compares the person then).
    listeners: std::sync::RwLock<Vec<Arc<dyn JobListener>>>,
    /// The rule-set version this host runs, by tenant (see `follow`).
    pub(crate) rule_sets_running: Mutex<HashMap<String, i64>>,
    /// Loads one published rule set at a time.
    pub(crate) following: tokio::sync::Mutex<()>,
}

/// Something told of every job that completed, after its end was written: the person's state
/// has just changed. Called on the worker, so it must only hand the news on (never block).
pub trait JobListener: Send + Sync {
    fn completed(&self, tenant: &str, person_key: &str);
}

impl Pipeline {
    /// A pipeline over a store and a runtime whose tenants and plugins are already set up.
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Runtime,
        config: PipelineConfig,
    ) -> Result<Arc<Pipeline>, PipelineError> {
        for (tenant, t) in &config.tenants {
            let config_error = |message| PipelineError::Config {
                tenant: tenant.clone(),
                message,
            };
            t.notifications.check().map_err(config_error)?;
            for d in &t.destinations {
                supervision::check(&d.cohorts)
                    .map_err(|e| config_error(format!("destinations.{}.{e}", d.name)))?;
            }
            for (name, template) in &t.lifecycle.notice_fields {
                notify::templates::check(template)
                    .map_err(|e| config_error(format!("lifecycle.notice_fields.{name}: {e}")))?;
            }
        }
        let metrics = metrics::Metrics::new()?;
        let owner = format!("{}-{}", std::process::id(), fastrand::u64(..));
        Ok(Arc::new(Pipeline {
            store,
            runtime,
            config,
            metrics,
            wake: Notify::new(),
            owner,
            capabilities: Mutex::new(HashMap::new()),
            refusals: webhooks::RefusalSampler::default(),
            webhook_rates: webhooks::DeliveryLimiter::default(),
            deliveries_waiting: std::sync::atomic::AtomicBool::new(true),
            leases: Mutex::new(HashMap::new()),
            throttles: Mutex::new(HashMap::new()),
            connections: Mutex::new(HashMap::new()),
            pollers: Mutex::default(),
            notifications_waiting: Notify::new(),
            listeners: std::sync::RwLock::default(),
            rule_sets_running: Mutex::default(),
            following: tokio::sync::Mutex::new(()),
        }))
    }

    /// Now, by the runtime's clock (the one plugins read; tests inject a manual one).
    pub fn now(&self) -> i64 {
        self.runtime.services().clock.now_ms()
    }

    /// Wakes the dispatcher (after a replay, a resolved conflict or an approval).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Holds every job's calls to a destination back for `wait_ms` (it answered rate-limited,
    /// for the reason `why`).
    pub(crate) fn throttle(&self, tenant: &str, destination: &str, wait_ms: u64, why: &str) {
        let now = std::time::Instant::now();
        let until = now + std::time::Duration::from_millis(wait_ms);
        let mut t = self.throttles.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.to_string(), destination.to_string());
        match t.get_mut(&key) {
            // Still held: held longer, for the refusal that began it (a job turned away by the
            // hold reports it again, and must not nest its own message in it).
            Some(slot) if slot.until > now => slot.until = slot.until.max(until),
            _ => {
                let why = why.to_string();
                t.insert(key, Throttle { until, why });
            }
        }
    }

    /// How long a destination still asks to be left alone, and why, if it does.
    pub(crate) fn throttled(&self, tenant: &str, destination: &str) -> Option<(std::time::Duration, String)> {
        let t = self.throttles.lock().unwrap_or_else(|p| p.into_inner());
        let slot = t.get(&(tenant.to_string(), destination.to_string()))?;
        let wait = slot.until.checked_duration_since(std::time::Instant::now())?;
        Some((wait, slot.why.clone()))
    }

    /// Records until when a job's lease is known to hold (`None`: the job ended).
    pub(crate) fn lease_confirmed(&self, job_id: i64, until: Option<std::time::Instant>) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        match until {
            Some(t) => {
                leases.insert(job_id, t);
            }
            None => {
                leases.remove(&job_id);
            }
        }
    }

    /// Whether a job's lease is confirmed for at least a quarter of a lease more: a
    /// worker calls a destination only then, so a stalled store (heartbeats not
    /// written) stops it before another host could take the job over.
    pub(crate) fn lease_holds(&self, job_id: i64) -> bool {
        let margin = std::time::Duration::from_millis(self.config.queue.lease_ms / 4);
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&job_id)
            .is_some_and(|until| *until > std::time::Instant::now() + margin)
    }

    /// Tells the dispatcher that webhook deliveries wait for enrichment (after a replay).
    pub fn deliveries_arrived(&self) {
        self.deliveries_waiting
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn tenant(&self, name: &str) -> Result<&TenantPipeline, PipelineError> {
        self.config
            .tenants
            .get(name)
            .ok_or_else(|| PipelineError::UnknownTenant(name.into()))
    }

    /// Adds a listener told of every completed job.
    pub fn listen(&self, listener: Arc<dyn JobListener>) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// Tells the listeners that a job of `person_key` completed.
    pub(crate) fn job_completed(&self, tenant: &str, person_key: &str) {
        for listener in self.listeners.read().unwrap_or_else(|p| p.into_inner()).iter() {
            listener.completed(tenant, person_key);
        }
    }

    /// Stores a validated event a caller posted, with its job, and wakes the workers;
    /// returns once durable. The caller must be allowed to speak for the event's
    /// sources; its idempotency key lives in its own namespace, so it never meets a
    /// source's record key (de-duplication otherwise by source and source record id).
    pub async fn submit(
        &self,
        tenant: &str,
        poster: &intake::Poster<'_>,
        idempotency_key: Option<&str>,
        event: ValidEvent,
    ) -> Result<Intake, PipelineError> {
        poster.check(&self.tenant(tenant)?.sources, &event)?;
        let key = match idempotency_key {
            Some(k) if !k.is_empty() && k.len() <= 256 => poster.client_key(k),
            Some(_) => {
                return Err(InvalidEvent {
                    field: "Idempotency-Key".into(),
                    reason: "must be 1 to 256 characters".into(),
                }
                .into());
            }
            None if !event.event.source_record_id.is_empty() => {
                format!("{}:{}", event.source, event.event.source_record_id)
            }
            None => {
                return Err(InvalidEvent {
                    field: "Idempotency-Key".into(),
                    reason: "send an Idempotency-Key header or a source_record_id so that a retried request \
                        is not applied twice"
                        .into(),
                }
                .into());
            }
        };
        self.store_event(tenant, poster.name, key, event).await
    }

    /// Stores an event under `key` with its job and wakes the workers (no caller checks:
    /// for events the host makes itself).
    pub(crate) async fn store_event(
        &self,
        tenant: &str,
        actor: &str,
        key: String,
        event: ValidEvent,
    ) -> Result<Intake, PipelineError> {
        let started = std::time::Instant::now();
        self.tenant(tenant)?;
        let new = self.new_event(tenant, actor, key, event)?;
        intake::check_not_in_future(new.occurred_ms, new.received_ms, self.max_future_skew_ms())?;
        let intake = self
            .store
            .intake(vec![new], None)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("intake stored nothing for one event".into()))?;
        self.metrics
            .event_received(tenant, &intake, started.elapsed().as_secs_f64());
        self.wake.notify_one();
        Ok(intake)
    }

    /// How far in the future an event's `occurred_at` may be.
    pub(crate) fn max_future_skew_ms(&self) -> i64 {
        i64::try_from(self.config.queue.max_future_skew_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    pub(crate) fn new_event(
        &self,
        tenant: &str,
        actor: &str,
        key: String,
        e: ValidEvent,
    ) -> Result<NewEvent, PipelineError> {
        let body = stored::encode(&e.event);
        let link_keys = self
            .config
            .tenants
            .get(tenant)
            .map(|t| t.identity.keys(&e.person_key, &e.event.person))
            .unwrap_or_default();
        Ok(NewEvent {
            tenant: tenant.into(),
            source: e.source,
            idempotency_key: key,
            person_key: e.person_key,
            kind: tenure_store::RecordKind::Person(<event::EventKind as event::EventKindExt>::from_wit(
                e.event.kind,
            )),
            body,
            source_record_id: e.event.source_record_id.clone(),
            start_date: e.event.person.start_date.clone(),
            occurred_ms: e.event.occurred_at.as_deref().and_then(event::rfc3339_ms),
            actor: actor.into(),
            received_ms: self.now(),
            max_attempts: self.config.queue.max_attempts,
            link_keys,
        })
    }

    /// A configured destination's connector and what it can do (`None`: no such destination).
    pub async fn destination_caps(
        &self,
        tenant: &str,
        destination: &str,
    ) -> Result<Option<(String, Arc<plan::ConnectorCaps>)>, String> {
        let Some(connector) = self
            .config
            .tenants
            .get(tenant)
            .and_then(|t| t.destinations.iter().find(|d| d.name == destination))
            .map(|d| d.connector.clone())
        else {
            return Ok(None);
        };
        let handle = self
            .runtime
            .plugin(tenant, &connector)
            .map_err(|e| e.to_string())?;
        let caps = self.capabilities(&handle).await.map_err(|e| e.to_string())?;
        Ok(Some((connector, caps)))
    }

    /// A connector's capabilities, asked once per plugin version.
    pub(crate) async fn capabilities(
        &self,
        connector: &tenure_runtime::PluginHandle,
    ) -> Result<Arc<plan::ConnectorCaps>, CallError> {
        let key = (
            connector.tenant().to_string(),
            connector.plugin().to_string(),
            connector.version().to_string(),
        );
        if let Some(c) = self
            .capabilities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let caps = Arc::new(plan::ConnectorCaps {
            described: connector.describe().await?,
            keeps: connector.manifest().keeps.clone(),
        });
        self.capabilities
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, caps.clone());
        Ok(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let q = QueueConfig {
            backoff_base_ms: 100,
            backoff_max_ms: 1_000,
            ..QueueConfig::default()
        };
        for attempt in 1..20 {
            let d = backoff_ms(&q, attempt, None);
            let exp = (100u64 << (attempt - 1).min(30)).min(1_000);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d}");
        }
        let d = backoff_ms(&q, 1, Some(5_000));
        assert!((5_000..=5_501).contains(&d));
    }
}
