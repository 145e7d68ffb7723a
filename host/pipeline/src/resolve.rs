//! Finding a person's account in one destination: the linked anchor first,
//! then the destination's matching keys in order; what to do with what is
//! found is the destination's conflict policy.

use crate::config::{ConflictPolicy, DestinationConfig};
use crate::{Failure, Pipeline};
use std::sync::Arc;
use tenure_runtime::{PluginHandle, wit};
use tenure_store::{ConflictDecision, ConflictKind, Link, OperationStatus};

/// What the lookup decided.
#[derive(Debug, Clone)]
pub(crate) enum Match {
    /// Plan against this account (none: create one).
    Linked(Option<wit::Account>),
    /// Take over an existing account: `merged` by policy, `resolved` by a person,
    /// or `recovered` (our own create whose result a crash lost).
    Adopt {
        account: wit::Account,
        why: &'static str,
    },
    Skip {
        why: String,
    },
    Conflict {
        kind: ConflictKind,
        candidates: Vec<String>,
    },
}

pub(crate) struct Resolved {
    pub connector: PluginHandle,
    pub caps: Arc<crate::plan::ConnectorCaps>,
    pub link: Option<Link>,
    pub matched: Match,
}

impl Resolved {
    /// What to plan against, read-only: the account, the link and the desired account (an
    /// account taken over keeps the unique names it has). A skip or a conflict plans from
    /// nothing.
    pub fn plan_inputs(
        &self,
        desired: Option<&wit::DesiredAccount>,
        unique: &[String],
    ) -> (Option<wit::Account>, Option<Link>, Option<wit::DesiredAccount>) {
        match &self.matched {
            Match::Linked(a) => (a.clone(), self.link.clone(), desired.cloned()),
            Match::Adopt { account, .. } => {
                let (link, kept) = crate::desired::taken_over(account, self.link.as_ref(), desired, unique);
                (Some(account.clone()), Some(link), kept)
            }
            Match::Skip { .. } | Match::Conflict { .. } => (None, self.link.clone(), desired.cloned()),
        }
    }
}

fn text_of(v: &wit::Value) -> Option<String> {
    match v {
        wit::Value::Text(t) if !t.is_empty() => Some(t.clone()),
        wit::Value::Number(n) => Some(n.to_string()),
        wit::Value::Many(m) => m.first().cloned(),
        _ => None,
    }
}

/// Looks up the person's account in `dest`. `job` is set for real runs (preview passes none).
pub(crate) async fn resolve(
    p: &Pipeline,
    tenant: &str,
    dest: &DestinationConfig,
    person_key: &str,
    desired: Option<&wit::DesiredAccount>,
    job: Option<i64>,
) -> Result<Resolved, Failure> {
    let connector = p
        .runtime
        .plugin(tenant, &dest.connector)
        .map_err(|e| Failure::config(format!("destination {}: {e}", dest.name)))?;
    resolve_with(p, tenant, dest, person_key, desired, job, connector).await
}

/// [`resolve`] through a given connector handle (a shadow run's candidate version).
pub(crate) async fn resolve_with(
    p: &Pipeline,
    tenant: &str,
    dest: &DestinationConfig,
    person_key: &str,
    desired: Option<&wit::DesiredAccount>,
    job: Option<i64>,
    connector: PluginHandle,
) -> Result<Resolved, Failure> {
    let caps = p
        .capabilities(&connector)
        .await
        .map_err(|e| Failure::of_call(&e))?;
    if caps.can().tickets_only() {
        // A ticket desk holds no account: there is nothing to look up or link.
        return Ok(Resolved {
            connector,
            caps,
            link: None,
            matched: Match::Linked(None),
        });
    }
    let link = p.store.link(tenant, &dest.name, person_key).await?;
    let matched = find(
        p,
        tenant,
        dest,
        person_key,
        desired,
        job,
        &connector,
        link.as_ref(),
    )
    .await?;
    Ok(Resolved {
        connector,
        caps,
        link,
        matched,
    })
}

