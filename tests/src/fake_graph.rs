//! A stateful fake of Microsoft Graph v1.0 for Entra ID (users, managers, groups and their
//! members, licences and the tenant's subscriptions) and of the Microsoft identity platform's
//! token endpoint, with what connectors meet:
//!
//! - Graph's error body (`{"error": {"code", "message", "innerError"}}`): `Request_BadRequest`
//!   for a taken user principal name, an invalid property, a member already there or a licence
//!   without a usage location; `Request_ResourceNotFound` for what is not there;
//! - replication lag: a user created moments ago is not found by the calls that follow
//!   ([`FakeGraph::set_replication_lag`]), while the create itself answered;
//! - throttling answers queued by the test (429 or 503 with `Retry-After`);
//! - JSON batching (`POST /$batch`, at most 20 parts, run side by side, answered in any order);
//! - `revokeSignInSessions` counted per user, soft delete;
//! - a `PATCH` answered with the updated user, as Graph's description lists it (the live
//!   service answers 204; the connector takes either);
//! - tokens only for client-credentials grants with a secret or a `private_key_jwt` assertion
//!   signed by the app's key (claims kept for the test).
//!
//! Run it behind Prism ([`crate::prism`]) with Graph's description cut to these operations.

use crate::fake_latency::Latency;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A licence the tenant has: (skuId, skuPartNumber).
pub const SKUS: &[(&str, &str)] = &[
    ("6fd2c87f-b296-42f0-b197-1e91e994b900", "ENTERPRISEPACK"),
    ("c7df2760-2c81-4ef7-b578-5b5392b571df", "ENTERPRISEPREMIUM"),
    ("4b585984-651b-448a-9e53-3b10f069cf7f", "DESKLESSPACK"),
];

/// An Entra user, as the fake keeps it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    /// The user's properties, as Graph returns them.
    pub properties: Map<String, Json>,
    pub password: String,
    pub manager: Option<String>,
    /// skuIds.
    pub licenses: BTreeSet<String>,
    pub sessions_revoked: u32,
    created: Instant,
}

/// The fake's state.
#[derive(Default)]
pub struct Tenant {
    pub users: BTreeMap<String, User>,
    /// Soft-deleted users.
    pub deleted: BTreeMap<String, User>,
    /// Group id -> (display name, member ids).
    pub groups: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Every API request, as `METHOD path`.
    pub requests: Vec<String>,
    /// Claims of every client assertion the token endpoint accepted.
    pub assertions: Vec<Json>,
    /// Answers given before any other, in order: (status, Retry-After seconds).
    pub throttle: VecDeque<(u16, u64)>,
    /// When set, users are answered with `accountEnabled` as text: a broken answer Prism
    /// must catch.
    pub break_answers: bool,
    tokens: BTreeSet<String>,
    public_key: Vec<u8>,
    client_secret: String,
    /// Where `$batch` sends its parts (the fake itself).
    self_url: String,
    replication_lag: Duration,
    next_id: u64,
}

type Shared = Arc<Mutex<Tenant>>;

/// The running fake.
pub struct FakeGraph {
    /// Its root URL: Graph under `/v1.0`, the token endpoint at `/{tenant}/oauth2/v2.0/token`.
    pub url: String,
    state: Shared,
    latency: Latency,
}

impl FakeGraph {
    /// Starts the fake on loopback. Tokens are issued for assertions signed by the key whose
    /// public half (PKCS#1 DER) is `public_key`, or for `client_secret`.
    pub async fn start(public_key: Vec<u8>, client_secret: &str) -> FakeGraph {
        let state: Shared = Arc::new(Mutex::new(Tenant {
            public_key,
            client_secret: client_secret.to_string(),
            ..Tenant::default()
        }));
        let graph = axum::Router::new()
            .route("/users", post(create_user).get(list_users))
            .route(
                "/users/{id}",
                get(get_user).patch(update_user).delete(delete_user),
            )
            .route("/users/{id}/manager", get(get_manager))
            .route(
                "/users/{id}/manager/$ref",
                put(set_manager).delete(remove_manager),
            )
            .route("/users/{id}/memberOf", get(member_of))
            .route("/users/{id}/licenseDetails", get(license_details))
            .route("/users/{id}/assignLicense", post(assign_license))
            .route("/users/{id}/revokeSignInSessions", post(revoke_sessions))
            .route("/groups", get(list_groups))
            .route("/groups/{id}/members/$ref", post(add_member))
            .route(
                "/groups/{id}/members/{member}/$ref",
                axum::routing::delete(remove_member),
            )
            .route("/subscribedSkus", get(subscribed_skus))
            .route("/$batch", post(batch));
        let latency = Latency::default();
        let app = axum::Router::new()
            .nest("/v1.0", latency.wrap(graph))
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        let addr = listener.local_addr().expect("address");
        state.lock().unwrap_or_else(|p| p.into_inner()).self_url = format!("http://{addr}/v1.0");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGraph {
            url: format!("http://{addr}"),
            state,
            latency,
        }
    }

