//! API tokens and roles. Tokens are kept only as SHA-256 digests and compared
//! in constant time; the token's name is the actor in the audit log.

use axum::http::HeaderMap;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

/// One API token.
#[derive(Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub tenant: String,
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
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }
}

/// The caller, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub tenant: String,
}

/// Finds the token presented as `Authorization: Bearer <token>`.
pub fn authenticate(tokens: &[ApiToken], headers: &HeaderMap) -> Option<Caller> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let presented = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        // Compare every token fully so that timing says nothing about which matched.
        if t.digest
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
        {
            found = Some(Caller {
                name: t.name.clone(),
                role: t.role,
                tenant: t.tenant.clone(),
            });
        }
    }
    found
}
