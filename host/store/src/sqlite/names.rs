//! Unique-name claims.

use super::SqliteStore;
use crate::*;
use rusqlite::{OptionalExtension, params};

#[async_trait::async_trait]
impl NameStore for SqliteStore {
    async fn claim_name(
        &self,
        tenant: &str,
        attribute: &str,
        value: &str,
        person_key: &str,
    ) -> StoreResult<bool> {
        let (tenant, attribute, value, person_key) = (
            tenant.to_string(),
            attribute.to_string(),
            value.to_string(),
            person_key.to_string(),
        );
        self.writer
            .write(move |ctx| {
                let key = value.to_lowercase();
                let holder: Option<String> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT person_key FROM name_claims WHERE tenant = ?1 AND attribute = ?2 AND \
                            value_key = ?3",
                    )?
                    .query_row(params![tenant, attribute, key], |r| r.get(0))
                    .optional()?;
                match holder {
                    Some(h) if h != person_key => return Ok(false),
                    Some(_) => return Ok(true),
                    None => {}
                }
                // One value per person and attribute: a rename gives the old one up.
                ctx.conn
                    .prepare_cached(
                        "DELETE FROM name_claims WHERE tenant = ?1 AND attribute = ?2 AND \
                        person_key = ?3",
                    )?
                    .execute(params![tenant, attribute, person_key])?;
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO name_claims (tenant, attribute, value_key, value, person_key, claimed_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![tenant, attribute, key, value, person_key, ctx.now_ms])?;
                Ok(true)
            })
            .await
    }

    async fn claimed_name(
        &self,
        tenant: &str,
        attribute: &str,
        person_key: &str,
    ) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT value FROM name_claims WHERE tenant = ?1 AND attribute = ?2 AND person_key = ?3",
            )?
            .query_row(params![tenant, attribute, person_key], |r| r.get(0))
            .optional()?)
        })
    }
}
