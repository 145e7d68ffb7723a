//! `servicenow`: ServiceNow as a Tenure ticket desk (its only operation is `open-ticket`).
//!
//! Requests go through the host's HTTP capability on the connection `servicenow` (its URL is
//! the instance, `https://acme.service-now.com`; the host attaches Basic credentials or
//! fetches an OAuth client-credentials token). The plugin never sees a credential.
//!
//! A rule set's ticket is the template: its fields say what to open.
//! - With `catalog_item` (a catalog item's sys_id): a catalog request through
//!   `order_now`, for `requested_for` (a sys_id, or a user's email or user name, looked up in
//!   `sys_user`), with every `variables.<name>` field as the item's variable; the request is
//!   then marked with the host's ticket key in `correlation_id`. `order_now` takes no key of
//!   its own, so an order whose answer was lost is found another way: a later attempt that
//!   finds no marked request adopts an unmarked one for the same item and person ordered in
//!   the last `adopt_unmarked_hours` (24 by default; 0 turns it off) and marks it, instead of
//!   ordering again (a failed mark is reported in the summary, never retried).
//! - Otherwise a record in `table` (default: the `table` setting, `incident`), every other
//!   field a column (`short_description`, `caller_id`, `assignment_group`, ...); reference
//!   columns take display values unless `display_values = false`; `correlation_id` holds
//!   the host's ticket key.
//!
//! The host's ticket key is looked up before anything is opened, so a retry whose answer
//! was lost finds the ticket instead of opening a second one. The outcome's anchor is the
//! ticket's number (`INC0010001`, `REQ0010001`); the summary carries its link when
//! `console_url` is set.

pub mod client;

use client::{result, send};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::http::encode;
use tenure_sdk::prelude::*;
use tenure_sdk::reserved;

/// What `correlation_display` says opened the record.
const CORRELATION_DISPLAY: &str = "Tenure";

/// `[...plugins.servicenow.settings]`, as the tenant writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The table tickets open in when the template names none.
    #[serde(default = "default_table")]
    table: String,
    /// Set reference fields by display value (`sysparm_input_display_value`).
    #[serde(default = "yes")]
    display_values: bool,
    /// The instance's UI root, for links in summaries (`https://acme.service-now.com`).
    #[serde(default)]
    console_url: Option<String>,
    /// How far back an unmarked catalog request for the same item and person is taken as an
    /// earlier attempt's order whose answer was lost (0: never).
    #[serde(default = "default_adopt_hours")]
    adopt_unmarked_hours: u32,
}

fn default_adopt_hours() -> u32 {
    24
}

fn default_table() -> String {
    "incident".into()
}

fn yes() -> bool {
    true
}

/// What a ticket template asks for, read from its fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// A record in a table (an incident by default).
    Record {
        table: String,
        columns: Map<String, Json>,
    },
    /// A catalog item ordered for someone.
    Catalog {
        item: String,
        requested_for: String,
        quantity: u32,
        variables: Map<String, Json>,
    },
}

/// Reads a ticket's fields (the host's key set aside) into what to open.
pub fn request_of(default_table: &str, fields: &[&(String, String)]) -> Result<Request, PluginError> {
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let name_ok = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if let Some(item) = field("catalog_item") {
        if !is_sys_id(&item) {
            return Err(invalid_input(
                "catalog_item",
                format!("{item:?} is not a sys_id (32 hexadecimal characters)"),
            ));
        }
        let requested_for = field("requested_for")
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| invalid_input("requested_for", "a catalog request needs the person it is for"))?;
        let quantity =
            match field("quantity") {
                None => 1,
                Some(q) => q.trim().parse::<u32>().ok().filter(|q| *q > 0).ok_or_else(|| {
                    invalid_input("quantity", format!("{q:?} is not a positive whole number"))
                })?,
            };
        let mut variables = Map::new();
        for (name, value) in fields {
            match name.strip_prefix("variables.") {
                Some(v) if name_ok(v) => {
                    variables.insert(v.to_string(), Json::String(value.clone()));
                }
                Some(v) => {
                    return Err(invalid_input(
                        name.as_str(),
                        format!("{v:?} is not a variable name"),
                    ));
                }
                None if ["catalog_item", "requested_for", "quantity"].contains(&name.as_str()) => {}
                None => {
                    return Err(invalid_input(
                        name.as_str(),
                        "a catalog request takes catalog_item, requested_for, quantity and variables.<name>",
                    ));
                }
            }
        }
        return Ok(Request::Catalog {
            item,
            requested_for,
            quantity,
            variables,
        });
    }
    let table = field("table").unwrap_or_else(|| default_table.to_string());
    if !name_ok(&table) {
        return Err(invalid_input("table", format!("{table:?} is not a table name")));
    }
    let mut columns = Map::new();
    for (name, value) in fields.iter().filter(|(n, _)| n != "table") {
        if !name_ok(name) {
            return Err(invalid_input(name.as_str(), "not a column name"));
        }
        if name == "correlation_id" || name == "correlation_display" {
            return Err(invalid_input(
                name.as_str(),
                "set by the connector (the host's ticket key); rules cannot set it",
            ));
        }
        columns.insert(name.clone(), Json::String(value.clone()));
    }
    if !columns.contains_key("short_description") {
        return Err(invalid_input(
            "short_description",
            "a ticket needs a short description",
        ));
    }
    Ok(Request::Record { table, columns })
}

