//! People sign in with their company's OpenID provider: the authorization code flow with PKCE
//! (S256), state and nonce; the ID token verified against the provider's keys; the provider's
//! groups mapped to Tenure roles at every sign-in; then the same server-side session as a
//! password sign-in. The account is made at the first sign-in (it has no password).

mod attempt;
mod config;
mod id_token;
mod provider;

pub use config::OidcConfig;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::sessions;
use attempt::Attempt;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use provider::{Provider, ProviderError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tenure_store::{AuditKind, AuditRecord, NewUser, UserChange};

/// Each tenant's provider, and the key that seals sign-ins under way.
#[derive(Clone, Default)]
pub struct OidcProviders {
    by_tenant: Arc<HashMap<String, Arc<Provider>>>,
    key: [u8; 32],
}

impl OidcProviders {
    /// `providers` by tenant; `key` derived from the master key, the same on every host.
    pub fn new(providers: Vec<(String, OidcConfig)>, key: [u8; 32]) -> Result<Self, String> {
        tenure_capabilities::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tenure/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for sign-in: {e}"))?;
        let mut by_tenant = HashMap::new();
        for (tenant, config) in providers {
            config.check(&format!("tenants.{tenant}.oidc"))?;
            by_tenant.insert(tenant, Arc::new(Provider::new(config, client.clone())));
        }
        Ok(OidcProviders {
            by_tenant: Arc::new(by_tenant),
            key,
        })
    }

    fn provider(&self, tenant: &str) -> Result<&Arc<Provider>, ApiError> {
        self.by_tenant.get(tenant).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "tenant",
                format!("tenant {tenant:?} has no OpenID provider ([tenants.{tenant}.oidc])"),
            )
        })
    }
}

/// Where the sign-in starts.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartQuery {
    /// A path on this host to go to once signed in (default `/`).
    pub return_to: Option<String>,
    /// Passed to the provider: who is signing in, when known.
    pub login_hint: Option<String>,
}

/// What the provider sends the person back with.
#[derive(Deserialize, schemars::JsonSchema)]
pub(crate) struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's error (`access_denied` ...), instead of a code.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Sent by some providers (RFC 9207); checked against the configured issuer when present.
    pub iss: Option<String>,
}

fn now_s() -> i64 {
    tenure_pipeline::now_ms() / 1000
}

fn unavailable(e: ProviderError) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, "provider", e.to_string())
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The attempt cookie: sent back on the provider's redirect (a top-level cross-site GET), so
/// `SameSite=Lax`, and only to the sign-in paths.
fn attempt_cookie(value: &str, max_age: i64) -> String {
    format!(
        "{}={value}; Path=/api/v1/session/oidc; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age}",
        attempt::COOKIE
    )
}

/// `GET /api/v1/session/oidc/{tenant}`: sends the person to the tenant's provider.
pub(crate) async fn start(
    State(s): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> ApiResult {
    let provider = s.oidc.provider(&tenant)?;
    let return_to = attempt::safe_return_to(query.return_to.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "return_to",
            "must be a path on this host (starting with a single /)",
        )
    })?;
    let (metadata, _) = provider.metadata().await.map_err(unavailable)?;
    let attempt = Attempt {
        tenant: tenant.clone(),
        state: sessions::random_token()?,
        verifier: sessions::random_token()?,
        nonce: sessions::random_token()?,
        return_to,
        expires_s: now_s() + attempt::LIFETIME_S,
    };
    let c = &provider.config;
    let mut scopes = vec!["openid".to_string()];
    scopes.extend(c.scopes.iter().filter(|s| *s != "openid").cloned());
    let mut url = url::Url::parse(&metadata.authorization_endpoint)
        .map_err(|e| unavailable(ProviderError::Discovery(e.to_string())))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &c.client_id)
        .append_pair("redirect_uri", &c.redirect_url)
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", &attempt.state)
        .append_pair("nonce", &attempt.nonce)
        .append_pair("code_challenge", &attempt::challenge(&attempt.verifier))
        .append_pair("code_challenge_method", "S256");
    if let Some(hint) = query.login_hint.as_deref().filter(|h| !h.is_empty()) {
        url.query_pairs_mut().append_pair("login_hint", hint);
    }
    let cookie = attempt_cookie(&attempt.seal(&s.oidc.key), attempt::LIFETIME_S);
    Ok(redirect(url.as_str(), &[cookie]))
}

