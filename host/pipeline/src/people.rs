//! A person's stored records: their newest record from a source, their
//! lifecycle facts; through the API, their state now with the facts behind it
//! and their scheduled actions, and a contract extension (an event like any
//! other, so it is ordered, applied and audited).

use crate::event::ValidEvent;
use crate::lifecycle::{Lifecycle, State, day};
use crate::{InvalidEvent, Pipeline, PipelineError};
use serde::Serialize;
use tenure_runtime::wit;
use tenure_store::{EventRow, Intake, ScheduledAction, StoreError};

/// A person's lifecycle as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PersonLifecycle {
    pub person_key: String,
    /// The state now, by the host's clock, in the person's zone.
    pub state: State,
    /// The state the pipeline last applied.
    pub applied: Option<State>,
    pub facts: Lifecycle,
    /// Open dated actions (wake-ups, notices, leaver steps, deletions).
    pub scheduled: Vec<ScheduledAction>,
    /// The newest record from each source that sent one (the scheduler's own are not listed).
    pub sources: Vec<EventRow>,
    /// The person's account in each destination where Tenure holds one.
    pub accounts: Vec<PersonAccount>,
}

/// A person's account in one destination, as Tenure linked it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PersonAccount {
    pub destination: String,
    /// The destination's id of the account (a DN, a SCIM id, ...).
    pub anchor: String,
    /// The groups Tenure granted (only these are ever removed by Tenure).
    pub managed_groups: Vec<String>,
}

fn invalid(field: &str, reason: impl Into<String>) -> PipelineError {
    InvalidEvent {
        field: field.into(),
        reason: reason.into(),
    }
    .into()
}

impl Pipeline {
    /// The newest event a source (not the scheduler) stored for a person.
    pub async fn newest_record(
        &self,
        tenant: &str,
        person_key: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        Ok(self
            .store
            .latest_events_of(tenant, person_key)
            .await?
            .into_iter()
            .find(|e| e.source != crate::schedule::SOURCE))
    }

    /// A person's lifecycle facts (empty for someone new).
    pub(crate) async fn lifecycle_of(
        &self,
        tenant: &str,
        person_key: &str,
    ) -> Result<Lifecycle, crate::Failure> {
        match self.store.lifecycle(tenant, person_key).await? {
            Some(row) => serde_json::from_str(&row.doc).map_err(|e| crate::Failure {
                class: crate::FailureClass::Store,
                message: format!("the lifecycle record of {person_key} cannot be read: {e}"),
                retry: false,
                retry_after_ms: None,
            }),
            None => Ok(Lifecycle::default()),
        }
    }

    /// A person's lifecycle; None when Tenure has no record of them.
    pub async fn person_lifecycle(
        &self,
        tenant: &str,
        person_key: &str,
    ) -> Result<Option<PersonLifecycle>, PipelineError> {
        self.tenant(tenant)?;
        let facts = self
            .lifecycle_of(tenant, person_key)
            .await
            .map_err(|f| invalid("person", f.message))?;
        if facts == Lifecycle::default() {
            return Ok(None);
        }
        let scheduled = self.store.open_actions(tenant, person_key).await?;
        let mut sources = self.store.latest_events_of(tenant, person_key).await?;
        sources.retain(|e| e.source != crate::schedule::SOURCE);
        let mut accounts = Vec::new();
        for destination in &self.tenant(tenant)?.destinations {
            if let Some(link) = self.store.link(tenant, &destination.name, person_key).await? {
                accounts.push(PersonAccount {
                    destination: destination.name.clone(),
                    anchor: link.anchor,
                    managed_groups: link.managed_groups,
                });
            }
        }
        Ok(Some(PersonLifecycle {
            person_key: person_key.into(),
            state: facts.state_at(self.now()),
            applied: facts.applied,
            facts,
            scheduled,
            sources,
            accounts,
        }))
    }

    /// Records a new contract end date for a person (an extension, or an earlier end)
    /// as an update event carrying their newest record with the new date.
    pub async fn set_contract_end(
        &self,
        tenant: &str,
        person_key: &str,
        end_date: &str,
        actor: &str,
    ) -> Result<Intake, PipelineError> {
        let Some(new_end) = day(end_date) else {
            return Err(invalid(
                "end_date",
                format!("{end_date:?} is not a date (YYYY-MM-DD)"),
            ));
        };
        let newest = self
            .newest_record(tenant, person_key)
            .await?
            .ok_or_else(|| invalid("person", format!("no record of {person_key}")))?;
        let mut event = crate::stored::decode(&newest.body)
            .map_err(|e| invalid("person", format!("the stored record cannot be read: {e}")))?;
        if let Some(start) = event.person.start_date.as_deref().and_then(day)
            && new_end < start
        {
            return Err(invalid(
                "end_date",
                format!("{end_date} is before the start date {start}"),
            ));
        }
        event.kind = wit::EventKind::Update;
        event.person.end_date = Some(end_date.into());
        event.effective_date = None;
        event.occurred_at = None;
        event.source_record_id = String::new();
        let valid = ValidEvent {
            source: newest.source.clone(),
            person_key: person_key.into(),
            event,
        };
        let key = format!("contract-end:{person_key}:{end_date}");
        self.store_event(tenant, actor, key, valid).await
    }
}
