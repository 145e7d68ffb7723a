//! Stage 5's supervision for one destination: the mode for this person, and for a supervised
//! destination its held plan: held for approval, applied once approved (and only what was
//! approved: a plan that asks for more is held again), left alone once rejected.

use super::{DestOutcome, JobRun};
use crate::audit_events as ev;
use crate::plan::Plan;
use crate::redaction::MASK;
use crate::{DestinationConfig, Failure};
use serde_json::Value;
use tenure_store::{HoldState, NewHold};

/// What supervision decided for a plan.
pub(super) enum Supervised {
    /// Apply it (under this approved hold, to be marked applied).
    Apply(Option<i64>),
    /// End the destination's turn.
    End(DestOutcome),
}

/// The plan's operations as the approver sees them: the whole operation, redacted values
/// masked.
fn shown(plan: &Plan, redacted: &[String]) -> Vec<Value> {
    plan.operations
        .iter()
        .map(|o| {
            let mut detail = serde_json::to_value(&o.op).unwrap_or_default();
            mask(&mut detail, redacted);
            serde_json::json!({ "op": o.kind, "target": o.target, "destructive": o.destructive,
                "detail": detail })
        })
        .collect()
}

/// What an approval covers, unit by unit: an attribute update is one unit per attribute
/// changed (a re-plan that needs fewer changes is still within the approval); any other
/// operation is one unit.
fn units(operations: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for op in operations {
        match op.pointer("/detail/Update") {
            Some(update) => {
                let changes = update.get("changes").and_then(Value::as_array);
                for change in changes.into_iter().flatten() {
                    out.push(serde_json::json!({ "update": update.get("anchor"), "change": change }));
                }
            }
            None => out.push(op.clone()),
        }
    }
    out
}

/// Whether every unit of `planned` was approved.
fn within(planned: &[Value], approved: &[Value]) -> bool {
    let approved = units(approved);
    units(planned).iter().all(|u| approved.contains(u))
}

/// Masks every `{ "name": N, "value": V }` whose `N` is redacted.
fn mask(value: &mut Value, redacted: &[String]) {
    match value {
        Value::Object(fields) => {
            let named = fields
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| redacted.iter().any(|r| r == n));
            if named && fields.contains_key("value") {
                fields.insert("value".into(), Value::String(MASK.into()));
            }
            fields.values_mut().for_each(|v| mask(v, redacted));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, redacted)),
        _ => {}
    }
}

impl JobRun<'_> {
    /// A supervised destination's plan: applied under an approval that covers it, skipped
    /// when rejected, else held (the job ends held until a person decides).
    pub(super) async fn supervise(
        &mut self,
        dest: &DestinationConfig,
        plan: &Plan,
        redacted: &[String],
    ) -> Result<Supervised, Failure> {
        let (p, job) = (self.p, self.job);
        let name = dest.name.as_str();
        let operations = shown(plan, redacted);
        let held = Supervised::End(DestOutcome::Held(format!("supervised:{name}")));
        let previous = p.store.hold_of(&job.tenant, job.id, name).await?;
        let replaces_approved = match &previous {
            Some(h) if h.state == HoldState::Approved => {
                if within(&operations, &h.operations) {
                    return Ok(Supervised::Apply(Some(h.id)));
                }
                Some(h.id)
            }
            Some(h) if h.state == HoldState::Rejected => {
                let why = "a person rejected the held plan";
                let rec = self.record(Some(name), &ev::DestinationSkipped { why });
                self.pending.push(rec);
                return Ok(Supervised::End(DestOutcome::Done));
            }
            // Run again while still pending (the attempt was interrupted after holding it).
            Some(h) if h.state == HoldState::Pending && h.operations == operations => return Ok(held),
            _ => None,
        };
        let rec = self.record(
            Some(name),
            &ev::PlanHeld {
                operations: operations.len(),
                replaces_approved,
            },
        );
        let audit = self.take(Some(rec));
        let hold = NewHold {
            tenant: job.tenant.clone(),
            destination: name.to_string(),
            person_key: job.person_key.clone(),
            job_id: job.id,
            operations,
        };
        p.store.hold_plan(&self.lease, hold, audit).await?;
        tracing::info!(destination = name, "plan held for approval (supervised)");
        Ok(held)
    }

    /// Marks an approved plan applied, with the audit so far.
    pub(super) async fn hold_applied(&mut self, id: i64) -> Result<(), Failure> {
        self.flush().await?;
        let audit = self.take(None);
        Ok(self.p.store.hold_applied(&self.lease, id, audit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_re_plan_is_within_an_approval_when_it_asks_for_nothing_more() {
        let update = |changes: Value| {
            json!({ "op": "update", "detail": { "Update": { "anchor": "a1",
            "changes": changes } } })
        };
        let add = json!({ "op": "add-member", "detail": { "AddMember": { "anchor": "a1", "group": "G" } } });
        let dept = json!({ "name": "department", "value": { "Text": "Support" } });
        let mail = json!({ "name": "mail", "value": { "Text": "s@example.com" } });
        let approved = [update(json!([dept, mail])), add.clone()];
        assert!(within(&[update(json!([dept]))], &approved), "fewer changes");
        assert!(within(std::slice::from_ref(&add), &approved), "fewer operations");
        let title = json!({ "name": "title", "value": { "Text": "Boss" } });
        assert!(
            !within(&[update(json!([dept, title]))], &approved),
            "another change"
        );
        let remove = json!({ "op": "remove-member", "detail": { "RemoveMember": { "anchor": "a1",
            "group": "G" } } });
        assert!(!within(&[remove], &approved), "another operation");
    }

    #[test]
    fn redacted_values_are_masked_wherever_they_are() {
        let mut op = json!({ "Create": { "attributes": [
            { "name": "ssn", "value": { "Text": "123" } },
            { "name": "mail", "value": { "Text": "a@example.com" } }
        ] } });
        mask(&mut op, &["ssn".to_string()]);
        assert_eq!(op["Create"]["attributes"][0]["value"], json!(MASK));
        assert_eq!(
            op["Create"]["attributes"][1]["value"],
            json!({ "Text": "a@example.com" })
        );
    }
}
