//! Rule-set attribute names: the properties of Okta's base user profile, kept under `profile`.

use tenure_sdk::errors::invalid_input;
use tenure_sdk::types::{PluginError, Value};

/// Every attribute a rule set may give an Okta destination (Okta's `UserProfile`).
pub const ATTRIBUTES: &[&str] = &[
    "login",
    "email",
    "secondEmail",
    "firstName",
    "lastName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "displayName",
    "nickName",
    "title",
    "employeeNumber",
    "userType",
    "department",
    "division",
    "organization",
    "costCenter",
    "manager",
    "managerId",
    "mobilePhone",
    "primaryPhone",
    "streetAddress",
    "city",
    "state",
    "zipCode",
    "countryCode",
    "postalAddress",
    "preferredLanguage",
    "locale",
    "timezone",
    "profileUrl",
];

/// The attribute name as Okta spells it, or an error that names it.
pub fn known(name: &str) -> Result<&'static str, PluginError> {
    ATTRIBUTES.iter().find(|a| **a == name).copied().ok_or_else(|| {
        invalid_input(
            name,
            concat!(
                "not a property of Okta's base user profile ",
                "(login, email, firstName, lastName, employeeNumber, ...)"
            ),
        )
    })
}

/// The text of a value (`None` for absent or empty).
pub fn text_of(v: &Value) -> Option<String> {
    v.to_text().filter(|t| !t.is_empty())
}
