//! Signed webhooks from source systems, vendor-neutral: `POST /hooks/{source}`
//! (and `/hooks/lever/{source}`, as before). Each webhook source's config names
//! its verification [`Scheme`] (`lever-hmac` first); the scheme checks the
//! delivery without I/O (signature in constant time, freshness, a token) and says
//! what it is. The next HR vendor's signed webhooks are a scheme and a plugin,
//! not a route.
//!
//! An accepted delivery is stored raw, with its token and a digest of its
//! content, in one transaction, and only then answered 200: milliseconds, never
//! waiting on the vendor's API. Enrichment (the source plugin's `parse`) runs
//! afterwards as a queued attempt with retries ([`crate::deliveries`]). A
//! redelivery of stored content is answered 200 and enriched no second time; a
//! token seen with other content is refused as a replay.
//!
//! Every refusal is counted in `tenure_webhook_refusals_total` and recorded in the
//! audit, sampled per source (a burst, then one a second, each noting how many
//! were left out) so an unauthenticated flood cannot fill the audit chain.

pub mod lever;

use crate::Pipeline;
use crate::audit_events::{AuditEvent, WebhookRejected, WebhookStored};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;
use tenure_capabilities::Secret;
use tenure_store::{DeliveryIntake, NewDelivery};

/// How a source's webhooks are signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SchemeKind {
    /// Lever: HMAC-SHA256 of the delivery's token and `triggeredAt`, in the body.
    #[default]
    LeverHmac,
}

impl SchemeKind {
    /// The scheme's implementation.
    pub fn scheme(self) -> &'static dyn Scheme {
        match self {
            SchemeKind::LeverHmac => &lever::LeverHmac,
        }
    }
}

/// `[tenants.T.sources.webhook]`: how a source's webhooks are verified.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The verification scheme (default `lever-hmac`).
    #[serde(default)]
    pub scheme: SchemeKind,
    /// Signature key per vendor event (`candidateHired = "${secret:lever-hired}"`); `"*"` for any
    /// other event. Lever issues one token per webhook.
    pub signature_tokens: BTreeMap<String, Secret>,
    /// A delivery older or newer than this (by the vendor's time) is refused.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Largest body accepted.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Deliveries accepted for checking per second; more are answered 429 with
    /// `Retry-After` before their body is read (counted, and audited sampled).
    #[serde(default)]
    pub rate_limit: WebhookRateLimit,
}

/// `[tenants.T.sources.webhook.rate_limit]`: a token bucket per source, for the whole
/// deployment: with several hosts behind a balancer each admits its share (the hosts count
/// each other through the store).
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookRateLimit {
    /// Deliveries per second, sustained.
    pub per_second: f64,
    /// Deliveries at once after a quiet spell.
    pub burst: u32,
}

impl Default for WebhookRateLimit {
    fn default() -> Self {
        // Lever sends far less; a flood (or a sender's retry storm) is held at the door.
        WebhookRateLimit {
            per_second: 50.0,
            burst: 200,
        }
    }
}

fn default_max_age() -> u64 {
    300
}

fn default_max_body() -> usize {
    256 * 1024
}

/// What a verified delivery is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The delivery's own token (replay protection).
    pub token: String,
    /// A digest of what it says (redelivery detection).
    pub digest: String,
    /// The vendor's event name.
    pub event: String,
    /// When the vendor sent it (ms since the epoch).
    pub sent_ms: u64,
    /// A vendor's test request: verified, nothing to enrich.
    pub ping: bool,
}

/// A vendor's way of signing webhooks. Verification does no I/O.
pub trait Scheme: Send + Sync {
    /// Checks a delivery against the source's config at `now_ms`.
    fn verify(
        &self,
        config: &WebhookConfig,
        headers: &[(String, String)],
        body: &[u8],
        now_ms: i64,
    ) -> Result<Verified, Refusal>;
}

/// Why a delivery was refused; `status` is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub field: String,
    pub reason: String,
}

