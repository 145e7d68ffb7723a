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
