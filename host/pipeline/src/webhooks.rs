//! Signed webhooks from source systems. Lever signs a delivery in its body:
//! `signature = lower_hex(HMAC-SHA256(key = the webhook's signature token,
//! msg = token ‖ triggeredAt as a plain integer))`. A delivery is accepted only
//! when the signature matches (constant-time), `triggeredAt` is fresh, and its
//! `token` was never accepted with other content before.
//!
//! An accepted delivery is stored raw, with its token and a digest of its
//! content, in one transaction, and only then answered 200: milliseconds, never
//! waiting on the vendor's API. Enrichment (the source plugin's `parse`) runs
//! afterwards as a queued attempt with retries ([`crate::deliveries`]). A
//! redelivery of stored content is answered 200 and enriched no second time.
//!
//! Every refusal is counted in `tenure_webhook_refusals_total` and recorded in the
//! audit, sampled per source (a burst, then one a second, each noting how many
//! were left out) so an unauthenticated flood cannot fill the audit chain.

use crate::{Pipeline, now_ms};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;
use tenure_capabilities::Secret;
use tenure_store::{AuditRecord, DeliveryIntake, NewDelivery};

/// `[tenants.T.sources.webhook]`: how a source's webhooks are verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Signature token per Lever event (`candidateHired = "${secret:lever-hired}"`); `"*"` for any
    /// other event. Lever issues one token per webhook.
    pub signature_tokens: BTreeMap<String, Secret>,
    /// A delivery whose `triggeredAt` is further than this from now is refused.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Largest body accepted.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_age() -> u64 {
    300
}

fn default_max_body() -> usize {
    256 * 1024
}

/// Lever's delivery envelope. `triggeredAt` must be an integer (it is signed as one).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    triggered_at: u64,
    event: String,
    token: String,
    signature: String,
    data: serde_json::Value,
}

/// Why a delivery was refused; `status` is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub field: String,
    pub reason: String,
}

