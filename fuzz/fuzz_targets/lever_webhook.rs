//! Lever's webhook envelope and signature check. Half the inputs go in as they are (any
//! body: refused with a status and a field, never a panic); the other half are first
//! wrapped in a correctly signed envelope, so the fuzzer reaches what follows the
//! signature (freshness, token, ping, the content digest) too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use tenure_capabilities::Secret;
use tenure_pipeline::webhooks::lever::lever_signature;
use tenure_pipeline::webhooks::{SchemeKind, WebhookConfig, WebhookRateLimit};

const KEY: &str = "fuzz-signature-token";
const NOW_MS: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let config = WebhookConfig {
        scheme: SchemeKind::LeverHmac,
        signature_tokens: BTreeMap::from([("*".to_string(), Secret::new(KEY))]),
        max_age_secs: 300,
        max_body_bytes: 256 * 1024,
        rate_limit: WebhookRateLimit::default(),
    };
    let scheme = SchemeKind::LeverHmac.scheme();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        // token \0 event \0 data-json, with triggeredAt near now.
        let text = String::from_utf8_lossy(rest);
        let mut parts = text.splitn(3, '\0');
        let token = parts.next().unwrap_or_default();
        let event = parts.next().unwrap_or("candidateHired");
        let payload: serde_json::Value =
            serde_json::from_str(parts.next().unwrap_or("{}")).unwrap_or(serde_json::Value::Null);
        let triggered_at = (NOW_MS as u64).saturating_sub(u64::from(mode) * 1_000);
        serde_json::json!({
            "triggeredAt": triggered_at,
            "event": event,
            "token": token,
            "signature": lever_signature(KEY, token, triggered_at),
            "data": payload,
        })
        .to_string()
        .into_bytes()
    };
    match scheme.verify(&config, &[], &body, NOW_MS) {
        Ok(verified) => assert_eq!(verified.digest.len(), 64),
        Err(refusal) => {
            assert!((400..500).contains(&refusal.status), "{refusal:?}");
            assert!(!refusal.field.is_empty(), "{refusal:?}");
        }
    }
});