/// A refused sign-in: audited (as the login when known), answered with `status`.
async fn refuse(
    s: &AppState,
    tenant: &str,
    login: Option<&str>,
    status: StatusCode,
    field: &str,
    reason: String,
) -> ApiError {
    let mut record = AuditRecord::new(tenant, AuditKind::AuthSignInRefused, login.unwrap_or("oidc"));
    record.data = json!({ "login": login, "via": "oidc", "reason": reason });
    if let Err(e) = s.pipeline.store().append_audit(vec![record]).await {
        return e.into();
    }
    ApiError::new(status, field, reason)
}

/// `GET /api/v1/session/oidc/callback`: the provider sends the person back; on success a
/// session starts and they go where they were going.
pub(crate) async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> ApiResult {
    let attempt = sessions::cookie_named(&headers, attempt::COOKIE)
        .and_then(|v| Attempt::open(&v, &s.oidc.key, now_s()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "Cookie",
                "no sign-in is under way in this browser, or it took over 10 minutes; start again",
            )
        })?;
    let tenant = attempt.tenant.as_str();
    let provider = s.oidc.provider(tenant)?;
    if query.state.as_deref() != Some(attempt.state.as_str()) {
        let reason = "the state does not match this browser's sign-in".to_string();
        return Err(refuse(&s, tenant, None, StatusCode::BAD_REQUEST, "state", reason).await);
    }
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or("");
        let reason = format!("the provider answered {error} {detail}")
            .trim()
            .to_string();
        return Err(refuse(&s, tenant, None, StatusCode::UNAUTHORIZED, "error", reason).await);
    }
    if let Some(iss) = query.iss.as_deref().filter(|iss| *iss != provider.config.issuer) {
        let reason = format!("the answer comes from issuer {iss:?}, not the configured one");
        return Err(refuse(&s, tenant, None, StatusCode::BAD_REQUEST, "iss", reason).await);
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "code",
            "the provider sent no code",
        ));
    };
    let (metadata, keys) = provider.metadata().await.map_err(unavailable)?;
    let tokens = match provider.exchange(&metadata, code, &attempt.verifier).await {
        Ok(tokens) => tokens,
        Err(e @ ProviderError::Refused(_)) => {
            return Err(refuse(&s, tenant, None, StatusCode::UNAUTHORIZED, "code", e.to_string()).await);
        }
        Err(e) => return Err(unavailable(e)),
    };
    let expected = id_token::Expected {
        issuer: &provider.config.issuer,
        client_id: &provider.config.client_id,
        nonce: &attempt.nonce,
        now_s: now_s(),
    };
    let mut verified = id_token::verify(&tokens.id_token, &keys, &expected);
    if matches!(verified, Err(id_token::TokenError::UnknownKey(_)))
        && let Some(keys) = provider.refreshed_keys().await.map_err(unavailable)?
    {
        verified = id_token::verify(&tokens.id_token, &keys, &expected);
    }
    let mut claims = match verified {
        Ok(claims) => claims,
        Err(e) => {
            return Err(refuse(
                &s,
                tenant,
                None,
                StatusCode::UNAUTHORIZED,
                "id_token",
                e.to_string(),
            )
            .await);
        }
    };
    let c = &provider.config;
    if !claims.contains_key(&c.login_claim) || !claims.contains_key(&c.groups_claim) {
        // Claims asked for by scope may come from userinfo only (OIDC Core 5.4).
        if let (Some(endpoint), Some(access)) = (&metadata.userinfo_endpoint, &tokens.access_token) {
            let info = provider.userinfo(endpoint, access).await.map_err(unavailable)?;
            if info.get("sub") != claims.get("sub") {
                let reason = "userinfo is about another subject than the ID token".to_string();
                return Err(refuse(&s, tenant, None, StatusCode::UNAUTHORIZED, "sub", reason).await);
            }
            for (name, value) in info {
                claims.entry(name).or_insert(value);
            }
        }
    }
    let signed_in = sign_in_person(&s, &attempt, provider, &claims).await?;
    let cookies = [
        signed_in.session_cookie,
        signed_in.csrf_cookie,
        attempt_cookie("", 0),
    ];
    Ok(redirect(&attempt.return_to, &cookies))
}

