//! Preview: what the rules would produce for a person and what each
//! destination would be asked to do, against live state, writing nothing.

use crate::desired::{self, Mode, Names, Subject, Target};
use crate::event::{EventKind, EventKindExt};
use crate::lifecycle::State;
use crate::plan::PlannedOp;
use crate::resolve::{Match, resolve};
use crate::{Pipeline, PipelineError};
use serde::Serialize;
use tenure_runtime::{PluginHandle, wit};

/// One destination in a preview.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DestinationPreview {
    pub destination: String,
    /// What the rules want (none: out of scope), unique names settled.
    pub desired: Option<wit::DesiredAccount>,
    /// How each unique name would be settled (nothing is claimed).
    pub names: Vec<crate::naming::Assigned>,
    /// What the destination holds now for this person.
    pub current: Option<wit::Account>,
    /// `linked`, `new`, `would-merge`, `would-recover`, `skip`, `conflict` or `error`.
    pub matched: String,
    pub operations: Vec<PlannedOp>,
    pub unsupported: Vec<String>,
    pub dry_run: bool,
    /// Why nothing would happen, or what would stop it.
    pub note: Option<String>,
}

/// The whole preview.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Preview {
    pub tenant: String,
    pub person_key: String,
    pub event: EventKind,
    /// The person's lifecycle state with this record taken in (what the rules saw as `status`).
    pub state: crate::lifecycle::State,
    pub rules_plugin: String,
    pub rules_version: String,
    /// Every rule tested, matched or not.
    pub trace: Vec<wit::rules::TraceEntry>,
    pub destinations: Vec<DestinationPreview>,
}

impl Pipeline {
    /// The person and event kind of the newest stored event for a source record, to
    /// preview it (`kind` overrides the stored kind).
    pub async fn stored_person(
        &self,
        tenant: &str,
        source: &str,
        record: &str,
        kind: Option<EventKind>,
    ) -> Result<(wit::Person, EventKind), PipelineError> {
        let not_found = || crate::InvalidEvent {
            field: "source_record_id".into(),
            reason: format!("no event from {source} with record {record}"),
        };
        let stored = self
            .store
            .event_by_record(tenant, source, record)
            .await?
            .ok_or_else(not_found)?;
        let event = crate::stored::decode(&stored.body).map_err(|e| crate::InvalidEvent {
            field: "source_record_id".into(),
            reason: e.to_string(),
        })?;
        Ok((event.person, kind.unwrap_or(EventKind::from_wit(event.kind))))
    }

