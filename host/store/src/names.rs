//! Unique names: a value of a unique attribute (a login, a mailbox) belongs to
//! one person, claimed atomically, compared case-insensitively.

use crate::StoreResult;
use async_trait::async_trait;

/// Claims of unique attribute values.
#[async_trait]
pub trait NameStore: Send + Sync {
    /// Claims a unique value for a person (a person holds one value per attribute, so a
    /// new claim gives the old one up); false when another person holds it. Values
    /// compare case-insensitively.
    async fn claim_name(
        &self,
        tenant: &str,
        attribute: &str,
        value: &str,
        person_key: &str,
    ) -> StoreResult<bool>;
    /// The value a person holds for a unique attribute, if any.
    async fn claimed_name(
        &self,
        tenant: &str,
        attribute: &str,
        person_key: &str,
    ) -> StoreResult<Option<String>>;
}
