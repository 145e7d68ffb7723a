//! Plugin routes: the registry of plugin versions a tenant may run, uploads (checked, signed,
//! compiled once), activation (a hot swap) and rollback. IT uploads and switches; everyone who
//! reads the tenant's configuration reads the list.

use crate::AppState;
use crate::auth::{Admins, Authed, Readers};
use crate::error::{ApiError, ApiResult, json_body};
use crate::extract::ApiPath;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tenure_registry::{PluginSignature, RegistryError, Upload};

/// The largest upload body: the largest component, base64-encoded, with room for the manifest.
pub const MAX_UPLOAD_BODY_BYTES: usize = tenure_registry::MAX_COMPONENT_BYTES / 3 * 4 + (1 << 20);

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { field, reason } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &field, reason)
            }
            RegistryError::Untrusted(reason) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "signature", reason.to_string())
            }
            RegistryError::NotFound(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "version", format!("{what} not found"))
            }
            RegistryError::Denied(reason) => ApiError::new(StatusCode::CONFLICT, "version", reason),
            RegistryError::Throttled {
                field,
                reason,
                retry_after_secs,
            } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, field, reason).retry_after(retry_after_secs),
            RegistryError::Store(s) => s.into(),
            RegistryError::Runtime(r) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "plugin", r),
        }
    }
}

/// A plugin version to store.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadIn {
    /// The manifest's TOML text.
    manifest: String,
    /// The component, base64.
    component: String,
    /// The publisher's detached signature (`plugin.sig`).
    #[serde(default)]
    signature: Option<PluginSignature>,
}

/// The version to run.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivateIn {
    /// `<manifest version>+<sha256 prefix>`, as the list shows it.
    version: String,
}

/// Where to roll back to.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackIn {
    /// The version to go back to (default: the one the tenant ran before).
    #[serde(default)]
    version: Option<String>,
}

/// A shadow run of a candidate version.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShadowIn {
    version: String,
    /// Evaluate at most this many people (default: everyone).
    #[serde(default)]
    people: Option<usize>,
    /// List at most this many changed people per destination (default 1,000; counts cover all).
    #[serde(default)]
    detail: Option<usize>,
    /// A rules version on live events instead: each person whose job completes in the next this
    /// many seconds is compared; the report is kept when they are over.
    #[serde(default)]
    live_seconds: Option<u64>,
}

/// People listed per destination in a shadow report unless the caller asks otherwise.
const DEFAULT_SHADOW_DETAIL: usize = 1_000;
/// The most people a shadow report lists per destination.
const MAX_SHADOW_DETAIL: usize = 10_000;

/// `POST /api/v1/plugins/{name}/shadow`: runs a candidate version beside the active one on every
/// person (a rules plugin's desired states, a connector's plans, plan-only) and keeps the report
/// (what activating it would change); with `live_seconds`, a rules version on live events (202).
pub async fn shadow(
    State(s): State<AppState>,
    c: Authed<Admins>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> ApiResult {
    let input: ShadowIn = json_body(&body)?;
    let limits = tenure_rulesets::impact::ImpactLimits {
        people: input.people,
        detail: input
            .detail
            .unwrap_or(DEFAULT_SHADOW_DETAIL)
            .min(MAX_SHADOW_DETAIL),
    };
    if let Some(seconds) = input.live_seconds {
        let started = s
            .plugins
            .shadow_live(
                &s.rule_sets,
                &c.tenant,
                &c.person,
                &name,
                &input.version,
                tenure_registry::LivePeriod { seconds, limits },
            )
            .await?;
        return Ok((StatusCode::ACCEPTED, axum::Json(started)).into_response());
    }
    let shadowed = s
        .plugins
        .shadow(&s.rule_sets, &c.tenant, &c.person, &name, &input.version, limits)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(shadowed)).into_response())
}

/// `GET /api/v1/plugins/{name}/shadows/{id}`: one shadow report of the tenant's, whole.
pub async fn shadow_report(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> ApiResult {
    let report = s.plugins.shadow_report(&c.tenant, &name, id).await?;
    Ok(axum::Json(report).into_response())
}

/// `GET /api/v1/plugins/{name}/shadows`: the plugin's shadow reports, newest first (summaries).
pub async fn shadows(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let reports = s.plugins.shadows(&c.tenant, &name).await?;
    Ok(axum::Json(ShadowList { shadows: reports }).into_response())
}

/// `GET /api/v1/plugins`: every plugin the tenant may run, its versions and the one it runs.
pub async fn list(State(s): State<AppState>, c: Authed<Readers>) -> ApiResult {
    let plugins = s.plugins.list(&c.tenant).await?;
    Ok(axum::Json(PluginList { plugins }).into_response())
}

/// A plugin's shadow reports, newest first (summaries).
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct ShadowList {
    shadows: Vec<tenure_store::ReportRow>,
}

/// The plugins a tenant may run.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct PluginList {
    plugins: Vec<tenure_registry::PluginView>,
}

/// `POST /api/v1/plugins`: uploads a version for the tenant; it runs once activated.
pub async fn upload(State(s): State<AppState>, c: Authed<Admins>, body: Bytes) -> ApiResult {
    let input: UploadIn = json_body(&body)?;
    let component = base64::engine::general_purpose::STANDARD
        .decode(input.component.trim())
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "component",
                format!("not base64: {e}"),
            )
        })?;
    let uploaded = s
        .plugins
        .upload(
            &c.tenant,
            &c.person,
            Upload {
                manifest: &input.manifest,
                component: &component,
                signature: input.signature.as_ref(),
            },
        )
        .await?;
    let status = if uploaded.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(uploaded)).into_response())
}

/// `POST /api/v1/plugins/{name}/activate`: the tenant runs `version` for jobs that start from now.
pub async fn activate(
    State(s): State<AppState>,
    c: Authed<Admins>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> ApiResult {
    let input: ActivateIn = json_body(&body)?;
    let done = s
        .plugins
        .activate(&c.tenant, &c.person, &name, &input.version)
        .await?;
    Ok(axum::Json(done).into_response())
}

/// `POST /api/v1/plugins/{name}/rollback`: back to `version`, or to the version run before.
pub async fn rollback(
    State(s): State<AppState>,
    c: Authed<Admins>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> ApiResult {
    let input: RollbackIn = if body.is_empty() {
        RollbackIn::default()
    } else {
        json_body(&body)?
    };
    let done = s
        .plugins
        .rollback(&c.tenant, &c.person, &name, input.version.as_deref())
        .await?;
    Ok(axum::Json(done).into_response())
}

/// `GET /api/v1/connections`: each destination's health as this host sees it.
pub async fn connections(State(s): State<AppState>, c: Authed<Readers>) -> ApiResult {
    Ok(axum::Json(s.pipeline.connections(&c.tenant)?).into_response())
}
