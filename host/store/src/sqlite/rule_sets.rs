//! Rule-set versions and the published head.

use super::SqliteStore;
use super::jobs::release_held_in;
use crate::*;
use rusqlite::{OptionalExtension, Row, params};

const RULE_SET_COLUMNS: &str = "tenant, version, author, message, created_ms, tests_passed, tests, document";

fn rule_set_row(r: &Row<'_>) -> rusqlite::Result<RuleSetVersion> {
    let tests: String = r.get(6)?;
    Ok(RuleSetVersion {
        tenant: r.get(0)?,
        version: r.get(1)?,
        author: r.get(2)?,
        message: r.get(3)?,
        created_ms: r.get(4)?,
        tests_passed: r.get(5)?,
        tests: serde_json::from_str(&tests).unwrap_or(serde_json::Value::Null),
        document: r.get(7)?,
    })
}

#[async_trait::async_trait]
impl RuleSetStore for SqliteStore {
    async fn put_rule_set(&self, new: NewRuleSet, audit: Vec<AuditRecord>) -> StoreResult<RuleSetVersion> {
        self.writer
            .write(move |ctx| {
                let version: i64 = ctx
                    .conn
                    .prepare_cached(
                        "SELECT coalesce(max(version), 0) + 1 FROM rule_set_versions WHERE \
                        tenant = ?1",
                    )?
                    .query_row([&new.tenant], |r| r.get(0))?;
                let tests = new.tests.to_string();
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO rule_set_versions (tenant, version, document, author, message, \
                            created_ms, tests_passed, tests)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        new.tenant,
                        version,
                        new.document,
                        new.author,
                        new.message,
                        ctx.now_ms,
                        new.tests_passed,
                        tests
                    ])?;
                for mut record in audit {
                    if let serde_json::Value::Object(m) = &mut record.data {
                        m.insert("version".into(), version.into());
                    }
                    ctx.audit(record)?;
                }
                Ok(RuleSetVersion {
                    tenant: new.tenant,
                    version,
                    author: new.author,
                    message: new.message,
                    created_ms: ctx.now_ms,
                    tests_passed: new.tests_passed,
                    tests: new.tests,
                    document: new.document,
                })
            })
            .await
    }

    async fn rule_sets(&self, tenant: &str) -> StoreResult<Vec<RuleSetVersion>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {RULE_SET_COLUMNS} FROM rule_set_versions WHERE tenant = ?1 ORDER BY version"
            ))?
            .query_map([tenant], rule_set_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn rule_set(&self, tenant: &str, version: i64) -> StoreResult<Option<RuleSetVersion>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {RULE_SET_COLUMNS} FROM rule_set_versions WHERE tenant = ?1 AND version = ?2"
            ))?
            .query_row(params![tenant, version], rule_set_row)
            .optional()?)
        })
    }

    async fn publish_rule_set(&self, publish: Publish) -> StoreResult<Published> {
        self.writer
            .write(move |ctx| {
                let Publish {
                    tenant,
                    version,
                    actor,
                    audit,
                    release_held,
                } = publish;
                let exists: Option<i64> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT version FROM rule_set_versions WHERE tenant = ?1 AND version = \
                        ?2",
                    )?
                    .query_row(params![tenant, version], |r| r.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("rule set version {version}")));
                }
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO rule_set_current (tenant, version, published_by, published_ms) VALUES \
                            (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant) DO UPDATE SET version = excluded.version,
                             published_by = excluded.published_by, published_ms = excluded.published_ms",
                    )?
                    .execute(params![tenant, version, actor, ctx.now_ms])?;
                ctx.audit_all(audit)?;
                let released = match &release_held {
                    Some(prefix) => release_held_in(ctx, &tenant, prefix, &actor)?,
                    None => 0,
                };
                Ok(Published {
                    head: RuleSetHead {
                        version,
                        published_by: actor,
                        published_ms: ctx.now_ms,
                    },
                    released,
                })
            })
            .await
    }

    async fn current_rule_set(&self, tenant: &str) -> StoreResult<Option<RuleSetHead>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT version, published_by, published_ms FROM rule_set_current WHERE tenant = ?1",
            )?
            .query_row([tenant], |r| {
                Ok(RuleSetHead {
                    version: r.get(0)?,
                    published_by: r.get(1)?,
                    published_ms: r.get(2)?,
                })
            })
            .optional()?)
        })
    }
}