impl Refusal {
    pub fn new(status: u16, field: &str, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The answer to an unauthenticated sender when the store failed: generic (the detail,
/// which may name tables or tenants, goes to the log only).
fn store_refusal(source: &str, e: &tenure_store::StoreError) -> Refusal {
    tracing::error!(source, error = %e, "cannot store a webhook delivery");
    Refusal::new(503, "store", "the delivery could not be stored; retry")
}

/// What an accepted delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A vendor's test request: verified, nothing to enrich.
    Ping,
    /// Stored; its events come from enrichment.
    Stored { delivery_id: i64 },
    /// The same content was stored before (the sender retrying): nothing new.
    Duplicate { delivery_id: i64 },
}

/// Audit records of refusals per source: a burst of this many, then one a second.
const REFUSAL_AUDIT_BURST: f64 = 20.0;

/// Samples refusals for the audit, per (tenant, source).
#[derive(Default)]
pub(crate) struct RefusalSampler {
    buckets: Mutex<HashMap<(String, String), RefusalBucket>>,
}

struct RefusalBucket {
    tokens: f64,
    at: Instant,
    /// Refusals left out of the audit since the last one written.
    left_out: u64,
}

/// The deliveries each webhook source may still send now, per source.
#[derive(Default)]
pub(crate) struct DeliveryLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl DeliveryLimiter {
    /// Takes one delivery from `source`'s bucket, this host's share of the deployment's limit
    /// (one of `hosts`); false when it is empty.
    fn admit(&self, source: &str, limit: WebhookRateLimit, hosts: u32) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let hosts = f64::from(hosts.max(1));
        let burst = (f64::from(limit.burst.max(1)) / hosts).max(1.0);
        let per_second = limit.per_second.max(0.0) / hosts;
        let (tokens, at) = buckets.entry(source.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl RefusalSampler {
    /// Whether this refusal is written to the audit: `Some(left out before it)`, or
    /// `None` when it is only counted.
    fn admit(&self, tenant: &str, source: &str) -> Option<u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets
            .entry((tenant.to_string(), source.to_string()))
            .or_insert(RefusalBucket {
                tokens: REFUSAL_AUDIT_BURST,
                at: now,
                left_out: 0,
            });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64()).min(REFUSAL_AUDIT_BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.left_out))
        } else {
            b.left_out += 1;
            None
        }
    }
}

impl Pipeline {
    /// The tenant and config of the source a webhook URL names.
    pub(crate) fn webhook_source(
        &self,
        source: &str,
    ) -> Option<(&str, &crate::SourceConfig, &WebhookConfig)> {
        self.config.tenants.iter().find_map(|(tenant, t)| {
            t.sources
                .iter()
                .find(|s| s.name == source)
                .and_then(|s| s.webhook.as_ref().map(|w| (tenant.as_str(), s, w)))
        })
    }

    /// The largest body a webhook source accepts (`None`: no such source).
    pub fn webhook_body_limit(&self, source: &str) -> Option<usize> {
        self.webhook_source(source).map(|(_, _, w)| w.max_body_bytes)
    }

    /// Admits a delivery to `source` under its rate limit, before its body is read;
    /// `Err` is the 429 to answer (counted, and audited sampled).
    pub async fn admit_webhook(&self, source: &str) -> Result<(), Refusal> {
        let Some((tenant, _, config)) = self.webhook_source(source) else {
            return Err(self.refuse_unknown_webhook(source));
        };
        let hosts = self.live_hosts();
        if self.webhook_rates.admit(source, config.rate_limit, hosts) {
            return Ok(());
        }
        let share = if hosts > 1 {
            format!(" over the deployment's {hosts} hosts")
        } else {
            String::new()
        };
        let r = Refusal::new(
            429,
            "rate",
            format!(
                "more than {} deliveries per second (bursts of {}){share}; retry later",
                config.rate_limit.per_second, config.rate_limit.burst
            ),
        );
        Err(self.refuse(tenant, source, r).await)
    }

    /// Refuses a delivery to a source that does not exist (counted; nothing to audit it under).
    pub fn refuse_unknown_webhook(&self, source: &str) -> Refusal {
        self.metrics.webhook_refused("unknown", 404);
        Refusal::new(404, "source", format!("no webhook source named {source:?}"))
    }

    /// Refuses (and records) a delivery whose body is over the source's limit, unread.
    pub async fn refuse_oversized_webhook(&self, source: &str) -> Refusal {
        let Some((tenant, _, config)) = self.webhook_source(source) else {
            return self.refuse_unknown_webhook(source);
        };
        let r = Refusal::new(
            413,
            "body",
            format!("more than the {} bytes allowed", config.max_body_bytes),
        );
        self.refuse(tenant, source, r).await
    }

