//! The stored event: Tenure's own versioned envelope for a person event,
//! independent of the WIT types, so that a change to the plugin contract is
//! not a database migration. Version 1 is written; rows written before the
//! envelope existed (the WIT record's own JSON) are still read.

use crate::EventKind;
use serde::{Deserialize, Serialize};

/// The envelope version this build writes.
pub const VERSION: u32 = 1;

crate::column_enum! {
    /// How a person is employed.
    pub enum EmploymentType {
        Employee = "employee",
        Contractor = "contractor",
        Intern = "intern",
        Temporary = "temporary",
        Other = "other",
    }
}

crate::column_enum! {
    /// The status a source (or the lifecycle) gives a person.
    pub enum PersonStatus {
        Candidate = "candidate",
        PreHire = "pre-hire",
        Active = "active",
        OnLeave = "on-leave",
        Terminated = "terminated",
    }
}

/// A person's id in one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceId {
    pub source: String,
    pub id: String,
}

/// An email or phone with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Labeled {
    pub kind: String,
    pub value: String,
    pub primary: bool,
}

/// A custom attribute's value: null, text, a list of texts, a whole number or a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum StoredValue {
    Flag(bool),
    Number(i64),
    Text(String),
    Many(Vec<String>),
    Absent(()),
}

/// The person as a source described them. Empty fields are left out of the stored JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredPerson {
    pub ids: Vec<SourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Labeled>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Labeled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<SourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employment_type: Option<EmploymentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    pub status: PersonStatus,
    /// Other attributes, in the order the source gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<(String, StoredValue)>,
}

/// One change to one person, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredEvent {
    pub kind: EventKind,
    pub person: StoredPerson,
    /// The date the change takes effect (ISO 8601), if not immediately.
    pub effective_date: Option<String>,
    /// The source's own id for this record.
    pub source_record_id: String,
    /// When the source says the change happened (RFC 3339).
    pub occurred_at: Option<String>,
}

/// A stored event body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the stored event is envelope version {0}; this build reads up to {VERSION}")]
    Newer(u32),
    #[error("the stored event cannot be read: {0}")]
    Invalid(String),
}

#[derive(Serialize, schemars::JsonSchema)]
struct WriteV1<'a> {
    v: u32,
    kind: EventKind,
    person: &'a StoredPerson,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_date: &'a Option<String>,
    source_record_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    occurred_at: &'a Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ReadV1 {
    #[allow(dead_code)]
    v: u32,
    kind: EventKind,
    person: StoredPerson,
    #[serde(default)]
    effective_date: Option<String>,
    source_record_id: String,
    #[serde(default)]
    occurred_at: Option<String>,
}

/// The event as stored (version 1 JSON, `v` first).
pub fn encode(event: &StoredEvent) -> String {
    let v1 = WriteV1 {
        v: VERSION,
        kind: event.kind,
        person: &event.person,
        effective_date: &event.effective_date,
        source_record_id: &event.source_record_id,
        occurred_at: &event.occurred_at,
    };
    serde_json::to_string(&v1).unwrap_or_default()
}

/// Reads a stored body: version 1, or a row written before the envelope.
pub fn decode(body: &str) -> Result<StoredEvent, EnvelopeError> {
    let invalid = |e: serde_json::Error| EnvelopeError::Invalid(e.to_string());
    if let Some(rest) = body.strip_prefix("{\"v\":") {
        let version: u32 = rest
            .split([',', '}'])
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if version > VERSION {
            return Err(EnvelopeError::Newer(version));
        }
        let r: ReadV1 = serde_json::from_str(body).map_err(invalid)?;
        return Ok(StoredEvent {
            kind: r.kind,
            person: r.person,
            effective_date: r.effective_date,
            source_record_id: r.source_record_id,
            occurred_at: r.occurred_at,
        });
    }
    serde_json::from_str::<legacy::Event>(body)
        .map(legacy::Event::upgrade)
        .map_err(invalid)
}

