//! Requests on the `okta` connection, and Okta's error bodies as retry classes.
//!
//! Okta answers errors as `{"errorCode", "errorSummary", "errorCauses": [{"errorSummary"}]}`.
//! `E0000047` (429) is a rate limit, waited out until `X-Rate-Limit-Reset` (UTC epoch
//! seconds; the host also holds the connection once `X-Rate-Limit-Remaining` reaches 0, so
//! the limit is honoured before a 429 happens); `E0000001` naming a value that "already
//! exists" is a conflict; other `E0000001`s are invalid input naming the field.

use serde_json::Value as Json;
use tenure_sdk::errors::{from_status, invalid_input};
use tenure_sdk::host::clock;
use tenure_sdk::http::{Client, Response};
use tenure_sdk::types::PluginError;

pub const CONNECTION: &str = "okta";

/// An Okta error answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaError {
    pub status: u16,
    pub code: String,
    pub summary: String,
    /// The causes' summaries (`login: An object with this field already exists ...`).
    pub causes: Vec<String>,
}

impl OktaError {
    /// Reads an error body; one that is not Okta's keeps the start of the text.
    pub fn read(status: u16, body: &[u8]) -> OktaError {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let summary = match text(&json, "errorSummary") {
            s if s.is_empty() => String::from_utf8_lossy(body).chars().take(200).collect(),
            s => s,
        };
        OktaError {
            status,
            code: text(&json, "errorCode"),
            summary,
            causes: json
                .get("errorCauses")
                .and_then(Json::as_array)
                .map(|c| c.iter().map(|c| text(c, "errorSummary")).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether the error is a value Okta already has (a login or email in use).
    pub fn is_duplicate(&self) -> bool {
        self.code == "E0000001" && self.causes.iter().any(|c| c.contains("already exists"))
    }

    /// The field the first cause names (`login: ...` -> `login`).
    fn field(&self) -> String {
        self.causes
            .first()
            .and_then(|c| c.split_once(':'))
            .map(|(f, _)| f.trim().to_string())
            .filter(|f| !f.is_empty() && !f.contains(' '))
            .unwrap_or_else(|| "user".into())
    }
}

/// Milliseconds until the quota resets, from `X-Rate-Limit-Reset` (at least one second).
pub fn reset_ms(resp: &Response) -> Option<u64> {
    let reset_s: i64 = resp.header("x-rate-limit-reset")?.trim().parse().ok()?;
    let now_ms = clock::now_ms();
    Some((reset_s.saturating_mul(1000).saturating_sub(now_ms)).clamp(1000, 90_000) as u64)
}

/// The error an Okta answer stands for; `what` names the request in the message.
pub fn error_of(what: &str, resp: &Response) -> PluginError {
    let e = OktaError::read(resp.status, &resp.body);
    let causes = if e.causes.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.causes.join("; "))
    };
    let detail = format!("{} {}{causes} ({what})", e.code, e.summary);
    if resp.status == 429 || e.code == "E0000047" {
        return PluginError::RateLimited(resp.retry_after_ms().or_else(|| reset_ms(resp)).unwrap_or(1000));
    }
    if e.is_duplicate() {
        return PluginError::Conflict(detail);
    }
    if resp.status == 400 && e.code == "E0000001" {
        return invalid_input(e.field(), detail);
    }
    from_status(resp.status, resp.retry_after_ms(), &detail)
}

/// Sends a request; `accept` lists the statuses a caller reads itself besides 2xx.
pub fn send(method: &str, path: &str, body: Option<&Json>, accept: &[u16]) -> Result<Response, PluginError> {
    exchange(method, path, body, &[], accept)
}

/// [`send`] with extra headers (the generated-password request on create).
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

    fn okta(status: u16, code: &str, summary: &str, causes: &[&str]) -> Response {
        let causes: Vec<Json> = causes
            .iter()
            .map(|c| serde_json::json!({"errorSummary": c}))
            .collect();
        Response {
            status,
            headers: vec![("retry-after".into(), "3".into())],
            body: serde_json::json!({"errorCode": code, "errorSummary": summary,
                "errorLink": code, "errorId": "oae1", "errorCauses": causes})
            .to_string()
            .into_bytes(),
        }
    }

    #[test]
    fn codes_decide_the_class() {
        let dup = okta(
            400,
            "E0000001",
            "Api validation failed: login",
            &["login: An object with this field already exists in the current organization"],
        );
        assert!(matches!(error_of("x", &dup), PluginError::Conflict(_)));
        match error_of(
            "x",
            &okta(
                400,
                "E0000001",
                "Api validation failed: email",
                &["email: Does not match required pattern"],
            ),
        ) {
            PluginError::InvalidInput(i) => assert_eq!(i.field, "email"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of(
                "x",
                &okta(
                    429,
                    "E0000047",
                    "API call exceeded rate limit due to too many requests.",
                    &[]
                )
            ),
            PluginError::RateLimited(3000)
        ));
        assert!(matches!(
            error_of(
                "x",
                &okta(404, "E0000007", "Not found: Resource not found: 00u1 (User)", &[])
            ),
            PluginError::NotFound(_)
        ));
        assert!(matches!(
            error_of(
                "x",
                &okta(
                    403,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                    &[]
                )
            ),
            PluginError::Unauthorized(_)
        ));
    }
}
