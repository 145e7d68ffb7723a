//! `source-json`: turns HR records in JSON into person events.
//!
//! A record is an object; known fields map to the person, anything else
//! becomes a custom attribute:
//!
//! ```json
//! { "employee_id": "1001", "event": "joiner", "effective_date": "2026-03-01",
//!   "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.test",
//!   "department": "Engineering", "title": "Engineer", "location": "Berlin",
//!   "country": "DE", "time_zone": "Europe/Berlin", "manager_id": "900",
//!   "employment_type": "employee", "start_date": "2026-03-01", "status": "pre-hire",
//!   "cost_center": "CC-1" }
//! ```
//!
//! `parse` takes a payload holding an array of records (or `{"records": [...]}`).
//! `poll` GETs `<path>?since=<cursor>` on the `hr-api` connection; the answer is
//! `{"records": [...], "next_cursor": "...", "has_more": bool}`.
//!
//! Settings: `source` (the source name on person ids, default `hr`), `path`
//! (default `/changes`).

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::http::{Client, encode};
use tenure_sdk::prelude::*;

/// `[...plugins.source-json.settings]`.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    /// The source name on person ids.
    source: String,
    /// The path polled on the `hr-api` connection.
    path: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: "hr".into(),
            path: "/changes".into(),
        }
    }
}

const KNOWN: &[&str] = &[
    "employee_id",
    "event",
    "effective_date",
    "given_name",
    "family_name",
    "preferred_name",
    "email",
    "phone",
    "department",
    "title",
    "team",
    "location",
    "country",
    "time_zone",
    "manager_id",
    "employment_type",
    "start_date",
    "end_date",
    "status",
    "record_id",
    "occurred_at",
];

struct SourceJson {
    settings: Settings,
}

impl Source for SourceJson {
    type Settings = Settings;

    fn new(settings: Settings) -> Result<Self, PluginError> {
        if !settings.path.starts_with('/') {
            return Err(invalid_input("settings.path", "must start with '/'"));
        }
        Ok(SourceJson { settings })
    }

    fn parse(&mut self, payload: Payload) -> Result<Vec<PersonEvent>, PluginError> {
        if !payload.content_type.starts_with("application/json") {
            return Err(invalid_input(
                "content-type",
                format!("expected application/json, got {:?}", payload.content_type),
            ));
        }
        let doc: Json = serde_json::from_slice(&payload.body)
            .map_err(|e| invalid_input("body", format!("not valid JSON: {e}")))?;
        let records = match &doc {
            Json::Array(a) => a,
            Json::Object(o) => o
                .get("records")
                .and_then(Json::as_array)
                .ok_or_else(|| invalid_input("records", "expected an array of records"))?,
            _ => return Err(invalid_input("body", "expected an array of records")),
        };
        to_events(&self.settings.source, records)
    }

    fn poll(&mut self, cursor: Option<String>) -> Result<PollResult, PluginError> {
        let path = match &cursor {
            Some(c) => format!("{}?since={}", self.settings.path, encode(c)),
            None => self.settings.path.clone(),
        };
        let resp = Client::new("hr-api").timeout_ms(10_000).get(&path)?;
        let doc: Json = serde_json::from_slice(&resp.body)
            .map_err(|e| PluginError::Transient(format!("hr-api answered invalid JSON: {e}")))?;
        let records = doc
            .get("records")
            .and_then(Json::as_array)
            .ok_or_else(|| PluginError::Permanent("hr-api answer has no records array".into()))?;
        Ok(PollResult {
            events: to_events(&self.settings.source, records)?,
            next_cursor: doc
                .get("next_cursor")
                .and_then(Json::as_str)
                .map(str::to_string)
                .or(cursor),
            has_more: doc.get("has_more").and_then(Json::as_bool).unwrap_or(false),
        })
    }
}

fn to_events(source: &str, records: &[Json]) -> Result<Vec<PersonEvent>, PluginError> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let r = r
                .as_object()
                .ok_or_else(|| invalid_input(format!("[{i}]"), "a record must be an object"))?;
            to_event(source, i, r)
        })
        .collect()
}

fn text(i: usize, r: &Map<String, Json>, field: &str) -> Result<Option<String>, PluginError> {
    match r.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(invalid_input(format!("[{i}].{field}"), "must be a string")),
    }
}

fn date(i: usize, r: &Map<String, Json>, field: &str) -> Result<Option<String>, PluginError> {
    let Some(d) = text(i, r, field)? else {
        return Ok(None);
    };
    let b = d.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let valid =
        b.len() == 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4) && digits(5..7) && digits(8..10) && {
            let month: u32 = d[5..7].parse().unwrap_or(0);
            let day: u32 = d[8..10].parse().unwrap_or(0);
            (1..=12).contains(&month) && (1..=31).contains(&day)
        };
    if !valid {
        return Err(invalid_input(
            format!("[{i}].{field}"),
            format!("{d:?} is not a date (YYYY-MM-DD)"),
        ));
    }
    Ok(Some(d))
}

