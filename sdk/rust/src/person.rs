//! Helpers for reading a [`Person`](crate::types::Person).

use crate::types::{Person, Value};

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
