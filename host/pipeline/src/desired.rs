//! The desired-state path: the one place that says what a person should have.
//!
//! For a person at an instant ([`Subject`]): the rules' evaluation; each
//! destination's [`Target`] (the rules' output shaped by the lifecycle state,
//! unique names settled); and, against what the destination holds, the plan
//! ([`plan_target`]). Jobs, preview, reconciliation and impact preview all go
//! through it and differ only in their [`Mode`], so a preview cannot drift from
//! what a job does.

use crate::lifecycle::{Lifecycle, SavedAccess, State, StateExt};
use crate::naming::{self, Assigned};
use crate::plan::{self, Plan};
use crate::supervision::{self, ApplyMode};
use crate::{DestinationConfig, Failure, Pipeline, PipelineError, TenantPipeline};
use std::borrow::Cow;
use tenure_runtime::{CallError, PluginHandle, wit};
use tenure_store::Link;

/// Whether unique names are taken or only looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// Claim them (a job, in a destination that is not dry-run).
    Claim,
    /// Say what would be taken, claiming nothing (preview, reconciliation, impact).
    Peek,
}

/// What differs between the callers of the path.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// How much of the rules' reasoning comes back.
    pub trace: wit::rules::TraceLevel,
    pub names: Names,
}

/// A person at an instant, as the rules see them (`'a`: the tenant's config, which
/// targets borrow; `'l`: the caller's names and the person's lifecycle facts).
pub struct Subject<'a, 'l> {
    pub tenant_name: &'l str,
    pub tenant: &'a TenantPipeline,
    pub person_key: &'l str,
    /// The record (merged across linked sources); its status is set from `state`.
    pub person: wit::Person,
    /// What happened (the rules may say `when: event == "joiner"`).
    pub event: wit::EventKind,
    pub state: State,
    pub life: &'l Lifecycle,
    pub now_ms: i64,
}

/// What one destination should hold for the person.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The destination, its deprovisioning as the state shapes it (and run dry for a person
    /// it observes).
    pub dest: Cow<'a, DestinationConfig>,
    /// How it treats this person's changes (their cohort's mode, or its own).
    pub mode: ApplyMode,
    /// The account wanted (none: out of scope), shaped, unique names settled.
    pub desired: Option<wit::DesiredAccount>,
    /// Attributes whose values are redacted (applied as they are, shown masked).
    pub redacted: Vec<String>,
    /// The unique attributes.
    pub unique: Vec<String>,
    /// How each unique name was settled.
    pub names: Vec<Assigned>,
    /// Why the state changed what the rules asked for.
    pub shaped: Option<String>,
    /// A leaver step this evaluation carries out.
    pub due_step: Option<usize>,
}

/// One destination the path could not prepare (its names could not be settled).
#[derive(Debug)]
pub struct Unprepared {
    pub destination: String,
    pub failure: Failure,
}

/// A person as the pipeline sees them now, from their stored records.
pub struct PersonNow {
    /// Their newest record from a source (not the scheduler's).
    pub record: tenure_store::EventRow,
    /// That record, merged across linked sources.
    pub person: wit::Person,
    pub life: Lifecycle,
    pub state: State,
    pub now_ms: i64,
}

/// One destination's desired account, for callers outside the pipeline.
#[derive(Debug, Clone)]
pub struct DesiredView {
    pub destination: String,
    /// None: out of scope.
    pub desired: Option<wit::DesiredAccount>,
    /// Attributes whose values must be shown masked.
    pub redacted: Vec<String>,
}

/// The whole desired state.
pub struct DesiredState<'a> {
    pub evaluation: wit::rules::Evaluation,
    pub targets: Vec<Result<Target<'a>, Unprepared>>,
}

impl Subject<'_, '_> {
    fn context(&self, trace: wit::rules::TraceLevel) -> wit::rules::Context {
        wit::rules::Context {
            event: self.event,
            destinations: self.tenant.destinations.iter().map(|d| d.name.clone()).collect(),
            now_ms: self.now_ms,
            trace,
        }
    }
}

impl Pipeline {
    /// The rules' evaluation of the subject (its status set from its state).
    pub(crate) async fn evaluate_subject(
        &self,
        rules: &PluginHandle,
        subject: &mut Subject<'_, '_>,
        trace: wit::rules::TraceLevel,
    ) -> Result<wit::rules::Evaluation, CallError> {
        subject.person.status = subject.state.status();
        rules.evaluate(&subject.person, &subject.context(trace)).await
    }

