//! Helpers for reading a [`Person`](crate::types::Person).

use crate::types::{EmploymentType, EventKind, Person, PersonStatus, Value};

/// The text of a custom attribute, if set and textual.
pub fn custom_text<'a>(person: &'a Person, name: &str) -> Option<&'a str> {
    person
        .custom
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| match v {
            Value::Text(s) => Some(s.as_str()),
            _ => None,
        })
}

/// The primary email, or the first one.
pub fn primary_email(person: &Person) -> Option<&str> {
    person
        .emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| person.emails.first())
        .map(|e| e.value.as_str())
}

/// An event kind's name as the API and rule sets write it (`leave-start`).
pub fn event_kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Joiner => "joiner",
        EventKind::Update => "update",
        EventKind::Mover => "mover",
        EventKind::LeaveStart => "leave-start",
        EventKind::LeaveEnd => "leave-end",
        EventKind::Leaver => "leaver",
        EventKind::Rehire => "rehire",
        EventKind::Conversion => "conversion",
        EventKind::Withdrawn => "withdrawn",
        EventKind::Deleted => "deleted",
    }
}

/// An employment type's name as rule sets write it (`contractor`).
pub fn employment_type_name(t: EmploymentType) -> &'static str {
    match t {
        EmploymentType::Employee => "employee",
        EmploymentType::Contractor => "contractor",
        EmploymentType::Intern => "intern",
        EmploymentType::Temporary => "temporary",
        EmploymentType::Other => "other",
    }
}

/// A status's name as rule sets write it (`pre-hire`).
pub fn status_name(s: PersonStatus) -> &'static str {
    match s {
        PersonStatus::Candidate => "candidate",
        PersonStatus::PreHire => "pre-hire",
        PersonStatus::Active => "active",
        PersonStatus::OnLeave => "on-leave",
        PersonStatus::Terminated => "terminated",
    }
}
