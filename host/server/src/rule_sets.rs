//! Rule-set routes: drafts (checked and tested when saved), versions, diffs,
//! impact previews, publish and rollback. HR and IT write drafts; IT publishes;
//! auditors read.

use crate::AppState;
use crate::auth::{Authed, HrAndIt, Publishers, Readers};
use crate::error::{ApiError, ApiResult, json_body};
use crate::extract::{ApiPath, ApiQuery};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tenure_rulesets::RuleSetError;

/// People listed per destination in an impact preview unless the caller asks otherwise
/// (the counts always cover everyone).
const DEFAULT_IMPACT_DETAIL: usize = 1_000;
/// The most people an impact preview lists per destination.
const MAX_IMPACT_DETAIL: usize = 10_000;

impl From<RuleSetError> for ApiError {
    fn from(e: RuleSetError) -> Self {
        match e {
            RuleSetError::Invalid { field, reason } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &field, reason)
            }
            RuleSetError::Refused(reason) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "document", reason)
            }
            RuleSetError::Denied(reason) => ApiError::new(StatusCode::CONFLICT, "version", reason),
            RuleSetError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "version", format!("{what} not found"))
            }
            RuleSetError::Store(s) => s.into(),
            RuleSetError::Runtime(r) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "plugin", r),
            RuleSetError::Throttled(t) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "impact", t.reason)
                .retry_after(t.retry_after_secs),
        }
    }
}

/// A draft version.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DraftIn {
    /// The rule-set document (YAML or JSON text).
    #[schemars(length(min = 1))]
    document: String,
    /// The change log entry.
    message: String,
}

/// A rule set document to test.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestIn {
    /// The rule-set document (YAML or JSON text).
    #[schemars(length(min = 1))]
    document: String,
}

/// The published version and every version.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct RuleSetList {
    current: Option<tenure_store::RuleSetHead>,
    versions: Vec<tenure_rulesets::versions::VersionSummary>,
}

/// A rule set document's test results.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct TestRun {
    passed: bool,
    summary: String,
    cases: Vec<tenure_rulesets::CaseResult>,
}

/// One version against another, as a unified diff.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct Diff {
    from: i64,
    to: i64,
    diff: String,
}

/// `GET /api/v1/rule-sets`: the current version and every version's summary.
pub async fn list(State(s): State<AppState>, c: Authed<Readers>) -> ApiResult {
    let current = s.rule_sets.current(&c.tenant).await?;
    let versions = s.rule_sets.versions(&c.tenant).await?;
    Ok(axum::Json(RuleSetList { current, versions }).into_response())
}

/// `POST /api/v1/rule-sets`: saves a draft; 422 names the field the plugin refused.
pub async fn draft(State(s): State<AppState>, c: Authed<HrAndIt>, body: Bytes) -> ApiResult {
    let input: DraftIn = json_body(&body)?;
    let draft = s
        .rule_sets
        .draft(&c.tenant, &input.document, &c.person, &input.message)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(draft)).into_response())
}

/// `POST /api/v1/rule-sets/test`: checks and tests a document without saving it.
pub async fn test(State(s): State<AppState>, c: Authed<HrAndIt>, body: Bytes) -> ApiResult {
    let input: TestIn = json_body(&body)?;
    let report = s.rule_sets.test(&c.tenant, &input.document).await?;
    Ok(axum::Json(TestRun {
        passed: report.failed() == 0,
        summary: report.summary(),
        cases: report.cases,
    })
    .into_response())
}

/// `GET /api/v1/rule-sets/{version}`: one version with its document and test results.
pub async fn get_version(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath(version): ApiPath<i64>,
) -> ApiResult {
    Ok(axum::Json(s.rule_sets.version(&c.tenant, version).await?).into_response())
}

/// The version to compare with.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct DiffQuery {
    /// Default: the published version.
    /// The version to compare with (default: the current one).
    against: Option<i64>,
}

/// `GET /api/v1/rule-sets/{version}/diff?against=N`: a unified diff.
pub async fn diff(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath(version): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> ApiResult {
    let against = match q.against {
        Some(a) => a,
        None => s
            .rule_sets
            .current(&c.tenant)
            .await?
            .map(|h| h.version)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "against",
                    "no version is published; name one",
                )
            })?,
    };
    let diff = s.rule_sets.diff(&c.tenant, against, version).await?;
    Ok(axum::Json(Diff {
        from: against,
        to: version,
        diff,
    })
    .into_response())
}

/// How far an impact preview goes.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct ImpactQuery {
    /// The most people evaluated (default: everyone).
    limit: Option<usize>,
    /// The most people listed per destination (default 1,000, at most 10,000).
    #[schemars(range(max = 10_000))]
    detail: Option<usize>,
}

/// `GET /api/v1/rule-sets/{version}/impact`: what publishing would change for every known person.
pub async fn impact(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath(version): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ImpactQuery>,
) -> ApiResult {
    let detail = q.detail.unwrap_or(DEFAULT_IMPACT_DETAIL);
    if detail > MAX_IMPACT_DETAIL {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "detail",
            format!("at most {MAX_IMPACT_DETAIL} people are listed per destination"),
        ));
    }
    let limits = tenure_rulesets::impact::ImpactLimits {
        people: q.limit,
        detail,
    };
    Ok(axum::Json(s.rule_sets.impact(&c.tenant, version, limits).await?).into_response())
}

/// `POST /api/v1/rule-sets/{version}/publish`: publish, or roll back to an earlier version.
pub async fn publish(
    State(s): State<AppState>,
    c: Authed<Publishers>,
    ApiPath(version): ApiPath<i64>,
) -> ApiResult {
    Ok(axum::Json(s.rule_sets.publish(&c.tenant, version, &c.person).await?).into_response())
}
