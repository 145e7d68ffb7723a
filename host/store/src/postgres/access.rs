//! People's accounts, sessions and run-time API tokens.

use super::PgStore;
use super::row::RowExt;
use super::write::now_ms;
use crate::*;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

macro_rules! user_columns {
    () => {
        "u.tenant, u.login, u.display_name, u.roles, u.disabled, u.failed_attempts, u.locked_until_ms, \
         u.created_ms, u.last_sign_in_ms"
    };
}

/// A person's account from the row's columns [`user_columns!`], starting at column `at`.
fn user_at(r: &PgRow, at: usize) -> StoreResult<UserRow> {
    Ok(UserRow {
        tenant: r.at(at)?,
        login: r.at(at + 1)?,
        display_name: r.at(at + 2)?,
        roles: r.json(at + 3)?.unwrap_or_default(),
        disabled: r.at(at + 4)?,
        failed_attempts: r.at(at + 5)?,
        locked_until_ms: r.at(at + 6)?,
        created_ms: r.at(at + 7)?,
        last_sign_in_ms: r.at(at + 8)?,
    })
}

fn user_row(r: &PgRow) -> StoreResult<UserRow> {
    user_at(r, 0)
}

macro_rules! token_columns {
    () => {
        "tenant, name, role, sources, created_by, created_ms, digest"
    };
}

fn digest_of(bytes: Vec<u8>) -> [u8; 32] {
    bytes.try_into().unwrap_or([0; 32])
}

fn token_row(r: &PgRow) -> StoreResult<ApiTokenRow> {
    Ok(ApiTokenRow {
        tenant: r.at(0)?,
        name: r.at(1)?,
        role: r.parsed(2)?,
        sources: r.json(3)?.unwrap_or_default(),
        created_by: r.at(4)?,
        created_ms: r.at(5)?,
        digest: digest_of(r.at(6)?),
    })
}

async fn user_in(c: &mut PgConnection, tenant: &str, login: &str) -> StoreResult<Option<UserRow>> {
    sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users u WHERE tenant = $1 AND login = $2"
    ))
    .bind(tenant)
    .bind(login)
    .fetch_optional(c)
    .await?
    .map(|r| user_row(&r))
    .transpose()
}

#[async_trait::async_trait]
impl AccessStore for PgStore {
    async fn create_user(&self, user: NewUser, audit: Vec<AuditRecord>) -> StoreResult<UserRow> {
        let mut w = self.begin().await?;
        let now = w.now_ms;
        let created = sqlx::query(
            "INSERT INTO users (tenant, login, display_name, roles, password_hash, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, login) DO NOTHING",
        )
        .bind(&user.tenant)
        .bind(&user.login)
        .bind(&user.display_name)
        .bind(serde_json::to_string(&user.roles)?)
        .bind(&user.password_hash)
        .bind(now)
        .execute(w.conn())
        .await?
        .rows_affected()
            == 1;
        if !created {
            return Err(StoreError::Conflict(format!(
                "an account named {:?} exists",
                user.login
            )));
        }
        w.audit_all(audit);
        let row = user_in(w.conn(), &user.tenant, &user.login).await?;
        w.commit().await?;
        row.ok_or_else(|| StoreError::NotFound(format!("account {}", user.login)))
    }

