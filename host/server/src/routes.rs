//! The routes. Handlers validate, call the pipeline or the store, and answer
//! JSON errors that name the field and the reason.

use crate::auth::{Caller, Role, authenticate};
use crate::{AppState, MAX_BODY_BYTES, hooks, people, rule_sets};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tenure_pipeline::event::{EventKind, PersonIn};
use tenure_pipeline::{PipelineError, parse_event};
use tenure_store::{AuditFilter, AuditRecord, ConflictDecision, Intake, JobFilter, JobState, StoreError};

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/events", post(post_event))
        .route("/api/v1/events/{id}", get(get_event))
        .route("/api/v1/sources/{source}/payload", post(post_payload))
        .route("/api/v1/preview", post(preview))
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/jobs/{id}/replay", post(replay))
        .route("/api/v1/jobs/{id}/cancel", post(cancel))
        .route("/api/v1/conflicts", get(list_conflicts))
        .route("/api/v1/conflicts/{id}/resolve", post(resolve_conflict))
        .route("/api/v1/initial-passwords/reveal", post(reveal_initial_password))
        .route("/api/v1/guards", get(list_guards))
        .route("/api/v1/deliveries", get(hooks::list_deliveries))
        .route("/api/v1/deliveries/{id}/replay", post(hooks::replay_delivery))
        .route("/api/v1/people/{person}/lifecycle", get(people::lifecycle))
        .route("/api/v1/people/{person}/contract-end", post(people::contract_end))
        .route("/api/v1/reconcile", post(people::reconcile))
        .route("/api/v1/reconciliations", get(people::list_reconciliations))
        .route("/api/v1/reconciliations/{id}", get(people::get_reconciliation))
        .route(
            "/api/v1/reconciliations/{id}/access-review",
            get(people::access_review),
        )
        .route("/api/v1/guards/{destination}/approve", post(approve_guard))
        .route("/api/v1/rule-sets", get(rule_sets::list).post(rule_sets::draft))
        .route("/api/v1/rule-sets/test", post(rule_sets::test))
        .route("/api/v1/rule-sets/{version}", get(rule_sets::get_version))
        .route("/api/v1/rule-sets/{version}/diff", get(rule_sets::diff))
        .route("/api/v1/rule-sets/{version}/impact", get(rule_sets::impact))
        .route("/api/v1/rule-sets/{version}/publish", post(rule_sets::publish))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/kpis", get(kpis))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(
            Router::new()
                .route("/hooks/lever/{source}", post(hooks::lever))
                .layer(DefaultBodyLimit::disable()),
        )
        .layer(axum::middleware::map_response(close_after_payload_too_large))
        // A bug reached by one request answers that request 500; the host keeps serving.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// The answer to a request whose handler panicked (the panic itself is logged).
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = message, "a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server",
        "the request hit an internal error; it was logged",
    )
    .into_response()
}

/// A body refused for its size was not read to its end: the connection cannot carry
/// another request, so the answer says it closes (a client then never reuses it).
async fn close_after_payload_too_large(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// An API error: status plus the field and reason.
pub struct ApiError {
    status: StatusCode,
    field: String,
    reason: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, field: &str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error": { "field": self.field, "reason": self.reason } })),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "id", format!("{what} not found"))
            }
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "state", m),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store",
                    "the store is unavailable; retry",
                )
            }
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Invalid(i) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &i.field, i.reason),
            PipelineError::UnknownTenant(t) => {
                ApiError::new(StatusCode::NOT_FOUND, "tenant", format!("no tenant {t:?}"))
            }
            PipelineError::Store(s) => s.into(),
            PipelineError::Runtime(r) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "plugin", r.to_string())
            }
            PipelineError::Call(c) => ApiError::new(StatusCode::BAD_GATEWAY, "plugin", c.to_string()),
            PipelineError::Metrics(m) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics", m.to_string())
            }
        }
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

