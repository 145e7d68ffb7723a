//! A stateful Lever API for customer-scale tests and benchmarks, with Lever's
//! documented behaviour: basic auth with the API key as the user; a token bucket
//! per key (10 requests/s, bursts of 20) answering `429 {"code": "TooManyRequests"}`
//! without a `Retry-After` (Lever documents none); `{"data": ...}` objects and
//! `next`/`hasNext` pages with opaque offsets; `updated_at_start` inclusive;
//! confidential opportunities listed only with `confidentiality=all`; `404
//! {"code": "ResourceNotFound"}` for what does not exist. Faults are injected on
//! request: a `503` with `Retry-After: 1` every n-th request, an answer delay, an
//! opportunity that vanishes once listed. [`send_like_lever`] delivers a webhook
//! the way Lever does: retrying a non-2xx answer five times, waiting longer each time.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key the simulation expects.
pub const API_KEY: &str = "lever-sim-key-0123456789";
/// The archive reason of type `hired`.
pub const HIRED_REASON: &str = "reason-hired";
/// An archive reason of another type (rescinded offers, withdrawals).
pub const OTHER_REASON: &str = "reason-rescinded";
/// Lever's documented defaults: 10 requests/s steady, bursts of 20.
pub const RATE_PER_SECOND: f64 = 10.0;
pub const BURST: f64 = 20.0;

/// One opportunity (one candidacy of one contact).
#[derive(Debug, Clone)]
pub struct Opportunity {
    pub id: String,
    pub contact: String,
    pub name: String,
    pub email: String,
    /// The archive reason (`HIRED_REASON` for a hire); None while in process.
    pub archive_reason: Option<String>,
    pub archived_at: i64,
    pub updated_at: i64,
    pub confidential: bool,
    /// The offer's anticipated start date (ms); None: no offer.
    pub start_ms: Option<i64>,
    /// Further offer fields (identifier, value).
    pub offer_fields: Vec<(String, Value)>,
    pub department: String,
}

impl Opportunity {
    /// A hire of `contact`, starting at `start_ms`.
    pub fn hire(n: usize, contact: &str, name: &str, start_ms: i64, updated_at: i64) -> Opportunity {
        Opportunity {
            id: format!("opp-{n:05}"),
            contact: contact.into(),
            name: name.into(),
            email: format!("{}@personal.example", contact),
            archive_reason: Some(HIRED_REASON.into()),
            archived_at: updated_at,
            updated_at,
            confidential: false,
            start_ms: Some(start_ms),
            offer_fields: Vec::new(),
            department: "Engineering".into(),
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "contact": {"id": self.contact, "name": self.name,
                "emails": [self.email]},
            "emails": [self.email], "phones": [], "location": "Remote",
            "confidentiality": if self.confidential { "confidential" } else { "non-confidential" },
            "createdAt": self.updated_at - 86_400_000, "updatedAt": self.updated_at,
            "archived": self.archive_reason.as_ref().map(|r| json!({"archivedAt": self.archived_at,
                "reason": r})),
            "stage": {"id": "offer", "text": "Offer"}, "owner": {"id": "user-recruiter"},
            "applications": [{"id": format!("app-{}", self.id), "opportunityId": self.id, "type": "posting",
                "posting": format!("posting-{}", self.department), "postingHiringManager": "user-hm",
                "requisitionForHire": {"id": "req-1", "requisitionCode": "REQ-1"}}]
        })
    }
}

/// What the simulation holds and counts.
#[derive(Default)]
struct World {
    opportunities: BTreeMap<String, Opportunity>,
    /// Opportunities that vanish once a listing has shown them.
    vanish_when_listed: Vec<String>,
}

struct Sim {
    world: Mutex<World>,
    bucket: Mutex<(f64, Instant)>,
    /// Every n-th request (after the bucket) answers 503 with `Retry-After: 1`.
    fail_every: Option<u64>,
    delay: Duration,
    requests: AtomicU64,
    served: AtomicU64,
    throttled: AtomicU64,
    faults: AtomicU64,
    paths: Mutex<HashMap<String, u64>>,
}

/// The running simulation.
#[derive(Clone)]
pub struct LeverSim {
    pub addr: SocketAddr,
    sim: Arc<Sim>,
}

/// Faults and pace.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Every n-th request answers 503 with `Retry-After: 1`.
    pub fail_every: Option<u64>,
    /// How long each answer takes.
    pub delay: Duration,
}

/// Request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimCounts {
    /// Every request, refused or not.
    pub requests: u64,
    /// Answered with data (or a 404).
    pub served: u64,
    /// Answered 429 by the bucket.
    pub throttled: u64,
    /// Answered 503 by fault injection.
    pub faults: u64,
}

