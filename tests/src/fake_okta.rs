//! A stateful fake of Okta's Management API (users through their lifecycle, groups and their
//! members, apps and their assignments) and of the org authorization server's token endpoint,
//! with the behaviour connectors meet:
//!
//! - Okta's error body (`errorCode`, `errorSummary`, `errorCauses`): `E0000001` for a login
//!   already in use or an invalid lifecycle move, `E0000007` for what is not there,
//!   `E0000047` (429) past the rate limit;
//! - `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (UTC epoch seconds) on every answer,
//!   from a budget per window the test sets ([`FakeOkta::set_rate_limit`]); the requests that
//!   met a 429 are counted;
//! - `POST /api/v1/users?activate=false` creating `STAGED` users, the lifecycle moves Okta
//!   allows from each status, and `DELETE` that deactivates first and deletes only a
//!   deprovisioned user;
//! - search (`search=`) that lags behind writes ([`FakeOkta::set_search_lag`]), while a read
//!   by id or login is consistent at once;
//! - tokens only for client-credentials grants whose `private_key_jwt` assertion is signed
//!   by the service app's key (claims kept for the test), or the configured SSWS token;
//! - a service app that requires DPoP ([`FakeOkta::require_dpop`]): a nonce the token endpoint
//!   asks for (`400 use_dpop_nonce`), tokens bound to the proof key's thumbprint, and API calls
//!   refused without a proof by that key for the request and the token.
//!
//! Run it behind Prism ([`crate::prism`]) so every request and answer is checked against
//! Okta's published description of the API.

use crate::fake_latency::Latency;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The SSWS token the fake accepts.
pub const API_TOKEN: &str = "00fake-okta-api-token";

/// An Okta user, as the fake keeps it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub status: String,
    pub profile: Map<String, Json>,
    pub password: Option<String>,
    pub groups: BTreeSet<String>,
    pub apps: BTreeSet<String>,
    created: Instant,
}

/// The fake's state.
#[derive(Default)]
pub struct Org {
    pub users: BTreeMap<String, User>,
    /// Group id -> name.
    pub groups: BTreeMap<String, String>,
    /// App id -> label.
    pub apps: BTreeMap<String, String>,
    /// Every API request, as `METHOD path?query`.
    pub requests: Vec<String>,
    /// Claims of every client assertion the token endpoint accepted.
    pub assertions: Vec<Json>,
    /// Requests answered 429.
    pub throttled: usize,
    /// When set, users are answered with a status Okta does not have: a broken answer Prism
    /// must catch.
    pub break_answers: bool,
    /// When set, the service app requires DPoP ("Require Demonstrating Proof of Possession").
    pub dpop: Option<Dpop>,
    /// How long the tokens it issues live (seconds; an hour when unset).
    pub token_lifetime: Option<u64>,
    tokens: BTreeSet<String>,
    public_key: Vec<u8>,
    limit: Option<(u64, Duration)>,
    /// The current window's start and the requests counted in it.
    window: Option<(Instant, u64)>,
    search_lag: Duration,
    next_id: u64,
}

/// A service app that requires DPoP: the nonce its token endpoint wants, the tokens bound to
/// keys, what was refused and accepted.
#[derive(Default)]
pub struct Dpop {
    pub nonce: String,
    /// Token -> the thumbprint of the key it is bound to.
    pub bound: BTreeMap<String, String>,
    /// Token requests refused for want of the current nonce.
    pub nonce_refusals: usize,
    /// API requests whose proof held.
    pub proofs_accepted: usize,
    /// Every proof's `jti` (each may be used once).
    seen: BTreeSet<String>,
}

type Shared = Arc<Mutex<Org>>;

/// The running fake.
pub struct FakeOkta {
    /// Its root URL (the org: API under `/api/v1`, token endpoint `/oauth2/v1/token`).
    pub url: String,
    state: Shared,
    /// How long every answer is held back (a network's latency).
    latency: Latency,
}

