//! Graph's JSON batching: several reads in one `POST /$batch` (at most 20), so a lookup costs
//! two round trips (the user, then its manager, groups and licences together) instead of four.

use crate::client;
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use tenure_sdk::http::Response;
use tenure_sdk::types::PluginError;

/// Graph's limit on requests in one batch.
pub const MAX_PARTS: usize = 20;

/// A sub-request's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Json,
}

impl Answer {
    /// The body of a success, the error a failure stands for, or `None` for a status in `absent`.
    pub fn read(self, what: &str, absent: &[u16]) -> Result<Option<Json>, PluginError> {
        if (200..300).contains(&self.status) {
            return Ok(Some(self.body));
        }
        if absent.contains(&self.status) {
            return Ok(None);
        }
        let resp = Response {
            status: self.status,
            headers: self.headers,
            body: self.body.to_string().into_bytes(),
        };
        Err(client::error_of(what, &resp))
    }
}

/// Sends `urls` (paths relative to the connection, keyed by an id) as GETs in one batch.
pub fn get_all(urls: &[(&str, String)]) -> Result<HashMap<String, Answer>, PluginError> {
    if urls.len() > MAX_PARTS {
        return Err(PluginError::Permanent(format!(
            "a Graph batch holds at most {MAX_PARTS} requests, not {}",
            urls.len()
        )));
    }
    let requests: Vec<Json> = urls
        .iter()
        .map(|(id, url)| json!({ "id": id, "method": "GET", "url": url }))
        .collect();
    let body = json!({ "requests": requests });
    let answered = client::json(&client::send("POST", "/$batch", Some(&body), &[])?)?;
    let mut out = HashMap::new();
    for r in answered
        .get("responses")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = r.get("id").and_then(Json::as_str) else {
            continue;
        };
        let headers = r
            .get("headers")
            .and_then(Json::as_object)
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            id.to_string(),
            Answer {
                status: r.get("status").and_then(Json::as_u64).unwrap_or(0) as u16,
                headers,
                body: r.get("body").cloned().unwrap_or(Json::Null),
            },
        );
    }
    for (id, url) in urls {
        if !out.contains_key(*id) {
            return Err(PluginError::Transient(format!(
                "the batch answered nothing for {url}"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_answer_maps_like_a_whole_one() {
        let throttled = Answer {
            status: 429,
            headers: vec![("retry-after".into(), "4".into())],
            body: json!({"error": {"code": "TooManyRequests", "message": "Too many requests"}}),
        };
        assert!(matches!(
            throttled.read("x", &[]),
            Err(PluginError::RateLimited(4000))
        ));
        let missing = Answer {
            status: 404,
            headers: vec![],
            body: json!({"error": {"code": "Request_ResourceNotFound", "message": "no manager"}}),
        };
        assert!(matches!(missing.clone().read("x", &[404]), Ok(None)));
        assert!(matches!(missing.read("x", &[]), Err(PluginError::NotFound(_))));
    }
}
