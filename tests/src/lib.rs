//! Shared helpers for Tenure's integration tests.

/// Shared data of the benchmarks' synthetic people.
pub mod bench_data {
    /// Departments, one per tenth of the people.
    pub const DEPARTMENTS: [&str; 10] = [
        "Engineering",
        "Sales",
        "Marketing",
        "Finance",
        "Legal",
        "Support",
        "Product",
        "Design",
        "People",
        "Operations",
    ];
    /// Office locations.
    pub const LOCATIONS: [&str; 10] = [
        "Berlin", "London", "Paris", "Madrid", "Austin", "Denver", "Toronto", "Sydney", "Tokyo", "Remote",
    ];
}

pub mod bench_stats;
pub mod browser;
pub mod example;
pub mod fake_auth;
pub mod fake_chat;
pub mod fake_freshservice;
pub mod fake_google;
pub mod fake_graph;
pub mod fake_latency;
pub mod fake_lever;
pub mod fake_okta;
pub mod fake_quota;
pub mod fake_servicenow;
pub mod host;
pub mod idp;
pub mod lever_sim;
pub mod mailbox;
pub mod mock_destination;
pub mod prism;
pub mod serve;
pub mod testbeds;
pub mod wasm_variant;

/// The built `tenure` binary (`cargo build -p tenure`; `scripts/test.sh` builds it).
pub fn tenure_binary() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tenure_plugin_test::workspace_root().join("target"));
    let path = target.join("debug/tenure");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p tenure`",
        path.display()
    );
    path
}

use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_runtime::wit::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request as the test server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// A header's value by (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the test server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Serves an axum app on a free loopback port; its root URL.
pub async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A minimal HTTP/1.1 server on loopback: one request per connection, answered by `handler`.
pub async fn start_http<F>(handler: F) -> SocketAddr
where
    F: Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
{
    let handler = std::sync::Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut lines = head.lines();
                let mut first = lines.next().unwrap_or("").split_whitespace();
                let request = SeenRequest {
                    method: first.next().unwrap_or("").to_string(),
                    target: first.next().unwrap_or("").to_string(),
                    headers: lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect(),
                };
                let reply = handler(&request);
                let mut out = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&reply.body);
                let _ = sock.write_all(out.as_bytes()).await;
            });
        }
    });
    addr
}

/// A server that answers every request with `path=<path> auth=<ok|missing|wrong>`,
/// judging the `Authorization` header against `expected_auth`. It never echoes
/// the header itself, so a plugin learns whether credentials were attached
/// without seeing them.
pub async fn start_auth_echo(expected_auth: &'static str) -> SocketAddr {
    start_http(move |r| {
        let auth = match r.header("authorization") {
            None => "missing",
            Some(v) if v == expected_auth => "ok",
            Some(_) => "wrong",
        };
        Reply {
            status: 200,
            headers: vec![],
            body: format!("path={} auth={auth}", r.target),
        }
    })
    .await
}

/// Calls the `chaos` fixture plugin for `tenant` with custom attributes
/// (`mode` picks the behaviour) and returns its account's attributes as text.
pub async fn call_chaos(h: &Harness, tenant: &str, args: &[(&str, &str)]) -> HashMap<String, String> {
    let custom: Vec<_> = args.iter().map(|(k, v)| json!([k, { "Text": v }])).collect();
    let person = person_from_json(json!({ "custom": custom })).expect("valid person");
    let handle = h.runtime().plugin(tenant, "chaos").expect("chaos is registered");
    let e = handle
        .evaluate(&person, &context_from_json(json!({})).expect("valid context"))
        .await
        .expect("call succeeds");
    e.accounts[0]
        .attributes
        .iter()
        .map(|a| {
            let v = match &a.value {
                Value::Text(s) => s.clone(),
                v => format!("{v:?}"),
            };
            (a.name.clone(), v)
        })
        .collect()
}

/// A JSON column the store keeps compactly (audit details, event bodies), as text.
pub fn stored_json(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<String> {
    Ok(match row.get_ref(column)? {
        rusqlite::types::ValueRef::Blob(bytes) => {
            tenure_store::compact_json::decompress(bytes).expect("stored JSON decompresses")
        }
        other => other.as_str()?.to_string(),
    })
}

/// The audit entries of `kind` (all with None) in a store's file, as (person key, details), read
/// back as the store reads them (details are stored compressed).
pub fn audit_details(
    db: &rusqlite::Connection,
    kind: Option<&str>,
) -> Vec<(Option<String>, serde_json::Value)> {
    let mut stmt = db
        .prepare("SELECT person_key, data FROM audit WHERE ?1 IS NULL OR kind = ?1 ORDER BY seq")
        .expect("the audit table");
    let rows = stmt
        .query_map([kind], |r| {
            let text = stored_json(r, 1)?;
            Ok((r.get(0)?, serde_json::from_str(&text).expect("details are JSON")))
        })
        .expect("audit rows");
    rows.collect::<Result<_, _>>().expect("audit rows")
}

/// Waits (30 s at most) until `f` holds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !f() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{what} never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
