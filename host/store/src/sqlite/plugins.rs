//! The plugin registry: versions by (name, owner, digest) and the activations log.

use super::SqliteStore;
use crate::*;
use rusqlite::{OptionalExtension, params};

/// The owner column's value for a version offered to every tenant.
const EVERYONE: &str = "";

#[async_trait::async_trait]
impl PluginStore for SqliteStore {
    async fn put_plugin_version(&self, v: NewPluginVersion) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let inserted = ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO plugin_versions (name, owner, sha256, label, kind, wit, manifest,
                             component, signer, uploaded_by, uploaded_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                         ON CONFLICT (name, owner, sha256) DO NOTHING",
                    )?
                    .execute(params![
                        v.name,
                        v.owner.as_deref().unwrap_or(EVERYONE),
                        v.sha256,
                        v.label,
                        v.kind,
                        v.wit,
                        v.manifest,
                        v.component,
                        v.signer,
                        v.uploaded_by,
                        ctx.now_ms
                    ])?
                    > 0;
                if inserted {
                    ctx.audit_all(v.audit)?;
                }
                Ok(inserted)
            })
            .await
    }

    async fn plugin_versions(&self) -> StoreResult<Vec<StoredPluginVersion>> {
        self.read(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT name, label, sha256, owner, kind, wit, signer, uploaded_by, uploaded_ms,
                         length(component), manifest
                     FROM plugin_versions ORDER BY uploaded_ms, rowid",
                )?
                .query_map([], |r| {
                    let owner: String = r.get(3)?;
                    Ok(StoredPluginVersion {
                        name: r.get(0)?,
                        label: r.get(1)?,
                        sha256: r.get(2)?,
                        owner: (owner != EVERYONE).then_some(owner),
                        kind: r.get(4)?,
                        wit: r.get(5)?,
                        signer: r.get(6)?,
                        uploaded_by: r.get(7)?,
                        uploaded_ms: r.get(8)?,
                        size_bytes: r.get(9)?,
                        manifest: r.get(10)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    async fn plugin_component(&self, name: &str, sha256: &str) -> StoreResult<Option<Vec<u8>>> {
        let (name, sha256) = (name.to_string(), sha256.to_string());
        self.read_blocking(move |c| {
            Ok(c.prepare_cached(
                "SELECT component FROM plugin_versions WHERE name = ?1 AND sha256 = ?2 LIMIT 1",
            )?
            .query_row(params![name, sha256], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    async fn activate_plugin(&self, a: NewActivation) -> StoreResult<i64> {
        self.writer
            .write(move |ctx| {
                let id = ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO plugin_activations
                             (tenant, name, label, activated_by, activated_ms, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    )?
                    .query_row(
                        params![a.tenant, a.name, a.label, a.activated_by, ctx.now_ms, a.reason],
                        |r| r.get(0),
                    )?;
                ctx.audit_all(a.audit)?;
                Ok(id)
            })
            .await
    }

    async fn plugin_activations(&self) -> StoreResult<Vec<PluginActivation>> {
        self.read(|c| {
            let rows = c
                .prepare_cached(
                    "SELECT id, tenant, name, label, activated_by, activated_ms, reason
                     FROM plugin_activations ORDER BY id",
                )?
                .query_map([], |r| {
                    Ok(PluginActivation {
                        id: r.get(0)?,
                        tenant: r.get(1)?,
                        name: r.get(2)?,
                        label: r.get(3)?,
                        activated_by: r.get(4)?,
                        activated_ms: r.get(5)?,
                        reason: r.get(6)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}
