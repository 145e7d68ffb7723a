//! The plugin registry: versions by (name, owner, digest) and the activations log.

use super::PgStore;
use super::row::RowExt;
use crate::*;

/// The owner column's value for a version offered to every tenant.
const EVERYONE: &str = "";

#[async_trait::async_trait]
impl PluginStore for PgStore {
    async fn put_plugin_version(&self, v: NewPluginVersion) -> StoreResult<bool> {
        let mut w = self.begin().await?;
        let now = w.now_ms;
        let inserted = sqlx::query(
            "INSERT INTO plugin_versions (name, owner, sha256, label, kind, wit, manifest, component, signer,
                 uploaded_by, uploaded_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (name, owner, sha256) DO NOTHING",
        )
        .bind(&v.name)
        .bind(v.owner.as_deref().unwrap_or(EVERYONE))
        .bind(&v.sha256)
        .bind(&v.label)
        .bind(v.kind.as_str())
        .bind(&v.wit)
        .bind(&v.manifest)
        .bind(&v.component)
        .bind(&v.signer)
        .bind(&v.uploaded_by)
        .bind(now)
        .execute(w.conn())
        .await?
        .rows_affected()
            > 0;
        if inserted {
            w.audit_all(v.audit);
        }
        w.commit().await?;
        Ok(inserted)
    }

    async fn plugin_versions(&self) -> StoreResult<Vec<StoredPluginVersion>> {
        sqlx::query(
            "SELECT name, label, sha256, owner, kind, wit, signer, uploaded_by, uploaded_ms,
                 octet_length(component)::bigint, manifest
             FROM plugin_versions ORDER BY uploaded_ms, id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            let owner: String = r.at(3)?;
            Ok(StoredPluginVersion {
                name: r.at(0)?,
                label: r.at(1)?,
                sha256: r.at(2)?,
                owner: (owner != EVERYONE).then_some(owner),
                kind: r.parsed(4)?,
                wit: r.at(5)?,
                signer: r.at(6)?,
                uploaded_by: r.at(7)?,
                uploaded_ms: r.at(8)?,
                size_bytes: r.at(9)?,
                manifest: r.at(10)?,
            })
        })
        .collect()
    }

    async fn plugin_component(&self, name: &str, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT component FROM plugin_versions WHERE name = $1 AND sha256 = $2 LIMIT 1",
        )
        .bind(name)
        .bind(sha256)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn activate_plugin(&self, a: NewActivation) -> StoreResult<i64> {
        let mut w = self.begin().await?;
        let now = w.now_ms;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO plugin_activations (tenant, name, label, activated_by, activated_ms, reason)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&a.tenant)
        .bind(&a.name)
        .bind(&a.label)
        .bind(&a.activated_by)
        .bind(now)
        .bind(&a.reason)
        .fetch_one(w.conn())
        .await?;
        w.audit_all(a.audit);
        w.note(Change::Plugins);
        w.commit().await?;
        Ok(id)
    }

    async fn plugin_activations(&self) -> StoreResult<Vec<PluginActivation>> {
        sqlx::query(
            "SELECT id, tenant, name, label, activated_by, activated_ms, reason FROM
                plugin_activations ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(PluginActivation {
                id: r.at(0)?,
                tenant: r.at(1)?,
                name: r.at(2)?,
                label: r.at(3)?,
                activated_by: r.at(4)?,
                activated_ms: r.at(5)?,
                reason: r.at(6)?,
            })
        })
        .collect()
    }
}
