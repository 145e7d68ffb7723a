//! Errors as the API answers them: a status and a JSON body naming the field
//! and the reason.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tenure_pipeline::PipelineError;
use tenure_store::StoreError;

/// An API error: status plus the field and reason.
pub struct ApiError {
    status: StatusCode,
    field: String,
    reason: String,
    /// Seconds to wait before retrying (`Retry-After`).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, field: &str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: field.into(),
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// The answer's status.
    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The input it is about.
    #[cfg(test)]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Tells the caller when to retry.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(ErrorBody::new(&self.field, self.reason))).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
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
            PipelineError::NotAllowed(n) => ApiError::new(StatusCode::FORBIDDEN, &n.field, n.reason),
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
            e @ PipelineError::Config { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "config", e.to_string())
            }
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What was wrong, and with which input.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// The field, parameter or header at fault (`Authorization`, `person.email`, ...).
    field: String,
    /// Why it was refused.
    reason: String,
}

impl ErrorBody {
    pub fn new(field: &str, reason: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                field: field.into(),
                reason: reason.into(),
            },
        }
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A JSON body as `T`; a refusal names the field.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
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
