//! Requests on the `graph` connection, and Graph's error bodies as retry classes.
//!
//! Graph answers errors as `{"error": {"code", "message"}}`. 429 and 503 carry `Retry-After`
//! (the host holds the connection for it and the job waits as rate-limited); a 404 for an
//! object created moments ago is replication lag, which the callers that can meet it turn
//! into a retry; `Request_BadRequest` naming a property is invalid input naming that field.

use serde_json::Value as Json;
use tenure_sdk::errors::{from_status, invalid_input};
use tenure_sdk::http::{Client, Response};
use tenure_sdk::types::PluginError;

pub const CONNECTION: &str = "graph";

/// A Graph error answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl GraphError {
    /// Reads an error body; one that is not Graph's keeps the start of the text.
    pub fn read(status: u16, body: &[u8]) -> GraphError {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let text = |k: &str| {
            json.pointer(&format!("/error/{k}"))
                .and_then(Json::as_str)
                .map(str::to_string)
        };
        GraphError {
            status,
            code: text("code").unwrap_or_default(),
            message: text("message")
                .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect()),
        }
    }

    /// Whether the message says a unique value is taken (a UPN, a mail nickname).
    pub fn is_duplicate(&self) -> bool {
        self.message.contains("already exists")
    }

    /// The property an "Invalid value specified for property 'x'" message names.
    fn property(&self) -> String {
        self.message
            .split('\'')
            .nth(1)
            .filter(|p| !p.is_empty() && !p.contains(' '))
            .unwrap_or("user")
            .to_string()
    }
}

/// The error a Graph answer stands for; `what` names the request in the message.
pub fn error_of(what: &str, resp: &Response) -> PluginError {
    let e = GraphError::read(resp.status, &resp.body);
    let detail = format!("{}: {} ({what})", e.code, e.message);
    if resp.status == 400 && e.is_duplicate() {
        return PluginError::Conflict(detail);
    }
    if resp.status == 400 {
        return invalid_input(e.property(), detail);
    }
    from_status(resp.status, resp.retry_after_ms(), &detail)
}

/// Sends a request; `accept` lists the statuses a caller reads itself besides 2xx.
pub fn send(method: &str, path: &str, body: Option<&Json>, accept: &[u16]) -> Result<Response, PluginError> {
    exchange(method, path, body, &[], accept)
}

/// [`send`] with extra headers (the generated password, `ConsistencyLevel`).
pub fn exchange(
    method: &str,
    path: &str,
    body: Option<&Json>,
    headers: &[(&str, &str)],
    accept: &[u16],
) -> Result<Response, PluginError> {
    let resp = Client::new(CONNECTION).exchange(method, path, body, headers)?;
    if (200..300).contains(&resp.status) || accept.contains(&resp.status) {
        return Ok(resp);
    }
    Err(error_of(&format!("{method} {path}"), &resp))
}

/// The body of an answer as JSON (`null` when empty).
pub fn json(resp: &Response) -> Result<Json, PluginError> {
    if resp.body.is_empty() {
        return Ok(Json::Null);
    }
    resp.json()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(status: u16, code: &str, message: &str) -> Response {
        Response {
            status,
            headers: vec![("retry-after".into(), "7".into())],
            body: serde_json::json!({"error": {"code": code, "message": message,
                "innerError": {"request-id": "r", "date": "2026-12-05T00:00:00"}}})
            .to_string()
            .into_bytes(),
        }
    }

    #[test]
    fn codes_decide_the_class() {
        let dup = graph(
            400,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
        );
        assert!(matches!(error_of("x", &dup), PluginError::Conflict(_)));
        let bad = graph(
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'usageLocation' of resource 'User'.",
        );
        match error_of("x", &bad) {
            PluginError::InvalidInput(i) => assert_eq!(i.field, "usageLocation"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of("x", &graph(429, "TooManyRequests", "Too many requests")),
            PluginError::RateLimited(7000)
        ));
        assert!(matches!(
            error_of("x", &graph(503, "ServiceUnavailable", "Service unavailable")),
            PluginError::RateLimited(7000)
        ));
        assert!(matches!(
            error_of(
                "x",
                &graph(404, "Request_ResourceNotFound", "Resource 'x' does not exist")
            ),
            PluginError::NotFound(_)
        ));
        assert!(matches!(
            error_of(
                "x",
                &graph(403, "Authorization_RequestDenied", "Insufficient privileges")
            ),
            PluginError::Unauthorized(_)
        ));
    }
}
