//! A fake Lever REST API for tests, shaped like Lever's documented payloads:
//! `{"data": ...}` objects (one opportunity nested as `{"data": {"data": ...}}`,
//! as some of Lever's own examples are), paginated lists with `next`/`hasNext`,
//! and a 429 with `Retry-After` on the first archive-reasons call.

use crate::{Reply, SeenRequest, start_http};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The API key the fake expects as the basic-auth user.
pub const API_KEY: &str = "lever-api-key-0123456789";
/// Lever ids of the people the fake knows.
pub const HIRED_OPPORTUNITY: &str = "250d8f03-738a-4bba-a671-8a3d73477145";
pub const HIRED_CONTACT: &str = "7f23e772-f2cb-4ebb-b33f-54b872999992";
pub const NESTED_OPPORTUNITY: &str = "9f1b2c3d-0000-4bba-a671-8a3d73477146";
pub const NESTED_CONTACT: &str = "8e34f883-0000-4ebb-b33f-54b872999993";
pub const NOT_HIRED_OPPORTUNITY: &str = "11111111-2222-3333-4444-555555555555";
pub const MANAGER_CONTACT: &str = "5b5b5b5b-aaaa-bbbb-cccc-dddddddddddd";
const HIRED_REASON: &str = "16308515-dc77-4aa7-b3af-96161b2b4e9b";

/// The running fake and what it was asked.
pub struct FakeLever {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
}

impl FakeLever {
    /// Requests whose path starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.target.starts_with(prefix))
            .count()
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

fn ok(body: Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
    }
}

fn opportunity(id: &str, contact: &str, name: &str, reason: Option<&str>) -> Value {
    json!({
        "id": id, "name": name, "headline": "Brickly LLC", "contact": {"id": contact, "name": name,
        "emails": ["contact@example.test"]}, "emails": [format!("{}@example.test",
            name.split(' ').next().unwrap_or("x").to_lowercase())],
        "phones": [{"type": "mobile", "value": "(123) 456-7891"}], "confidentiality": "non-confidential",
        "location": "Oakland", "createdAt": 1407460071043_i64, "updatedAt": 1407460080914_i64,
        "archived": reason.map(|r| json!({"archivedAt": 1417588008760_i64, "reason": r})),
        "stage": {"id": "00922a60", "text": "Offer"}, "owner": {"id": "df0adaa6"},
        "applications": [{"id": "cdb4ff13", "opportunityId": id, "type": "posting", "posting": "posting-1",
            "postingHiringManager": "user-hm", "requisitionForHire": {"id": "req-1",
                "requisitionCode": "OP-9"}}],
        "unknownNewField": {"ignored": true}
    })
}

