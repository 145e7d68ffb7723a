//! A stateful fake of Google's Admin SDK Directory API (users, org units, groups and their
//! members) and of Google's OAuth token endpoint, with the quirks connectors meet:
//!
//! - the documented error body (`{"error": {"code", "message", "errors": [{"reason"}]}}`);
//! - 409 `duplicate` "Entity already exists." on an insert of a taken address, and
//!   "Member already exists." on a membership Google already has;
//! - 412 `conditionNotMet` "User creation is not complete." on changes right after an insert
//!   ([`FakeGoogle::set_creation_delay`]);
//! - search (`users.list?query=`) that lags behind writes ([`FakeGoogle::set_search_lag`]),
//!   while `users.get` by id or address is consistent at once;
//! - `users.update` with patch semantics in which repeated fields are replaced whole;
//! - throttling answers queued by the test (403 `userRateLimitExceeded`, 429 ...);
//! - deletes answered 200 with no body, as Google's description of the API lists them (the
//!   live API answers 204; the connector takes any 2xx);
//! - tokens only for JWT bearer grants whose assertion is signed by the service account's key
//!   (every assertion's claims are kept for the test to read), and 401 without one.
//!
//! Run it behind Prism ([`crate::prism`]) so every request and answer is checked against
//! Google's published description of the API.

use crate::fake_latency::Latency;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where the API lives under the fake's root (as under `https://admin.googleapis.com`).
pub const API: &str = "/admin/directory/v1";

/// The fake's state.
#[derive(Default)]
pub struct Directory {
    /// Users by id.
    pub users: BTreeMap<String, Json>,
    created: HashMap<String, Instant>,
    /// Org unit paths that exist.
    pub org_units: BTreeSet<String>,
    /// Group email -> member user ids.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Every API request, as `METHOD path?query`.
    pub requests: Vec<String>,
    /// Claims of every assertion the token endpoint accepted.
    pub assertions: Vec<Json>,
    /// The passwords inserts carried, by primary email.
    pub passwords: HashMap<String, String>,
    /// When set, `users.get` answers `suspended` as a string: a broken answer Prism must catch.
    pub break_answers: bool,
    /// Answers given before any other, in order: (status, reason, message).
    pub throttle: VecDeque<(u16, &'static str, &'static str)>,
    tokens: BTreeSet<String>,
    public_key: Vec<u8>,
    creation_delay: Duration,
    search_lag: Duration,
    next_id: u64,
}

type Shared = Arc<Mutex<Directory>>;

/// The running fake.
pub struct FakeGoogle {
    /// Its root URL (the API is under [`API`], the token endpoint is `/token`).
    pub url: String,
    state: Shared,
    /// How long every API answer is held back (a network's latency).
    latency: Latency,
}

impl FakeGoogle {
    /// Starts the fake on loopback; tokens are issued for assertions signed by the key
    /// whose public half (PKCS#1 DER) is `public_key`.
    pub async fn start(public_key: Vec<u8>) -> FakeGoogle {
        let state: Shared = Arc::new(Mutex::new(Directory {
            public_key,
            org_units: ["/".to_string()].into(),
            ..Directory::default()
        }));
        let api = axum::Router::new()
            .route("/users", post(insert_user).get(list_users))
            .route("/users/{key}", get(get_user).put(update_user).delete(delete_user))
            .route("/groups", get(list_groups))
            .route("/groups/{group}/members", post(insert_member))
            .route("/groups/{group}/members/{member}", delete(delete_member));
        let latency = Latency::default();
        let api = latency.wrap(api);
        let app = axum::Router::new()
            .nest(API, api)
            .route("/token", post(token))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGoogle {
            url: format!("http://{addr}"),
            state,
            latency,
        }
    }

    /// The state, to read or arrange.
    pub fn state(&self) -> MutexGuard<'_, Directory> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an org unit path (and its parents).
    pub fn org_unit(&self, path: &str) {
        let mut s = self.state();
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at = format!("{at}/{part}");
            s.org_units.insert(at.clone());
        }
    }

    /// Adds an empty group.
    pub fn group(&self, email: &str) {
        self.state().groups.entry(email.to_lowercase()).or_default();
    }

    /// Changes to a user younger than this answer 412 "User creation is not complete".
    pub fn set_creation_delay(&self, d: Duration) {
        self.state().creation_delay = d;
    }

    /// Search sees only users older than this.
    pub fn set_search_lag(&self, d: Duration) {
        self.state().search_lag = d;
    }

    /// Holds every API answer back this long, as a network would.
    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// A token the API accepts, for a native client measured against the connector.
    pub fn issue_token(&self) -> String {
        let mut s = self.state();
        let token = format!("ya29.native-{}", s.tokens.len());
        s.tokens.insert(token.clone());
        token
    }

    /// The user with this primary email, as stored.
    pub fn user_by_email(&self, email: &str) -> Option<Json> {
        let s = self.state();
        s.users
            .values()
            .find(|u| same(&u["primaryEmail"], email))
            .cloned()
    }

    /// The groups a user id is in.
    pub fn groups_of(&self, id: &str) -> Vec<String> {
        let s = self.state();
        s.groups
            .iter()
            .filter(|(_, m)| m.contains(id))
            .map(|(g, _)| g.clone())
            .collect()
    }
}

