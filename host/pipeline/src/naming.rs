//! Unique naming: a rules plugin asks for a unique value by giving candidates in
//! reserved attributes (names starting with `$`, which no destination uses):
//!
//! - `$unique:<attr>`: the candidates, in order (`many`);
//! - `$unique-in:<attr>`: destinations where the value must be free (`many`);
//! - `$unique-rename:<attr>`: whether a change in HR data may rename (`flag`).
//!
//! The host keeps an assigned value (stable across HR changes unless renaming is
//! allowed), otherwise takes the first candidate that no other person holds in
//! any of those destinations (through the connectors' lookup) and that no other
//! person has claimed in the store.

use tenure_runtime::wit;

/// Prefix of the candidates attribute.
pub const CANDIDATES: &str = "$unique:";
/// Prefix of the destinations attribute.
pub const UNIQUE_IN: &str = "$unique-in:";
/// Prefix of the rename flag attribute.
pub const RENAME: &str = "$unique-rename:";

/// One unique-naming request from a desired account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueRequest {
    pub attribute: String,
    pub candidates: Vec<String>,
    pub unique_in: Vec<String>,
    pub rename_on_change: bool,
}

/// Takes the naming requests out of a desired account (the reserved attributes
/// never reach a connector).
pub fn take_requests(desired: &mut wit::DesiredAccount) -> Vec<UniqueRequest> {
    let mut requests: Vec<UniqueRequest> = Vec::new();
    let mut unique_in: Vec<(String, Vec<String>)> = Vec::new();
    let mut rename: Vec<(String, bool)> = Vec::new();
    desired.attributes.retain(|a| {
        if let Some(attr) = a.name.strip_prefix(CANDIDATES) {
            if let wit::Value::Many(c) = &a.value {
                requests.push(UniqueRequest {
                    attribute: attr.to_string(),
                    candidates: c.clone(),
                    unique_in: Vec::new(),
                    rename_on_change: false,
                });
            }
            false
        } else if let Some(attr) = a.name.strip_prefix(UNIQUE_IN) {
            if let wit::Value::Many(d) = &a.value {
                unique_in.push((attr.to_string(), d.clone()));
            }
            false
        } else if let Some(attr) = a.name.strip_prefix(RENAME) {
            rename.push((attr.to_string(), matches!(a.value, wit::Value::Flag(true))));
            false
        } else {
            !a.name.starts_with('$')
        }
    });
    for r in &mut requests {
        r.unique_in = unique_in
            .iter()
            .find(|(a, _)| *a == r.attribute)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| vec![desired.destination.clone()]);
        r.rename_on_change = rename.iter().any(|(a, f)| *a == r.attribute && *f);
    }
    requests
}

/// How a unique value was settled, for the audit and preview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Assigned {
    pub attribute: String,
    pub value: String,
    /// `kept` (assigned before), `claimed` (newly taken), `available` (preview: not claimed).
    pub how: &'static str,
    /// Candidates passed over because someone holds them.
    pub taken: Vec<String>,
    /// Destinations whose connector cannot look this attribute up (only Tenure's own claims count there).
    pub unchecked: Vec<String>,
}

fn no_value(request: &UniqueRequest, taken: &[String]) -> crate::Failure {
    crate::Failure {
        class: crate::FailureClass::InvalidInput,
        message: format!(
            "unique {}: every candidate is taken ({}); add candidates or raise max_n in the rule set",
            request.attribute,
            taken.join(", ")
        ),
        retry: false,
        retry_after_ms: None,
    }
}

