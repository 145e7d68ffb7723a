//! A stateful fake of a Freshservice account's API v2 (tickets and onboarding requests),
//! with the behaviour a ticket connector meets (`shared/research/destinations.md`
//! section 7):
//!
//! - Basic credentials: the API key as user name, `X` as password;
//! - `POST /api/v2/tickets` requiring `subject`, `description`, `status`, `priority`,
//!   `source` and `email` or `requester_id` (validation errors as `{"description":
//!   "Validation failed", "errors": [{"field", "message", "code"}]}`); an unknown email
//!   creates a requester, as Freshservice does; 201 `{"ticket": {...}}`;
//! - `GET /api/v2/tickets/filter?query="tag:'...'"` answering `{"tickets", "total"}`;
//! - `GET /api/v2/onboarding_requests/form` (the form the test sets), `POST
//!   /api/v2/onboarding_requests` refusing a field the form does not have, and `GET
//!   /api/v2/onboarding_requests` newest first;
//! - a per-minute budget ([`FakeFreshservice::set_rate_limit`]): `X-RateLimit-Total`,
//!   `-Remaining` and `-Used-CurrentRequest` on every answer, 429 with `Retry-After` past it
//!   (failed calls count too);
//! - answers lost on purpose ([`FakeFreshservice::lose_answer`]).

use crate::fake_quota::{Budget, Losses, basic};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub const API_KEY: &str = "fs-fake-api-key-0123";

/// The fake account's state.
#[derive(Default)]
pub struct Account {
    pub tickets: Vec<Map<String, Json>>,
    pub onboarding_requests: Vec<Map<String, Json>>,
    /// Requester emails, in creation order (index + 1 is the id).
    pub requesters: Vec<String>,
    /// The onboarding form: `(name, required)`.
    pub form: Vec<(String, bool)>,
    /// Every API request, as `METHOD path?query`.
    pub requests: Vec<String>,
    pub budget: Budget,
    pub losses: Losses,
}

type Shared = Arc<Mutex<Account>>;

/// The running fake.
pub struct FakeFreshservice {
    pub url: String,
    state: Shared,
}

impl FakeFreshservice {
    /// Starts the fake on loopback with a form of `cf_employee_name` (required),
    /// `cf_date_of_joining` (required), `cf_job_title` and `cf_tenure_key`.
    pub async fn start() -> FakeFreshservice {
        let state: Shared = Arc::new(Mutex::new(Account {
            form: vec![
                ("cf_employee_name".into(), true),
                ("cf_date_of_joining".into(), true),
                ("cf_job_title".into(), false),
                ("cf_tenure_key".into(), false),
            ],
            ..Account::default()
        }));
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        FakeFreshservice {
            url: crate::serve_on_loopback(app).await,
            state,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, Account> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At most `limit` requests per `window` (a minute, for Freshservice).
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        self.state().budget.set(limit, window);
    }

    /// The next request starting `METHOD path` is carried out, and its answer lost.
    pub fn lose_answer(&self, request_start: &str) {
        self.state().losses.add(request_start);
    }
}

fn invalid(errors: &[(&str, &str, &str)]) -> Response {
    let errors: Vec<Json> = errors
        .iter()
        .map(|(field, message, code)| json!({"field": field, "message": message, "code": code}))
        .collect();
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"description": "Validation failed", "errors": errors})),
    )
        .into_response()
}

async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let path = uri.path().to_string();
    let request = format!(
        "{method} {path}{}",
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    s.requests.push(request.clone());
    let spent = s.budget.spend();
    let mut answer = if basic(&headers) != Some((API_KEY.to_string(), "X".to_string())) {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": "invalid_credentials",
                "message": "You have to be logged in to perform this action."})),
        )
            .into_response()
    } else if spent.is_some_and(|b| b.over) {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"message": "You have exceeded the limit of requests per minute"})),
        )
            .into_response();
        r.headers_mut().insert(
            "retry-after",
            HeaderValue::from(spent.map_or(1, |b| b.reset_in_s)),
        );
        r
    } else {
        let query: HashMap<String, String> = uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let body: Option<Map<String, Json>> = serde_json::from_slice::<Json>(&body)
            .ok()
            .and_then(|b| b.as_object().cloned());
        let answer = route(&mut s, &method, &path, &query, body);
        if s.losses.take(&request) {
            (StatusCode::BAD_GATEWAY, "lost on purpose").into_response()
        } else {
            answer
        }
    };
    if let Some(b) = spent {
        let h = answer.headers_mut();
        h.insert("x-ratelimit-total", HeaderValue::from(b.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(b.remaining));
        h.insert("x-ratelimit-used-currentrequest", HeaderValue::from(1));
    }
    answer
}

fn route(
    s: &mut Account,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: Option<Map<String, Json>>,
) -> Response {
    match (method.as_str(), path) {
        ("POST", "/api/v2/tickets") => create_ticket(s, body.unwrap_or_default()),
        ("GET", "/api/v2/tickets/filter") => filter(s, query),
        ("GET", "/api/v2/onboarding_requests/form") => {
            let fields: Vec<Json> = s
                .form
                .iter()
                .enumerate()
                .map(|(i, (name, required))| {
                    json!({"name": name, "label": name.trim_start_matches("cf_"), "position": i + 1,
                        "required": required, "type": "text"})
                })
                .collect();
            axum::Json(json!({ "fields": fields })).into_response()
        }
        ("POST", "/api/v2/onboarding_requests") => create_onboarding(s, body.unwrap_or_default()),
        ("GET", "/api/v2/onboarding_requests") => {
            let per_page = query
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30usize)
                .min(100);
            let page = query
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1usize)
                .max(1);
            let newest_first: Vec<Json> = s
                .onboarding_requests
                .iter()
                .rev()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| Json::Object(r.clone()))
                .collect();
            axum::Json(json!({ "onboarding_requests": newest_first })).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": "not_found", "message": "The requested resource could not be found"})),
        )
            .into_response(),
    }
}

