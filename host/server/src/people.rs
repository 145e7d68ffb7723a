//! Lifecycle and reconciliation routes: a person's state and scheduled actions,
//! a contract end recorded through the API, reconciliation runs and the access
//! review.

use crate::AppState;
use crate::auth::{Admins, Auditors, Authed, HrAndIt, Readers};
use crate::error::{ApiError, ApiResult, json_body};
use crate::extract::{ApiPath, ApiQuery};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tenure_pipeline::reconcile::{ACCESS_CSV_HEADER, ReconcileRequest};
use tenure_store::Intake;

/// What to find people by.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PeopleQuery {
    /// A part of the name, the email or the key (`José`, `@acme.test`, `hr:10`): 1-100 characters.
    #[schemars(length(min = 1, max = 100))]
    q: String,
    /// At most this many (default 50, at most 10,000).
    limit: Option<usize>,
}

/// A person found.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct PersonFound {
    person_key: String,
    name: Option<String>,
    email: Option<String>,
    /// The state last applied (none: never applied yet).
    state: Option<tenure_store::LifecycleState>,
    updated_ms: i64,
}

/// `GET /api/v1/people?q=`: people whose name, email or key holds the text, by name.
pub(crate) async fn find_people(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiQuery(q): ApiQuery<PeopleQuery>,
) -> ApiResult {
    let text = q.q.trim();
    if text.is_empty() || text.chars().count() > 100 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "q",
            "give 1 to 100 characters to look for",
        ));
    }
    let rows = s
        .pipeline
        .store()
        .find_people(&c.tenant, text, crate::list_limit(q.limit, 50))
        .await?;
    let found: Vec<PersonFound> = rows
        .into_iter()
        .map(|r| PersonFound {
            person_key: r.person_key,
            name: r.name,
            email: r.email,
            state: r.state,
            updated_ms: r.updated_ms,
        })
        .collect();
    Ok(axum::Json(found).into_response())
}

pub(crate) async fn lifecycle(
    State(s): State<AppState>,
    c: Authed<Readers>,
    ApiPath(person): ApiPath<String>,
) -> ApiResult {
    match s.pipeline.person_lifecycle(&c.tenant, &person).await? {
        Some(view) => Ok(axum::Json(view).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "person",
            format!("no lifecycle record of {person}"),
        )),
    }
}

/// A contractor's last day.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContractEnd {
    /// `YYYY-MM-DD`.
    #[schemars(extend("format" = "date"))]
    end_date: String,
}

/// A contract end, recorded as the person's event.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct ContractEndRecorded {
    person: String,
    end_date: String,
    /// The event that carries it.
    event: i64,
    /// Whether the same end date was recorded before.
    duplicate: bool,
}

pub(crate) async fn contract_end(
    State(s): State<AppState>,
    c: Authed<HrAndIt>,
    ApiPath(person): ApiPath<String>,
    body: Bytes,
) -> ApiResult {
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
        axum::Json(ContractEndRecorded {
            person,
            end_date: req.end_date,
            event,
            duplicate,
        }),
    )
        .into_response())
}

/// What to reconcile (an empty body: every destination, repairing).
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReconcileBody {
    /// One destination (default: all).
    destination: Option<String>,
    /// Report the drift without repairing it.
    #[serde(default)]
    dry_run: bool,
}

pub(crate) async fn reconcile(State(s): State<AppState>, c: Authed<Admins>, body: Bytes) -> ApiResult {
    let req: ReconcileBody = if body.is_empty() {
        ReconcileBody::default()
    } else {
        json_body(&body)?
    };
    s.pipeline
        .check_destination(&c.tenant, req.destination.as_deref())?;
    // The run is its own task: past the request's deadline (a large tenant) the caller
    // gets 408, and the run still finishes and stores its report (listed under
    // /api/v1/reconciliations); it is never cut off half-way through its repairs.
    let pipeline = s.pipeline.clone();
    let (tenant, request) = (
        c.tenant.clone(),
        ReconcileRequest {
            destination: req.destination,
            dry_run: req.dry_run,
            actor: c.name.clone(),
        },
    );
    let run = tokio::spawn(async move { pipeline.reconcile(&tenant, request).await });
    let report = run.await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reconcile",
            format!("the run stopped: {e}"),
        )
    })??;
    Ok(axum::Json(report).into_response())
}

pub(crate) async fn list_reconciliations(State(s): State<AppState>, c: Authed<Auditors>) -> ApiResult {
    Ok(axum::Json(s.pipeline.reconciliations(&c.tenant).await?).into_response())
}

pub(crate) async fn get_reconciliation(
    State(s): State<AppState>,
    c: Authed<Auditors>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult {
    Ok(axum::Json(s.pipeline.reconciliation(&c.tenant, id).await?).into_response())
}

/// Which destination to review.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessReviewQuery {
    /// One destination (default: all).
    destination: Option<String>,
}

/// `GET /api/v1/access-review`: who holds which account and group in the destinations
/// now, and which rule grants it, as CSV streamed a page of people at a time (the
/// export is audited before its first row is sent).
pub(crate) async fn access_review(
    State(s): State<AppState>,
    c: Authed<Auditors>,
    ApiQuery(q): ApiQuery<AccessReviewQuery>,
) -> ApiResult {
    // A bad destination is refused before the status line, not as a cut body.
    s.pipeline
        .check_destination(&c.tenant, q.destination.as_deref())?;
    s.pipeline
        .note_access_review(c.actor(), q.destination.as_deref())
        .await?;
    let review = Review {
        pipeline: s.pipeline.clone(),
        tenant: c.tenant.clone(),
        destination: q.destination,
        after: None,
        state: ReviewState::Header,
    };
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(review, Review::next_chunk));
    Ok(([(header::CONTENT_TYPE, "text/csv")], body).into_response())
}

/// Where an access-review export has got to.
enum ReviewState {
    Header,
    Rows,
    Done,
}

struct Review {
    pipeline: std::sync::Arc<tenure_pipeline::Pipeline>,
    tenant: String,
    destination: Option<String>,
    after: Option<String>,
    state: ReviewState,
}

impl Review {
    /// The next chunk: the header, then one page of people's rows at a time.
    async fn next_chunk(mut self) -> Option<(Result<String, std::io::Error>, Self)> {
        match self.state {
            ReviewState::Done => None,
            ReviewState::Header => {
                self.state = ReviewState::Rows;
                Some((Ok(ACCESS_CSV_HEADER.to_string()), self))
            }
            ReviewState::Rows => {
                let page = self
                    .pipeline
                    .access_review_page(&self.tenant, self.destination.as_deref(), self.after.as_deref())
                    .await;
                match page {
                    Ok(page) => {
                        let chunk: String = page.rows.iter().map(|r| r.csv_line()).collect();
                        match page.next {
                            Some(next) => self.after = Some(next),
                            None => self.state = ReviewState::Done,
                        }
                        Some((Ok(chunk), self))
                    }
                    // The status line is sent already: cutting the body short is the signal.
                    Err(e) => {
                        tracing::error!(error = %e, "access review failed part-way");
                        self.state = ReviewState::Done;
                        Some((Err(std::io::Error::other(e.to_string())), self))
                    }
                }
            }
        }
    }
}
