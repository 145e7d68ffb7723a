//! Recorded HTTP exchanges, answered in order by a local server that stands in for the
//! plugin's named connections. The plugin reaches it through the host's own HTTP
//! capability (grants, egress policy, limits), so a fixture exercises the real path.

use crate::tape::{ServerTask, SharedTape, Tape};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// One request the plugin is expected to send, and the answer it gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The named connection it goes to (may be left out when the plugin has one).
    #[serde(default)]
    pub connection: Option<String>,
    pub method: String,
    /// The path and query after the connection's base URL, exactly as sent.
    pub path: String,
    /// The request body: JSON matched as a subset, or text matched exactly (not checked
    /// when left out).
    #[serde(default)]
    pub body: Option<Json>,
    #[serde(default)]
    pub response: Answer,
}

/// The recorded answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Answer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// JSON (sent as `application/json`) or text.
    pub body: Option<Json>,
}

impl Default for Answer {
    fn default() -> Self {
        Answer {
            status: 200,
            headers: BTreeMap::new(),
            body: None,
        }
    }
}

/// A running replay server; it stops when dropped.
pub struct Replay {
    addr: SocketAddr,
    tape: SharedTape<Exchange>,
    _server: ServerTask,
}

impl Replay {
    /// Starts a server on loopback that answers `exchanges` in order.
    pub async fn start(exchanges: Vec<Exchange>) -> std::io::Result<Self> {
        let tape = Tape::shared(exchanges);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(answer).with_state(tape.clone());
        let server = ServerTask(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
        Ok(Replay {
            addr,
            tape,
            _server: server,
        })
    }

    /// The base URL a named connection gets.
    pub fn url(&self, connection: &str) -> String {
        format!("http://{}/c/{connection}", self.addr)
    }

    /// What went wrong: requests that matched no recording, then recordings never requested.
    pub fn problems(&self) -> Vec<String> {
        Tape::lock(&self.tape).problems(|e| {
            format!(
                "recorded {} {} on {} was never requested",
                e.method,
                e.path,
                e.connection.as_deref().unwrap_or("the connection")
            )
        })
    }
}

async fn answer(State(tape): State<SharedTape<Exchange>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let full = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let (connection, path) = split_connection(full);
    let mut tape = Tape::lock(&tape);
    match tape.take("exchanges", |next| {
        matches(next, &method, connection, path, &body)
    }) {
        Ok(recorded) => respond(&recorded.response),
        Err(why) => {
            let line = format!("unexpected request {method} {path} on {connection}: {why}");
            tape.unexpected(line.clone());
            let mut response = Response::new(Body::from(line));
            *response.status_mut() = StatusCode::NOT_IMPLEMENTED;
            response
        }
    }
}

/// `/c/NAME/rest` into (`NAME`, `/rest`).
fn split_connection(full: &str) -> (&str, &str) {
    let rest = full.strip_prefix("/c/").unwrap_or(full);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let path = &rest[end..];
    (&rest[..end], if path.is_empty() { "/" } else { path })
}

fn matches(
    want: &Exchange,
    method: &Method,
    connection: &str,
    path: &str,
    body: &[u8],
) -> Result<(), String> {
    let expected = || format!("expected {} {}", want.method, want.path);
    if !want.method.eq_ignore_ascii_case(method.as_str()) || want.path != path {
        return Err(expected());
    }
    if want.connection.as_deref().is_some_and(|c| c != connection) {
        return Err(format!(
            "{} on {}",
            expected(),
            want.connection.as_deref().unwrap_or("")
        ));
    }
    match &want.body {
        None => Ok(()),
        Some(Json::String(text)) => (text.as_bytes() == body)
            .then_some(())
            .ok_or_else(|| format!("body {:?}, expected {text:?}", String::from_utf8_lossy(body))),
        Some(json) => {
            let sent: Json = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
            crate::subset(json, &sent, "body")
        }
    }
}

fn respond(recorded: &Answer) -> Response {
    let (bytes, json) = match &recorded.body {
        None => (Vec::new(), false),
        Some(Json::String(text)) => (text.clone().into_bytes(), false),
        Some(other) => (other.to_string().into_bytes(), true),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() =
        StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers: &mut HeaderMap = response.headers_mut();
    if json {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    for (name, value) in &recorded.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(n, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::split_connection;

    #[test]
    fn connection_and_path_are_split() {
        assert_eq!(split_connection("/c/app/Users?x=1"), ("app", "/Users?x=1"));
        assert_eq!(split_connection("/c/app?x=1"), ("app", "?x=1"));
        assert_eq!(split_connection("/c/app"), ("app", "/"));
    }
}