    /// Each destination's target: the rules' output, shaped by the state, names
    /// settled. `due` is a leaver step this evaluation carries out (destination, index).
    pub(crate) async fn targets<'a>(
        &self,
        subject: &Subject<'a, '_>,
        evaluation: &wit::rules::Evaluation,
        names: Names,
        due: Option<(&str, usize)>,
    ) -> Vec<Result<Target<'a>, Unprepared>> {
        let mut out = Vec::with_capacity(subject.tenant.destinations.len());
        // What cohort scopes see of the person, made once for every destination that has some.
        let scope = subject
            .tenant
            .destinations
            .iter()
            .any(|d| !d.cohorts.is_empty())
            .then(|| supervision::scope_input(&subject.person, subject.event));
        for dest in &subject.tenant.destinations {
            let wanted = evaluation
                .accounts
                .iter()
                .find(|a| a.destination == dest.name)
                .cloned();
            let due_step = due.filter(|(d, _)| *d == dest.name).map(|(_, i)| i);
            out.push(
                self.target(subject, dest, wanted, names, due_step, scope.as_ref())
                    .await,
            );
        }
        out
    }

    async fn target<'a>(
        &self,
        subject: &Subject<'a, '_>,
        dest: &'a DestinationConfig,
        wanted: Option<wit::DesiredAccount>,
        names: Names,
        due_step: Option<usize>,
        scope: Option<&serde_json::Value>,
    ) -> Result<Target<'a>, Unprepared> {
        let redacted = wanted
            .as_ref()
            .map(crate::redaction::redacted_names)
            .unwrap_or_default();
        let shaped = crate::lifecycle::shape(
            dest,
            wanted,
            subject.state,
            subject.life,
            subject.now_ms,
            due_step,
        );
        let mode = match scope {
            Some(input) if !dest.cohorts.is_empty() => supervision::mode_for(dest.mode, &dest.cohorts, input),
            _ => dest.mode,
        };
        // Observed: planned and audited like a dry run (no names claimed, nothing linked).
        let dry_run = dest.dry_run || mode == ApplyMode::Observe;
        let mut desired = shaped.desired;
        let mut unique = Vec::new();
        let mut assigned = Vec::new();
        if let Some(d) = desired.as_mut() {
            let requests = naming::take_requests(d);
            if !requests.is_empty() {
                unique = requests.iter().map(|r| r.attribute.clone()).collect();
                let claim = names == Names::Claim && !dry_run;
                assigned = self
                    .assign_names(subject.tenant_name, subject.person_key, &requests, claim)
                    .await
                    .map_err(|failure| Unprepared {
                        destination: dest.name.clone(),
                        failure,
                    })?;
                naming::apply(d, &assigned);
            }
        }
        let dest = if shaped.deprovision == dest.deprovision && dry_run == dest.dry_run {
            Cow::Borrowed(dest)
        } else {
            Cow::Owned(DestinationConfig {
                deprovision: shaped.deprovision,
                dry_run,
                ..dest.clone()
            })
        };
        Ok(Target {
            dest,
            mode,
            desired,
            redacted,
            unique,
            names: assigned,
            shaped: shaped.why,
            due_step,
        })
    }

    /// The evaluation and every target.
    pub(crate) async fn desired_state<'a>(
        &self,
        rules: &PluginHandle,
        subject: &mut Subject<'a, '_>,
        mode: Mode,
    ) -> Result<DesiredState<'a>, CallError> {
        let evaluation = self.evaluate_subject(rules, subject, mode.trace).await?;
        let targets = self.targets(subject, &evaluation, mode.names, None).await;
        Ok(DesiredState { evaluation, targets })
    }
}

/// What a job plans against when resolution takes over an existing account: the
/// link it writes (the account's anchor, the groups Tenure already manages) and,
/// read-only, the desired account with the unique names the account already has.
pub(crate) fn taken_over(
    account: &wit::Account,
    link: Option<&Link>,
    desired: Option<&wit::DesiredAccount>,
    unique: &[String],
) -> (Link, Option<wit::DesiredAccount>) {
    let link = Link {
        anchor: account.anchor.clone(),
        managed_groups: link.map(|l| l.managed_groups.clone()).unwrap_or_default(),
    };
    let desired = desired.map(|d| {
        let mut d = d.clone();
        for (name, existing) in names_to_keep(unique, account, &d) {
            if let Some(slot) = d.attributes.iter_mut().find(|a| a.name == name) {
                slot.value = wit::Value::Text(existing);
            }
        }
        d
    });
    (link, desired)
}

/// The unique names a taken-over account already has that differ from the
/// desired ones: (attribute, the account's value). A login that works stays.
pub(crate) fn names_to_keep(
    unique: &[String],
    account: &wit::Account,
    desired: &wit::DesiredAccount,
) -> Vec<(String, String)> {
    unique
        .iter()
        .filter_map(|name| {
            let Some(wit::Value::Text(existing)) = account
                .attributes
                .iter()
                .find(|a| a.name == *name)
                .map(|a| &a.value)
            else {
                return None;
            };
            let slot = desired.attributes.iter().find(|a| a.name == *name)?;
            (!existing.is_empty() && slot.value != wit::Value::Text(existing.clone()))
                .then(|| (name.clone(), existing.clone()))
        })
        .collect()
}

