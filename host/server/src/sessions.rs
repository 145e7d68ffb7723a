//! People signing in: a password checked against its argon2id hash, a lockout after repeated
//! failures, and a server-side session in the store, carried by a `Secure`, `HttpOnly`,
//! `SameSite=Strict` cookie; every change made in a session carries its CSRF token in
//! `X-CSRF-Token`. Sign-ins, refusals, locks and sign-outs are audited.

use crate::AppState;
use crate::auth::{Anyone, Authed, Via, digest_of};
use crate::error::{ApiError, ApiResult, json_body};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tenure_store::{AuditKind, AuditRecord, LockoutPolicy, NewSession, Role};

/// The session cookie's name.
pub const COOKIE: &str = "tenure_session";
/// The cookie the session's CSRF token is also kept in, for the console's script.
pub const CSRF_COOKIE: &str = "tenure_csrf";
/// The header a signed-in change carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// How long a session lasts.
pub const SESSION_MS: i64 = 8 * 60 * 60 * 1000;
/// Password checks at once; more sign-ins wait up to [`SIGN_IN_WAIT`], then get 429.
pub const CONCURRENT_SIGN_INS: usize = 2;
/// How long a sign-in waits for a password check.
const SIGN_IN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Failed sign-ins in a row that lock an account, and for how long.
pub const LOCKOUT: LockoutPolicy = LockoutPolicy {
    max_failures: 5,
    lock_ms: 15 * 60 * 1000,
};

/// The session id a request's cookie carries.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

/// The value of the request's cookie `name`, unless empty.
pub(crate) fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// A sign-in.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    pub tenant: String,
    pub login: String,
    pub password: String,
}

/// Who is calling, and for a session, the token its changes must carry.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct Whoami {
    pub tenant: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub via: Via,
    /// For `X-CSRF-Token` on every change made in this session (only at sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// When the session ends (ms since the epoch; only at sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

/// 32 random bytes from the OS, base64url: a session id, a CSRF token or an API token.
pub(crate) fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "token",
            format!("no randomness: {e}"),
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "password",
        "the login or the password is wrong, or the account is disabled",
    )
}

