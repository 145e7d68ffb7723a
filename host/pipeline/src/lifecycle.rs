//! A person's lifecycle: the dated facts their events established (start date,
//! last day, leave, contract end, a withdrawn hire), and the state those facts
//! give at any instant, in the person's own time zone.
//!
//! The state is computed, never stored as truth: the facts are remembered per
//! person ([`Lifecycle`]), and the pipeline asks [`Lifecycle::state_at`] when it
//! applies a job. A date that moves simply gives another answer; the next
//! instant at which the answer changes ([`Lifecycle::next_change`]) becomes the
//! person's wake-up action in the scheduler.
//!
//! Dates are days in the person's zone: a start date begins at that day's local
//! midnight; a last day ends at the next local midnight (a Sydney leaver's last
//! day ends at Sydney's midnight, not Pacific's).

use crate::event::{EventKind, EventKindExt};
use crate::{Deprovision, DestinationConfig, StepAction};
use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_runtime::wit;

/// Where a person is in their life at the company (kept in the store as is).
pub use tenure_store::LifecycleState as State;

/// The status the rules see for a state.
pub trait StateExt {
    fn status(self) -> wit::PersonStatus;
}

impl StateExt for State {
    fn status(self) -> wit::PersonStatus {
        match self {
            State::Candidate => wit::PersonStatus::Candidate,
            State::PreHire => wit::PersonStatus::PreHire,
            State::Active => wit::PersonStatus::Active,
            State::OnLeave => wit::PersonStatus::OnLeave,
            State::Terminated | State::ContractExpired | State::Withdrawn => wit::PersonStatus::Terminated,
        }
    }
}

/// What a destination account had when its owner's leave began, restored on return.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SavedAccess {
    pub enabled: bool,
    pub container: Option<String>,
    pub groups: Vec<String>,
    pub licenses: Vec<String>,
    pub apps: Vec<String>,
}

/// One change of state, for the person's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<State>,
    pub to: State,
    pub at_ms: i64,
}

/// Something [`Lifecycle::observe`] did differently from what the event asked, for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A withdrawal of someone who has already started is not applied: their access
    /// is the HR system's to end (with a leaver), not the ATS's.
    WithdrawalAfterStart { start_date: Option<String> },
    /// A hire of someone whose employment ended (a start date after their last day,
    /// or after a withdrawal) is taken as a rehire.
    JoinerIsRehire,
}

/// How many transitions a person's history keeps.
const HISTORY: usize = 50;

/// The dated facts of one person, kept by the store between events. Empty fields are left out
/// of the stored JSON and read back as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Lifecycle {
    /// IANA zone the dates are in (UTC when the record names none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// `employee`, `contractor`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub employment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// The record's end date: a contract's last day, or an employee's planned last day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// The last day a termination named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_day: Option<String>,
    /// First day of a leave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave_from: Option<String>,
    /// First day back from a leave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave_until: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    /// Still a candidate (the source has not hired them).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub candidate: bool,
    /// 1 after the first hire, +1 per rehire.
    pub hires: u32,
    /// The manager's person key (`source:id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// The newest source event observed (each is observed once, so a retry changes nothing).
    pub last_event: i64,
    /// The state the pipeline last applied in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<State>,
    pub applied_ms: i64,
    /// When the current termination took effect (leaver steps count from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gone_since_ms: Option<i64>,
    /// Per destination: the access a leave took away.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub saved: BTreeMap<String, SavedAccess>,
    /// Per destination: leaver steps already carried out since the termination.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub steps_done: BTreeMap<String, Vec<String>>,
    /// Tickets the rules opened in the current state (`destination/state/template`),
    /// so that a later job for the same state does not open them again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<String>,
    /// The tickets opened for the person, newest last (the most recent [`MAX_OPENED_TICKETS`]):
    /// where, in which state, and the number the desk gave it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opened_tickets: Vec<OpenedTicket>,
    /// Followed tickets already reported overdue (`ticket-overdue` is sent once per ticket).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tickets_overdue: Vec<String>,
    pub history: Vec<Transition>,
    /// The name and email of the newest record taken in by this job (kept in the store's
    /// people search columns, not in the document).
    #[serde(skip)]
    pub card: Option<PersonCard>,
    /// Movers and updates that take effect on a later day, oldest day first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<DeferredChange>,
}

/// How many opened tickets a person's facts keep (the audit keeps every one).
pub const MAX_OPENED_TICKETS: usize = 50;

/// A ticket opened for a person: its number (the connector's anchor) and the connector's
/// summary (which carries the ticket's link when the desk has one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OpenedTicket {
    pub destination: String,
    pub state: State,
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub summary: String,
    pub at_ms: i64,
}