/// Whether `s` is a ServiceNow sys_id.
fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The first record of `table` matching `query` (an encoded query), its sys_id and number.
fn find_one(table: &str, query: &str) -> Result<Option<(String, String)>, PluginError> {
    let path = format!(
        "/api/now/table/{table}?sysparm_query={}&sysparm_fields=sys_id,number&sysparm_limit=1",
        encode(query)
    );
    let found = result(&send("GET", &path, None, &[])?)?;
    Ok(found.as_array().and_then(|a| a.first()).map(|r| {
        let text = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        (text("sys_id"), text("number"))
    }))
}

/// A value ServiceNow would read as more than one condition of an encoded query.
fn query_safe(field: &str, value: &str) -> Result<(), PluginError> {
    if value.contains('^') || value.contains('\n') {
        return Err(invalid_input(field, "cannot contain ^ or a line break"));
    }
    Ok(())
}

/// The table a ticket number's prefix names.
fn table_of(number: &str) -> Option<&'static str> {
    let prefix: String = number.chars().take_while(char::is_ascii_alphabetic).collect();
    Some(match prefix.as_str() {
        "INC" => "incident",
        "REQ" => "sc_request",
        "RITM" => "sc_req_item",
        "SCTASK" => "sc_task",
        _ => return None,
    })
}

/// Marks a catalog request with the host's ticket key; why it could not, if it could not.
fn mark(request_id: &str, key: &str) -> Option<String> {
    send(
        "PATCH",
        &format!(
            "/api/now/table/sc_request/{}?sysparm_fields=sys_id",
            encode(request_id)
        ),
        Some(&json!({ "correlation_id": key, "correlation_display": CORRELATION_DISPLAY })),
        &[],
    )
    .err()
    .map(|e| format!("; not marked with the ticket key ({e:?})"))
}

struct ServiceNow {
    settings: Settings,
}

impl ServiceNow {
    fn link(&self, table: &str, sys_id: &str) -> String {
        match &self.settings.console_url {
            Some(root) => format!(
                " {}/nav_to.do?uri={}",
                root.trim_end_matches('/'),
                encode(&format!("{table}.do?sys_id={sys_id}"))
            ),
            None => String::new(),
        }
    }

    fn found(&self, table: &str, template: &str, (sys_id, number): (String, String)) -> Outcome {
        Outcome::created(
            number.clone(),
            format!(
                "found {number} ({template}), opened by an earlier attempt{}",
                self.link(table, &sys_id)
            ),
        )
    }

    fn open_record(
        &self,
        template: &str,
        key: Option<&str>,
        table: &str,
        mut columns: Map<String, Json>,
    ) -> Result<Outcome, PluginError> {
        if let Some(key) = key {
            if let Some(found) = find_one(table, &format!("correlation_id={key}"))? {
                return Ok(self.found(table, template, found));
            }
            columns.insert("correlation_id".into(), Json::String(key.into()));
            columns.insert(
                "correlation_display".into(),
                Json::String(CORRELATION_DISPLAY.into()),
            );
        }
        let path = format!(
            "/api/now/table/{table}?sysparm_input_display_value={}&sysparm_fields=sys_id,number",
            self.settings.display_values
        );
        let record = result(&send("POST", &path, Some(&Json::Object(columns)), &[])?)?;
        let text = |k: &str| record.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let (sys_id, number) = (text("sys_id"), text("number"));
        if sys_id.is_empty() {
            return Err(PluginError::Permanent(format!(
                "ServiceNow opened a {table} record but returned no sys_id"
            )));
        }
        let number = if number.is_empty() { sys_id.clone() } else { number };
        Ok(Outcome::created(
            number.clone(),
            format!(
                "opened {table} {number} ({template}){}",
                self.link(table, &sys_id)
            ),
        ))
    }

