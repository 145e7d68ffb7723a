//! `lever`: Lever hires as person events.
//!
//! The host verifies a webhook delivery (signature, freshness, replay), stores it
//! and answers Lever at once; `parse` runs afterwards, in a queued attempt with
//! the host's retries. Deliveries carry ids only, so the plugin fetches what a
//! hire needs through the `lever` connection (the host attaches the API key and
//! keeps Lever's rate limit): the opportunity, its offers, and the posting,
//! requisition and hiring manager (cached a few minutes; many hires share them).
//!
//! - `candidateHired`, or an archive whose reason has type `hired`: a **joiner**,
//!   or a **rehire** when an earlier opportunity of the same contact was hired.
//! - An opportunity reported hired and archived again with another reason (a
//!   rescinded offer): **withdrawn**.
//! - Later changes to a hired person (`candidateStageChange`, `applicationCreated`,
//!   `contactUpdated`): an **update**.
//! - `candidateDeleted`: **withdrawn** by default (`deleted = "ignore"` to ignore);
//!   the host applies a withdrawal only before the start date.
//! - Interview events and anything about people never hired: nothing.
//!
//! The person's id is Lever's **contact** id (a contact is the person; an
//! opportunity is one candidacy). Polling lists opportunities updated since the
//! cursor, confidential ones included (`confidentiality=all`, which needs an API
//! key allowed to read confidential data), and enriches the hires on each page
//! within a time budget per call, carrying its place in the page in the cursor.
//!
//! Settings: see [`settings::Settings`].

mod api;
mod cursor;
mod dates;
mod hire;
mod memory;
mod names;
mod settings;

use cursor::Sweep;
use serde_json::Value as Json;
use settings::{Deleted, Settings};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::host::clock;
use tenure_sdk::prelude::*;

struct Lever {
    settings: Settings,
}

impl Source for Lever {
    type Settings = Settings;

    fn new(settings: Settings) -> Result<Self, PluginError> {
        Ok(Lever {
            settings: settings.checked()?,
        })
    }

    fn parse(&mut self, payload: Payload) -> Result<Vec<PersonEvent>, PluginError> {
        let s = &self.settings;
        let body: Json = serde_json::from_slice(&payload.body)
            .map_err(|e| invalid_input("body", format!("not JSON: {e}")))?;
        let event = body
            .get("event")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid_input("event", "missing"))?;
        let token = body.get("token").and_then(Json::as_str).unwrap_or_default();
        let triggered_at = body.get("triggeredAt").and_then(Json::as_i64).unwrap_or_default();
        let data = body.get("data").cloned().unwrap_or(Json::Null);
        let record = |id: &str| format!("{event}:{id}:{token}");
        let text = |k: &str| data.get(k).and_then(Json::as_str).map(str::to_string);
        match event {
            "candidateHired" | "candidateArchiveChange" | "candidateStageChange" | "applicationCreated" => {
                let opportunity = text("opportunityId")
                    .or_else(|| text("candidateId"))
                    .ok_or_else(|| invalid_input("data.opportunityId", "missing"))?;
                let kind = if event == "candidateHired" || event == "candidateArchiveChange" {
                    EventKind::Joiner
                } else {
                    EventKind::Update
                };
                Ok(
                    hire::from_lever(s, &opportunity, kind, &record(&opportunity), triggered_at)?
                        .into_iter()
                        .collect(),
                )
            }
            "contactCreated" | "contactUpdated" => {
                let contact = text("contactId").ok_or_else(|| invalid_input("data.contactId", "missing"))?;
                let path = format!(
                    concat!(
                        "/opportunities?contact_id={}&archived=true&confidentiality=all",
                        "&expand=contact&expand=applications"
                    ),
                    api::encode(&contact)
                );
                let mut events = Vec::new();
                for opp in api::list(&path)? {
                    if let Some(id) = opp.get("id").and_then(Json::as_str)
                        && let Some(e) =
                            hire::read(s, id, &opp, EventKind::Update, &record(id), triggered_at)?
                    {
                        events.push(e);
                    }
                }
                Ok(events)
            }
            "candidateDeleted" => {
                let opportunity = text("opportunityId").unwrap_or_default();
                let contact = text("contactId").or_else(|| memory::hired_contact(&opportunity));
                match (s.deleted, contact) {
                    (Deleted::Withdraw, Some(contact)) => {
                        memory::forget_hire(&opportunity);
                        Ok(vec![hire::withdrawn(
                            s,
                            &contact,
                            &record(&opportunity),
                            triggered_at,
                        )])
                    }
                    _ => Ok(Vec::new()),
                }
            }
            _ => Ok(Vec::new()),
        }
    }

    fn poll(&mut self, cursor: Option<String>) -> Result<PollResult, PluginError> {
        let s = &self.settings;
        let started = clock::now_ms();
        let mut sweep = Sweep::parse(cursor.as_deref());
        let path = api::with_offset(
            &format!(
                "/opportunities?archived=true&confidentiality=all&updated_at_start={}&limit={}\
                 &expand=contact&expand=applications",
                sweep.since, s.page_size
            ),
            sweep.offset.as_deref(),
        );
        let (items, next) = api::page(&path)?;
        // Resume after the last opportunity handled (from the start if it is gone from the page).
        let skip = sweep
            .after
            .as_deref()
            .and_then(|after| {
                items
                    .iter()
                    .position(|o| o.get("id").and_then(Json::as_str) == Some(after))
            })
            .map_or(0, |i| i + 1);
        let mut events = Vec::new();
        let mut handled = 0;
        for opp in items.iter().skip(skip) {
            let Some(id) = opp.get("id").and_then(Json::as_str) else {
                continue;
            };
            // Out of time for this call: hand back what is done, and where to go on.
            if handled > 0 && clock::now_ms() - started > s.poll_budget_ms {
                return Ok(PollResult {
                    events,
                    next_cursor: Some(sweep.text()),
                    has_more: true,
                });
            }
            let updated = opp.get("updatedAt").and_then(Json::as_i64).unwrap_or(sweep.since);
            match hire::read(
                s,
                id,
                opp,
                EventKind::Joiner,
                &format!("poll:{id}:{updated}"),
                updated,
            ) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => {}
                // Deleted between the listing and its enrichment: nothing to report.
                Err(PluginError::NotFound(m)) => log::warn!("opportunity {id} is gone from Lever: {m}"),
                // Lever is busy or down: keep what this call finished, go on from there later.
                Err(e) if handled > 0 => {
                    log::warn!("poll stopped at opportunity {id}: {e:?}; resuming there");
                    return Ok(PollResult {
                        events,
                        next_cursor: Some(sweep.text()),
                        has_more: false,
                    });
                }
                Err(e) => return Err(e),
            }
            sweep.newest = sweep.newest.max(updated);
            sweep.after = Some(id.to_string());
            handled += 1;
        }
        Ok(match next {
            Some(offset) => {
                sweep.offset = Some(offset);
                sweep.after = None;
                PollResult {
                    events,
                    next_cursor: Some(sweep.text()),
                    has_more: true,
                }
            }
            None => PollResult {
                events,
                next_cursor: Some(sweep.finished()),
                has_more: false,
            },
        })
    }
}

tenure_sdk::source_plugin!(Lever);
