//! The rule-set document as written (YAML or JSON), before compilation.
//!
//! The JSON Schema in `schema/rule-set.schema.json` describes the same shape for
//! editors and the UI; `tests` belongs to the host's test runner and is ignored here.

use serde::Deserialize;
use std::collections::BTreeMap;

/// A whole rule set: per destination, who is in scope and what their account looks like.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub description: Option<String>,
    /// Destination name -> its rules. Destinations not named here get no account.
    pub destinations: BTreeMap<String, DestinationDoc>,
    /// Test cases, run by the host (`tenure rules test`); not read by the engine.
    #[serde(default)]
    pub tests: Option<serde_json::Value>,
}

/// The rules of one destination.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DestinationDoc {
    /// CEL condition: who gets an account here. Absent: everyone.
    #[serde(default)]
    pub scope: Option<String>,
    /// Attribute mappings, evaluated for everyone in scope.
    #[serde(default)]
    pub attributes: BTreeMap<String, MappingDoc>,
    /// Attributes whose value must be unique: candidates tried in order.
    #[serde(default)]
    pub unique: BTreeMap<String, UniqueDoc>,
    /// Conditional outputs, tested in ascending `priority`, ties in document order.
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
    /// What applies when no matching rule set a field.
    #[serde(default)]
    pub defaults: OutputsDoc,
}

/// One attribute mapping: a template string, or an object with exactly one of
/// `from`, `value` or `expr`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum MappingDoc {
    /// A template: literal text with `${cel}` parts.
    Template(String),
    Full(MappingFull),
}

#[derive(Debug, Deserialize, Default)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MappingFull {
    /// A person attribute by name (`department`, `custom.level`).
    #[serde(default)]
    pub from: Option<String>,
    /// A constant, used as is.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// A CEL expression; its value, whatever its type.
    #[serde(default)]
    pub expr: Option<String>,
    /// An expression in Entra's syntax (`Append([userPrincipalName], ".test")`), as written
    /// for Microsoft Entra's provisioning; translated to CEL when the rule set is compiled.
    #[serde(default)]
    pub entra: Option<String>,
    /// Used when the mapping yields nothing (null, empty).
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// An empty result is an error that holds the event, naming this attribute.
    #[serde(default)]
    pub required: bool,
}

/// A unique naming convention for one attribute.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UniqueDoc {
    /// Candidate templates in order. A candidate using `n` is tried for n = 2..=max_n.
    pub candidates: Vec<String>,
    /// Destinations where the value must be free (the connector's lookup); default: this one.
    #[serde(default)]
    pub unique_in: Vec<String>,
    #[serde(default = "default_max_n")]
    pub max_n: u32,
    /// Take a new name when HR data changes. Default: the assigned name stays.
    #[serde(default)]
    pub rename_on_change: bool,
}

fn default_max_n() -> u32 {
    9
}

/// A condition and what it contributes.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Lower runs first; ties keep document order.
    #[serde(default)]
    pub priority: i64,
    /// CEL condition.
    pub when: String,
    #[serde(default)]
    pub then: OutputsDoc,
    /// When this rule matches, test no further rules for this destination.
    #[serde(default)]
    pub stop: bool,
}

/// Outputs of a rule (or the defaults). Strings are templates.
#[derive(Debug, Deserialize, Default)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct OutputsDoc {
    /// OU / org unit / container.
    #[serde(default)]
    pub container: Option<String>,
    /// Security groups. In a rule, an empty list (`[]`) means none: the defaults add none either.
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub distribution_lists: Option<Vec<String>>,
    #[serde(default)]
    pub m365_groups: Option<Vec<String>>,
    #[serde(default)]
    pub licenses: Option<Vec<String>>,
    #[serde(default)]
    pub apps: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// CEL expression giving the account's expiry (a date or timestamp).
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, MappingDoc>,
    #[serde(default)]
    pub tickets: Vec<TicketDoc>,
}

/// A ticket to open in an ITSM destination; field values are templates.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TicketDoc {
    pub template: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// Parses YAML (a superset of JSON) into the document, naming the field at fault.
pub fn parse(text: &str) -> Result<Document, String> {
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let reason = if reason.contains("untagged enum MappingDoc") {
            "expected a template string or an object with one of from, value, expr or entra".to_string()
        } else {
            reason
        };
        if path == "." {
            reason
        } else {
            format!("{path}: {reason}")
        }
    })
}

#[cfg(test)]
mod tests {
    /// The published schema is generated from these types; this test keeps the
    /// committed file current (`UPDATE_SCHEMA=1 cargo test` rewrites it).
    #[test]
    fn the_published_json_schema_is_current() {
        let mut schema = serde_json::to_value(schemars::schema_for!(super::Document)).expect("schema");
        schema["$id"] = "https://tenure.dev/schemas/rule-set.schema.json".into();
        schema["title"] = "Tenure rule set".into();
        let text = serde_json::to_string_pretty(&schema).expect("json") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/rule-set.schema.json");
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &text).expect("write schema");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == text,
            "plugins/rules/schema/rule-set.schema.json is out of date: run UPDATE_SCHEMA=1 cargo test -p \
                tenure-rules-engine"
        );
    }
}
