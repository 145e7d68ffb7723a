//! The notification queue, as readers see it: what was queued, sent, retried or gave up
//! (subjects and recipients; never the bodies).

use crate::AppState;
use crate::auth::{Authed, Readers};
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;

/// How many notifications to list.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// At most this many (default 100, at most 10,000).
    limit: Option<usize>,
}

pub(crate) async fn list(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    let rows = s
        .pipeline
        .notifications(&c.tenant, crate::list_limit(q.limit, 100))
        .await?;
    Ok(axum::Json(rows).into_response())
}
