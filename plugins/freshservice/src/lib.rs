//! `freshservice`: Freshservice as a Tenure ticket desk (its only operation is `open-ticket`).
//!
//! Requests go through the host's HTTP capability on the connection `freshservice` (its URL
//! is the account, `https://acme.freshservice.com`; the host attaches the API key as Basic
//! credentials, the key as user name and `X` as password). The plugin never sees the key.
//!
//! A rule set's ticket is the template: its fields say what to open.
//! - `kind = "onboarding"`: an onboarding request, every other field one of the account's
//!   onboarding form fields (`cf_employee_name`, `cf_date_of_joining`, ...). The form is
//!   read once per instance (`GET /api/v2/onboarding_requests/form`); an unknown field or a
//!   missing required one is refused before anything is sent, naming the field.
//! - Otherwise a ticket: `subject`, `description`, and `email` or `requester_id` are
//!   required; `status` (default open), `priority` (default low), `source` (default portal)
//!   take Freshservice's numbers or names; `type`, `group_id`, `department_id`,
//!   `category`, `sub_category`, `urgency`, `impact`; `cf_<name>` fields are custom fields;
//!   `tags` a comma-separated list. An unknown `email` makes Freshservice create a new
//!   requester: set `requester_id` where that matters.
//!
//! A lost answer never opens a second ticket: a ticket is tagged with `tenure-` and a
//! digest of the host's ticket key and the tag is looked up first; an onboarding request
//! holds the key in the form field `onboarding_key_field` (when set) and recent requests are
//! looked through first. The outcome's anchor is the ticket's id (`onboarding-<id>` for a
//! request); the summary carries its link when `console_url` is set.

pub mod client;

use client::send;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::cell::RefCell;
use tenure_sdk::errors::invalid_input;
use tenure_sdk::http::encode;
use tenure_sdk::prelude::*;
use tenure_sdk::reserved;

/// Largest page Freshservice serves.
const PAGE: u32 = 100;
/// How many pages of recent onboarding requests are looked through for a lost answer.
const ONBOARDING_PAGES: u32 = 5;

/// `[...plugins.freshservice.settings]`, as the tenant writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The agent portal's root, for links in summaries (`https://acme.freshservice.com`).
    #[serde(default)]
    console_url: Option<String>,
    /// The onboarding form field (`cf_...`) that holds the host's ticket key.
    #[serde(default)]
    onboarding_key_field: Option<String>,
}

/// A field of the account's onboarding form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub name: String,
    pub required: bool,
}

thread_local! {
    /// The onboarding form, read once per instance.
    static FORM: RefCell<Option<Vec<FormField>>> = const { RefCell::new(None) };
}

/// Freshservice's numbers for a ticket's status, priority and source, by name.
fn coded(field: &str, value: &str) -> Result<u64, PluginError> {
    if let Ok(n) = value.trim().parse::<u64>() {
        return Ok(n);
    }
    let names: &[(&str, u64)] = match field {
        "status" => &[("open", 2), ("pending", 3), ("resolved", 4), ("closed", 5)],
        "priority" | "urgency" | "impact" => &[("low", 1), ("medium", 2), ("high", 3), ("urgent", 4)],
        "source" => &[
            ("email", 1),
            ("portal", 2),
            ("phone", 3),
            ("chat", 4),
            ("feedback widget", 5),
            ("yammer", 6),
            ("aws cloudwatch", 7),
            ("pagerduty", 8),
            ("walkup", 9),
            ("slack", 10),
        ],
        _ => &[],
    };
    let lower = value.trim().to_lowercase();
    names
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            invalid_input(
                field,
                format!("{value:?} is not a number or one of {}", known.join(", ")),
            )
        })
}

