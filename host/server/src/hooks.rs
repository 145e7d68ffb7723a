//! Webhooks from source systems: `POST /hooks/lever/{source}`. No bearer token:
//! the delivery's own signature authenticates it (see `tenure_pipeline::webhooks`).

use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenure_pipeline::webhooks::{Accepted, Refusal};

/// Headers passed on to the source plugin (none carries a secret).
const PASSED_HEADERS: &[&str] = &["content-type", "user-agent"];

/// `POST /hooks/lever/{source}`: 200 only once the delivery's events are stored.
/// The body is read only up to the source's limit; a larger one is refused (and
/// audited) unread.
pub async fn lever(
    State(s): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(limit) = s.pipeline.webhook_body_limit(&source) else {
        return refusal(Refusal {
            status: 404,
            field: "source".into(),
            reason: format!("no webhook source named {source:?}"),
        });
    };
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return refusal(s.pipeline.refuse_oversized_webhook(&source).await),
    };
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
        Err(r) => refusal(r),
    }
}

/// The HTTP answer for a refused delivery: its status, field and reason; 503s
/// say when Lever should retry.
fn refusal(r: Refusal) -> Response {
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
