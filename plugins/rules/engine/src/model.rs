//! The engine's inputs and outputs, free of any WebAssembly binding.

use cel::Value;
use cel::objects::{Key, Map};
use std::collections::HashMap;
use std::sync::Arc;

/// An attribute value, in and out (mirrors the WIT `value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Absent,
    Text(String),
    Many(Vec<String>),
    Number(i64),
    Flag(bool),
}

impl Attr {
    /// The value as a CEL value.
    pub fn to_cel(&self) -> Value {
        match self {
            Attr::Absent => Value::Null,
            Attr::Text(s) => Value::String(Arc::new(s.clone())),
            Attr::Many(v) => Value::List(Arc::new(
                v.iter().map(|s| Value::String(Arc::new(s.clone()))).collect(),
            )),
            Attr::Number(n) => Value::Int(*n),
            Attr::Flag(b) => Value::Bool(*b),
        }
    }
}

/// The person a rule set is evaluated for. Dates are ISO 8601 text.
#[derive(Debug, Clone, Default)]
pub struct Person {
    /// (source, id) pairs; the first is the person's main id.
    pub ids: Vec<(String, String)>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_name: Option<String>,
    /// (kind, value, primary)
    pub emails: Vec<(String, String, bool)>,
    pub phones: Vec<(String, String, bool)>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub team: Option<String>,
    pub location: Option<String>,
    pub country: Option<String>,
    pub time_zone: Option<String>,
    /// The manager's id in its source.
    pub manager: Option<String>,
    pub employment_type: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub status: String,
    pub custom: Vec<(String, Attr)>,
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

impl Person {
    /// The person as the CEL map `person`: every standard field is present
    /// (an empty string when unknown), custom attributes under `person.custom`.
    pub fn to_cel(&self) -> Value {
        View(self).to_map()
    }

    /// A stable key for seeding `Guid()` and `RandomString()`.
    pub fn seed(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (s, id) in &self.ids {
            for b in s.bytes().chain([0]).chain(id.bytes()).chain([0]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

/// One standard field of a person, borrowed where it is text.
pub(crate) enum FieldRef<'a> {
    Text(&'a str),
    Value(Value),
}

impl FieldRef<'_> {
    pub fn to_value(&self) -> Value {
        match self {
            FieldRef::Text(t) => string(t),
            FieldRef::Value(v) => v.clone(),
        }
    }
}

/// The person as the rules read it, borrowed: the fast path compares its text
/// fields in place; the CEL map is built only when the interpreter needs it.
#[derive(Clone, Copy)]
pub(crate) struct View<'a>(pub &'a Person);

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or_default()
}

fn primary_ref(list: &[(String, String, bool)]) -> &str {
    list.iter()
        .find(|(_, _, p)| *p)
        .or_else(|| list.first())
        .map(|(_, v, _)| v.as_str())
        .unwrap_or_default()
}

impl<'a> View<'a> {
    /// A field by slot (see `fast::FIELDS`).
    pub fn field(self, slot: usize) -> Option<FieldRef<'a>> {
        let p = self.0;
        let list = |l: &[(String, String, bool)]| {
            FieldRef::Value(Value::List(Arc::new(
                l.iter().map(|(_, v, _)| string(v)).collect(),
            )))
        };
        Some(match slot {
            0 => FieldRef::Text(p.ids.first().map(|(_, id)| id.as_str()).unwrap_or_default()),
            1 => FieldRef::Value(map(p
                .ids
                .iter()
                .map(|(s, id)| (s.as_str(), string(id)))
                .collect())),
            2 => FieldRef::Text(opt(&p.given_name)),
            3 => FieldRef::Text(opt(&p.family_name)),
            4 => FieldRef::Text(opt(&p.preferred_name)),
            5 => FieldRef::Text(primary_ref(&p.emails)),
            6 => list(&p.emails),
            7 => FieldRef::Text(primary_ref(&p.phones)),
            8 => list(&p.phones),
            9 => FieldRef::Text(opt(&p.title)),
            10 => FieldRef::Text(opt(&p.department)),
            11 => FieldRef::Text(opt(&p.team)),
            12 => FieldRef::Text(opt(&p.location)),
            13 => FieldRef::Text(opt(&p.country)),
            14 => FieldRef::Text(opt(&p.time_zone)),
            15 => FieldRef::Text(opt(&p.manager)),
            16 => FieldRef::Text(opt(&p.employment_type)),
            17 => FieldRef::Text(opt(&p.start_date)),
            18 => FieldRef::Text(opt(&p.end_date)),
            19 => FieldRef::Text(&p.status),
            _ => return None,
        })
    }