/// Rows written before the envelope: the WIT record's serde form (PascalCase
/// variants, externally tagged values).
mod legacy {
    use super::*;

    #[derive(Deserialize, schemars::JsonSchema)]
    enum Kind {
        Joiner,
        Update,
        Mover,
        LeaveStart,
        LeaveEnd,
        Leaver,
        Rehire,
        Conversion,
        Withdrawn,
        Deleted,
    }

    #[derive(Deserialize, schemars::JsonSchema)]
    enum Employment {
        Employee,
        Contractor,
        Intern,
        Temporary,
        Other,
    }

    #[derive(Deserialize, schemars::JsonSchema)]
    enum Status {
        Candidate,
        PreHire,
        Active,
        OnLeave,
        Terminated,
    }

    #[derive(Deserialize, schemars::JsonSchema)]
    enum Value {
        Absent,
        Text(String),
        Many(Vec<String>),
        Number(i64),
        Flag(bool),
    }

    #[derive(Deserialize, schemars::JsonSchema)]
    struct Person {
        ids: Vec<SourceId>,
        given_name: Option<String>,
        family_name: Option<String>,
        preferred_name: Option<String>,
        emails: Vec<Labeled>,
        phones: Vec<Labeled>,
        title: Option<String>,
        department: Option<String>,
        team: Option<String>,
        location: Option<String>,
        country: Option<String>,
        time_zone: Option<String>,
        manager: Option<SourceId>,
        employment_type: Option<Employment>,
        start_date: Option<String>,
        end_date: Option<String>,
        status: Status,
        custom: Vec<(String, Value)>,
    }

    #[derive(Deserialize)]
    pub(super) struct Event {
        kind: Kind,
        person: Person,
        effective_date: Option<String>,
        source_record_id: String,
        occurred_at: Option<String>,
    }

    impl Event {
        pub(super) fn upgrade(self) -> StoredEvent {
            let p = self.person;
            StoredEvent {
                kind: match self.kind {
                    Kind::Joiner => EventKind::Joiner,
                    Kind::Update => EventKind::Update,
                    Kind::Mover => EventKind::Mover,
                    Kind::LeaveStart => EventKind::LeaveStart,
                    Kind::LeaveEnd => EventKind::LeaveEnd,
                    Kind::Leaver => EventKind::Leaver,
                    Kind::Rehire => EventKind::Rehire,
                    Kind::Conversion => EventKind::Conversion,
                    Kind::Withdrawn => EventKind::Withdrawn,
                    Kind::Deleted => EventKind::Deleted,
                },
                person: StoredPerson {
                    ids: p.ids,
                    given_name: p.given_name,
                    family_name: p.family_name,
                    preferred_name: p.preferred_name,
                    emails: p.emails,
                    phones: p.phones,
                    title: p.title,
                    department: p.department,
                    team: p.team,
                    location: p.location,
                    country: p.country,
                    time_zone: p.time_zone,
                    manager: p.manager,
                    employment_type: p.employment_type.map(|e| match e {
                        Employment::Employee => EmploymentType::Employee,
                        Employment::Contractor => EmploymentType::Contractor,
                        Employment::Intern => EmploymentType::Intern,
                        Employment::Temporary => EmploymentType::Temporary,
                        Employment::Other => EmploymentType::Other,
                    }),
                    start_date: p.start_date,
                    end_date: p.end_date,
                    status: match p.status {
                        Status::Candidate => PersonStatus::Candidate,
                        Status::PreHire => PersonStatus::PreHire,
                        Status::Active => PersonStatus::Active,
                        Status::OnLeave => PersonStatus::OnLeave,
                        Status::Terminated => PersonStatus::Terminated,
                    },
                    custom: p
                        .custom
                        .into_iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Value::Absent => StoredValue::Absent(()),
                                Value::Text(t) => StoredValue::Text(t),
                                Value::Many(m) => StoredValue::Many(m),
                                Value::Number(n) => StoredValue::Number(n),
                                Value::Flag(f) => StoredValue::Flag(f),
                            };
                            (k, v)
                        })
                        .collect(),
                },
                effective_date: self.effective_date,
                source_record_id: self.source_record_id,
                occurred_at: self.occurred_at,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredEvent {
        StoredEvent {
            kind: EventKind::LeaveStart,
            person: StoredPerson {
                ids: vec![SourceId {
                    source: "hr".into(),
                    id: "7".into(),
                }],
                given_name: Some("Ada".into()),
                family_name: None,
                preferred_name: None,
                emails: vec![Labeled {
                    kind: "work".into(),
                    value: "ada@x.test".into(),
                    primary: true,
                }],
                phones: vec![],
                title: None,
                department: Some("R&D".into()),
                team: None,
                location: None,
                country: None,
                time_zone: None,
                manager: None,
                employment_type: Some(EmploymentType::Contractor),
                start_date: Some("2026-03-01".into()),
                end_date: None,
                status: PersonStatus::OnLeave,
                custom: vec![
                    ("level".into(), StoredValue::Number(5)),
                    ("tags".into(), StoredValue::Many(vec!["a".into()])),
                    ("remote".into(), StoredValue::Flag(true)),
                    ("note".into(), StoredValue::Text("x".into())),
                    ("gone".into(), StoredValue::Absent(())),
                ],
            },
            effective_date: None,
            source_record_id: "r1".into(),
            occurred_at: Some("2026-01-01T00:00:00Z".into()),
        }
    }