fn epoch_s(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn stamp() -> String {
    let now = epoch_s(SystemTime::now());
    let (days, secs) = (now / 86_400, now % 86_400);
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl FakeOkta {
    /// Starts the fake on loopback; client assertions must be signed by the key whose public
    /// half (PKCS#1 DER) is `public_key`.
    pub async fn start(public_key: Vec<u8>) -> FakeOkta {
        let state: Shared = Arc::new(Mutex::new(Org {
            public_key,
            tokens: [API_TOKEN.to_string()].into(),
            ..Org::default()
        }));
        let app = axum::Router::new()
            .route("/api/v1/users", post(create_user).get(list_users))
            .route(
                "/api/v1/users/{id}",
                get(get_user).post(update_user).delete(delete_user),
            )
            .route("/api/v1/users/{id}/groups", get(user_groups))
            .route("/api/v1/users/{id}/appLinks", get(app_links))
            .route("/api/v1/users/{id}/lifecycle/{action}", post(lifecycle))
            .route("/api/v1/groups", get(list_groups))
            .route(
                "/api/v1/groups/{group}/users/{user}",
                put(add_member).delete(remove_member),
            )
            .route("/api/v1/apps", get(list_apps))
            .route("/api/v1/apps/{app}/users", post(assign_app))
            .route(
                "/api/v1/apps/{app}/users/{user}",
                axum::routing::delete(unassign_app),
            )
            .route("/oauth2/v1/token", post(token));
        let latency = Latency::default();
        let app = latency.wrap(app).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeOkta {
            url: format!("http://{addr}"),
            state,
            latency,
        }
    }

    /// The state, to read or arrange.
    pub fn state(&self) -> MutexGuard<'_, Org> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the service app require DPoP-bound tokens, with `nonce` as the token endpoint's.
    pub fn require_dpop(&self, nonce: &str) {
        self.state().dpop = Some(Dpop {
            nonce: nonce.into(),
            ..Dpop::default()
        });
    }

    /// Holds every answer back this long, as a network would.
    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// Adds an `OKTA_GROUP`; its id.
    pub fn group(&self, name: &str) -> String {
        let mut s = self.state();
        let id = s.id("00g");
        s.groups.insert(id.clone(), name.to_string());
        id
    }

    /// Adds a bookmark app; its id.
    pub fn app(&self, label: &str) -> String {
        let mut s = self.state();
        let id = s.id("0oa");
        s.apps.insert(id.clone(), label.to_string());
        id
    }

    /// At most `limit` API requests per `window`; past it, 429 until the window resets.
    pub fn set_rate_limit(&self, limit: u64, window: Duration) {
        let mut s = self.state();
        s.limit = Some((limit, window));
        s.window = None;
    }

    /// Search sees only users older than this.
    pub fn set_search_lag(&self, d: Duration) {
        self.state().search_lag = d;
    }

    /// The user with this login.
    pub fn user_by_login(&self, login: &str) -> Option<User> {
        let s = self.state();
        s.users
            .values()
            .find(|u| same(&u.profile, "login", login))
            .cloned()
    }

    /// Names of the groups a user is in.
    pub fn groups_of(&self, id: &str) -> Vec<String> {
        let s = self.state();
        s.users
            .get(id)
            .map(|u| u.groups.iter().filter_map(|g| s.groups.get(g).cloned()).collect())
            .unwrap_or_default()
    }

    /// Labels of the apps assigned to a user, sorted.
    pub fn apps_of(&self, id: &str) -> Vec<String> {
        let s = self.state();
        let mut labels: Vec<String> = s
            .users
            .get(id)
            .map(|u| u.apps.iter().filter_map(|a| s.apps.get(a).cloned()).collect())
            .unwrap_or_default();
        labels.sort();
        labels
    }
}

fn same(profile: &Map<String, Json>, field: &str, value: &str) -> bool {
    profile
        .get(field)
        .and_then(Json::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(value))
}

impl Org {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:017}", self.next_id)
    }

    fn find(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        self.users
            .values()
            .find(|u| same(&u.profile, "login", key))
            .map(|u| u.id.clone())
    }

    /// The rate-limit headers for this request, or the 429 past the budget.
    fn meter(&mut self) -> (HeaderMap, bool) {
        let mut headers = HeaderMap::new();
        let Some((limit, window)) = self.limit else {
            return (headers, false);
        };
        let (start, used) = self.window.get_or_insert((Instant::now(), 0));
        if start.elapsed() >= window {
            (*start, *used) = (Instant::now(), 0);
        }
        let left_in_window = window.saturating_sub(start.elapsed());
        let reset = epoch_s(SystemTime::now() + left_in_window) + 1;
        let over = *used >= limit;
        if !over {
            *used += 1;
        }
        let remaining = limit.saturating_sub(*used);
        for (name, value) in [
            ("x-rate-limit-limit", limit),
            ("x-rate-limit-remaining", remaining),
            ("x-rate-limit-reset", reset),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
        (headers, over)
    }
}

/// Okta's error answer.
fn error(status: u16, code: &str, summary: &str, causes: &[&str]) -> Response {
    let code_status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let causes: Vec<Json> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    let body = json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
        "errorId": "oaefake", "errorCauses": causes});
    (code_status, axum::Json(body)).into_response()
}

