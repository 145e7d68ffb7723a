//! The rule-set lifecycle in the host, for any rules plugin: a draft is checked
//! (the plugin compiles it) and tested (its own `tests:`), versions are kept with
//! author and change log, any two can be diffed, a draft's impact on every known
//! person is previewed without writing, and publishing is an atomic switch.

pub mod cases;
pub mod impact;
pub mod outputs;
pub mod throttle;
pub mod versions;

pub use cases::{CaseResult, TestReport};
use tenure_runtime::{PluginHandle, wit};
pub use versions::{RULES_HOLD_PREFIX, RuleSets};

/// Why a rule set or a step of its lifecycle was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    /// The document or one of its fields is wrong.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The rules plugin refused the rule set (compile error, with its field).
    #[error("the rules plugin refused the rule set: {0}")]
    Refused(String),
    /// A lifecycle rule was broken (tests failing, four eyes, unknown version).
    #[error("{0}")]
    Denied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] tenure_store::StoreError),
    #[error("runtime: {0}")]
    Runtime(String),
    /// Too soon: another impact preview for the tenant runs, or its budget is spent.
    #[error("{}", .0.reason)]
    Throttled(throttle::Throttled),
}

/// The document as a JSON value (YAML is a superset of JSON), for the host's own
/// parts of it (`tests`, `destinations` names). The plugin parses it itself.
pub fn document_value(text: &str) -> Result<serde_json::Value, RuleSetError> {
    let invalid = |reason: String| RuleSetError::Invalid {
        field: "document".into(),
        reason,
    };
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| invalid(format!("not valid JSON: {e}")))
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| invalid(format!("not valid YAML: {e}")))
    }
}

/// Makes the plugin load the rule set now, so that a compile error is reported
/// as such (with its field) rather than as a failed evaluation.
pub async fn check(rules: &PluginHandle, now_ms: i64) -> Result<(), RuleSetError> {
    let person = wit::Person::with_id("check", "check");
    let context = wit::rules::Context {
        event: wit::EventKind::Update,
        destinations: Vec::new(),
        now_ms,
        trace: wit::rules::TraceLevel::None,
    };
    rules
        .evaluate(&person, &context)
        .await
        .map(|_| ())
        .map_err(|e| RuleSetError::Refused(e.to_string()))
}
