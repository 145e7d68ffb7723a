//! Rule-set attribute names and where they live in a SCIM user.

use serde_json::{Map, Value as Json, json};
use tenure_sdk::errors::invalid_input;
/// Percent-encoding for paths and filters: the SDK's.
pub use tenure_sdk::http::encode as url_encode;
use tenure_sdk::types::{PluginError, Value};

pub const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Where a rule-set attribute is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A core attribute (`userName`), or a sub-attribute (`name.givenName`).
    Core(&'static str, Option<&'static str>),
    /// An enterprise-extension attribute; `manager` is `manager.value`.
    Enterprise(&'static str),
    /// The primary work email / phone (a one-element multi-valued attribute).
    Work(&'static str),
}

/// Every attribute name a rule set may give a SCIM destination.
pub const ATTRIBUTES: &[(&str, Slot)] = &[
    ("userName", Slot::Core("userName", None)),
    ("externalId", Slot::Core("externalId", None)),
    ("displayName", Slot::Core("displayName", None)),
    ("nickName", Slot::Core("nickName", None)),
    ("title", Slot::Core("title", None)),
    ("userType", Slot::Core("userType", None)),
    ("preferredLanguage", Slot::Core("preferredLanguage", None)),
    ("locale", Slot::Core("locale", None)),
    ("timezone", Slot::Core("timezone", None)),
    ("name.givenName", Slot::Core("name", Some("givenName"))),
    ("name.familyName", Slot::Core("name", Some("familyName"))),
    ("name.middleName", Slot::Core("name", Some("middleName"))),
    ("name.formatted", Slot::Core("name", Some("formatted"))),
    ("email", Slot::Work("emails")),
    ("phone", Slot::Work("phoneNumbers")),
    ("employeeNumber", Slot::Enterprise("employeeNumber")),
    ("costCenter", Slot::Enterprise("costCenter")),
    ("organization", Slot::Enterprise("organization")),
    ("division", Slot::Enterprise("division")),
    ("department", Slot::Enterprise("department")),
    ("manager", Slot::Enterprise("manager")),
];

/// The slot of an attribute name, or an error that names it.
pub fn slot(name: &str) -> Result<Slot, PluginError> {
    ATTRIBUTES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            invalid_input(
                name,
                format!(
                    "not a SCIM attribute this connector maps; use one of {}",
                    ATTRIBUTES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// The SCIM filter path of an attribute (for lookups and PATCH paths).
pub fn path(slot: Slot) -> String {
    match slot {
        Slot::Core(a, None) => a.to_string(),
        Slot::Core(a, Some(sub)) => format!("{a}.{sub}"),
        Slot::Work(a) => format!("{a}.value"),
        Slot::Enterprise("manager") => format!("{ENTERPRISE}:manager.value"),
        Slot::Enterprise(a) => format!("{ENTERPRISE}:{a}"),
    }
}

/// A rule value as JSON (`None` for absent or empty).
pub fn json_of(v: &Value) -> Option<Json> {
    match v {
        Value::Absent => None,
        Value::Text(t) if t.is_empty() => None,
        Value::Text(t) => Some(json!(t)),
        Value::Many(m) => m.first().map(|s| json!(s)),
        Value::Number(n) => Some(json!(n.to_string())),
        Value::Flag(f) => Some(json!(f.to_string())),
    }
}

/// The JSON stored at a slot for a value (`emails` as one primary work entry).
pub fn slot_value(slot: Slot, value: Json) -> Json {
    match slot {
        Slot::Work(_) => json!([{ "value": value, "type": "work", "primary": true }]),
        Slot::Enterprise("manager") => json!({ "value": value }),
        _ => value,
    }
}

/// Writes (or with `None`, removes) one attribute in a user resource.
pub fn set(user: &mut Map<String, Json>, slot: Slot, value: Option<Json>) {
    let (container, key): (&mut Map<String, Json>, &str) = match slot {
        Slot::Core(a, None) | Slot::Work(a) => (user, a),
        Slot::Core(a, Some(sub)) => {
            let inner = user.entry(a).or_insert_with(|| json!({}));
            if !inner.is_object() {
                *inner = json!({});
            }
            match inner.as_object_mut() {
                Some(m) => (m, sub),
                None => return,
            }
        }
        Slot::Enterprise(a) => {
            let inner = user.entry(ENTERPRISE).or_insert_with(|| json!({}));
            if !inner.is_object() {
                *inner = json!({});
            }
            match inner.as_object_mut() {
                Some(m) => (m, a),
                None => return,
            }
        }
    };
    match value {
        Some(v) => {
            container.insert(key.to_string(), slot_value(slot, v));
        }
        None => {
            container.remove(key);
        }
    }
}

/// Reads one attribute of a user resource as text.
pub fn get(user: &Json, slot: Slot) -> Option<String> {
    let v = match slot {
        Slot::Core(a, None) => user.get(a)?.clone(),
        Slot::Core(a, Some(sub)) => user.get(a)?.get(sub)?.clone(),
        Slot::Work(a) => {
            let list = user.get(a)?.as_array()?;
            let pick = list
                .iter()
                .find(|e| e.get("primary").and_then(Json::as_bool) == Some(true))
                .or_else(|| {
                    list.iter()
                        .find(|e| e.get("type").and_then(Json::as_str) == Some("work"))
                })
                .or_else(|| list.first())?;
            pick.get("value")?.clone()
        }
        Slot::Enterprise("manager") => user.get(ENTERPRISE)?.get("manager")?.get("value")?.clone(),
        Slot::Enterprise(a) => user.get(ENTERPRISE)?.get(a)?.clone(),
    };
    match v {
        Json::String(s) => Some(s),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// Whether a user resource uses the enterprise extension.
pub fn uses_enterprise(user: &Map<String, Json>) -> bool {
    user.get(ENTERPRISE)
        .and_then(Json::as_object)
        .is_some_and(|m| !m.is_empty())
}

/// A filter string literal (RFC 7644 §3.4.2.2: JSON string rules).
pub fn quote(value: &str) -> String {
    Json::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_land_in_their_slots_and_read_back() {
        let mut user = Map::new();
        for (name, value) in [
            ("userName", "ann"),
            ("name.givenName", "Ann"),
            ("email", "ann@x.test"),
            ("department", "Eng"),
            ("manager", "m-1"),
        ] {
            set(&mut user, slot(name).unwrap(), Some(json!(value)));
        }
        let j = Json::Object(user.clone());
        assert_eq!(j["name"]["givenName"], "Ann");
        assert_eq!(j["emails"][0]["primary"], true);
        assert_eq!(j[ENTERPRISE]["manager"]["value"], "m-1");
        for (name, value) in [
            ("userName", "ann"),
            ("email", "ann@x.test"),
            ("manager", "m-1"),
            ("department", "Eng"),
        ] {
            assert_eq!(get(&j, slot(name).unwrap()).as_deref(), Some(value), "{name}");
        }
        assert!(uses_enterprise(&user));
        set(&mut user, slot("department").unwrap(), None);
        set(&mut user, slot("manager").unwrap(), None);
        assert!(!uses_enterprise(&user));
    }

    #[test]
    fn paths_filters_and_unknown_names() {
        assert_eq!(path(slot("email").unwrap()), "emails.value");
        assert_eq!(
            path(slot("employeeNumber").unwrap()),
            format!("{ENTERPRISE}:employeeNumber")
        );
        assert_eq!(quote("a \"b\"\\"), "\"a \\\"b\\\"\\\\\"");
        assert_eq!(url_encode("userName eq \"a&b\""), "userName%20eq%20%22a%26b%22");
        let e = slot("shoeSize").unwrap_err();
        assert!(format!("{e:?}").contains("shoeSize"));
    }
}