fn not_found(what: &str, kind: &str) -> Response {
    error(
        404,
        "E0000007",
        &format!("Not found: Resource not found: {what} ({kind})"),
        &[],
    )
}

/// Checks the credential, meters the request and records it: the refusal, or the headers
/// to answer with.
fn admit(s: &mut Org, headers: &HeaderMap, what: String) -> Result<HeaderMap, Box<Response>> {
    s.requests.push(what);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (scheme, token) = auth.split_once(' ').unwrap_or_default();
    let invalid = || Box::new(error(401, "E0000011", "Invalid token provided", &[]));
    if !matches!(scheme, "SSWS" | "Bearer" | "DPoP") || !s.tokens.contains(token) {
        return Err(invalid());
    }
    // A bound token counts only as `DPoP`, with a proof by its key for this request and token.
    let bound = s.dpop.as_ref().and_then(|d| d.bound.get(token).cloned());
    match (&mut s.dpop, bound) {
        (Some(d), Some(key)) if scheme == "DPoP" => {
            let what = s.requests.last().map(String::as_str).unwrap_or_default();
            let mut words = what.split_whitespace();
            let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = path.split('?').next().unwrap_or("");
            match check_proof(d, headers, method, path) {
                Ok((claims, jkt))
                    if jkt == key && claims["ath"] == crate::fake_auth::sha256_b64(token.as_bytes()) =>
                {
                    d.proofs_accepted += 1;
                }
                _ => {
                    let mut refused = invalid();
                    refused.headers_mut().insert(
                        "www-authenticate",
                        HeaderValue::from_static(r#"DPoP error="invalid_dpop_proof""#),
                    );
                    return Err(refused);
                }
            }
        }
        (_, Some(_)) => return Err(invalid()),
        (_, None) if scheme == "DPoP" => return Err(invalid()),
        _ => {}
    }
    let (limits, over) = s.meter();
    if over {
        s.throttled += 1;
        let mut r = error(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        );
        r.headers_mut().extend(limits);
        return Err(Box::new(r));
    }
    Ok(limits)
}

/// An answer with the rate-limit headers.
fn answer(limits: HeaderMap, status: StatusCode, body: Option<Json>) -> Response {
    let mut r = match body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    r.headers_mut().extend(limits);
    r
}

fn user_json(u: &User) -> Json {
    let mut out = json!({
        "id": u.id, "status": u.status, "created": stamp(), "statusChanged": stamp(),
        "lastUpdated": stamp(), "profile": u.profile,
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
    });
    if u.status != "STAGED" {
        out["activated"] = json!(stamp());
    }
    if u.password.is_some() {
        out["credentials"]["password"] = json!({});
        out["passwordChanged"] = json!(stamp());
    }
    out
}

fn group_json(id: &str, name: &str) -> Json {
    json!({"id": id, "created": stamp(), "lastUpdated": stamp(), "lastMembershipUpdated": stamp(),
        "objectClass": ["okta:user_group"], "type": "OKTA_GROUP",
        "profile": {"name": name, "description": format!("{name} (fake)")}})
}

async fn create_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, "POST /api/v1/users".into()) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let request: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let Some(profile) = request.get("profile").and_then(Json::as_object).cloned() else {
        return error(400, "E0000003", "The request body was not well-formed.", &[]);
    };
    for field in ["login", "email", "firstName", "lastName"] {
        if profile
            .get(field)
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            return error(
                400,
                "E0000001",
                &format!("Api validation failed: {field}"),
                &[&format!("{field}: The field cannot be left blank")],
            );
        }
    }
    let login = profile["login"].as_str().unwrap_or_default().to_string();
    if s.find(&login).is_some() {
        return error(
            400,
            "E0000001",
            "Api validation failed: login",
            &["login: An object with this field already exists in the current organization"],
        );
    }
    let password = request
        .pointer("/credentials/password/value")
        .and_then(Json::as_str)
        .map(str::to_string);
    let activate = q.get("activate").is_none_or(|a| a != "false");
    let status = match (activate, &password) {
        (false, _) => "STAGED",
        (true, Some(_)) => "ACTIVE",
        (true, None) => "PROVISIONED",
    };
    let id = s.id("00u");
    let user = User {
        id: id.clone(),
        status: status.into(),
        profile,
        password,
        groups: BTreeSet::new(),
        apps: BTreeSet::new(),
        created: Instant::now(),
    };
    let shown = user_json(&user);
    s.users.insert(id, user);
    answer(limits, StatusCode::OK, Some(shown))
}

