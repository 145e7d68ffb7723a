//! Events in: `POST /api/v1/events`, a source's payload upload, a stored event
//! with its job, and preview (what an event would do, writing nothing).

use crate::AppState;
use crate::auth::{Authed, HrAndIt, Readers, Writers};
use crate::error::{ApiError, ApiResult, json_body};
use crate::extract::ApiPath;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tenure_pipeline::event::{EventKind, PersonIn};
use tenure_pipeline::intake::{PayloadAuthority, Upload};
use tenure_pipeline::{PipelineError, parse_event};
use tenure_store::Intake;

/// `POST /api/v1/events`: 202 once the event and its job are stored (200 for a duplicate).
pub async fn post_event(
    State(s): State<AppState>,
    c: Authed<Writers>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let event = parse_event(&body)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &e.field, e.reason))?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key",
                "must be visible ASCII",
            )
        })?),
        None => None,
    };
    let intake = s.pipeline.submit(&c.tenant, &c.poster(), key, event).await?;
    let status = match intake {
        Intake::Accepted { .. } => StatusCode::ACCEPTED,
        Intake::Duplicate { .. } => StatusCode::OK,
    };
    Ok((status, axum::Json(intake)).into_response())
}

/// `POST /api/v1/sources/{source}/payload`: a file or batch a source plugin parses.
pub async fn post_payload(
    State(s): State<AppState>,
    c: Authed<Writers>,
    headers: HeaderMap,
    ApiPath(source): ApiPath<String>,
    body: Bytes,
) -> ApiResult {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let payload = tenure_runtime::wit::source::Payload {
        content_type,
        headers: vec![],
        body: body.to_vec(),
    };
    // For a source that receives signed webhooks: the signature, or an IT administrator's reason.
    let reason = headers
        .get("x-tenure-reason")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let authority = match reason {
        Some(r) if !r.is_empty() && c.administers_it() => PayloadAuthority::Reason(r),
        _ => PayloadAuthority::Signature,
    };
    // Only the signature headers reach verification; none of them reaches the plugin.
    let signature_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| *k != header::AUTHORIZATION && *k != header::COOKIE)
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let upload = Upload {
        headers: &signature_headers,
        authority,
    };
    let (intake, rejected) = s
        .pipeline
        .ingest_payload(&c.tenant, &c.poster(), &source, upload, payload)
        .await
        .map_err(|e| match e {
            // The source plugin refused the payload: pass its field and reason on.
            PipelineError::Call(tenure_runtime::CallError::Plugin {
                error: tenure_runtime::wit::PluginError::InvalidInput(i),
                ..
            }) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &i.field, i.reason),
            PipelineError::Call(call) => ApiError::new(StatusCode::BAD_GATEWAY, "source", call.to_string()),
            other => other.into(),
        })?;
    let status = if rejected.is_empty() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((
        status,
        axum::Json(PayloadStored {
            stored: intake,
            rejected,
        }),
    )
        .into_response())
}

/// `GET /api/v1/events/{id}`: a stored event and its job.
pub async fn get_event(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    let (event, job) = s.pipeline.event_with_job(&c.tenant, id).await?;
    Ok(axum::Json(EventWithJob { event, job }).into_response())
}

/// A source payload's events: those stored and those refused.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct PayloadStored {
    stored: Vec<Intake>,
    rejected: Vec<tenure_pipeline::event::InvalidEvent>,
}

/// A stored event and the job that applies it.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct EventWithJob {
    event: tenure_store::EventRow,
    job: Option<tenure_store::JobRow>,
}

/// A person to preview: given whole, or a stored record named by its source and id.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewIn {
    person: Option<PersonIn>,
    kind: Option<EventKind>,
    source: Option<String>,
    source_record_id: Option<String>,
    /// A rule-set document (YAML or JSON) to preview under instead of the published one,
    /// run apart from live traffic: a rule being edited, before it is saved.
    #[schemars(length(min = 1))]
    document: Option<String>,
}

/// `POST /api/v1/preview`: what a person's record would do, through the job's own path.
pub async fn preview(State(s): State<AppState>, c: Authed<HrAndIt>, body: Bytes) -> ApiResult {
    let input: PreviewIn = json_body(&body)?;
    let source = input.source.clone().unwrap_or_else(|| "api".into());
    let (person, kind) = match (input.person, &input.source_record_id) {
        (Some(person), None) => {
            let kind = input.kind.unwrap_or(EventKind::Update);
            let person = tenure_pipeline::event::validate_person(&source, kind, person)
                .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &e.field, e.reason))?;
            (person, kind)
        }
        (None, Some(record)) => s
            .pipeline
            .stored_person(&c.tenant, &source, record, input.kind)
            .await
            .map_err(|e| match e {
                PipelineError::Invalid(i) => ApiError::new(StatusCode::NOT_FOUND, &i.field, i.reason),
                other => other.into(),
            })?,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "person",
                "give either person or source_record_id",
            ));
        }
    };
    let preview = match &input.document {
        None => s.pipeline.preview(&c.tenant, &source, &person, kind).await?,
        Some(document) => {
            let rules = s.rule_sets.checked_draft(&c.tenant, document).await?;
            s.pipeline
                .preview_with(&c.tenant, &source, &person, kind, &rules)
                .await?
        }
    };
    Ok(axum::Json(preview).into_response())
}
