//! Attribute names the host uses in `update` operations for fields that have no
//! operation of their own. A connector that cannot keep one ignores it (and says
//! so in the outcome's summary) rather than failing.

/// The account's expiry date (`YYYY-MM-DD`, absent to clear): AD's accountExpires.
pub const EXPIRES_AT: &str = "expires-at";
/// The full list of licenses the account should hold.
pub const LICENSES: &str = "licenses";
/// The full list of app assignments the account should hold.
pub const APP_ASSIGNMENTS: &str = "app-assignments";
