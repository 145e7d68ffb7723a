//! Requests on the `servicenow` connection, and ServiceNow's error bodies as retry classes.
//!
//! ServiceNow answers errors as `{"error": {"message", "detail"}, "status": "failure"}`; the
//! message and detail go into the error (and so into the audit). 429 is its rate limit
//! (per hour, per instance rule): waited out for `Retry-After`, or until `X-RateLimit-Reset`
//! (UNIX seconds). 403 is an ACL, business rule or data policy: unauthorized, not retried.

use serde_json::Value as Json;
use tenure_sdk::errors::{from_status, invalid_input};
use tenure_sdk::host::clock;
use tenure_sdk::http::{Client, Response};
use tenure_sdk::types::PluginError;

pub const CONNECTION: &str = "servicenow";

/// A ServiceNow error answer, read: its message and detail (empty when the body is not one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNowError {
    pub message: String,
    pub detail: String,
}

impl ServiceNowError {
    /// Reads an error body; one that is not ServiceNow's keeps the start of the text.
    pub fn read(body: &[u8]) -> ServiceNowError {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let text = |k: &str| {
            json.pointer(&format!("/error/{k}"))
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string()
        };
        let message = match text("message") {
            m if m.is_empty() => String::from_utf8_lossy(body).chars().take(200).collect(),
            m => m,
        };
        ServiceNowError {
            message,
            detail: text("detail"),
        }
    }

    fn text(&self) -> String {
        if self.detail.is_empty() || self.detail == "null" {
            self.message.clone()
        } else {
            format!("{}: {}", self.message, self.detail)
        }
    }
}

/// Milliseconds until the quota resets, from `X-RateLimit-Reset` (at least one second).
pub fn reset_ms(resp: &Response) -> Option<u64> {
    let reset_s: i64 = resp.header("x-ratelimit-reset")?.trim().parse().ok()?;
    let now_ms = clock::now_ms();
    Some((reset_s.saturating_mul(1000).saturating_sub(now_ms)).clamp(1000, 90_000) as u64)
}

/// The error a ServiceNow answer stands for; `what` names the request in the message.
pub fn error_of(what: &str, resp: &Response) -> PluginError {
    let e = ServiceNowError::read(&resp.body);
    let detail = format!("{} ({what})", e.text());
    match resp.status {
        429 => PluginError::RateLimited(resp.retry_after_ms().or_else(|| reset_ms(resp)).unwrap_or(1000)),
        400 => invalid_input("ticket", detail),
        status => from_status(status, resp.retry_after_ms(), &detail),
    }
}

/// Sends a request; `accept` lists the statuses a caller reads itself besides 2xx.
pub fn send(method: &str, path: &str, body: Option<&Json>, accept: &[u16]) -> Result<Response, PluginError> {
    let resp = Client::new(CONNECTION).exchange(method, path, body, &[])?;
    if (200..300).contains(&resp.status) || accept.contains(&resp.status) {
        return Ok(resp);
    }
    Err(error_of(&format!("{method} {}", path_only(path)), &resp))
}

/// The path without its query (which may carry a person's email).
fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// The `result` of an answer (an object for one record, an array for a query).
pub fn result(resp: &Response) -> Result<Json, PluginError> {
    let body: Json = resp.json()?;
    body.get("result").cloned().ok_or_else(|| {
        PluginError::Permanent(format!("ServiceNow answered {} without a result", resp.status))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Json, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn statuses_and_bodies_decide_the_class() {
        let failure =
            |m: &str, d: &str| serde_json::json!({"error": {"message": m, "detail": d}, "status": "failure"});
        match error_of(
            "POST /api/now/table/incident",
            &answer(400, failure("Invalid table", "no table named incidnet"), &[]),
        ) {
            PluginError::InvalidInput(i) => {
                assert_eq!(i.field, "ticket");
                assert!(
                    i.reason.contains("Invalid table: no table named incidnet"),
                    "{}",
                    i.reason
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of(
                "x",
                &answer(429, failure("Rate limit exceeded", ""), &[("retry-after", "7")])
            ),
            PluginError::RateLimited(7000)
        ));
        match error_of(
            "x",
            &answer(
                403,
                failure("Operation Failed", "ACL denied create on incident"),
                &[],
            ),
        ) {
            PluginError::Unauthorized(m) => assert!(m.contains("ACL denied"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of("x", &answer(503, Json::Null, &[])),
            PluginError::Transient(_)
        ));
        assert_eq!(
            path_only("/api/now/table/sys_user?sysparm_query=email%3Da"),
            "/api/now/table/sys_user"
        );
    }
}
