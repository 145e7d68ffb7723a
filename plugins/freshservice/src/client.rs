//! Requests on the `freshservice` connection, and Freshservice's error bodies as retry classes.
//!
//! Freshservice answers validation errors as `{"description": "Validation failed", "errors":
//! [{"field", "message", "code"}]}`: invalid input naming the first field. 429 is its
//! account-wide per-minute limit (failed calls count too): waited out for `Retry-After`.

use serde_json::Value as Json;
use tenure_sdk::errors::{from_status, invalid_input};
use tenure_sdk::http::{Client, Response};
use tenure_sdk::types::PluginError;

pub const CONNECTION: &str = "freshservice";

/// A Freshservice error answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshserviceError {
    pub description: String,
    /// `(field, message)` of each error.
    pub errors: Vec<(String, String)>,
}

impl FreshserviceError {
    /// Reads an error body; one that is not Freshservice's keeps the start of the text.
    pub fn read(body: &[u8]) -> FreshserviceError {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let description = match text(&json, "description") {
            d if d.is_empty() => match text(&json, "message") {
                m if m.is_empty() => String::from_utf8_lossy(body).chars().take(200).collect(),
                m => m,
            },
            d => d,
        };
        FreshserviceError {
            description,
            errors: json
                .get("errors")
                .and_then(Json::as_array)
                .map(|e| e.iter().map(|e| (text(e, "field"), text(e, "message"))).collect())
                .unwrap_or_default(),
        }
    }
}

/// The error a Freshservice answer stands for; `what` names the request in the message.
pub fn error_of(what: &str, resp: &Response) -> PluginError {
    let e = FreshserviceError::read(&resp.body);
    let errors: Vec<String> = e.errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let detail = if errors.is_empty() {
        format!("{} ({what})", e.description)
    } else {
        format!("{}: {} ({what})", e.description, errors.join("; "))
    };
    match (resp.status, e.errors.first()) {
        (429, _) => PluginError::RateLimited(resp.retry_after_ms().unwrap_or(60_000)),
        (400, Some((field, _))) if !field.is_empty() => invalid_input(field.clone(), detail),
        (status, _) => from_status(status, resp.retry_after_ms(), &detail),
    }
}

/// Sends a request; a non-2xx answer is its error.
pub fn send(method: &str, path: &str, body: Option<&Json>) -> Result<Json, PluginError> {
    let resp = Client::new(CONNECTION).exchange(method, path, body, &[])?;
    if !(200..300).contains(&resp.status) {
        return Err(error_of(
            &format!("{method} {}", path.split('?').next().unwrap_or(path)),
            &resp,
        ));
    }
    if resp.body.is_empty() {
        return Ok(Json::Null);
    }
    resp.json()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Json, retry_after: Option<&str>) -> Response {
        Response {
            status,
            headers: retry_after
                .map(|r| vec![("retry-after".to_string(), r.to_string())])
                .unwrap_or_default(),
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn statuses_and_bodies_decide_the_class() {
        let invalid = serde_json::json!({"description": "Validation failed",
            "errors": [{"field": "email", "message": "It should be a valid email address",
                "code": "invalid_value"}]});
        match error_of("POST /api/v2/tickets", &answer(400, invalid, None)) {
            PluginError::InvalidInput(i) => {
                assert_eq!(i.field, "email");
                assert!(i.reason.contains("valid email address"), "{}", i.reason);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of("x", &answer(429, Json::Null, Some("39"))),
            PluginError::RateLimited(39_000)
        ));
        assert!(matches!(
            error_of(
                "x",
                &answer(
                    401,
                    serde_json::json!({"code": "invalid_credentials",
                        "message": "You have to be logged in to perform this action."}),
                    None
                )
            ),
            PluginError::Unauthorized(m) if m.contains("logged in")
        ));
        assert!(matches!(
            error_of("x", &answer(502, Json::Null, None)),
            PluginError::Transient(_)
        ));
    }
}