impl LeverSim {
    pub async fn start(options: SimOptions) -> LeverSim {
        let sim = Arc::new(Sim {
            world: Mutex::default(),
            bucket: Mutex::new((BURST, Instant::now())),
            fail_every: options.fail_every,
            delay: options.delay,
            requests: AtomicU64::new(0),
            served: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            paths: Mutex::default(),
        });
        let app = Router::new()
            .route("/v1/archive_reasons", get(archive_reasons))
            .route("/v1/opportunities", get(list_opportunities))
            .route("/v1/opportunities/{id}", get(opportunity))
            .route("/v1/opportunities/{id}/offers", get(offers))
            .route("/v1/postings/{id}", get(posting))
            .route("/v1/requisitions/{id}", get(requisition))
            .route("/v1/users/{id}", get(user))
            .with_state(sim.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LeverSim { addr, sim }
    }

    /// The base URL for a `lever` connection.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn add(&self, o: Opportunity) {
        self.sim
            .world
            .lock()
            .unwrap()
            .opportunities
            .insert(o.id.clone(), o);
    }

    /// Changes an opportunity (and moves its `updatedAt`).
    pub fn change(&self, id: &str, f: impl FnOnce(&mut Opportunity)) {
        let mut w = self.sim.world.lock().unwrap();
        let o = w.opportunities.get_mut(id).expect("known opportunity");
        f(o);
        o.updated_at += 1;
    }

    /// Removes an opportunity (a deleted candidate).
    pub fn delete(&self, id: &str) {
        self.sim.world.lock().unwrap().opportunities.remove(id);
    }

    /// The opportunity disappears once a listing has shown it (deleted mid-backfill).
    pub fn vanish_when_listed(&self, id: &str) {
        self.sim
            .world
            .lock()
            .unwrap()
            .vanish_when_listed
            .push(id.to_string());
    }

    pub fn counts(&self) -> SimCounts {
        SimCounts {
            requests: self.sim.requests.load(Ordering::SeqCst),
            served: self.sim.served.load(Ordering::SeqCst),
            throttled: self.sim.throttled.load(Ordering::SeqCst),
            faults: self.sim.faults.load(Ordering::SeqCst),
        }
    }

    /// Requests served (not refused) whose path starts with `prefix`.
    pub fn served_path(&self, prefix: &str) -> u64 {
        self.sim
            .paths
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }
}

fn basic_auth_ok(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {}", crate::fake_lever::base64_user(API_KEY)))
}

/// The gate every request passes: auth, the bucket, injected faults, the delay;
/// `Some` is the refusal to answer instead.
async fn gate(sim: &Sim, headers: &HeaderMap, path: &str) -> Option<Response> {
    let n = sim.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if sim.delay > Duration::ZERO {
        tokio::time::sleep(sim.delay).await;
    }
    if !basic_auth_ok(headers) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"code": "Unauthorized", "message": "bad key"})),
            )
                .into_response(),
        );
    }
    {
        let mut b = sim.bucket.lock().unwrap();
        let now = Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * RATE_PER_SECOND).min(BURST);
        b.1 = now;
        if b.0 < 1.0 {
            sim.throttled.fetch_add(1, Ordering::SeqCst);
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"code": "TooManyRequests", "message": "rate limit exceeded"})),
                )
                    .into_response(),
            );
        }
        b.0 -= 1.0;
    }
    if sim.fail_every.is_some_and(|k| n.is_multiple_of(k)) {
        sim.faults.fetch_add(1, Ordering::SeqCst);
        return Some(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                axum::Json(json!({"code": "ServiceUnavailable", "message": "try again"})),
            )
                .into_response(),
        );
    }
    sim.served.fetch_add(1, Ordering::SeqCst);
    *sim.paths.lock().unwrap().entry(path.to_string()).or_default() += 1;
    None
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"code": "ResourceNotFound", "message": format!("{what} was not found")})),
    )
        .into_response()
}

fn data(v: Value) -> Response {
    axum::Json(json!({ "data": v })).into_response()
}

async fn archive_reasons(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/archive_reasons").await {
        return r;
    }
    axum::Json(json!({"data": [
        {"id": HIRED_REASON, "text": "Hired", "status": "active", "type": "hired"},
        {"id": OTHER_REASON, "text": "Offer rescinded", "status": "active", "type": "non-hired"}
    ], "hasNext": false}))
    .into_response()
}

