//! Requests on the `scim` connection, SCIM error bodies as retry classes, and
//! what the server says it supports (ServiceProviderConfig).

use serde_json::{Value as Json, json};
use std::cell::RefCell;
use tenure_sdk::errors::{from_status, invalid_input};
use tenure_sdk::http::{Client, Response};
use tenure_sdk::types::PluginError;

pub const CONNECTION: &str = "scim";
const MEDIA: &str = "application/scim+json";

/// What the server supports, read once per instance.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub patch: bool,
    pub etag: bool,
    /// The largest page the server serves.
    pub max_results: u32,
}

impl Features {
    /// What every SCIM server can be asked: PUT (read, modify, put), no ETags, pages of 100.
    const CONSERVATIVE: Features = Features {
        patch: false,
        etag: false,
        max_results: 100,
    };
}

/// A failed read of the ServiceProviderConfig is tried again after this long (the
/// conservative features serve meanwhile), never on every call.
const FEATURES_RETRY_MS: i64 = 60_000;

/// The features this instance knows, and whether they were read from the server
/// (else: the conservative ones, until `retry_at_ms`).
#[derive(Debug, Clone, Copy)]
struct Known {
    features: Features,
    read: bool,
    retry_at_ms: i64,
}

thread_local! {
    static FEATURES: RefCell<Option<Known>> = const { RefCell::new(None) };
}

/// A SCIM answer: status, ETag and the parsed body.
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Json,
}

/// Sends one request; a non-2xx answer becomes the error its status and SCIM body call for.
pub fn send(
    method: &str,
    path: &str,
    body: Option<&Json>,
    if_match: Option<&str>,
) -> Result<Answer, PluginError> {
    let resp = send_raw(method, path, body, if_match)?;
    if (200..300).contains(&resp.status) {
        return answer(resp);
    }
    Err(error_of(method, path, &resp))
}

/// Sends one request and returns any answer the server gave.
pub fn send_raw(
    method: &str,
    path: &str,
    body: Option<&Json>,
    if_match: Option<&str>,
) -> Result<Response, PluginError> {
    let headers: Vec<(&str, &str)> = if_match.map(|tag| ("If-Match", tag)).into_iter().collect();
    Client::new(CONNECTION)
        .json_type(MEDIA)
        .exchange(method, path, body, &headers)
}

/// The parsed body and ETag of a success.
pub fn answer(resp: Response) -> Result<Answer, PluginError> {
    let body = if resp.body.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&resp.body).map_err(|e| {
            PluginError::Permanent(format!(
                "the SCIM server answered {} with a body that is not JSON: {e}",
                resp.status
            ))
        })?
    };
    let etag = resp.header("etag").map(str::to_string).or_else(|| {
        body.pointer("/meta/version")
            .and_then(Json::as_str)
            .map(str::to_string)
    });
    Ok(Answer {
        status: resp.status,
        etag,
        body,
    })
}

/// Maps a SCIM error answer (RFC 7644 §3.12) with its `scimType` and `detail` carried along:
/// the SDK's status mapping, except that 412 (changed since read) is retried and 400 names
/// its `scimType` as the field.
pub fn error_of(method: &str, path: &str, resp: &Response) -> PluginError {
    let body: Json = serde_json::from_slice(&resp.body).unwrap_or(Json::Null);
    let scim_type = body.get("scimType").and_then(Json::as_str).unwrap_or("");
    let detail = body
        .get("detail")
        .and_then(Json::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).chars().take(200).collect());
    let detail = if scim_type.is_empty() {
        format!("{detail} ({method} {path})")
    } else {
        format!("{scim_type}: {detail} ({method} {path})")
    };
    match resp.status {
        412 => PluginError::Transient(format!("412: {detail}")),
        400 => invalid_input(
            if scim_type.is_empty() {
                "request"
            } else {
                scim_type
            },
            format!("400: {detail}"),
        ),
        status => from_status(status, resp.retry_after_ms(), &detail),
    }
}

