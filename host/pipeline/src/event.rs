//! The canonical person event as clients send it (`POST /api/v1/events`), its
//! validation (every error names the field) and its conversion to the WIT types.

use crate::text::{self, TextKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_runtime::wit;

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, schemars::JsonSchema)]
#[error("{field}: {reason}")]
pub struct InvalidEvent {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidEvent {
    InvalidEvent {
        field: field.into(),
        reason: reason.into(),
    }
}

pub use tenure_store::EventKind;

/// An event kind in the WIT contract's terms.
pub trait EventKindExt {
    fn to_wit(self) -> wit::EventKind;
    fn from_wit(kind: wit::EventKind) -> Self;
}

impl EventKindExt for EventKind {
    fn to_wit(self) -> wit::EventKind {
        match self {
            EventKind::Joiner => wit::EventKind::Joiner,
            EventKind::Update => wit::EventKind::Update,
            EventKind::Mover => wit::EventKind::Mover,
            EventKind::LeaveStart => wit::EventKind::LeaveStart,
            EventKind::LeaveEnd => wit::EventKind::LeaveEnd,
            EventKind::Leaver => wit::EventKind::Leaver,
            EventKind::Rehire => wit::EventKind::Rehire,
            EventKind::Conversion => wit::EventKind::Conversion,
            EventKind::Withdrawn => wit::EventKind::Withdrawn,
            EventKind::Deleted => wit::EventKind::Deleted,
        }
    }

