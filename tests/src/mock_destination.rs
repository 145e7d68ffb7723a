//! A destination service for the `http-dest` test connector, with scripted
//! failures (429 with Retry-After, 5xx, 400) before writes succeed, and a log of
//! every request it saw.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One account in the mock.
#[derive(Debug, Clone)]
pub struct MockAccount {
    pub anchor: String,
    pub attributes: serde_json::Map<String, Value>,
    pub groups: Vec<String>,
    pub enabled: bool,
    pub container: Option<String>,
}

/// A request the mock answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    /// For an applied operation: its kind and group (`add-member Sales`).
    pub detail: String,
}

#[derive(Default)]
pub struct MockState {
    pub accounts: Vec<MockAccount>,
    /// Answers for the next writes, in order: (status, Retry-After seconds).
    pub script: VecDeque<(u16, Option<u64>)>,
    /// While set, every write answers 400 with this detail.
    pub reject: Option<String>,
    pub seen: Vec<Seen>,
    /// How long a write's answer takes after the write is applied (an answer that is
    /// slow to come back, or lost when the caller dies meanwhile).
    pub answer_delay: std::time::Duration,
}

/// A running mock destination.
#[derive(Clone)]
pub struct MockDestination {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<MockState>>,
}

type Shared = Arc<Mutex<MockState>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, MockState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The scripted or rejecting answer to a write, if any (and logs it).
fn scripted(s: &mut MockState, path: &str) -> Option<Response> {
    let answer = s
        .script
        .pop_front()
        .or_else(|| s.reject.as_ref().map(|_| (400, None)));
    let (status, retry_after) = answer?;
    s.seen.push(Seen {
        at: Instant::now(),
        method: "POST",
        path: path.into(),
        status,
        detail: String::new(),
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let detail = s.reject.clone().unwrap_or_else(|| format!("scripted {status}"));
    let mut resp = (code, detail).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert("retry-after", v);
    }
    Some(resp)
}

async fn lookup(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = lock(&s);
    let found: Vec<Value> = st
        .accounts
        .iter()
        .filter(|a| {
            q.iter().any(|(k, v)| {
                if k == "anchor" {
                    a.anchor == *v
                } else {
                    a.attributes
                        .get(k)
                        .and_then(|x| x.as_str())
                        .is_some_and(|x| x.eq_ignore_ascii_case(v))
                }
            })
        })
        .map(|a| {
            json!({"anchor": a.anchor, "attributes": a.attributes, "groups": a.groups,
            "enabled": a.enabled, "container": a.container})
        })
        .collect();
    st.seen.push(Seen {
        at: Instant::now(),
        method: "GET",
        path: "/accounts".into(),
        status: 200,
        detail: String::new(),
    });
    axum::Json(found).into_response()
}

async fn create(State(s): State<Shared>, axum::Json(body): axum::Json<Value>) -> Response {
    let (answer, delay) = create_now(&s, body);
    tokio::time::sleep(delay).await;
    answer
}

fn create_now(s: &Shared, body: Value) -> (Response, std::time::Duration) {
    let mut st = lock(s);
    let delay = st.answer_delay;
    if let Some(r) = scripted(&mut st, "/accounts") {
        return (r, delay);
    }
    let anchor = format!("acc-{}", st.accounts.len() + 1);
    st.accounts.push(MockAccount {
        anchor: anchor.clone(),
        attributes: body["attributes"].as_object().cloned().unwrap_or_default(),
        groups: vec![],
        enabled: body["enabled"].as_bool().unwrap_or(true),
        container: body["container"].as_str().map(String::from),
    });
    st.seen.push(Seen {
        at: Instant::now(),
        method: "POST",
        path: "/accounts".into(),
        status: 201,
        detail: format!("create {anchor}"),
    });
    (
        (StatusCode::CREATED, axum::Json(json!({"anchor": anchor}))).into_response(),
        delay,
    )
}

async fn op(
    State(s): State<Shared>,
    Path(anchor): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let (answer, delay) = op_now(&s, anchor, body);
    tokio::time::sleep(delay).await;
    answer
}

fn op_now(s: &Shared, anchor: String, body: Value) -> (Response, std::time::Duration) {
    let path = format!("/accounts/{anchor}/ops");
    let mut st = lock(s);
    let delay = st.answer_delay;
    if let Some(r) = scripted(&mut st, &path) {
        return (r, delay);
    }
    let Some(acc) = st.accounts.iter_mut().find(|a| a.anchor == anchor) else {
        return ((StatusCode::NOT_FOUND, "no such account").into_response(), delay);
    };
    let detail = format!(
        "{} {}",
        body["op"].as_str().unwrap_or(""),
        body["group"].as_str().unwrap_or("")
    );
    match body["op"].as_str().unwrap_or("") {
        "update" => {
            for (k, v) in body["attributes"].as_object().cloned().unwrap_or_default() {
                acc.attributes.insert(k, v);
            }
        }
        "enable" => acc.enabled = true,
        "disable" => acc.enabled = false,
        "move" => acc.container = body["container"].as_str().map(String::from),
        "add-member" => {
            let g = body["group"].as_str().unwrap_or("").to_string();
            if !acc.groups.contains(&g) {
                acc.groups.push(g);
            }
        }
        "remove-member" => {
            let g = body["group"].as_str().unwrap_or("");
            acc.groups.retain(|x| x != g);
        }
        "delete" => {
            st.accounts.retain(|a| a.anchor != anchor);
        }
        other => {
            return (
                (StatusCode::BAD_REQUEST, format!("unknown op {other}")).into_response(),
                delay,
            );
        }
    }
    st.seen.push(Seen {
        at: Instant::now(),
        method: "POST",
        path,
        status: 200,
        detail: detail.trim().to_string(),
    });
    ((StatusCode::OK, axum::Json(json!({}))).into_response(), delay)
}

impl MockDestination {
    pub async fn start() -> MockDestination {
        let state: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/accounts", get(lookup).post(create))
            .route("/accounts/{anchor}/ops", post(op))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockDestination { addr, state }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut MockState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// The tenant config that grants `http-dest` its `dest` connection to this mock.
    pub fn tenant_toml(&self) -> String {
        format!(
            "[connections.dest]\nkind = \"http\"\nallow_private_network = true\nurl = \"http://{}\"\n\
             [plugins.http-dest.grants]\nhttp = [\"dest\"]\n",
            self.addr
        )
    }
}