impl crate::Pipeline {
    /// Settles each unique-naming request for a person: the value they already
    /// hold stays (unless the rule set allows renames and it is no longer a
    /// candidate); otherwise the first candidate that no account in the listed
    /// destinations and no other person's claim holds. `claim` is false for
    /// previews and dry runs: nothing is written.
    pub async fn assign_names(
        &self,
        tenant: &str,
        person_key: &str,
        requests: &[UniqueRequest],
        claim: bool,
    ) -> Result<Vec<Assigned>, crate::Failure> {
        let store = &self.store;
        let mut out = Vec::new();
        for request in requests {
            let held = store.claimed_name(tenant, &request.attribute, person_key).await?;
            if let Some(value) = held
                && (!request.rename_on_change || request.candidates.contains(&value))
            {
                out.push(Assigned {
                    attribute: request.attribute.clone(),
                    value,
                    how: "kept",
                    taken: Vec::new(),
                    unchecked: Vec::new(),
                });
                continue;
            }
            let mut taken = Vec::new();
            let (checkers, unchecked) = self.checkers(tenant, person_key, request).await?;
            let mut chosen = None;
            for candidate in &request.candidates {
                if held_elsewhere(&checkers, &request.attribute, candidate).await? {
                    taken.push(candidate.clone());
                    continue;
                }
                let ours = if claim {
                    store
                        .claim_name(tenant, &request.attribute, candidate, person_key)
                        .await?
                } else {
                    true
                };
                if ours {
                    chosen = Some(candidate.clone());
                    break;
                }
                taken.push(candidate.clone());
            }
            let value = chosen.ok_or_else(|| no_value(request, &taken))?;
            out.push(Assigned {
                attribute: request.attribute.clone(),
                value,
                how: if claim { "claimed" } else { "available" },
                taken,
                unchecked,
            });
        }
        Ok(out)
    }

    /// The destinations of a request that can look the attribute up (with the
    /// person's own account there), and the names of those that cannot. Resolved
    /// once per request, not once per candidate.
    async fn checkers(
        &self,
        tenant: &str,
        person_key: &str,
        request: &UniqueRequest,
    ) -> Result<(Vec<Checker>, Vec<String>), crate::Failure> {
        let mut checkers = Vec::new();
        let mut unchecked = Vec::new();
        let destinations = self
            .tenant(tenant)
            .map(|t| t.destinations.as_slice())
            .unwrap_or_default();
        for name in &request.unique_in {
            let Some(dest) = destinations.iter().find(|d| &d.name == name) else {
                unchecked.push(name.clone());
                continue;
            };
            let connector = self
                .runtime
                .plugin(tenant, &dest.connector)
                .map_err(|e| crate::Failure::config(format!("destination {name}: {e}")))?;
            let caps = self
                .capabilities(&connector)
                .await
                .map_err(|e| crate::Failure::of_call(&e))?;
            if !caps.matching_keys.contains(&request.attribute) {
                unchecked.push(name.clone());
                continue;
            }
            let mine = self.store.link(tenant, name, person_key).await?.map(|l| l.anchor);
            checkers.push(Checker { connector, mine });
        }
        Ok((checkers, unchecked))
    }
}

/// A destination where a unique value is looked up, and the person's own account there.
struct Checker {
    connector: tenure_runtime::PluginHandle,
    mine: Option<String>,
}

/// Whether an account that is not this person's holds `value` in any checked destination.
async fn held_elsewhere(checkers: &[Checker], attribute: &str, value: &str) -> Result<bool, crate::Failure> {
    let key = wit::MatchKey {
        attribute: attribute.to_string(),
        value: value.to_string(),
    };
    for c in checkers {
        let found = c
            .connector
            .lookup(std::slice::from_ref(&key))
            .await
            .map_err(|e| crate::Failure::of_call(&e))?;
        if found.iter().any(|a| Some(&a.anchor) != c.mine.as_ref()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Puts the settled values into the desired account.
pub fn apply(desired: &mut wit::DesiredAccount, assigned: &[Assigned]) {
    for a in assigned {
        let value = wit::Value::Text(a.value.clone());
        match desired.attributes.iter_mut().find(|x| x.name == a.attribute) {
            Some(slot) => slot.value = value,
            None => desired.attributes.push(wit::Attribute {
                name: a.attribute.clone(),
                value,
            }),
        }
    }
}
