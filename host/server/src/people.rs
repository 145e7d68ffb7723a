//! Lifecycle and reconciliation routes: a person's state and scheduled actions,
//! a contract end recorded through the API, reconciliation runs and the access
//! review they export.

use crate::AppState;
use crate::auth::Role;
use crate::routes::{ApiError, ApiResult, caller, json_body};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tenure_pipeline::reconcile::{ReconcileReport, ReconcileRequest};
use tenure_store::{AuditRecord, Intake};

const READERS: &[Role] = &[Role::Hr, Role::It, Role::Auditor];
const PEOPLE_WRITERS: &[Role] = &[Role::Hr, Role::It];
const ADMINS: &[Role] = &[Role::It];
const REVIEWERS: &[Role] = &[Role::It, Role::Auditor];

pub(crate) async fn lifecycle(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(person): Path<String>,
) -> ApiResult {
    let c = caller(&s, &headers, READERS)?;
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
    headers: HeaderMap,
    Path(person): Path<String>,
    body: Bytes,
) -> ApiResult {
    let c = caller(&s, &headers, PEOPLE_WRITERS)?;
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

pub(crate) async fn reconcile(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
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

pub(crate) async fn list_reconciliations(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    let c = caller(&s, &headers, REVIEWERS)?;
    let rows = s
        .pipeline
        .store()
        .reports(&c.tenant, "reconciliation", 100)
        .await?;
    Ok(axum::Json(rows).into_response())
}

async fn stored_report(s: &AppState, tenant: &str, id: i64) -> Result<ReconcileReport, ApiError> {
    let row = s
        .pipeline
        .store()
        .report(tenant, id)
        .await?
        .filter(|r| r.kind == "reconciliation")
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "id", format!("no reconciliation {id}")))?;
    serde_json::from_value(row.body).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "report",
            format!("stored report cannot be read: {e}"),
        )
    })
}

pub(crate) async fn get_reconciliation(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult {
    let c = caller(&s, &headers, REVIEWERS)?;
    Ok(axum::Json(stored_report(&s, &c.tenant, id).await?).into_response())
}

pub(crate) async fn access_review(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult {
    let c = caller(&s, &headers, REVIEWERS)?;
    let report = stored_report(&s, &c.tenant, id).await?;
    s.pipeline
        .store()
        .append_audit(vec![AuditRecord {
            tenant: c.tenant.clone(),
            kind: "admin.access_review_exported".into(),
            actor: c.name.clone(),
            data: json!({ "report": id, "rows": report.access.len() }),
            ..AuditRecord::default()
        }])
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/csv")], report.access_csv()).into_response())
}
