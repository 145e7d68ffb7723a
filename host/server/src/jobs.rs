//! Jobs and the operators' commands on them: list and read jobs, replay and
//! cancel, decide conflicts, approve mass-change guards, reveal an initial
//! password. Each command is one pipeline call that writes, audits and wakes.

use crate::AppState;
use crate::auth::{Admins, Authed, Operators, Readers};
use crate::error::{ApiError, ApiResult, json_body};
use crate::extract::{ApiPath, ApiQuery};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tenure_store::{ConflictDecision, JobFilter, JobState};

/// Which jobs to list.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in this state.
    state: Option<JobState>,
    /// Only this person's jobs.
    person: Option<String>,
    /// At most this many (default 100, at most 10,000).
    limit: Option<usize>,
}

/// `GET /api/v1/jobs`: newest first, by state or person.
pub async fn list_jobs(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult {
    let state = q.state;
    let jobs = s
        .pipeline
        .jobs(JobFilter {
            tenant: c.tenant.clone(),
            state,
            person_key: q.person,
            limit: crate::list_limit(q.limit, 100),
        })
        .await?;
    Ok(axum::Json(jobs).into_response())
}

/// `GET /api/v1/jobs/{id}`: a job with its event and operations.
pub async fn get_job(State(s): State<AppState>, c: Authed<Readers>, ApiPath(id): ApiPath<i64>) -> ApiResult {
    Ok(axum::Json(s.pipeline.job(&c.tenant, id).await?).into_response())
}

/// `POST /api/v1/jobs/{id}/replay`
pub async fn replay(State(s): State<AppState>, c: Authed<Operators>, ApiPath(id): ApiPath<i64>) -> ApiResult {
    Ok(axum::Json(s.pipeline.replay_job(c.actor(), id).await?).into_response())
}

/// `POST /api/v1/jobs/{id}/cancel`
pub async fn cancel(State(s): State<AppState>, c: Authed<Operators>, ApiPath(id): ApiPath<i64>) -> ApiResult {
    Ok(axum::Json(s.pipeline.cancel_job(c.actor(), id).await?).into_response())
}

/// Which conflicts to list.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConflictsQuery {
    /// Decided ones too.
    #[serde(default)]
    all: bool,
}

/// `GET /api/v1/conflicts`: undecided ones (`?all=true`: every one).
pub async fn list_conflicts(
    State(s): State<AppState>,
    c: Authed<Operators>,
    ApiQuery(q): ApiQuery<ConflictsQuery>,
) -> ApiResult {
    Ok(axum::Json(s.pipeline.conflicts(&c.tenant, !q.all).await?).into_response())
}

/// `POST /api/v1/conflicts/{id}/resolve`: `{"decision": "merge", "anchor": ...}` or `{"decision": "skip"}`.
pub async fn resolve_conflict(
    State(s): State<AppState>,
    c: Authed<Operators>,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> ApiResult {
    let decision: ConflictDecision = json_body(&body)?;
    Ok(axum::Json(s.pipeline.resolve_conflict(c.actor(), id, decision).await?).into_response())
}

/// The account whose initial password to show.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevealIn {
    /// The account's DN, as the connector created it.
    dn: String,
}

/// `POST /api/v1/initial-passwords/reveal`: shows a vaulted initial password once
/// (`initial_passwords = "vault"`); taken and audited in one write.
pub async fn reveal_initial_password(State(s): State<AppState>, c: Authed<Admins>, body: Bytes) -> ApiResult {
    let req: RevealIn = json_body(&body)?;
    let Some(password) = s.pipeline.reveal_initial_password(c.actor(), &req.dn).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "dn",
            "no initial password is kept for this account (already revealed, or the policy is discard)",
        ));
    };
    Ok(axum::Json(Revealed { dn: req.dn, password }).into_response())
}

/// An initial password, shown once.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct Revealed {
    dn: String,
    password: String,
}

/// A guard approved: the jobs it had held are queued.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct GuardApproved {
    destination: String,
    released_jobs: i64,
}

/// `GET /api/v1/guards`
pub async fn list_guards(State(s): State<AppState>, c: Authed<Operators>) -> ApiResult {
    Ok(axum::Json(s.pipeline.guards(&c.tenant).await?).into_response())
}

/// `POST /api/v1/guards/{destination}/approve`: the held jobs run.
pub async fn approve_guard(
    State(s): State<AppState>,
    c: Authed<Operators>,
    ApiPath(destination): ApiPath<String>,
) -> ApiResult {
    let released = s
        .pipeline
        .approve_guard(c.actor(), &destination)
        .await
        .map_err(|e| match e {
            tenure_pipeline::PipelineError::Invalid(i) => {
                ApiError::new(StatusCode::NOT_FOUND, &i.field, i.reason)
            }
            other => other.into(),
        })?;
    Ok(axum::Json(GuardApproved {
        destination,
        released_jobs: released,
    })
    .into_response())
}