/// `POST /api/v1/session`: signs a person in.
pub(crate) async fn sign_in(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    // JSON only: a cross-site form cannot send it, so no page signs a visitor in as someone else.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
            "a sign-in is sent as application/json",
        ));
    }
    let input: SignIn = json_body(&body)?;
    let store = s.pipeline.store().clone();
    let credentials = store.user_credentials(&input.tenant, &input.login).await?;
    let refusal = |reason: &str| {
        let mut record = AuditRecord::new(&input.tenant, AuditKind::AuthSignInRefused, &input.login);
        record.data = serde_json::json!({ "login": input.login, "reason": reason });
        vec![record]
    };
    let now = tenure_pipeline::now_ms();
    if let Some(until) = credentials
        .as_ref()
        .and_then(|c| c.user.locked_until_ms)
        .filter(|until| *until > now)
    {
        // Refused while locked: audited, not counted (the lock does not grow).
        store.append_audit(refusal("locked")).await?;
        let seconds = ((until - now) / 1000).max(1) as u64;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "login",
            "too many failed sign-ins; the account is locked for a while",
        )
        .retry_after(seconds));
    }
    let usable = credentials.as_ref().filter(|c| !c.user.disabled);
    let hash = usable.and_then(|c| c.password_hash.clone());
    let password = input.password.clone();
    let busy = || {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "password",
            "too many sign-ins at once; retry",
        )
        .retry_after(1)
    };
    let _slot = tokio::time::timeout(SIGN_IN_WAIT, s.sign_ins.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let matches =
        tokio::task::spawn_blocking(move || crate::passwords::verify_password(&password, hash.as_deref()))
            .await
            .unwrap_or(false);
    let Some(user) = usable.filter(|_| matches).map(|c| c.user.clone()) else {
        let reason = match (&credentials, usable) {
            (None, _) => "unknown login",
            (Some(_), None) => "disabled",
            _ => "wrong password",
        };
        match credentials {
            // An existing account counts failures towards its lock.
            Some(_) => {
                store
                    .sign_in_failed(&input.tenant, &input.login, LOCKOUT, refusal(reason))
                    .await?;
            }
            None => store.append_audit(refusal(reason)).await?,
        }
        return Err(refused());
    };
    let via = serde_json::json!({ "via": "password" });
    let started = start_session(&s, &user.tenant, &user.login, via).await?;
    let whoami = Whoami {
        tenant: user.tenant,
        name: user.login,
        roles: user.roles,
        via: Via::Session,
        expires_ms: Some(started.expires_ms),
        csrf_token: Some(started.csrf.clone()),
    };
    let mut response = axum::Json(whoami).into_response();
    for cookie in [started.cookie, csrf_cookie(&started.csrf)] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// A session just started.
pub(crate) struct Started {
    /// The `Set-Cookie` value carrying the session id.
    pub cookie: String,
    /// The CSRF token its changes carry.
    pub csrf: String,
    pub expires_ms: i64,
}

/// Starts a session for an account that just proved who it is, and audits the sign-in
/// (`data`: how they signed in, merged into the record).
pub(crate) async fn start_session(
    s: &AppState,
    tenant: &str,
    login: &str,
    mut data: serde_json::Value,
) -> Result<Started, ApiError> {
    let (id, csrf) = (random_token()?, random_token()?);
    let expires_ms = tenure_pipeline::now_ms() + SESSION_MS;
    let mut audit = AuditRecord::new(tenant, AuditKind::AuthSignedIn, login);
    if let Some(fields) = data.as_object_mut() {
        fields.insert("login".into(), login.into());
        fields.insert("expires_ms".into(), expires_ms.into());
    }
    audit.data = data;
    s.pipeline
        .store()
        .sign_in_succeeded(
            NewSession {
                tenant: tenant.to_string(),
                login: login.to_string(),
                digest: digest_of(&id),
                csrf_digest: digest_of(&csrf),
                expires_ms,
            },
            vec![audit],
        )
        .await?;
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_MS / 1000
    );
    Ok(Started {
        cookie,
        csrf,
        expires_ms,
    })
}

/// The CSRF token in a cookie the console's script reads (not `HttpOnly`) and sends back in
/// `X-CSRF-Token`; another site can neither read it nor make the browser send the header.
pub(crate) fn csrf_cookie(csrf: &str) -> String {
    format!(
        "{CSRF_COOKIE}={csrf}; Path=/; Secure; SameSite=Strict; Max-Age={}",
        SESSION_MS / 1000
    )
}

/// `GET /api/v1/session`: who the caller is.
pub(crate) async fn whoami(c: Authed<Anyone>) -> ApiResult {
    Ok(axum::Json(Whoami {
        tenant: c.tenant.clone(),
        name: c.name.clone(),
        roles: c.roles.clone(),
        via: c.via,
        csrf_token: None,
        expires_ms: None,
    })
    .into_response())
}

/// `DELETE /api/v1/session`: signs the person out (their session ends in the store).
pub(crate) async fn sign_out(State(s): State<AppState>, c: Authed<Anyone>, headers: HeaderMap) -> ApiResult {
    let Some(id) = cookie(&headers).filter(|_| c.via == Via::Session) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cookie",
            "only a session signs out; a token is revoked instead",
        ));
    };
    let audit = vec![AuditRecord::new(&c.tenant, AuditKind::AuthSignedOut, &c.name)];
    s.pipeline.store().end_session(digest_of(&id), audit).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = [
        format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
        format!("{CSRF_COOKIE}=; Path=/; Secure; SameSite=Strict; Max-Age=0"),
    ];
    for cookie in expired {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tenure_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("tenure_session="));
        assert_eq!(cookie(&headers), None);
        assert_eq!(cookie(&HeaderMap::new()), None);
    }
}
