//! A person's lifecycle through the API: their state now, the dated facts
//! behind it and their scheduled actions; and a contract extension recorded
//! through the API (an event like any other, so it is ordered, applied and audited).

use crate::event::ValidEvent;
use crate::lifecycle::{Lifecycle, State, day};
use crate::{InvalidEvent, Pipeline, PipelineError};
use serde::Serialize;
use tenure_runtime::wit;
use tenure_store::{Intake, ScheduledAction};

/// A person's lifecycle as the API shows it.
#[derive(Debug, Serialize)]
pub struct PersonLifecycle {
    pub person_key: String,
    /// The state now, by the host's clock, in the person's zone.
    pub state: State,
    /// The state the pipeline last applied.
    pub applied: Option<State>,
    pub facts: Lifecycle,
    /// Open dated actions (wake-ups, notices, leaver steps, deletions).
    pub scheduled: Vec<ScheduledAction>,
}

fn invalid(field: &str, reason: impl Into<String>) -> PipelineError {
    InvalidEvent {
        field: field.into(),
        reason: reason.into(),
    }
    .into()
}

impl Pipeline {
    /// A person's lifecycle; None when Tenure has no record of them.
    pub async fn person_lifecycle(
        &self,
        tenant: &str,
        person_key: &str,
    ) -> Result<Option<PersonLifecycle>, PipelineError> {
        self.tenant(tenant)?;
        let Some(row) = self.store.lifecycle(tenant, person_key).await? else {
            return Ok(None);
        };
        let facts: Lifecycle = serde_json::from_str(&row.doc)
            .map_err(|e| invalid("person", format!("stored lifecycle cannot be read: {e}")))?;
        let scheduled = self
            .store
            .scheduled_actions(tenant, true)
            .await?
            .into_iter()
            .filter(|a| a.person_key == person_key)
            .collect();
        Ok(Some(PersonLifecycle {
            person_key: person_key.into(),
            state: facts.state_at(self.now()),
            applied: facts.applied,
            facts,
            scheduled,
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
            .store
            .latest_events_of(tenant, person_key)
            .await?
            .into_iter()
            .find(|e| e.source != crate::schedule::SOURCE)
            .ok_or_else(|| invalid("person", format!("no record of {person_key}")))?;
        let mut event: wit::PersonEvent = serde_json::from_str(&newest.body)
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
        self.submit(tenant, actor, Some(&key), valid).await
    }
}