/// A change that takes effect on a later day: the event that carries it, and the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeferredChange {
    pub on: String,
    pub event_id: i64,
}

/// How many dated changes a person keeps waiting.
const MAX_DEFERRED: usize = 20;

/// A local calendar day, parsed from `YYYY-MM-DD`.
pub fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Whether `name` is an IANA time zone Tenure knows.
pub fn known_zone(name: &str) -> bool {
    name.parse::<Tz>().is_ok()
}

/// Who a person is, as people search for them: the name and the email of their newest record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonCard {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl PersonCard {
    /// The preferred (else given) name and the family name; the primary (else first) email.
    pub fn of(p: &wit::Person) -> PersonCard {
        let first = p.preferred_name.as_deref().or(p.given_name.as_deref());
        let parts: Vec<&str> = [first, p.family_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let email = p.emails.iter().find(|e| e.primary).or(p.emails.first());
        PersonCard {
            name: (!parts.is_empty()).then(|| parts.join(" ")),
            email: email.map(|e| e.value.clone()),
        }
    }
}

impl Lifecycle {
    /// The person's zone (UTC when missing or unknown; intake refuses unknown ones).
    pub fn zone(&self) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|z| z.parse().ok())
            .unwrap_or(Tz::UTC)
    }

    /// The local day at an instant.
    pub fn today(&self, now_ms: i64) -> NaiveDate {
        let utc = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
        utc.with_timezone(&self.zone()).date_naive()
    }

    /// The instant a local day begins (on a day whose midnight a clock change
    /// skips, the first instant that exists).
    pub fn day_starts_ms(&self, d: NaiveDate) -> i64 {
        let tz = self.zone();
        let mut t = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        for _ in 0..4 {
            if let Some(at) = tz.from_local_datetime(&t).earliest() {
                return at.timestamp_millis();
            }
            t += chrono::Duration::minutes(30);
        }
        Utc.from_utc_datetime(&t).timestamp_millis()
    }

    /// The instant the day after `d` begins (a last day's end).
    fn day_ends_ms(&self, d: NaiveDate) -> i64 {
        self.day_starts_ms(d.checked_add_days(Days::new(1)).unwrap_or(d))
    }

    fn contractor(&self) -> bool {
        self.employment.as_deref() == Some("contractor")
    }

    /// Whether the person has started: hired, and their start date (if any) has begun.
    fn started(&self, today: NaiveDate) -> bool {
        self.hires > 0
            && !self.withdrawn
            && self
                .start_date
                .as_deref()
                .and_then(day)
                .is_none_or(|s| today >= s)
    }

    /// Takes in one source event (once per event id); says what it did differently
    /// from what the event asked, if anything.
    pub fn observe(
        &mut self,
        event_id: i64,
        kind: EventKind,
        event: &wit::PersonEvent,
        now_ms: i64,
    ) -> Option<Observation> {
        if event_id <= self.last_event {
            return None;
        }
        self.last_event = event_id;
        self.take_in(kind, event, now_ms)
    }

    /// Whether an event changes the person only from a later day: a mover, update or
    /// conversion (of someone not leaving or going on leave, whose dates the facts already
    /// follow) with an `effective_date` whose local day has not begun. Returns that day.
    pub fn effective_later(&self, kind: EventKind, event: &wit::PersonEvent, now_ms: i64) -> Option<String> {
        if !matches!(kind, EventKind::Mover | EventKind::Update | EventKind::Conversion)
            || matches!(
                event.person.status,
                wit::PersonStatus::Terminated | wit::PersonStatus::OnLeave
            )
        {
            return None;
        }
        let on = event.effective_date.as_deref().and_then(day)?;
        let zone = Lifecycle {
            time_zone: event.person.time_zone.clone().or_else(|| self.time_zone.clone()),
            ..Lifecycle::default()
        };
        (zone.day_starts_ms(on) > now_ms).then(|| on.to_string())
    }

    /// Remembers a change that takes effect on `on` (its wake-up applies it then).
    pub fn defer(&mut self, event_id: i64, on: String) {
        if self.deferred.iter().any(|d| d.event_id == event_id) {
            return;
        }
        self.deferred.push(DeferredChange { on, event_id });
        self.deferred
            .sort_by(|a, b| (&a.on, a.event_id).cmp(&(&b.on, b.event_id)));
        // Bounded: the newest dated changes are the ones that can still matter.
        if self.deferred.len() > MAX_DEFERRED {
            self.deferred.remove(0);
        }
    }

    /// The deferred change in effect at `now_ms`: the one whose day began last.
    pub fn due_change(&self, now_ms: i64) -> Option<&DeferredChange> {
        self.due(now_ms)
            .max_by(|a, b| (&a.on, a.event_id).cmp(&(&b.on, b.event_id)))
    }

    /// The deferred changes whose day has begun by `now_ms`.
    fn due(&self, now_ms: i64) -> impl Iterator<Item = &DeferredChange> {
        self.deferred
            .iter()
            .filter(move |d| day(&d.on).is_some_and(|on| self.day_starts_ms(on) <= now_ms))
    }

    /// On a wake-up: when deferred changes fell due, takes in the facts of the record now
    /// in effect (`event`, the one [`Self::due_change`] chose) and forgets those changes.
    pub fn take_in_due(&mut self, event: &wit::PersonEvent, now_ms: i64) -> bool {
        let due: Vec<i64> = self.due(now_ms).map(|d| d.event_id).collect();
        if due.is_empty() {
            return false;
        }
        self.deferred.retain(|d| !due.contains(&d.event_id));
        self.take_in(EventKind::from_wit(event.kind), event, now_ms);
        true
    }

    /// Takes an event's facts in (see [`Self::observe`]).
    fn take_in(&mut self, kind: EventKind, event: &wit::PersonEvent, now_ms: i64) -> Option<Observation> {
        let today = self.today(now_ms);
        if kind == EventKind::Withdrawn && self.started(today) {
            return Some(Observation::WithdrawalAfterStart {
                start_date: self.start_date.clone(),
            });
        }
        // A hire after the employment ended (or after a withdrawn hire) hires them again. One
        // without a start date starts when it takes effect (its effective date, else today):
        // after a last day that has passed, that is a rehire too, not a record left unapplied.
        let starts = match &event.person.start_date {
            Some(start) => day(start),
            None => event.effective_date.as_deref().and_then(day).or(Some(today)),
        };
        let ended = self.withdrawn
            || self
                .last_day
                .as_deref()
                .and_then(day)
                .is_some_and(|last| starts.is_some_and(|s| s > last));
        let (kind, note) = if kind == EventKind::Joiner && self.hires > 0 && ended {
            (EventKind::Rehire, Some(Observation::JoinerIsRehire))
        } else {
            (kind, None)
        };
        let p = &event.person;
        self.card = Some(PersonCard::of(p));
        if let Some(z) = &p.time_zone {
            self.time_zone = Some(z.clone());
        }
        if let Some(t) = p.employment_type {
            self.employment = Some(employment(t).into());
        }
        if p.start_date.is_some() {
            self.start_date = p.start_date.clone();
        }
        self.end_date = p.end_date.clone();
        self.manager = p.manager.as_ref().map(|m| format!("{}:{}", m.source, m.id));
        self.candidate = p.status == wit::PersonStatus::Candidate && self.hires == 0;
        let yesterday = today.pred_opt().unwrap_or(today).to_string();
        let on = |d: &Option<String>| d.clone().unwrap_or_else(|| today.to_string());
        match kind {
            EventKind::Joiner => {
                self.hires = self.hires.max(1);
                self.candidate = false;
            }
            EventKind::Rehire => {
                if p.start_date.is_none() {
                    self.start_date = Some(on(&event.effective_date));
                }
                self.hires += 1;
                self.candidate = false;
                self.withdrawn = false;
                self.last_day = None;
                self.leave_from = None;
                self.leave_until = None;
                self.steps_done.clear();
            }
            EventKind::Leaver | EventKind::Deleted => {
                // No date: the person left at once (their last day was yesterday).
                self.last_day = Some(
                    event
                        .effective_date
                        .clone()
                        .or_else(|| p.end_date.clone())
                        .unwrap_or(yesterday),
                );
            }
            EventKind::LeaveStart => {
                self.leave_from = Some(on(&event.effective_date));
                self.leave_until = None;
            }
            EventKind::LeaveEnd => {
                if self.leave_from.is_some() {
                    self.leave_until = Some(on(&event.effective_date));
                }
            }
            EventKind::Withdrawn => self.withdrawn = true,
            EventKind::Update | EventKind::Mover | EventKind::Conversion => {
                // Feeds that send statuses rather than event kinds.
                match p.status {
                    wit::PersonStatus::Terminated if self.last_day.is_none() => {
                        self.last_day = Some(
                            event
                                .effective_date
                                .clone()
                                .or_else(|| p.end_date.clone())
                                .unwrap_or(yesterday),
                        );
                    }
                    wit::PersonStatus::OnLeave if self.leave_from.is_none() || self.leave_until.is_some() => {
                        self.leave_from = Some(on(&event.effective_date));
                        self.leave_until = None;
                    }
                    wit::PersonStatus::Active => {
                        if self.leave_from.is_some() && self.leave_until.is_none() {
                            self.leave_until = Some(on(&event.effective_date));
                        }
                        // A termination rescinded before it took effect.
                        if self.last_day.as_deref().and_then(day).is_some_and(|d| today <= d) {
                            self.last_day = None;
                        }
                    }
                    _ => {}
                }
                if p.status != wit::PersonStatus::Candidate {
                    self.hires = self.hires.max(1);
                }
            }
        }
        note
    }

    /// The state at an instant.
    pub fn state_at(&self, now_ms: i64) -> State {
        let today = self.today(now_ms);
        let past = |d: &Option<String>| d.as_deref().and_then(day).is_some_and(|d| today > d);
        if self.withdrawn {
            return State::Withdrawn;
        }
        if past(&self.last_day) {
            return State::Terminated;
        }
        if past(&self.end_date) {
            return if self.contractor() {
                State::ContractExpired
            } else {
                State::Terminated
            };
        }
        if self.candidate {
            return State::Candidate;
        }
        if self
            .start_date
            .as_deref()
            .and_then(day)
            .is_some_and(|s| today < s)
        {
            return State::PreHire;
        }
        let from = self.leave_from.as_deref().and_then(day);
        let until = self.leave_until.as_deref().and_then(day);
        if from.is_some_and(|f| today >= f) && until.is_none_or(|u| today < u) {
            return State::OnLeave;
        }
        State::Active
    }

    /// When the current state would end (the instant the state is gone from).
    pub fn gone_at_ms(&self) -> Option<i64> {
        let last = self.last_day.as_deref().and_then(day);
        let end = self.end_date.as_deref().and_then(day);
        match (last, end) {
            (Some(a), Some(b)) => Some(self.day_ends_ms(a.min(b))),
            (Some(d), None) | (None, Some(d)) => Some(self.day_ends_ms(d)),
            (None, None) => None,
        }
    }

    /// The day a pre-hire account is made in a destination that creates them `days` ahead.
    pub fn prehire_from_ms(&self, days: u32) -> Option<i64> {
        let start = self.start_date.as_deref().and_then(day)?;
        Some(self.day_starts_ms(start.checked_sub_days(Days::new(days.into()))?))
    }

    /// The instants at which something dated happens for this person, after `now_ms`:
    /// the start date, leave start and return, the last day's end, and each
    /// destination's pre-hire day. The earliest is the person's next wake-up.
    pub fn next_change(&self, now_ms: i64, prehire_days: &[u32]) -> Option<i64> {
        // A withdrawn hire has nothing ahead (no start date to wake up for).
        if self.withdrawn {
            return None;
        }
        let mut at: Vec<i64> = Vec::new();
        at.extend(
            self.deferred
                .iter()
                .filter_map(|d| day(&d.on))
                .map(|on| self.day_starts_ms(on)),
        );
        for d in [&self.start_date, &self.leave_from, &self.leave_until] {
            if let Some(d) = d.as_deref().and_then(day) {
                at.push(self.day_starts_ms(d));
            }
        }
        for d in [&self.last_day, &self.end_date] {
            if let Some(d) = d.as_deref().and_then(day) {
                at.push(self.day_ends_ms(d));
            }
        }
        at.extend(prehire_days.iter().filter_map(|n| self.prehire_from_ms(*n)));
        at.into_iter().filter(|t| *t > now_ms).min()
    }

    /// A contractor's expiry notices still ahead: `(days before, due instant)`.
    pub fn notices(&self, now_ms: i64, days_before: &[u32]) -> Vec<(u32, i64)> {
        if !self.contractor() || self.withdrawn || self.last_day.is_some() {
            return Vec::new();
        }
        let Some(end) = self.end_date.as_deref().and_then(day) else {
            return Vec::new();
        };
        days_before
            .iter()
            .filter_map(|n| {
                let d = end.checked_sub_days(Days::new((*n).into()))?;
                let due = self.day_starts_ms(d);
                (due > now_ms).then_some((*n, due))
            })
            .collect()
    }

    /// Whether the rules' ticket `template` was already opened in `destination` in this state.
    pub fn ticket_opened(&self, destination: &str, state: State, template: &str) -> bool {
        self.tickets
            .contains(&format!("{destination}/{}/{template}", state.as_str()))
    }

    /// Remembers a ticket opened in `state`.
    pub fn remember_ticket(&mut self, destination: &str, state: State, template: &str) {
        let key = format!("{destination}/{}/{template}", state.as_str());
        if !self.tickets.contains(&key) {
            self.tickets.push(key);
        }
    }

    /// Keeps a ticket's number and summary (the oldest dropped past [`MAX_OPENED_TICKETS`]).
    pub fn record_ticket(&mut self, ticket: OpenedTicket) {
        self.opened_tickets.push(ticket);
        let extra = self.opened_tickets.len().saturating_sub(MAX_OPENED_TICKETS);
        self.opened_tickets.drain(..extra);
    }

    /// Records that `state` was applied in full at `now_ms`; true when it is a change.
    pub fn applied(&mut self, state: State, now_ms: i64) -> bool {
        if self.applied == Some(state) {
            return false;
        }
        // Tickets of an earlier state may open again when that state comes back.
        self.tickets
            .retain(|t| t.split('/').nth(1) == Some(state.as_str()));
        if state.is_gone() && !self.applied.is_some_and(State::is_gone) {
            self.gone_since_ms = Some(self.gone_at_ms().filter(|t| *t <= now_ms).unwrap_or(now_ms));
        }
        if !state.is_gone() {
            self.gone_since_ms = None;
            self.steps_done.clear();
        }
        self.history.push(Transition {
            from: self.applied,
            to: state,
            at_ms: now_ms,
        });
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
        self.applied = Some(state);
        self.applied_ms = now_ms;
        true
    }
}

