//! The audit log (export and verification), KPIs, Prometheus metrics and health.

use crate::AppState;
use crate::auth::{Auditors, Authed, Readers};
use crate::error::{ApiError, ApiResult};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tenure_store::AuditFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    person: Option<String>,
    destination: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    kind: Option<String>,
    after_seq: Option<i64>,
    limit: Option<usize>,
    format: Option<String>,
}

/// `GET /api/v1/audit`: the tenant's entries as JSON, JSON Lines or CSV (the export is audited).
pub async fn audit(State(s): State<AppState>, c: Authed<Auditors>, Query(q): Query<AuditQuery>) -> ApiResult {
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "jsonl" | "csv") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
            "must be json, jsonl or csv",
        ));
    }
    let filter = AuditFilter {
        tenant: None,
        person_key: q.person,
        destination: q.destination,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        kind_prefix: q.kind,
        after_seq: q.after_seq,
        limit: q.limit,
    };
    let entries = s.pipeline.export_audit(c.actor(), filter, format).await?;
    Ok(match format {
        "jsonl" => {
            let out = tenure_store::audit::render(&entries, "jsonl").unwrap_or_default();
            ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
        }
        "csv" => {
            let out = tenure_store::audit::render(&entries, "csv").unwrap_or_default();
            ([(header::CONTENT_TYPE, "text/csv")], out).into_response()
        }
        _ => axum::Json(entries).into_response(),
    })
}

/// `GET /api/v1/audit/verify`: 200 when the chain holds, 409 when it does not (naming the
/// broken entry only if it is the caller's tenant's; nothing about other tenants).
pub async fn verify(State(s): State<AppState>, c: Authed<Auditors>) -> ApiResult {
    let report = s.pipeline.verify_audit_for(&c.tenant).await?;
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, axum::Json(report)).into_response())
}

/// `GET /api/v1/kpis`
pub async fn kpis(State(s): State<AppState>, c: Authed<Readers>) -> ApiResult {
    Ok(axum::Json(s.pipeline.kpis(&c.tenant).await?).into_response())
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &s.metrics_token
        && !crate::auth::presents(&headers, expected)
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({ "error": { "field": "authorization", "reason": "/metrics needs its token" } }),
            ),
        )
            .into_response();
    }
    let tenants: Vec<String> = s.pipeline.config().tenants.keys().cloned().collect();
    let text = s
        .pipeline
        .metrics
        .render(s.pipeline.store().as_ref(), &tenants)
        .await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `/readyz`: the store answers and no source's poller has stopped; the answer lists
/// every polled source with its state and last error.
pub async fn ready(State(s): State<AppState>) -> Response {
    let store = s.pipeline.store_ready().await;
    let sources = s.pipeline.source_health();
    let stopped = sources
        .iter()
        .any(|h| h.state == tenure_pipeline::sources::PollerState::Stopped);
    let status = if store.is_ok() && !stopped {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let store = match store {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unavailable: {e}"),
    };
    (
        status,
        axum::Json(json!({ "ready": status == StatusCode::OK, "store": store, "sources": sources })),
    )
        .into_response()
}