async fn get_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, format!("GET /api/v1/users/{id}")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    match s.find(&id) {
        Some(found) => {
            let mut user = user_json(&s.users[&found]);
            if s.break_answers {
                user["status"] = json!("HIBERNATING");
            }
            answer(limits, StatusCode::OK, Some(user))
        }
        None => not_found(&id, "User"),
    }
}

/// `filter=profile.email eq "v"` and `search=profile.employeeNumber eq "v"`, as Okta reads them.
fn wanted(expr: &str) -> Option<(String, String)> {
    let (field, value) = expr.split_once(" eq ")?;
    let field = field.trim().strip_prefix("profile.")?.to_string();
    Some((field, value.trim().trim_matches('"').replace("\\\"", "\"")))
}

async fn list_users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let what = format!(
        "GET /api/v1/users filter={} search={}",
        q.get("filter").map_or("", String::as_str),
        q.get("search").map_or("", String::as_str)
    );
    let limits = match admit(&mut s, &headers, what) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let lag = s.search_lag;
    let (expr, searched) = match (q.get("filter"), q.get("search")) {
        (Some(f), _) => (f.clone(), false),
        (None, Some(x)) => (x.clone(), true),
        (None, None) => (String::new(), false),
    };
    let condition = wanted(&expr);
    if !expr.is_empty() && condition.is_none() {
        return error(400, "E0000031", "Invalid search criteria.", &[]);
    }
    let users: Vec<Json> = s
        .users
        .values()
        .filter(|u| !searched || u.created.elapsed() >= lag)
        .filter(|u| match &condition {
            Some((field, value)) => same(&u.profile, field, value),
            None => u.status != "DEPROVISIONED",
        })
        .map(user_json)
        .collect();
    answer(limits, StatusCode::OK, Some(Json::Array(users)))
}

async fn update_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, format!("POST /api/v1/users/{id} {body}")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(found) = s.find(&id) else {
        return not_found(&id, "User");
    };
    let request: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let changes = request
        .get("profile")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(user) = s.users.get_mut(&found) else {
        return not_found(&id, "User");
    };
    // A partial update: given properties replace, `null` clears, the rest stay.
    for (k, v) in changes {
        if v.is_null() {
            user.profile.remove(&k);
        } else {
            user.profile.insert(k, v);
        }
    }
    let shown = user_json(user);
    answer(limits, StatusCode::OK, Some(shown))
}

async fn delete_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, format!("DELETE /api/v1/users/{id}")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(found) = s.find(&id) else {
        return not_found(&id, "User");
    };
    // The first DELETE of a user that is not deprovisioned deactivates it; the next deletes.
    if s.users[&found].status != "DEPROVISIONED" {
        if let Some(u) = s.users.get_mut(&found) {
            u.status = "DEPROVISIONED".into();
            u.apps.clear();
        }
    } else {
        s.users.remove(&found);
    }
    answer(limits, StatusCode::NO_CONTENT, None)
}

async fn lifecycle(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(
        &mut s,
        &headers,
        format!("POST /api/v1/users/{id}/lifecycle/{action}"),
    ) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(found) = s.find(&id) else {
        return not_found(&id, "User");
    };
    let Some(user) = s.users.get_mut(&found) else {
        return not_found(&id, "User");
    };
    let refuse = |summary: &str| error(400, "E0000001", &format!("Api validation failed: {summary}"), &[]);
    let status = user.status.as_str();
    let next = match (action.as_str(), status) {
        ("activate", "STAGED" | "PROVISIONED" | "DEPROVISIONED") => {
            if user.password.is_some() {
                "ACTIVE"
            } else {
                "PROVISIONED"
            }
        }
        ("activate", _) => {
            return error(
                403,
                "E0000016",
                "Activation failed because the user is already active",
                &[],
            );
        }
        ("suspend", "ACTIVE" | "PASSWORD_EXPIRED" | "LOCKED_OUT" | "RECOVERY") => "SUSPENDED",
        ("suspend", _) => return refuse("Cannot suspend a user that is not active"),
        ("unsuspend", "SUSPENDED") => "ACTIVE",
        ("unsuspend", _) => return refuse("Cannot unsuspend a user that is not suspended"),
        ("deactivate", "DEPROVISIONED") => return refuse("The user is already deactivated"),
        ("deactivate", _) => "DEPROVISIONED",
        _ => return not_found(&action, "Lifecycle operation"),
    };
    user.status = next.into();
    if next == "DEPROVISIONED" {
        user.apps.clear();
    }
    if action == "activate" && q.get("sendEmail").is_some_and(|v| v == "false") {
        let token = json!({"activationToken": "XE6wE17zmphl3KqAPFxO",
            "activationUrl": "https://fake.okta.example/welcome/XE6wE17zmphl3KqAPFxO"});
        return answer(limits, StatusCode::OK, Some(token));
    }
    answer(limits, StatusCode::OK, Some(json!({})))
}