/// The server's features (ServiceProviderConfig), read once per instance. When the
/// read fails (the server is throttling or down), the conservative features serve
/// and the read is tried again a minute later, never on every call (a rate limit
/// still fails the call that met it, so that it waits).
pub fn features() -> Result<Features, PluginError> {
    let now = tenure_sdk::host::clock::now_ms();
    match FEATURES.with(|f| *f.borrow()) {
        Some(k) if k.read || now < k.retry_at_ms => return Ok(k.features),
        _ => {}
    }
    match read_features() {
        Ok(features) => {
            FEATURES.with(|c| {
                *c.borrow_mut() = Some(Known {
                    features,
                    read: true,
                    retry_at_ms: 0,
                })
            });
            Ok(features)
        }
        Err(e) => {
            log::warn!(
                "cannot read /ServiceProviderConfig ({e:?}); using PUT without ETags until it can be read"
            );
            let features = Features::CONSERVATIVE;
            FEATURES.with(|c| {
                *c.borrow_mut() = Some(Known {
                    features,
                    read: false,
                    retry_at_ms: now + FEATURES_RETRY_MS,
                })
            });
            // A server that asks to be left alone is left alone: this call waits too.
            match e {
                PluginError::RateLimited(_) => Err(e),
                _ => Ok(features),
            }
        }
    }
}

fn read_features() -> Result<Features, PluginError> {
    let spc = send("GET", "/ServiceProviderConfig", None, None)?.body;
    let supported = |k: &str| {
        spc.get(k)
            .and_then(|v| v.get("supported"))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    let f = Features {
        patch: supported("patch"),
        etag: supported("etag"),
        max_results: spc
            .pointer("/filter/maxResults")
            .and_then(Json::as_u64)
            .map(|n| n.clamp(1, 1000) as u32)
            .unwrap_or(100),
    };
    Ok(f)
}

/// Remembers that PATCH is not served after all (the server said so with 405 or 501).
pub fn patch_unsupported() {
    FEATURES.with(|c| {
        if let Some(k) = c.borrow_mut().as_mut() {
            k.features.patch = false;
        }
    });
}

/// Every resource a filter matches, following `startIndex`/`count` pages.
pub fn list(endpoint: &str, query: &str, page: u32) -> Result<Vec<Json>, PluginError> {
    let mut out = Vec::new();
    let mut start = 1u64;
    for _ in 0..1000 {
        let path = format!("{endpoint}?{query}&startIndex={start}&count={page}");
        let body = send("GET", &path, None, None)?.body;
        let resources = body
            .get("Resources")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let total = body.get("totalResults").and_then(Json::as_u64).unwrap_or(0);
        let got = resources.len() as u64;
        out.extend(resources);
        start += got;
        if got == 0 || start > total {
            break;
        }
    }
    Ok(out)
}

/// A PatchOp message.
pub fn patch_body(operations: Vec<Json>) -> Json {
    json!({ "schemas": [super::schema::PATCH_OP], "Operations": operations })
}

/// What the connector reads from a server's answer, without the host, for the fuzz
/// targets (`fuzz/`): a success's body and ETag and every user attribute it maps, or
/// an error answer's mapped error.
#[doc(hidden)]
pub fn decode_natively(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Vec<String> {
    let resp = Response {
        status,
        headers,
        body,
    };
    if !(200..300).contains(&status) {
        return vec![error_of("GET", "/Users", &resp).to_string()];
    }
    let answer = match answer(resp) {
        Ok(a) => a,
        Err(e) => return vec![e.to_string()],
    };
    let resources = answer
        .body
        .get("Resources")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_else(|| vec![answer.body.clone()]);
    let mut out: Vec<String> = answer.etag.into_iter().collect();
    for user in &resources {
        for (_, slot) in super::schema::ATTRIBUTES {
            out.extend(super::schema::get(user, *slot));
        }
    }
    out
}