fn same(v: &Json, email: &str) -> bool {
    v.as_str().is_some_and(|e| e.eq_ignore_ascii_case(email))
}

/// Google's error answer.
fn error(status: u16, reason: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"code": status, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}]}});
    (code, axum::Json(body)).into_response()
}

/// Checks the bearer token and records the request; the first queued throttling answer,
/// a missing token, or `None` to go on.
fn admit(s: &mut Directory, headers: &HeaderMap, what: String) -> Option<Response> {
    s.requests.push(what);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !s.tokens.contains(token) {
        return Some(error(401, "authError", "Invalid Credentials"));
    }
    if let Some((status, reason, message)) = s.throttle.pop_front() {
        return Some(error(status, reason, message));
    }
    None
}

impl Directory {
    fn find(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        self.users
            .iter()
            .find(|(_, u)| same(&u["primaryEmail"], key))
            .map(|(id, _)| id.clone())
    }

    fn still_creating(&self, id: &str) -> bool {
        self.created
            .get(id)
            .is_some_and(|at| at.elapsed() < self.creation_delay)
    }
}

/// The user as `users.get` answers it.
fn shown(user: &Json) -> Json {
    let mut u = user.clone();
    if let Json::Object(m) = &mut u {
        m.remove("password");
    }
    u
}

async fn insert_user(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, "POST /users".into()) {
        return r;
    }
    let Ok(Json::Object(mut user)) = serde_json::from_str::<Json>(&body) else {
        return error(400, "parseError", "Parse Error");
    };
    let email = user
        .get("primaryEmail")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    if !email.contains('@') {
        return error(400, "invalid", "Invalid Input: primary_user_email");
    }
    for field in ["givenName", "familyName"] {
        if user
            .get("name")
            .and_then(|n| n.get(field))
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            return error(400, "required", &format!("Missing required field: {field}"));
        }
    }
    let password = user
        .get("password")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    if password.len() < 8 {
        return error(400, "invalid", "Invalid Password");
    }
    let ou = user
        .get("orgUnitPath")
        .and_then(Json::as_str)
        .unwrap_or("/")
        .to_string();
    if !s.org_units.contains(&ou) {
        return error(400, "invalid", "Invalid Input: INVALID_OU_ID");
    }
    if s.find(&email).is_some() {
        return error(409, "duplicate", "Entity already exists.");
    }
    s.next_id += 1;
    let id = format!("1{:020}", s.next_id);
    s.passwords.insert(email.to_lowercase(), password);
    user.remove("password");
    user.remove("changePasswordAtNextLogin");
    let full = format!(
        "{} {}",
        user["name"]["givenName"].as_str().unwrap_or(""),
        user["name"]["familyName"].as_str().unwrap_or("")
    );
    user["name"]["fullName"] = json!(full);
    user.insert("kind".into(), json!("admin#directory#user"));
    user.insert("id".into(), json!(id));
    user.insert("orgUnitPath".into(), json!(ou));
    user.insert("isAdmin".into(), json!(false));
    user.insert("etag".into(), json!(format!("\"e{}\"", s.next_id)));
    user.entry("suspended").or_insert(json!(false));
    let user = Json::Object(user);
    s.created.insert(id.clone(), Instant::now());
    s.users.insert(id, user.clone());
    axum::Json(shown(&user)).into_response()
}

async fn get_user(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("GET /users/{key}")) {
        return r;
    }
    match s.find(&key) {
        Some(id) if s.break_answers => {
            let mut user = shown(&s.users[&id]);
            user["suspended"] = json!("no");
            axum::Json(user).into_response()
        }
        Some(id) => axum::Json(shown(&s.users[&id])).into_response(),
        None => error(404, "notFound", "Resource Not Found: userKey"),
    }
}

async fn list_users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let query = q.get("query").cloned().unwrap_or_default();
    if let Some(r) = admit(&mut s, &headers, format!("GET /users?query={query}")) {
        return r;
    }
    if !q.contains_key("customer") && !q.contains_key("domain") {
        return error(400, "badRequest", "Bad Request");
    }
    // `externalId:'V'` or `externalId:V`, as Google reads it.
    let wanted = query
        .strip_prefix("externalId:")
        .or_else(|| query.strip_prefix("externalId="))
        .map(|v| v.trim_matches('\'').replace("\\'", "'"));
    let lag = s.search_lag;
    let users: Vec<Json> = s
        .users
        .iter()
        .filter(|(id, _)| s.created.get(*id).is_none_or(|at| at.elapsed() >= lag))
        .filter(|(_, u)| match &wanted {
            Some(v) => u["externalIds"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|e| e["value"].as_str() == Some(v))),
            None => true,
        })
        .map(|(_, u)| shown(u))
        .collect();
    axum::Json(json!({"kind": "admin#directory#users", "users": users})).into_response()
}

