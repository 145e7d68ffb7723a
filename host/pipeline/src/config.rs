//! What the pipeline is told: queue behaviour and, per tenant, the rules
//! plugin and the ordered destinations with their policies.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Queue and worker settings (`[queue]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// The longest retry delay.
    pub backoff_max_ms: u64,
    /// How often the dispatcher looks for due jobs when nothing wakes it.
    pub poll_ms: u64,
    /// How long a report waits before re-checking whether their manager is provisioned.
    pub manager_wait_ms: u64,
    /// A report waits for their manager's unfinished events at most this long after
    /// its own event arrived (so a cycle in the manager data cannot stall anyone).
    pub manager_wait_max_ms: u64,
    /// Stored webhook deliveries enriched at once (each through its source's plugin).
    pub enrich_concurrency: usize,
    /// Enrichment attempts of a delivery before it is dead (a rate limit's wait is not one).
    pub enrich_max_attempts: u32,
    /// An event whose `occurred_at` is further than this in the future is refused (it would
    /// supersede every later event for the person).
    pub max_future_skew_secs: u64,
    /// Finished operational rows (enriched webhook deliveries with their raw bodies, done
    /// scheduled actions, guard admissions) are removed this many days after they finished;
    /// 0 keeps them. The audit log, events and jobs are always kept.
    pub retention_days: u32,
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
            enrich_concurrency: 4,
            enrich_max_attempts: 12,
            max_future_skew_secs: 300,
            retention_days: 90,
        }
    }
}

/// What to do when a match is ambiguous or an unmanaged account already holds the identifier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Deprovision {
    #[default]
    Disable,
    Delete,
    /// Leave it as it is.
    None,
}

/// The mass-change guard of one destination.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// Most people whose accounts may be disabled, deleted, moved or stripped of
    /// groups within the window before Tenure stops and asks.
    pub max_accounts: Option<i64>,
    /// The same as a percentage of the accounts Tenure manages in the destination.
    pub max_percent: Option<f64>,
    /// The percentage applies only once the destination has this many managed accounts.
    pub min_population: i64,
    /// The sliding window the limits count over, in seconds.
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
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// The name rules use for it.
    pub name: String,
    /// The connector plugin that reaches it.
    pub connector: String,
    /// Attributes to look accounts up by, in order (after the linked anchor).
    #[serde(default = "default_matching")]
    pub matching: Vec<String>,
    /// What happens when an unlinked account already matches the person.
    #[serde(default)]
    pub conflict: ConflictPolicy,
    /// Plan and audit, apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// How its changes are made for people in no cohort: `live` (applied), `supervised` (held
    /// for a person's approval, per person) or `observe` (planned and audited only).
    #[serde(default)]
    pub mode: crate::supervision::ApplyMode,
    /// Cohorts with their own mode, the first whose scope holds for a person deciding
    /// (`[[tenants.T.destinations.cohorts]]`): a rollout widens them step by step.
    #[serde(default)]
    pub cohorts: Vec<crate::supervision::Cohort>,
    /// What a leaver's account gets: disabled, or deleted at once.
    #[serde(default)]
    pub deprovision: Deprovision,
    /// Grace period after which a leaver's disabled account is deleted (`30d`, `12h`,
    /// `90m`, `45s`); a rehire within it cancels the deletion. None: never deleted.
    #[serde(default, deserialize_with = "grace_period")]
    pub delete_after: Option<GracePeriod>,
    /// The mass-change guard: how many accounts one run may change before it waits for approval.
    #[serde(default)]
    pub guard: GuardConfig,
    /// Pre-hire accounts are made this many days before the start date (disabled
    /// until it begins in the person's zone). None: as soon as the hire is known.
    #[serde(default)]
    pub prehire_days: Option<u32>,
    /// Staged leaver steps after the termination (the disable comes first, at once).
    #[serde(default)]
    pub leaver_steps: Vec<LeaverStep>,
    /// Hold the leaver steps and the deletion here until the leaver's tickets (of these
    /// templates, at this desk) are closed: for example an account that goes only once the
    /// laptop is back.
    #[serde(default)]
    pub wait_for_tickets: Option<TicketWait>,
    /// What reconciliation does with drift here: `report` or `repair`.
    #[serde(default)]
    pub reconcile: ReconcileMode,
}

/// Tickets a destination's leaver steps wait for (`[tenants.T.destinations.wait_for_tickets]`).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketWait {
    /// The ticket desk (a destination whose connector follows tickets).
    pub desk: String,
    /// The rules' ticket templates to wait for (opened when the person left).
    pub templates: Vec<String>,
    /// How often an open ticket is looked at again (default `1h`).
    #[serde(default = "hourly", deserialize_with = "required_period")]
    pub poll_every: GracePeriod,
    /// A ticket still open this long after it was opened raises `ticket-overdue` (once).
    #[serde(default, deserialize_with = "grace_period")]
    pub alert_after: Option<GracePeriod>,
}

fn hourly() -> GracePeriod {
    GracePeriod(3_600_000)
}