    /// Evaluates and plans without writing: no store writes, no connector changes,
    /// through the same desired-state path a job takes.
    pub async fn preview(
        &self,
        tenant_name: &str,
        source: &str,
        person: &wit::Person,
        kind: EventKind,
    ) -> Result<Preview, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let rules = self.runtime.plugin(tenant_name, &tenant.rules)?;
        self.preview_with(tenant_name, source, person, kind, &rules).await
    }

    /// [`preview`](Self::preview) under the rules `rules` runs (a draft rule set's handle,
    /// so a rule being edited is previewed on a real person before it is saved).
    pub async fn preview_with(
        &self,
        tenant_name: &str,
        source: &str,
        person: &wit::Person,
        kind: EventKind,
        rules: &PluginHandle,
    ) -> Result<Preview, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let own_key = crate::event::person_key(source, person).ok_or_else(|| crate::InvalidEvent {
            field: "person.ids".into(),
            reason: "must name at least one id".into(),
        })?;
        // The person as the pipeline would see them: linked across sources and merged.
        let (person_key, merged) = self.linked_person(tenant_name, source, &own_key, person).await?;
        // The person's state as the pipeline would compute it with this record taken in.
        let now = self.now();
        let mut life =
            self.lifecycle_of(tenant_name, &person_key)
                .await
                .map_err(|f| crate::InvalidEvent {
                    field: "person".into(),
                    reason: f.message,
                })?;
        let as_event = wit::PersonEvent {
            kind: kind.to_wit(),
            person: merged.clone(),
            effective_date: None,
            source_record_id: String::new(),
            occurred_at: None,
        };
        let _ = life.observe(i64::MAX, kind, &as_event, now);
        let state = life.state_at(now);
        let mut subject = Subject {
            tenant_name,
            tenant,
            person_key: &person_key,
            person: merged,
            event: kind.to_wit(),
            state,
            life: &life,
            now_ms: now,
        };
        let mode = Mode {
            trace: wit::rules::TraceLevel::All,
            names: Names::Peek,
        };
        let desired = self.desired_state(rules, &mut subject, mode).await?;
        let mut destinations = Vec::with_capacity(desired.targets.len());
        for target in desired.targets {
            let view = match target {
                Ok(target) => {
                    self.preview_destination(tenant_name, &person_key, &target, state, &life)
                        .await
                }
                Err(u) => DestinationPreview {
                    destination: u.destination,
                    desired: None,
                    names: vec![],
                    current: None,
                    matched: "error".into(),
                    operations: vec![],
                    unsupported: vec![],
                    dry_run: false,
                    note: Some(format!("{}: {}", u.failure.class, u.failure.message)),
                },
            };
            destinations.push(view);
        }
        Ok(Preview {
            tenant: tenant_name.into(),
            person_key: person_key.clone(),
            event: kind,
            state,
            rules_plugin: rules.plugin().into(),
            rules_version: rules.version().into(),
            trace: desired.evaluation.trace,
            destinations,
        })
    }

    /// One destination: what would be matched and planned, redacted values masked.
    async fn preview_destination(
        &self,
        tenant_name: &str,
        person_key: &str,
        target: &Target<'_>,
        state: State,
        life: &crate::lifecycle::Lifecycle,
    ) -> DestinationPreview {
        let dest = &*target.dest;
        let mut view = DestinationPreview {
            destination: dest.name.clone(),
            desired: target.desired.clone(),
            names: target.names.clone(),
            current: None,
            matched: "new".into(),
            operations: vec![],
            unsupported: vec![],
            dry_run: dest.dry_run,
            note: target.shaped.as_ref().map(|w| format!("{}: {w}", state.as_str())),
        };
        match resolve(self, tenant_name, dest, person_key, target.desired.as_ref(), None).await {
            Err(f) => {
                view.matched = "error".into();
                view.note = Some(format!("{}: {}", f.class, f.message));
            }
            Ok(r) => {
                let current = match r.matched {
                    Match::Linked(acc) => {
                        view.matched = if acc.is_some() { "linked" } else { "new" }.into();
                        acc
                    }
                    Match::Adopt { account, why } => {
                        view.matched = format!("would-{}", if why == "merged" { "merge" } else { why });
                        Some(account)
                    }
                    Match::Skip { why } => {
                        view.matched = "skip".into();
                        view.note = Some(why);
                        None
                    }
                    Match::Conflict { kind, candidates } => {
                        view.matched = "conflict".into();
                        view.note = Some(format!(
                            "{kind} match {candidates:?}: the job would be held for a person to decide"
                        ));
                        None
                    }
                };
                if matches!(
                    view.matched.as_str(),
                    "linked" | "new" | "would-merge" | "would-recover" | "would-resolved"
                ) {
                    // Taken over: the link the job would write, and the unique names
                    // the account already has (kept, as the job keeps them).
                    let link = match (&current, view.matched.starts_with("would-")) {
                        (Some(acc), true) => {
                            let (link, kept) = desired::taken_over(
                                acc,
                                r.link.as_ref(),
                                view.desired.as_ref(),
                                &target.unique,
                            );
                            view.desired = kept;
                            Some(link)
                        }
                        _ => r.link.clone(),
                    };
                    let plan = desired::plan_target(
                        dest,
                        view.desired.as_ref(),
                        current.as_ref(),
                        link.as_ref(),
                        &r.caps,
                        state,
                        life,
                    );
                    view.operations = plan.operations;
                    view.unsupported = plan.unsupported;
                    if view.operations.is_empty() && view.note.is_none() {
                        view.note = Some("in sync: nothing to do".into());
                    }
                }
                view.current = current;
            }
        }
        // Redacted values are applied but never shown.
        if let Some(d) = view.desired.as_mut() {
            crate::redaction::mask(&mut d.attributes, &target.redacted);
        }
        if let Some(c) = view.current.as_mut() {
            crate::redaction::mask(&mut c.attributes, &target.redacted);
        }
        for n in view
            .names
            .iter_mut()
            .filter(|n| target.redacted.contains(&n.attribute))
        {
            n.value = crate::redaction::MASK.into();
            n.taken
                .iter_mut()
                .for_each(|t| *t = crate::redaction::MASK.into());
        }
        view
    }
}
