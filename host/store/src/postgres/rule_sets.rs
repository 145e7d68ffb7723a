//! Rule-set versions and the published head.

use super::jobs::release_held_in;
use super::row::RowExt;
use super::{LockPurpose, PgStore, lock_for};
use crate::*;
use sqlx::postgres::PgRow;

macro_rules! rule_set_columns {
    () => {
        "tenant, version, author, message, created_ms, tests_passed, tests, document"
    };
}

fn rule_set_row(r: &PgRow) -> StoreResult<RuleSetVersion> {
    Ok(RuleSetVersion {
        tenant: r.at(0)?,
        version: r.at(1)?,
        author: r.at(2)?,
        message: r.at(3)?,
        created_ms: r.at(4)?,
        tests_passed: r.at(5)?,
        tests: r.json(6)?.unwrap_or(serde_json::Value::Null),
        document: r.at(7)?,
    })
}

#[async_trait::async_trait]
impl RuleSetStore for PgStore {
    async fn put_rule_set(&self, new: NewRuleSet, audit: Vec<AuditRecord>) -> StoreResult<RuleSetVersion> {
        let mut w = self.begin().await?;
        // Versions of a tenant are numbered one at a time across hosts.
        lock_for(w.conn(), LockPurpose::RuleSetVersions, &new.tenant).await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(version), 0) + 1 FROM rule_set_versions WHERE tenant = $1",
        )
        .bind(&new.tenant)
        .fetch_one(w.conn())
        .await?;
        let now = w.now_ms;
        sqlx::query(
            "INSERT INTO rule_set_versions (tenant, version, document, author, message, created_ms,
                 tests_passed, tests)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&new.tenant)
        .bind(version)
        .bind(&new.document)
        .bind(&new.author)
        .bind(&new.message)
        .bind(now)
        .bind(new.tests_passed)
        .bind(new.tests.to_string())
        .execute(w.conn())
        .await?;
        for mut record in audit {
            if let serde_json::Value::Object(m) = &mut record.data {
                m.insert("version".into(), version.into());
            }
            w.audit(record);
        }
        w.commit().await?;
        Ok(RuleSetVersion {
            tenant: new.tenant,
            version,
            author: new.author,
            message: new.message,
            created_ms: now,
            tests_passed: new.tests_passed,
            tests: new.tests,
            document: new.document,
        })
    }

    async fn rule_sets(&self, tenant: &str) -> StoreResult<Vec<RuleSetVersion>> {
        sqlx::query(concat!(
            "SELECT ",
            rule_set_columns!(),
            " FROM rule_set_versions WHERE tenant = $1 ORDER BY version"
        ))
        .bind(tenant)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(rule_set_row)
        .collect()
    }

    async fn rule_set(&self, tenant: &str, version: i64) -> StoreResult<Option<RuleSetVersion>> {
        sqlx::query(concat!(
            "SELECT ",
            rule_set_columns!(),
            " FROM rule_set_versions WHERE tenant = $1 AND version = $2"
        ))
        .bind(tenant)
        .bind(version)
        .fetch_optional(self.pool())
        .await?
        .map(|r| rule_set_row(&r))
        .transpose()
    }

    async fn publish_rule_set(&self, publish: Publish) -> StoreResult<Published> {
        let Publish {
            tenant,
            version,
            actor,
            audit,
            release_held,
        } = publish;
        let mut w = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM rule_set_versions WHERE tenant = $1 AND version = $2")
            .bind(&tenant)
            .bind(version)
            .fetch_optional(w.conn())
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!("rule set version {version}")));
        }
        let now = w.now_ms;
        sqlx::query(
            "INSERT INTO rule_set_current (tenant, version, published_by, published_ms) VALUES ($1,
                $2, $3, $4)
             ON CONFLICT (tenant) DO UPDATE SET version = excluded.version,
                 published_by = excluded.published_by, published_ms = excluded.published_ms",
        )
        .bind(&tenant)
        .bind(version)
        .bind(&actor)
        .bind(now)
        .execute(w.conn())
        .await?;
        w.audit_all(audit);
        w.note(Change::RuleSet {
            tenant: tenant.clone(),
        });
        let released = match &release_held {
            Some(prefix) => release_held_in(&mut w, &tenant, prefix, &actor).await?,
            None => 0,
        };
        w.commit().await?;
        Ok(Published {
            head: RuleSetHead {
                version,
                published_by: actor,
                published_ms: now,
            },
            released,
        })
    }

    async fn current_rule_set(&self, tenant: &str) -> StoreResult<Option<RuleSetHead>> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, published_by, published_ms FROM rule_set_current WHERE tenant = $1",
        )
        .bind(tenant)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(version, published_by, published_ms)| RuleSetHead {
            version,
            published_by,
            published_ms,
        }))
    }
}