struct SignedIn {
    session_cookie: String,
    csrf_cookie: String,
}

fn groups_of(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    match claims.get(claim) {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// Makes or updates the person's account from the claims and starts their session.
async fn sign_in_person(
    s: &AppState,
    attempt: &Attempt,
    provider: &Provider,
    claims: &Map<String, Value>,
) -> Result<SignedIn, ApiError> {
    let c = &provider.config;
    let tenant = attempt.tenant.as_str();
    let Some(login) = claims
        .get(&c.login_claim)
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
    else {
        let reason = format!("the provider sent no {:?} claim (login_claim)", c.login_claim);
        return Err(refuse(s, tenant, None, StatusCode::FORBIDDEN, "login_claim", reason).await);
    };
    if c.login_claim == "email" && claims.get("email_verified") == Some(&Value::Bool(false)) {
        let reason = "the provider says this email address is not verified".to_string();
        return Err(refuse(
            s,
            tenant,
            Some(login),
            StatusCode::FORBIDDEN,
            "email_verified",
            reason,
        )
        .await);
    }
    let groups = groups_of(claims, &c.groups_claim);
    let roles = c.roles_of(&groups);
    if roles.is_empty() {
        let reason = format!("none of the person's groups {groups:?} gives a Tenure role");
        return Err(refuse(s, tenant, Some(login), StatusCode::FORBIDDEN, "groups", reason).await);
    }
    let store = s.pipeline.store().clone();
    let from_provider = json!({ "via": "oidc", "issuer": c.issuer, "groups": groups, "roles": roles });
    match store.user_credentials(tenant, login).await? {
        Some(existing) if existing.password_hash.is_some() => {
            let reason = "a local account has this login; it signs in with its password".to_string();
            return Err(refuse(s, tenant, Some(login), StatusCode::FORBIDDEN, "login", reason).await);
        }
        Some(existing) if existing.user.disabled => {
            let reason = "the account is disabled in Tenure".to_string();
            return Err(refuse(s, tenant, Some(login), StatusCode::FORBIDDEN, "login", reason).await);
        }
        Some(existing) if existing.user.roles != roles => {
            let mut audit = AuditRecord::new(tenant, AuditKind::AdminUserChanged, login);
            audit.data = from_provider.clone();
            let change = UserChange {
                roles: Some(roles.clone()),
                ..UserChange::default()
            };
            store.change_user(tenant, login, change, vec![audit]).await?;
        }
        Some(_) => {}
        None => {
            let mut audit = AuditRecord::new(tenant, AuditKind::AdminUserCreated, login);
            audit.data = from_provider.clone();
            let name = claims.get("name").and_then(Value::as_str).unwrap_or(login);
            let user = NewUser {
                tenant: tenant.to_string(),
                login: login.to_string(),
                display_name: name.to_string(),
                roles: roles.clone(),
                password_hash: None,
            };
            store.create_user(user, vec![audit]).await?;
        }
    }
    let started = sessions::start_session(s, tenant, login, from_provider).await?;
    Ok(SignedIn {
        session_cookie: started.cookie,
        csrf_cookie: sessions::csrf_cookie(&started.csrf),
    })
}
