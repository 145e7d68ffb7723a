//! Rule-set attribute names and where they live in a Google user.
//!
//! Plain fields are set directly. The repeated fields (`externalIds`, `organizations`,
//! `relations`, `phones`, `locations`) are replaced whole by Google on every update, so
//! this connector owns one entry of each (the `organization` external id, the primary
//! organization, the `manager` relation, the `work` phone, the `desk` location) and sends
//! the whole array back with the entries of other kinds kept as they were.

use serde_json::{Map, Value as Json, json};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::types::{PluginError, Value};

/// Where an attribute is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A top-level string field.
    Field(&'static str),
    /// A field of `name`.
    Name(&'static str),
    /// `value` of the entry of `array` whose `type` is `kind`.
    Typed {
        array: &'static str,
        kind: &'static str,
        field: &'static str,
    },
    /// A field of the primary organization.
    Organization(&'static str),
}

/// The employee id: the `organization` external id.
pub const EMPLOYEE_ID: Slot = Slot::Typed {
    array: "externalIds",
    kind: "organization",
    field: "value",
};

/// Every attribute name a rule set may give a Google destination.
pub const ATTRIBUTES: &[(&str, Slot)] = &[
    ("primaryEmail", Slot::Field("primaryEmail")),
    ("recoveryEmail", Slot::Field("recoveryEmail")),
    ("givenName", Slot::Name("givenName")),
    ("familyName", Slot::Name("familyName")),
    ("employeeId", EMPLOYEE_ID),
    (
        "manager",
        Slot::Typed {
            array: "relations",
            kind: "manager",
            field: "value",
        },
    ),
    (
        "phone",
        Slot::Typed {
            array: "phones",
            kind: "work",
            field: "value",
        },
    ),
    (
        "location",
        Slot::Typed {
            array: "locations",
            kind: "desk",
            field: "area",
        },
    ),
    ("title", Slot::Organization("title")),
    ("department", Slot::Organization("department")),
    ("costCenter", Slot::Organization("costCenter")),
];

/// The slot of an attribute name, or an error that names it and the choices.
pub fn slot(name: &str) -> Result<Slot, PluginError> {
    ATTRIBUTES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            let known: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
            invalid_input(
                name,
                format!(
                    "not an attribute the google connector keeps; use one of {}",
                    known.join(", ")
                ),
            )
        })
}

/// The text of a value (`None` for absent or empty).
pub fn text_of(v: &Value) -> Option<String> {
    v.to_text().filter(|t| !t.is_empty())
}

/// The value an attribute has in a user, if any.
pub fn get(user: &Json, slot: Slot) -> Option<String> {
    let text = |v: Option<&Json>| {
        v.and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match slot {
        Slot::Field(f) => text(user.get(f)),
        Slot::Name(f) => text(user.get("name").and_then(|n| n.get(f))),
        Slot::Typed { array, kind, field } => text(
            user.get(array)
                .and_then(Json::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|e| e.get("type").and_then(Json::as_str) == Some(kind))
                })
                .and_then(|e| e.get(field)),
        ),
        Slot::Organization(f) => text(primary_organization(user).and_then(|o| o.get(f))),
    }
}

fn primary_organization(user: &Json) -> Option<&Json> {
    let orgs = user.get("organizations")?.as_array()?;
    orgs.iter()
        .find(|o| o.get("primary").and_then(Json::as_bool) == Some(true))
        .or_else(|| orgs.first())
}

/// Sets (or with `None` clears) an attribute in a user body, keeping the other entries of
/// a repeated field. `current` is the user as Google holds it (empty on insert).
pub fn set(body: &mut Map<String, Json>, current: &Json, slot: Slot, value: Option<String>) {
    match slot {
        Slot::Field(f) => {
            body.insert(f.into(), value.map(Json::String).unwrap_or(Json::Null));
        }
        Slot::Name(f) => {
            let name = body.entry("name").or_insert_with(|| json!({}));
            if let (Json::Object(name), Some(v)) = (name, value) {
                name.insert(f.into(), Json::String(v));
            }
        }
        Slot::Typed { array, kind, field } => {
            let mut entries = array_of(body, current, array);
            let at = entries
                .iter()
                .position(|e| e.get("type").and_then(Json::as_str) == Some(kind));
            match (at, value) {
                (Some(i), Some(v)) => {
                    entries[i][field] = Json::String(v);
                }
                (None, Some(v)) => {
                    let mut entry = json!({ "type": kind, field: v });
                    if array == "phones" {
                        entry["primary"] = json!(true);
                    }
                    entries.push(entry);
                }
                (Some(i), None) => {
                    entries.remove(i);
                }
                (None, None) => {}
            }
            body.insert(array.into(), Json::Array(entries));
        }
        Slot::Organization(f) => {
            let mut orgs = array_of(body, current, "organizations");
            let at = orgs
                .iter()
                .position(|o| o.get("primary").and_then(Json::as_bool) == Some(true))
                .or(if orgs.is_empty() { None } else { Some(0) });
            let i = match at {
                Some(i) => i,
                None => {
                    orgs.push(json!({ "primary": true }));
                    orgs.len() - 1
                }
            };
            if let Json::Object(org) = &mut orgs[i] {
                match value {
                    Some(v) => org.insert(f.into(), Json::String(v)),
                    None => org.remove(f),
                };
            }
            body.insert("organizations".into(), Json::Array(orgs));
        }
    }
}

/// The array as this update has it so far, else as Google holds it.
fn array_of(body: &Map<String, Json>, current: &Json, array: &str) -> Vec<Json> {
    body.get(array)
        .or_else(|| current.get(array))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_keep_entries_of_other_kinds() {
        let current = json!({
            "externalIds": [{"type": "custom", "customType": "badge", "value": "B-1"},
                            {"type": "organization", "value": "E-1"}],
            "organizations": [{"title": "Engineer", "department": "R&D", "primary": true}],
        });
        let mut body = Map::new();
        set(
            &mut body,
            &current,
            slot("employeeId").unwrap(),
            Some("E-2".into()),
        );
        set(
            &mut body,
            &current,
            slot("department").unwrap(),
            Some("Sales".into()),
        );
        set(
            &mut body,
            &current,
            slot("manager").unwrap(),
            Some("boss@x.test".into()),
        );
        let user = Json::Object(body.clone());
        assert_eq!(get(&user, slot("employeeId").unwrap()).as_deref(), Some("E-2"));
        assert_eq!(body["externalIds"][0]["value"], "B-1", "the badge id stays");
        assert_eq!(get(&user, slot("department").unwrap()).as_deref(), Some("Sales"));
        assert_eq!(get(&user, slot("title").unwrap()).as_deref(), Some("Engineer"));
        assert_eq!(
            body["relations"],
            json!([{"type": "manager", "value": "boss@x.test"}])
        );
        set(&mut body, &current, slot("employeeId").unwrap(), None);
        assert_eq!(
            body["externalIds"],
            json!([{"type": "custom", "customType": "badge", "value": "B-1"}])
        );
        set(&mut body, &current, slot("title").unwrap(), None);
        assert_eq!(get(&Json::Object(body), slot("title").unwrap()), None);
    }

    #[test]
    fn unknown_attributes_are_named() {
        match slot("shoeSize") {
            Err(PluginError::InvalidInput(i)) => {
                assert_eq!(i.field, "shoeSize");
                assert!(i.reason.contains("primaryEmail"));
            }
            other => panic!("{other:?}"),
        }
    }
}