async fn user_groups(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, format!("GET /api/v1/users/{id}/groups")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(found) = s.find(&id) else {
        return not_found(&id, "User");
    };
    let mut groups = vec![
        json!({"id": "00geveryone0000000", "created": stamp(), "lastUpdated": stamp(),
        "lastMembershipUpdated": stamp(), "objectClass": ["okta:user_group"], "type": "BUILT_IN",
        "profile": {"name": "Everyone", "description": "All users in your organization"}}),
    ];
    groups.extend(
        s.users[&found]
            .groups
            .iter()
            .filter_map(|g| s.groups.get(g).map(|name| group_json(g, name))),
    );
    answer(limits, StatusCode::OK, Some(Json::Array(groups)))
}

async fn app_links(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, format!("GET /api/v1/users/{id}/appLinks")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(found) = s.find(&id) else {
        return not_found(&id, "User");
    };
    let links: Vec<Json> = s.users[&found]
        .apps
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            s.apps.get(a).map(|label| {
                json!({"id": format!("00ub0oNGTSWTBKOLGLNR{i}"), "label": label, "appName": "bookmark",
                    "appInstanceId": a, "appAssignmentId": format!("0ua{a}"), "credentialsSetup": false,
                    "hidden": false, "sortOrder": i, "linkUrl": format!("https://fake.okta.example/home/{a}"),
                    "logoUrl": "https://fake.okta.example/logo.png"})
            })
        })
        .collect();
    answer(limits, StatusCode::OK, Some(Json::Array(links)))
}

