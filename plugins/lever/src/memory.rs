//! What the plugin remembers between calls, in its key-value store: which
//! opportunities it reported as hires (so that a hire reversed later is
//! withdrawn), each contact's newest hire (so that a second hire is a rehire),
//! and the archive reasons of type `hired`.

use crate::api;
use serde_json::Value as Json;
use tenure_sdk::host::{clock, kv};
use tenure_sdk::types::PluginError;

/// Archive reasons are fetched at most this often.
const REASONS_TTL_MS: i64 = 10 * 60 * 1000;

/// The contact an opportunity was reported hired for.
pub fn hired_contact(opportunity: &str) -> Option<String> {
    text(&format!("hired/{opportunity}")).or_else(|| text(&format!("contact-of/{opportunity}")))
}

/// Remembers a reported hire: the opportunity's contact, and the contact's newest hire.
pub fn remember_hire(opportunity: &str, contact: &str, hired_at_ms: i64) {
    let _ = kv::set(&format!("hired/{opportunity}"), contact.as_bytes());
    let newer = newest_hire(contact).is_none_or(|(_, at)| hired_at_ms >= at);
    if newer {
        let _ = kv::set(
            &format!("hire-of/{contact}"),
            format!("{opportunity}|{hired_at_ms}").as_bytes(),
        );
    }
}

/// Forgets a hire that was reversed.
pub fn forget_hire(opportunity: &str) {
    let _ = kv::remove(&format!("hired/{opportunity}"));
    let _ = kv::remove(&format!("contact-of/{opportunity}"));
}

/// A contact's newest reported hire: (opportunity, when it was hired).
pub fn newest_hire(contact: &str) -> Option<(String, i64)> {
    let value = text(&format!("hire-of/{contact}"))?;
    let (opp, at) = value.split_once('|')?;
    Some((opp.to_string(), at.parse().ok()?))
}

fn text(key: &str) -> Option<String> {
    kv::get(key)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

/// The ids of archive reasons of type `hired`, cached.
pub fn hired_reasons() -> Result<Vec<String>, PluginError> {
    let now = clock::now_ms();
    if let Ok(Some(bytes)) = kv::get("archive-reasons/hired")
        && let Ok(cached) = serde_json::from_slice::<(i64, Vec<String>)>(&bytes)
        && now - cached.0 < REASONS_TTL_MS
    {
        return Ok(cached.1);
    }
    let ids: Vec<String> = api::list("/archive_reasons?type=hired")?
        .iter()
        .filter(|r| r.get("type").and_then(Json::as_str) == Some("hired"))
        .filter_map(|r| r.get("id").and_then(Json::as_str).map(str::to_string))
        .collect();
    if let Ok(bytes) = serde_json::to_vec(&(now, &ids)) {
        let _ = kv::set("archive-reasons/hired", &bytes);
    }
    Ok(ids)
}