    /// Counts a refusal and records it in the audit (sampled per source); returns it.
    async fn refuse(&self, tenant: &str, source: &str, refusal: Refusal) -> Refusal {
        self.metrics.webhook_refused(source, refusal.status);
        if let Some(left_out) = self.refusals.admit(tenant, source) {
            let audit = WebhookRejected {
                delivery: None,
                event: None,
                status: refusal.status,
                field: &refusal.field,
                reason: &refusal.reason,
                left_out_before: Some(left_out),
            }
            .record(tenant, &format!("webhook:{source}"));
            if let Err(e) = self.store.append_audit(vec![audit]).await {
                tracing::error!(error = %e, source, "cannot audit a refused webhook");
            }
        }
        tracing::info!(source, status = refusal.status, field = %refusal.field, reason = %refusal.reason,
            "webhook delivery refused");
        refusal
    }

    /// Receives a delivery for `source`: verified by the source's scheme, then stored
    /// raw with its token and content digest in one transaction, and answered; the
    /// source's plugin enriches it afterwards. `Err` carries the HTTP answer.
    pub async fn receive_webhook(
        &self,
        source: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Accepted, Refusal> {
        let started = Instant::now();
        let Some((tenant, _, config)) = self.webhook_source(source) else {
            return Err(self.refuse_unknown_webhook(source));
        };
        if body.len() > config.max_body_bytes {
            let r = Refusal::new(
                413,
                "body",
                format!(
                    "{} bytes is more than the {} allowed",
                    body.len(),
                    config.max_body_bytes
                ),
            );
            return Err(self.refuse(tenant, source, r).await);
        }
        let verified = match config
            .scheme
            .scheme()
            .verify(config, &headers, body, crate::now_ms())
        {
            Ok(v) => v,
            Err(r) => return Err(self.refuse(tenant, source, r).await),
        };
        let ping = verified.ping;
        let delivery = NewDelivery {
            tenant: tenant.to_string(),
            source: source.to_string(),
            token: verified.token.clone(),
            digest: verified.digest.clone(),
            event: verified.event.clone(),
            headers,
            body: body.to_vec(),
            keep_token_ms: i64::try_from(config.max_age_secs.saturating_mul(2000)).unwrap_or(i64::MAX),
            ping,
            max_attempts: self.config.queue.enrich_max_attempts,
            audit: vec![
                WebhookStored {
                    ping,
                    event: &verified.event,
                    triggered_at: verified.sent_ms,
                }
                .record(tenant, &format!("webhook:{source}")),
            ],
        };
        let outcome = match self.store.store_delivery(delivery).await {
            Ok(DeliveryIntake::Stored { delivery_id }) if ping => Ok((Accepted::Ping, delivery_id)),
            Ok(DeliveryIntake::Stored { delivery_id }) => Ok((Accepted::Stored { delivery_id }, delivery_id)),
            Ok(DeliveryIntake::Duplicate { delivery_id }) => {
                Ok((Accepted::Duplicate { delivery_id }, delivery_id))
            }
            Ok(DeliveryIntake::Replay) => Err(Refusal::new(
                409,
                "token",
                "this delivery's token was already accepted with other content (a replay)",
            )),
            Err(e) => Err(store_refusal(source, &e)),
        };
        let (accepted, _) = match outcome {
            Ok(o) => o,
            Err(r) => return Err(self.refuse(tenant, source, r).await),
        };
        let label = match accepted {
            Accepted::Ping => "ping",
            Accepted::Stored { .. } => "stored",
            Accepted::Duplicate { .. } => "duplicate",
        };
        self.metrics
            .webhook_delivery(tenant, source, label, started.elapsed().as_secs_f64());
        if matches!(accepted, Accepted::Stored { .. }) {
            self.deliveries_waiting
                .store(true, std::sync::atomic::Ordering::Release);
            self.wake.notify_one();
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod store_refusal_tests {
    #[test]
    fn a_store_failure_tells_the_sender_nothing_about_the_store() {
        let e =
            tenure_store::StoreError::Database("UNIQUE constraint failed: audit.seq (tenant acme)".into());
        let r = super::store_refusal("lever", &e);
        assert_eq!((r.status, r.field.as_str()), (503, "store"));
        assert!(
            !r.reason.contains("audit") && !r.reason.contains("acme"),
            "{}",
            r.reason
        );
    }
}
