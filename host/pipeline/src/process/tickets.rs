//! Following tickets: a destination's leaver steps and deletion wait until the tickets it names
//! (`wait_for_tickets`: opened at a desk when the person left) are closed there. The desk is
//! asked again every `poll_every`; a ticket still open past `alert_after` raises one
//! `ticket-overdue` notification. The disable itself never waits.

use super::{JobRun, Stage};
use crate::audit_events as ev;
use crate::config::TicketWait;
use crate::lifecycle::OpenedTicket;
use crate::notify::{Notice, NotifyOn};
use crate::{Failure, TenantPipeline};
use tenure_runtime::wit;
use tenure_store::{ActionKind, Finish, ScheduledAction};

/// A followed ticket that is not closed, and what the desk says of it.
struct StillOpen {
    ticket: OpenedTicket,
    number: String,
    state: String,
}

impl JobRun<'_> {
    /// Ends the attempt (completed, the action put back to wait) when `due` is a leaver step or
    /// deletion in a destination that waits for tickets still open at their desk.
    pub(super) async fn hold_for_tickets(
        &mut self,
        tenant: &TenantPipeline,
        due: Option<&ScheduledAction>,
    ) -> Stage<()> {
        let Some(action) = due.filter(|a| matches!(a.action, ActionKind::LeaverStep(_) | ActionKind::Delete))
        else {
            return Ok(());
        };
        let wait = tenant
            .destinations
            .iter()
            .find(|d| d.name == action.destination)
            .and_then(|d| d.wait_for_tickets.as_ref());
        let Some(wait) = wait.filter(|_| self.state.is_gone()) else {
            return Ok(());
        };
        let open = match self.still_open(tenant, wait).await {
            Ok(open) => open,
            Err(f) => return Err(self.failed(f)),
        };
        let Some(first) = open.first() else {
            return Ok(());
        };
        let now = self.p.now();
        let until = now + wait.poll_every.0;
        let note = format!("waits for ticket {} at {}", first.number, wait.desk);
        if let Err(e) = self.p.store.defer_action(action.id, until, &note).await {
            return Err(self.failed(e.into()));
        }
        for o in &open {
            let rec = self.record(
                Some(&action.destination),
                &ev::LeaverTicketAwaited {
                    action: &action.action,
                    desk: &wait.desk,
                    ticket: &o.number,
                    template: &o.ticket.template,
                    ticket_state: &o.state,
                    until_ms: until,
                },
            );
            self.pending.push(rec);
            self.alert_if_overdue(wait, &action.destination, o, now);
        }
        Err(Finish::Completed)
    }

    /// The person's tickets `wait` names (opened at its desk since they left) that the desk
    /// does not report closed; one it cannot find counts as open (nobody confirmed it done).
    async fn still_open(
        &self,
        tenant: &TenantPipeline,
        wait: &TicketWait,
    ) -> Result<Vec<StillOpen>, Failure> {
        let desk = tenant
            .destinations
            .iter()
            .find(|d| d.name == wait.desk)
            .ok_or_else(|| {
                Failure::config(format!(
                    "wait_for_tickets.desk: no destination is named {:?}",
                    wait.desk
                ))
            })?;
        let since = self.life.gone_since_ms.unwrap_or(i64::MIN);
        let followed = self.life.opened_tickets.iter().filter(|t| {
            t.destination == wait.desk && t.at_ms >= since && wait.templates.contains(&t.template)
        });
        let mut open = Vec::new();
        let mut plugin = None;
        for ticket in followed {
            let Some(number) = ticket.number.clone() else {
                continue;
            };
            let plugin = match &plugin {
                Some(p) => p,
                None => plugin.insert(
                    self.p
                        .runtime
                        .plugin(&self.job.tenant, &desk.connector)
                        .map_err(|e| Failure::config(format!("ticket desk {}: {e}", desk.name)))?,
                ),
            };
            let key = wit::MatchKey {
                attribute: crate::plan::TICKET_NUMBER.into(),
                value: number.clone(),
            };
            let found = plugin.lookup(&[key]).await.map_err(|e| Failure::of_call(&e))?;
            let state = match found.first() {
                Some(t) if !t.enabled => continue,
                Some(t) => ticket_state(t),
                None => "not found at the desk".into(),
            };
            open.push(StillOpen {
                ticket: ticket.clone(),
                number,
                state,
            });
        }
        Ok(open)
    }

    /// Raises `ticket-overdue` once for a ticket open longer than `alert_after`.
    fn alert_if_overdue(&mut self, wait: &TicketWait, destination: &str, o: &StillOpen, now: i64) {
        let overdue = wait.alert_after.is_some_and(|a| now - o.ticket.at_ms >= a.0);
        if !overdue || self.life.tickets_overdue.contains(&o.number) {
            return;
        }
        self.life.tickets_overdue.push(o.number.clone());
        self.note_life(None);
        let rec = self.record(
            Some(destination),
            &ev::TicketOverdue {
                desk: &wait.desk,
                ticket: &o.number,
                template: &o.ticket.template,
                opened_ms: o.ticket.at_ms,
            },
        );
        self.pending.push(rec);
        let opened = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(o.ticket.at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let vars = serde_json::json!({
            "destination": destination,
            "ticket": { "number": o.number, "template": o.ticket.template, "desk": wait.desk,
                "state": o.state, "opened": opened },
        });
        let notice = Notice::new(NotifyOn::TicketOverdue, o.number.clone(), vars).person(
            &self.job.person_key,
            None,
            None,
        );
        self.notices.push(notice);
    }
}

/// The desk's word for a ticket's state, from a lookup's answer.
fn ticket_state(ticket: &wit::Account) -> String {
    ticket
        .attributes
        .iter()
        .find(|a| a.name == crate::plan::TICKET_STATE)
        .and_then(|a| match &a.value {
            wit::Value::Text(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "open".into())
}