async fn list_groups(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let name = q.get("q").cloned().unwrap_or_default();
    let limits = match admit(&mut s, &headers, format!("GET /api/v1/groups?q={name}")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    // `q` matches the start of a group's name.
    let found: Vec<Json> = s
        .groups
        .iter()
        .filter(|(_, n)| n.to_lowercase().starts_with(&name.to_lowercase()))
        .map(|(id, n)| group_json(id, n))
        .collect();
    answer(limits, StatusCode::OK, Some(Json::Array(found)))
}

async fn add_member(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((group, user)): Path<(String, String)>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(
        &mut s,
        &headers,
        format!("PUT /api/v1/groups/{group}/users/{user}"),
    ) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    if !s.groups.contains_key(&group) {
        return not_found(&group, "UserGroup");
    }
    let Some(u) = s.users.get_mut(&user) else {
        return not_found(&user, "User");
    };
    u.groups.insert(group);
    answer(limits, StatusCode::NO_CONTENT, None)
}

async fn remove_member(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((group, user)): Path<(String, String)>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(
        &mut s,
        &headers,
        format!("DELETE /api/v1/groups/{group}/users/{user}"),
    ) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(u) = s.users.get_mut(&user) else {
        return not_found(&user, "User");
    };
    u.groups.remove(&group);
    answer(limits, StatusCode::NO_CONTENT, None)
}

fn app_json(id: &str, label: &str) -> Json {
    json!({"id": id, "name": "bookmark", "label": label, "status": "ACTIVE", "signOnMode": "BOOKMARK",
        "created": stamp(), "lastUpdated": stamp(),
        "settings": {"app": {"url": "https://app.example.test", "requestIntegration": false}}})
}

async fn list_apps(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let label = q.get("q").cloned().unwrap_or_default();
    let limits = match admit(&mut s, &headers, format!("GET /api/v1/apps?q={label}")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let found: Vec<Json> = s
        .apps
        .iter()
        .filter(|(_, l)| l.to_lowercase().starts_with(&label.to_lowercase()))
        .map(|(id, l)| app_json(id, l))
        .collect();
    answer(limits, StatusCode::OK, Some(Json::Array(found)))
}

async fn assign_app(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(app): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(&mut s, &headers, format!("POST /api/v1/apps/{app}/users {body}")) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    if !s.apps.contains_key(&app) {
        return not_found(&app, "AppInstance");
    }
    let request: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let user = request
        .get("id")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(u) = s.users.get_mut(&user) else {
        return not_found(&user, "User");
    };
    u.apps.insert(app);
    let shown = json!({"id": user, "scope": "USER", "status": "ACTIVE", "created": stamp(),
        "lastUpdated": stamp(), "statusChanged": stamp(), "syncState": "DISABLED", "profile": {}});
    answer(limits, StatusCode::OK, Some(shown))
}

async fn unassign_app(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((app, user)): Path<(String, String)>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let limits = match admit(
        &mut s,
        &headers,
        format!("DELETE /api/v1/apps/{app}/users/{user}"),
    ) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let Some(u) = s.users.get_mut(&user) else {
        return not_found(&user, "User");
    };
    if !u.apps.remove(&app) {
        return not_found(&app, "AppUser");
    }
    answer(limits, StatusCode::NO_CONTENT, None)
}

/// Checks a DPoP proof for `method` on `path`: signed by the key it carries, naming this
/// request, recent and new. Its claims and the key's thumbprint, or why not.
fn check_proof(
    d: &mut Dpop,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<(Json, String), &'static str> {
    let proof = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .ok_or("The DPoP proof JWT header is missing.")?;
    let (claims, jkt) =
        crate::fake_auth::verified_dpop_proof(proof).ok_or("DPoP proof JWT signature is invalid.")?;
    let htu = claims["htu"].as_str().and_then(|u| url::Url::parse(u).ok());
    // The request's path as the router decoded it (`%40` is `@`).
    let same_path = |u: &url::Url| percent_encoding::percent_decode_str(u.path()).decode_utf8_lossy() == path;
    if claims["htm"] != method || htu.is_none_or(|u| !same_path(&u) || u.query().is_some()) {
        return Err("DPoP proof htm or htu does not match the request.");
    }
    let now = epoch_s(SystemTime::now());
    if claims["iat"].as_u64().is_none_or(|iat| iat.abs_diff(now) > 300) {
        return Err("DPoP proof iat is not recent.");
    }
    let jti = claims["jti"].as_str().unwrap_or_default().to_string();
    if jti.len() < 16 || !d.seen.insert(jti) {
        return Err("DPoP proof jti is missing or was used before.");
    }
    Ok((claims, jkt))
}

/// The org authorization server's token endpoint: client credentials with a signed assertion,
/// bound to the client's key when the app requires DPoP.
async fn token(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let refuse = |error: &str, why: &str| {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": error, "error_description": why})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return refuse(
            "invalid_client",
            "private_key_jwt is the only client authentication Okta accepts here",
        );
    }
    let assertion = form.get("client_assertion").cloned().unwrap_or_default();
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let mut bound_to = None;
    if let Some(d) = s.dpop.as_mut() {
        let (claims, jkt) = match check_proof(d, &headers, "POST", "/oauth2/v1/token") {
            Ok(checked) => checked,
            Err(why) => {
                let body = json!({"error": "invalid_dpop_proof", "error_description": why});
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
        };
        if claims["nonce"].as_str() != Some(d.nonce.as_str()) {
            d.nonce_refusals += 1;
            let body = json!({"error": "use_dpop_nonce",
                "error_description": "Authorization server requires nonce in DPoP proof."});
            return (
                StatusCode::BAD_REQUEST,
                [("dpop-nonce", d.nonce.clone())],
                axum::Json(body),
            )
                .into_response();
        }
        bound_to = Some(jkt);
    }
    let Some(claims) = crate::fake_auth::verified_claims(&s.public_key, &assertion) else {
        return refuse("invalid_client", "The client_assertion signature is invalid.");
    };
    s.assertions.push(claims);
    let token = format!("eyJfake.okta-{}", s.assertions.len());
    s.tokens.insert(token.clone());
    let scope = form.get("scope").cloned().unwrap_or_default();
    let token_type = match (s.dpop.as_mut(), bound_to) {
        (Some(d), Some(jkt)) => {
            d.bound.insert(token.clone(), jkt);
            "DPoP"
        }
        _ => "Bearer",
    };
    let expires_in = s.token_lifetime.unwrap_or(3600);
    axum::Json(
        json!({"token_type": token_type, "expires_in": expires_in, "access_token": token, "scope": scope}),
    )
    .into_response()
}
