//! Webhooks from source systems: `POST /hooks/lever/{source}`. No bearer token:
//! the delivery's own signature authenticates it (see `tenure_pipeline::webhooks`).

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenure_pipeline::webhooks::Accepted;

/// Bodies up to this size reach the source's own (audited) limit; larger ones are cut off here.
pub const MAX_HOOK_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Headers passed on to the source plugin (none carries a secret).
const PASSED_HEADERS: &[&str] = &["content-type", "user-agent"];

/// `POST /hooks/lever/{source}`: 200 only once the delivery's events are stored.
pub async fn lever(
    State(s): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let passed = headers
        .iter()
        .filter(|(k, _)| PASSED_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    match s.pipeline.receive_lever_webhook(&source, passed, &body).await {
        Ok(Accepted::Ping) => (StatusCode::OK, axum::Json(json!({ "status": "ping" }))).into_response(),
        Ok(Accepted::Stored(intake)) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "stored", "stored": intake })),
        )
            .into_response(),
        Err(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
            let mut response = (
                status,
                axum::Json(json!({ "error": { "field": r.field, "reason": r.reason } })),
            )
                .into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("30"),
                );
            }
            response
        }
    }
}