/// The keys a person's account is looked up by, in order: the linked anchor, then each matching
/// attribute the desired account has a value for.
pub fn match_keys(
    link: Option<&Link>,
    desired: Option<&wit::DesiredAccount>,
    matching: &[String],
) -> Vec<wit::MatchKey> {
    let anchor = link.map(|l| wit::MatchKey {
        attribute: "anchor".into(),
        value: l.anchor.clone(),
    });
    let matched = desired.into_iter().flat_map(|d| {
        matching.iter().filter_map(move |name| {
            let value = d.attributes.iter().find(|a| a.name == *name)?;
            text_of(&value.value).map(|value| wit::MatchKey {
                attribute: name.clone(),
                value,
            })
        })
    });
    anchor.into_iter().chain(matched).collect()
}

/// The account (or the decision) for a person in one destination.
#[allow(clippy::too_many_arguments)]
async fn find(
    p: &Pipeline,
    tenant: &str,
    dest: &DestinationConfig,
    person_key: &str,
    desired: Option<&wit::DesiredAccount>,
    job: Option<i64>,
    connector: &PluginHandle,
    link: Option<&Link>,
) -> Result<Match, Failure> {
    let store = &p.store;
    let keys = match_keys(link, desired, &dest.matching);
    if desired.is_some() && keys.is_empty() {
        return Err(Failure {
            class: crate::FailureClass::InvalidInput,
            message: format!(
                "destination {}: the rules gave no value for any matching attribute ({}), so the account \
                    cannot be found or safely created",
                dest.name,
                dest.matching.join(", ")
            ),
            retry: false,
            retry_after_ms: None,
        });
    }
    if keys.is_empty() {
        return Ok(Match::Linked(None));
    }
    let accounts = connector.lookup(&keys).await.map_err(|e| Failure::of_call(&e))?;
    if let Some(l) = link
        && let Some(acc) = accounts.iter().find(|a| a.anchor == l.anchor)
    {
        return Ok(Match::Linked(Some(acc.clone())));
    }
    // Nothing found (a linked account that is gone is planned from nothing too).
    if accounts.is_empty() {
        return Ok(Match::Linked(None));
    }
    // Accounts hold this person's identifiers but are not linked to them.
    let mut unowned = Vec::new();
    for acc in &accounts {
        let owner = store.anchor_owner(tenant, &dest.name, &acc.anchor).await?;
        if owner.is_none() || owner.as_deref() == Some(person_key) {
            unowned.push(acc.clone());
        }
    }
    if let Some(job_id) = job {
        let create_key = format!("{}/create", dest.name);
        let ops = store.operations(job_id).await?;
        let interrupted = ops.iter().any(|o| {
            o.op_key == create_key && !matches!(o.status, OperationStatus::Done | OperationStatus::DryRun)
        });
        if interrupted && accounts.len() == 1 && unowned.len() == 1 {
            return Ok(Match::Adopt {
                account: unowned.remove(0),
                why: "recovered",
            });
        }
        let decided = store.conflict_decision(tenant, job_id, &dest.name).await?;
        match decided.and_then(|c| c.decision) {
            Some(ConflictDecision::Merge { anchor }) => {
                if let Some(acc) = unowned.iter().find(|a| a.anchor == anchor) {
                    return Ok(Match::Adopt {
                        account: acc.clone(),
                        why: "resolved",
                    });
                }
            }
            Some(ConflictDecision::Skip) => {
                return Ok(Match::Skip {
                    why: "a person decided to skip this destination".into(),
                });
            }
            None => {}
        }
    }
    let kind = if accounts.len() > 1 {
        ConflictKind::Ambiguous
    } else {
        ConflictKind::Unmanaged
    };
    Ok(match dest.conflict {
        ConflictPolicy::Merge if accounts.len() == 1 && unowned.len() == 1 => Match::Adopt {
            account: unowned.remove(0),
            why: "merged",
        },
        ConflictPolicy::Skip => Match::Skip {
            why: format!("{kind} match and the conflict policy is skip"),
        },
        _ => Match::Conflict {
            kind,
            candidates: accounts.iter().map(|a| a.anchor.clone()).collect(),
        },
    })
}
