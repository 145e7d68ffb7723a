//! People's accounts, sessions and run-time API tokens.

use super::SqliteStore;
use super::writer::now_ms;
use crate::*;
use rusqlite::{OptionalExtension, Row, params};

const USER_COLUMNS: &str = "tenant, login, display_name, roles, disabled, failed_attempts, locked_until_ms, \
    created_ms, last_sign_in_ms";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let roles: String = r.get(3)?;
    Ok(UserRow {
        tenant: r.get(0)?,
        login: r.get(1)?,
        display_name: r.get(2)?,
        roles: serde_json::from_str(&roles).unwrap_or_default(),
        disabled: r.get(4)?,
        failed_attempts: r.get(5)?,
        locked_until_ms: r.get(6)?,
        created_ms: r.get(7)?,
        last_sign_in_ms: r.get(8)?,
    })
}

const TOKEN_COLUMNS: &str = "tenant, name, role, sources, created_by, created_ms, digest";

fn token_row(r: &Row<'_>) -> rusqlite::Result<ApiTokenRow> {
    let role: String = r.get(2)?;
    let sources: String = r.get(3)?;
    let digest: Vec<u8> = r.get(6)?;
    Ok(ApiTokenRow {
        tenant: r.get(0)?,
        name: r.get(1)?,
        role: role.parse().map_err(|e: column::UnknownValue| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        sources: serde_json::from_str(&sources).unwrap_or_default(),
        created_by: r.get(4)?,
        created_ms: r.get(5)?,
        digest: digest.try_into().unwrap_or([0; 32]),
    })
}

fn user_in(conn: &rusqlite::Connection, tenant: &str, login: &str) -> StoreResult<Option<UserRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE tenant = ?1 AND login = ?2"
        ))?
        .query_row([tenant, login], user_row)
        .optional()?)
}

