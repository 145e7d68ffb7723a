//! API tokens and roles. Tokens are kept only as SHA-256 digests and compared
//! in constant time; the token's name is the actor in the audit log. A handler
//! states who may call it in its signature: `Authed<Admins>` authenticates the
//! caller and checks their role before the handler runs.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use sha2::{Digest, Sha256};
use std::marker::PhantomData;

pub use tenure_store::Role;

/// One API token.
#[derive(Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub tenant: String,
    /// The sources it may post for (empty: see [`Caller::poster`]).
    pub sources: Vec<String>,
    /// The person who holds it (four eyes compares people); its name unless set.
    pub person: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl ApiToken {
    pub fn new(name: &str, role: Role, tenant: &str, secret: &str) -> ApiToken {
        ApiToken {
            name: name.into(),
            role,
            tenant: tenant.into(),
            sources: Vec::new(),
            person: name.into(),
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Names the person who holds the token (several tokens may be one person's).
    pub fn held_by(mut self, person: &str) -> ApiToken {
        self.person = person.into();
        self
    }

    /// Binds the token to the sources it may post for.
    pub fn for_sources(mut self, sources: Vec<String>) -> ApiToken {
        self.sources = sources;
        self
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A bearer token (a machine).
    Token,
    /// A person's session cookie.
    Session,
}

/// The caller, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name or the person's login: the actor in the audit log.
    pub name: String,
    /// A token has one role; a person may have several.
    pub roles: Vec<Role>,
    pub tenant: String,
    pub sources: Vec<String>,
    /// The person behind the token, or the person signed in.
    pub person: String,
    pub via: Via,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller may act as an IT administrator (an audited reason instead of a
    /// webhook signature).
    pub fn administers_it(&self) -> bool {
        [Role::It, Role::ItAdmin, Role::Owner]
            .iter()
            .any(|r| self.has(*r))
    }

    /// The caller as a poster of events: a `source` token speaks only for its sources; an
    /// `hr` or `it` token for its sources when it names some, else for any source the
    /// tenant does not receive by signed webhook or polling.
    pub fn poster(&self) -> tenure_pipeline::intake::Poster<'_> {
        use tenure_pipeline::intake::{Poster, SourceScope};
        let sources = if self.has(Role::Source) || !self.sources.is_empty() {
            SourceScope::Only(&self.sources)
        } else {
            SourceScope::PushSources
        };
        Poster {
            name: &self.name,
            sources,
        }
    }
}

/// The SHA-256 of the token presented as `Authorization: Bearer <token>`.
fn presented_digest(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let presented = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    Some(Sha256::digest(presented.as_bytes()).into())
}

/// Compares two digests in constant time.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The digest of a secret, as presented tokens are compared.
pub(crate) fn digest_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether the request presents the token whose digest is `expected`.
pub(crate) fn presents(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
    presented_digest(headers).is_some_and(|d| same_digest(&d, expected))
}

/// Finds the token presented as `Authorization: Bearer <token>`.
pub fn authenticate(tokens: &[ApiToken], headers: &HeaderMap) -> Option<Caller> {
    let digest = presented_digest(headers)?;
    let mut found = None;
    for t in tokens {
        // Compare every token fully so that timing says nothing about which matched.
        if same_digest(&t.digest, &digest) {
            found = Some(Caller {
                name: t.name.clone(),
                roles: vec![t.role],
                tenant: t.tenant.clone(),
                sources: t.sources.clone(),
                person: t.person.clone(),
                via: Via::Token,
            });
        }
    }
    found
}

/// The roles allowed to call a route.
pub trait Allowed: Send + Sync + 'static {
    const ROLES: &'static [Role];
}

macro_rules! allowed {
    ($($(#[$m:meta])* $name:ident = [$($role:ident),*];)*) => {
        $(
            $(#[$m])*
            pub struct $name;
            impl Allowed for $name {
                const ROLES: &'static [Role] = &[$(Role::$role),*];
            }
        )*
    };
}

allowed! {
    /// Who may send events: sources, HR and IT tokens, owners and HR administrators.
    Writers = [Source, Hr, It, Owner, HrAdmin];
    /// Who may read jobs, events, lifecycles, rule sets and KPIs: everyone but sources.
    Readers = [Hr, It, Auditor, Owner, HrAdmin, ItAdmin, Operator];
    /// Who may preview, write drafts and record HR facts.
    HrAndIt = [Hr, It, Owner, HrAdmin, ItAdmin];
    /// Who may run the queue's commands: replay, cancel, decide conflicts, approve guards.
    Operators = [It, Owner, ItAdmin, Operator];
    /// Who may publish a rule set (four eyes: never its author).
    Publishers = [It, Owner, HrAdmin, ItAdmin];
    /// Who may change the deployment: plugins, reconciliation, initial passwords.
    Admins = [It, Owner, ItAdmin];
    /// Who may read the audit log and reviews.
    Auditors = [It, Auditor, Owner];
    /// Who may make API tokens and revoke them.
    TokenAdmins = [Owner, ItAdmin];
    /// Who may manage people's accounts.
    Owners = [Owner];
    /// Anyone signed in or holding a token.
    Anyone = [Source, Hr, It, Auditor, Owner, HrAdmin, ItAdmin, Operator];
}

/// The authenticated caller, whose role `R` allows the route.
pub struct Authed<R>(pub Caller, PhantomData<R>);

impl<R> std::ops::Deref for Authed<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl Caller {
    /// The caller as a pipeline command's actor.
    pub fn actor(&self) -> tenure_pipeline::admin::Actor<'_> {
        tenure_pipeline::admin::Actor {
            tenant: &self.tenant,
            name: &self.name,
        }
    }
}

impl<R: Allowed> FromRequestParts<AppState> for Authed<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = identify(parts, state).await?;
        if !R::ROLES.iter().any(|r| c.has(*r)) {
            let roles: Vec<&str> = c.roles.iter().map(|r| r.as_str()).collect();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "Authorization",
                format!(
                    "{} has the roles [{}], which may not do this",
                    c.name,
                    roles.join(", ")
                ),
            ));
        }
        Ok(Authed(c, PhantomData))
    }
}

/// Who is calling: a configured token, a token made at run time, or a person's session
/// (whose writes must carry the session's CSRF token).
async fn identify(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    if let Some(c) = authenticate(&state.tokens, &parts.headers) {
        return Ok(c);
    }
    let store = state.pipeline.store();
    if let Some(digest) = presented_digest(&parts.headers) {
        return match store.api_token_by_digest(digest).await? {
            Some(t) => Ok(Caller {
                name: t.name.clone(),
                roles: vec![t.role],
                tenant: t.tenant,
                sources: t.sources,
                person: t.name,
                via: Via::Token,
            }),
            None => Err(unauthenticated()),
        };
    }
    let Some(id) = crate::sessions::cookie(&parts.headers) else {
        return Err(unauthenticated());
    };
    let Some(session) = store.session(digest_of(&id)).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Cookie",
            "the session has ended; sign in again",
        ));
    };
    if !parts.method.is_safe() {
        let presented = parts
            .headers
            .get(crate::sessions::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(digest_of);
        if !presented.is_some_and(|d| same_digest(&d, &session.csrf_digest)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                crate::sessions::CSRF_HEADER,
                "a signed-in change needs the session's CSRF token in this header",
            ));
        }
    }
    let user = session.user;
    Ok(Caller {
        name: user.login.clone(),
        roles: user.roles,
        tenant: user.tenant,
        sources: Vec::new(),
        person: user.login,
        via: Via::Session,
    })
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Authorization",
        "a valid bearer token or a session is required",
    )
}