    /// The state, to read or arrange.
    pub fn state(&self) -> MutexGuard<'_, Tenant> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds every Graph answer back this long, as a network would.
    pub fn set_latency(&self, d: Duration) {
        self.latency.set(d);
    }

    /// Calls about a user younger than this answer 404, as Graph's replicas do.
    pub fn set_replication_lag(&self, d: Duration) {
        self.state().replication_lag = d;
    }

    /// A token Graph accepts, for a native client measured against the connector.
    pub fn issue_token(&self) -> String {
        let mut s = self.state();
        let token = format!("eyJ0eXAi.native-{}", s.tokens.len());
        s.tokens.insert(token.clone());
        token
    }

    /// Adds a security group; its id.
    pub fn group(&self, name: &str) -> String {
        let mut s = self.state();
        let id = s.new_id();
        s.groups.insert(id.clone(), (name.to_string(), BTreeSet::new()));
        id
    }

    /// The user with this user principal name.
    pub fn user(&self, upn: &str) -> Option<User> {
        let s = self.state();
        s.users
            .values()
            .find(|u| same(&u.properties, "userPrincipalName", upn))
            .cloned()
    }

    /// Display names of the groups a user is in.
    pub fn groups_of(&self, id: &str) -> Vec<String> {
        let s = self.state();
        s.groups
            .values()
            .filter(|(_, members)| members.contains(id))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// SKU part numbers a user holds.
    pub fn licenses_of(&self, id: &str) -> Vec<String> {
        let s = self.state();
        s.users
            .get(id)
            .map(|u| u.licenses.iter().filter_map(|sku| part_number(sku)).collect())
            .unwrap_or_default()
    }
}

fn part_number(sku: &str) -> Option<String> {
    SKUS.iter().find(|(id, _)| *id == sku).map(|(_, p)| p.to_string())
}

fn same(properties: &Map<String, Json>, field: &str, value: &str) -> bool {
    properties
        .get(field)
        .and_then(Json::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(value))
}

impl Tenant {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!(
            "{:08x}-0000-4000-8000-{:012x}",
            0x6e7b_0000u64 + self.next_id,
            self.next_id
        )
    }

    /// A user by object id or user principal name, unless it is too new to be replicated.
    fn find(&self, key: &str) -> Option<String> {
        let id = if self.users.contains_key(key) {
            Some(key.to_string())
        } else {
            self.users
                .values()
                .find(|u| same(&u.properties, "userPrincipalName", key))
                .map(|u| u.id.clone())
        }?;
        (self.users[&id].created.elapsed() >= self.replication_lag).then_some(id)
    }
}

/// Graph's error answer.
fn error(status: u16, code: &str, message: &str) -> Response {
    let code_status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"code": code, "message": message,
        "innerError": {"date": "2026-12-05T00:00:00", "request-id": "fake", "client-request-id": "fake"}}});
    (code_status, axum::Json(body)).into_response()
}

fn not_found(what: &str) -> Response {
    error(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{what}' does not exist or one of its queried reference-property objects {}",
            "are not present."
        ),
    )
}

/// Checks the bearer token and records the request; the first queued throttling answer, a
/// missing token, or `None` to go on.
fn admit(s: &mut Tenant, headers: &HeaderMap, what: String) -> Option<Response> {
    s.requests.push(what);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !s.tokens.contains(token) {
        return Some(error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        ));
    }
    if let Some((status, retry_after)) = s.throttle.pop_front() {
        let (code, message) = match status {
            429 => ("TooManyRequests", "Too many requests"),
            _ => ("ServiceUnavailable", "The service is temporarily unavailable."),
        };
        let mut r = error(status, code, message);
        r.headers_mut().insert("retry-after", retry_after.into());
        return Some(r);
    }
    None
}