/// Starts the fake on loopback.
pub async fn start() -> FakeLever {
    let seen: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
    let log = seen.clone();
    let throttled = Arc::new(AtomicBool::new(false));
    let addr = start_http(move |r| {
        log.lock().unwrap().push(r.clone());
        let auth = r.header("authorization").unwrap_or_default();
        let expected = format!("Basic {}", base64_user(API_KEY));
        if auth != expected {
            return Reply {
                status: 401,
                headers: vec![],
                body: json!({"code": "Unauthorized", "message": "bad key"}).to_string(),
            };
        }
        let path = r.target.split('?').next().unwrap_or("");
        let query = r.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        match path {
            "/v1/archive_reasons" => {
                if !throttled.swap(true, Ordering::SeqCst) {
                    return Reply {
                        status: 429,
                        headers: vec![("retry-after", "1".into())],
                        body: json!({"code": "TooManyRequests"}).to_string(),
                    };
                }
                ok(json!({"data": [
                    {"id": HIRED_REASON, "text": "Hired", "status": "active", "type": "hired"},
                    {"id": "other-reason", "text": "Withdrew", "status": "active", "type": "non-hired"}
                ], "hasNext": false}))
            }
            p if p == format!("/v1/opportunities/{HIRED_OPPORTUNITY}") => ok(
                json!({"data": opportunity(HIRED_OPPORTUNITY, HIRED_CONTACT, "Shane Q \
                    Smith", Some(HIRED_REASON))}),
            ),
            // The other documented nesting: data.data.
            p if p == format!("/v1/opportunities/{NESTED_OPPORTUNITY}") => ok(json!({"data": {"data":
                opportunity(NESTED_OPPORTUNITY, NESTED_CONTACT, "Mia Lopez", Some(HIRED_REASON))}})),
            p if p == format!("/v1/opportunities/{NOT_HIRED_OPPORTUNITY}") => {
                ok(json!({"data": opportunity(NOT_HIRED_OPPORTUNITY, "c-x", "Not \
                    Hired", Some("other-reason"))}))
            }
            p if p.starts_with("/v1/opportunities/") && p.ends_with("/offers") => {
                if query.contains("offset=page2") {
                    ok(
                        json!({"data": [{"id": "offer-2", "status": "signed", "createdAt": 1475540150185_i64,
                        "fields": [
                        {"text": "Job title", "identifier": "job_title", "value": "Back End Software \
                            Engineer"},
                        {"text": "Job posting", "identifier": "job_posting", "value": "posting-1"},
                        {"text": "Requisition", "identifier": "requisition", "value": "req-1"},
                        {"text": "Direct manager", "identifier": "direct_manager", "value": "user-dm"},
                        {"text": "Anticipated start \
                            date", "identifier": "anticipated_start_date", "value": 1767571200000_i64},
                        {"text": "Offered compensation \
                            amount", "identifier": "salary_amount", "value": 1319000}
                    ]}], "hasNext": false}),
                    )
                } else {
                    ok(
                        json!({"data": [{"id": "offer-1", "status": "draft", "createdAt": 1475540150000_i64,
                        "fields": [
                        {"text": "Job title", "identifier": "job_title", "value": "Draft Title"}
                    ]}], "next": "page2", "hasNext": true}),
                    )
                }
            }
            "/v1/postings/posting-1" => ok(json!({"data": {"id": "posting-1", "text": "Backend Engineer",
                "categories": {"team": "Platform", "department": "Engineering", "location": "San Francisco",
                    "allLocations": ["San Francisco"], "commitment": "Full-time", "level": "Senior"},
                "country": "US", "state": "published"}})),
            "/v1/requisitions/req-1" => ok(json!({"data": {"id": "req-1", "requisitionCode": "OP-9",
                "employmentStatus": "full-time", "status": "open"}})),
            "/v1/users/user-dm" => ok(json!({"data": {"id": "user-dm", "name": "Dana Manager",
                "email": "dana@example.test", "linkedContactIds": [MANAGER_CONTACT]}})),
            "/v1/opportunities" => {
                // `updated_at_start` is inclusive, as Lever documents.
                let since: i64 = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("updated_at_start="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                // Two pages, the second holding an older update: a poller must read the
                // whole sweep before it moves its cursor, or it leaves a gap.
                let mut older = opportunity(
                    NESTED_OPPORTUNITY,
                    NESTED_CONTACT,
                    "Mia \
                    Lopez",
                    Some(HIRED_REASON),
                );
                older["updatedAt"] = json!(1407460000000_i64);
                let second = query.contains("offset=page2");
                let all = if second {
                    vec![older]
                } else {
                    vec![opportunity(
                        HIRED_OPPORTUNITY,
                        HIRED_CONTACT,
                        "Shane Q Smith",
                        Some(HIRED_REASON),
                    )]
                };
                let page: Vec<Value> = all
                    .into_iter()
                    .filter(|o| o["updatedAt"].as_i64().unwrap_or(0) >= since)
                    .collect();
                if second || page.is_empty() {
                    ok(json!({"data": page, "hasNext": false}))
                } else {
                    ok(json!({"data": page, "next": "page2", "hasNext": true}))
                }
            }
            _ => Reply {
                status: 404,
                headers: vec![],
                body: json!({"code": "ResourceNotFound"}).to_string(),
            },
        }
    })
    .await;
    FakeLever { addr, seen }
}

/// `base64(user + ":")`, computed here (not by the host) for the check.
pub fn base64_user(user: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Lever's webhook signature: HMAC-SHA256 of `token + triggeredAt`, computed with ring
/// (an implementation the host does not use).
pub fn sign(key: &str, token: &str, triggered_at: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{token}{triggered_at}").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch (a delivery's `triggeredAt`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// A signed webhook delivery as Lever sends it.
pub fn delivery(event: &str, key: &str, token: &str, at: u64, data: Value) -> Value {
    json!({ "triggeredAt": at, "event": event, "data": data, "token": token, "signature": sign(key, token,
        at) })
}