    async fn users(&self, tenant: &str) -> StoreResult<Vec<UserRow>> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE tenant = $1 ORDER BY login"
        ))
        .bind(tenant)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(user_row)
        .collect()
    }

    async fn user_credentials(&self, tenant: &str, login: &str) -> StoreResult<Option<UserCredentials>> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash FROM users u WHERE tenant = $1 AND login = $2"
        ))
        .bind(tenant)
        .bind(login)
        .fetch_optional(self.pool())
        .await?
        .map(|r| {
            Ok(UserCredentials {
                user: user_row(&r)?,
                password_hash: r.at(9)?,
            })
        })
        .transpose()
    }

    async fn change_user(
        &self,
        tenant: &str,
        login: &str,
        change: UserChange,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<UserRow> {
        let mut w = self.begin().await?;
        let found = sqlx::query("SELECT 1 FROM users WHERE tenant = $1 AND login = $2 FOR UPDATE")
            .bind(tenant)
            .bind(login)
            .fetch_optional(w.conn())
            .await?
            .is_some();
        if !found {
            return Err(StoreError::NotFound(format!("account {login}")));
        }
        if let Some(roles) = &change.roles {
            sqlx::query("UPDATE users SET roles = $3 WHERE tenant = $1 AND login = $2")
                .bind(tenant)
                .bind(login)
                .bind(serde_json::to_string(roles)?)
                .execute(w.conn())
                .await?;
        }
        if let Some(hash) = &change.password_hash {
            sqlx::query(
                "UPDATE users SET password_hash = $3, failed_attempts = 0, locked_until_ms = NULL
                 WHERE tenant = $1 AND login = $2",
            )
            .bind(tenant)
            .bind(login)
            .bind(hash)
            .execute(w.conn())
            .await?;
        }
        if let Some(disabled) = change.disabled {
            sqlx::query("UPDATE users SET disabled = $3 WHERE tenant = $1 AND login = $2")
                .bind(tenant)
                .bind(login)
                .bind(disabled)
                .execute(w.conn())
                .await?;
        }
        // New roles or a new password apply to the next sign-in; a disabled account
        // and a changed password end every session now.
        if change.disabled == Some(true) || change.password_hash.is_some() {
            sqlx::query("DELETE FROM sessions WHERE tenant = $1 AND login = $2")
                .bind(tenant)
                .bind(login)
                .execute(w.conn())
                .await?;
        }
        w.audit_all(audit);
        let row = user_in(w.conn(), tenant, login).await?;
        w.commit().await?;
        row.ok_or_else(|| StoreError::NotFound(format!("account {login}")))
    }

    async fn sign_in_failed(
        &self,
        tenant: &str,
        login: &str,
        policy: LockoutPolicy,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<i64>> {
        let mut w = self.begin().await?;
        w.audit_all(audit);
        let failures: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET failed_attempts = failed_attempts + 1
             WHERE tenant = $1 AND login = $2 RETURNING failed_attempts",
        )
        .bind(tenant)
        .bind(login)
        .fetch_optional(w.conn())
        .await?;
        if failures.is_none_or(|n| n < policy.max_failures) {
            w.commit().await?;
            return Ok(None);
        }
        let until = w.now_ms + policy.lock_ms;
        sqlx::query(
            "UPDATE users SET failed_attempts = 0, locked_until_ms = $3 WHERE tenant = $1 AND login = $2",
        )
        .bind(tenant)
        .bind(login)
        .bind(until)
        .execute(w.conn())
        .await?;
        let mut locked = AuditRecord::new(tenant, AuditKind::AuthLocked, login);
        locked.data = serde_json::json!({ "login": login, "until_ms": until });
        w.audit(locked);
        w.commit().await?;
        Ok(Some(until))
    }

    async fn sign_in_succeeded(&self, session: NewSession, audit: Vec<AuditRecord>) -> StoreResult<()> {
        let mut w = self.begin().await?;
        let now = w.now_ms;
        sqlx::query(
            "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL, last_sign_in_ms = $3
             WHERE tenant = $1 AND login = $2",
        )
        .bind(&session.tenant)
        .bind(&session.login)
        .bind(now)
        .execute(w.conn())
        .await?;
        // Sessions that ended by time go when their owner signs in again.
        sqlx::query("DELETE FROM sessions WHERE tenant = $1 AND login = $2 AND expires_ms <= $3")
            .bind(&session.tenant)
            .bind(&session.login)
            .bind(now)
            .execute(w.conn())
            .await?;
        sqlx::query(
            "INSERT INTO sessions (digest, tenant, login, csrf_digest, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.digest[..])
        .bind(&session.tenant)
        .bind(&session.login)
        .bind(&session.csrf_digest[..])
        .bind(now)
        .bind(session.expires_ms)
        .execute(w.conn())
        .await?;
        w.audit_all(audit);
        w.commit().await
    }

    async fn session(&self, digest: [u8; 32]) -> StoreResult<Option<SessionRow>> {
        let row = sqlx::query(concat!(
            "SELECT s.csrf_digest, s.expires_ms, ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.tenant = s.tenant AND u.login = s.login
              WHERE s.digest = $1 AND s.expires_ms > $2 AND NOT u.disabled"
        ))
        .bind(&digest[..])
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRow {
            user: user_at(&r, 2)?,
            csrf_digest: digest_of(r.at(0)?),
            expires_ms: r.at(1)?,
        }))
    }

    async fn end_session(&self, digest: [u8; 32], audit: Vec<AuditRecord>) -> StoreResult<bool> {
        let mut w = self.begin().await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE digest = $1")
            .bind(&digest[..])
            .execute(w.conn())
            .await?
            .rows_affected()
            > 0;
        if ended {
            w.audit_all(audit);
        }
        w.commit().await?;
        Ok(ended)
    }

    async fn create_api_token(
        &self,
        token: ApiTokenRow,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<ApiTokenRow> {
        let mut w = self.begin().await?;
        let now = w.now_ms;
        let created = sqlx::query(
            "INSERT INTO api_tokens (tenant, name, role, sources, digest, created_by, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, name) DO NOTHING",
        )
        .bind(&token.tenant)
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(serde_json::to_string(&token.sources)?)
        .bind(&token.digest[..])
        .bind(&token.created_by)
        .bind(now)
        .execute(w.conn())
        .await?
        .rows_affected()
            == 1;
        if !created {
            return Err(StoreError::Conflict(format!(
                "a token named {:?} exists",
                token.name
            )));
        }
        w.audit_all(audit);
        w.commit().await?;
        Ok(ApiTokenRow {
            created_ms: now,
            ..token
        })
    }

    async fn api_tokens(&self, tenant: &str) -> StoreResult<Vec<ApiTokenRow>> {
        sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE tenant = $1 ORDER BY name"
        ))
        .bind(tenant)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(token_row)
        .collect()
    }

    async fn api_token_by_digest(&self, digest: [u8; 32]) -> StoreResult<Option<ApiTokenRow>> {
        sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE digest = $1"
        ))
        .bind(&digest[..])
        .fetch_optional(self.pool())
        .await?
        .map(|r| token_row(&r))
        .transpose()
    }

    async fn revoke_api_token(&self, tenant: &str, name: &str, audit: Vec<AuditRecord>) -> StoreResult<bool> {
        let mut w = self.begin().await?;
        let revoked = sqlx::query("DELETE FROM api_tokens WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(w.conn())
            .await?
            .rows_affected()
            > 0;
        if revoked {
            w.audit_all(audit);
        }
        w.commit().await?;
        Ok(revoked)
    }
}
