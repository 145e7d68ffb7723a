//! Outbound HTTP through a named connection.
//!
//! The plugin names a connection and gives a path; the host checks the grant,
//! joins the path to the connection's base URL (and refuses anything that
//! would leave it), strips nothing silently but refuses credential headers,
//! attaches the stored credentials and sends the request.

use crate::config::{HttpAuth, HttpConnection, TenantConfig};
use crate::grants::EffectiveGrants;
use reqwest::header::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Headers a plugin may never set: the host owns credentials and routing.
const FORBIDDEN_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "host", "dpop"];

/// Hop-by-hop, framing and forwarding headers: the host's HTTP client owns the connection
/// and the framing, and a plugin may not claim to be forwarding for someone else.
const TRANSPORT_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// The methods a connector needs.
/// A request's headers as a plugin sends them.
type Headers = Vec<(String, String)>;

/// A plugin sets this request header to a JSON pointer (such as `/password`) to have the
/// host generate an initial password and place it there in the JSON body; the plugin never
/// sees it. The header itself is not sent.
pub const GENERATED_PASSWORD: &str = "x-tenure-generated-password";
/// With [`GENERATED_PASSWORD`]: the account's name (user principal name, primary email,
/// login) under which the tenant's password policy keeps the password. Not sent either.
pub const PASSWORD_SUBJECT: &str = "x-tenure-password-subject";

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Default and maximum time for one request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body handed to a plugin.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A request as a plugin sends it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub connection: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: Option<u32>,
}

/// A response as a plugin receives it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request was not sent or got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("request timed out")]
    Timeout,
    #[error("transport error: {0}")]
    Transport(String),
}

/// The shared HTTP client (one connection pool for the whole host) and the
/// connections' rate limits.
#[derive(Debug, Clone)]
pub struct HttpCapability {
    /// For connections that allow the private network.
    client: reqwest::Client,
    /// For every other connection: connects to public addresses only (see `egress`).
    public_client: reqwest::Client,
    buckets: Arc<Mutex<HashMap<u64, Bucket>>>,
    /// Tokens of connections whose credentials are exchanged for them (OAuth2, Google).
    tokens: Arc<crate::oauth::TokenCache>,
    /// Where generated initial passwords go (see [`GENERATED_PASSWORD`]).
    passwords: crate::passwords::Passwords,
}

/// A connection's limit state: `tokens` refill at the connection's rate up to its
/// burst, and after a 429 (or a 503 with `Retry-After`) nothing is sent on the
/// connection until `blocked_until`, whichever caller asks.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    blocked_until: Option<Instant>,
}

/// Why a request was held back by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Throttled {
    /// How long until the connection may be called again.
    wait: Duration,
}

/// Longest a `Retry-After` is waited out here (longer: the plugin hears it).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

