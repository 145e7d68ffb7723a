//! Connector fixtures: a person's desired account, step after step, through the host's own
//! lookup, planner and apply, against recorded HTTP exchanges.
//!
//! ```json
//! { "name": "creates, then disables",
//!   "settings": { "base_path": "/v2" },
//!   "http": [
//!     { "method": "GET", "path": "/Users?filter=employeeId%20eq%20%221001%22",
//!       "response": { "status": 200, "body": { "Resources": [] } } },
//!     { "method": "POST", "path": "/Users", "body": { "userName": "ada" },
//!       "response": { "status": 201, "body": { "id": "u1" } } } ],
//!   "steps": [
//!     { "desired": { "attributes": { "employeeId": "1001", "userName": "ada" }, "groups": [] },
//!       "expect": { "operations": ["create"] } },
//!     { "left": true, "expect": { "operations": ["disable"] } } ] }
//! ```
//!
//! Each step looks the account up (by the anchor once one is known, then by the connector's
//! matching keys), plans with the host's planner, and applies every planned operation. The
//! steps share the plugin's key-value store and the link (anchor, groups Tenure granted), as a
//! person's jobs do. Every recorded exchange must be requested, in order, and nothing else;
//! an `"ldap"` list does the same for LDAP requests ([`crate::ldap_replay`]).

use crate::Replays;
use crate::ldap_replay::LdapExchange;
use crate::replay::Exchange;
use crate::{HarnessError, subset};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use tenure_pipeline::config::Deprovision;
use tenure_pipeline::plan::{self, ConnectorCaps};
use tenure_runtime::{PluginHandle, wit};
use tenure_store::Link;

/// One connector fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFixture {
    pub name: String,
    /// The plugin's settings, as `[tenants.T.plugins.NAME.settings]` would give them.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub http: Vec<Exchange>,
    /// Recorded LDAP requests and results ([`crate::ldap_replay`]).
    #[serde(default)]
    pub ldap: Vec<LdapExchange>,
    pub steps: Vec<Step>,
}

/// One job's worth of work for the person.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The account the rules want (left out: the rules give none).
    #[serde(default)]
    pub desired: Option<Json>,
    /// The person has left (a missing desired account is deprovisioned).
    #[serde(default)]
    pub left: bool,
    /// What to do with an account the rules no longer give.
    #[serde(default)]
    pub deprovision: Deprovision,
    pub expect: StepExpect,
}

/// What a step must give.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// The planned operations' kinds, in order (`create`, `update`, `add-member`, ...).
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Changes the connector cannot make, as the planner reports them.
    #[serde(default)]
    pub unsupported: Option<Vec<String>>,
    /// The account the lookup found (a subset), or `null` for none.
    #[serde(default)]
    pub found: Option<Json>,
    /// Applying fails with an error containing this text.
    #[serde(default)]
    pub error: Option<String>,
}

