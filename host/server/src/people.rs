//! Lifecycle and reconciliation routes: a person's state and scheduled actions,
//! a contract end recorded through the API, reconciliation runs and the access
//! review they export.

use crate::AppState;
use crate::auth::{Admins, Auditors, Authed, HrAndIt, Readers};
use crate::error::{ApiError, ApiResult, json_body};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tenure_pipeline::reconcile::ReconcileRequest;
use tenure_store::Intake;

pub(crate) async fn lifecycle(
    State(s): State<AppState>,
    c: Authed<Readers>,
    Path(person): Path<String>,
) -> ApiResult {
    match s.pipeline.person_lifecycle(&c.tenant, &person).await? {
        Some(view) => Ok(axum::Json(view).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "person",
            format!("no lifecycle record of {person}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractEnd {
    end_date: String,
}

pub(crate) async fn contract_end(
    State(s): State<AppState>,
    c: Authed<HrAndIt>,
    Path(person): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: ContractEnd = json_body(&body)?;
    let intake = s
        .pipeline
        .set_contract_end(&c.tenant, &person, &req.end_date, &c.name)
        .await?;
    let (event, duplicate) = match intake {
        Intake::Accepted { event_id, .. } => (event_id, false),
        Intake::Duplicate { event_id, .. } => (event_id, true),
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(
            json!({ "person": person, "end_date": req.end_date, "event": event, "duplicate": duplicate }),
        ),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReconcileBody {
    destination: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

pub(crate) async fn reconcile(State(s): State<AppState>, c: Authed<Admins>, body: Bytes) -> ApiResult {
    let req: ReconcileBody = if body.is_empty() {
        ReconcileBody::default()
    } else {
        json_body(&body)?
    };
    let report = s
        .pipeline
        .reconcile(
            &c.tenant,
            ReconcileRequest {
                destination: req.destination,
                dry_run: req.dry_run,
                actor: c.name.clone(),
            },
        )
        .await?;
    Ok(axum::Json(report).into_response())
}

pub(crate) async fn list_reconciliations(State(s): State<AppState>, c: Authed<Auditors>) -> ApiResult {
    Ok(axum::Json(s.pipeline.reconciliations(&c.tenant).await?).into_response())
}

pub(crate) async fn get_reconciliation(
    State(s): State<AppState>,
    c: Authed<Auditors>,
    Path(id): Path<i64>,
) -> ApiResult {
    Ok(axum::Json(s.pipeline.reconciliation(&c.tenant, id).await?).into_response())
}

/// The access review of a reconciliation, as CSV (the export is audited).
pub(crate) async fn access_review(
    State(s): State<AppState>,
    c: Authed<Auditors>,
    Path(id): Path<i64>,
) -> ApiResult {
    let report = s.pipeline.reconciliation(&c.tenant, id).await?;
    s.pipeline
        .note_access_review(c.actor(), id, report.access.len())
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv")], report.access_csv()).into_response())
}
