//! Requests on the `google` connection, and Google's error bodies as retry classes.
//!
//! Google answers errors as `{"error": {"code", "message", "errors": [{"reason", ...}]}}`.
//! The reason decides the class: `userRateLimitExceeded`, `quotaExceeded` and
//! `rateLimitExceeded` (403 or 429) are rate limits, waited out with exponential backoff
//! when no `Retry-After` comes; `duplicate` is a conflict; "User creation is not complete"
//! (412 `conditionNotMet`, right after an insert) is transient.

use serde_json::Value as Json;
use std::cell::Cell;
use tenure_sdk::errors::{from_status, invalid_input};
use tenure_sdk::http::{Client, Response};
use tenure_sdk::types::PluginError;

pub const CONNECTION: &str = "google";

/// First wait after a rate limit without `Retry-After`; doubled per limit met in a row.
const BACKOFF_START_MS: u64 = 1_000;
/// Longest wait the backoff asks for.
const BACKOFF_MAX_MS: u64 = 32_000;

thread_local! {
    /// Rate limits met in a row by this instance (reset by any success).
    static LIMITED_IN_A_ROW: Cell<u32> = const { Cell::new(0) };
}

/// A Google error answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleError {
    pub status: u16,
    /// The first `errors[].reason` (`duplicate`, `notFound`, `invalid`, ...).
    pub reason: String,
    pub message: String,
}

impl GoogleError {
    /// Reads an error body; one that is not Google's keeps the start of the text.
    pub fn read(status: u16, body: &[u8]) -> GoogleError {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let error = json.get("error");
        let reason = error
            .and_then(|e| e.pointer("/errors/0/reason"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
        GoogleError {
            status,
            reason,
            message,
        }
    }

    /// Whether Google is asking the caller to slow down.
    pub fn is_rate_limit(&self) -> bool {
        matches!(
            self.reason.as_str(),
            "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
        ) && matches!(self.status, 403 | 429)
            || self.status == 429
    }
}

/// The wait for the next rate limit in a row: 1 s, 2 s, 4 s ... up to 32 s.
pub fn backoff_ms(in_a_row: u32) -> u64 {
    BACKOFF_START_MS
        .saturating_mul(1u64 << in_a_row.min(10))
        .min(BACKOFF_MAX_MS)
}

/// The error a Google answer stands for; `what` names the request in the message.
pub fn error_of(what: &str, resp: &Response) -> PluginError {
    let e = GoogleError::read(resp.status, &resp.body);
    let detail = if e.reason.is_empty() {
        format!("{} ({what})", e.message)
    } else {
        format!("{}: {} ({what})", e.reason, e.message)
    };
    if e.is_rate_limit() {
        let row = LIMITED_IN_A_ROW.with(|c| {
            let n = c.get();
            c.set(n.saturating_add(1));
            n
        });
        return PluginError::RateLimited(resp.retry_after_ms().unwrap_or_else(|| backoff_ms(row)));
    }
    if e.message.contains("creation is not complete") {
        return PluginError::Transient(detail);
    }
    if resp.status == 400 && e.reason == "invalid" {
        return invalid_input(field_named(&e.message), detail);
    }
    from_status(resp.status, resp.retry_after_ms(), &detail)
}

/// The field an "Invalid Input: <field>" message names, in this connector's words.
fn field_named(message: &str) -> String {
    let named = message.rsplit(':').next().unwrap_or("").trim();
    match named {
        "primary_user_email" => "primaryEmail".into(),
        "INVALID_OU_ID" => "container".into(),
        "" => "user".into(),
        other => other.to_string(),
    }
}

/// Sends a request; `accept` lists the statuses a caller reads itself besides 2xx.
pub fn send(method: &str, path: &str, body: Option<&Json>, accept: &[u16]) -> Result<Response, PluginError> {
    exchange(method, path, body, &[], accept)
}

/// [`send`] with extra headers (the generated-password request on insert).
pub fn exchange(
    method: &str,
    path: &str,
    body: Option<&Json>,
    headers: &[(&str, &str)],
    accept: &[u16],
) -> Result<Response, PluginError> {
    let resp = Client::new(CONNECTION).exchange(method, path, body, headers)?;
    if (200..300).contains(&resp.status) || accept.contains(&resp.status) {
        LIMITED_IN_A_ROW.with(|c| c.set(0));
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

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    fn google(status: u16, reason: &str, message: &str) -> Response {
        answer(
            status,
            &serde_json::json!({"error": {"code": status, "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}]}})
            .to_string(),
        )
    }

    #[test]
    fn reasons_decide_the_class() {
        let limited = error_of(
            "x",
            &google(403, "userRateLimitExceeded", "User Rate Limit Exceeded"),
        );
        assert!(matches!(limited, PluginError::RateLimited(_)), "{limited:?}");
        assert!(matches!(
            error_of("x", &google(403, "quotaExceeded", "Quota exceeded")),
            PluginError::RateLimited(_)
        ));
        assert!(matches!(
            error_of("x", &google(429, "rateLimitExceeded", "Rate Limit Exceeded")),
            PluginError::RateLimited(_)
        ));
        // A 403 for want of rights is not a rate limit.
        assert!(matches!(
            error_of(
                "x",
                &google(403, "forbidden", "Not Authorized to access this resource/api")
            ),
            PluginError::Unauthorized(_)
        ));
        assert!(matches!(
            error_of("x", &google(409, "duplicate", "Entity already exists.")),
            PluginError::Conflict(_)
        ));
        assert!(matches!(
            error_of(
                "x",
                &google(412, "conditionNotMet", "User creation is not complete.")
            ),
            PluginError::Transient(_)
        ));
        match error_of("x", &google(400, "invalid", "Invalid Input: primary_user_email")) {
            PluginError::InvalidInput(i) => assert_eq!(i.field, "primaryEmail"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of("x", &answer(502, "<html>")),
            PluginError::Transient(_)
        ));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(9), 32_000);
        assert_eq!(backoff_ms(u32::MAX), 32_000);
    }
}
