//! Webhooks from source systems: `POST /hooks/{source}` (and, as first
//! configured, `/hooks/lever/{source}`). No bearer token: the delivery's own
//! signature authenticates it, by the source's scheme (see
//! `tenure_pipeline::webhooks`). A verified delivery is answered once it is
//! stored raw; it is enriched afterwards.

use crate::AppState;
use crate::extract::ApiPath;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tenure_pipeline::webhooks::{Accepted, Refusal};

pub use deliveries::{DeliveriesQuery, list_deliveries, replay_delivery};

/// Headers passed on to the source plugin (none carries a secret).
const PASSED_HEADERS: &[&str] = &["content-type", "user-agent"];

/// `POST /hooks/{source}`: 200 once the delivery is durably stored. The body is
/// read only up to the source's limit; a larger one is refused (and audited) unread.
pub async fn receive(
    State(s): State<AppState>,
    ApiPath(source): ApiPath<String>,
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
        Ok(Accepted::Ping) => answer(HookStatus::Ping, None),
        Ok(Accepted::Stored { delivery_id }) => answer(HookStatus::Stored, Some(delivery_id)),
        Ok(Accepted::Duplicate { delivery_id }) => answer(HookStatus::Duplicate, Some(delivery_id)),
        Err(r) => refusal(r),
    }
}

/// The HTTP answer for a refused delivery: its status, field and reason; 503s
/// say when the vendor should retry.
/// What became of a webhook delivery.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HookStatus {
    /// A test delivery: nothing stored.
    Ping,
    /// Stored; its events follow.
    Stored,
    /// The same delivery came before.
    Duplicate,
}

/// The answer to an accepted webhook delivery.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct HookAnswer {
    status: HookStatus,
    /// The stored delivery (none for a ping).
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<i64>,
}

fn answer(status: HookStatus, delivery: Option<i64>) -> Response {
    (StatusCode::OK, axum::Json(HookAnswer { status, delivery })).into_response()
}

/// The description of the webhook route.
pub(crate) fn doc() -> crate::openapi::Doc {
    crate::openapi::Doc::new("events", "Receive a source's signed webhook delivery")
        .access(crate::openapi::Access::Signature)
        .path::<String>("source")
        .bytes("application/json")
        .answers::<HookAnswer>(200, "accepted (stored, a duplicate, or a ping)")
        .errors(&[400, 404, 413, 429, 503])
}

fn refusal(r: Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        axum::Json(crate::error::ErrorBody::new(&r.field, r.reason)),
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
    use crate::auth::{Authed, Operators, Readers};
    use crate::error::ApiResult;
    use crate::extract::{ApiPath, ApiQuery};
    use axum::extract::State;
    use axum::response::IntoResponse;
    use serde::Deserialize;
    use tenure_store::{DeliveryFilter, DeliveryState};

    /// Which deliveries to list.
    #[derive(Deserialize, schemars::JsonSchema)]
    pub struct DeliveriesQuery {
        /// Only this source's.
        source: Option<String>,
        /// Only deliveries in this state.
        state: Option<DeliveryState>,
        /// At most this many (default 100, at most 10,000).
        limit: Option<usize>,
    }

    pub async fn list_deliveries(
        State(s): State<AppState>,
        c: Authed<Readers>,
        ApiQuery(q): ApiQuery<DeliveriesQuery>,
    ) -> ApiResult {
        let state = q.state;
        let rows = s
            .pipeline
            .deliveries(DeliveryFilter {
                tenant: c.tenant.clone(),
                source: q.source,
                state,
                limit: crate::list_limit(q.limit, 100),
            })
            .await?;
        Ok(axum::Json(rows).into_response())
    }

    pub async fn replay_delivery(
        State(s): State<AppState>,
        c: Authed<Operators>,
        ApiPath(id): ApiPath<i64>,
    ) -> ApiResult {
        Ok(axum::Json(s.pipeline.replay_delivery(c.actor(), id).await?).into_response())
    }
}