/// A person's wake-up: the next instant their state changes.
pub const WAKE: &str = "lifecycle";
/// Re-evaluate a person now (their manager was just provisioned).
pub const REFRESH: &str = "refresh";
/// `notice-<days>d`: a contract-expiry notice.
pub const NOTICE_PREFIX: &str = "notice-";
/// `leaver-step-<n>`: the n-th staged leaver step of a destination.
pub const STEP_PREFIX: &str = "leaver-step-";

/// The step a scheduled action names, if it is a leaver step.
pub fn step_index(action: &str) -> Option<usize> {
    action.strip_prefix(STEP_PREFIX)?.parse().ok()
}

/// A destination's desired account once the person's state has had its say.
pub struct Shaped {
    pub desired: Option<wit::DesiredAccount>,
    pub deprovision: Deprovision,
    /// Why the rules' output was changed (audited).
    pub why: Option<String>,
}

/// Shapes the rules' output for a destination by the person's state at `now_ms`.
/// `due_step` is a leaver step this job carries out.
pub fn shape(
    dest: &DestinationConfig,
    desired: Option<wit::DesiredAccount>,
    state: State,
    life: &Lifecycle,
    now_ms: i64,
    due_step: Option<usize>,
) -> Shaped {
    // A ticket the rules ask for opens once per state (a later update or wake-up does not repeat it).
    let desired = desired.map(|mut d| {
        d.tickets
            .retain(|t| !life.ticket_opened(&dest.name, state, &t.template));
        d
    });
    let unchanged = |desired| Shaped {
        desired,
        deprovision: dest.deprovision,
        why: None,
    };
    match state {
        State::Candidate => Shaped {
            desired: None,
            deprovision: dest.deprovision,
            why: Some("a candidate has no accounts".into()),
        },
        State::PreHire => {
            if let Some(days) = dest.prehire_days
                && life.prehire_from_ms(days).is_some_and(|t| now_ms < t)
            {
                // Too early: nothing is made yet (and an account made for an earlier
                // start date is left as it is, disabled).
                return Shaped {
                    desired: None,
                    deprovision: Deprovision::None,
                    why: Some(format!(
                        "pre-hire: the account is made {days} days before the start date"
                    )),
                };
            }
            let was_enabled = desired.as_ref().is_some_and(|d| d.enabled);
            let desired = desired.map(|mut d| {
                d.enabled = false;
                d
            });
            Shaped {
                desired,
                deprovision: dest.deprovision,
                why: was_enabled.then(|| "pre-hire: disabled until the start date".into()),
            }
        }
        State::Withdrawn => Shaped {
            desired: None,
            deprovision: Deprovision::Delete,
            why: Some("the hire was withdrawn: what was made for it is removed".into()),
        },
        State::Terminated | State::ContractExpired => {
            let Some(mut d) = desired else {
                return unchanged(None);
            };
            let mut why = Vec::new();
            if d.enabled {
                d.enabled = false;
                why.push("no access after the last day".to_string());
            }
            let done = life.steps_done.get(&dest.name);
            for (i, step) in dest.leaver_steps.iter().enumerate() {
                let taken = done.is_some_and(|s| s.contains(&step_key(i))) || due_step == Some(i);
                if !taken {
                    continue;
                }
                match &step.action {
                    StepAction::Move { container } => d.container = Some(container.clone()),
                    StepAction::RemoveLicenses => d.licenses.clear(),
                    StepAction::RemoveApps => d.app_assignments.clear(),
                    StepAction::RemoveGroups => d.groups.clear(),
                }
                why.push(format!("leaver step {i}: {}", step.action.name()));
            }
            Shaped {
                desired: Some(d),
                deprovision: dest.deprovision,
                why: (!why.is_empty()).then(|| why.join("; ")),
            }
        }
        State::Active | State::OnLeave => unchanged(desired),
    }
}

