//! Values a rule marked with `Redact`: they reach the destination, but audit
//! entries and previews show `[redacted]`.
//!
//! The rules plugin lists the redacted attributes of an account in the reserved
//! many-valued attribute `$redacted`; like every `$` attribute it never reaches a
//! connector (see [`crate::naming::take_requests`]).

use tenure_runtime::wit;

/// The reserved attribute naming an account's redacted attributes.
pub const REDACTED: &str = "$redacted";
/// What a redacted value shows as.
pub const MASK: &str = "[redacted]";

/// The attributes of a desired account whose values are redacted.
pub fn redacted_names(account: &wit::DesiredAccount) -> Vec<String> {
    account
        .attributes
        .iter()
        .find(|a| a.name == REDACTED)
        .map(|a| match &a.value {
            wit::Value::Many(names) => names.clone(),
            wit::Value::Text(name) => vec![name.clone()],
            _ => Vec::new(),
        })
        .unwrap_or_default()
}

/// An attribute value as an audit or preview may show it.
fn shown(value: &wit::Value, redacted: bool) -> wit::Value {
    if redacted {
        wit::Value::Text(MASK.into())
    } else {
        value.clone()
    }
}

/// A desired account's attributes for an audit entry: redacted values masked,
/// the `$redacted` list itself left out.
pub fn audit_attributes(account: &wit::DesiredAccount) -> serde_json::Map<String, serde_json::Value> {
    let names = redacted_names(account);
    account
        .attributes
        .iter()
        .filter(|a| a.name != REDACTED)
        .map(|a| {
            let value = shown(&a.value, names.contains(&a.name));
            (a.name.clone(), serde_json::to_value(&value).unwrap_or_default())
        })
        .collect()
}

/// Masks the named attributes of a list in place.
pub fn mask(attributes: &mut [wit::Attribute], names: &[String]) {
    for a in attributes.iter_mut().filter(|a| names.contains(&a.name)) {
        a.value = shown(&a.value, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(attributes: Vec<wit::Attribute>) -> wit::DesiredAccount {
        wit::DesiredAccount {
            destination: "ad".into(),
            attributes,
            container: None,
            groups: vec![],
            licenses: vec![],
            app_assignments: vec![],
            enabled: true,
            expires_at: None,
            tickets: vec![],
        }
    }

    fn text(name: &str, v: &str) -> wit::Attribute {
        wit::Attribute {
            name: name.into(),
            value: wit::Value::Text(v.into()),
        }
    }

    #[test]
    fn redacted_values_are_masked_and_the_list_is_left_out() {
        let a = account(vec![
            text("mail", "a@x.test"),
            text("employeeID", "S3CRET"),
            wit::Attribute {
                name: REDACTED.into(),
                value: wit::Value::Many(vec!["employeeID".into()]),
            },
        ]);
        let shown = audit_attributes(&a);
        assert_eq!(shown.len(), 2);
        assert_eq!(
            shown["mail"],
            serde_json::to_value(wit::Value::Text("a@x.test".into())).unwrap()
        );
        assert!(!serde_json::to_string(&shown).unwrap().contains("S3CRET"));
        let mut attrs = a.attributes.clone();
        mask(&mut attrs, &redacted_names(&a));
        assert!(matches!(&attrs[1].value, wit::Value::Text(t) if t == MASK));
        assert!(matches!(&attrs[0].value, wit::Value::Text(t) if t == "a@x.test"));
    }
}
