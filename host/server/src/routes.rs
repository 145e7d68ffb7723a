//! The router: every route and the layers around them. Handlers live by topic
//! (`events`, `jobs`, `people`, `rule_sets`, `hooks`, `audit`); each states the
//! roles it allows in its signature and calls the pipeline, never the store.

use crate::audit::{AuditQuery, Readiness, audit, kpi_series, kpis, metrics, ready, verify};
use crate::auth::{
    Admins, Anyone, Auditors, HrAndIt, Operators, Owners, Publishers, Readers, TokenAdmins, Writers,
};
use crate::error::ApiError;
use crate::events::{EventWithJob, PayloadStored, PreviewIn, get_event, post_event, post_payload, preview};
use crate::jobs::{
    ConflictsQuery, GuardApproved, JobsQuery, RevealIn, Revealed, approve_guard, cancel, get_job,
    list_conflicts, list_guards, list_jobs, replay, resolve_conflict, reveal_initial_password,
};
use crate::openapi::{self, Access, Doc, Operation};
use crate::{
    AppState, MAX_BODY_BYTES, accounts, holds, hooks, notifications, oidc, people, plugins, rule_sets,
    sessions,
};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use std::sync::Arc;
use tenure_store::Intake;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let Api { router, operations } = api();
    let description = Arc::new(openapi::document(&operations).to_string());
    crate::console::routes(router)
        .route(
            OPENAPI_PATH,
            get(move || {
                let description = description.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        description.to_string(),
                    )
                }
            }),
        )
        .layer(axum::middleware::map_response(close_after_payload_too_large))
        // A bug reached by one request answers that request 500; the host keeps serving.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// Where the API's OpenAPI description is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The API's OpenAPI 3.1 description (what `GET /api/v1/openapi.json` answers).
pub fn openapi() -> serde_json::Value {
    openapi::document(&api().operations)
}

/// Every documented route (the router's own table).
pub fn operations() -> Vec<Operation> {
    api().operations
}

/// The router being built and the description of each route added to it.
struct Api {
    router: Router<AppState>,
    operations: Vec<Operation>,
}

