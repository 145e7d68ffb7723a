//! Who may use the API: people's accounts (password hashes, lockout), their server-side
//! sessions, and API tokens made at run time. Secrets are never kept: passwords as argon2id
//! hashes (made by the caller), session ids, CSRF tokens and API tokens as SHA-256 digests.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use serde::Serialize;

crate::column_enum! {
    /// What a token or a person may do. Tokens (machines) take the first four; people the
    /// last five (`auditor` is both).
    pub enum Role {
        /// A source system: may post events only.
        Source = "source",
        /// HR's token: post events, preview, read jobs and KPIs.
        Hr = "hr",
        /// IT's token: everything but the accounts of people.
        It = "it",
        /// Auditors: read the audit log, verify it, read jobs, reports and KPIs.
        Auditor = "auditor",
        /// Owns the deployment's tenant: everything, people's accounts and tokens included.
        Owner = "owner",
        /// HR administrators: sources, people's facts, people-facing mappings (rule sets).
        HrAdmin = "hr-admin",
        /// IT administrators: destinations, connectors, plugins, approvals, tokens.
        ItAdmin = "it-admin",
        /// Operators: replay, cancel, decide conflicts, approve held changes.
        Operator = "operator",
    }
}

impl Role {
    /// The roles a person may hold.
    pub const PEOPLE: [Role; 5] = [
        Role::Owner,
        Role::HrAdmin,
        Role::ItAdmin,
        Role::Operator,
        Role::Auditor,
    ];
    /// The roles a token (a machine) may hold.
    pub const MACHINES: [Role; 4] = [Role::Source, Role::Hr, Role::It, Role::Auditor];
}

/// A person's account, as the API shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UserRow {
    pub tenant: String,
    /// The name they sign in with; the actor in the audit log.
    pub login: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub disabled: bool,
    /// Failed sign-ins since the last success or lock.
    pub failed_attempts: i64,
    /// Sign-ins are refused until then (ms since the epoch).
    pub locked_until_ms: Option<i64>,
    pub created_ms: i64,
    pub last_sign_in_ms: Option<i64>,
}

/// An account with the hash its password is checked against.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: UserRow,
    /// The argon2id hash in PHC form; `None` for an account that signs in another way.
    pub password_hash: Option<String>,
}

/// An account to make.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub tenant: String,
    pub login: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub password_hash: Option<String>,
}

/// A change to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub roles: Option<Vec<Role>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

/// When repeated failures lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: i64,
    pub lock_ms: i64,
}

/// A session to start on a successful sign-in.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub tenant: String,
    pub login: String,
    /// SHA-256 of the session id in the cookie.
    pub digest: [u8; 32],
    /// SHA-256 of the CSRF token the session's writes must carry.
    pub csrf_digest: [u8; 32],
    pub expires_ms: i64,
}

/// A live session with its account as it is now (roles changed since sign-in apply at once).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: UserRow,
    pub csrf_digest: [u8; 32],
    pub expires_ms: i64,
}

/// An API token made at run time (the token itself was shown once and is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ApiTokenRow {
    pub tenant: String,
    /// The actor in the audit log.
    pub name: String,
    pub role: Role,
    /// The sources it may post for (a `source` token: at least one).
    pub sources: Vec<String>,
    /// Who made it.
    pub created_by: String,
    pub created_ms: i64,
    #[serde(skip)]
    #[schemars(skip)]
    pub digest: [u8; 32],
}

/// People's accounts, their sessions, and API tokens made at run time.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Makes an account; `Conflict` when the login is taken in the tenant.
    async fn create_user(&self, user: NewUser, audit: Vec<AuditRecord>) -> StoreResult<UserRow>;
    /// A tenant's accounts by login.
    async fn users(&self, tenant: &str) -> StoreResult<Vec<UserRow>>;
    /// An account with its password hash, for a sign-in.
    async fn user_credentials(&self, tenant: &str, login: &str) -> StoreResult<Option<UserCredentials>>;
    /// Changes an account; a disabled account's sessions end. `NotFound` for no such login.
    async fn change_user(
        &self,
        tenant: &str,
        login: &str,
        change: UserChange,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<UserRow>;
    /// Counts a failed sign-in; at `policy.max_failures` the account is locked for
    /// `policy.lock_ms`. Returns the time it is locked until, when this failure locked it.
    async fn sign_in_failed(
        &self,
        tenant: &str,
        login: &str,
        policy: LockoutPolicy,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<i64>>;
    /// Starts a session and clears the failures, in one write.
    async fn sign_in_succeeded(&self, session: NewSession, audit: Vec<AuditRecord>) -> StoreResult<()>;
    /// The unexpired session of an enabled account with this id digest.
    async fn session(&self, digest: [u8; 32]) -> StoreResult<Option<SessionRow>>;
    /// Ends a session; whether there was one.
    async fn end_session(&self, digest: [u8; 32], audit: Vec<AuditRecord>) -> StoreResult<bool>;
    /// Stores a token's digest; `Conflict` when the name is taken in the tenant.
    async fn create_api_token(&self, token: ApiTokenRow, audit: Vec<AuditRecord>)
    -> StoreResult<ApiTokenRow>;
    /// A tenant's run-time tokens by name.
    async fn api_tokens(&self, tenant: &str) -> StoreResult<Vec<ApiTokenRow>>;
    /// The token with this digest, if one was made and not revoked.
    async fn api_token_by_digest(&self, digest: [u8; 32]) -> StoreResult<Option<ApiTokenRow>>;
    /// Revokes a token; whether there was one.
    async fn revoke_api_token(&self, tenant: &str, name: &str, audit: Vec<AuditRecord>) -> StoreResult<bool>;
}