/// One staged leaver step (`[[tenants.T.destinations.leaver_steps]]`).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
pub struct LeaverStep {
    /// How long after the termination takes effect (`0d`, `7d`, `12h`).
    #[serde(deserialize_with = "required_period")]
    pub after: GracePeriod,
    #[serde(flatten)]
    pub action: StepAction,
}

/// What a leaver step does.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum StepAction {
    /// Move the account to a leavers' container.
    Move {
        container: String,
    },
    RemoveLicenses,
    RemoveApps,
    /// Remove every group Tenure manages.
    RemoveGroups,
}

impl StepAction {
    pub fn name(&self) -> &'static str {
        match self {
            StepAction::Move { .. } => "move",
            StepAction::RemoveLicenses => "remove-licenses",
            StepAction::RemoveApps => "remove-apps",
            StepAction::RemoveGroups => "remove-groups",
        }
    }
}

/// Reconciliation policy of a destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReconcileMode {
    /// Report drift only.
    #[default]
    Report,
    /// Report it and queue a job that puts the person's accounts right.
    Repair,
}

/// A tenant's lifecycle settings (`[tenants.T.lifecycle]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Notices before a contract ends, in days (for example `[14, 3]`).
    pub contract_notice_days: Vec<u32>,
    /// The destination whose connector opens the notice tickets (to the manager).
    pub notify_destination: Option<String>,
    /// The ticket template of a contract-expiry notice.
    pub notice_template: String,
    /// The notice ticket's fields as the notify destination wants them, each a minijinja
    /// template over the notice (`person`, `manager_email`, `end_date`, `days_before`), for
    /// example `{ subject = "...", description = "...", email = "{{ manager_email }}" }` for
    /// Freshservice. Empty: the notice's own fields (`person`, `person_email`, `manager`,
    /// `manager_email`, `end_date`, `days_before`).
    pub notice_fields: std::collections::BTreeMap<String, String>,
    /// How often reconciliation runs on its own (`24h`); None: on demand only.
    #[serde(deserialize_with = "grace_period")]
    pub reconcile_every: Option<GracePeriod>,
    /// How many reconciliation reports (drift and repairs) are kept; older ones are
    /// dropped when a run stores its own.
    pub reconcile_reports_kept: usize,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            contract_notice_days: vec![14, 3],
            notify_destination: None,
            notice_template: "contract-expiry".into(),
            notice_fields: Default::default(),
            reconcile_every: None,
            reconcile_reports_kept: 90,
        }
    }
}

fn required_period<'de, D: serde::Deserializer<'de>>(d: D) -> Result<GracePeriod, D::Error> {
    let text = String::deserialize(d)?;
    GracePeriod::parse(&text).map_err(serde::de::Error::custom)
}

/// A grace period, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracePeriod(pub i64);

impl schemars::JsonSchema for GracePeriod {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+[dhms]$",
            "description": "A duration: a whole number and a unit, `d`, `h`, `m` or `s` (`30d`, `12h`)."
        })
    }
}

impl GracePeriod {
    /// Parses `<n>d`, `<n>h`, `<n>m` or `<n>s`.
    pub fn parse(text: &str) -> Result<GracePeriod, String> {
        let text = text.trim();
        let split = text.len().saturating_sub(1);
        let (number, unit) = text.split_at(split);
        let n: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 30d, 12h, 90m or 45s"))?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            _ => return Err(format!("{text:?} has no unit: use d, h, m or s (30d)")),
        };
        if n < 0 {
            return Err(format!("{text:?} is negative"));
        }
        n.checked_mul(unit_ms)
            .map(GracePeriod)
            .ok_or_else(|| format!("{text:?} is too long"))
    }
}

fn grace_period<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<GracePeriod>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| GracePeriod::parse(&t).map_err(serde::de::Error::custom))
        .transpose()
}

fn default_matching() -> Vec<String> {
    vec!["employeeId".into()]
}

#[cfg(test)]
mod tests {
    use super::GracePeriod;

    #[test]
    fn grace_periods_parse_with_units_and_refuse_the_rest() {
        assert_eq!(GracePeriod::parse("30d"), Ok(GracePeriod(30 * 86_400_000)));
        assert_eq!(GracePeriod::parse("2s"), Ok(GracePeriod(2_000)));
        assert!(GracePeriod::parse("30").unwrap_err().contains("no unit"));
        assert!(GracePeriod::parse("soon").is_err());
        assert!(GracePeriod::parse("-1d").is_err());
    }
}

/// `[tenants.T.rule_sets]`: how rule-set versions are published.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSetPolicy {
    /// Four eyes: the publisher of a version must not be its author.
    #[serde(default)]
    pub four_eyes: bool,
}

/// A tenant's pipeline: its rules plugin and destinations, in dependency order.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
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
    /// What happens to generated initial passwords: `discard` or `vault`.
    #[serde(default)]
    pub initial_passwords: crate::passwords::InitialPasswords,
    /// Contract notices and scheduled reconciliation.
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    /// Channels and the events that notify on them.
    #[serde(default)]
    pub notifications: crate::notify::NotificationsConfig,
}

/// Everything the pipeline needs to know.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    pub queue: QueueConfig,
    pub tenants: BTreeMap<String, TenantPipeline>,
}