fn to_event(source: &str, i: usize, r: &Map<String, Json>) -> Result<PersonEvent, PluginError> {
    let employee_id = text(i, r, "employee_id")?
        .ok_or_else(|| invalid_input(format!("[{i}].employee_id"), "is required"))?;
    let kind = match text(i, r, "event")?.as_deref().unwrap_or("update") {
        "joiner" | "hire" => EventKind::Joiner,
        "update" => EventKind::Update,
        "mover" | "transfer" | "promotion" => EventKind::Mover,
        "leave-start" => EventKind::LeaveStart,
        "leave-end" | "return" => EventKind::LeaveEnd,
        "leaver" | "termination" => EventKind::Leaver,
        "rehire" => EventKind::Rehire,
        "conversion" => EventKind::Conversion,
        "withdrawn" => EventKind::Withdrawn,
        other => {
            return Err(invalid_input(
                format!("[{i}].event"),
                format!("unknown event {other:?}"),
            ));
        }
    };
    let employment_type = match text(i, r, "employment_type")?.as_deref() {
        None => None,
        Some("employee") => Some(EmploymentType::Employee),
        Some("contractor") => Some(EmploymentType::Contractor),
        Some("intern") => Some(EmploymentType::Intern),
        Some("temporary") => Some(EmploymentType::Temporary),
        Some("other") => Some(EmploymentType::Other),
        Some(t) => {
            return Err(invalid_input(
                format!("[{i}].employment_type"),
                format!("unknown type {t:?}"),
            ));
        }
    };
    let status = match text(i, r, "status")?.as_deref() {
        None => match kind {
            EventKind::Joiner => PersonStatus::PreHire,
            EventKind::Leaver => PersonStatus::Terminated,
            EventKind::LeaveStart => PersonStatus::OnLeave,
            _ => PersonStatus::Active,
        },
        Some("candidate") => PersonStatus::Candidate,
        Some("pre-hire") => PersonStatus::PreHire,
        Some("active") => PersonStatus::Active,
        Some("on-leave") => PersonStatus::OnLeave,
        Some("terminated") => PersonStatus::Terminated,
        Some(s) => {
            return Err(invalid_input(
                format!("[{i}].status"),
                format!("unknown status {s:?}"),
            ));
        }
    };
    let labeled = |kind: &str, v: Option<String>| {
        v.map(|value| LabeledValue {
            kind: kind.into(),
            value,
            primary: true,
        })
        .into_iter()
        .collect()
    };
    let custom = r
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| {
            let value = match v {
                Json::Null => Value::Absent,
                Json::String(s) => Value::Text(s.clone()),
                Json::Bool(b) => Value::Flag(*b),
                Json::Number(n) => n
                    .as_i64()
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::Text(n.to_string())),
                Json::Array(a) => Value::Many(
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                        .collect(),
                ),
                Json::Object(_) => Value::Text(v.to_string()),
            };
            (k.clone(), value)
        })
        .collect();
    let person = Person {
        ids: vec![SourceId {
            source: source.into(),
            id: employee_id.clone(),
        }],
        given_name: text(i, r, "given_name")?,
        family_name: text(i, r, "family_name")?,
        preferred_name: text(i, r, "preferred_name")?,
        emails: labeled("work", text(i, r, "email")?),
        phones: labeled("work", text(i, r, "phone")?),
        title: text(i, r, "title")?,
        department: text(i, r, "department")?,
        team: text(i, r, "team")?,
        location: text(i, r, "location")?,
        country: text(i, r, "country")?,
        time_zone: text(i, r, "time_zone")?,
        manager: text(i, r, "manager_id")?.map(|id| SourceId {
            source: source.into(),
            id,
        }),
        employment_type,
        start_date: date(i, r, "start_date")?,
        end_date: date(i, r, "end_date")?,
        status,
        custom,
    };
    let effective_date = date(i, r, "effective_date")?;
    let record_id = text(i, r, "record_id")?.unwrap_or_else(|| {
        format!(
            "{employee_id}:{}:{}",
            text(i, r, "event").ok().flatten().unwrap_or_default(),
            effective_date.clone().unwrap_or_default()
        )
    });
    Ok(PersonEvent {
        kind,
        person,
        effective_date,
        source_record_id: record_id,
        occurred_at: text(i, r, "occurred_at")?,
    })
}

tenure_sdk::source_plugin!(SourceJson);
