//! Signed webhooks from source systems. Lever signs a delivery in its body:
//! `signature = lower_hex(HMAC-SHA256(key = the webhook's signature token,
//! msg = token ‖ triggeredAt as a plain integer))`. A delivery is accepted only
//! when the signature matches (constant-time), `triggeredAt` is fresh, and its
//! `token` was never accepted before (remembered in the store, in the same
//! transaction as the events, so a crash never loses or doubles a delivery).
//! Every refusal is audited with its reason and enqueues nothing.

use crate::event::InvalidEvent;
use crate::{Pipeline, now_ms};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::collections::BTreeMap;
use tenure_capabilities::Secret;
use tenure_runtime::wit;
use tenure_store::{AuditRecord, Delivery, Intake};

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
#[derive(Debug)]
pub enum Accepted {
    /// Lever's test request (empty `data`): verified, nothing to enqueue.
    Ping,
    Stored(Vec<Intake>),
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
    fn webhook_source(&self, source: &str) -> Option<(&str, &crate::SourceConfig, &WebhookConfig)> {
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

    /// Refuses (and audits) a delivery whose body is over the source's limit, unread.
    pub async fn refuse_oversized_webhook(&self, source: &str) -> Refusal {
        let Some((tenant, _, config)) = self.webhook_source(source) else {
            return Refusal::new(404, "source", format!("no webhook source named {source:?}"));
        };
        let r = Refusal::new(
            413,
            "body",
            format!("more than the {} bytes allowed", config.max_body_bytes),
        );
        let audit = self.refused(tenant, source, &r);
        if let Err(e) = self.store.append_audit(vec![audit]).await {
            tracing::error!(error = %e, "cannot audit a refused webhook");
        }
        r
    }

    fn refused(&self, tenant: &str, source: &str, refusal: &Refusal) -> AuditRecord {
        AuditRecord {
            tenant: tenant.into(),
            kind: "webhook.rejected".into(),
            actor: format!("webhook:{source}"),
            person_key: None,
            destination: None,
            event_id: None,
            job_id: None,
            data: json!({ "status": refusal.status, "field": refusal.field, "reason": refusal.reason }),
        }
    }

    /// Receives a Lever delivery for `source`: verified, then turned into person
    /// events by the source's plugin (which enriches them through Lever's API),
    /// then stored with its token in one transaction. `Err` carries the HTTP answer.
    pub async fn receive_lever_webhook(
        &self,
        source: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Accepted, Refusal> {
        let Some((tenant, source_config, config)) = self.webhook_source(source) else {
            return Err(Refusal::new(
                404,
                "source",
                format!("no webhook source named {source:?}"),
            ));
        };
        let (tenant, plugin) = (tenant.to_string(), source_config.plugin.clone());
        let envelope = match verify(config, body, now_ms()) {
            Ok(e) => e,
            Err(r) => {
                let audit = self.refused(&tenant, source, &r);
                if let Err(e) = self.store.append_audit(vec![audit]).await {
                    tracing::error!(error = %e, "cannot audit a refused webhook");
                }
                return Err(r);
            }
        };
        let delivery = Delivery {
            tenant: tenant.clone(),
            source: source.to_string(),
            token: envelope.token.clone(),
            keep_ms: i64::try_from(config.max_age_secs.saturating_mul(2000)).unwrap_or(i64::MAX),
        };
        let received = AuditRecord {
            tenant: tenant.clone(),
            kind: "webhook.received".into(),
            actor: format!("webhook:{source}"),
            person_key: None,
            destination: None,
            event_id: None,
            job_id: None,
            data: json!({ "event": envelope.event, "triggered_at": envelope.triggered_at }),
        };
        let ping = envelope.data.as_object().is_some_and(|m| m.is_empty());
        let events = if ping {
            Vec::new()
        } else {
            let handle = self
                .runtime
                .plugin(&tenant, &plugin)
                .map_err(|e| Refusal::new(503, "source", e.to_string()))?;
            let payload = wit::source::Payload {
                content_type: "application/json".into(),
                headers,
                body: body.to_vec(),
            };
            handle.parse(&payload).await.map_err(|e| {
                // A refusal from the plugin is the delivery's fault (4xx); anything else
                // (Lever's API down, rate-limited) is worth Lever's retry (503).
                match &e {
                    tenure_runtime::CallError::Plugin {
                        error: wit::PluginError::InvalidInput(i),
                        ..
                    } => Refusal::new(422, &i.field, i.reason.clone()),
                    other => Refusal::new(503, "source", other.to_string()),
                }
            })?
        };
        let mut new = Vec::new();
        for e in events {
            let valid = crate::sources::validate_plugin_event(source, e)
                .map_err(|e: InvalidEvent| Refusal::new(422, &e.field, e.reason))?;
            let key = format!("{source}:{}", valid.event.source_record_id);
            new.push(
                self.new_event(&tenant, &format!("source:{source}"), key, valid)
                    .map_err(|e| Refusal::new(422, "event", e.to_string()))?,
            );
        }
        match self.store.intake_delivery(new, delivery, vec![received]).await {
            Ok(Some(intake)) => {
                self.wake.notify_one();
                Ok(if ping {
                    Accepted::Ping
                } else {
                    Accepted::Stored(intake)
                })
            }
            Ok(None) => {
                let r = Refusal::new(
                    409,
                    "token",
                    "this delivery's token was already accepted (a replay)",
                );
                let _ = self
                    .store
                    .append_audit(vec![self.refused(&tenant, source, &r)])
                    .await;
                Err(r)
            }
            Err(e) => Err(Refusal::new(503, "store", e.to_string())),
        }
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