/// The ticket body a template's fields ask for (the host's key set aside).
pub fn ticket_body(fields: &[&(String, String)]) -> Result<Map<String, Json>, PluginError> {
    let mut body = Map::new();
    let mut custom = Map::new();
    for (name, value) in fields {
        let name = name.as_str();
        match name {
            "kind" => {}
            "subject" | "description" | "email" | "type" | "category" | "sub_category" | "phone" | "name" => {
                body.insert(name.into(), Json::String(value.clone()));
            }
            "status" | "priority" | "source" | "urgency" | "impact" => {
                body.insert(name.into(), json!(coded(name, value)?));
            }
            "requester_id" | "group_id" | "department_id" | "responder_id" => {
                let id = value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| invalid_input(name, format!("{value:?} is not an id")))?;
                body.insert(name.into(), json!(id));
            }
            "tags" => {
                let tags: Vec<Json> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Json::String(t.into()))
                    .collect();
                body.insert("tags".into(), Json::Array(tags));
            }
            cf if cf.starts_with("cf_") => {
                custom.insert(cf.into(), Json::String(value.clone()));
            }
            other => {
                return Err(invalid_input(
                    other,
                    "not a Freshservice ticket field this connector sets (custom fields start with cf_)",
                ));
            }
        }
    }
    for required in ["subject", "description"] {
        if body
            .get(required)
            .and_then(Json::as_str)
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(invalid_input(required, "a Freshservice ticket needs one"));
        }
    }
    if !body.contains_key("email") && !body.contains_key("requester_id") {
        return Err(invalid_input(
            "email",
            "a Freshservice ticket needs its requester's email or requester_id",
        ));
    }
    body.entry("status").or_insert(json!(2));
    body.entry("priority").or_insert(json!(1));
    body.entry("source").or_insert(json!(2));
    if !custom.is_empty() {
        body.insert("custom_fields".into(), Json::Object(custom));
    }
    Ok(body)
}

/// What a template opens: `ticket` (the default) or `onboarding`.
fn kind_of<'f>(fields: &[&'f (String, String)]) -> &'f str {
    fields
        .iter()
        .find(|(n, _)| n == "kind")
        .map(|(_, v)| v.as_str())
        .unwrap_or("ticket")
}

/// The onboarding request's fields, checked against the form.
pub fn onboarding_fields(
    form: &[FormField],
    fields: &[&(String, String)],
) -> Result<Map<String, Json>, PluginError> {
    let mut out = Map::new();
    for (name, value) in fields.iter().filter(|(n, _)| n != "kind") {
        if !form.iter().any(|f| f.name == *name) {
            let known: Vec<&str> = form.iter().map(|f| f.name.as_str()).collect();
            return Err(invalid_input(
                name.as_str(),
                format!(
                    "not a field of this account's onboarding form ({})",
                    known.join(", ")
                ),
            ));
        }
        out.insert(name.clone(), Json::String(value.clone()));
    }
    if let Some(missing) = form.iter().find(|f| {
        f.required
            && out
                .get(&f.name)
                .and_then(Json::as_str)
                .is_none_or(|v| v.trim().is_empty())
    }) {
        return Err(invalid_input(
            missing.name.as_str(),
            "the onboarding form requires it",
        ));
    }
    Ok(out)
}

/// The tag that marks a ticket opened under the host's ticket key (FNV-1a, 64 bits).
pub fn key_tag(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("tenure-{h:016x}")
}

fn id_of(v: &Json) -> Option<u64> {
    v.get("id").and_then(Json::as_u64)
}

struct Freshservice {
    settings: Settings,
}

impl Freshservice {
    fn link(&self, ticket_id: Option<u64>) -> String {
        match (&self.settings.console_url, ticket_id) {
            (Some(root), Some(id)) => format!(" {}/a/tickets/{id}", root.trim_end_matches('/')),
            _ => String::new(),
        }
    }

