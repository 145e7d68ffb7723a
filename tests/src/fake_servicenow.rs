//! A stateful fake of a ServiceNow instance's Table and Service Catalog APIs, with the
//! behaviour a ticket connector meets (ServiceNow's REST API reference, as summarised in
//! `shared/research/destinations.md` section 6):
//!
//! - Basic credentials, or a Bearer token from `POST /oauth_token.do` (client credentials);
//! - `Accept` and `Content-Type` required on POST and PATCH (400 otherwise);
//! - `POST /api/now/table/{table}`: 201, `Location`, `{"result": {...}}`, numbers per table
//!   (`INC0010001`); with `sysparm_input_display_value=true` the reference columns
//!   `assignment_group` and `caller_id` take a display value (a group's name, a user's
//!   name or email) and hold the sys_id, empty when nothing has that name (as ServiceNow
//!   does); `GET` with `sysparm_query` (`a=b^c=d`, `cISEMPTY`, `sys_created_on>=` with
//!   `javascript:gs.hoursAgoStart(N)`, `request.correlation_id` through the reference),
//!   `sysparm_fields`, `sysparm_limit`; every record has its `sys_created_on`;
//!   `PATCH /api/now/table/{table}/{sys_id}`;
//! - `POST /api/sn_sc/servicecatalog/items/{item}/order_now`: a `sc_request` (`REQ...`) and
//!   its `sc_req_item` with the variables, answered `{"result": {"sys_id", "number",
//!   "request_number", "request_id", "table"}}`;
//! - errors as `{"error": {"message", "detail"}, "status": "failure"}`;
//! - a rate limit per window ([`FakeServiceNow::set_rate_limit`]): `X-RateLimit-Limit`,
//!   `-Reset` (UNIX seconds) and `-Rule` on every answer, 429 with `Retry-After` past it;
//! - answers lost on purpose ([`FakeServiceNow::lose_answer`]).

use crate::fake_quota::{Budget, Losses, basic};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub const USER: &str = "tenure.integration";
pub const PASSWORD: &str = "sn-fake-password";
pub const CLIENT_ID: &str = "snclient0123456789";
pub const CLIENT_SECRET: &str = "sn-fake-client-secret";

/// The fake instance's state.
#[derive(Default)]
pub struct Instance {
    /// Records per table, in creation order.
    pub tables: BTreeMap<String, Vec<Map<String, Json>>>,
    /// Catalog item sys_id -> name.
    pub items: BTreeMap<String, String>,
    /// Every API request, as `METHOD path?query`.
    pub requests: Vec<String>,
    pub budget: Budget,
    pub losses: Losses,
    tokens: BTreeSet<String>,
    next: u64,
}

type Shared = Arc<Mutex<Instance>>;

/// The running fake.
pub struct FakeServiceNow {
    /// The instance's root URL.
    pub url: String,
    state: Shared,
}

impl Instance {
    fn sys_id(&mut self) -> String {
        self.next += 1;
        format!("{:032x}", 0x5e_u128 << 112 | u128::from(self.next))
    }

    fn number(&mut self, table: &str) -> String {
        let prefix = match table {
            "incident" => "INC",
            "sc_request" => "REQ",
            "sc_req_item" => "RITM",
            "sc_task" => "SCTASK",
            _ => "TKT",
        };
        let n = self.tables.get(table).map_or(0, Vec::len) + 10_001;
        format!("{prefix}{n:07}")
    }

    fn insert(&mut self, table: &str, mut record: Map<String, Json>) -> Map<String, Json> {
        let sys_id = self.sys_id();
        let number = self.number(table);
        record.insert("sys_id".into(), Json::String(sys_id));
        record.insert("number".into(), Json::String(number));
        let created = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        record.insert("sys_created_on".into(), Json::String(created));
        // Every task starts active (ServiceNow clears `active` when it is closed or cancelled).
        record.entry("active").or_insert_with(|| json!("true"));
        record.entry("state").or_insert_with(|| json!("New"));
        self.tables.entry(table.into()).or_default().push(record.clone());
        record
    }

    /// A field of `record` as text, through references (`request.correlation_id`).
    fn walk(&self, table: &str, record: &Map<String, Json>, field: &str) -> Option<String> {
        match field.split_once('.') {
            None => Some(record.get(field)?.as_str()?.to_string()),
            Some((reference, rest)) => {
                let target = REFERENCES
                    .iter()
                    .find(|(t, column, _)| *t == table && *column == reference)?
                    .2;
                let sys_id = record.get(reference)?.as_str()?;
                let row = self
                    .tables
                    .get(target)?
                    .iter()
                    .find(|r| r.get("sys_id").and_then(Json::as_str) == Some(sys_id))?;
                self.walk(target, row, rest)
            }
        }
    }

