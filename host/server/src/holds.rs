//! Plans supervised destinations hold for approval: list them, and approve or reject them,
//! one by one, per person, per destination, or all at once.

use crate::AppState;
use crate::auth::{Authed, Operators, Readers};
use crate::error::{ApiResult, json_body};
use crate::extract::ApiQuery;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use tenure_pipeline::supervision::HoldSelection;
use tenure_store::{HoldDecision, HoldFilter, HoldState};

/// Which held plans to list.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldsQuery {
    /// Only plans in this state (`pending`: waiting for a decision).
    state: Option<HoldState>,
    /// Only this destination's.
    destination: Option<String>,
    /// Only this person's.
    person: Option<String>,
    /// Only ids after this one (paging).
    after_id: Option<i64>,
    /// At most this many (default 100, at most 10,000).
    limit: Option<usize>,
}

/// A decision on held plans.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionIn {
    /// `approve` or `reject`.
    decision: HoldDecision,
    /// These held plans.
    #[serde(default)]
    ids: Vec<i64>,
    /// Every pending plan of this person.
    person: Option<String>,
    /// Every pending plan of this destination.
    destination: Option<String>,
    /// Every pending plan of the tenant (required when nothing else narrows it).
    #[serde(default)]
    all: bool,
    /// Why, kept with each plan and in the audit.
    note: Option<String>,
}

/// `GET /api/v1/holds`: held plans, oldest first.
pub(crate) async fn list_holds(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiQuery(q): ApiQuery<HoldsQuery>,
) -> ApiResult {
    let filter = HoldFilter {
        tenant: c.tenant.clone(),
        state: q.state,
        destination: q.destination,
        person_key: q.person,
        after_id: q.after_id,
        limit: crate::list_limit(q.limit, 100),
    };
    Ok(axum::Json(s.pipeline.holds(filter).await?).into_response())
}

/// `POST /api/v1/holds/decide`: approves or rejects the selected pending plans.
pub(crate) async fn decide_holds(State(s): State<AppState>, c: Authed<Operators>, body: Bytes) -> ApiResult {
    let input: DecisionIn = json_body(&body)?;
    let selection = HoldSelection {
        ids: input.ids,
        person: input.person,
        destination: input.destination,
        all: input.all,
    };
    let decided = s
        .pipeline
        .decide_holds(c.actor(), selection, input.decision, input.note)
        .await?;
    Ok(axum::Json(decided).into_response())
}