pub(crate) fn caller(state: &AppState, headers: &HeaderMap, allowed: &[Role]) -> Result<Caller, ApiError> {
    let Some(c) = authenticate(&state.tokens, headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authorization",
            "a valid bearer token is required",
        ));
    };
    if !allowed.contains(&c.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Authorization",
            format!("token {} has role {:?}, which may not do this", c.name, c.role),
        ));
    }
    Ok(c)
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = tenure_pipeline::event::error_field(e.path().to_string(), &e.inner().to_string());
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &field,
            e.into_inner().to_string(),
        )
    })
}

const WRITERS: &[Role] = &[Role::Source, Role::Hr, Role::It];
const READERS: &[Role] = &[Role::Hr, Role::It, Role::Auditor];
const ADMINS: &[Role] = &[Role::It];
const AUDITORS: &[Role] = &[Role::It, Role::Auditor];

async fn post_event(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let c = caller(&s, &headers, WRITERS)?;
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
    let intake = s.pipeline.submit(&c.tenant, &c.name, key, event).await?;
    let status = match intake {
        Intake::Accepted { .. } => StatusCode::ACCEPTED,
        Intake::Duplicate { .. } => StatusCode::OK,
    };
    Ok((status, axum::Json(intake)).into_response())
}

async fn post_payload(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(source): Path<String>,
    body: Bytes,
) -> ApiResult {
    let c = caller(&s, &headers, WRITERS)?;
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
    let (intake, rejected) = s
        .pipeline
        .ingest_payload(&c.tenant, &source, payload)
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
        axum::Json(json!({ "stored": intake, "rejected": rejected })),
    )
        .into_response())
}