fn user_json(u: &User, broken: bool) -> Json {
    let mut out = Json::Object(u.properties.clone());
    out["@odata.context"] = json!("https://graph.microsoft.com/v1.0/$metadata#users/$entity");
    out["id"] = json!(u.id);
    if broken {
        out["accountEnabled"] = json!("yes");
    }
    out
}

const WRITABLE: &[&str] = &[
    "accountEnabled",
    "userPrincipalName",
    "displayName",
    "mailNickname",
    "givenName",
    "surname",
    "mail",
    "jobTitle",
    "department",
    "companyName",
    "officeLocation",
    "employeeId",
    "employeeType",
    "employeeHireDate",
    "employeeLeaveDateTime",
    "usageLocation",
    "city",
    "state",
    "country",
    "streetAddress",
    "postalCode",
    "mobilePhone",
    "preferredLanguage",
];

fn invalid(property: &str) -> Response {
    error(
        400,
        "Request_BadRequest",
        &format!("Invalid value specified for property '{property}' of resource 'User'."),
    )
}

async fn create_user(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, "POST /users".into()) {
        return r;
    }
    let Ok(Json::Object(request)) = serde_json::from_str::<Json>(&body) else {
        return error(400, "BadRequest", "Unable to read JSON request payload.");
    };
    for required in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "userPrincipalName",
    ] {
        if !request.contains_key(required) {
            return invalid(required);
        }
    }
    let password = request
        .get("passwordProfile")
        .and_then(|p| p.get("password"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    if password.len() < 8 {
        return invalid("passwordProfile");
    }
    let upn = request["userPrincipalName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !upn.contains('@') {
        return invalid("userPrincipalName");
    }
    if s.users
        .values()
        .any(|u| same(&u.properties, "userPrincipalName", &upn))
    {
        return error(
            400,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
        );
    }
    let properties: Map<String, Json> = request
        .into_iter()
        .filter(|(k, v)| WRITABLE.contains(&k.as_str()) && !v.is_null())
        .collect();
    let id = s.new_id();
    let user = User {
        id: id.clone(),
        properties,
        password,
        manager: None,
        licenses: BTreeSet::new(),
        sessions_revoked: 0,
        created: Instant::now(),
    };
    let shown = user_json(&user, false);
    s.users.insert(id, user);
    (StatusCode::CREATED, axum::Json(shown)).into_response()
}

async fn get_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("GET /users/{id}")) {
        return r;
    }
    match s.find(&id) {
        Some(found) => axum::Json(user_json(&s.users[&found], s.break_answers)).into_response(),
        None => not_found(&id),
    }
}

/// `mail eq 'x'` or `employeeId eq 'x'`, as Graph reads it.
fn condition(filter: &str) -> Option<(String, String)> {
    let (field, value) = filter.split_once(" eq ")?;
    let value = value
        .trim()
        .strip_prefix('\'')?
        .strip_suffix('\'')?
        .replace("''", "'");
    Some((field.trim().to_string(), value))
}

async fn list_users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let filter = q.get("$filter").cloned().unwrap_or_default();
    if let Some(r) = admit(&mut s, &headers, format!("GET /users?$filter={filter}")) {
        return r;
    }
    let wanted = condition(&filter);
    if !filter.is_empty() && wanted.is_none() {
        return error(
            400,
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause.",
        );
    }
    if wanted.as_ref().is_some_and(|(f, _)| f == "employeeId")
        && headers.get("consistencylevel").and_then(|v| v.to_str().ok()) != Some("eventual")
    {
        return error(
            400,
            "Request_UnsupportedQuery",
            concat!(
                "Unsupported or invalid query filter clause specified for property 'employeeId' ",
                "of resource 'User'."
            ),
        );
    }
    let users: Vec<Json> = s
        .users
        .values()
        .filter(|u| wanted.as_ref().is_none_or(|(f, v)| same(&u.properties, f, v)))
        .map(|u| user_json(u, false))
        .collect();
    axum::Json(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": users}))
        .into_response()
}

async fn update_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("PATCH /users/{id} {body}")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    let Ok(Json::Object(changes)) = serde_json::from_str::<Json>(&body) else {
        return error(400, "BadRequest", "Unable to read JSON request payload.");
    };
    if let Some(bad) = changes.keys().find(|k| !WRITABLE.contains(&k.as_str())) {
        return invalid(bad);
    }
    let Some(user) = s.users.get_mut(&found) else {
        return not_found(&id);
    };
    for (k, v) in changes {
        if v.is_null() {
            user.properties.remove(&k);
        } else {
            user.properties.insert(k, v);
        }
    }
    // Graph's description gives the updated user (the live service answers 204 No Content;
    // the connector takes either).
    let shown = user_json(user, false);
    axum::Json(shown).into_response()
}