pub(crate) fn step_key(i: usize) -> String {
    format!("step-{i}")
}

fn employment(t: wit::EmploymentType) -> &'static str {
    match t {
        wit::EmploymentType::Employee => "employee",
        wit::EmploymentType::Contractor => "contractor",
        wit::EmploymentType::Intern => "intern",
        wit::EmploymentType::Temporary => "temporary",
        wit::EmploymentType::Other => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKindExt;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    fn person(status: wit::PersonStatus) -> wit::Person {
        wit::Person {
            time_zone: Some("Australia/Sydney".into()),
            employment_type: Some(wit::EmploymentType::Employee),
            start_date: Some("2026-03-02".into()),
            status,
            ..wit::Person::with_id("hr", "1")
        }
    }

    fn event(kind: EventKind, person: wit::Person, effective: Option<&str>) -> wit::PersonEvent {
        wit::PersonEvent {
            kind: kind.to_wit(),
            person,
            effective_date: effective.map(String::from),
            source_record_id: String::new(),
            occurred_at: None,
        }
    }

    #[test]
    fn a_start_date_begins_at_local_midnight() {
        let mut l = Lifecycle::default();
        let hire = event(EventKind::Joiner, person(wit::PersonStatus::PreHire), None);
        l.observe(1, EventKind::Joiner, &hire, ms("2026-02-01T00:00:00Z"));
        // Sydney is UTC+11 in March: its 2 March begins at 13:00 UTC on 1 March.
        assert_eq!(l.state_at(ms("2026-03-01T12:59:59Z")), State::PreHire);
        assert_eq!(l.state_at(ms("2026-03-01T13:00:00Z")), State::Active);
        assert_eq!(
            l.next_change(ms("2026-02-01T00:00:00Z"), &[7]),
            Some(ms("2026-02-22T13:00:00Z")),
            "seven days ahead of the start comes first"
        );
        assert_eq!(l.prehire_from_ms(7), Some(ms("2026-02-22T13:00:00Z")));
    }

    #[test]
    fn a_last_day_ends_at_the_persons_midnight() {
        let mut l = Lifecycle::default();
        let hire = event(EventKind::Joiner, person(wit::PersonStatus::Active), None);
        l.observe(1, EventKind::Joiner, &hire, ms("2026-03-02T00:00:00Z"));
        let leave = event(
            EventKind::Leaver,
            person(wit::PersonStatus::Terminated),
            Some("2026-06-30"),
        );
        l.observe(2, EventKind::Leaver, &leave, ms("2026-06-01T00:00:00Z"));
        // Sydney (UTC+10 in June): 30 June ends at 14:00 UTC; in Pacific time it is still 30 June morning.
        assert_eq!(l.state_at(ms("2026-06-30T13:59:59Z")), State::Active);
        assert_eq!(l.state_at(ms("2026-06-30T14:00:00Z")), State::Terminated);
        // The same event twice (a retry) changes nothing.
        let before = l.clone();
        l.observe(2, EventKind::Leaver, &leave, ms("2026-06-01T00:00:00Z"));
        assert_eq!(l, before);
        let back = event(EventKind::Rehire, person(wit::PersonStatus::Active), None);
        l.observe(3, EventKind::Rehire, &back, ms("2026-08-01T00:00:00Z"));
        assert_eq!(l.state_at(ms("2026-08-01T00:00:00Z")), State::Active);
        assert_eq!(l.hires, 2);
    }

    #[test]
    fn leave_runs_from_its_first_day_to_the_day_back() {
        let mut l = Lifecycle::default();
        l.observe(
            1,
            EventKind::Joiner,
            &event(EventKind::Joiner, person(wit::PersonStatus::Active), None),
            0,
        );
        let start = event(
            EventKind::LeaveStart,
            person(wit::PersonStatus::OnLeave),
            Some("2026-05-04"),
        );
        l.observe(2, EventKind::LeaveStart, &start, ms("2026-04-20T00:00:00Z"));
        assert_eq!(l.state_at(ms("2026-05-02T00:00:00Z")), State::Active);
        assert_eq!(l.state_at(ms("2026-05-04T00:00:00Z")), State::OnLeave);
        let end = event(
            EventKind::LeaveEnd,
            person(wit::PersonStatus::Active),
            Some("2026-06-01"),
        );
        l.observe(3, EventKind::LeaveEnd, &end, ms("2026-05-20T00:00:00Z"));
        assert_eq!(l.state_at(ms("2026-05-31T12:00:00Z")), State::OnLeave);
        assert_eq!(l.state_at(ms("2026-06-01T00:00:00Z")), State::Active);
    }

    #[test]
    fn contracts_expire_after_their_end_with_notices_before() {
        let mut l = Lifecycle::default();
        let mut p = person(wit::PersonStatus::Active);
        p.time_zone = None;
        p.employment_type = Some(wit::EmploymentType::Contractor);
        p.end_date = Some("2026-09-30".into());
        l.observe(
            1,
            EventKind::Joiner,
            &event(EventKind::Joiner, p.clone(), None),
            0,
        );
        let now = ms("2026-09-01T00:00:00Z");
        assert_eq!(
            l.notices(now, &[14, 3]),
            [(14, ms("2026-09-16T00:00:00Z")), (3, ms("2026-09-27T00:00:00Z"))]
        );
        assert_eq!(l.state_at(ms("2026-09-30T23:59:59Z")), State::Active);
        assert_eq!(l.state_at(ms("2026-10-01T00:00:00Z")), State::ContractExpired);
        // Conversion to an employee: no end, no notices.
        p.employment_type = Some(wit::EmploymentType::Employee);
        p.end_date = None;
        l.observe(
            2,
            EventKind::Conversion,
            &event(EventKind::Conversion, p, None),
            now,
        );
        assert!(l.notices(now, &[14, 3]).is_empty());
        assert_eq!(l.state_at(ms("2026-10-01T00:00:00Z")), State::Active);
    }

    #[test]
    fn a_withdrawn_hire_and_a_rescinded_termination() {
        let mut l = Lifecycle::default();
        l.observe(
            1,
            EventKind::Joiner,
            &event(EventKind::Joiner, person(wit::PersonStatus::PreHire), None),
            0,
        );
        let mut w = l.clone();
        w.observe(
            2,
            EventKind::Withdrawn,
            &event(EventKind::Withdrawn, person(wit::PersonStatus::PreHire), None),
            0,
        );
        assert_eq!(w.state_at(0), State::Withdrawn);
        let now = ms("2026-04-01T00:00:00Z");
        let leave = event(
            EventKind::Leaver,
            person(wit::PersonStatus::Terminated),
            Some("2026-04-30"),
        );
        l.observe(3, EventKind::Leaver, &leave, now);
        assert!(l.last_day.is_some());
        l.observe(
            4,
            EventKind::Update,
            &event(EventKind::Update, person(wit::PersonStatus::Active), None),
            now,
        );
        assert_eq!(l.last_day, None, "rescinded before it took effect");
    }

    #[test]
    fn a_withdrawal_counts_only_before_the_start_and_a_later_hire_is_a_rehire() {
        let mut l = Lifecycle::default();
        let hire = event(EventKind::Joiner, person(wit::PersonStatus::PreHire), None);
        l.observe(1, EventKind::Joiner, &hire, ms("2026-02-01T00:00:00Z"));
        assert!(l.next_change(ms("2026-02-01T00:00:00Z"), &[]).is_some());
        let withdrawn = event(EventKind::Withdrawn, person(wit::PersonStatus::PreHire), None);
        // After the start date (2026-03-02 in Sydney): not applied, and said so.
        let mut started = l.clone();
        let note = started.observe(2, EventKind::Withdrawn, &withdrawn, ms("2026-03-05T00:00:00Z"));
        assert!(
            matches!(note, Some(Observation::WithdrawalAfterStart { .. })),
            "{note:?}"
        );
        assert_eq!(started.state_at(ms("2026-03-05T00:00:00Z")), State::Active);
        // Before it: withdrawn, with no wake-up left for the start date.
        assert_eq!(
            l.observe(2, EventKind::Withdrawn, &withdrawn, ms("2026-02-10T00:00:00Z")),
            None
        );
        assert_eq!(l.state_at(ms("2026-03-05T00:00:00Z")), State::Withdrawn);
        assert_eq!(l.next_change(ms("2026-02-10T00:00:00Z"), &[7]), None);
        // Hired again later: a rehire, active from the new start date.
        let mut again = person(wit::PersonStatus::PreHire);
        again.start_date = Some("2026-09-01".into());
        let note = l.observe(
            3,
            EventKind::Joiner,
            &event(EventKind::Joiner, again, None),
            ms("2026-08-01T00:00:00Z"),
        );
        assert_eq!(note, Some(Observation::JoinerIsRehire));
        assert_eq!(l.state_at(ms("2026-09-02T00:00:00Z")), State::Active);
    }

    #[test]
    fn a_hire_without_a_start_date_after_the_last_day_is_a_rehire_from_that_day() {
        let mut l = Lifecycle::default();
        let hire = event(EventKind::Joiner, person(wit::PersonStatus::Active), None);
        l.observe(1, EventKind::Joiner, &hire, ms("2026-03-05T00:00:00Z"));
        let leave = event(
            EventKind::Leaver,
            person(wit::PersonStatus::Terminated),
            Some("2026-06-30"),
        );
        l.observe(2, EventKind::Leaver, &leave, ms("2026-06-01T00:00:00Z"));
        let mut undated = person(wit::PersonStatus::Active);
        undated.start_date = None;
        // Before the last day: the termination stands (a hire record sent again is no rehire).
        let mut pending = l.clone();
        let resent = event(EventKind::Joiner, undated.clone(), None);
        assert_eq!(
            pending.observe(3, EventKind::Joiner, &resent, ms("2026-06-15T00:00:00Z")),
            None
        );
        assert_eq!(pending.state_at(ms("2026-07-02T00:00:00Z")), State::Terminated);
        // After it: hired again from the day it takes effect.
        let note = l.observe(3, EventKind::Joiner, &resent, ms("2026-08-01T00:00:00Z"));
        assert_eq!(note, Some(Observation::JoinerIsRehire));
        assert_eq!(l.state_at(ms("2026-08-01T00:00:00Z")), State::Active);
        assert_eq!((l.hires, l.start_date.as_deref()), (2, Some("2026-08-01")));
        // With an effective date, from that day (a pre-hire until then).
        let mut later = pending;
        let dated = event(EventKind::Joiner, undated, Some("2026-09-01"));
        let note = later.observe(4, EventKind::Joiner, &dated, ms("2026-08-01T00:00:00Z"));
        assert_eq!(note, Some(Observation::JoinerIsRehire));
        assert_eq!(later.state_at(ms("2026-08-15T00:00:00Z")), State::PreHire);
        assert_eq!(later.state_at(ms("2026-09-02T00:00:00Z")), State::Active);
    }

    fn destination() -> DestinationConfig {
        serde_json::from_value(serde_json::json!({
            "name": "ad", "connector": "directory", "prehire_days": 7,
            "leaver_steps": [
                {"after": "0d", "action": "move", "container": "OU=Leavers"},
                {"after": "14d", "action": "remove-licenses"}
            ]
        }))
        .unwrap()
    }

    fn desired() -> wit::DesiredAccount {
        wit::DesiredAccount {
            destination: "ad".into(),
            attributes: vec![],
            container: Some("OU=People".into()),
            groups: vec!["Staff".into()],
            licenses: vec!["E3".into()],
            app_assignments: vec![],
            enabled: true,
            expires_at: None,
            tickets: vec![wit::Ticket {
                template: "offboarding".into(),
                fields: vec![],
            }],
        }
    }

    #[test]
    fn the_state_shapes_what_a_destination_gets() {
        let dest = destination();
        let mut l = Lifecycle::default();
        l.observe(
            1,
            EventKind::Joiner,
            &event(EventKind::Joiner, person(wit::PersonStatus::PreHire), None),
            0,
        );
        // Sydney, start 2 March; seven days ahead is 23 February (13:00 UTC on the 22nd).
        let early = shape(
            &dest,
            Some(desired()),
            State::PreHire,
            &l,
            ms("2026-02-22T12:00:00Z"),
            None,
        );
        assert!(early.desired.is_none());
        assert_eq!(
            early.deprovision,
            Deprovision::None,
            "an account made earlier is left alone"
        );
        let window = shape(
            &dest,
            Some(desired()),
            State::PreHire,
            &l,
            ms("2026-02-22T13:00:00Z"),
            None,
        );
        assert!(window.desired.is_some_and(|d| !d.enabled), "made, disabled");
        let gone = shape(&dest, None, State::Withdrawn, &l, 0, None);
        assert!(gone.desired.is_none());
        assert_eq!(gone.deprovision, Deprovision::Delete);

        // A leaver: disabled whatever the rules say; done steps stay applied; the due one too.
        l.steps_done.insert("ad".into(), vec![step_key(0)]);
        let left = shape(&dest, Some(desired()), State::Terminated, &l, 0, None)
            .desired
            .unwrap();
        assert!(!left.enabled);
        assert_eq!(left.container.as_deref(), Some("OU=Leavers"));
        assert_eq!(left.licenses, ["E3"]);
        let later = shape(&dest, Some(desired()), State::Terminated, &l, 0, Some(1))
            .desired
            .unwrap();
        assert!(later.licenses.is_empty());

        // A ticket opens once per state.
        l.remember_ticket("ad", State::Terminated, "offboarding");
        let again = shape(&dest, Some(desired()), State::Terminated, &l, 0, None)
            .desired
            .unwrap();
        assert!(again.tickets.is_empty());
        l.applied(State::Active, 0);
        assert!(
            !l.ticket_opened("ad", State::Terminated, "offboarding"),
            "forgotten when the state changes"
        );
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_the_first_instant() {
        let l = Lifecycle {
            time_zone: Some("America/Santiago".into()),
            ..Lifecycle::default()
        };
        // Chile moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let d = day("2026-09-06").unwrap();
        assert_eq!(l.day_starts_ms(d), ms("2026-09-06T01:00:00-03:00"));
    }
}