    /// The sys_id of the first record of `table` whose `column` is `value`.
    fn find(&self, table: &str, column: &str, value: &str) -> Option<String> {
        self.tables.get(table)?.iter().find_map(|r| {
            (r.get(column).and_then(Json::as_str) == Some(value))
                .then(|| r.get("sys_id").and_then(Json::as_str).unwrap_or("").to_string())
        })
    }
}

impl FakeServiceNow {
    /// Starts the fake on loopback.
    pub async fn start() -> FakeServiceNow {
        let state: Shared = Arc::new(Mutex::new(Instance::default()));
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        FakeServiceNow {
            url: crate::serve_on_loopback(app).await,
            state,
        }
    }

    /// The state, to read or arrange.
    pub fn state(&self) -> MutexGuard<'_, Instance> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a user; its sys_id.
    pub fn user(&self, user_name: &str, email: &str) -> String {
        let mut s = self.state();
        let mut r = Map::new();
        r.insert("user_name".into(), json!(user_name));
        r.insert("email".into(), json!(email));
        r.insert("name".into(), json!(user_name));
        let r = s.insert("sys_user", r);
        r["sys_id"].as_str().unwrap_or_default().to_string()
    }

    /// Adds an assignment group; its sys_id.
    pub fn group(&self, name: &str) -> String {
        let mut s = self.state();
        let mut r = Map::new();
        r.insert("name".into(), json!(name));
        let r = s.insert("sys_user_group", r);
        r["sys_id"].as_str().unwrap_or_default().to_string()
    }

    /// Adds a catalog item; its sys_id.
    pub fn item(&self, name: &str) -> String {
        let mut s = self.state();
        let id = s.sys_id();
        s.items.insert(id.clone(), name.to_string());
        id
    }

    /// Adds a catalog item with a known sys_id (an example's rule set names it).
    pub fn item_with_id(&self, sys_id: &str, name: &str) {
        self.state().items.insert(sys_id.to_string(), name.to_string());
    }

    /// The records of a table.
    /// Closes the record numbered `number` in `table`, as an agent would (`state` Closed,
    /// `active` false).
    pub fn close(&self, table: &str, number: &str) {
        let mut s = self.state();
        let rows = s.tables.entry(table.into()).or_default();
        let row = rows
            .iter_mut()
            .find(|r| r.get("number").and_then(Json::as_str) == Some(number))
            .unwrap_or_else(|| panic!("no {table} record {number}"));
        row.insert("state".into(), json!("Closed"));
        row.insert("active".into(), json!("false"));
    }

    pub fn records(&self, table: &str) -> Vec<Map<String, Json>> {
        self.state().tables.get(table).cloned().unwrap_or_default()
    }

    /// At most `limit` API requests per `window`; past it, 429 until the window resets.
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        self.state().budget.set(limit, window);
    }

    /// The next request starting `METHOD path` is carried out, and its answer lost.
    pub fn lose_answer(&self, request_start: &str) {
        self.state().losses.add(request_start);
    }
}

fn failure(status: StatusCode, message: &str, detail: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "detail": detail}, "status": "failure"})),
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
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if path == "/oauth_token.do" && method == Method::POST {
        return token(&mut s, &body);
    }
    let request = format!(
        "{method} {path}{}",
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    s.requests.push(request.clone());
    let authorized = match basic(&headers) {
        Some((u, p)) => u == USER && p == PASSWORD,
        None => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| s.tokens.contains(t)),
    };
    if !authorized {
        return failure(
            StatusCode::UNAUTHORIZED,
            "User Not Authenticated",
            "Required to provide Auth information",
        );
    }
    let spent = s.budget.spend();
    let mut answer = if spent.is_some_and(|b| b.over) {
        let mut r = failure(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            "Rate limit of requests per window exceeded for the rule Tenure integration",
        );
        let wait = spent.map_or(1, |b| b.reset_in_s);
        r.headers_mut().insert("retry-after", HeaderValue::from(wait));
        r
    } else {
        let json_header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/json"))
        };
        if (method == Method::POST || method == Method::PATCH)
            && !(json_header("accept") && json_header("content-type"))
        {
            failure(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Accept and Content-Type headers are required",
            )
        } else {
            let answer = route(&mut s, &method, &path, &query, &body);
            if s.losses.take(&request) {
                failure(
                    StatusCode::BAD_GATEWAY,
                    "Bad gateway",
                    "the answer was lost on purpose",
                )
            } else {
                answer
            }
        }
    };
    if let Some(b) = spent {
        let h = answer.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(b.limit));
        h.insert("x-ratelimit-reset", HeaderValue::from(b.reset_at()));
        h.insert("x-ratelimit-rule", HeaderValue::from_static("tenure-integration"));
    }
    answer
}