impl Refusal {
    fn new(status: u16, field: &str, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What an accepted delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Lever's test request (empty `data`): verified, nothing to enrich.
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

/// What a delivery says, hashed: its event, time and data (keys in order).
fn content_digest(envelope: &Envelope) -> String {
    let mut h = Sha256::new();
    h.update(envelope.event.as_bytes());
    h.update(b"\n");
    h.update(envelope.triggered_at.to_string().as_bytes());
    h.update(b"\n");
    h.update(envelope.data.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Lever's signature of a delivery: lowercase hex HMAC-SHA256 of `token ‖ triggeredAt`.
pub fn lever_signature(signature_token: &str, token: &str, triggered_at: u64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signature_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    mac.update(triggered_at.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the delivery's, compared in constant time.
fn signature_matches(signature_token: &str, token: &str, triggered_at: u64, signature: &str) -> bool {
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    if signature.len() != 64 || signature.chars().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signature_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(token.as_bytes());
    mac.update(triggered_at.to_string().as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// Parses and verifies a Lever delivery (no I/O): the envelope, the signature and freshness.
fn verify(config: &WebhookConfig, body: &[u8], now_ms: i64) -> Result<Envelope, Refusal> {
    if body.len() > config.max_body_bytes {
        return Err(Refusal::new(
            413,
            "body",
            format!(
                "{} bytes is more than the {} allowed",
                body.len(),
                config.max_body_bytes
            ),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let envelope: Envelope = serde_path_to_error::deserialize(de).map_err(|e| {
        // Broken JSON is the body's fault; a wrong or missing value names its field.
        let field = match e.inner().classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "body".to_string(),
            _ => crate::event::error_field(e.path().to_string(), &e.inner().to_string()),
        };
        Refusal::new(400, &field, e.into_inner().to_string())
    })?;
    let key = config
        .signature_tokens
        .get(&envelope.event)
        .or_else(|| config.signature_tokens.get("*"))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Refusal::new(
                401,
                "event",
                format!("no signature token is configured for {:?}", envelope.event),
            )
        })?;
    if !signature_matches(
        key.expose(),
        &envelope.token,
        envelope.triggered_at,
        &envelope.signature,
    ) {
        return Err(Refusal::new(
            401,
            "signature",
            "does not match the delivery's token and triggeredAt",
        ));
    }
    let age_ms = now_ms.abs_diff(i64::try_from(envelope.triggered_at).unwrap_or(i64::MAX));
    if age_ms > config.max_age_secs.saturating_mul(1000) {
        return Err(Refusal::new(
            401,
            "triggeredAt",
            format!(
                "{} ms from now, more than the {} s allowed",
                age_ms, config.max_age_secs
            ),
        ));
    }
    if envelope.token.is_empty() || envelope.token.len() > 256 {
        return Err(Refusal::new(400, "token", "must be 1 to 256 characters"));
    }
    Ok(envelope)
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

    /// Refuses a delivery to a source that does not exist (counted; nothing to audit it under).
    pub fn refuse_unknown_webhook(&self, source: &str) -> Refusal {
        self.metrics
            .webhook_refusals
            .with_label_values(&["unknown", "404"])
            .inc();
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
        self.metrics
            .webhook_refusals
            .with_label_values(&[source, &refusal.status.to_string()])
            .inc();
        if let Some(left_out) = self.refusals.admit(tenant, source) {
            let audit = AuditRecord {
                tenant: tenant.into(),
                kind: "webhook.rejected".into(),
                actor: format!("webhook:{source}"),
                data: json!({ "status": refusal.status, "field": refusal.field, "reason": refusal.reason,
                              "left_out_before": left_out }),
                ..AuditRecord::default()
            };
            if let Err(e) = self.store.append_audit(vec![audit]).await {
                tracing::error!(error = %e, source, "cannot audit a refused webhook");
            }
        }
        tracing::info!(source, status = refusal.status, field = %refusal.field, reason = %refusal.reason,
            "webhook delivery refused");
        refusal
    }

    /// Receives a Lever delivery for `source`: verified, then stored raw with its token
    /// and content digest in one transaction, and answered; the source's plugin enriches
    /// it afterwards. `Err` carries the HTTP answer.
    pub async fn receive_lever_webhook(
        &self,
        source: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Accepted, Refusal> {
        let started = Instant::now();
        let Some((tenant, _, config)) = self.webhook_source(source) else {
            return Err(self.refuse_unknown_webhook(source));
        };
        let envelope = match verify(config, body, now_ms()) {
            Ok(e) => e,
            Err(r) => return Err(self.refuse(tenant, source, r).await),
        };
        let ping = envelope.data.as_object().is_some_and(|m| m.is_empty());
        let delivery = NewDelivery {
            tenant: tenant.to_string(),
            source: source.to_string(),
            token: envelope.token.clone(),
            digest: content_digest(&envelope),
            event: envelope.event.clone(),
            headers,
            body: body.to_vec(),
            keep_token_ms: i64::try_from(config.max_age_secs.saturating_mul(2000)).unwrap_or(i64::MAX),
            ping,
            max_attempts: self.config.queue.enrich_max_attempts,
            audit: vec![AuditRecord {
                tenant: tenant.into(),
                kind: if ping { "webhook.ping" } else { "webhook.received" }.into(),
                actor: format!("webhook:{source}"),
                data: json!({ "event": envelope.event, "triggered_at": envelope.triggered_at }),
                ..AuditRecord::default()
            }],
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
            Err(e) => Err(Refusal::new(503, "store", e.to_string())),
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
            .webhook_deliveries
            .with_label_values(&[tenant, source, label])
            .inc();
        self.metrics
            .webhook_ack_seconds
            .with_label_values(&[source])
            .observe(started.elapsed().as_secs_f64());
        if matches!(accepted, Accepted::Stored { .. }) {
            self.deliveries_waiting
                .store(true, std::sync::atomic::Ordering::Release);
            self.wake.notify_one();
        }
        Ok(accepted)
    }
}

/// Independent test vectors live in the integration tests; these pin the parsing rules.
#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebhookConfig {
        WebhookConfig {
            signature_tokens: [("*".to_string(), Secret::new("key"))].into(),
            max_age_secs: 300,
            max_body_bytes: 1024,
        }
    }

    fn body(token: &str, at: u64, sig: &str) -> Vec<u8> {
        json!({ "triggeredAt": at, "event": "candidateHired", "token": token, "signature": sig, "data": {} })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_fresh_signed_delivery_passes_and_everything_else_is_refused_with_a_reason() {
        let now = 1_700_000_000_000_i64;
        let at = now as u64;
        let sig = lever_signature("key", "tok", at);
        assert!(verify(&config(), &body("tok", at, &sig), now).is_ok());
        let refused = |b: Vec<u8>| verify(&config(), &b, now).unwrap_err();
        assert_eq!(refused(body("tok", at, &sig.to_uppercase())).field, "signature");
        assert_eq!(refused(body("tok2", at, &sig)).field, "signature");
        assert_eq!(refused(body("tok", at + 1, &sig)).field, "signature");
        let old = at - 301_000;
        assert_eq!(
            refused(body("tok", old, &lever_signature("key", "tok", old))).field,
            "triggeredAt"
        );
        assert_eq!(refused(b"{not json".to_vec()).status, 400);
        let float = br#"{"triggeredAt": 1.5, "event": "x", "token": "t", "signature": "s", "data": {}}"#;
        assert_eq!(refused(float.to_vec()).field, "triggeredAt");
        let missing = br#"{"triggeredAt": 1, "event": "x", "signature": "s", "data": {}}"#;
        assert_eq!(refused(missing.to_vec()).field, "token");
        assert_eq!(refused(vec![b' '; 2048]).status, 413);
    }
}
