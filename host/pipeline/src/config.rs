//! What the pipeline is told: queue behaviour and, per tenant, the rules
//! plugin and the ordered destinations with their policies.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Queue and worker settings (`[queue]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Jobs applied at once (different people in parallel; one person's in order).
    pub concurrency: usize,
    /// How long a claimed job stays leased without a heartbeat (a crashed host's jobs return after this).
    pub lease_ms: u64,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often the dispatcher looks for due jobs when nothing wakes it.
    pub poll_ms: u64,
    /// How long a report waits before re-checking whether their manager is provisioned.
    pub manager_wait_ms: u64,
    /// A report waits for their manager's unfinished events at most this long after
    /// its own event arrived (so a cycle in the manager data cannot stall anyone).
    pub manager_wait_max_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: 16,
            lease_ms: 30_000,
            max_attempts: 10,
            backoff_base_ms: 1_000,
            backoff_max_ms: 600_000,
            poll_ms: 200,
            manager_wait_ms: 200,
            manager_wait_max_ms: 60_000,
        }
    }
}

/// What to do when a match is ambiguous or an unmanaged account already holds the identifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Link the existing account and take it over.
    Merge,
    /// Leave the destination alone for this person.
    Skip,
    /// Hold the job until a person decides (`POST /api/v1/conflicts/{id}/resolve`).
    #[default]
    Alert,
}

/// What happens to a linked account when the rules no longer produce it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deprovision {
    #[default]
    Disable,
    Delete,
    /// Leave it as it is.
    None,
}

/// The mass-change guard of one destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Most people whose accounts may be disabled, deleted, moved or stripped of
    /// groups within the window before Tenure stops and asks.
    pub max_accounts: Option<i64>,
    /// The same as a percentage of the accounts Tenure manages in the destination.
    pub max_percent: Option<f64>,
    /// The percentage applies only once the destination has this many managed accounts.
    pub min_population: i64,
    pub window_secs: i64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_accounts: Some(25),
            max_percent: Some(10.0),
            min_population: 200,
            window_secs: 3_600,
        }
    }
}

/// One destination of a tenant (`[[tenants.T.destinations]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// The name rules use for it.
    pub name: String,
    /// The connector plugin that reaches it.
    pub connector: String,
    /// Attributes to look accounts up by, in order (after the linked anchor).
    #[serde(default = "default_matching")]
    pub matching: Vec<String>,
    #[serde(default)]
    pub conflict: ConflictPolicy,
    /// Plan and audit, apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub deprovision: Deprovision,
    #[serde(default)]
    pub guard: GuardConfig,
}

fn default_matching() -> Vec<String> {
    vec!["employeeId".into()]
}

/// `[tenants.T.rule_sets]`: how rule-set versions are published.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetPolicy {
    /// Four eyes: the publisher of a version must not be its author.
    #[serde(default)]
    pub four_eyes: bool,
}

/// A tenant's pipeline: its rules plugin and destinations, in dependency order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPipeline {
    pub rules: String,
    /// How rule-set versions are published.
    #[serde(default)]
    pub rule_sets: RuleSetPolicy,
    /// How one person is recognised across sources, and which source wins per attribute.
    #[serde(default)]
    pub identity: crate::identity::IdentityConfig,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// Source plugins (pushed payloads and polling).
    #[serde(default)]
    pub sources: Vec<crate::sources::SourceConfig>,
}

/// Everything the pipeline needs to know.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    pub queue: QueueConfig,
    pub tenants: BTreeMap<String, TenantPipeline>,
}