    /// A standard field's text, without copying (`None` for the list and map fields).
    pub fn text(self, slot: usize) -> Option<&'a str> {
        let p = self.0;
        Some(match slot {
            2 => opt(&p.given_name),
            3 => opt(&p.family_name),
            9 => opt(&p.title),
            10 => opt(&p.department),
            11 => opt(&p.team),
            12 => opt(&p.location),
            13 => opt(&p.country),
            16 => opt(&p.employment_type),
            19 => &p.status,
            1 | 6 | 8 => return None,
            _ => match self.field(slot)? {
                FieldRef::Text(t) => t,
                FieldRef::Value(_) => return None,
            },
        })
    }

    pub fn custom(self, name: &str) -> Option<&'a Attr> {
        self.0.custom.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn to_map(self) -> Value {
        let mut entries: Vec<(&str, Value)> = crate::fast::FIELDS
            .iter()
            .enumerate()
            .filter_map(|(i, f)| self.field(i).map(|v| (*f, v.to_value())))
            .collect();
        entries.push((
            "custom",
            map(self
                .0
                .custom
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_cel()))
                .collect()),
        ));
        map(entries)
    }

    /// A text field by path (`department`, `custom.cost_center`), borrowed; `None`
    /// when it is missing or not text.
    pub fn text_path(self, path: &[impl AsRef<str>]) -> Option<&'a str> {
        match path {
            [field] => self.text(crate::fast::FIELDS.iter().position(|f| *f == field.as_ref())?),
            [custom, name] if custom.as_ref() == "custom" => match self.custom(name.as_ref())? {
                Attr::Text(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }

    /// A field by path (`department`, `custom.level`); null when missing.
    pub fn lookup(self, path: &[impl AsRef<str>]) -> Value {
        match path {
            [field] => crate::fast::FIELDS
                .iter()
                .position(|f| *f == field.as_ref())
                .and_then(|i| self.field(i))
                .map(|v| v.to_value())
                .unwrap_or(Value::Null),
            [custom, name] if custom.as_ref() == "custom" => self
                .custom(name.as_ref())
                .map(Attr::to_cel)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

/// A ticket to open.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub template: String,
    pub fields: Vec<(String, String)>,
}

/// A unique naming request: the host takes the first candidate that is free in
/// every destination of `unique_in`, and keeps it once assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueName {
    pub attribute: String,
    pub candidates: Vec<String>,
    pub unique_in: Vec<String>,
    pub rename_on_change: bool,
}

/// What one account in one destination should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub destination: String,
    pub attributes: Vec<(String, Attr)>,
    pub container: Option<String>,
    pub groups: Vec<String>,
    pub licenses: Vec<String>,
    pub apps: Vec<String>,
    pub enabled: bool,
    /// RFC 3339.
    pub expires_at: Option<String>,
    pub tickets: Vec<Ticket>,
    pub unique: Vec<UniqueName>,
    /// Attributes whose values `Redact` marked: they flow, but no trace, audit or
    /// preview may show them.
    pub redacted: Vec<String>,
}

/// One line of the trace: a rule (or scope, mapping, default) and what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub destination: String,
    pub rule: String,
    pub matched: bool,
    pub reason: String,
    /// The person fields the condition read, with their values.
    pub inputs: Vec<(String, Attr)>,
    pub contributed: Vec<String>,
}

/// How much to trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceLevel {
    None,
    Matched,
    All,
}
