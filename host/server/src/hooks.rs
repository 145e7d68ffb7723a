//! Webhooks from source systems: `POST /hooks/{source}` (and, as first
//! configured, `/hooks/lever/{source}`). No bearer token: the delivery's own
//! signature authenticates it, by the source's scheme (see
//! `tenure_pipeline::webhooks`). A verified delivery is answered once it is
//! stored raw; it is enriched afterwards.

use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenure_pipeline::webhooks::{Accepted, Refusal};

pub use deliveries::{list_deliveries, replay_delivery};

/// Headers passed on to the source plugin (none carries a secret).
const PASSED_HEADERS: &[&str] = &["content-type", "user-agent"];

/// `POST /hooks/{source}`: 200 once the delivery is durably stored. The body is
/// read only up to the source's limit; a larger one is refused (and audited) unread.
pub async fn receive(
    State(s): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(limit) = s.pipeline.webhook_body_limit(&source) else {
        return refusal(s.pipeline.refuse_unknown_webhook(&source));
    };
    if let Err(r) = s.pipeline.admit_webhook(&source).await {
        return refusal(r);
    }
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return refusal(s.pipeline.refuse_oversized_webhook(&source).await),
    };
    let passed = headers
        .iter()
        .filter(|(k, _)| PASSED_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    match s.pipeline.receive_webhook(&source, passed, &body).await {
        Ok(Accepted::Ping) => (StatusCode::OK, axum::Json(json!({ "status": "ping" }))).into_response(),
        Ok(Accepted::Stored { delivery_id }) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "stored", "delivery": delivery_id })),
        )
            .into_response(),
        Ok(Accepted::Duplicate { delivery_id }) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "duplicate", "delivery": delivery_id })),
        )
            .into_response(),
        Err(r) => refusal(r),
    }
}

/// The HTTP answer for a refused delivery: its status, field and reason; 503s
/// say when the vendor should retry.
fn refusal(r: Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        axum::Json(json!({ "error": { "field": r.field, "reason": r.reason } })),
    )
        .into_response();
    let retry_after = match status {
        StatusCode::SERVICE_UNAVAILABLE => Some("30"),
        StatusCode::TOO_MANY_REQUESTS => Some("1"),
        _ => None,
    };
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(seconds),
        );
    }
    response
}

mod deliveries {
    //! `GET /api/v1/deliveries` and `POST /api/v1/deliveries/{id}/replay`: stored
    //! webhook deliveries and their enrichment, and a replay after a fix.

    use crate::AppState;
    use crate::auth::{Admins, Authed, Readers};
    use crate::error::{ApiError, ApiResult};
    use axum::extract::{Path, Query, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use serde::Deserialize;
    use tenure_store::{DeliveryFilter, DeliveryState};

    #[derive(Deserialize)]
    pub struct ListQuery {
        source: Option<String>,
        state: Option<String>,
        limit: Option<usize>,
    }

    pub async fn list_deliveries(
        State(s): State<AppState>,
        c: Authed<Readers>,
        Query(q): Query<ListQuery>,
    ) -> ApiResult {
        let state = match q.state.as_deref() {
            None => None,
            Some(text) => Some(
                text.parse::<DeliveryState>()
                    .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "state", e.to_string()))?,
            ),
        };
        let rows = s
            .pipeline
            .deliveries(DeliveryFilter {
                tenant: c.tenant.clone(),
                source: q.source,
                state,
                limit: q.limit.unwrap_or(100),
            })
            .await?;
        Ok(axum::Json(rows).into_response())
    }

    pub async fn replay_delivery(
        State(s): State<AppState>,
        c: Authed<Admins>,
        Path(id): Path<i64>,
    ) -> ApiResult {
        Ok(axum::Json(s.pipeline.replay_delivery(c.actor(), id).await?).into_response())
    }
}