    fn from_wit(kind: wit::EventKind) -> Self {
        match kind {
            wit::EventKind::Joiner => EventKind::Joiner,
            wit::EventKind::Update => EventKind::Update,
            wit::EventKind::Mover => EventKind::Mover,
            wit::EventKind::LeaveStart => EventKind::LeaveStart,
            wit::EventKind::LeaveEnd => EventKind::LeaveEnd,
            wit::EventKind::Leaver => EventKind::Leaver,
            wit::EventKind::Rehire => EventKind::Rehire,
            wit::EventKind::Conversion => EventKind::Conversion,
            wit::EventKind::Withdrawn => EventKind::Withdrawn,
            wit::EventKind::Deleted => EventKind::Deleted,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIdIn {
    pub source: String,
    pub id: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabeledIn {
    #[serde(default = "work")]
    pub kind: String,
    pub value: String,
    #[serde(default)]
    pub primary: bool,
}

fn work() -> String {
    "work".into()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EmploymentTypeIn {
    Employee,
    Contractor,
    Intern,
    Temporary,
    Other,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StatusIn {
    Candidate,
    PreHire,
    #[default]
    Active,
    OnLeave,
    Terminated,
}

/// A person record as clients send it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonIn {
    pub ids: Vec<SourceIdIn>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_name: Option<String>,
    #[serde(default)]
    pub emails: Vec<LabeledIn>,
    #[serde(default)]
    pub phones: Vec<LabeledIn>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub team: Option<String>,
    pub location: Option<String>,
    pub country: Option<String>,
    pub time_zone: Option<String>,
    pub manager: Option<SourceIdIn>,
    pub employment_type: Option<EmploymentTypeIn>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    #[serde(default)]
    pub status: StatusIn,
    /// Other attributes: strings, lists of strings, integers, booleans or null.
    #[serde(default)]
    pub custom: BTreeMap<String, serde_json::Value>,
}

/// A person event as clients send it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The source name (default `api`); the person's id from this source is their key.
    pub source: Option<String>,
    pub kind: EventKind,
    pub person: PersonIn,
    pub effective_date: Option<String>,
    pub source_record_id: Option<String>,
    pub occurred_at: Option<String>,
}

/// A validated event, ready to store.
#[derive(Debug, Clone)]
pub struct ValidEvent {
    pub source: String,
    pub person_key: String,
    pub event: wit::PersonEvent,
}

/// Parses and validates a JSON event body.
pub fn parse_event(body: &[u8]) -> Result<ValidEvent, InvalidEvent> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let input: EventIn = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = error_field(e.path().to_string(), &e.inner().to_string());
        invalid(field, e.into_inner().to_string())
    })?;
    validate(input)
}

/// The field a deserialization error is about: its path, plus the missing field's name.
pub fn error_field(path: String, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next());
    // An unknown key that is itself empty gives an empty path: the body is what is wrong.
    let root = path == "." || path == "?" || path.trim_matches('.').is_empty();
    match (missing, root) {
        (Some(name), true) => name.to_string(),
        (Some(name), false) => format!("{path}.{name}"),
        (None, true) => "body".to_string(),
        (None, false) => path,
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (`2026-03-01T09:30:00Z`,
/// `2026-03-01T09:30:00.250+01:00`); `None` for anything else, whatever its bytes.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
}

fn check_date(field: &str, value: &Option<String>) -> Result<(), InvalidEvent> {
    match value {
        Some(v) if !is_iso_date(v) => Err(invalid(
            field,
            format!("{v:?} is not an ISO 8601 date (YYYY-MM-DD)"),
        )),
        _ => Ok(()),
    }
}

/// Checks a source name (the events' `source`, which starts every person key).
pub fn check_source(source: &str) -> Result<(), InvalidEvent> {
    if source.is_empty()
        || source.len() > 64
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            "source",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(())
}

/// Most entries of a person's lists (ids, emails, phones) and custom attributes.
const MAX_IDS: usize = 20;
const MAX_LABELED: usize = 50;
const MAX_CUSTOM: usize = 500;
const MAX_LIST_ITEMS: usize = 1000;

fn check_len(field: &str, len: usize, max: usize) -> Result<(), InvalidEvent> {
    if len > max {
        return Err(invalid(field, format!("has {len} entries; the limit is {max}")));
    }
    Ok(())
}

fn check_source_id(field: &str, id: &wit::SourceId) -> Result<(), InvalidEvent> {
    text::check_id(&format!("{field}.source"), &id.source)?;
    text::check_id(&format!("{field}.id"), &id.id)
}

/// Checks what an event says, wherever it came from (the API, an upload or a source
/// plugin): identifiers, text, lists, dates and times. Every refusal names the field.
pub fn check_event(event: &wit::PersonEvent) -> Result<(), InvalidEvent> {
    let p = &event.person;
    if p.ids.is_empty() {
        return Err(invalid("person.ids", "must name at least one id (source and id)"));
    }
    check_len("person.ids", p.ids.len(), MAX_IDS)?;
    for (i, id) in p.ids.iter().enumerate() {
        check_source_id(&format!("person.ids[{i}]"), id)?;
    }
    if !event.source_record_id.is_empty() {
        text::check("source_record_id", &event.source_record_id, TextKind::Identifier)?;
    }
    for (field, value, kind) in [
        ("person.given_name", &p.given_name, TextKind::Name),
        ("person.family_name", &p.family_name, TextKind::Name),
        ("person.preferred_name", &p.preferred_name, TextKind::Name),
        ("person.title", &p.title, TextKind::Free),
        ("person.department", &p.department, TextKind::Name),
        ("person.team", &p.team, TextKind::Name),
        ("person.location", &p.location, TextKind::Name),
        ("person.country", &p.country, TextKind::Name),
        ("person.time_zone", &p.time_zone, TextKind::Identifier),
    ] {
        if let Some(v) = value {
            text::check(field, v, kind)?;
        }
    }
    check_len("person.emails", p.emails.len(), MAX_LABELED)?;
    for (i, e) in p.emails.iter().enumerate() {
        let field = format!("person.emails[{i}].value");
        text::check(&field, &e.value, TextKind::Identifier)?;
        text::check(&format!("person.emails[{i}].kind"), &e.kind, TextKind::Identifier)?;
        let at = e.value.find('@');
        if !matches!(at, Some(n) if n > 0 && n + 1 < e.value.len()) || e.value.contains(char::is_whitespace) {
            return Err(invalid(field, format!("{:?} is not an email address", e.value)));
        }
    }
    check_len("person.phones", p.phones.len(), MAX_LABELED)?;
    for (i, ph) in p.phones.iter().enumerate() {
        text::check(&format!("person.phones[{i}].value"), &ph.value, TextKind::Free)?;
        text::check(
            &format!("person.phones[{i}].kind"),
            &ph.kind,
            TextKind::Identifier,
        )?;
    }
    if let Some(m) = &p.manager {
        check_source_id("person.manager", m)?;
    }
    if let Some(zone) = &p.time_zone
        && !crate::lifecycle::known_zone(zone)
    {
        return Err(invalid(
            "person.time_zone",
            format!("{zone:?} is not an IANA time zone (for example Europe/Berlin or UTC)"),
        ));
    }
    check_date("person.start_date", &p.start_date)?;
    check_date("person.end_date", &p.end_date)?;
    check_date("effective_date", &event.effective_date)?;
    if let Some(t) = &event.occurred_at
        && rfc3339_ms(t).is_none()
    {
        return Err(invalid(
            "occurred_at",
            format!("{t:?} is not an RFC 3339 time (2026-03-01T09:30:00Z)"),
        ));
    }
    if let (Some(s), Some(e)) = (&p.start_date, &p.end_date)
        && e < s
    {
        return Err(invalid(
            "person.end_date",
            format!("{e} is before the start date {s}"),
        ));
    }
    check_len("person.custom", p.custom.len(), MAX_CUSTOM)?;
    for (k, v) in &p.custom {
        let field = format!("person.custom.{k}");
        text::check_id(&field, k)?;
        match v {
            wit::Value::Text(t) => text::check(&field, t, TextKind::Free)?,
            wit::Value::Many(items) => {
                check_len(&field, items.len(), MAX_LIST_ITEMS)?;
                for (i, item) in items.iter().enumerate() {
                    text::check(&format!("{field}[{i}]"), item, TextKind::Free)?;
                }
            }
            wit::Value::Absent | wit::Value::Number(_) | wit::Value::Flag(_) => {}
        }
    }
    Ok(())
}

/// Checks an event's meaning (the shape was checked by deserialization).
pub fn validate(input: EventIn) -> Result<ValidEvent, InvalidEvent> {
    let source = input.source.clone().unwrap_or_else(|| "api".into());
    check_source(&source)?;
    let p = &input.person;
    let mut custom = Vec::with_capacity(p.custom.len());
    for (k, v) in &p.custom {
        let field = format!("person.custom.{k}");
        let value = match v {
            serde_json::Value::Null => wit::Value::Absent,
            serde_json::Value::String(s) => wit::Value::Text(s.clone()),
            serde_json::Value::Bool(b) => wit::Value::Flag(*b),
            serde_json::Value::Number(n) => wit::Value::Number(
                n.as_i64()
                    .ok_or_else(|| invalid(&field, "numbers must be whole (64-bit)"))?,
            ),
            serde_json::Value::Array(items) => wit::Value::Many(
                items
                    .iter()
                    .map(|i| i.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(&field, "lists may hold strings only"))?,
            ),
            serde_json::Value::Object(_) => return Err(invalid(&field, "objects are not attribute values")),
        };
        custom.push((k.clone(), value));
    }
    let labeled = |v: &[LabeledIn]| {
        v.iter()
            .map(|l| wit::LabeledValue {
                kind: l.kind.clone(),
                value: l.value.clone(),
                primary: l.primary,
            })
            .collect::<Vec<_>>()
    };
    let sid = |s: &SourceIdIn| wit::SourceId {
        source: s.source.clone(),
        id: s.id.clone(),
    };
    let person = wit::Person {
        ids: p.ids.iter().map(sid).collect(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        preferred_name: p.preferred_name.clone(),
        emails: labeled(&p.emails),
        phones: labeled(&p.phones),
        title: p.title.clone(),
        department: p.department.clone(),
        team: p.team.clone(),
        location: p.location.clone(),
        country: p.country.clone(),
        time_zone: p.time_zone.clone(),
        manager: p.manager.as_ref().map(sid),
        employment_type: p.employment_type.map(|t| match t {
            EmploymentTypeIn::Employee => wit::EmploymentType::Employee,
            EmploymentTypeIn::Contractor => wit::EmploymentType::Contractor,
            EmploymentTypeIn::Intern => wit::EmploymentType::Intern,
            EmploymentTypeIn::Temporary => wit::EmploymentType::Temporary,
            EmploymentTypeIn::Other => wit::EmploymentType::Other,
        }),
        start_date: p.start_date.clone(),
        end_date: p.end_date.clone(),
        status: match p.status {
            StatusIn::Candidate => wit::PersonStatus::Candidate,
            StatusIn::PreHire => wit::PersonStatus::PreHire,
            StatusIn::Active => wit::PersonStatus::Active,
            StatusIn::OnLeave => wit::PersonStatus::OnLeave,
            StatusIn::Terminated => wit::PersonStatus::Terminated,
        },
        custom,
    };
    let event = wit::PersonEvent {
        kind: input.kind.to_wit(),
        person,
        effective_date: input.effective_date.clone(),
        source_record_id: input.source_record_id.clone().unwrap_or_default(),
        occurred_at: input.occurred_at.clone(),
    };
    check_event(&event)?;
    let person_key = person_key(&source, &event.person)
        .ok_or_else(|| invalid("person.ids", "must name at least one id"))?;
    Ok(ValidEvent {
        source,
        person_key,
        event,
    })
}

/// Validates a bare person record (preview) as an event of `kind` from `source` would be.
pub fn validate_person(source: &str, kind: EventKind, person: PersonIn) -> Result<wit::Person, InvalidEvent> {
    let input = EventIn {
        source: Some(source.into()),
        kind,
        person,
        effective_date: None,
        source_record_id: None,
        occurred_at: None,
    };
    Ok(validate(input)?.event.person)
}

/// The key that orders and links a person's events: `<source>:<id>` of the
/// id from the event's source (else the first id).
pub fn person_key(source: &str, person: &wit::Person) -> Option<String> {
    let id = person
        .ids
        .iter()
        .find(|i| i.source == source)
        .or(person.ids.first())?;
    Some(format!("{}:{}", id.source, id.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<ValidEvent, InvalidEvent> {
        parse_event(v.to_string().as_bytes())
    }

    #[test]
    fn errors_name_the_field() {
        let e =
            parse(serde_json::json!({"kind": "joiner", "person": {"ids": [{"source": "hr"}]}})).unwrap_err();
        assert_eq!(e.field, "person.ids[0].id");
        assert!(e.reason.contains("missing field `id`"), "{e}");
        let e = parse(serde_json::json!({"kind": "hired", "person": {"ids": []}})).unwrap_err();
        assert_eq!(e.field, "kind");
        let e = parse(serde_json::json!({"kind": "joiner", "person": {"ids": [], "nmae": "x"}})).unwrap_err();
        assert_eq!(e.field, "person.nmae");
        let e = parse(serde_json::json!({"kind": "joiner", "person": {"ids": []}})).unwrap_err();
        assert_eq!(e.field, "person.ids");
        let e = parse(
            serde_json::json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": "1"}],
            "start_date": "2026-13-01"}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "person.start_date");
        let e = parse(
            serde_json::json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": "1"}],
            "emails": [{"value": "nope"}]}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "person.emails[0].value");
        let e = parse(
            serde_json::json!({"kind": "joiner", "person": {"ids": [{"source": "hr", "id": "1"}],
            "time_zone": "Mars/Olympus"}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "person.time_zone");
        let e = parse_event(b"{not json").unwrap_err();
        assert_eq!(e.field, "body");
    }

    /// Fuzzing finding (issue 18): a key that is itself empty gave an error naming no field.
    #[test]
    fn an_empty_unknown_key_is_named_as_the_body() {
        let e = parse_event(br#"{"": 1, "kind": "joiner"}"#).unwrap_err();
        assert_eq!(e.field, "body", "{e:?}");
        let nested = parse_event(br#"{"kind": "joiner", "source": "hr", "person": {"": 1}}"#).unwrap_err();
        assert!(!nested.field.is_empty(), "{nested:?}");
    }

    #[test]
    fn rfc3339_times_convert_with_offsets_and_fractions() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1_000));
        assert_eq!(rfc3339_ms("1970-01-01T01:00:00.5+01:00"), Some(500));
        assert_eq!(rfc3339_ms("2026-03-01T09:30:00Z"), Some(1_772_357_400_000));
        for bad in [
            "2026-03-01",
            "2026-03-01T25:00:00Z",
            "2026-03-01T09:30:00",
            "2026-03-01T09:30:00+0100",
            "x",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
        let e = parse(serde_json::json!({"kind": "update", "occurred_at": "yesterday",
            "person": {"ids": [{"source": "hr", "id": "1"}]}}))
        .unwrap_err();
        assert_eq!(e.field, "occurred_at");
    }

    #[test]
    fn identifiers_and_names_are_bounded_and_free_of_hidden_characters() {
        let with = |person: serde_json::Value| {
            parse(serde_json::json!({"kind": "joiner", "source_record_id": "r1", "person": person}))
        };
        let e = with(serde_json::json!({"ids": [{"source": "h\u{0}r", "id": "1"}]})).unwrap_err();
        assert_eq!(e.field, "person.ids[0].source");
        let e = with(serde_json::json!({"ids": [{"source": "hr", "id": "1\n"}]})).unwrap_err();
        assert_eq!(e.field, "person.ids[0].id");
        let e =
            with(serde_json::json!({"ids": [{"source": "hr", "id": "1"}], "given_name": "ad\u{202e}min"}))
                .unwrap_err();
        assert_eq!(e.field, "person.given_name");
        let e = with(serde_json::json!({"ids": [{"source": "hr", "id": "1"}],
            "emails": [{"value": "a\u{200b}@example.test"}]}))
        .unwrap_err();
        assert_eq!(e.field, "person.emails[0].value");
        let long = "x\u{1}".repeat(10) + &"y".repeat(200_000);
        let e = parse(serde_json::json!({"kind": "joiner", "source_record_id": long,
            "person": {"ids": [{"source": "hr", "id": "1"}]}}))
        .unwrap_err();
        assert_eq!(e.field, "source_record_id");
        // A multi-byte character where a date's digits belong is refused, not a panic.
        let e = parse(
            serde_json::json!({"kind": "joiner", "occurred_at": "2026-03-0\u{e9}T09:30:00Z",
            "person": {"ids": [{"source": "hr", "id": "1"}]}}),
        )
        .unwrap_err();
        assert_eq!(e.field, "occurred_at");
        assert_eq!(rfc3339_ms("2026-03-0éT09:30:00Z"), None);
        assert_eq!(rfc3339_ms("éééééééééééééééééééééé"), None);
    }

    #[test]
    fn the_key_comes_from_the_events_source() {
        let v = parse(serde_json::json!({"source": "hr", "kind": "joiner", "person": {
            "ids": [{"source": "lever", "id": "L1"}, {"source": "hr", "id": "1001"}],
            "custom": {"cost_center": "CC-1", "level": 3, "tags": ["a"]}}}))
        .unwrap();
        assert_eq!(v.person_key, "hr:1001");
        assert_eq!(v.event.person.custom.len(), 3);
    }
}
