//! `hr-feed`: HR records (CSV or JSON) as person events, for what Lever does
//! not know: promotions and moves, leaves and returns, terminations.
//!
//! A payload is CSV with a header row (`text/csv`) or JSON: an array of objects
//! or `{"records": [...]}`. Columns map to person fields through settings
//! `column.<field> = "<column header>"`; unmapped columns become custom
//! attributes under their header. Fields: `employee_id` (required: the person's
//! id in this source), `event`, `effective_date`, `record_id`, `given_name`,
//! `family_name`, `preferred_name`, `email`, `phone`, `title`, `department`,
//! `team`, `location`, `country`, `time_zone`, `manager_id`, `employment_type`,
//! `start_date`, `end_date`, `status`. Without a mapping a column named like the
//! field is used.
//!
//! Event values map through `event.<value> = <kind>` (`event.TERM = "leaver"`);
//! otherwise the value itself (`joiner`, `update`, `mover`, `leave-start`,
//! `leave-end`, `leaver`, `rehire`, `conversion`, `withdrawn`), default `update`.
//! A leaver is `terminated`, a leave-start `on-leave`, unless a status is given.
//! Errors name the row and the column.
//!
//! Settings: `source` (default `hr`), `column.*`, `event.*`.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use tenure_sdk::errors::invalid_input;
use tenure_sdk::prelude::*;

const FIELDS: &[&str] = &[
    "employee_id",
    "event",
    "effective_date",
    "record_id",
    "given_name",
    "family_name",
    "preferred_name",
    "email",
    "phone",
    "title",
    "department",
    "team",
    "location",
    "country",
    "time_zone",
    "manager_id",
    "employment_type",
    "start_date",
    "end_date",
    "status",
];

#[derive(Default, Clone)]
struct Settings {
    source: String,
    /// field -> column header
    columns: BTreeMap<String, String>,
    /// event value -> kind
    events: BTreeMap<String, String>,
}

impl Settings {
    /// Reads `source`, `column.<field>` and `event.<value>`; errors name the setting.
    fn read(pairs: BTreeMap<String, String>) -> Result<Settings, PluginError> {
        let mut s = Settings {
            source: "hr".into(),
            ..Settings::default()
        };
        for (k, v) in pairs {
            if k == "source" {
                if !v.is_empty() {
                    s.source = v;
                }
            } else if let Some(field) = k.strip_prefix("column.") {
                if !FIELDS.contains(&field) {
                    return Err(invalid_input(
                        format!("settings.{k}"),
                        format!("{field:?} is not a person field"),
                    ));
                }
                s.columns.insert(field.to_string(), v);
            } else if let Some(value) = k.strip_prefix("event.") {
                kind(&v).ok_or_else(|| {
                    invalid_input(format!("settings.{k}"), format!("{v:?} is not an event kind"))
                })?;
                s.events.insert(value.to_string(), v);
            } else {
                return Err(invalid_input(
                    format!("settings.{k}"),
                    "unknown setting; known: source, column.<field>, event.<value>",
                ));
            }
        }
        Ok(s)
    }
}

/// The source: its settings, no other state.
struct HrFeed {
    settings: Settings,
}

impl Source for HrFeed {
    /// The keys are open-ended (`column.*`, `event.*`), so they arrive as a map.
    type Settings = BTreeMap<String, String>;

    fn new(pairs: BTreeMap<String, String>) -> Result<Self, PluginError> {
        Ok(HrFeed {
            settings: Settings::read(pairs)?,
        })
    }

    fn parse(&mut self, payload: Payload) -> Result<Vec<PersonEvent>, PluginError> {
        let rows = if payload.content_type.contains("csv") {
            csv_rows(&payload.body)?
        } else {
            json_rows(&payload.body)?
        };
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| event(&self.settings, i + 1, &row))
            .collect()
    }
}

type Row = BTreeMap<String, String>;

