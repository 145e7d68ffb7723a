//! The router: every route and the layers around them. Handlers live by topic
//! (`events`, `jobs`, `people`, `rule_sets`, `hooks`, `audit`); each states the
//! roles it allows in its signature and calls the pipeline, never the store.

use crate::audit::{audit, kpis, metrics, ready, verify};
use crate::error::ApiError;
use crate::events::{get_event, post_event, post_payload, preview};
use crate::jobs::{
    approve_guard, cancel, get_job, list_conflicts, list_guards, list_jobs, replay, resolve_conflict,
    reveal_initial_password,
};
use crate::{AppState, MAX_BODY_BYTES, hooks, notifications, people, plugins, rule_sets};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

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
        .route("/api/v1/notifications", get(notifications::list))
        .route("/api/v1/people/{person}/lifecycle", get(people::lifecycle))
        .route("/api/v1/people/{person}/contract-end", post(people::contract_end))
        .route("/api/v1/reconcile", post(people::reconcile))
        .route("/api/v1/reconciliations", get(people::list_reconciliations))
        .route("/api/v1/reconciliations/{id}", get(people::get_reconciliation))
        .route("/api/v1/access-review", get(people::access_review))
        .route("/api/v1/guards/{destination}/approve", post(approve_guard))
        .route("/api/v1/rule-sets", get(rule_sets::list).post(rule_sets::draft))
        .route("/api/v1/rule-sets/test", post(rule_sets::test))
        .route("/api/v1/rule-sets/{version}", get(rule_sets::get_version))
        .route("/api/v1/rule-sets/{version}/diff", get(rule_sets::diff))
        .route("/api/v1/rule-sets/{version}/impact", get(rule_sets::impact))
        .route("/api/v1/rule-sets/{version}/publish", post(rule_sets::publish))
        .route("/api/v1/plugins", get(plugins::list))
        .route("/api/v1/plugins/{name}/activate", post(plugins::activate))
        .route("/api/v1/plugins/{name}/rollback", post(plugins::rollback))
        .route("/api/v1/plugins/{name}/shadow", post(plugins::shadow))
        .route("/api/v1/plugins/{name}/shadows", get(plugins::shadows))
        .route("/api/v1/plugins/{name}/shadows/{id}", get(plugins::shadow_report))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/kpis", get(kpis))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(
            Router::new()
                .route("/api/v1/plugins", post(plugins::upload))
                .layer(DefaultBodyLimit::max(plugins::MAX_UPLOAD_BODY_BYTES)),
        )
        .merge(
            Router::new()
                .route("/hooks/{source}", post(hooks::receive))
                // The route Lever's webhooks were first configured with.
                .route("/hooks/lever/{source}", post(hooks::receive))
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
