//! Shared helpers for Tenure's integration tests.

use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_runtime::wit::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A minimal HTTP/1.1 server on loopback that answers every request with
/// `path=<path> auth=<ok|missing|wrong>`, judging the `Authorization` header
/// against `expected_auth`. It never echoes the header itself, so a plugin
/// can learn whether credentials were attached without seeing them.
pub async fn start_auth_echo(expected_auth: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let auth = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("authorization: ")
                            .or_else(|| l.strip_prefix("Authorization: "))
                    })
                    .map(|v| if v.trim() == expected_auth { "ok" } else { "wrong" })
                    .unwrap_or("missing");
                let body = format!("path={path} auth={auth}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
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
