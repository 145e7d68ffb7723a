//! Conversions and accessors for the shared types: [`Value`], attributes,
//! accounts and outcomes.

use crate::types::{Account, Attribute, DesiredAccount, Outcome, Value};

impl Value {
    /// The value as one text: text itself, a number or flag spelled out, the
    /// first of many; `None` when absent.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Absent => None,
            Value::Text(t) => Some(t.clone()),
            Value::Many(m) => m.first().cloned(),
            Value::Number(n) => Some(n.to_string()),
            Value::Flag(f) => Some(f.to_string()),
        }
    }

    /// The text, when the value is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The value as a list: many as is, text as one item, anything else empty.
    pub fn to_list(&self) -> Vec<String> {
        match self {
            Value::Many(m) => m.clone(),
            Value::Text(t) => vec![t.clone()],
            _ => Vec::new(),
        }
    }

    /// Whether the value clears the attribute.
    pub fn is_absent(&self) -> bool {
        matches!(self, Value::Absent)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<Vec<String>> for Value {
    fn from(items: Vec<String>) -> Self {
        Value::Many(items)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Flag(flag)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Absent, Into::into)
    }
}

impl Attribute {
    /// An attribute named `name` with `value`.
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Attribute {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Finds an attribute's value by name.
fn find<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Value> {
    attributes.iter().find(|a| a.name == name).map(|a| &a.value)
}

impl DesiredAccount {
    /// The value of attribute `name`, if the rules set it.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        find(&self.attributes, name)
    }
}

impl Account {
    /// The account `desired` describes, as created under `anchor`.
    pub fn from_desired(anchor: impl Into<String>, desired: DesiredAccount) -> Self {
        Account {
            anchor: anchor.into(),
            attributes: desired
                .attributes
                .into_iter()
                .filter(|a| !a.value.is_absent())
                .collect(),
            container: desired.container,
            groups: desired.groups,
            licenses: desired.licenses,
            app_assignments: desired.app_assignments,
            enabled: desired.enabled,
            expires_at: desired.expires_at,
        }
    }

    /// Applies attribute changes: each replaces the attribute of its name, and
    /// `absent` removes it.
    pub fn set_attributes(&mut self, changes: Vec<Attribute>) {
        self.attributes
            .retain(|a| !changes.iter().any(|c| c.name == a.name));
        self.attributes
            .extend(changes.into_iter().filter(|c| !c.value.is_absent()));
    }

    /// The value of attribute `name`, if the destination has it.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        find(&self.attributes, name)
    }

    /// An enabled account with `anchor`, these attributes and nothing else.
    pub fn with_attributes(anchor: impl Into<String>, attributes: Vec<Attribute>) -> Self {
        Account {
            anchor: anchor.into(),
            attributes,
            container: None,
            groups: Vec::new(),
            licenses: Vec::new(),
            app_assignments: Vec::new(),
            enabled: true,
            expires_at: None,
        }
    }
}

impl Outcome {
    /// A change to an existing account.
    pub fn done(summary: impl Into<String>) -> Self {
        Outcome {
            anchor: None,
            summary: summary.into(),
        }
    }

    /// A new account (or ticket) and its anchor.
    pub fn created(anchor: impl Into<String>, summary: impl Into<String>) -> Self {
        Outcome {
            anchor: Some(anchor.into()),
            summary: summary.into(),
        }
    }
}
