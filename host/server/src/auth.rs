//! API tokens and roles. Tokens are kept only as SHA-256 digests and compared
//! in constant time; the token's name is the actor in the audit log. A handler
//! states who may call it in its signature: `Authed<Admins>` authenticates the
//! caller and checks their role before the handler runs.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::marker::PhantomData;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A source system: may post events only.
    Source,
    /// HR: post events, preview, read jobs and KPIs.
    Hr,
    /// IT administrators: everything, including replay, cancel, conflicts and guard approvals.
    It,
    /// Auditors: read the audit log, verify it, read jobs and KPIs.
    Auditor,
}

impl Role {
    /// The role's name in the configuration and the API description.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Hr => "hr",
            Role::It => "it",
            Role::Auditor => "auditor",
        }
    }
}

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

/// The caller, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub tenant: String,
    pub sources: Vec<String>,
    /// The person behind the token.
    pub person: String,
}

impl Caller {
    /// The caller as a poster of events: a `source` token speaks only for its sources; an
    /// `hr` or `it` token for its sources when it names some, else for any source the
    /// tenant does not receive by signed webhook or polling.
    pub fn poster(&self) -> tenure_pipeline::intake::Poster<'_> {
        use tenure_pipeline::intake::{Poster, SourceScope};
        let sources = if self.role == Role::Source || !self.sources.is_empty() {
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
                role: t.role,
                tenant: t.tenant.clone(),
                sources: t.sources.clone(),
                person: t.person.clone(),
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
    /// Who may send events: sources, HR and IT.
    Writers = [Source, Hr, It];
    /// Who may read jobs, events, lifecycles, rule sets and KPIs.
    Readers = [Hr, It, Auditor];
    /// Who may preview, write drafts and record HR facts: HR and IT.
    HrAndIt = [Hr, It];
    /// Who may run commands (replay, cancel, decide, approve, publish, reveal).
    Admins = [It];
    /// Who may read the audit log and reviews.
    Auditors = [It, Auditor];
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
        let Some(c) = authenticate(&state.tokens, &parts.headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Authorization",
                "a valid bearer token is required",
            ));
        };
        if !R::ROLES.contains(&c.role) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "Authorization",
                format!("token {} has role {:?}, which may not do this", c.name, c.role),
            ));
        }
        Ok(Authed(c, PhantomData))
    }
}