#[async_trait::async_trait]
impl AccessStore for SqliteStore {
    async fn create_user(&self, user: NewUser, audit: Vec<AuditRecord>) -> StoreResult<UserRow> {
        self.writer
            .write(move |ctx| {
                if user_in(ctx.conn, &user.tenant, &user.login)?.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "an account named {:?} exists",
                        user.login
                    )));
                }
                let roles = serde_json::to_string(&user.roles)?;
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO users (tenant, login, display_name, roles, password_hash, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        user.tenant,
                        user.login,
                        user.display_name,
                        roles,
                        user.password_hash,
                        ctx.now_ms
                    ])?;
                ctx.audit_all(audit)?;
                user_in(ctx.conn, &user.tenant, &user.login)?
                    .ok_or_else(|| StoreError::NotFound(format!("account {}", user.login)))
            })
            .await
    }

    async fn users(&self, tenant: &str) -> StoreResult<Vec<UserRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE tenant = ?1 ORDER BY login"
            ))?
            .query_map([tenant], user_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn user_credentials(&self, tenant: &str, login: &str) -> StoreResult<Option<UserCredentials>> {
        self.read(|c| {
            // The account and its hash in one read (the hash follows the row's columns).
            Ok(c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE tenant = ?1 AND login = ?2"
            ))?
            .query_row([tenant, login], |r| {
                Ok(UserCredentials {
                    user: user_row(r)?,
                    password_hash: r.get(9)?,
                })
            })
            .optional()?)
        })
    }

    async fn change_user(
        &self,
        tenant: &str,
        login: &str,
        change: UserChange,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<UserRow> {
        let (tenant, login) = (tenant.to_string(), login.to_string());
        self.writer
            .write(move |ctx| {
                if user_in(ctx.conn, &tenant, &login)?.is_none() {
                    return Err(StoreError::NotFound(format!("account {login}")));
                }
                if let Some(roles) = &change.roles {
                    ctx.conn
                        .prepare_cached("UPDATE users SET roles = ?3 WHERE tenant = ?1 AND login = ?2")?
                        .execute(params![tenant, login, serde_json::to_string(roles)?])?;
                }
                if let Some(hash) = &change.password_hash {
                    ctx.conn
                        .prepare_cached(
                            "UPDATE users SET password_hash = ?3, failed_attempts = 0, locked_until_ms = NULL
                             WHERE tenant = ?1 AND login = ?2",
                        )?
                        .execute(params![tenant, login, hash])?;
                }
                if let Some(disabled) = change.disabled {
                    ctx.conn
                        .prepare_cached("UPDATE users SET disabled = ?3 WHERE tenant = ?1 AND login = ?2")?
                        .execute(params![tenant, login, disabled])?;
                }
                // New roles or a new password apply to the next sign-in; a disabled account
                // and a changed password end every session now.
                if change.disabled == Some(true) || change.password_hash.is_some() {
                    ctx.conn
                        .prepare_cached("DELETE FROM sessions WHERE tenant = ?1 AND login = ?2")?
                        .execute([&tenant, &login])?;
                }
                ctx.audit_all(audit)?;
                user_in(ctx.conn, &tenant, &login)?
                    .ok_or_else(|| StoreError::NotFound(format!("account {login}")))
            })
            .await
    }

    async fn sign_in_failed(
        &self,
        tenant: &str,
        login: &str,
        policy: LockoutPolicy,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<Option<i64>> {
        let (tenant, login) = (tenant.to_string(), login.to_string());
        self.writer
            .write(move |ctx| {
                ctx.audit_all(audit)?;
                let failures: Option<i64> = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE users SET failed_attempts = failed_attempts + 1
                         WHERE tenant = ?1 AND login = ?2 RETURNING failed_attempts",
                    )?
                    .query_row([&tenant, &login], |r| r.get(0))
                    .optional()?;
                if failures.is_none_or(|n| n < policy.max_failures) {
                    return Ok(None);
                }
                let until = ctx.now_ms + policy.lock_ms;
                ctx.conn
                    .prepare_cached(
                        "UPDATE users SET failed_attempts = 0, locked_until_ms = ?3
                         WHERE tenant = ?1 AND login = ?2",
                    )?
                    .execute(params![tenant, login, until])?;
                let mut locked = AuditRecord::new(&tenant, AuditKind::AuthLocked, &login);
                locked.data = serde_json::json!({ "login": login, "until_ms": until });
                ctx.audit(locked)?;
                Ok(Some(until))
            })
            .await
    }

    async fn sign_in_succeeded(&self, session: NewSession, audit: Vec<AuditRecord>) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL, last_sign_in_ms = ?3
                         WHERE tenant = ?1 AND login = ?2",
                    )?
                    .execute(params![session.tenant, session.login, ctx.now_ms])?;
                // Sessions that ended by time go when their owner signs in again.
                ctx.conn
                    .prepare_cached(
                        "DELETE FROM sessions WHERE tenant = ?1 AND login = ?2 AND expires_ms <= ?3",
                    )?
                    .execute(params![session.tenant, session.login, ctx.now_ms])?;
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO sessions (digest, tenant, login, csrf_digest, created_ms, expires_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        &session.digest[..],
                        session.tenant,
                        session.login,
                        &session.csrf_digest[..],
                        ctx.now_ms,
                        session.expires_ms
                    ])?;
                ctx.audit_all(audit)?;
                Ok(())
            })
            .await
    }

    async fn session(&self, digest: [u8; 32]) -> StoreResult<Option<SessionRow>> {
        let now = now_ms();
        self.read(|c| {
            let found: Option<(String, String, Vec<u8>, i64)> = c
                .prepare_cached(
                    "SELECT tenant, login, csrf_digest, expires_ms FROM sessions
                     WHERE digest = ?1 AND expires_ms > ?2",
                )?
                .query_row(params![&digest[..], now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            let Some((tenant, login, csrf, expires_ms)) = found else {
                return Ok(None);
            };
            Ok(user_in(c, &tenant, &login)?
                .filter(|u| !u.disabled)
                .map(|user| SessionRow {
                    user,
                    csrf_digest: csrf.try_into().unwrap_or([0; 32]),
                    expires_ms,
                }))
        })
    }

    async fn end_session(&self, digest: [u8; 32], audit: Vec<AuditRecord>) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let ended = ctx
                    .conn
                    .prepare_cached("DELETE FROM sessions WHERE digest = ?1")?
                    .execute([&digest[..]])?
                    > 0;
                if ended {
                    ctx.audit_all(audit)?;
                }
                Ok(ended)
            })
            .await
    }

    async fn create_api_token(
        &self,
        token: ApiTokenRow,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<ApiTokenRow> {
        self.writer
            .write(move |ctx| {
                let taken: bool = ctx
                    .conn
                    .prepare_cached("SELECT count(*) > 0 FROM api_tokens WHERE tenant = ?1 AND name = ?2")?
                    .query_row([&token.tenant, &token.name], |r| r.get(0))?;
                if taken {
                    return Err(StoreError::Conflict(format!(
                        "a token named {:?} exists",
                        token.name
                    )));
                }
                ctx.conn
                    .prepare_cached(
                        "INSERT INTO api_tokens (tenant, name, role, sources, digest, created_by, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        token.tenant,
                        token.name,
                        token.role.as_str(),
                        serde_json::to_string(&token.sources)?,
                        &token.digest[..],
                        token.created_by,
                        ctx.now_ms
                    ])?;
                ctx.audit_all(audit)?;
                Ok(ApiTokenRow {
                    created_ms: ctx.now_ms,
                    ..token
                })
            })
            .await
    }

    async fn api_tokens(&self, tenant: &str) -> StoreResult<Vec<ApiTokenRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant = ?1 ORDER BY name"
            ))?
            .query_map([tenant], token_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn api_token_by_digest(&self, digest: [u8; 32]) -> StoreResult<Option<ApiTokenRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = ?1"
            ))?
            .query_row([&digest[..]], token_row)
            .optional()?)
        })
    }

    async fn revoke_api_token(&self, tenant: &str, name: &str, audit: Vec<AuditRecord>) -> StoreResult<bool> {
        let (tenant, name) = (tenant.to_string(), name.to_string());
        self.writer
            .write(move |ctx| {
                let revoked = ctx
                    .conn
                    .prepare_cached("DELETE FROM api_tokens WHERE tenant = ?1 AND name = ?2")?
                    .execute([&tenant, &name])?
                    > 0;
                if revoked {
                    ctx.audit_all(audit)?;
                }
                Ok(revoked)
            })
            .await
    }
}