impl HttpCapability {
    /// Builds the client. Redirects are not followed: a plugin sees the 3xx and
    /// decides, so a redirect can never carry credentials to another origin.
    pub fn new() -> Result<Self, HttpError> {
        crate::install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("tenure/", env!("CARGO_PKG_VERSION")))
        };
        let failed = |e: reqwest::Error| HttpError::Transport(format!("cannot build HTTP client: {e}"));
        let client = builder().build().map_err(failed)?;
        let public_client = builder()
            .dns_resolver(std::sync::Arc::new(crate::egress::PublicOnly))
            .build()
            .map_err(failed)?;
        Ok(Self {
            client,
            public_client,
            buckets: Arc::new(Mutex::new(HashMap::new())),
            tokens: Arc::default(),
            passwords: Default::default(),
        })
    }

    /// Hands the passwords this capability generates to `sink` (the tenant's policy).
    pub fn with_passwords(mut self, sink: Arc<dyn crate::passwords::PasswordSink>) -> Self {
        self.passwords = crate::passwords::Passwords(sink);
        self
    }

    /// Takes the password headers out of a request and, when asked, places a generated
    /// password in its JSON body and hands it to the tenant's policy.
    fn generate_password(
        &self,
        grants: &EffectiveGrants,
        connection: &str,
        headers: Headers,
        body: Option<Vec<u8>>,
    ) -> Result<(Headers, Option<Vec<u8>>), HttpError> {
        let asks = |(name, _): &(String, String)| {
            name.eq_ignore_ascii_case(GENERATED_PASSWORD) || name.eq_ignore_ascii_case(PASSWORD_SUBJECT)
        };
        if !headers.iter().any(asks) {
            return Ok((headers, body));
        }
        let mut pointer = None;
        let mut subject = None;
        let mut kept = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(GENERATED_PASSWORD) {
                pointer = Some(value);
            } else if name.eq_ignore_ascii_case(PASSWORD_SUBJECT) {
                subject = Some(value);
            } else {
                kept.push((name, value));
            }
        }
        let Some(pointer) = pointer else {
            return Ok((kept, body));
        };
        let invalid = |why: String| HttpError::InvalidRequest(format!("{GENERATED_PASSWORD}: {why}"));
        let Some(subject) = subject.filter(|s| !s.trim().is_empty()) else {
            return Err(invalid(format!("{PASSWORD_SUBJECT} must name the account")));
        };
        let body = body.ok_or_else(|| invalid("the request has no JSON body to place it in".into()))?;
        let password = crate::passwords::generate_password(20)
            .map_err(|e| HttpError::Transport(format!("cannot generate a password: {e}")))?;
        let body = crate::passwords::place_in_json(&body, &pointer, &password).map_err(invalid)?;
        self.passwords
            .0
            .deliver(grants.tenant(), connection, &subject, &password);
        Ok((kept, Some(body)))
    }

    /// The bucket key of a connection: one per URL, connection and credential (each
    /// API key has its own limit).
    fn bucket_key(conn: &HttpConnection, name: &str) -> u64 {
        crate::KEY_HASHER.hash_one((name, &conn.url, credential_of(&conn.auth)))
    }

    /// Waits until the connection may be called (its `Retry-After` has passed and its
    /// bucket has a token), until `deadline`.
    async fn take_token(
        &self,
        conn: &HttpConnection,
        name: &str,
        deadline: Instant,
    ) -> Result<(), Throttled> {
        let limit = conn.rate_limit.filter(|l| l.per_second > 0.0);
        let key = Self::bucket_key(conn, name);
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let burst = limit.map_or(1.0, |l| f64::from(l.burst.max(1)));
                let b = buckets.entry(key).or_insert(Bucket {
                    tokens: burst,
                    at: now,
                    blocked_until: None,
                });
                match (b.blocked_until.filter(|u| *u > now), limit) {
                    (Some(until), _) => until - now,
                    (None, None) => return Ok(()),
                    (None, Some(limit)) => {
                        let refill = now.duration_since(b.at).as_secs_f64() * limit.per_second;
                        b.tokens = (b.tokens + refill).min(burst);
                        b.at = now;
                        if b.tokens >= 1.0 {
                            b.tokens -= 1.0;
                            return Ok(());
                        }
                        Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second)
                    }
                }
            };
            if Instant::now() + wait > deadline {
                return Err(Throttled { wait });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every caller of the connection back until `wait` has passed.
    fn block(&self, conn: &HttpConnection, name: &str, wait: Duration) {
        let key = Self::bucket_key(conn, name);
        let until = Instant::now() + wait;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: 0.0,
            at: Instant::now(),
            blocked_until: None,
        });
        if b.blocked_until.is_none_or(|u| u < until) {
            b.blocked_until = Some(until);
        }
    }

    /// Checks and sends one request for a plugin.
    pub async fn send(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        req: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        grants
            .check_http(&req.connection)
            .map_err(|d| HttpError::Denied(d.0))?;
        let Some(crate::config::ConnectionConfig::Http(conn)) = tenant.connections.get(&req.connection)
        else {
            return Err(HttpError::Denied(format!(
                "connection {:?} is not an http connection",
                req.connection
            )));
        };
        let url = resolve_url(conn, &req.path)?;
        check_transport(conn, &url, &req.connection)?;
        let upper = req.method.to_ascii_uppercase();
        if !METHODS.contains(&upper.as_str()) {
            return Err(HttpError::InvalidRequest(format!(
                "method {:?} is not allowed; use one of {}",
                req.method,
                METHODS.join(", ")
            )));
        }
        let method = reqwest::Method::from_bytes(upper.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("method {:?} is not valid", req.method)))?;
        let client = if conn.allow_private_network {
            &self.client
        } else {
            crate::egress::check_literal(&url)
                .map_err(|why| HttpError::Denied(format!("connection {:?}: {why}", req.connection)))?;
            &self.public_client
        };
        let (headers, body) = self.generate_password(grants, &req.connection, req.headers, req.body)?;
        let mut builder = client.request(method, url.clone());
        for (name, value) in &headers {
            let lower = name.to_ascii_lowercase();
            if FORBIDDEN_HEADERS.contains(&lower.as_str()) || is_auth_header(&conn.auth, &lower) {
                return Err(HttpError::InvalidRequest(format!(
                    "header {name:?} may not be set by a plugin: the host attaches the connection's \
                        credentials itself"
                )));
            }
            if TRANSPORT_HEADERS.contains(&lower.as_str()) {
                return Err(HttpError::InvalidRequest(format!(
                    "header {name:?} may not be set by a plugin: the host owns the connection, its framing \
                        and any forwarding"
                )));
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("header name {name:?} is not valid")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| HttpError::InvalidRequest(format!("value of header {name} is not valid")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let limit = conn
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let timeout = req
            .timeout_ms
            .map(|ms| Duration::from_millis(ms as u64).min(limit))
            .unwrap_or(limit);
        let deadline = Instant::now() + timeout;
        let name = req.connection.clone();
        let token_key = crate::oauth::cache_key(&name, conn);
        let target = (upper.clone(), url);
        let send = async {
            let mut attempt = 0;
            let mut token_refreshed = false;
            let mut nonce_asked = false;
            let mut response = loop {
                if let Err(t) = self.take_token(conn, &name, deadline).await {
                    return Ok(throttled_response(t));
                }
                let token = if crate::oauth::uses_tokens(&conn.auth) {
                    match self.bearer_token(client, conn, &name, token_key).await {
                        Ok(token) => Some(token),
                        Err(TokenFailure::Throttled(wait)) => {
                            return Ok(throttled_response(Throttled { wait }));
                        }
                        Err(TokenFailure::Error(e)) => return Err(e),
                    }
                } else {
                    None
                };
                let this = builder
                    .try_clone()
                    .ok_or_else(|| HttpError::InvalidRequest("the request cannot be repeated".into()))?;
                let this = attach_auth(this, &conn.auth, token.as_ref());
                let (this, proof_key) = self.attach_proof(this, token.as_ref(), token_key, &target)?;
                let response = this.send().await.map_err(transport_error)?;
                let status = response.status().as_u16();
                // A DPoP server may hand out a new nonce with any answer, and refuse a proof
                // without the current one once: it is sent with the next proof.
                if let Some(proof_key) = proof_key {
                    let headers: Vec<(&str, &str)> = response
                        .headers()
                        .iter()
                        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
                        .collect();
                    let new_nonce = proof_key.remember_nonce(&target.1, headers.iter().copied());
                    let wants = crate::oauth::dpop::resource_wants_nonce(status, headers.into_iter());
                    if new_nonce && !nonce_asked && wants {
                        nonce_asked = true;
                        continue;
                    }
                }
                // A 401 with a token the host fetched: drop it and try once more with a new one.
                if status == 401
                    && let Some(used) = &token
                    && !token_refreshed
                {
                    self.tokens.reject(token_key, used).await;
                    token_refreshed = true;
                    tracing::debug!(connection = %name, "401 with a cached token; fetching a new one");
                    continue;
                }
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let quota = Quota::of(response.headers());
                // A 429, or a 503 that says when to come back: the whole connection waits.
                let wait = match (status, retry_after) {
                    (429, ra) => ra.or(quota.reset_in).unwrap_or(Duration::from_secs(1)),
                    (503, Some(ra)) => ra,
                    _ => {
                        // The quota the answer reports is spent (Okta's `X-Rate-Limit-*`): hold
                        // the connection until it resets rather than meet a 429.
                        if let Quota {
                            remaining: Some(0),
                            reset_in: Some(wait),
                        } = quota
                        {
                            self.block(conn, &name, wait);
                        }
                        break response;
                    }
                };
                self.block(conn, &name, wait);
                if attempt >= conn.retry_429 || wait > MAX_RETRY_AFTER || Instant::now() + wait > deadline {
                    break response;
                }
                attempt += 1;
                tracing::debug!(connection = %name, attempt, status, ?wait, "retrying after Retry-After");
            };
            let status = response.status().as_u16();
            let headers = response_headers(&response);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::Transport(format!(
                        "response body exceeds {MAX_RESPONSE_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

/// What an answer says of the caller's rate-limit quota (`X-Rate-Limit-Remaining`, and
/// `X-Rate-Limit-Reset` in UTC epoch seconds, as Okta sends them; ServiceNow's
/// `X-RateLimit-Remaining` and `-Reset` alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Quota {
    remaining: Option<u64>,
    /// How long until the quota resets (at most a minute and a half: a window, plus clock skew).
    reset_in: Option<Duration>,
}

impl Quota {
    fn of(headers: &reqwest::header::HeaderMap) -> Quota {
        use reqwest::header::HeaderName;
        // Okta spells them `X-Rate-Limit-*`; ServiceNow and Freshservice `X-RateLimit-*`.
        const REMAINING: [HeaderName; 2] = [
            HeaderName::from_static("x-rate-limit-remaining"),
            HeaderName::from_static("x-ratelimit-remaining"),
        ];
        const RESET: [HeaderName; 2] = [
            HeaderName::from_static("x-rate-limit-reset"),
            HeaderName::from_static("x-ratelimit-reset"),
        ];
        let number = |names: &[HeaderName; 2]| {
            names.iter().find_map(|name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        };
        let reset_in = number(&RESET).map(|at| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            Duration::from_secs(at.saturating_sub(now).clamp(1, 90))
        });
        Quota {
            remaining: number(&REMAINING),
            reset_in,
        }
    }
}

/// A response's headers whose values are text, as plugins and the token cache read them.
fn response_headers(response: &reqwest::Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
        .collect()
}

/// Why no token was attached.
enum TokenFailure {
    /// The token endpoint asked to wait: the plugin hears a 429 from the host.
    Throttled(Duration),
    Error(HttpError),
}

impl HttpCapability {
    /// The connection's bearer token, fetched from its token endpoint (through the connection's
    /// client, so the same egress rules apply) when none is cached.
    async fn bearer_token(
        &self,
        client: &reqwest::Client,
        conn: &HttpConnection,
        name: &str,
        key: u64,
    ) -> Result<crate::oauth::AccessToken, TokenFailure> {
        let denied =
            |why: String| TokenFailure::Error(HttpError::Denied(format!("connection {name:?}: {why}")));
        let post = |request: crate::oauth::TokenRequest| async move {
            let crate::oauth::TokenRequest { url, form, dpop } = request;
            let url = url::Url::parse(&url).map_err(|e| format!("token_url: {e}"))?;
            if url.scheme() != "https" && !conn.allow_plaintext && !crate::egress::is_loopback_url(&url) {
                return Err(
                    "token_url: the credentials would cross the network unencrypted; use https://".into(),
                );
            }
            if !conn.allow_private_network {
                crate::egress::check_literal(&url).map_err(|why| format!("token_url: {why}"))?;
            }
            let mut request = client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(proof) = dpop {
                request = request.header(crate::oauth::dpop::PROOF_HEADER, proof);
            }
            let response = request
                .body(form)
                .timeout(DEFAULT_TIMEOUT)
                .send()
                .await
                .map_err(|e| transport_error(e).to_string())?;
            let status = response.status().as_u16();
            let headers = response_headers(&response);
            let body = response
                .bytes()
                .await
                .map_err(|e| transport_error(e).to_string())?;
            Ok((status, headers, body.to_vec()))
        };
        match self.tokens.token(key, conn, post).await {
            Ok(token) => Ok(token),
            Err(crate::oauth::TokenError::Throttled(wait)) => Err(TokenFailure::Throttled(wait)),
            Err(e @ crate::oauth::TokenError::Unavailable(_)) => Err(TokenFailure::Error(
                HttpError::Transport(format!("connection {name:?}: {e}")),
            )),
            Err(e) => Err(denied(e.to_string())),
        }
    }
}

impl HttpCapability {
    /// Adds a DPoP proof for `target` (method, URL) when `token` is bound to the connection's
    /// proof key; that key, to read the answer's nonce.
    fn attach_proof(
        &self,
        builder: reqwest::RequestBuilder,
        token: Option<&crate::oauth::AccessToken>,
        token_key: u64,
        target: &(String, url::Url),
    ) -> Result<(reqwest::RequestBuilder, Option<Arc<crate::oauth::dpop::DpopKey>>), HttpError> {
        let Some(token) = token.filter(|t| t.scheme == crate::oauth::TokenScheme::Dpop) else {
            return Ok((builder, None));
        };
        let cannot = |e: &dyn std::fmt::Display| HttpError::Denied(format!("DPoP proof: {e}"));
        let proof_key = self.tokens.proof_key(token_key).map_err(|e| cannot(&e))?;
        let proof = proof_key
            .proof(&target.0, &target.1, Some(token.secret.expose()))
            .map_err(|e| cannot(&e))?;
        Ok((
            builder.header(crate::oauth::dpop::PROOF_HEADER, proof),
            Some(proof_key),
        ))
    }
}

/// The answer a plugin gets when the host held its request back (the connection's
/// `Retry-After` or rate limit would pass the call's deadline): a 429 with the wait,
/// marked `x-tenure-throttled: host` because the destination never saw it.
fn throttled_response(t: Throttled) -> HttpResponse {
    let secs = t.wait.as_millis().div_ceil(1000).max(1);
    HttpResponse {
        status: 429,
        headers: vec![
            ("retry-after".into(), secs.to_string()),
            ("x-tenure-throttled".into(), "host".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: format!(
            "{{\"error\":\"held back by the host: the connection may be called again in {} ms\"}}",
            t.wait.as_millis()
        )
        .into_bytes(),
    }
}

/// Identifies a connection's credential for its bucket (never leaves the process).
fn credential_of(auth: &HttpAuth) -> &str {
    match auth {
        HttpAuth::None => "",
        HttpAuth::Bearer { token } => token.expose(),
        HttpAuth::Basic { username, .. } => username.expose(),
        HttpAuth::Header { value, .. } => value.expose(),
        HttpAuth::Ssws { token } => token.expose(),
        HttpAuth::OAuth2 { client_id, .. } | HttpAuth::OAuth2Jwt { client_id, .. } => client_id,
        HttpAuth::GoogleServiceAccount { subject, .. } => subject,
    }
}

fn transport_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout
    } else {
        // Never echo the URL's query (it may carry ids) beyond what reqwest prints.
        let e = e.without_url();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            if let Some(refused) = c.downcast_ref::<crate::egress::Refused>() {
                return HttpError::Denied(refused.to_string());
            }
            cause = c.source();
        }
        HttpError::Transport(e.to_string())
    }
}

/// Whether `lower` is the header a connection's custom auth scheme uses.
fn is_auth_header(auth: &HttpAuth, lower: &str) -> bool {
    matches!(auth, HttpAuth::Header { name, .. } if name.eq_ignore_ascii_case(lower))
}

fn attach_auth(
    builder: reqwest::RequestBuilder,
    auth: &HttpAuth,
    token: Option<&crate::oauth::AccessToken>,
) -> reqwest::RequestBuilder {
    match token.map(|t| (t.scheme, t.secret.expose())) {
        Some((crate::oauth::TokenScheme::Bearer, token)) => return builder.bearer_auth(token),
        Some((crate::oauth::TokenScheme::Dpop, token)) => {
            return builder.header(reqwest::header::AUTHORIZATION, format!("DPoP {token}"));
        }
        None => {}
    }
    match auth {
        HttpAuth::None => builder,
        HttpAuth::Ssws { token } => {
            builder.header(reqwest::header::AUTHORIZATION, format!("SSWS {}", token.expose()))
        }
        // Without a token (never reached: `send` fetches one first) nothing is attached.
        HttpAuth::OAuth2 { .. } | HttpAuth::OAuth2Jwt { .. } | HttpAuth::GoogleServiceAccount { .. } => {
            builder
        }
        HttpAuth::Bearer { token } => builder.bearer_auth(token.expose()),
        HttpAuth::Basic { username, password } => {
            let password = (!password.is_empty()).then(|| password.expose());
            builder.basic_auth(username.expose(), password)
        }
        HttpAuth::Header { name, value } => builder.header(name.as_str(), value.expose()),
    }
}

/// Joins `path` to the connection's base URL and refuses any result outside it.
/// Credentials cross the network only encrypted: over plain `http://` they go only to this
/// machine (loopback), or where the connection says `allow_plaintext`.
fn check_transport(conn: &HttpConnection, url: &url::Url, name: &str) -> Result<(), HttpError> {
    if matches!(conn.auth, HttpAuth::None) || url.scheme() != "http" || conn.allow_plaintext {
        return Ok(());
    }
    if crate::egress::is_loopback_url(url) {
        return Ok(());
    }
    Err(HttpError::Denied(format!(
        "connection {name:?}: its credentials would cross the network unencrypted (http://); use \
            https:// or set allow_plaintext = true (test servers only)"
    )))
}

pub fn resolve_url(conn: &HttpConnection, path: &str) -> Result<url::Url, HttpError> {
    let invalid = |reason: &str| HttpError::InvalidRequest(format!("path {path:?} {reason}"));
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(invalid(
            "must start with a single '/' and be relative to the connection's URL",
        ));
    }
    if path.contains('\\') || path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid("contains a backslash, space or control character"));
    }
    let base = conn
        .parsed
        .get(&conn.url)
        .map_err(|e| HttpError::Denied(format!("connection URL {:?} is not valid: {e}", conn.url)))?;
    // The base URL already parsed, its path, query and fragment replaced: the same URL a
    // parse of the joined text gives, without parsing the scheme and host again per request.
    let (rest, fragment) = match path.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (path, None),
    };
    let (own_path, query) = match rest.split_once('?') {
        Some((own_path, query)) => (own_path, Some(query)),
        None => (rest, None),
    };
    let base_path = base.path().trim_end_matches('/');
    let mut joined = String::with_capacity(base_path.len() + own_path.len());
    joined.push_str(base_path);
    joined.push_str(own_path);
    let mut url = base.as_ref().clone();
    url.set_path(&joined);
    url.set_query(query);
    url.set_fragment(fragment);
    let same_origin = url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default();
    let inside = base_path.is_empty()
        || url
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !same_origin || !inside {
        return Err(HttpError::Denied(format!(
            "path {path:?} leaves the connection's base URL {}",
            conn.url
        )));
    }
    check_segments(path).map_err(|reason| invalid(&reason))?;
    Ok(url)
}