async fn update_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("PUT /users/{key} {body}")) {
        return r;
    }
    let Some(id) = s.find(&key) else {
        return error(404, "notFound", "Resource Not Found: userKey");
    };
    if s.still_creating(&id) {
        return error(412, "conditionNotMet", "User creation is not complete.");
    }
    let Ok(Json::Object(changes)) = serde_json::from_str::<Json>(&body) else {
        return error(400, "parseError", "Parse Error");
    };
    if let Some(ou) = changes.get("orgUnitPath").and_then(Json::as_str)
        && !s.org_units.contains(ou)
    {
        return error(400, "invalid", "Invalid Input: INVALID_OU_ID");
    }
    let Some(Json::Object(user)) = s.users.get_mut(&id) else {
        return error(404, "notFound", "Resource Not Found: userKey");
    };
    apply_update(user, changes);
    let user = Json::Object(user.clone());
    axum::Json(shown(&user)).into_response()
}

/// `users.update`: absent fields kept, `null` clears, `name` merged, arrays replaced whole.
fn apply_update(user: &mut Map<String, Json>, changes: Map<String, Json>) {
    for (k, v) in changes {
        match (k.as_str(), v) {
            ("id" | "kind" | "etag" | "isAdmin", _) => {}
            (_, Json::Null) => {
                user.remove(&k);
            }
            ("name", Json::Object(name)) => {
                let entry = user.entry("name").or_insert(json!({}));
                if let Json::Object(current) = entry {
                    current.extend(name);
                }
            }
            (_, v) => {
                user.insert(k, v);
            }
        }
    }
}

async fn delete_user(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("DELETE /users/{key}")) {
        return r;
    }
    let Some(id) = s.find(&key) else {
        return error(404, "notFound", "Resource Not Found: userKey");
    };
    s.users.remove(&id);
    for members in s.groups.values_mut() {
        members.remove(&id);
    }
    StatusCode::OK.into_response()
}

async fn list_groups(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let user_key = q.get("userKey").cloned().unwrap_or_default();
    if let Some(r) = admit(&mut s, &headers, format!("GET /groups?userKey={user_key}")) {
        return r;
    }
    let id = s.find(&user_key).unwrap_or_default();
    let groups: Vec<Json> = s
        .groups
        .iter()
        .filter(|(_, m)| m.contains(&id))
        .map(|(g, _)| json!({"kind": "admin#directory#group", "id": format!("g-{g}"), "email": g, "name": g}))
        .collect();
    axum::Json(json!({"kind": "admin#directory#groups", "groups": groups})).into_response()
}

async fn insert_member(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(group): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("POST /groups/{group}/members {body}")) {
        return r;
    }
    let member: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let key = member["email"].as_str().or(member["id"].as_str()).unwrap_or("");
    let Some(id) = s.find(key) else {
        return error(404, "notFound", "Resource Not Found: memberKey");
    };
    if s.still_creating(&id) {
        return error(412, "conditionNotMet", "User creation is not complete.");
    }
    let email = s.users[&id]["primaryEmail"].clone();
    let Some(members) = s.groups.get_mut(&group.to_lowercase()) else {
        return error(404, "notFound", "Resource Not Found: groupKey");
    };
    if !members.insert(id.clone()) {
        return error(409, "duplicate", "Member already exists.");
    }
    axum::Json(json!({"kind": "admin#directory#member", "id": id, "email": email,
        "role": member["role"].as_str().unwrap_or("MEMBER"), "type": "USER", "status": "ACTIVE"}))
    .into_response()
}

async fn delete_member(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((group, member)): Path<(String, String)>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(
        &mut s,
        &headers,
        format!("DELETE /groups/{group}/members/{member}"),
    ) {
        return r;
    }
    let id = s.find(&member).unwrap_or(member);
    let Some(members) = s.groups.get_mut(&group.to_lowercase()) else {
        return error(404, "notFound", "Resource Not Found: groupKey");
    };
    if !members.remove(&id) {
        return error(404, "notFound", "Resource Not Found: memberKey");
    }
    StatusCode::OK.into_response()
}

/// Google's token endpoint: a JWT bearer grant signed by the service account's key.
async fn token(State(s): State<Shared>, body: String) -> Response {
    let form: HashMap<String, String> = url_form(&body);
    let refuse = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refuse("unsupported grant_type");
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let Some(claims) = crate::fake_auth::verified_claims(&s.public_key, &assertion) else {
        return refuse("Invalid JWT Signature.");
    };
    s.assertions.push(claims);
    let token = format!("ya29.fake-{}", s.assertions.len());
    s.tokens.insert(token.clone());
    axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3599})).into_response()
}

fn url_form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}
