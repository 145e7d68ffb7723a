//! Tenure's HTTP surface (axum): the events API where person events enter,
//! preview, rule-set versions, jobs and dead letters, conflicts, mass-change guards, the audit
//! log, KPIs, Prometheus metrics and health checks. Every `/api` call needs a
//! bearer token; the token's role decides what it may do and its tenant
//! scopes everything it sees.

mod accounts;
mod audit;
mod auth;
mod console;
mod error;
mod events;
mod extract;
mod holds;
mod hooks;
mod jobs;
mod notifications;
pub mod oidc;
mod openapi;
pub mod passwords;
mod people;
mod plugins;
mod routes;
mod rule_sets;
mod serve;
mod sessions;

pub use auth::{ApiToken, Role};
pub use openapi::{Operation, roles_of};
pub use routes::{OPENAPI_PATH, openapi, operations, router};
pub use serve::{ServeLimits, serve};
pub use sessions::{COOKIE as SESSION_COOKIE, CSRF_COOKIE, CSRF_HEADER};

use std::sync::Arc;
use tenure_pipeline::Pipeline;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub tokens: Arc<Vec<ApiToken>>,
    /// Rule-set versions, tests, impact previews and publishing.
    pub rule_sets: tenure_rulesets::RuleSets,
    /// Plugin versions: uploads, activation and rollback per tenant.
    pub plugins: tenure_registry::PluginRegistry,
    /// The digest of the token `/metrics` asks for, when it asks for one.
    metrics_token: Option<[u8; 32]>,
    /// Password checks running at once: each costs tens of milliseconds of a core on
    /// purpose, so an unauthenticated flood of sign-ins waits here, not on the workers.
    sign_ins: Arc<tokio::sync::Semaphore>,
    /// Each tenant's OpenID provider, for people's sign-in.
    oidc: oidc::OidcProviders,
}

impl AppState {
    pub fn new(pipeline: Arc<Pipeline>, tokens: Vec<ApiToken>) -> Self {
        AppState {
            rule_sets: tenure_rulesets::RuleSets::new(pipeline.clone()),
            plugins: tenure_registry::PluginRegistry::new(
                pipeline.store().clone(),
                pipeline.runtime().clone(),
                Default::default(),
            ),
            pipeline,
            tokens: Arc::new(tokens),
            metrics_token: None,
            sign_ins: Arc::new(tokio::sync::Semaphore::new(sessions::CONCURRENT_SIGN_INS)),
            oidc: oidc::OidcProviders::default(),
        }
    }

    /// Uses `registry` (with the tenants' trust policies) for the plugin routes.
    pub fn with_plugin_registry(mut self, registry: tenure_registry::PluginRegistry) -> Self {
        // Its live shadow runs hear of every completed job.
        self.pipeline.listen(registry.job_listener());
        self.plugins = registry;
        self
    }

    /// Lets people sign in with their tenants' OpenID providers.
    pub fn with_oidc(mut self, providers: oidc::OidcProviders) -> Self {
        self.oidc = providers;
        self
    }

    /// Makes `/metrics` answer only to `Authorization: Bearer <token>`.
    pub fn with_metrics_token(mut self, token: &str) -> Self {
        self.metrics_token = Some(auth::digest_of(token));
        self
    }
}

/// The most rows a list route answers with at once (its `limit`; larger asks get this many).
pub const MAX_LIST: usize = 10_000;

/// A list route's `limit`: `default` when absent, at least 1, at most [`MAX_LIST`].
pub(crate) fn list_limit(asked: Option<usize>, default: usize) -> usize {
    asked.unwrap_or(default).clamp(1, MAX_LIST)
}

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    #[test]
    fn a_list_limit_is_bounded_both_ways() {
        assert_eq!(super::list_limit(None, 100), 100);
        assert_eq!(super::list_limit(Some(0), 100), 1);
        assert_eq!(super::list_limit(Some(usize::MAX), 100), super::MAX_LIST);
    }
}