    fn form(&self) -> Result<Vec<FormField>, PluginError> {
        if let Some(form) = FORM.with(|f| f.borrow().clone()) {
            return Ok(form);
        }
        let answer = send("GET", "/api/v2/onboarding_requests/form", None)?;
        let form: Vec<FormField> = answer
            .get("fields")
            .and_then(Json::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| {
                        Some(FormField {
                            name: f.get("name")?.as_str()?.to_string(),
                            required: f.get("required").and_then(Json::as_bool).unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if form.is_empty() {
            return Err(PluginError::Permanent(
                "Freshservice answered an onboarding form without fields".into(),
            ));
        }
        FORM.with(|f| *f.borrow_mut() = Some(form.clone()));
        Ok(form)
    }

    fn open_ticket_record(
        &self,
        template: &str,
        key: Option<&str>,
        fields: &[&(String, String)],
    ) -> Result<Outcome, PluginError> {
        let mut body = ticket_body(fields)?;
        if let Some(key) = key {
            let tag = key_tag(key);
            let query = format!("\"tag:'{tag}'\"");
            let found = send(
                "GET",
                &format!("/api/v2/tickets/filter?query={}", encode(&query)),
                None,
            )?;
            if let Some(id) = found
                .get("tickets")
                .and_then(Json::as_array)
                .and_then(|t| t.first())
                .and_then(id_of)
            {
                return Ok(Outcome::created(
                    id.to_string(),
                    format!(
                        "found ticket {id} ({template}), opened by an earlier attempt{}",
                        self.link(Some(id))
                    ),
                ));
            }
            let tags = body.entry("tags").or_insert_with(|| Json::Array(vec![]));
            if let Json::Array(tags) = tags {
                tags.push(Json::String(tag));
            }
        }
        let created = send("POST", "/api/v2/tickets", Some(&Json::Object(body)))?;
        let id = created.get("ticket").and_then(id_of).ok_or_else(|| {
            PluginError::Permanent("Freshservice opened a ticket but returned no id".into())
        })?;
        Ok(Outcome::created(
            id.to_string(),
            format!("opened ticket {id} ({template}){}", self.link(Some(id))),
        ))
    }

    fn open_onboarding(
        &self,
        template: &str,
        key: Option<&str>,
        fields: &[&(String, String)],
    ) -> Result<Outcome, PluginError> {
        let form = self.form()?;
        let mut values = onboarding_fields(&form, fields)?;
        let key_field = self.settings.onboarding_key_field.as_deref();
        if let (Some(key), Some(field)) = (key, key_field) {
            if !form.iter().any(|f| f.name == field) {
                return Err(invalid_input(
                    "settings.onboarding_key_field",
                    format!("{field:?} is not a field of this account's onboarding form"),
                ));
            }
            if let Some(found) = self.find_onboarding(field, key)? {
                let ticket = found.get("ticket_id").and_then(Json::as_u64);
                let id = id_of(&found).unwrap_or_default();
                return Ok(Outcome::created(
                    format!("onboarding-{id}"),
                    format!(
                        "found onboarding request {id} ({template}), opened by an earlier attempt{}",
                        self.link(ticket)
                    ),
                ));
            }
            values.insert(field.into(), Json::String(key.into()));
        }
        let created = send(
            "POST",
            "/api/v2/onboarding_requests",
            Some(&json!({ "fields": values })),
        )?;
        let request = created.get("onboarding_request").unwrap_or(&created);
        let id = id_of(request).ok_or_else(|| {
            PluginError::Permanent("Freshservice took the onboarding request but returned no id".into())
        })?;
        let ticket = request.get("ticket_id").and_then(Json::as_u64);
        Ok(Outcome::created(
            format!("onboarding-{id}"),
            format!("opened onboarding request {id} ({template}){}", self.link(ticket)),
        ))
    }

    /// A recent onboarding request whose `field` holds `key`.
    fn find_onboarding(&self, field: &str, key: &str) -> Result<Option<Json>, PluginError> {
        for page in 1..=ONBOARDING_PAGES {
            let answer = send(
                "GET",
                &format!("/api/v2/onboarding_requests?per_page={PAGE}&page={page}"),
                None,
            )?;
            let requests = answer
                .get("onboarding_requests")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(found) = requests
                .iter()
                .find(|r| r.pointer(&format!("/fields/{field}")).and_then(Json::as_str) == Some(key))
            {
                return Ok(Some(found.clone()));
            }
            if requests.len() < PAGE as usize {
                break;
            }
        }
        Ok(None)
    }
}

impl Connector for Freshservice {
    type Settings = Settings;
    const OPERATIONS: &'static [OperationKind] = &[OperationKind::OpenTicket];
    /// Its tickets can be followed (looked up by id), and its templates checked at publish.
    const MATCHING_KEYS: &'static [&'static str] = &[reserved::TICKET_NUMBER, reserved::TICKET_CHECK];

    fn new(settings: Settings) -> Result<Self, PluginError> {
        if let Some(url) = &settings.console_url
            && !url.starts_with("https://")
            && !url.starts_with("http://")
        {
            return Err(invalid_input("settings.console_url", "must be an http(s) URL"));
        }
        if let Some(field) = &settings.onboarding_key_field
            && !field.starts_with("cf_")
        {
            return Err(invalid_input(
                "settings.onboarding_key_field",
                "must name a custom form field (cf_...)",
            ));
        }
        Ok(Freshservice { settings })
    }

    /// A ticket desk holds no accounts (the host never asks it to look one up).
    fn lookup(&mut self, _keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        Ok(vec![])
    }

    /// A ticket by its id (`GET /api/v2/tickets/{id}`): open until Resolved (4) or Closed (5).
    /// Onboarding requests are not followed.
    fn ticket_state(&mut self, number: String) -> Result<Option<reserved::TicketState>, PluginError> {
        let Ok(id) = number.parse::<u64>() else {
            return Err(invalid_input(
                "ticket",
                format!("{number:?} is not a Freshservice ticket id (onboarding requests are not followed)"),
            ));
        };
        let answer = match send("GET", &format!("/api/v2/tickets/{id}"), None) {
            Err(PluginError::NotFound(_)) => return Ok(None),
            other => other?,
        };
        let status = answer["ticket"]["status"].as_u64().unwrap_or_default();
        let state = match status {
            2 => "Open",
            3 => "Pending",
            4 => "Resolved",
            5 => "Closed",
            _ => "Other",
        };
        Ok(Some(reserved::TicketState {
            open: !matches!(status, 4 | 5),
            state: state.into(),
        }))
    }

    /// At publish: the kind, and an onboarding request's fields against the account's form
    /// (names, and the fields the form requires; an expression counts as given).
    fn check_ticket(&mut self, ticket: Ticket) -> Result<(), PluginError> {
        let (_, fields) = reserved::ticket_key(&ticket.fields);
        match kind_of(&fields) {
            "ticket" => Ok(()),
            "onboarding" => {
                let form = self.form()?;
                onboarding_fields(&form, &fields).map(|_| ())
            }
            other => Err(invalid_input(
                "kind",
                format!("{other:?} is not ticket or onboarding"),
            )),
        }
    }

    fn open_ticket(&mut self, ticket: Ticket) -> Result<Outcome, PluginError> {
        let (key, fields) = reserved::ticket_key(&ticket.fields);
        match kind_of(&fields) {
            "ticket" => self.open_ticket_record(&ticket.template, key, &fields),
            "onboarding" => self.open_onboarding(&ticket.template, key, &fields),
            other => Err(invalid_input(
                "kind",
                format!("{other:?} is not ticket or onboarding"),
            )),
        }
    }
}

tenure_sdk::connector_plugin!(Freshservice);

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Map<String, Json>, PluginError> {
        let f: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ticket_body(&f.iter().collect::<Vec<_>>())
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T, PluginError>) -> String {
        match r {
            Err(PluginError::InvalidInput(i)) => i.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_ticket_reads_with_codes_defaults_and_custom_fields() {
        let body = read(&[
            ("subject", "Laptop for Ada"),
            ("description", "14-inch"),
            ("email", "ada@example.test"),
            ("priority", "High"),
            ("cf_start_date", "2027-01-04"),
            ("tags", "onboarding, laptop"),
        ])
        .unwrap();
        assert_eq!(
            (&body["status"], &body["priority"], &body["source"]),
            (&json!(2), &json!(3), &json!(2))
        );
        assert_eq!(body["custom_fields"]["cf_start_date"], "2027-01-04");
        assert_eq!(body["tags"], json!(["onboarding", "laptop"]));
    }

    #[test]
    fn bad_tickets_name_the_field() {
        assert_eq!(
            field_of(read(&[("subject", "x"), ("email", "a@b")])),
            "description"
        );
        assert_eq!(field_of(read(&[("subject", "x"), ("description", "y")])), "email");
        assert_eq!(
            field_of(read(&[
                ("subject", "x"),
                ("description", "y"),
                ("email", "a@b"),
                ("status", "done")
            ])),
            "status"
        );
        assert_eq!(
            field_of(read(&[
                ("subject", "x"),
                ("description", "y"),
                ("requester_id", "ada")
            ])),
            "requester_id"
        );
        assert_eq!(
            field_of(read(&[
                ("subject", "x"),
                ("description", "y"),
                ("email", "a@b"),
                ("owner", "z")
            ])),
            "owner"
        );
    }

    #[test]
    fn onboarding_fields_are_checked_against_the_form() {
        let form = vec![
            FormField {
                name: "cf_employee_name".into(),
                required: true,
            },
            FormField {
                name: "cf_date_of_joining".into(),
                required: false,
            },
        ];
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = f(&[("kind", "onboarding"), ("cf_employee_name", "Ada")]);
        assert!(onboarding_fields(&form, &ok.iter().collect::<Vec<_>>()).is_ok());
        let unknown = f(&[("cf_employee_name", "Ada"), ("cf_laptop", "14")]);
        assert_eq!(
            field_of(onboarding_fields(&form, &unknown.iter().collect::<Vec<_>>())),
            "cf_laptop"
        );
        let missing = f(&[("cf_date_of_joining", "2027-01-04")]);
        assert_eq!(
            field_of(onboarding_fields(&form, &missing.iter().collect::<Vec<_>>())),
            "cf_employee_name"
        );
    }

    #[test]
    fn the_key_tag_is_stable_and_distinct() {
        assert_eq!(
            key_tag("acme:1:itsm/ticket/laptop/0"),
            key_tag("acme:1:itsm/ticket/laptop/0")
        );
        assert_ne!(key_tag("acme:1:a"), key_tag("acme:2:a"));
        assert_eq!(key_tag("x").len(), "tenure-".len() + 16);
    }
}