async fn list_opportunities(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/opportunities?").await {
        return r;
    }
    let since: i64 = q
        .get("updated_at_start")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let all = q.get("confidentiality").is_some_and(|c| c == "all");
    let contact = q.get("contact_id");
    // The offset is opaque to clients: here, the position in (updatedAt, id) order.
    let start: usize = q
        .get("offset")
        .and_then(|o| o.strip_prefix("0.sim."))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let mut w = sim.world.lock().unwrap();
    let mut matching: Vec<&Opportunity> = w
        .opportunities
        .values()
        .filter(|o| o.updated_at >= since && (all || !o.confidential))
        .filter(|o| contact.is_none_or(|c| *c == o.contact))
        .collect();
    matching.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
    let page: Vec<Opportunity> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|o| (*o).clone())
        .collect();
    let more = start + page.len() < matching.len();
    let listed: Vec<String> = page.iter().map(|o| o.id.clone()).collect();
    let vanish: Vec<String> = w
        .vanish_when_listed
        .iter()
        .filter(|id| listed.contains(id))
        .cloned()
        .collect();
    for id in vanish {
        w.opportunities.remove(&id);
        w.vanish_when_listed.retain(|v| *v != id);
    }
    let items: Vec<Value> = page.iter().map(Opportunity::json).collect();
    let mut body = json!({ "data": items, "hasNext": more });
    if more {
        body["next"] = json!(format!("0.sim.{}", start + page.len()));
    }
    axum::Json(body).into_response()
}

async fn opportunity(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/opportunities/").await {
        return r;
    }
    let w = sim.world.lock().unwrap();
    match w.opportunities.get(&id) {
        Some(o) => data(o.json()),
        None => not_found(&format!("opportunities {id}")),
    }
}

async fn offers(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/offers").await {
        return r;
    }
    let w = sim.world.lock().unwrap();
    let Some(o) = w.opportunities.get(&id) else {
        return not_found(&format!("opportunities {id}"));
    };
    let offers: Vec<Value> = match o.start_ms {
        None => Vec::new(),
        Some(start) => {
            let mut fields = vec![
                json!({"identifier": "job_title", "value": "Engineer"}),
                json!({"identifier": "anticipated_start_date", "value": start}),
                json!({"identifier": "direct_manager", "value": "user-dm"}),
                json!({"identifier": "salary_amount", "value": 100000}),
            ];
            fields.extend(
                o.offer_fields
                    .iter()
                    .map(|(k, v)| json!({"identifier": k, "value": v})),
            );
            vec![
                json!({"id": format!("offer-{id}"), "status": "signed", "createdAt": o.updated_at,
                    "fields": fields}),
            ]
        }
    };
    axum::Json(json!({ "data": offers, "hasNext": false })).into_response()
}

async fn posting(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/postings/").await {
        return r;
    }
    let department = id.strip_prefix("posting-").unwrap_or("Engineering");
    data(
        json!({"id": id, "text": "Engineer", "categories": {"department": department, "team": "Core",
        "location": "Remote", "commitment": "Full-time"}, "country": "US"}),
    )
}

async fn requisition(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/requisitions/").await {
        return r;
    }
    data(json!({"id": id, "requisitionCode": "REQ-1", "employmentStatus": "full-time"}))
}

async fn user(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = gate(&sim, &headers, "/v1/users/").await {
        return r;
    }
    data(json!({"id": id, "name": "Dana Manager", "email": "dana@example.test", "linkedContactIds": []}))
}

/// How one delivery went, as Lever would see it.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The last answer's status.
    pub status: u16,
    /// Tries made (1 when the first was acknowledged).
    pub tries: u32,
    /// The last answer's body.
    pub body: Value,
    /// How long the first try took to be answered.
    pub first_answer: Duration,
}

/// Delivers a webhook like Lever: a non-2xx answer (or no answer) is retried five more
/// times, waiting longer each time (`first_wait`, doubled).
pub async fn send_like_lever(client: &reqwest::Client, url: &str, body: &[u8], first_wait: Duration) -> Sent {
    let mut wait = first_wait;
    let mut tries = 0;
    let mut first_answer = Duration::ZERO;
    loop {
        tries += 1;
        let started = Instant::now();
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "Lever-Webhooks")
            .timeout(Duration::from_secs(10))
            .body(body.to_vec())
            .send()
            .await;
        if tries == 1 {
            first_answer = started.elapsed();
        }
        let (status, body) = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(e) => (0, Value::String(e.to_string())),
        };
        if (200..300).contains(&status) || tries >= 6 {
            return Sent {
                status,
                tries,
                body,
                first_answer,
            };
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