fn create_ticket(s: &mut Account, t: Map<String, Json>) -> Response {
    let mut missing = Vec::new();
    for field in ["subject", "description", "status", "priority", "source"] {
        if t.get(field).is_none_or(Json::is_null) {
            missing.push((
                field,
                "It should not be blank as this is a mandatory field",
                "missing_field",
            ));
        }
    }
    for (field, range) in [("status", 2..=5), ("priority", 1..=4)] {
        if let Some(v) = t.get(field)
            && !v.as_u64().is_some_and(|n| range.contains(&n))
        {
            missing.push((field, "It should be one of these values", "invalid_value"));
        }
    }
    let requester = match (
        t.get("requester_id").and_then(Json::as_u64),
        t.get("email").and_then(Json::as_str),
    ) {
        (Some(id), _) if id as usize <= s.requesters.len() && id > 0 => Some(id),
        (Some(_), _) => {
            missing.push((
                "requester_id",
                "There is no contact matching the given requester_id",
                "invalid_value",
            ));
            None
        }
        (None, Some(email)) if email.contains('@') => Some(
            // An unknown email silently becomes a new requester.
            match s.requesters.iter().position(|e| e == email) {
                Some(i) => i as u64 + 1,
                None => {
                    s.requesters.push(email.to_string());
                    s.requesters.len() as u64
                }
            },
        ),
        (None, Some(_)) => {
            missing.push(("email", "It should be a valid email address", "invalid_value"));
            None
        }
        (None, None) => {
            missing.push((
                "requester_id",
                "Please fill at least 1 of email, phone, requester_id fields",
                "missing_field",
            ));
            None
        }
    };
    if !missing.is_empty() {
        return invalid(&missing);
    }
    let mut ticket = t;
    ticket.remove("email");
    ticket.insert("id".into(), json!(s.tickets.len() as u64 + 1));
    ticket.insert("requester_id".into(), json!(requester));
    ticket.entry("type").or_insert(json!("Incident"));
    ticket.entry("tags").or_insert(json!([]));
    s.tickets.push(ticket.clone());
    (StatusCode::CREATED, axum::Json(json!({ "ticket": ticket }))).into_response()
}

/// `query="tag:'x'"` (the only condition the fake reads).
fn filter(s: &Account, query: &HashMap<String, String>) -> Response {
    let q = query
        .get("query")
        .map(|q| q.trim_matches('"').to_string())
        .unwrap_or_default();
    let Some(tag) = q.strip_prefix("tag:'").and_then(|t| t.strip_suffix('\'')) else {
        return invalid(&[("query", "Invalid query", "invalid_value")]);
    };
    let found: Vec<Json> = s
        .tickets
        .iter()
        .filter(|t| {
            t.get("tags")
                .and_then(Json::as_array)
                .is_some_and(|tags| tags.iter().any(|x| x.as_str() == Some(tag)))
        })
        .map(|t| Json::Object(t.clone()))
        .collect();
    let total = found.len();
    axum::Json(json!({ "tickets": found, "total": total })).into_response()
}

fn create_onboarding(s: &mut Account, body: Map<String, Json>) -> Response {
    let Some(fields) = body.get("fields").and_then(Json::as_object).cloned() else {
        return invalid(&[("fields", "It should be a/an key/value pair", "datatype_mismatch")]);
    };
    for name in fields.keys() {
        if !s.form.iter().any(|(f, _)| f == name) {
            return invalid(&[(
                name.as_str(),
                "Unexpected/invalid field in request",
                "invalid_field",
            )]);
        }
    }
    for (name, required) in &s.form {
        if *required && fields.get(name).and_then(Json::as_str).is_none_or(str::is_empty) {
            return invalid(&[(
                name.as_str(),
                "It should not be blank as this is a mandatory field",
                "missing_field",
            )]);
        }
    }
    // The request opens its onboarding ticket.
    let ticket_id = s.tickets.len() as u64 + 1;
    let mut ticket = Map::new();
    ticket.insert("id".into(), json!(ticket_id));
    ticket.insert("subject".into(), json!("Employee Onboarding Request"));
    ticket.insert("type".into(), json!("Service Request"));
    ticket.insert("tags".into(), json!([]));
    s.tickets.push(ticket);
    let mut request = Map::new();
    request.insert("id".into(), json!(s.onboarding_requests.len() as u64 + 1));
    request.insert("status".into(), json!(1));
    request.insert("subject".into(), json!("Employee Onboarding Request"));
    request.insert("ticket_id".into(), json!(ticket_id));
    request.insert("fields".into(), Json::Object(fields));
    s.onboarding_requests.push(request.clone());
    (
        StatusCode::CREATED,
        axum::Json(json!({ "onboarding_request": request })),
    )
        .into_response()
}
