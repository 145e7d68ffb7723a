//! Lever's REST API through the host's `lever` connection. The host attaches the
//! API key, keeps Lever's rate limit and waits out 429s and 503s; Lever's status
//! codes become the errors that drive the host's retries. Postings, requisitions
//! and users change rarely and many hires share them, so they are cached in the
//! plugin's key-value store for a few minutes.

use serde_json::Value as Json;
use tenure_sdk::errors::{from_http_error, from_response};
use tenure_sdk::host::{clock, http, kv};
pub use tenure_sdk::http::encode;
use tenure_sdk::types::PluginError;

const CONNECTION: &str = "lever";
/// Pages followed at most per list.
const MAX_PAGES: usize = 200;
/// How long a cached posting, requisition or user is used.
const CACHE_TTL_MS: i64 = 10 * 60 * 1000;

/// GET a path on the `lever` connection.
pub fn get(path: &str) -> Result<Json, PluginError> {
    let req = http::Request {
        connection: CONNECTION.into(),
        method: "GET".into(),
        path: path.into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
        timeout_ms: Some(15_000),
    };
    let resp = http::send(&req).map_err(|e| from_http_error(CONNECTION, e))?;
    if resp.status != 200 {
        return Err(from_response(&resp));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| PluginError::Transient(format!("Lever answered invalid JSON: {e}")))
}

/// A single object: Lever's examples nest it under `data`, some answers under `data.data`.
pub fn object(path: &str) -> Result<Json, PluginError> {
    let doc = get(path)?;
    let data = doc.get("data").cloned().unwrap_or(Json::Null);
    Ok(match data.get("data") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => data,
    })
}

/// An object that may be gone (a posting or user deleted since): `None` on 404.
fn object_if_any(path: &str) -> Result<Option<Json>, PluginError> {
    match object(path) {
        Ok(o) => Ok(Some(o)),
        Err(PluginError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An object read through the cache (postings, requisitions, users).
pub fn cached(path: &str) -> Result<Option<Json>, PluginError> {
    let key = format!("cache{path}");
    let now = clock::now_ms();
    if let Ok(Some(bytes)) = kv::get(&key)
        && let Ok((at, value)) = serde_json::from_slice::<(i64, Option<Json>)>(&bytes)
        && now - at < CACHE_TTL_MS
    {
        return Ok(value);
    }
    let value = object_if_any(path)?;
    if let Ok(bytes) = serde_json::to_vec(&(now, &value)) {
        let _ = kv::set(&key, &bytes);
    }
    Ok(value)
}

/// One page of a list: its items and the offset of the next page, if any.
pub fn page(path: &str) -> Result<(Vec<Json>, Option<String>), PluginError> {
    let doc = get(path)?;
    let items = doc
        .get("data")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let next = doc
        .get("next")
        .and_then(Json::as_str)
        .filter(|_| doc.get("hasNext").and_then(Json::as_bool).unwrap_or(false))
        .map(str::to_string);
    Ok((items, next))
}

/// Every item of a list, following `next` while `hasNext`.
pub fn list(path: &str) -> Result<Vec<Json>, PluginError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (items, more) = page(&with_offset(path, next.as_deref()))?;
        out.extend(items);
        next = more;
        if next.is_none() {
            break;
        }
    }
    Ok(out)
}

/// `path` with Lever's `offset` query parameter (none: unchanged).
pub fn with_offset(path: &str, offset: Option<&str>) -> String {
    match offset {
        Some(o) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}offset={}", encode(o))
        }
        None => path.to_string(),
    }
}