/// The parsing path without the host, for the fuzz targets (`fuzz/`): settings, then the
/// payload's records, then each record's event.
#[doc(hidden)]
pub fn parse_natively(
    settings: BTreeMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<PersonEvent>, PluginError> {
    let mut feed = HrFeed::new(settings)?;
    feed.parse(Payload {
        content_type: content_type.to_string(),
        headers: Vec::new(),
        body: body.to_vec(),
    })
}

fn csv_rows(body: &[u8]) -> Result<Vec<Row>, PluginError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| invalid_input("body", format!("not CSV with a header row: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| invalid_input(format!("row {}", i + 1), e.to_string()))?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

fn json_rows(body: &[u8]) -> Result<Vec<Row>, PluginError> {
    let doc: Json =
        serde_json::from_slice(body).map_err(|e| invalid_input("body", format!("not JSON: {e}")))?;
    let items = match &doc {
        Json::Array(a) => a,
        other => other
            .get("records")
            .and_then(Json::as_array)
            .ok_or_else(|| invalid_input("body", "expected an array of records or {\"records\": [...]}"))?,
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let obj = item
                .as_object()
                .ok_or_else(|| invalid_input(format!("records[{i}]"), "must be an object"))?;
            Ok(obj
                .iter()
                .filter_map(|(k, v)| {
                    let text = match v {
                        Json::String(s) => s.clone(),
                        Json::Number(n) => n.to_string(),
                        Json::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    (!text.is_empty()).then(|| (k.clone(), text))
                })
                .collect())
        })
        .collect()
}

fn kind(v: &str) -> Option<EventKind> {
    Some(match v.to_ascii_lowercase().as_str() {
        "joiner" | "hire" => EventKind::Joiner,
        "update" => EventKind::Update,
        "mover" | "move" | "promotion" | "transfer" => EventKind::Mover,
        "leave-start" => EventKind::LeaveStart,
        "leave-end" => EventKind::LeaveEnd,
        "leaver" | "termination" => EventKind::Leaver,
        "rehire" => EventKind::Rehire,
        "conversion" => EventKind::Conversion,
        "withdrawn" => EventKind::Withdrawn,
        _ => return None,
    })
}

fn event(s: &Settings, row_no: usize, row: &Row) -> Result<PersonEvent, PluginError> {
    let column = |field: &str| {
        s.columns
            .get(field)
            .map(String::as_str)
            .unwrap_or(field)
            .to_string()
    };
    let get = |field: &str| row.get(&column(field)).cloned();
    let at = |field: &str| format!("row {row_no}, column {:?}", column(field));
    let id =
        get("employee_id").ok_or_else(|| invalid_input(at("employee_id"), "the employee id is missing"))?;
    let kind = match get("event") {
        None => EventKind::Update,
        Some(v) => match s.events.get(&v) {
            Some(mapped) => kind(mapped),
            None => kind(&v),
        }
        .ok_or_else(|| {
            invalid_input(
                at("event"),
                format!("{v:?} is not an event kind; map it with event.{v}"),
            )
        })?,
    };
    let date = |field: &str| -> Result<Option<String>, PluginError> {
        match get(field) {
            None => Ok(None),
            Some(d) if is_date(&d) => Ok(Some(d)),
            Some(d) => Err(invalid_input(
                at(field),
                format!("{d:?} is not a date (YYYY-MM-DD)"),
            )),
        }
    };
    let status = match get("status").as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("active") => PersonStatus::Active,
        Some("pre-hire") => PersonStatus::PreHire,
        Some("on-leave") => PersonStatus::OnLeave,
        Some("terminated") => PersonStatus::Terminated,
        Some(other) => return Err(invalid_input(at("status"), format!("{other:?} is not a status"))),
        None => match kind {
            EventKind::Leaver => PersonStatus::Terminated,
            EventKind::LeaveStart => PersonStatus::OnLeave,
            _ => PersonStatus::Active,
        },
    };
    let employment_type = match get("employment_type")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("employee" | "full-time" | "part-time") => Some(EmploymentType::Employee),
        Some("contractor") => Some(EmploymentType::Contractor),
        Some("intern") => Some(EmploymentType::Intern),
        Some("temporary" | "temp") => Some(EmploymentType::Temporary),
        Some(_) => Some(EmploymentType::Other),
    };
    let mapped: Vec<String> = FIELDS.iter().map(|f| column(f)).collect();
    let custom = row
        .iter()
        .filter(|(k, _)| !mapped.contains(k))
        .map(|(k, v)| (k.clone(), Value::Text(v.clone())))
        .collect();
    let effective_date = date("effective_date")?;
    let record_id = get("record_id").unwrap_or_else(|| {
        format!(
            "{id}:{}:{}",
            tenure_sdk::person::event_kind_name(kind),
            effective_date.as_deref().unwrap_or_default()
        )
    });
    let labeled = |v: Option<String>, k: &str| {
        v.map(|value| LabeledValue {
            kind: k.into(),
            value,
            primary: true,
        })
        .into_iter()
        .collect::<Vec<_>>()
    };
    Ok(PersonEvent {
        kind,
        person: Person {
            ids: vec![SourceId {
                source: s.source.clone(),
                id,
            }],
            given_name: get("given_name"),
            family_name: get("family_name"),
            preferred_name: get("preferred_name"),
            emails: labeled(get("email"), "work"),
            phones: labeled(get("phone"), "work"),
            title: get("title"),
            department: get("department"),
            team: get("team"),
            location: get("location"),
            country: get("country"),
            time_zone: get("time_zone"),
            manager: get("manager_id").map(|m| SourceId {
                source: s.source.clone(),
                id: m,
            }),
            employment_type,
            start_date: date("start_date")?,
            end_date: date("end_date")?,
            status,
            custom,
        },
        effective_date,
        source_record_id: record_id,
        occurred_at: None,
    })
}

fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

tenure_sdk::source_plugin!(HrFeed);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            source: "hr".into(),
            columns: [
                ("employee_id".to_string(), "Employee ID".to_string()),
                ("email".to_string(), "Work Email".to_string()),
                ("event".to_string(), "Action".to_string()),
                ("effective_date".to_string(), "Effective".to_string()),
            ]
            .into(),
            events: [("TERM".to_string(), "leaver".to_string())].into(),
        }
    }

    #[test]
    fn csv_rows_map_through_the_configured_columns() {
        let rows = csv_rows(
            b"Employee ID,Work Email,Action,Effective,Cost Center\nE1,a@x.test,TERM,2026-03-31,CC-1\n",
        )
        .unwrap();
        let e = event(&settings(), 1, &rows[0]).unwrap();
        assert_eq!(e.kind, EventKind::Leaver);
        assert_eq!(e.person.status, PersonStatus::Terminated);
        assert_eq!(e.person.ids[0].id, "E1");
        assert_eq!(e.person.emails[0].value, "a@x.test");
        assert_eq!(e.effective_date.as_deref(), Some("2026-03-31"));
        assert_eq!(e.source_record_id, "E1:leaver:2026-03-31");
        assert_eq!(e.person.custom.len(), 1);
        assert!(matches!(&e.person.custom[0], (k, Value::Text(v)) if k == "Cost Center" && v == "CC-1"));
    }

    #[test]
    fn bad_rows_name_the_row_and_the_column() {
        let rows = csv_rows(
            b"Employee ID,Action,Effective\n,TERM,2026-03-31\nE2,FIRE,2026-03-31\nE3,TERM,31/03/2026\n",
        )
        .unwrap();
        let err = |i: usize| match event(&settings(), i + 1, &rows[i]) {
            Err(PluginError::InvalidInput(e)) => e.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(0), "row 1, column \"Employee ID\"");
        assert_eq!(err(1), "row 2, column \"Action\"");
        assert_eq!(err(2), "row 3, column \"Effective\"");
    }

    #[test]
    fn json_records_work_too() {
        let rows = json_rows(br#"{"records": [{"Employee ID": "E9", "Action": "leave-start", "level": 5}]}"#)
            .unwrap();
        let e = event(&settings(), 1, &rows[0]).unwrap();
        assert_eq!(
            (e.kind, e.person.status),
            (EventKind::LeaveStart, PersonStatus::OnLeave)
        );
    }
}
