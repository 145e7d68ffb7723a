//! Supervised rollouts: per destination, and per cohort of people chosen by a scope
//! expression, a mode: `live` applies; `supervised` plans and holds each person's operations
//! until a person approves them (approved plans are re-planned against the destination as it
//! is then, and only what was approved is applied); `observe` plans and audits, applies
//! nothing. A rollout widens the cohorts step by step.

use crate::admin::Actor;
use crate::{InvalidEvent, Pipeline, PipelineError};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use tenure_runtime::wit;
use tenure_store::{HoldDecision, HoldFilter, HoldRow, HoldState};

/// How a destination treats a person's changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyMode {
    /// Apply the plan.
    #[default]
    Live,
    /// Plan, then hold the person's operations until a person approves them
    /// (`/api/v1/holds`).
    Supervised,
    /// Plan and audit (`plan.observed`); apply nothing.
    Observe,
}

/// People chosen by a scope expression, and the mode for them (`[[tenants.T.destinations.cohorts]]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cohort {
    /// Who is in it: an expression over `person` (the person as the sources describe them:
    /// `department`, `country`, `employment_type`, `custom.NAME` ...) and `kind` (the event's
    /// kind), for example `person.department == "Engineering" and person.country in ["DE", "FR"]`.
    /// A person it cannot be evaluated for is not in it.
    pub scope: String,
    /// The mode for the people in it.
    pub mode: ApplyMode,
}

fn environment() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // `person.custom.cost_center` on a person without it is undefined, not an error.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env
    })
}

/// Whether every cohort's scope is an expression, naming the first that is not.
pub fn check(cohorts: &[Cohort]) -> Result<(), String> {
    for (i, cohort) in cohorts.iter().enumerate() {
        environment()
            .compile_expression(&cohort.scope)
            .map_err(|e| format!("cohorts[{i}].scope: {e}"))?;
    }
    Ok(())
}

/// What a scope sees of a person and their event.
pub fn scope_input(person: &wit::Person, kind: wit::EventKind) -> serde_json::Value {
    let mut view = crate::stored::person_json(person);
    if let Some(fields) = view.as_object_mut() {
        // Custom attributes by name, as `person.custom.NAME`.
        let custom: serde_json::Map<String, serde_json::Value> = person
            .custom
            .iter()
            .map(|(name, value)| (name.clone(), crate::stored::value_json(value)))
            .collect();
        fields.insert("custom".into(), custom.into());
    }
    let kind = <crate::event::EventKind as crate::event::EventKindExt>::from_wit(kind);
    serde_json::json!({ "person": view, "kind": kind.as_str() })
}

/// The mode for a person: the first cohort whose scope holds, else the destination's own.
pub fn mode_for(default: ApplyMode, cohorts: &[Cohort], input: &serde_json::Value) -> ApplyMode {
    let context = minijinja::Value::from(minijinja::value::Serde(input));
    for cohort in cohorts {
        let holds = environment()
            .compile_expression(&cohort.scope)
            .and_then(|e| e.eval(&context))
            .map(|v| v.is_true());
        match holds {
            Ok(true) => return cohort.mode,
            Ok(false) => {}
            Err(e) => tracing::warn!(scope = %cohort.scope, error = %e, "a cohort's scope failed; not in it"),
        }
    }
    default
}

/// Which held plans a decision is about: these ids, or every pending one of a person or a
/// destination (or of the tenant, with `all`).
#[derive(Debug, Clone, Default)]
pub struct HoldSelection {
    /// These held plans.
    pub ids: Vec<i64>,
    /// Every pending plan of this person.
    pub person: Option<String>,
    /// Every pending plan of this destination.
    pub destination: Option<String>,
    /// Every pending plan of the tenant (required when nothing else narrows it).
    pub all: bool,
}

/// Held plans decided, and the ids asked for that were not pending.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Decided {
    pub decided: Vec<HoldRow>,
    /// Not found, or decided already.
    pub not_pending: Vec<i64>,
}