    /// The sys_id of the user a catalog request is for.
    fn user(&self, who: &str) -> Result<String, PluginError> {
        if is_sys_id(who) {
            return Ok(who.to_string());
        }
        query_safe("requested_for", who)?;
        let column = if who.contains('@') { "email" } else { "user_name" };
        match find_one("sys_user", &format!("{column}={who}"))? {
            Some((sys_id, _)) if !sys_id.is_empty() => Ok(sys_id),
            _ => Err(invalid_input(
                "requested_for",
                format!("no ServiceNow user has the {column} {who:?}"),
            )),
        }
    }

    /// A catalog request for `item` and `user` that no attempt marked, ordered within the
    /// adoption window: an earlier attempt's order whose answer was lost.
    fn unmarked_order(&self, item: &str, user: &str) -> Result<Option<(String, String)>, PluginError> {
        let hours = self.settings.adopt_unmarked_hours;
        if hours == 0 {
            return Ok(None);
        }
        query_safe("requested_for", user)?;
        let query = format!(
            "cat_item={item}^requested_for={user}^request.correlation_idISEMPTY\
                ^sys_created_on>=javascript:gs.hoursAgoStart({hours})"
        );
        let path = format!(
            "/api/now/table/sc_req_item?sysparm_query={}&sysparm_fields=request&sysparm_limit=1",
            encode(&query)
        );
        let found = result(&send("GET", &path, None, &[])?)?;
        let request = found
            .as_array()
            .and_then(|a| a.first())
            .and_then(|r| r.get("request"))
            .and_then(|r| r.as_str().or_else(|| r.get("value").and_then(Json::as_str)))
            .filter(|id| is_sys_id(id));
        match request {
            Some(id) => find_one("sc_request", &format!("sys_id={id}")),
            None => Ok(None),
        }
    }

    /// Takes an unmarked request as this ticket's, and marks it.
    fn adopt(&self, template: &str, key: &str, (sys_id, number): (String, String)) -> Outcome {
        let unmarked = mark(&sys_id, key);
        Outcome::created(
            number.clone(),
            format!(
                "adopted {number} ({template}): ordered by an earlier attempt whose answer was lost{}{}",
                self.link("sc_request", &sys_id),
                unmarked.unwrap_or_default()
            ),
        )
    }

    fn order(
        &self,
        template: &str,
        key: Option<&str>,
        item: &str,
        requested_for: &str,
        quantity: u32,
        variables: Map<String, Json>,
    ) -> Result<Outcome, PluginError> {
        if let Some(key) = key
            && let Some(found) = find_one("sc_request", &format!("correlation_id={key}"))?
        {
            return Ok(self.found("sc_request", template, found));
        }
        let user = self.user(requested_for)?;
        if let Some(key) = key
            && let Some(adopted) = self.unmarked_order(item, &user)?
        {
            return Ok(self.adopt(template, key, adopted));
        }
        let body = json!({
            "sysparm_quantity": quantity.to_string(),
            "sysparm_requested_for": user,
            "variables": variables,
        });
        let path = format!("/api/sn_sc/servicecatalog/items/{}/order_now", encode(item));
        let ordered = result(&send("POST", &path, Some(&body), &[])?)?;
        let text = |k: &str| ordered.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let request_id = match text("request_id") {
            id if id.is_empty() => text("sys_id"),
            id => id,
        };
        let number = match text("request_number") {
            n if n.is_empty() => text("number"),
            n => n,
        };
        if request_id.is_empty() || number.is_empty() {
            return Err(PluginError::Permanent(
                "ServiceNow took the order but returned no request number".into(),
            ));
        }
        // Marks the request so that a later attempt finds it (order_now takes no key). The
        // order stands even when the mark fails: failing now would order a second time.
        let unmarked = key.and_then(|key| mark(&request_id, key));
        Ok(Outcome::created(
            number.clone(),
            format!(
                "ordered catalog item {item} as {number} ({template}){}{}",
                self.link("sc_request", &request_id),
                unmarked.unwrap_or_default()
            ),
        ))
    }
}

