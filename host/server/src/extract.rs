//! Path and query parameters read as axum does, but refused as every other input is:
//! a JSON error naming the parameter and the reason (axum's own rejections are text).

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Path parameters as `T`; a value of the wrong type is a 400 naming the parameter.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => {
                use axum::extract::path::ErrorKind;
                use axum::extract::rejection::PathRejection;
                let field = match &rejection {
                    PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                        ErrorKind::ParseErrorAtKey { key, .. }
                        | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                        _ => "path".to_string(),
                    },
                    _ => "path".to_string(),
                };
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    &field,
                    rejection.body_text(),
                ))
            }
        }
    }
}

/// Query parameters as `T`; an unknown, missing or malformed one is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let field = tenure_pipeline::event::error_field(e.path().to_string(), &e.inner().to_string());
            let field = if field == "body" {
                "query".to_string()
            } else {
                field
            };
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                &field,
                e.into_inner().to_string(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<usize>,
    }

    async fn query(uri: &str) -> Result<ApiQuery<Q>, ApiError> {
        let (mut parts, ()) = Request::builder()
            .uri(uri)
            .body(())
            .expect("request")
            .into_parts();
        ApiQuery::<Q>::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn a_bad_query_parameter_is_named() {
        assert_eq!(query("/x?limit=3").await.ok().and_then(|q| q.0.limit), Some(3));
        assert!(query("/x").await.is_ok_and(|q| q.0.limit.is_none()));
        let bad = query("/x?limit=many").await.err().expect("refused");
        assert_eq!(
            (bad.status(), bad.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, "limit")
        );
        let unknown = query("/x?lmit=3").await.err().expect("refused");
        assert_eq!(unknown.field(), "lmit");
    }
}