impl Api {
    fn new() -> Api {
        Api {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Adds a route and its description.
    fn route<H, T>(mut self, method: Method, path: &'static str, handler: H, doc: Doc) -> Api
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = match method {
            Method::GET => MethodFilter::GET,
            Method::POST => MethodFilter::POST,
            Method::PUT => MethodFilter::PUT,
            Method::DELETE => MethodFilter::DELETE,
            _ => MethodFilter::PATCH,
        };
        self.router = self.router.route(path, on(filter, handler));
        self.operations.push(Operation { method, path, doc });
        self
    }

    /// Describes a route that is routed elsewhere.
    fn describe(mut self, method: Method, path: &'static str, doc: Doc) -> Api {
        self.operations.push(Operation { method, path, doc });
        self
    }

    /// Wraps the routes added so far in a body limit (`None`: no limit).
    fn limit(mut self, bytes: Option<usize>) -> Api {
        self.router = match bytes {
            Some(bytes) => self.router.layer(DefaultBodyLimit::max(bytes)),
            None => self.router.layer(DefaultBodyLimit::disable()),
        };
        self
    }

    fn merge(mut self, other: Api) -> Api {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }
}

fn api() -> Api {
    use Method as M;
    Api::new()
        .merge(events_and_jobs())
        .merge(people_and_rules())
        .merge(plugins_and_audit())
        .merge(people_and_tokens())
        .limit(Some(MAX_BODY_BYTES))
        .merge(
            Api::new()
                .route(
                    M::POST,
                    "/api/v1/plugins",
                    plugins::upload,
                    Doc::new(
                        "plugins",
                        "Upload a plugin version (manifest, component, signature)",
                    )
                    .roles::<Admins>()
                    .json::<plugins::UploadIn>(true)
                    .answers::<tenure_registry::Uploaded>(201, "stored")
                    .answers::<tenure_registry::Uploaded>(200, "this version was stored already")
                    .errors(&[409, 429]),
                )
                .limit(Some(plugins::MAX_UPLOAD_BODY_BYTES)),
        )
        .merge(
            Api::new()
                .route(M::POST, "/hooks/{source}", hooks::receive, hooks::doc())
                // The route Lever's webhooks were first configured with.
                .route(M::POST, "/hooks/lever/{source}", hooks::receive, hooks::doc())
                .limit(None),
        )
        // Routed by `router`, which builds the description from this table.
        .describe(
            M::GET,
            OPENAPI_PATH,
            Doc::new("health", "This description (OpenAPI 3.1)")
                .answers::<serde_json::Value>(200, "the OpenAPI document"),
        )
}

fn events_and_jobs() -> Api {
    use Method as M;
    Api::new()
        .route(
            M::POST,
            "/api/v1/events",
            post_event,
            Doc::new("events", "Submit a person event")
                .roles::<Writers>()
                .header(
                    "Idempotency-Key",
                    "the client's key; a repeat answers 200 with the first event",
                )
                .json::<tenure_pipeline::event::EventIn>(true)
                .answers::<Intake>(202, "stored with its job")
                .answers::<Intake>(200, "a duplicate of a stored event"),
        )
        .route(
            M::GET,
            "/api/v1/events/{id}",
            get_event,
            Doc::new("events", "A stored event and its job")
                .roles::<Readers>()
                .path::<i64>("id")
                .answers::<EventWithJob>(200, "the event and its job"),
        )
        .route(
            M::POST,
            "/api/v1/sources/{source}/payload",
            post_payload,
            Doc::new("events", "Upload a file or batch for a source plugin to parse")
                .roles::<Writers>()
                .path::<String>("source")
                .header(
                    "X-Tenure-Reason",
                    "an IT administrator's reason to bypass a webhook signature",
                )
                .bytes("application/octet-stream")
                .answers::<PayloadStored>(202, "every event stored")
                .answers::<PayloadStored>(207, "some records refused; the rest stored")
                .errors(&[502]),
        )
        .route(
            M::POST,
            "/api/v1/preview",
            preview,
            Doc::new("events", "What a person's record would do, writing nothing")
                .roles::<HrAndIt>()
                .json::<PreviewIn>(true)
                .answers::<tenure_pipeline::preview::Preview>(200, "the plan per destination")
                .errors(&[404, 502]),
        )
        .route(
            M::GET,
            "/api/v1/jobs",
            list_jobs,
            Doc::new("jobs", "Jobs, newest first")
                .roles::<Readers>()
                .query::<JobsQuery>()
                .answers::<Vec<tenure_store::JobRow>>(200, "the jobs"),
        )
        .route(
            M::GET,
            "/api/v1/jobs/{id}",
            get_job,
            Doc::new("jobs", "A job with its event and operations")
                .roles::<Readers>()
                .path::<i64>("id")
                .answers::<tenure_store::JobDetail>(200, "the job"),
        )
        .route(
            M::POST,
            "/api/v1/jobs/{id}/replay",
            replay,
            Doc::new("jobs", "Replay a dead, cancelled or completed job")
                .roles::<Operators>()
                .path::<i64>("id")
                .answers::<tenure_store::JobRow>(200, "the job, queued again")
                .errors(&[409]),
        )
        .route(
            M::POST,
            "/api/v1/jobs/{id}/cancel",
            cancel,
            Doc::new("jobs", "Cancel a job that has not finished")
                .roles::<Operators>()
                .path::<i64>("id")
                .answers::<tenure_store::JobRow>(200, "the job, cancelled")
                .errors(&[409]),
        )
        .route(
            M::GET,
            "/api/v1/conflicts",
            list_conflicts,
            Doc::new("jobs", "Matching conflicts awaiting a decision")
                .roles::<Operators>()
                .query::<ConflictsQuery>()
                .answers::<Vec<tenure_store::ConflictRow>>(200, "the conflicts"),
        )
        .route(
            M::POST,
            "/api/v1/conflicts/{id}/resolve",
            resolve_conflict,
            Doc::new("jobs", "Decide a conflict: merge with an account, or skip")
                .roles::<Operators>()
                .path::<i64>("id")
                .json::<tenure_store::ConflictDecision>(true)
                .answers::<tenure_store::ConflictRow>(200, "the decided conflict")
                .errors(&[409]),
        )
        .route(
            M::GET,
            "/api/v1/connections",
            plugins::connections,
            Doc::new(
                "plugins",
                "Each destination's health here: last success, last error, held back by a 429",
            )
            .roles::<Readers>()
            .answers::<Vec<tenure_pipeline::connections::DestinationHealth>>(200, "the destinations"),
        )
        .route(
            M::GET,
            "/api/v1/holds",
            holds::list_holds,
            Doc::new("jobs", "Plans supervised destinations hold for approval")
                .roles::<Readers>()
                .query::<holds::HoldsQuery>()
                .answers::<Vec<tenure_store::HoldRow>>(200, "the held plans"),
        )
        .route(
            M::POST,
            "/api/v1/holds/decide",
            holds::decide_holds,
            Doc::new(
                "jobs",
                "Approve or reject held plans: by id, per person, per destination, or all",
            )
            .roles::<Operators>()
            .json::<holds::DecisionIn>(true)
            .answers::<tenure_pipeline::supervision::Decided>(200, "the plans decided; their jobs run again"),
        )
        .route(
            M::POST,
            "/api/v1/initial-passwords/reveal",
            reveal_initial_password,
            Doc::new("jobs", "Reveal an account's initial password (audited)")
                .roles::<Admins>()
                .json::<RevealIn>(true)
                .answers::<Revealed>(200, "the password")
                .errors(&[404]),
        )
        .route(
            M::GET,
            "/api/v1/guards",
            list_guards,
            Doc::new("jobs", "Mass-change guards per destination")
                .roles::<Operators>()
                .answers::<Vec<tenure_store::Guard>>(200, "the guards"),
        )
        .route(
            M::POST,
            "/api/v1/guards/{destination}/approve",
            approve_guard,
            Doc::new("jobs", "Approve a tripped guard: release the jobs it held")
                .roles::<Operators>()
                .path::<String>("destination")
                .answers::<GuardApproved>(200, "the jobs released")
                .errors(&[409]),
        )
        .route(
            M::GET,
            "/api/v1/deliveries",
            hooks::list_deliveries,
            Doc::new("events", "Webhook deliveries, newest first")
                .roles::<Readers>()
                .query::<hooks::DeliveriesQuery>()
                .answers::<Vec<tenure_store::DeliveryRow>>(200, "the deliveries"),
        )
        .route(
            M::POST,
            "/api/v1/deliveries/{id}/replay",
            hooks::replay_delivery,
            Doc::new("events", "Replay a dead or rejected delivery")
                .roles::<Operators>()
                .path::<i64>("id")
                .answers::<tenure_store::DeliveryRow>(200, "the delivery, queued again")
                .errors(&[409]),
        )
        .route(
            M::GET,
            "/api/v1/notifications",
            notifications::list,
            Doc::new("events", "Notifications, newest first")
                .roles::<Readers>()
                .query::<notifications::ListQuery>()
                .answers::<Vec<tenure_store::NotificationRow>>(200, "the notifications"),
        )
}

fn people_and_rules() -> Api {
    use Method as M;
    Api::new()
        .route(
            M::GET,
            "/api/v1/people",
            people::find_people,
            Doc::new("people", "Find people by a part of their name, email or key")
                .roles::<Readers>()
                .query::<people::PeopleQuery>()
                .answers::<Vec<people::PersonFound>>(200, "the people found, by name")
                .errors(&[422]),
        )
        .route(
            M::GET,
            "/api/v1/people/{person}/lifecycle",
            people::lifecycle,
            Doc::new(
                "people",
                "A person's lifecycle state, dated facts and scheduled actions",
            )
            .roles::<Readers>()
            .path::<String>("person")
            .answers::<tenure_pipeline::people::PersonLifecycle>(200, "the lifecycle"),
        )
        .route(
            M::POST,
            "/api/v1/people/{person}/contract-end",
            people::contract_end,
            Doc::new("people", "Record a contractor's end date")
                .roles::<HrAndIt>()
                .path::<String>("person")
                .json::<people::ContractEnd>(true)
                .answers::<people::ContractEndRecorded>(202, "recorded as an event"),
        )
        .route(
            M::POST,
            "/api/v1/reconcile",
            people::reconcile,
            Doc::new(
                "people",
                "Reconcile the destinations' accounts with the desired state",
            )
            .roles::<Admins>()
            .json::<people::ReconcileBody>(false)
            .answers::<tenure_pipeline::reconcile::ReconcileReport>(200, "the report (drift, repairs)")
            .errors(&[502]),
        )
        .route(
            M::GET,
            "/api/v1/reconciliations",
            people::list_reconciliations,
            Doc::new("people", "Stored reconciliation reports")
                .roles::<Auditors>()
                .answers::<Vec<tenure_store::ReportRow>>(200, "the reports' summaries"),
        )
        .route(
            M::GET,
            "/api/v1/reconciliations/{id}",
            people::get_reconciliation,
            Doc::new("people", "One reconciliation report")
                .roles::<Auditors>()
                .path::<i64>("id")
                .answers::<tenure_pipeline::reconcile::ReconcileReport>(200, "the report"),
        )
        .route(
            M::GET,
            "/api/v1/access-review",
            people::access_review,
            Doc::new(
                "people",
                "Who holds which account and group, and the rule that grants it (CSV)",
            )
            .roles::<Auditors>()
            .query::<people::AccessReviewQuery>()
            .answers_text(200, "text/csv", "the review"),
        )
        .route(
            M::GET,
            "/api/v1/rule-sets",
            rule_sets::list,
            Doc::new("rule sets", "The published version and every version")
                .roles::<Readers>()
                .answers::<rule_sets::RuleSetList>(200, "the versions"),
        )
        .route(
            M::POST,
            "/api/v1/rule-sets",
            rule_sets::draft,
            Doc::new("rule sets", "Store a draft version (validated and tested)")
                .roles::<HrAndIt>()
                .json::<rule_sets::DraftIn>(true)
                .answers::<tenure_rulesets::versions::Draft>(201, "the draft with its test results")
                .errors(&[503]),
        )
        .route(
            M::POST,
            "/api/v1/rule-sets/test",
            rule_sets::test,
            Doc::new("rule sets", "Run a rule set document's own tests")
                .roles::<HrAndIt>()
                .json::<rule_sets::TestIn>(true)
                .answers::<rule_sets::TestRun>(200, "the results"),
        )
        .route(
            M::GET,
            "/api/v1/rule-sets/{version}",
            rule_sets::get_version,
            Doc::new("rule sets", "One version")
                .roles::<Readers>()
                .path::<i64>("version")
                .answers::<tenure_store::RuleSetVersion>(200, "the version"),
        )
        .route(
            M::GET,
            "/api/v1/rule-sets/{version}/diff",
            rule_sets::diff,
            Doc::new("rule sets", "A version against the published one (or another)")
                .roles::<Readers>()
                .path::<i64>("version")
                .query::<rule_sets::DiffQuery>()
                .answers::<rule_sets::Diff>(200, "the unified diff"),
        )
        .route(
            M::GET,
            "/api/v1/rule-sets/{version}/impact",
            rule_sets::impact,
            Doc::new("rule sets", "What publishing a version would change for everyone")
                .roles::<Readers>()
                .path::<i64>("version")
                .query::<rule_sets::ImpactQuery>()
                .answers::<tenure_rulesets::impact::ImpactReport>(200, "the impact")
                .errors(&[429]),
        )
        .route(
            M::POST,
            "/api/v1/rule-sets/{version}/publish",
            rule_sets::publish,
            Doc::new("rule sets", "Publish a version (four eyes: not by its author)")
                .roles::<Publishers>()
                .path::<i64>("version")
                .answers::<tenure_rulesets::versions::Published>(200, "published")
                .errors(&[409]),
        )
}

fn people_and_tokens() -> Api {
    use Method as M;
    Api::new()
        .route(
            M::POST,
            "/api/v1/session",
            sessions::sign_in,
            Doc::new(
                "sign-in",
                "Sign a person in: a session cookie and the CSRF token for its changes",
            )
            .json::<sessions::SignIn>(true)
            .answers::<sessions::Whoami>(200, "signed in; the cookie is set")
            .errors(&[401, 415, 429, 503]),
        )
        .route(
            M::GET,
            "/api/v1/session/oidc/{tenant}",
            oidc::start,
            Doc::new(
                "sign-in",
                "Sign a person in with the tenant's OpenID provider: a redirect to the provider",
            )
            .path::<String>("tenant")
            .query::<oidc::StartQuery>()
            .answers_empty(
                303,
                "to the provider's authorization endpoint (the sign-in cookie is set)",
            )
            .errors(&[502]),
        )
        .route(
            M::GET,
            "/api/v1/session/oidc/callback",
            oidc::callback,
            Doc::new(
                "sign-in",
                "Where the provider sends the person back: a session starts, then a redirect",
            )
            .query::<oidc::CallbackQuery>()
            .answers_empty(303, "signed in; the session and CSRF cookies are set")
            .errors(&[401, 403, 404, 502, 503]),
        )
        .route(
            M::GET,
            "/api/v1/session",
            sessions::whoami,
            Doc::new("sign-in", "Who the caller is")
                .roles::<Anyone>()
                .answers::<sessions::Whoami>(200, "the caller"),
        )
        .route(
            M::DELETE,
            "/api/v1/session",
            sessions::sign_out,
            Doc::new("sign-in", "Sign out: the session ends")
                .roles::<Anyone>()
                .answers_empty(204, "signed out; the cookie is cleared")
                .errors(&[422]),
        )
        .route(
            M::GET,
            "/api/v1/users",
            accounts::list_users,
            Doc::new("sign-in", "People's accounts")
                .roles::<Owners>()
                .answers::<Vec<tenure_store::UserRow>>(200, "the accounts"),
        )
        .route(
            M::POST,
            "/api/v1/users",
            accounts::create_user,
            Doc::new("sign-in", "Make an account for a person")
                .roles::<Owners>()
                .json::<accounts::UserIn>(true)
                .answers::<tenure_store::UserRow>(201, "made")
                .errors(&[409]),
        )
        .route(
            M::POST,
            "/api/v1/users/{login}",
            accounts::change_user,
            Doc::new("sign-in", "Change an account: roles, password, disabled")
                .roles::<Owners>()
                .path::<String>("login")
                .json::<accounts::UserChangeIn>(true)
                .answers::<tenure_store::UserRow>(200, "changed")
                .errors(&[409]),
        )
        .route(
            M::GET,
            "/api/v1/tokens",
            accounts::list_tokens,
            Doc::new("sign-in", "API tokens made here (never the tokens themselves)")
                .roles::<TokenAdmins>()
                .answers::<Vec<tenure_store::ApiTokenRow>>(200, "the tokens"),
        )
        .route(
            M::POST,
            "/api/v1/tokens",
            accounts::create_token,
            Doc::new("sign-in", "Make an API token (shown once)")
                .roles::<TokenAdmins>()
                .json::<accounts::TokenIn>(true)
                .answers::<accounts::TokenMade>(201, "the token, shown this once")
                .errors(&[409]),
        )
        .route(
            M::DELETE,
            "/api/v1/tokens/{name}",
            accounts::revoke_token,
            Doc::new("sign-in", "Revoke an API token")
                .roles::<TokenAdmins>()
                .path::<String>("name")
                .answers::<accounts::TokenRevoked>(200, "revoked"),
        )
}

fn plugins_and_audit() -> Api {
    use Method as M;
    Api::new()
        .route(
            M::GET,
            "/api/v1/plugins",
            plugins::list,
            Doc::new("plugins", "Plugins with their versions and the active one")
                .roles::<Readers>()
                .answers::<plugins::PluginList>(200, "the plugins"),
        )
        .route(
            M::POST,
            "/api/v1/plugins/{name}/activate",
            plugins::activate,
            Doc::new("plugins", "Activate a version for the tenant (hot swap)")
                .roles::<Admins>()
                .path::<String>("name")
                .json::<plugins::ActivateIn>(true)
                .answers::<tenure_registry::Activated>(200, "activated")
                .errors(&[409]),
        )
        .route(
            M::POST,
            "/api/v1/plugins/{name}/rollback",
            plugins::rollback,
            Doc::new("plugins", "Go back to the version before (or a named one)")
                .roles::<Admins>()
                .path::<String>("name")
                .json::<plugins::RollbackIn>(false)
                .answers::<tenure_registry::Activated>(200, "activated")
                .errors(&[409]),
        )
        .route(
            M::POST,
            "/api/v1/plugins/{name}/shadow",
            plugins::shadow,
            Doc::new(
                "plugins",
                "Run a candidate version beside the active one (plan only)",
            )
            .roles::<Admins>()
            .path::<String>("name")
            .json::<plugins::ShadowIn>(true)
            .answers::<tenure_registry::Shadowed>(201, "the report")
            .answers::<tenure_registry::LiveStarted>(202, "a live shadow run started")
            .errors(&[409, 429]),
        )
        .route(
            M::GET,
            "/api/v1/plugins/{name}/shadows",
            plugins::shadows,
            Doc::new("plugins", "A plugin's shadow reports")
                .roles::<Readers>()
                .path::<String>("name")
                .answers::<plugins::ShadowList>(200, "the reports' summaries"),
        )
        .route(
            M::GET,
            "/api/v1/plugins/{name}/shadows/{id}",
            plugins::shadow_report,
            Doc::new("plugins", "One shadow report")
                .roles::<Readers>()
                .path::<String>("name")
                .path::<i64>("id")
                .answers::<tenure_store::ReportRow>(200, "the report"),
        )
        .route(
            M::GET,
            "/api/v1/audit",
            audit,
            Doc::new(
                "audit",
                "The tenant's audit entries (JSON, JSON lines or CSV), streamed",
            )
            .roles::<Auditors>()
            .query::<AuditQuery>()
            .answers::<Vec<tenure_store::AuditEntry>>(200, "the entries")
            .answers_text(200, "application/x-ndjson", "the entries")
            .answers_text(200, "text/csv", "the entries"),
        )
        .route(
            M::GET,
            "/api/v1/audit/verify",
            verify,
            Doc::new("audit", "Verify the tenant's audit chain")
                .roles::<Auditors>()
                .answers::<tenure_pipeline::admin::TenantVerifyReport>(200, "intact")
                .answers::<tenure_pipeline::admin::TenantVerifyReport>(409, "broken; the report says where"),
        )
        .route(
            M::GET,
            "/api/v1/kpis",
            kpis,
            Doc::new(
                "audit",
                "Time-to-provision, first-day access and errors per 1,000 events",
            )
            .roles::<Readers>()
            .answers::<tenure_store::Kpis>(200, "the KPIs"),
        )
        .route(
            M::GET,
            "/api/v1/kpis/series",
            kpi_series,
            Doc::new(
                "audit",
                "The KPIs per hour or day, per source and per destination",
            )
            .roles::<Readers>()
            .query::<crate::audit::KpiSeriesQuery>()
            .answers::<tenure_store::KpiSeries>(200, "the series")
            .errors(&[422]),
        )
        .route(
            M::GET,
            "/metrics",
            metrics,
            Doc::new("health", "Prometheus metrics")
                .access(Access::MetricsToken)
                .answers_text(200, "text/plain", "the metrics"),
        )
        .route(
            M::GET,
            "/healthz",
            || async { "ok" },
            Doc::new("health", "Liveness").answers_text(200, "text/plain", "ok"),
        )
        .route(
            M::GET,
            "/readyz",
            ready,
            Doc::new("health", "Readiness: the store and the sources' pollers")
                .answers::<Readiness>(200, "ready")
                .answers::<Readiness>(503, "not ready"),
        )
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