async fn delete_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("DELETE /users/{id}")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    if let Some(user) = s.users.remove(&found) {
        for (_, members) in s.groups.values_mut() {
            members.remove(&found);
        }
        s.deleted.insert(found, user);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn get_manager(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("GET /users/{id}/manager")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    match s.users[&found].manager.as_ref().and_then(|m| s.users.get(m)) {
        Some(m) => {
            let mut shown = user_json(m, false);
            shown["@odata.type"] = json!("#microsoft.graph.user");
            axum::Json(shown).into_response()
        }
        None => not_found("manager"),
    }
}

/// The object id an `@odata.id` reference names.
fn referenced(body: &str) -> Option<String> {
    let v: Json = serde_json::from_str(body).ok()?;
    let url = v.get("@odata.id")?.as_str()?;
    url.rsplit('/').next().map(str::to_string)
}

async fn set_manager(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("PUT /users/{id}/manager/$ref {body}")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    let Some(manager) = referenced(&body).and_then(|m| s.find(&m)) else {
        return not_found("manager");
    };
    if let Some(u) = s.users.get_mut(&found) {
        u.manager = Some(manager);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_manager(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("DELETE /users/{id}/manager/$ref")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    match s.users.get_mut(&found).and_then(|u| u.manager.take()) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found("manager"),
    }
}

async fn member_of(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("GET /users/{id}/memberOf")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    let groups: Vec<Json> = s
        .groups
        .iter()
        .filter(|(_, (_, members))| members.contains(&found))
        .map(|(gid, (name, _))| {
            json!({"@odata.type": "#microsoft.graph.group", "id": gid, "displayName": name})
        })
        .collect();
    axum::Json(
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
        "value": groups}),
    )
    .into_response()
}

async fn license_details(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("GET /users/{id}/licenseDetails")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    let details: Vec<Json> = s.users[&found]
        .licenses
        .iter()
        .filter_map(|sku| {
            part_number(sku).map(|p| {
                json!({"id": format!("ld-{sku}"), "skuId": sku, "skuPartNumber": p,
                "servicePlans": []})
            })
        })
        .collect();
    axum::Json(json!({"value": details})).into_response()
}

async fn assign_license(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("POST /users/{id}/assignLicense {body}")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    let request: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let add: Vec<String> = request["addLicenses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["skuId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let remove: Vec<String> = request["removeLicenses"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if let Some(unknown) = add.iter().chain(&remove).find(|sku| part_number(sku).is_none()) {
        return error(
            400,
            "Request_BadRequest",
            &format!("Subscription with SKU {unknown} does not exist in the tenant."),
        );
    }
    let Some(user) = s.users.get_mut(&found) else {
        return not_found(&id);
    };
    if !add.is_empty() && !user.properties.contains_key("usageLocation") {
        return error(
            400,
            "Request_BadRequest",
            "License assignment cannot be done for user with invalid usage location.",
        );
    }
    user.licenses.extend(add);
    user.licenses.retain(|sku| !remove.contains(sku));
    let shown = user_json(user, false);
    axum::Json(shown).into_response()
}

async fn revoke_sessions(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, format!("POST /users/{id}/revokeSignInSessions")) {
        return r;
    }
    let Some(found) = s.find(&id) else {
        return not_found(&id);
    };
    if let Some(u) = s.users.get_mut(&found) {
        u.sessions_revoked += 1;
    }
    axum::Json(
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}),
    )
    .into_response()
}

async fn list_groups(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let filter = q.get("$filter").cloned().unwrap_or_default();
    if let Some(r) = admit(&mut s, &headers, format!("GET /groups?$filter={filter}")) {
        return r;
    }
    let wanted = condition(&filter);
    let groups: Vec<Json> = s
        .groups
        .iter()
        .filter(|(_, (name, _))| {
            wanted
                .as_ref()
                .is_none_or(|(f, v)| f == "displayName" && name == v)
        })
        .map(|(gid, (name, _))| json!({"id": gid, "displayName": name}))
        .collect();
    axum::Json(
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups", "value": groups}),
    )
    .into_response()
}