fn token(s: &mut Instance, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials")
        || field("client_id") != Some(CLIENT_ID)
        || field("client_secret") != Some(CLIENT_SECRET)
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "access_denied", "error_description": "access_denied"})),
        )
            .into_response();
    }
    let token = format!("sn-token-{}", s.tokens.len() + 1);
    s.tokens.insert(token.clone());
    axum::Json(
        json!({"access_token": token, "scope": "useraccount", "token_type": "Bearer", "expires_in": 1799}),
    )
    .into_response()
}

fn route(
    s: &mut Instance,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Response {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let json_body = || {
        serde_json::from_slice::<Json>(body)
            .ok()
            .and_then(|b| b.as_object().cloned())
    };
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "now", "table", table]) => list(s, table, query),
        ("POST", ["api", "now", "table", table]) => match json_body() {
            Some(record) => create(s, table, record, query),
            None => failure(
                StatusCode::BAD_REQUEST,
                "Exception while reading request",
                "the body is not a JSON object",
            ),
        },
        ("PATCH", ["api", "now", "table", table, sys_id]) => match json_body() {
            Some(changes) => patch(s, table, sys_id, changes),
            None => failure(
                StatusCode::BAD_REQUEST,
                "Exception while reading request",
                "the body is not a JSON object",
            ),
        },
        ("POST", ["api", "sn_sc", "servicecatalog", "items", item, "order_now"]) => match json_body() {
            Some(order) => order_now(s, item, order),
            None => failure(
                StatusCode::BAD_REQUEST,
                "Exception while reading request",
                "the body is not a JSON object",
            ),
        },
        _ => failure(
            StatusCode::BAD_REQUEST,
            "Requested URI does not represent any resource",
            path,
        ),
    }
}

/// Reference columns a query may walk through: (table, column, the table it refers to).
const REFERENCES: &[(&str, &str, &str)] = &[("sc_req_item", "request", "sc_request")];

/// Tables the fake knows.
const TABLES: &[&str] = &[
    "incident",
    "sc_request",
    "sc_req_item",
    "sc_task",
    "sys_user",
    "sys_user_group",
];