/// Refuses path segments that mean something else once a server decodes them: `.` and
/// `..` (also percent-encoded, and `..;` as servlet containers read it) and encoded
/// slashes and backslashes.
fn check_segments(path: &str) -> Result<(), String> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    // One pass over the bytes: each `%` and the two after it.
    let bytes = path.as_bytes();
    let encoded_separator = |(i, byte): (usize, &u8)| {
        *byte == b'%'
            && bytes.get(i + 1..i + 3).is_some_and(|code| {
                [b"2f", b"5c", b"00"]
                    .iter()
                    .any(|bad| code.eq_ignore_ascii_case(*bad))
            })
    };
    if bytes.iter().enumerate().any(encoded_separator) {
        return Err("holds an encoded '/', '\\' or NUL".into());
    }
    for segment in path.split('/') {
        if is_dot_segment(segment.split(';').next().unwrap_or_default()) {
            return Err("holds a '.' or '..' segment (also encoded, or with ';')".into());
        }
    }
    Ok(())
}

/// Whether `name` is `.` or `..`, each dot plain or percent-encoded (`%2e`, any case).
fn is_dot_segment(name: &str) -> bool {
    let mut rest = name.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18: without `allow_private_network`, neither a literal private address nor a
    /// name that resolves to loopback is reached.
    #[tokio::test]
    async fn a_connection_reaches_private_addresses_only_when_it_allows_them() {
        crate::install_crypto_provider();
        let http = HttpCapability::new().expect("client");
        for (url, expect) in [
            ("http://169.254.169.254/latest", "allow_private_network"),
            ("http://127.0.0.1:9/v1", "allow_private_network"),
            ("http://localhost:9/v1", "resolves only to non-public addresses"),
        ] {
            let mut c = conn(url);
            c.allow_private_network = false;
            let (tenant, grants) = granted(c);
            let req = HttpRequest {
                connection: "api".into(),
                method: "GET".into(),
                path: "/x".into(),
                headers: vec![],
                body: None,
                timeout_ms: Some(2_000),
            };
            let e = http.send(&grants, &tenant, req).await.unwrap_err();
            assert!(
                matches!(&e, HttpError::Denied(m) if m.contains(expect)),
                "{url}: {e:?}"
            );
        }
    }

    #[tokio::test]
    async fn only_a_connectors_methods_and_no_transport_or_forwarding_headers() {
        crate::install_crypto_provider();
        let (tenant, grants) = granted(conn("http://127.0.0.1:9/v1"));
        let http = HttpCapability::new().expect("client");
        let req = |method: &str, headers: Vec<(String, String)>| HttpRequest {
            connection: "api".into(),
            method: method.into(),
            path: "/x".into(),
            headers,
            body: None,
            timeout_ms: Some(100),
        };
        for method in ["TRACE", "CONNECT", "PROPFIND"] {
            let e = http
                .send(&grants, &tenant, req(method, vec![]))
                .await
                .unwrap_err();
            assert!(
                matches!(&e, HttpError::InvalidRequest(m) if m.contains("not allowed")),
                "{method}: {e:?}"
            );
        }
        for header in ["X-Forwarded-For", "Transfer-Encoding", "Connection", "Forwarded"] {
            let e = http
                .send(&grants, &tenant, req("GET", vec![(header.into(), "x".into())]))
                .await
                .unwrap_err();
            assert!(
                matches!(&e, HttpError::InvalidRequest(m) if m.contains("owns the connection")),
                "{header}"
            );
        }
    }

    #[test]
    fn decoded_traversal_and_encoded_separators_are_refused() {
        let c = conn("https://api.example.test/v1");
        for path in [
            "/%2e%2e/admin",
            "/..;/admin",
            "/x/.;jsessionid=1/y",
            "/a%2Fb",
            "/a%5cb",
            "/a%00b",
            "/%2E",
            "/x/.%2E/admin",
            "/x/%2e./admin",
        ] {
            assert!(resolve_url(&c, path).is_err(), "{path} must be refused");
        }
        assert!(resolve_url(&c, "/users/ada.lovelace?filter=a%20b").is_ok());
        assert!(resolve_url(&c, "/files/v1.2/notes..txt").is_ok());
        assert!(
            resolve_url(&c, "/files/.../%2e%2e%2e").is_ok(),
            "three dots name a file"
        );
    }

    /// Tenant `t` with connection `api`, granted to plugin `p`.
    fn granted(connection: HttpConnection) -> (TenantConfig, EffectiveGrants) {
        let mut tenant = TenantConfig::default();
        tenant
            .connections
            .insert("api".into(), crate::config::ConnectionConfig::Http(connection));
        let request = crate::CapabilityRequest {
            http: vec!["api".into()],
            ..Default::default()
        };
        tenant.plugins.insert(
            "p".into(),
            crate::PluginGrant {
                grants: request.clone(),
                ..Default::default()
            },
        );
        let grants = EffectiveGrants::new("t", "p", &request, &tenant);
        (tenant, grants)
    }

    fn conn(url: &str) -> HttpConnection {
        HttpConnection {
            url: url.into(),
            auth: HttpAuth::None,
            timeout_ms: None,
            rate_limit: None,
            retry_429: 0,
            allow_plaintext: false,
            allow_private_network: true,
            parsed: Default::default(),
        }
    }

    #[test]
    fn credentials_go_over_plain_http_only_to_this_machine_or_when_allowed() {
        let mut c = conn("http://api.example.test/v1");
        let at = |c: &HttpConnection| {
            let url = resolve_url(c, "/users").unwrap();
            check_transport(c, &url, "crm")
        };
        assert!(at(&c).is_ok(), "no credentials, nothing to expose");
        c.auth = HttpAuth::Bearer {
            token: crate::Secret::new("t0ken"),
        };
        let refused = at(&c).unwrap_err();
        assert!(
            matches!(&refused, HttpError::Denied(m) if m.contains("crm") && m.contains("unencrypted")),
            "{refused:?}"
        );
        for local in [
            "http://127.0.0.1:9/v1",
            "http://localhost:9/v1",
            "http://[::1]:9/v1",
        ] {
            c.url = local.into();
            assert!(at(&c).is_ok(), "{local}");
        }
        c.url = "https://api.example.test/v1".into();
        assert!(at(&c).is_ok());
        c.url = "http://api.example.test/v1".into();
        c.allow_plaintext = true;
        assert!(at(&c).is_ok(), "allowed explicitly");
    }

    #[tokio::test]
    async fn the_bucket_gives_its_burst_then_makes_callers_wait() {
        let http = HttpCapability::new().unwrap();
        let mut c = conn("https://api.example.test/v1");
        c.rate_limit = Some(crate::config::RateLimit {
            per_second: 0.001,
            burst: 2,
        });
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(http.take_token(&c, "lever", soon).await, Ok(()));
        assert_eq!(http.take_token(&c, "lever", soon).await, Ok(()));
        // The third token is 1,000 s away: past the deadline, refused at once.
        assert!(http.take_token(&c, "lever", soon).await.is_err());
        // Another connection (or API key) has its own bucket.
        assert_eq!(http.take_token(&c, "other", soon).await, Ok(()));
    }

    #[tokio::test]
    async fn a_block_holds_every_caller_of_the_connection_until_it_passes() {
        let http = HttpCapability::new().unwrap();
        let c = conn("https://api.example.test/v1");
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(http.take_token(&c, "scim", soon).await, Ok(()));
        http.block(&c, "scim", Duration::from_secs(3));
        let held = http.take_token(&c, "scim", soon).await.unwrap_err();
        assert!(held.wait > Duration::from_secs(2), "{held:?}");
        let answer = throttled_response(held);
        assert_eq!(answer.status, 429);
        assert!(
            answer
                .headers
                .contains(&("retry-after".to_string(), "3".to_string()))
        );
        // A short block is waited out within the deadline.
        http.block(&c, "other", Duration::from_millis(20));
        let started = Instant::now();
        assert_eq!(
            http.take_token(&c, "other", Instant::now() + Duration::from_secs(1))
                .await,
            Ok(())
        );
        assert!(started.elapsed() >= Duration::from_millis(15));
    }

    #[test]
    fn a_spent_quota_is_read_from_the_rate_limit_headers() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-rate-limit-limit", "600".parse().unwrap());
        h.insert("x-rate-limit-remaining", "0".parse().unwrap());
        h.insert("x-rate-limit-reset", (now + 20).to_string().parse().unwrap());
        let q = Quota::of(&h);
        assert_eq!(q.remaining, Some(0));
        let wait = q.reset_in.unwrap();
        assert!(
            wait >= Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // A reset in the past waits a second; one far ahead (clock skew, a daily quota) is capped.
        h.insert("x-rate-limit-reset", (now - 5).to_string().parse().unwrap());
        assert_eq!(Quota::of(&h).reset_in, Some(Duration::from_secs(1)));
        h.insert("x-rate-limit-reset", (now + 86_400).to_string().parse().unwrap());
        assert_eq!(Quota::of(&h).reset_in, Some(Duration::from_secs(90)));
        assert_eq!(Quota::of(&reqwest::header::HeaderMap::new()), Quota::default());
        // ServiceNow's spelling.
        let mut sn = reqwest::header::HeaderMap::new();
        sn.insert("x-ratelimit-remaining", "0".parse().unwrap());
        sn.insert("x-ratelimit-reset", (now + 30).to_string().parse().unwrap());
        let q = Quota::of(&sn);
        assert_eq!(q.remaining, Some(0));
        assert!(q.reset_in.is_some_and(|w| w >= Duration::from_secs(29)), "{q:?}");
    }

    #[test]
    fn a_resolved_url_is_the_parse_of_the_joined_text() {
        for base in [
            "https://api.example.test/v1",
            "https://api.example.test/v1/",
            "http://127.0.0.1:8080",
        ] {
            let c = conn(base);
            for path in [
                "/users",
                "/users/",
                "/users/ada%40example.test?$select=id,mail&top=2",
                "/groups?userKey=1&maxResults=200#frag",
                "/users/ådå lovelace".replace(' ', "%20").as_str(),
                "/search?q=a b".replace(' ', "+").as_str(),
                "/x?y=1?2",
                "/x#a?b",
            ] {
                let joined = format!("{}{path}", base.trim_end_matches('/'));
                let parsed = url::Url::parse(&joined).unwrap();
                assert_eq!(resolve_url(&c, path).unwrap(), parsed, "{base} + {path}");
            }
        }
    }

    #[test]
    fn paths_stay_inside_the_base_url() {
        let c = conn("https://api.example.test/v1");
        assert_eq!(
            resolve_url(&c, "/opportunities?limit=2").unwrap().as_str(),
            "https://api.example.test/v1/opportunities?limit=2"
        );
        assert!(matches!(resolve_url(&c, "/../admin"), Err(HttpError::Denied(_))));
        assert!(matches!(
            resolve_url(&c, "//evil.test/x"),
            Err(HttpError::InvalidRequest(_))
        ));
        assert!(matches!(
            resolve_url(&c, "https://evil.test/"),
            Err(HttpError::InvalidRequest(_))
        ));
        assert!(matches!(
            resolve_url(&c, "/x\\y"),
            Err(HttpError::InvalidRequest(_))
        ));
        assert!(matches!(
            resolve_url(&c, "@evil.test/"),
            Err(HttpError::InvalidRequest(_))
        ));
    }
}
