//! Rule-set versions: every draft kept with its test report, one published head
//! per tenant, rollback by publishing an earlier version.

use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A new rule-set version (a draft until published).
#[derive(Debug, Clone)]
pub struct NewRuleSet {
    pub tenant: String,
    pub document: String,
    pub author: String,
    pub message: String,
    pub tests_passed: bool,
    /// The test report, as JSON.
    pub tests: serde_json::Value,
}

/// A stored rule-set version.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleSetVersion {
    pub tenant: String,
    pub version: i64,
    pub author: String,
    pub message: String,
    pub created_ms: i64,
    pub tests_passed: bool,
    pub tests: serde_json::Value,
    pub document: String,
}

/// Which version a tenant runs, since when and by whom.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct RuleSetHead {
    pub version: i64,
    pub published_by: String,
    pub published_ms: i64,
}

/// A publish (or a rollback) to write.
#[derive(Debug, Clone)]
pub struct Publish {
    pub tenant: String,
    pub version: i64,
    pub actor: String,
    pub audit: Vec<AuditRecord>,
    /// Held jobs whose reason starts with this go back in the queue.
    pub release_held: Option<String>,
}

/// What a publish did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Published {
    pub head: RuleSetHead,
    /// Held jobs put back in the queue.
    pub released: u64,
}

/// Rule-set versions.
#[async_trait]
pub trait RuleSetStore: Send + Sync {
    /// Stores a new rule-set version (the next number for the tenant); each audit record's
    /// data gets the version number.
    async fn put_rule_set(&self, new: NewRuleSet, audit: Vec<AuditRecord>) -> StoreResult<RuleSetVersion>;
    /// Every version of a tenant's rule set, oldest first.
    async fn rule_sets(&self, tenant: &str) -> StoreResult<Vec<RuleSetVersion>>;
    async fn rule_set(&self, tenant: &str, version: i64) -> StoreResult<Option<RuleSetVersion>>;
    /// Makes a version the tenant's current rule set and, in the same write, puts the
    /// jobs held with a reason starting `release_held` back in the queue (audited).
    async fn publish_rule_set(&self, publish: Publish) -> StoreResult<Published>;
    async fn current_rule_set(&self, tenant: &str) -> StoreResult<Option<RuleSetHead>>;
}
