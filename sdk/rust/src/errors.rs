//! Short constructors for [`PluginError`](crate::types::PluginError).

use crate::types::{InvalidInput, PluginError};

/// `invalid-input` naming the field and the reason.
pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> PluginError {
    PluginError::InvalidInput(InvalidInput {
        field: field.into(),
        reason: reason.into(),
    })
}

/// Maps an HTTP status to the error that drives the host's retries
/// (429, and 503 with `Retry-After` -> rate-limited using `retry_after_ms`, other 5xx ->
/// transient, 401/403 -> unauthorized, 404 -> not-found, 409/412 -> conflict, other 4xx ->
/// permanent).
pub fn from_status(status: u16, retry_after_ms: Option<u64>, detail: &str) -> PluginError {
    if let (503, Some(ms)) = (status, retry_after_ms) {
        return PluginError::RateLimited(ms);
    }
    match status {
        429 => PluginError::RateLimited(retry_after_ms.unwrap_or(1000)),
        401 | 403 => PluginError::Unauthorized(format!("{status}: {detail}")),
        404 => PluginError::NotFound(detail.to_string()),
        409 | 412 => PluginError::Conflict(format!("{status}: {detail}")),
        500..=599 => PluginError::Transient(format!("{status}: {detail}")),
        _ => PluginError::Permanent(format!("{status}: {detail}")),
    }
}

/// The error for a non-success HTTP answer: [`from_status`] with the `Retry-After`
/// header (seconds) and the start of the body as the detail.
pub fn from_response(resp: &crate::host::http::Response) -> PluginError {
    let detail: String = String::from_utf8_lossy(&resp.body).chars().take(200).collect();
    from_status(resp.status, retry_after_ms(resp), &detail)
}

/// An answer's `Retry-After` (seconds) in milliseconds.
pub fn retry_after_ms(resp: &crate::host::http::Response) -> Option<u64> {
    retry_after_in(&resp.headers)
}

/// The `Retry-After` (seconds) among `headers`, in milliseconds.
pub fn retry_after_in(headers: &[(String, String)]) -> Option<u64> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(|s| s * 1000)
}

/// The error for a request the host could not complete: a timeout or transport
/// failure is worth retrying, a denial is an authorization problem, a malformed
/// request is the plugin's own mistake.
pub fn from_http_error(connection: &str, e: crate::host::http::HttpError) -> PluginError {
    use crate::host::http::HttpError;
    match e {
        HttpError::Timeout => PluginError::Transient(format!("{connection} timed out")),
        HttpError::Transport(m) => PluginError::Transient(m),
        HttpError::Denied(m) => PluginError::Unauthorized(m),
        HttpError::InvalidRequest(m) => PluginError::Permanent(m),
    }
}
