//! Lever's scheme (`lever-hmac`): the signature is in the body,
//! `signature = lower_hex(HMAC-SHA256(key = the webhook's signature token,
//! msg = token ‖ triggeredAt as a plain integer))`. A delivery is accepted only
//! when the signature matches (constant-time), `triggeredAt` is fresh, and its
//! token is 1 to 256 characters. An empty `data` is Lever's test request.

use super::{Refusal, Scheme, Verified, WebhookConfig};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The `lever-hmac` scheme.
pub struct LeverHmac;

impl Scheme for LeverHmac {
    fn verify(
        &self,
        config: &WebhookConfig,
        _headers: &[(String, String)],
        body: &[u8],
        now_ms: i64,
    ) -> Result<Verified, Refusal> {
        let envelope = verify(config, body, now_ms)?;
        Ok(Verified {
            digest: content_digest(&envelope),
            ping: envelope.data.as_object().is_some_and(|m| m.is_empty()),
            token: envelope.token,
            event: envelope.event,
            sent_ms: envelope.triggered_at,
        })
    }
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

/// Independent test vectors live in the integration tests; these pin the parsing rules.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tenure_capabilities::Secret;

    fn config() -> WebhookConfig {
        WebhookConfig {
            scheme: super::super::SchemeKind::LeverHmac,
            signature_tokens: [("*".to_string(), Secret::new("key"))].into(),
            max_age_secs: 300,
            max_body_bytes: 1024,
            rate_limit: Default::default(),
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