async fn get_event(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult {
    let c = caller(&s, &headers, READERS)?;
    let event = s
        .pipeline
        .store()
        .event(&c.tenant, id)
        .await?
        .ok_or(StoreError::NotFound(format!("event {id}")))?;
    let jobs = s
        .pipeline
        .store()
        .jobs(JobFilter {
            tenant: c.tenant.clone(),
            person_key: Some(event.person_key.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let job = jobs.into_iter().find(|j| j.event_id == id);
    Ok(axum::Json(json!({ "event": event, "job": job })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewIn {
    person: Option<PersonIn>,
    kind: Option<EventKind>,
    source: Option<String>,
    source_record_id: Option<String>,
}

async fn preview(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let c = caller(&s, &headers, &[Role::Hr, Role::It])?;
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
    let preview = s.pipeline.preview(&c.tenant, &source, &person, kind).await?;
    Ok(axum::Json(preview).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    state: Option<String>,
    person: Option<String>,
    limit: Option<usize>,
}

async fn list_jobs(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<JobsQuery>) -> ApiResult {
    let c = caller(&s, &headers, READERS)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(v) => Some(JobState::parse(v).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "state",
                format!(
                    "{v:?} is not one of available, running, retryable, completed, dead, held, cancelled"
                ),
            )
        })?),
    };
    let jobs = s
        .pipeline
        .store()
        .jobs(JobFilter {
            tenant: c.tenant,
            state,
            person_key: q.person,
            limit: q.limit.unwrap_or(100),
        })
        .await?;
    Ok(axum::Json(jobs).into_response())
}

async fn get_job(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult {
    let c = caller(&s, &headers, READERS)?;
    let job = s
        .pipeline
        .store()
        .job(&c.tenant, id)
        .await?
        .ok_or(StoreError::NotFound(format!("job {id}")))?;
    Ok(axum::Json(job).into_response())
}

async fn replay(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    let job = s.pipeline.store().replay(&c.tenant, id, &c.name).await?;
    s.pipeline.wake();
    Ok(axum::Json(job).into_response())
}

async fn cancel(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    let job = s.pipeline.store().cancel(&c.tenant, id, &c.name).await?;
    s.pipeline.wake();
    Ok(axum::Json(job).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConflictsQuery {
    #[serde(default)]
    all: bool,
}

async fn list_conflicts(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ConflictsQuery>,
) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    Ok(axum::Json(s.pipeline.store().conflicts(&c.tenant, !q.all).await?).into_response())
}

async fn resolve_conflict(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    let decision: ConflictDecision = json_body(&body)?;
    let row = s
        .pipeline
        .store()
        .resolve_conflict(&c.tenant, id, decision, &c.name)
        .await?;
    s.pipeline.wake();
    Ok(axum::Json(row).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealRequest {
    /// The account's DN, as the connector created it.
    dn: String,
}

/// Shows a vaulted initial password once and deletes it (`initial_passwords = "vault"`).
async fn reveal_initial_password(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    let req: RevealRequest = json_body(&body)?;
    let name = tenure_pipeline::passwords::vault_name(&c.tenant, &req.dn);
    let Some(password) = s.pipeline.store().take_secret(&name).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "dn",
            "no initial password is kept for this account (already revealed, or the policy is discard)",
        ));
    };
    s.pipeline
        .store()
        .append_audit(vec![AuditRecord {
            tenant: c.tenant.clone(),
            kind: "admin.initial_password_revealed".into(),
            actor: c.name.clone(),
            data: json!({ "dn": req.dn }),
            ..AuditRecord::default()
        }])
        .await?;
    Ok(axum::Json(json!({ "dn": req.dn, "password": password })).into_response())
}

async fn list_guards(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    Ok(axum::Json(s.pipeline.store().guards(&c.tenant).await?).into_response())
}

async fn approve_guard(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(destination): Path<String>,
) -> ApiResult {
    let c = caller(&s, &headers, ADMINS)?;
    let tenant = s.pipeline.tenant(&c.tenant)?;
    if !tenant.destinations.iter().any(|d| d.name == destination) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "destination",
            format!("no destination {destination:?}"),
        ));
    }
    let released = s
        .pipeline
        .store()
        .approve_guard(&c.tenant, &destination, &c.name)
        .await?;
    s.pipeline.wake();
    Ok(axum::Json(json!({ "destination": destination, "released_jobs": released })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    person: Option<String>,
    destination: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    kind: Option<String>,
    after_seq: Option<i64>,
    limit: Option<usize>,
    format: Option<String>,
}

async fn audit(State(s): State<AppState>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> ApiResult {
    let c = caller(&s, &headers, AUDITORS)?;
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "jsonl" | "csv") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
            "must be json, jsonl or csv",
        ));
    }
    let entries = s
        .pipeline
        .store()
        .audit(AuditFilter {
            tenant: Some(c.tenant.clone()),
            person_key: q.person,
            destination: q.destination,
            since_ms: q.since_ms,
            until_ms: q.until_ms,
            kind_prefix: q.kind,
            after_seq: q.after_seq,
            limit: q.limit,
        })
        .await?;
    s.pipeline
        .store()
        .append_audit(vec![AuditRecord {
            tenant: c.tenant.clone(),
            kind: "admin.audit_exported".into(),
            actor: c.name.clone(),
            data: json!({ "format": format, "entries": entries.len() }),
            ..AuditRecord::default()
        }])
        .await?;
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

async fn verify(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    caller(&s, &headers, AUDITORS)?;
    let report = s.pipeline.store().verify_audit().await?;
    let status = if report.ok() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, axum::Json(report)).into_response())
}

async fn kpis(State(s): State<AppState>, headers: HeaderMap) -> ApiResult {
    let c = caller(&s, &headers, &[Role::Hr, Role::It, Role::Auditor])?;
    Ok(axum::Json(s.pipeline.store().kpis(&c.tenant).await?).into_response())
}

async fn metrics(State(s): State<AppState>) -> Response {
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
async fn ready(State(s): State<AppState>) -> Response {
    let store = s.pipeline.store().ping().await;
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
