//! Attribute names the host uses in `update` operations for fields that have no
//! operation of their own. A connector that cannot keep one ignores it (and says
//! so in the outcome's summary) rather than failing.

/// The account's expiry date (`YYYY-MM-DD`, absent to clear): AD's accountExpires.
pub const EXPIRES_AT: &str = "expires-at";
/// The full list of licenses the account should hold.
pub const LICENSES: &str = "licenses";
/// The full list of app assignments the account should hold.
pub const APP_ASSIGNMENTS: &str = "app-assignments";

/// The ticket field the host adds to every ticket it asks for: the same on every attempt,
/// so a connector that lost an answer can find the ticket it opened instead of opening a
/// second one (ServiceNow's `correlation_id`, a Freshservice tag). Not a field of the desk.
pub const TICKET_KEY: &str = "tenure-ticket-key";

/// The key the host gave a ticket, and its other fields.
pub fn ticket_key(fields: &[(String, String)]) -> (Option<&str>, Vec<&(String, String)>) {
    let key = fields
        .iter()
        .find(|(n, _)| n == TICKET_KEY)
        .map(|(_, v)| v.as_str());
    (key, fields.iter().filter(|(n, _)| n != TICKET_KEY).collect())
}

/// The key the host looks a ticket up by, to follow it (hold a leaver's steps until it is
/// closed). A desk that can be followed lists it among its matching keys and implements
/// [`Connector::ticket_state`](crate::Connector::ticket_state); the SDK answers the lookup
/// with the ticket as an account ([`TicketState::into_account`]), or none when the desk has
/// no such ticket.
pub const TICKET_NUMBER: &str = "tenure-ticket-number";
/// The attribute that carries the desk's own word for a followed ticket's state.
pub const TICKET_STATE: &str = "ticket-state";

/// Where a ticket stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    /// Still being worked on (not resolved, closed or cancelled).
    pub open: bool,
    /// The desk's own word for it (`In Progress`, `Closed`), for the audit.
    pub state: String,
}

impl TicketState {
    /// The ticket as the host reads a lookup's answer: its number as the anchor, open as
    /// `enabled`, the desk's state as [`TICKET_STATE`].
    pub fn into_account(self, number: &str) -> crate::types::Account {
        crate::types::Account {
            anchor: number.to_string(),
            attributes: vec![crate::types::Attribute {
                name: TICKET_STATE.into(),
                value: crate::types::Value::Text(self.state),
            }],
            container: None,
            groups: vec![],
            licenses: vec![],
            app_assignments: vec![],
            enabled: self.open,
            expires_at: None,
        }
    }
}

/// The ticket number a lookup asks for, when it is the host following a ticket.
pub fn ticket_number(keys: &[crate::types::MatchKey]) -> Option<&str> {
    match keys {
        [key] if key.attribute == TICKET_NUMBER => Some(key.value.as_str()),
        _ => None,
    }
}

/// The key the host looks a ticket template up by when a rule set is published, to have the
/// desk check it before any person meets it. A desk that checks templates lists it among its
/// matching keys and implements [`Connector::check_ticket`](crate::Connector::check_ticket); the
/// key's value is the template as JSON (`{"template": ..., "fields": [[name, value], ...]}`,
/// values that hold `${...}` are expressions, known only per person). The answer is no account,
/// or the error that names the field.
pub const TICKET_CHECK: &str = "tenure-ticket-check";

/// Whether `key` is one the host uses for tickets (never an account attribute).
pub fn is_ticket_key(key: &str) -> bool {
    key == TICKET_NUMBER || key == TICKET_CHECK
}

/// The ticket template a lookup asks to check, when it is the host publishing a rule set.
pub fn ticket_check(
    keys: &[crate::types::MatchKey],
) -> Option<Result<crate::types::Ticket, crate::types::PluginError>> {
    let [key] = keys else { return None };
    if key.attribute != TICKET_CHECK {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Template {
        template: String,
        #[serde(default)]
        fields: Vec<(String, String)>,
    }
    Some(
        serde_json::from_str::<Template>(&key.value)
            .map(|t| crate::types::Ticket {
                template: t.template,
                fields: t.fields,
            })
            .map_err(|e| crate::errors::invalid_input(TICKET_CHECK, format!("not a ticket template: {e}"))),
    )
}

/// Whether a template field's value is an expression (known only per person).
pub fn is_expression(value: &str) -> bool {
    value.contains("${")
}