    #[test]
    fn version_1_round_trips_and_says_its_version_first() {
        let e = sample();
        let text = encode(&e);
        assert!(text.starts_with("{\"v\":1,\"kind\":\"leave-start\""), "{text}");
        assert_eq!(decode(&text).unwrap(), e);
    }

    #[test]
    fn empty_fields_are_left_out_and_version_1_rows_that_spell_them_out_still_read() {
        let text = encode(&sample());
        assert!(
            !text.contains("family_name") && !text.contains("phones"),
            "{text}"
        );
        let spelled_out = r#"{"v":1,"kind":"leave-start","person":{"ids":[{"source":"hr","id":"7"}],
            "given_name":"Ada","family_name":null,"preferred_name":null,
            "emails":[{"kind":"work","value":"ada@x.test","primary":true}],"phones":[],"title":null,
            "department":"R&D","team":null,"location":null,"country":null,"time_zone":null,"manager":null,
            "employment_type":"contractor","start_date":"2026-03-01","end_date":null,"status":"on-leave",
            "custom":[["level",5],["tags",["a"]],["remote",true],["note","x"],["gone",null]]},
            "effective_date":null,"source_record_id":"r1","occurred_at":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(decode(spelled_out).unwrap(), sample());
    }

    #[test]
    fn rows_from_before_the_envelope_are_read() {
        let legacy = r#"{"kind":"LeaveStart","person":{"ids":[{"source":"hr","id":"7"}],"given_name":"Ada",
            "family_name":null,"preferred_name":null,
            "emails":[{"kind":"work","value":"ada@x.test","primary":true}],
            "phones":[],"title":null,"department":"R&D","team":null,"location":null,"country":null,
            "time_zone":null,"manager":null,"employment_type":"Contractor","start_date":"2026-03-01",
            "end_date":null,"status":"OnLeave",
            "custom":[["level",{"Number":5}],["tags",{"Many":["a"]}],["remote",{"Flag":true}],
                      ["note",{"Text":"x"}],["gone","Absent"]]},
            "effective_date":null,"source_record_id":"r1","occurred_at":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(decode(legacy).unwrap(), sample());
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        assert_eq!(
            decode("{\"v\":9,\"kind\":\"joiner\"}"),
            Err(EnvelopeError::Newer(9))
        );
        assert!(matches!(decode("{}"), Err(EnvelopeError::Invalid(_))));
    }
}