/// Pending plans read at a time while a bulk decision selects them.
const SELECT_PAGE: usize = 500;

impl Pipeline {
    /// A tenant's held plans.
    pub async fn holds(&self, filter: HoldFilter) -> Result<Vec<HoldRow>, PipelineError> {
        Ok(self.store.holds(filter).await?)
    }

    /// Approves or rejects the selected pending plans, releasing their jobs (approved ones
    /// re-plan against the destination as it is then), each audited with the actor.
    pub async fn decide_holds(
        &self,
        actor: Actor<'_>,
        selection: HoldSelection,
        decision: HoldDecision,
        note: Option<String>,
    ) -> Result<Decided, PipelineError> {
        let narrowed = selection.person.is_some() || selection.destination.is_some();
        let ids = if !selection.ids.is_empty() {
            if narrowed || selection.all {
                return Err(invalid(
                    "ids",
                    "give ids, or a person, destination or all; not both",
                ));
            }
            selection.ids.clone()
        } else if narrowed || selection.all {
            let mut ids = Vec::new();
            let mut filter = HoldFilter {
                tenant: actor.tenant.to_string(),
                state: Some(HoldState::Pending),
                destination: selection.destination.clone(),
                person_key: selection.person.clone(),
                after_id: None,
                limit: SELECT_PAGE,
            };
            loop {
                let page = self.store.holds(filter.clone()).await?;
                ids.extend(page.iter().map(|h| h.id));
                match page.last() {
                    Some(last) if page.len() == SELECT_PAGE => filter.after_id = Some(last.id),
                    _ => break,
                }
            }
            ids
        } else {
            return Err(invalid(
                "ids",
                "name the held plans (ids), a person, a destination, or all",
            ));
        };
        let decided = self
            .store
            .decide_holds(actor.tenant, ids.clone(), decision, actor.name, note)
            .await?;
        let not_pending = ids
            .into_iter()
            .filter(|id| !decided.iter().any(|h| h.id == *id))
            .collect();
        if !decided.is_empty() {
            self.wake();
        }
        Ok(Decided { decided, not_pending })
    }
}

fn invalid(field: &str, reason: &str) -> PipelineError {
    InvalidEvent {
        field: field.into(),
        reason: reason.into(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cohort(scope: &str, mode: ApplyMode) -> Cohort {
        Cohort {
            scope: scope.into(),
            mode,
        }
    }

    #[test]
    fn the_first_cohort_whose_scope_holds_decides() {
        let cohorts = [
            cohort(
                r#"person.department == "Engineering" and person.country in ["DE", "FR"]"#,
                ApplyMode::Live,
            ),
            cohort(r#"person.custom.pilot == true"#, ApplyMode::Observe),
        ];
        assert!(check(&cohorts).is_ok());
        let input = |department: &str, country: &str, custom: serde_json::Value| {
            json!({ "person": { "department": department, "country": country, "custom": custom },
                    "kind": "joiner" })
        };
        let mode = |i| mode_for(ApplyMode::Supervised, &cohorts, &i);
        assert_eq!(mode(input("Engineering", "DE", json!({}))), ApplyMode::Live);
        assert_eq!(
            mode(input("Engineering", "US", json!({"pilot": true}))),
            ApplyMode::Observe
        );
        assert_eq!(mode(input("Sales", "DE", json!({}))), ApplyMode::Supervised);
        // A person without the attribute is not in the cohort.
        assert_eq!(
            mode(json!({ "person": {}, "kind": "joiner" })),
            ApplyMode::Supervised
        );
    }

    #[test]
    fn a_scope_that_is_not_an_expression_is_named() {
        let err = check(&[cohort("person.department ==", ApplyMode::Live)]).unwrap_err();
        assert!(err.starts_with("cohorts[0].scope:"), "{err}");
    }
}