/// Runs one fixture against `plugin` for `tenant`; returns what differed (empty: passed).
pub(crate) async fn run(
    handle: &PluginHandle,
    replay: &Replays<'_>,
    fixture: &ConnectorFixture,
) -> Result<Vec<String>, HarnessError> {
    let mut failures = Vec::new();
    let caps = ConnectorCaps {
        described: handle.describe().await?,
        keeps: handle.manifest().keeps.clone(),
    };
    let destination = handle.plugin().to_string();
    let mut link: Option<Link> = None;
    let mut last_keys: Vec<wit::MatchKey> = Vec::new();
    for (i, step) in fixture.steps.iter().enumerate() {
        let at = format!("steps[{i}]");
        let desired = match &step.desired {
            None | Some(Json::Null) => None,
            Some(partial) => Some(
                desired_from_json(&destination, partial.clone()).map_err(|reason| HarnessError::Fixture {
                    file: fixture.name.clone(),
                    reason: format!("{at}.{reason}"),
                })?,
            ),
        };
        let keys = lookup_keys(&caps, desired.as_ref(), link.as_ref(), &last_keys);
        last_keys = keys.clone();
        let current = if keys.is_empty() || caps.can().tickets_only() {
            None
        } else {
            match handle.lookup(&keys).await {
                Ok(found) if found.len() > 1 => {
                    failures.push(format!(
                        "{at}: the lookup found {} accounts, not one",
                        found.len()
                    ));
                    continue;
                }
                Ok(found) => found.into_iter().next(),
                Err(e) => {
                    failures.push(format!("{at}: lookup failed: {e}"));
                    continue;
                }
            }
        };
        if let Some(want) = &step.expect.found {
            let got = serde_json::to_value(&current).unwrap_or(Json::Null);
            if let Err(path) = match (want, &got) {
                (Json::Null, Json::Null) => Ok(()),
                (Json::Null, _) => Err("expect.found: an account was found, expected none".to_string()),
                _ => subset(want, &got, "expect.found"),
            } {
                failures.push(format!("{at}: {path}; got {got}"));
            }
        }
        // An account found but not linked yet is taken over, as the default matching policy does.
        if link.is_none() {
            link = current.as_ref().map(|a| Link {
                anchor: a.anchor.clone(),
                managed_groups: vec![],
            });
        }
        let planned = plan::plan(
            &destination,
            desired.as_ref(),
            current.as_ref(),
            link.as_ref(),
            caps.can(),
            step.deprovision,
            step.left,
        );
        let kinds: Vec<String> = planned
            .operations
            .iter()
            .map(|o| o.kind.as_str().to_string())
            .collect();
        if let Some(want) = &step.expect.operations
            && *want != kinds
        {
            failures.push(format!("{at}: planned {kinds:?}, expected {want:?}"));
        }
        if let Some(want) = &step.expect.unsupported
            && *want != planned.unsupported
        {
            failures.push(format!(
                "{at}: unsupported {:?}, expected {want:?}",
                planned.unsupported
            ));
        }
        let mut created: Option<String> = None;
        let mut error: Option<String> = None;
        for planned_op in planned.operations {
            let mut op = planned_op.op;
            if let Some(anchor) = &created {
                plan::bind_anchor(&mut op, anchor);
            }
            match handle.apply(&op).await {
                Ok(outcome) => {
                    if matches!(op, wit::Operation::Create(_)) {
                        created = outcome.anchor.clone();
                    }
                    link = plan::next_link(link.take(), &op, outcome.anchor.as_deref());
                }
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        match (&step.expect.error, error) {
            (None, None) => {}
            (Some(want), Some(got)) if got.contains(want.as_str()) => {}
            (Some(want), Some(got)) => failures.push(format!("{at}: failed with {got:?}, expected {want:?}")),
            (Some(want), None) => failures.push(format!("{at}: applied, expected an error with {want:?}")),
            (None, Some(got)) => failures.push(format!("{at}: apply failed: {got}")),
        }
    }
    failures.extend(replay.problems());
    Ok(failures)
}

/// The keys a job would look the account up by ([`tenure_pipeline::match_keys`], with the
/// connector's matching keys); a step without a desired account or link reuses the previous step's.
fn lookup_keys(
    caps: &ConnectorCaps,
    desired: Option<&wit::DesiredAccount>,
    link: Option<&Link>,
    previous: &[wit::MatchKey],
) -> Vec<wit::MatchKey> {
    let keys = tenure_pipeline::match_keys(link, desired, &caps.matching_keys);
    if keys.is_empty() && desired.is_none() {
        return previous.to_vec();
    }
    keys
}

/// A desired account from partial JSON: `attributes` as an object of name to value (text,
/// number, boolean or a list of text); other fields left out take empty defaults.
pub fn desired_from_json(destination: &str, partial: Json) -> Result<wit::DesiredAccount, String> {
    let Json::Object(mut fields) = partial else {
        return Err("desired: must be an object".into());
    };
    let attributes = match fields.remove("attributes") {
        None => vec![],
        Some(Json::Object(map)) => map
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Json::String(t) => wit::Value::Text(t),
                    Json::Bool(b) => wit::Value::Flag(b),
                    Json::Number(n) => wit::Value::Number(
                        n.as_i64()
                            .ok_or_else(|| format!("desired.attributes.{name}: whole numbers only"))?,
                    ),
                    Json::Array(items) => wit::Value::Many(
                        items
                            .into_iter()
                            .map(|i| match i {
                                Json::String(t) => Ok(t),
                                other => Err(format!("desired.attributes.{name}: {other} is not text")),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    Json::Null => wit::Value::Absent,
                    Json::Object(_) => return Err(format!("desired.attributes.{name}: an object")),
                };
                Ok(wit::Attribute { name, value })
            })
            .collect::<Result<Vec<_>, String>>()?,
        Some(_) => return Err("desired.attributes: an object of name to value".into()),
    };
    let mut full = json!({
        "destination": destination, "attributes": [], "container": null, "groups": [],
        "licenses": [], "app_assignments": [], "enabled": true, "expires_at": null, "tickets": []
    });
    if let Json::Object(base) = &mut full {
        base.extend(fields);
    }
    let mut account: wit::DesiredAccount =
        serde_json::from_value(full).map_err(|e| format!("desired: {e}"))?;
    account.attributes = attributes;
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_accounts_read_from_partial_json() {
        let d = desired_from_json(
            "app",
            json!({"attributes": {"employeeId": "1", "n": 5, "g": ["a"]}, "groups": ["x"]}),
        )
        .unwrap();
        assert_eq!(
            (d.destination.as_str(), d.groups.clone(), d.enabled),
            ("app", vec!["x".to_string()], true)
        );
        assert_eq!(d.attributes.len(), 3);
        let err = desired_from_json("app", json!({"attributes": {"n": 1.5}})).unwrap_err();
        assert!(err.contains("desired.attributes.n"), "{err}");
        assert!(
            desired_from_json("app", json!({"groups": 3}))
                .unwrap_err()
                .contains("desired")
        );
    }
}
