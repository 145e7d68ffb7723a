//! The stored event: the WIT person event in and out of the store's own
//! versioned envelope (`tenure_store::envelope`), so that the database never
//! holds the plugin contract's types.

use crate::event::{EventKind, EventKindExt};
use tenure_runtime::wit;
use tenure_store::envelope::{
    self, EmploymentType, EnvelopeError, Labeled, PersonStatus, SourceId, StoredEvent, StoredPerson,
    StoredValue,
};

/// The body to store for an event.
pub fn encode(event: &wit::PersonEvent) -> String {
    envelope::encode(&to_stored(event))
}

/// The event a stored body holds.
pub fn decode(body: &str) -> Result<wit::PersonEvent, EnvelopeError> {
    envelope::decode(body).map(from_stored)
}

fn source_id(id: &wit::SourceId) -> SourceId {
    SourceId {
        source: id.source.clone(),
        id: id.id.clone(),
    }
}

fn labeled(values: &[wit::LabeledValue]) -> Vec<Labeled> {
    values
        .iter()
        .map(|v| Labeled {
            kind: v.kind.clone(),
            value: v.value.clone(),
            primary: v.primary,
        })
        .collect()
}

fn stored_value(v: &wit::Value) -> StoredValue {
    match v {
        wit::Value::Absent => StoredValue::Absent(()),
        wit::Value::Text(t) => StoredValue::Text(t.clone()),
        wit::Value::Many(m) => StoredValue::Many(m.clone()),
        wit::Value::Number(n) => StoredValue::Number(*n),
        wit::Value::Flag(f) => StoredValue::Flag(*f),
    }
}

/// A person as JSON, in the stored envelope's shape (empty fields left out).
pub fn person_json(person: &wit::Person) -> serde_json::Value {
    serde_json::to_value(to_stored_person(person)).unwrap_or_default()
}

/// An attribute value as JSON (text, a list of texts, a number, a flag, or null).
pub fn value_json(value: &wit::Value) -> serde_json::Value {
    serde_json::to_value(stored_value(value)).unwrap_or_default()
}

fn to_stored(e: &wit::PersonEvent) -> StoredEvent {
    StoredEvent {
        kind: EventKind::from_wit(e.kind),
        person: to_stored_person(&e.person),
        effective_date: e.effective_date.clone(),
        source_record_id: e.source_record_id.clone(),
        occurred_at: e.occurred_at.clone(),
    }
}

fn to_stored_person(p: &wit::Person) -> StoredPerson {
    {
        StoredPerson {
            ids: p.ids.iter().map(source_id).collect(),
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
            manager: p.manager.as_ref().map(source_id),
            employment_type: p.employment_type.map(|t| match t {
                wit::EmploymentType::Employee => EmploymentType::Employee,
                wit::EmploymentType::Contractor => EmploymentType::Contractor,
                wit::EmploymentType::Intern => EmploymentType::Intern,
                wit::EmploymentType::Temporary => EmploymentType::Temporary,
                wit::EmploymentType::Other => EmploymentType::Other,
            }),
            start_date: p.start_date.clone(),
            end_date: p.end_date.clone(),
            status: match p.status {
                wit::PersonStatus::Candidate => PersonStatus::Candidate,
                wit::PersonStatus::PreHire => PersonStatus::PreHire,
                wit::PersonStatus::Active => PersonStatus::Active,
                wit::PersonStatus::OnLeave => PersonStatus::OnLeave,
                wit::PersonStatus::Terminated => PersonStatus::Terminated,
            },
            custom: p
                .custom
                .iter()
                .map(|(k, v)| (k.clone(), stored_value(v)))
                .collect(),
        }
    }
}

fn from_stored(e: StoredEvent) -> wit::PersonEvent {
    let p = e.person;
    let id = |s: SourceId| wit::SourceId {
        source: s.source,
        id: s.id,
    };
    let labeled = |v: Vec<Labeled>| -> Vec<wit::LabeledValue> {
        v.into_iter()
            .map(|l| wit::LabeledValue {
                kind: l.kind,
                value: l.value,
                primary: l.primary,
            })
            .collect()
    };
    wit::PersonEvent {
        kind: e.kind.to_wit(),
        person: wit::Person {
            ids: p.ids.into_iter().map(id).collect(),
            given_name: p.given_name,
            family_name: p.family_name,
            preferred_name: p.preferred_name,
            emails: labeled(p.emails),
            phones: labeled(p.phones),
            title: p.title,
            department: p.department,
            team: p.team,
            location: p.location,
            country: p.country,
            time_zone: p.time_zone,
            manager: p.manager.map(id),
            employment_type: p.employment_type.map(|t| match t {
                EmploymentType::Employee => wit::EmploymentType::Employee,
                EmploymentType::Contractor => wit::EmploymentType::Contractor,
                EmploymentType::Intern => wit::EmploymentType::Intern,
                EmploymentType::Temporary => wit::EmploymentType::Temporary,
                EmploymentType::Other => wit::EmploymentType::Other,
            }),
            start_date: p.start_date,
            end_date: p.end_date,
            status: match p.status {
                PersonStatus::Candidate => wit::PersonStatus::Candidate,
                PersonStatus::PreHire => wit::PersonStatus::PreHire,
                PersonStatus::Active => wit::PersonStatus::Active,
                PersonStatus::OnLeave => wit::PersonStatus::OnLeave,
                PersonStatus::Terminated => wit::PersonStatus::Terminated,
            },
            custom: p
                .custom
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        StoredValue::Absent(()) => wit::Value::Absent,
                        StoredValue::Text(t) => wit::Value::Text(t),
                        StoredValue::Many(m) => wit::Value::Many(m),
                        StoredValue::Number(n) => wit::Value::Number(n),
                        StoredValue::Flag(f) => wit::Value::Flag(f),
                    };
                    (k, v)
                })
                .collect(),
        },
        effective_date: e.effective_date,
        source_record_id: e.source_record_id,
        occurred_at: e.occurred_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_the_store_and_wit_json_is_not_what_is_stored() {
        let mut person = wit::Person::with_id("hr", "7");
        person.given_name = Some("Ada".into());
        person.employment_type = Some(wit::EmploymentType::Contractor);
        person.status = wit::PersonStatus::OnLeave;
        person.custom = vec![
            ("level".into(), wit::Value::Number(3)),
            ("gone".into(), wit::Value::Absent),
            ("tags".into(), wit::Value::Many(vec!["a".into()])),
        ];
        let event = wit::PersonEvent {
            kind: wit::EventKind::LeaveStart,
            person,
            effective_date: Some("2026-05-01".into()),
            source_record_id: "r1".into(),
            occurred_at: None,
        };
        let body = encode(&event);
        assert!(body.starts_with("{\"v\":1,\"kind\":\"leave-start\""), "{body}");
        assert_eq!(decode(&body).unwrap(), event);
        // A row written before the envelope (the WIT record's own JSON) still reads.
        let legacy = serde_json::to_string(&event).unwrap();
        assert_eq!(decode(&legacy).unwrap(), event);
    }
}
