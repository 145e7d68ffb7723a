//! Prometheus metrics of the pipeline. Gauges that mirror the store (queue
//! depth, KPIs) are refreshed when `/metrics` is scraped.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use tenure_store::{Finish, Intake, OperationKind, OperationStatus, RecordKind, Store};

/// Every metric the pipeline exports.
pub struct Metrics {
    pub registry: Registry,
    events: IntCounterVec,
    ack_seconds: HistogramVec,
    pub in_flight: IntGauge,
    /// The deployment's hosts alive, as this host last counted them.
    pub hosts_alive: IntGauge,
    attempts: IntCounterVec,
    event_to_done: HistogramVec,
    time_to_provision: HistogramVec,
    operations: IntCounterVec,
    errors: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub kpi: GaugeVec,
    webhook_deliveries: IntCounterVec,
    webhook_refusals: IntCounterVec,
    webhook_ack_seconds: HistogramVec,
    enrichments: IntCounterVec,
    pub plugin_truncations: IntGauge,
    plugin_calls_running: IntGaugeVec,
    plugin_quota_refusals: IntGaugeVec,
    /// When the store-backed gauges were last read.
    store_gauges_read: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The least time between two reads of the store-backed gauges.
pub const STORE_GAUGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    3600.0,
];

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram =
            |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, prometheus::Error> {
                let h = HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                    labels,
                )?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let events = counter(
            "tenure_events_total",
            "Events received, by outcome",
            &["tenant", "outcome"],
        )?;
        let ack_seconds = histogram(
            "tenure_intake_ack_seconds",
            "Time to durably store and acknowledge an event",
            &["tenant"],
        )?;
        let attempts = counter(
            "tenure_job_attempts_total",
            "Job attempts, by how they ended",
            &["tenant", "outcome"],
        )?;
        let event_to_done = histogram(
            "tenure_event_to_done_seconds",
            "From receipt to the job's completion",
            &["tenant"],
        )?;
        let time_to_provision = histogram(
            "tenure_time_to_provision_seconds",
            "From a joiner or rehire event's receipt to all its accounts being ready",
            &["tenant"],
        )?;
        let operations = counter(
            "tenure_operations_total",
            "Connector operations, by destination, kind and status",
            &["tenant", "destination", "kind", "status"],
        )?;
        let errors = counter(
            "tenure_errors_total",
            "Errors, by destination (or `rules`) and class",
            &["tenant", "destination", "class"],
        )?;
        let webhook_deliveries = counter(
            "tenure_webhook_deliveries_total",
            "Verified webhook deliveries, by source and outcome (stored, duplicate, ping)",
            &["tenant", "source", "outcome"],
        )?;
        let webhook_refusals = counter(
            "tenure_webhook_refusals_total",
            "Webhook deliveries refused, by source and HTTP status (every one, audited or not)",
            &["source", "status"],
        )?;
        let webhook_ack_seconds = histogram(
            "tenure_webhook_ack_seconds",
            "From a webhook delivery's arrival to its durable acknowledgement",
            &["source"],
        )?;
        let enrichments = counter(
            "tenure_enrichments_total",
            "Enrichment attempts of stored deliveries, by source and how they ended",
            &["tenant", "source", "outcome"],
        )?;
        let plugin_truncations = IntGauge::new(
            "tenure_plugin_output_truncated_total",
            "Plugin-returned values cut to the host's caps since start",
        )?;
        registry.register(Box::new(plugin_truncations.clone()))?;
        let plugin_calls_running = IntGaugeVec::new(
            Opts::new(
                "tenure_plugin_calls_running",
                "Plugin calls running per tenant (tenants with plugin_quota.max_concurrent_calls)",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(plugin_calls_running.clone()))?;
        let plugin_quota_refusals = IntGaugeVec::new(
            Opts::new(
                "tenure_plugin_quota_refusals_total",
                "Plugin calls put off by the tenant's quota since start, by limit \
                    (calls_per_minute, max_concurrent_calls)",
            ),
            &["tenant", "limit"],
        )?;
        registry.register(Box::new(plugin_quota_refusals.clone()))?;
        let in_flight = IntGauge::new("tenure_jobs_in_flight", "Jobs being applied now")?;
        registry.register(Box::new(in_flight.clone()))?;
        let hosts_alive = IntGauge::new(
            "tenure_hosts_alive",
            "Hosts of the deployment holding their lease on themselves, this one included",
        )?;
        hosts_alive.set(1);
        registry.register(Box::new(hosts_alive.clone()))?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("tenure_queue_jobs", "Jobs per state"),
            &["tenant", "state"],
        )?;
        registry.register(Box::new(queue_depth.clone()))?;
        let kpi = GaugeVec::new(
            Opts::new(
                "tenure_kpi",
                "Key indicators: first_day_access_rate, errors_per_1000_events, \
                    time_to_provision_p50_seconds",
            ),
            &["tenant", "kpi"],
        )?;
        registry.register(Box::new(kpi.clone()))?;
        Ok(Metrics {
            registry,
            events,
            ack_seconds,
            in_flight,
            hosts_alive,
            attempts,
            event_to_done,
            time_to_provision,
            operations,
            errors,
            queue_depth,
            kpi,
            webhook_deliveries,
            webhook_refusals,
            webhook_ack_seconds,
            enrichments,
            plugin_truncations,
            plugin_calls_running,
            plugin_quota_refusals,
            store_gauges_read: std::sync::Mutex::new(None),
        })
    }

    /// An event taken in (`accepted` or `duplicate`), with its time to acknowledge.
    pub fn event_received(&self, tenant: &str, intake: &Intake, ack_seconds: f64) {
        let outcome = match intake {
            Intake::Accepted { .. } => "accepted",
            Intake::Duplicate { .. } => "duplicate",
        };
        self.events.with_label_values(&[tenant, outcome]).inc();
        self.ack_seconds.with_label_values(&[tenant]).observe(ack_seconds);
    }

    /// An attempt's end; a completed job also counts its time from receipt to done
    /// (and, for a hire, its time to provision).
    pub fn attempt_ended(&self, tenant: &str, finish: &Finish, kind: RecordKind, since_receipt_ms: i64) {
        let outcome = match finish {
            Finish::Completed => "completed",
            Finish::Retry { .. } => "retry",
            Finish::Dead { .. } => "dead",
            Finish::Held { .. } => "held",
        };
        self.attempts.with_label_values(&[tenant, outcome]).inc();
        if matches!(finish, Finish::Completed) {
            let secs = since_receipt_ms.max(0) as f64 / 1000.0;
            self.event_to_done.with_label_values(&[tenant]).observe(secs);
            if kind.is_hire() {
                self.time_to_provision.with_label_values(&[tenant]).observe(secs);
            }
        }
    }

    /// A connector operation in a destination (`done`, `failed` or `dry-run`).
    pub fn operation(&self, tenant: &str, destination: &str, kind: OperationKind, status: OperationStatus) {
        self.operations
            .with_label_values(&[tenant, destination, kind.as_str(), status.as_str()])
            .inc();
    }

    /// A failure in a destination (or `rules`, `lifecycle`), by class.
    pub fn error(&self, tenant: &str, destination: &str, class: crate::FailureClass) {
        self.errors
            .with_label_values(&[tenant, destination, class.as_str()])
            .inc();
    }

    /// A verified webhook delivery (`stored`, `duplicate` or `ping`) and its time to acknowledge.
    pub fn webhook_delivery(&self, tenant: &str, source: &str, outcome: &str, ack_seconds: f64) {
        self.webhook_deliveries
            .with_label_values(&[tenant, source, outcome])
            .inc();
        self.webhook_ack_seconds
            .with_label_values(&[source])
            .observe(ack_seconds);
    }

    /// A refused webhook delivery, by its HTTP status.
    pub fn webhook_refused(&self, source: &str, status: u16) {
        self.webhook_refusals
            .with_label_values(&[source, &status.to_string()])
            .inc();
    }

    /// An enrichment attempt's end (`done`, `rejected`, `dead`, `retry`, `rate-limited`).
    pub fn enrichment(&self, tenant: &str, source: &str, outcome: &str) {
        self.enrichments
            .with_label_values(&[tenant, source, outcome])
            .inc();
    }

    /// Whether the store-backed gauges are due for a refresh at `now` (then marks them read).
    fn store_gauges_due(&self, now: std::time::Instant) -> bool {
        let mut last = self.store_gauges_read.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < STORE_GAUGE_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Renders the text exposition format, refreshing the store-backed gauges (queue depth,
    /// KPIs: whole-table counts) at most every [`STORE_GAUGE_INTERVAL`], however often
    /// `/metrics` is scraped.
    pub async fn render(
        &self,
        store: &dyn Store,
        tenants: &[String],
        runtime: &tenure_runtime::Runtime,
    ) -> String {
        self.plugin_truncations
            .set(i64::try_from(tenure_runtime::bounds::truncations()).unwrap_or(i64::MAX));
        for (tenant, running, refused) in runtime.quota_usage() {
            if let Some(running) = running {
                self.plugin_calls_running
                    .with_label_values(&[tenant.as_str()])
                    .set(i64::try_from(running).unwrap_or(i64::MAX));
            }
            for (limit, count) in [
                ("calls_per_minute", &refused.rate_refused),
                ("max_concurrent_calls", &refused.concurrency_refused),
            ] {
                let n = count.load(std::sync::atomic::Ordering::Relaxed);
                self.plugin_quota_refusals
                    .with_label_values(&[tenant.as_str(), limit])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        if self.store_gauges_due(std::time::Instant::now()) {
            self.refresh_store_gauges(store, tenants).await;
        }
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    async fn refresh_store_gauges(&self, store: &dyn Store, tenants: &[String]) {
        if let Ok(depth) = store.queue_depth().await {
            self.queue_depth.reset();
            for d in depth {
                self.queue_depth
                    .with_label_values(&[d.tenant.as_str(), d.state.as_str()])
                    .set(d.jobs);
            }
        }
        for tenant in tenants {
            if let Ok(k) = store.kpis(tenant).await {
                let set = |name: &str, v: f64| self.kpi.with_label_values(&[tenant.as_str(), name]).set(v);
                if let Some(rate) = k.first_day_access_rate {
                    set("first_day_access_rate", rate);
                }
                set("errors_per_1000_events", k.errors_per_1000_events);
                if let Some(p50) = k.time_to_provision_p50_ms {
                    set("time_to_provision_p50_seconds", p50 as f64 / 1000.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod gauge_tests {
    #[test]
    fn scrapes_read_the_store_at_most_once_per_interval() {
        let m = super::Metrics::new().expect("metrics");
        let start = std::time::Instant::now();
        assert!(m.store_gauges_due(start), "the first scrape reads the store");
        assert!(
            !m.store_gauges_due(start + std::time::Duration::from_secs(1)),
            "a scrape soon after does not"
        );
        assert!(
            m.store_gauges_due(start + super::STORE_GAUGE_INTERVAL),
            "one after the interval does"
        );
    }
}