impl Pipeline {
    /// A person now, from their stored records: their newest record (merged across
    /// linked sources), their lifecycle facts and their state. None without a record
    /// (or with one this build cannot read).
    pub async fn person_now(
        &self,
        tenant_name: &str,
        person_key: &str,
    ) -> Result<Option<PersonNow>, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let Some(record) = self.newest_record(tenant_name, person_key).await? else {
            return Ok(None);
        };
        let Ok(event) = crate::stored::decode(&record.body) else {
            tracing::warn!(person = %person_key, event = record.id, "a stored record cannot be read; passed \
                over");
            return Ok(None);
        };
        let person = if tenant.identity.link_by.is_empty() {
            event.person
        } else {
            self.merged_person(tenant_name, person_key, &record.source, &event.person)
                .await?
        };
        let life = self.lifecycle_of(tenant_name, person_key).await.unwrap_or_else(|f| {
            tracing::warn!(person = %person_key, error = %f.message, "evaluating from an empty lifecycle");
            Lifecycle::default()
        });
        let now_ms = self.now();
        let state = life.state_at(now_ms);
        Ok(Some(PersonNow {
            record,
            person,
            life,
            state,
            now_ms,
        }))
    }

    /// What `rules` (the live rule set's handle, or a draft's) asks of each destination
    /// for a person now, through the desired-state path: shaped by their state, unique
    /// names looked up, nothing claimed or written. None without a record.
    pub async fn desired_now(
        &self,
        tenant_name: &str,
        person_key: &str,
        rules: &PluginHandle,
    ) -> Result<Option<Vec<DesiredView>>, PipelineError> {
        let tenant = self.tenant(tenant_name)?;
        let Some(now) = self.person_now(tenant_name, person_key).await? else {
            return Ok(None);
        };
        let mut subject = Subject {
            tenant_name,
            tenant,
            person_key,
            person: now.person,
            event: wit::EventKind::Update,
            state: now.state,
            life: &now.life,
            now_ms: now.now_ms,
        };
        let mode = Mode {
            trace: wit::rules::TraceLevel::None,
            names: Names::Peek,
        };
        let state = self.desired_state(rules, &mut subject, mode).await?;
        Ok(Some(
            state
                .targets
                .into_iter()
                .map(|t| match t {
                    Ok(t) => DesiredView {
                        destination: t.dest.name.clone(),
                        desired: t.desired,
                        redacted: t.redacted,
                    },
                    Err(u) => DesiredView {
                        destination: u.destination,
                        desired: None,
                        redacted: Vec::new(),
                    },
                })
                .collect(),
        ))
    }
}

/// What a leave keeps of a destination's account: what was recorded when it
/// began, or (the first time a leave is evaluated) the account as it is now.
pub(crate) fn leave_saved<'a>(
    state: State,
    life: &'a Lifecycle,
    destination: &str,
    current: Option<&wit::Account>,
) -> Option<Cow<'a, SavedAccess>> {
    if let Some(saved) = life.saved.get(destination) {
        return Some(Cow::Borrowed(saved));
    }
    match (state, current) {
        (State::OnLeave, Some(acc)) => Some(Cow::Owned(saved_of(acc))),
        _ => None,
    }
}

/// The access an account has, as a leave keeps it.
pub(crate) fn saved_of(acc: &wit::Account) -> SavedAccess {
    SavedAccess {
        enabled: acc.enabled,
        container: acc.container.clone(),
        groups: acc.groups.clone(),
        licenses: acc.licenses.clone(),
        apps: acc.app_assignments.clone(),
    }
}

fn union(into: &mut Vec<String>, more: &[String]) {
    for m in more {
        if !into.contains(m) {
            into.push(m.clone());
        }
    }
}

/// The plan for a destination against what it holds. Back from leave, the
/// desired account gets back what the leave took away; during a leave, groups the
/// account had before it count as managed (so the rules can take sensitive ones
/// away even if granted by hand).
pub(crate) fn plan_target(
    dest: &DestinationConfig,
    desired: Option<&wit::DesiredAccount>,
    current: Option<&wit::Account>,
    link: Option<&Link>,
    caps: &plan::ConnectorCaps,
    state: State,
    life: &Lifecycle,
) -> Plan {
    let saved = leave_saved(state, life, &dest.name, current);
    let restored = match (state, &saved, desired) {
        (State::Active, Some(saved), Some(want)) => {
            let mut d = want.clone();
            union(&mut d.groups, &saved.groups);
            union(&mut d.licenses, &saved.licenses);
            union(&mut d.app_assignments, &saved.apps);
            if saved.container.is_some() {
                d.container = saved.container.clone();
            }
            d.enabled = saved.enabled;
            Some(d)
        }
        _ => None,
    };
    let leave_link = match (state, &saved, link) {
        (State::OnLeave, Some(saved), Some(l)) => {
            let mut l = l.clone();
            union(&mut l.managed_groups, &saved.groups);
            Some(l)
        }
        _ => None,
    };
    plan::plan(
        &dest.name,
        restored.as_ref().or(desired),
        current,
        leave_link.as_ref().or(link),
        caps.can(),
        dest.deprovision,
        state.is_gone(),
    )
}