fn fields_of(record: &Map<String, Json>, query: &HashMap<String, String>) -> Json {
    match query.get("sysparm_fields") {
        Some(f) => {
            let wanted: Vec<&str> = f.split(',').map(str::trim).collect();
            Json::Object(
                record
                    .iter()
                    .filter(|(k, _)| wanted.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        }
        None => Json::Object(record.clone()),
    }
}

/// One condition of an encoded query: `field=value`, `fieldISEMPTY`, or
/// `field>=javascript:gs.hoursAgoStart(N)`; a field may be dot-walked through a reference
/// (`request.correlation_id` on `sc_req_item`).
enum Condition {
    Is(String, String),
    Empty(String),
    Since(String, String),
}

impl Condition {
    fn parse(text: &str) -> Option<Condition> {
        if let Some(field) = text.strip_suffix("ISEMPTY") {
            return Some(Condition::Empty(field.into()));
        }
        let (field, value) = text.split_once('=')?;
        if let Some(field) = field.strip_suffix('>') {
            let hours: i64 = value
                .strip_prefix("javascript:gs.hoursAgoStart(")?
                .strip_suffix(')')?
                .parse()
                .ok()?;
            let start = chrono::Utc::now() - chrono::Duration::hours(hours);
            return Some(Condition::Since(
                field.into(),
                start.format("%Y-%m-%d %H:00:00").to_string(),
            ));
        }
        Some(Condition::Is(field.into(), value.into()))
    }

    fn holds(&self, s: &Instance, table: &str, record: &Map<String, Json>) -> bool {
        let field = match self {
            Condition::Is(f, _) | Condition::Empty(f) | Condition::Since(f, _) => f,
        };
        let value = s.walk(table, record, field).unwrap_or_default();
        match self {
            Condition::Is(_, wanted) => value == *wanted,
            Condition::Empty(_) => value.is_empty(),
            // ServiceNow's date-times ("2026-12-06 10:00:00") sort as text.
            Condition::Since(_, start) => !value.is_empty() && value >= *start,
        }
    }
}

fn list(s: &Instance, table: &str, query: &HashMap<String, String>) -> Response {
    if !TABLES.contains(&table) {
        return failure(StatusCode::BAD_REQUEST, &format!("Invalid table {table}"), "");
    }
    let conditions: Vec<Condition> = query
        .get("sysparm_query")
        .map(|q| q.split('^').filter_map(Condition::parse).collect())
        .unwrap_or_default();
    let limit = query
        .get("sysparm_limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10_000);
    let found: Vec<Json> = s
        .tables
        .get(table)
        .map(|rows| {
            rows.iter()
                .filter(|r| conditions.iter().all(|c| c.holds(s, table, r)))
                .take(limit)
                .map(|r| fields_of(r, query))
                .collect()
        })
        .unwrap_or_default();
    axum::Json(json!({ "result": found })).into_response()
}

fn create(
    s: &mut Instance,
    table: &str,
    mut record: Map<String, Json>,
    query: &HashMap<String, String>,
) -> Response {
    if !TABLES.contains(&table) {
        return failure(StatusCode::BAD_REQUEST, &format!("Invalid table {table}"), "");
    }
    if query.get("sysparm_input_display_value").map(String::as_str) == Some("true") {
        for (column, refers_to, by) in [
            ("assignment_group", "sys_user_group", &["name"][..]),
            ("caller_id", "sys_user", &["name", "email", "user_name"][..]),
        ] {
            if let Some(shown) = record.get(column).and_then(Json::as_str).map(str::to_string) {
                // ServiceNow leaves a reference empty when no record has the display value.
                let sys_id = by
                    .iter()
                    .find_map(|c| s.find(refers_to, c, &shown))
                    .unwrap_or_default();
                record.insert(column.into(), Json::String(sys_id));
            }
        }
    }
    let created = s.insert(table, record);
    let sys_id = created["sys_id"].as_str().unwrap_or_default().to_string();
    let mut r = (
        StatusCode::CREATED,
        axum::Json(json!({ "result": fields_of(&created, query) })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/now/table/{table}/{sys_id}")) {
        r.headers_mut().insert("location", v);
    }
    r
}

fn patch(s: &mut Instance, table: &str, sys_id: &str, changes: Map<String, Json>) -> Response {
    let Some(record) = s.tables.get_mut(table).and_then(|rows| {
        rows.iter_mut()
            .find(|r| r.get("sys_id").and_then(Json::as_str) == Some(sys_id))
    }) else {
        return failure(
            StatusCode::NOT_FOUND,
            "No Record found",
            "Record doesn't exist or ACL restricts the record retrieval",
        );
    };
    for (k, v) in changes {
        record.insert(k, v);
    }
    axum::Json(json!({ "result": record.clone() })).into_response()
}

fn order_now(s: &mut Instance, item: &str, order: Map<String, Json>) -> Response {
    if !s.items.contains_key(item) {
        return failure(StatusCode::BAD_REQUEST, "Catalog item not found", item);
    }
    let requested_for = order
        .get("sysparm_requested_for")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    if s.find("sys_user", "sys_id", &requested_for).is_none() {
        return failure(
            StatusCode::BAD_REQUEST,
            "Invalid requested_for",
            &format!("no sys_user {requested_for}"),
        );
    }
    let mut request = Map::new();
    request.insert("requested_for".into(), Json::String(requested_for.clone()));
    request.insert("request_state".into(), json!("submitted"));
    let request = s.insert("sc_request", request);
    let request_id = request["sys_id"].clone();
    let mut ritm = Map::new();
    ritm.insert("request".into(), request_id.clone());
    ritm.insert("cat_item".into(), json!(item));
    ritm.insert("requested_for".into(), Json::String(requested_for));
    ritm.insert(
        "variables".into(),
        order.get("variables").cloned().unwrap_or(json!({})),
    );
    ritm.insert(
        "quantity".into(),
        order.get("sysparm_quantity").cloned().unwrap_or(json!("1")),
    );
    s.insert("sc_req_item", ritm);
    axum::Json(json!({"result": {
        "sys_id": request_id, "number": request["number"], "request_number": request["number"],
        "request_id": request_id, "table": "sc_request"
    }}))
    .into_response()
}
