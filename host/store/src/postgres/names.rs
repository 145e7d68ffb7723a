//! Unique-name claims: the primary key on the lower-cased value decides between hosts.

use super::PgStore;
use crate::*;

#[async_trait::async_trait]
impl NameStore for PgStore {
    async fn claim_name(
        &self,
        tenant: &str,
        attribute: &str,
        value: &str,
        person_key: &str,
    ) -> StoreResult<bool> {
        let key = value.to_lowercase();
        let mut w = self.begin().await?;
        let now = w.now_ms;
        // The claim is made, or found to be held, by the key's constraint: of two hosts
        // claiming one value at once, the second waits for the first and sees its claim.
        let claimed = sqlx::query(
            "INSERT INTO name_claims (tenant, attribute, value_key, value, person_key, claimed_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, attribute, value_key) DO NOTHING",
        )
        .bind(tenant)
        .bind(attribute)
        .bind(&key)
        .bind(value)
        .bind(person_key)
        .bind(now)
        .execute(w.conn())
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT person_key FROM name_claims WHERE tenant = $1 AND attribute = $2 AND value_key = $3",
            )
            .bind(tenant)
            .bind(attribute)
            .bind(&key)
            .fetch_optional(w.conn())
            .await?;
            w.commit().await?;
            return Ok(holder.as_deref() == Some(person_key));
        }
        // One value per person and attribute: a rename gives the old one up.
        sqlx::query(
            "DELETE FROM name_claims WHERE tenant = $1 AND attribute = $2 AND person_key = $3
               AND value_key <> $4",
        )
        .bind(tenant)
        .bind(attribute)
        .bind(person_key)
        .bind(&key)
        .execute(w.conn())
        .await?;
        w.commit().await?;
        Ok(true)
    }

    async fn claimed_name(
        &self,
        tenant: &str,
        attribute: &str,
        person_key: &str,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM name_claims WHERE tenant = $1 AND attribute = $2 AND person_key = $3",
        )
        .bind(tenant)
        .bind(attribute)
        .bind(person_key)
        .fetch_optional(self.pool())
        .await?)
    }
}