async fn add_member(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    body: String,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(
        &mut s,
        &headers,
        format!("POST /groups/{gid}/members/$ref {body}"),
    ) {
        return r;
    }
    let Some(member) = referenced(&body).and_then(|m| s.find(&m)) else {
        return not_found("member");
    };
    let Some((_, members)) = s.groups.get_mut(&gid) else {
        return not_found(&gid);
    };
    if !members.insert(member) {
        return error(
            400,
            "Request_BadRequest",
            concat!(
                "One or more added object references already exist for the following modified ",
                "properties: 'members'."
            ),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_member(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((gid, member)): Path<(String, String)>,
) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(
        &mut s,
        &headers,
        format!("DELETE /groups/{gid}/members/{member}/$ref"),
    ) {
        return r;
    }
    let Some((_, members)) = s.groups.get_mut(&gid) else {
        return not_found(&gid);
    };
    if !members.remove(&member) {
        return not_found(&member);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// JSON batching: each part is sent to the fake itself with the batch's credential, side by side.
async fn batch(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let base = {
        let mut t = s.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = admit(&mut t, &headers, "POST /$batch".into()) {
            return r;
        }
        t.self_url.clone()
    };
    let request: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
    let parts = request["requests"].as_array().cloned().unwrap_or_default();
    if parts.is_empty() || parts.len() > 20 {
        return error(400, "BadRequest", "A batch holds between 1 and 20 requests.");
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let client = reqwest::Client::new();
    let mut running = tokio::task::JoinSet::new();
    for part in parts {
        let (client, base, auth) = (client.clone(), base.clone(), auth.clone());
        running.spawn(async move {
            let id = part["id"].clone();
            let method = reqwest::Method::from_bytes(part["method"].as_str().unwrap_or("GET").as_bytes())
                .unwrap_or(reqwest::Method::GET);
            let url = format!("{base}{}", part["url"].as_str().unwrap_or("/"));
            let mut req = client.request(method, url).header("authorization", auth);
            if let Some(b) = part.get("body").filter(|b| !b.is_null()) {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers: Map<String, Json> = resp
                        .headers()
                        .iter()
                        .filter(|(k, _)| ["retry-after", "content-type"].contains(&k.as_str()))
                        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), json!(v))))
                        .collect();
                    let body: Json = resp.json().await.unwrap_or(Json::Null);
                    json!({"id": id, "status": status, "headers": headers, "body": body})
                }
                Err(e) => json!({"id": id, "status": 502, "body": {"error": {"code": "BadGateway",
                    "message": e.to_string()}}}),
            }
        });
    }
    let mut responses = Vec::new();
    while let Some(done) = running.join_next().await {
        if let Ok(r) = done {
            responses.push(r);
        }
    }
    axum::Json(json!({ "responses": responses })).into_response()
}

async fn subscribed_skus(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = admit(&mut s, &headers, "GET /subscribedSkus".into()) {
        return r;
    }
    let skus: Vec<Json> = SKUS
        .iter()
        .map(|(id, part)| {
            json!({"skuId": id, "skuPartNumber": part, "capabilityStatus": "Enabled",
            "consumedUnits": 0})
        })
        .collect();
    axum::Json(json!({"value": skus})).into_response()
}

/// The identity platform's token endpoint: client credentials with a secret or an assertion.
async fn token(State(s): State<Shared>, Path(_tenant): Path<String>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let refuse = |code: &str, why: &str| {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": "invalid_client", "error_description": format!("{code}: {why}"),
                "error_codes": [7000215]}),
            ),
        )
            .into_response()
    };
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refuse("AADSTS70003", "The app requested an unsupported grant type.");
    }
    if let Some(secret) = form.get("client_secret") {
        if secret != &s.client_secret || s.client_secret.is_empty() {
            return refuse("AADSTS7000215", "Invalid client secret provided.");
        }
    } else {
        let assertion = form.get("client_assertion").cloned().unwrap_or_default();
        let Some(claims) = crate::fake_auth::verified_claims(&s.public_key, &assertion) else {
            return refuse("AADSTS700027", "Client assertion failed signature validation.");
        };
        s.assertions.push(claims);
    }
    let token = format!("eyJ0eXAi.fake-{}", s.tokens.len() + 1);
    s.tokens.insert(token.clone());
    axum::Json(
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
    .into_response()
}
