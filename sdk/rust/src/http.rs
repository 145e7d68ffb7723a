//! JSON over the host's HTTP import, with statuses mapped to [`PluginError`]s.
//!
//! ```no_run
//! # use tenure_sdk::types::PluginError;
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct User { id: String, active: bool }
//!
//! fn disable(id: &str) -> Result<User, PluginError> {
//!     let api = tenure_sdk::http::Client::new("scim").json_type("application/scim+json");
//!     let mut user: User = api.get(&format!("/Users/{}", tenure_sdk::http::encode(id)))?.json()?;
//!     user.active = false;
//!     api.put(&format!("/Users/{}", user.id), &user)?.json()
//! }
//! ```
//!
//! A non-success answer becomes the error that drives the host's retries
//! ([`errors::from_status`](crate::errors::from_status), `Retry-After` honoured);
//! a timeout or transport failure is `transient`. The host attaches the
//! credentials: a plugin never sets `authorization`.

use crate::errors::{from_http_error, from_response};
use crate::host::http::{self, Request};
use crate::types::PluginError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A named connection from the tenant's config, with default headers.
#[derive(Debug, Clone)]
pub struct Client {
    connection: String,
    headers: Vec<(String, String)>,
    timeout_ms: Option<u32>,
    json_type: String,
}

/// A successful answer (2xx, or one [`Client::send`] was told to accept).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The answer's headers as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Client {
    /// A client for `connection`, sending and accepting `application/json`.
    pub fn new(connection: impl Into<String>) -> Self {
        Client {
            connection: connection.into(),
            headers: Vec::new(),
            timeout_ms: None,
            json_type: "application/json".into(),
        }
    }

    /// Uses another JSON media type (for example `application/scim+json`).
    pub fn json_type(mut self, media_type: impl Into<String>) -> Self {
        self.json_type = media_type.into();
        self
    }

    /// Adds a header to every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Gives every request this timeout (the host's default otherwise).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// The connection's name.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Response, PluginError> {
        self.send("GET", path, None::<&()>, &[])
    }

    /// `POST path` with `body` as JSON.
    pub fn post<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Response, PluginError> {
        self.send("POST", path, Some(body), &[])
    }

    /// `PUT path` with `body` as JSON.
    pub fn put<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Response, PluginError> {
        self.send("PUT", path, Some(body), &[])
    }

    /// `PATCH path` with `body` as JSON.
    pub fn patch<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> Result<Response, PluginError> {
        self.send("PATCH", path, Some(body), &[])
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Result<Response, PluginError> {
        self.send("DELETE", path, None::<&()>, &[])
    }

    /// Sends a request; statuses in `accept` count as success besides 2xx
    /// (for example 404 on a lookup that may find nothing).
    pub fn send<B: Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        accept: &[u16],
    ) -> Result<Response, PluginError> {
        let answer = self.exchange(method, path, body, &[])?;
        if !(200..300).contains(&answer.status) && !accept.contains(&answer.status) {
            return Err(from_response(&http::Response {
                status: answer.status,
                headers: answer.headers,
                body: answer.body,
            }));
        }
        Ok(answer)
    }

    /// Sends a request with extra headers and returns whatever the server
    /// answered, for protocols whose error bodies need their own reading; only
    /// a request that got no answer is an error here.
    pub fn exchange<B: Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        extra_headers: &[(&str, &str)],
    ) -> Result<Response, PluginError> {
        let mut headers = self.headers.clone();
        headers.push(("accept".into(), self.json_type.clone()));
        headers.extend(extra_headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let body = match body {
            Some(b) => {
                headers.push(("content-type".into(), self.json_type.clone()));
                Some(serde_json::to_vec(b).map_err(|e| {
                    PluginError::Permanent(format!("{method} {path}: the body is not JSON: {e}"))
                })?)
            }
            None => None,
        };
        let request = Request {
            connection: self.connection.clone(),
            method: method.into(),
            path: path.into(),
            headers,
            body,
            timeout_ms: self.timeout_ms,
        };
        let answer = http::send(&request).map_err(|e| from_http_error(&self.connection, e))?;
        Ok(Response {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        })
    }
}

impl Response {
    /// The body as `T`; a body that is not `T` is `permanent`, quoting the start of it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let start: String = String::from_utf8_lossy(&self.body).chars().take(120).collect();
            PluginError::Permanent(format!("unexpected answer ({e}): {start}"))
        })
    }

    /// The answer's `Retry-After` (seconds) in milliseconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        crate::errors::retry_after_in(&self.headers)
    }

    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers that ask the host to generate an initial password, place it in the JSON body
/// at `pointer` (RFC 6901, such as `/password`) and keep it by the tenant's policy under
/// `account` (its user principal name, primary email or login). The plugin never sees
/// the password; pass these to [`Client::exchange`].
pub fn generated_password<'a>(pointer: &'a str, account: &'a str) -> [(&'static str, &'a str); 2] {
    [
        ("x-tenure-generated-password", pointer),
        ("x-tenure-password-subject", account),
    ]
}

/// Percent-encodes `text` for a path segment or query value (all but RFC 3986's
/// unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encode_keeps_only_unreserved_characters() {
        assert_eq!(super::encode("a b/ü?=&~"), "a%20b%2F%C3%BC%3F%3D%26~");
    }
}