impl Connector for ServiceNow {
    type Settings = Settings;
    const OPERATIONS: &'static [OperationKind] = &[OperationKind::OpenTicket];
    /// Its tickets can be followed (looked up by number).
    const MATCHING_KEYS: &'static [&'static str] = &[reserved::TICKET_NUMBER];

    fn new(settings: Settings) -> Result<Self, PluginError> {
        if !settings
            .table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid_input("settings.table", "not a table name"));
        }
        if let Some(url) = &settings.console_url
            && !url.starts_with("https://")
            && !url.starts_with("http://")
        {
            return Err(invalid_input("settings.console_url", "must be an http(s) URL"));
        }
        Ok(ServiceNow { settings })
    }

    /// A ticket by its number, in the table its prefix names (`INC`, `REQ`, `RITM`, `SCTASK`;
    /// others in the `table` setting): open while ServiceNow keeps it `active`.
    fn ticket_state(&mut self, number: String) -> Result<Option<reserved::TicketState>, PluginError> {
        query_safe("ticket", &number)?;
        let table = table_of(&number).unwrap_or(&self.settings.table);
        let path = format!(
            "/api/now/table/{table}?sysparm_query={}&sysparm_fields=number,state,active&\
                sysparm_display_value=true&sysparm_limit=1",
            encode(&format!("number={number}"))
        );
        let found = result(&send("GET", &path, None, &[])?)?;
        Ok(found.as_array().and_then(|a| a.first()).map(|r| {
            let text = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or("").to_string();
            reserved::TicketState {
                open: text("active") != "false",
                state: text("state"),
            }
        }))
    }

    /// A ticket desk holds no accounts (the host only looks tickets up, by number).
    fn lookup(&mut self, _keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        Ok(vec![])
    }

    fn open_ticket(&mut self, ticket: Ticket) -> Result<Outcome, PluginError> {
        let (key, fields) = reserved::ticket_key(&ticket.fields);
        if let Some(key) = key {
            query_safe(reserved::TICKET_KEY, key)?;
        }
        match request_of(&self.settings.table, &fields)? {
            Request::Record { table, columns } => self.open_record(&ticket.template, key, &table, columns),
            Request::Catalog {
                item,
                requested_for,
                quantity,
                variables,
            } => self.order(&ticket.template, key, &item, &requested_for, quantity, variables),
        }
    }
}

tenure_sdk::connector_plugin!(ServiceNow);

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(pairs: &[(&str, &str)]) -> Result<Request, PluginError> {
        let f = fields(pairs);
        request_of("incident", &f.iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_template_reads_as_a_record_or_an_order() {
        match read(&[
            ("short_description", "Laptop"),
            ("assignment_group", "Service Desk"),
        ]) {
            Ok(Request::Record { table, columns }) => {
                assert_eq!(table, "incident");
                assert_eq!(columns["assignment_group"], "Service Desk");
            }
            other => panic!("{other:?}"),
        }
        let item = "0123456789abcdef0123456789abcdef";
        match read(&[
            ("catalog_item", item),
            ("requested_for", "ada@example.test"),
            ("variables.laptop_model", "14-inch"),
        ]) {
            Ok(Request::Catalog {
                requested_for,
                quantity,
                variables,
                ..
            }) => {
                assert_eq!((requested_for.as_str(), quantity), ("ada@example.test", 1));
                assert_eq!(variables["laptop_model"], "14-inch");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_templates_name_the_field() {
        let field = |r: Result<Request, PluginError>| match r {
            Err(PluginError::InvalidInput(i)) => i.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(read(&[("description", "x")])), "short_description");
        assert_eq!(
            field(read(&[("short_description", "x"), ("table", "inc;drop")])),
            "table"
        );
        assert_eq!(
            field(read(&[("short_description", "x"), ("correlation_id", "mine")])),
            "correlation_id"
        );
        assert_eq!(field(read(&[("catalog_item", "laptop")])), "catalog_item");
        let item = "0123456789abcdef0123456789abcdef";
        assert_eq!(field(read(&[("catalog_item", item)])), "requested_for");
        assert_eq!(
            field(read(&[
                ("catalog_item", item),
                ("requested_for", "x"),
                ("quantity", "0")
            ])),
            "quantity"
        );
        assert_eq!(
            field(read(&[
                ("catalog_item", item),
                ("requested_for", "x"),
                ("urgency", "1")
            ])),
            "urgency"
        );
        assert!(query_safe("requested_for", "a^ORemail=b").is_err());
    }
}
