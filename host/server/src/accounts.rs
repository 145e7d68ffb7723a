//! People's accounts (owners manage them) and API tokens made at run time (owners and IT
//! administrators make and revoke them; a token is shown once and kept as its digest).
//! Every change is audited with the person who made it.

use crate::AppState;
use crate::auth::{Authed, Owners, TokenAdmins, digest_of};
use crate::error::{ApiError, ApiResult, json_body};
use crate::extract::ApiPath;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenure_store::{ApiTokenRow, AuditKind, AuditRecord, NewUser, Role, UserChange};

/// Logins and token names: letters, digits and `.-_@`, 1-64 characters.
fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            field,
            "use 1-64 letters, digits or . - _ @",
        ))
    }
}

fn check_roles(field: &str, roles: &[Role], allowed: &[Role]) -> Result<(), ApiError> {
    match roles.iter().find(|r| !allowed.contains(r)) {
        None if !roles.is_empty() => Ok(()),
        None => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            field,
            "give at least one role",
        )),
        Some(r) => {
            let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                field,
                format!("{r} is not one of: {}", names.join(", ")),
            ))
        }
    }
}

async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || crate::passwords::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "password", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "password", e.to_string()))
}

/// An account to make.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserIn {
    /// 1-64 letters, digits or `.-_@`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9._@-]+$"))]
    login: String,
    #[serde(default)]
    display_name: Option<String>,
    /// Any of owner, hr-admin, it-admin, operator, auditor.
    roles: Vec<Role>,
    /// At least 12 characters; kept only as its argon2id hash.
    #[schemars(length(min = 12))]
    password: String,
}

/// A change to an account; what is left out stays.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserChangeIn {
    #[serde(default)]
    roles: Option<Vec<Role>>,
    /// A disabled account cannot sign in; its sessions end.
    #[serde(default)]
    disabled: Option<bool>,
    /// A new password ends the account's sessions.
    #[serde(default)]
    password: Option<String>,
}

/// `GET /api/v1/users`
pub(crate) async fn list_users(State(s): State<AppState>, c: Authed<Owners>) -> ApiResult {
    Ok(axum::Json(s.pipeline.store().users(&c.tenant).await?).into_response())
}

/// `POST /api/v1/users`
pub(crate) async fn create_user(State(s): State<AppState>, c: Authed<Owners>, body: Bytes) -> ApiResult {
    let input: UserIn = json_body(&body)?;
    check_name("login", &input.login)?;
    check_roles("roles", &input.roles, &Role::PEOPLE)?;
    let password_hash = hash(input.password).await?;
    let mut audit = AuditRecord::new(&c.tenant, AuditKind::AdminUserCreated, &c.name);
    audit.data = json!({ "login": input.login, "roles": input.roles });
    let user = NewUser {
        tenant: c.tenant.clone(),
        display_name: input.display_name.unwrap_or_else(|| input.login.clone()),
        login: input.login,
        roles: input.roles,
        password_hash: Some(password_hash),
    };
    let made = s.pipeline.store().create_user(user, vec![audit]).await?;
    Ok((StatusCode::CREATED, axum::Json(made)).into_response())
}

/// `POST /api/v1/users/{login}`
pub(crate) async fn change_user(
    State(s): State<AppState>,
    c: Authed<Owners>,
    ApiPath(login): ApiPath<String>,
    body: Bytes,
) -> ApiResult {
    let input: UserChangeIn = json_body(&body)?;
    if let Some(roles) = &input.roles {
        check_roles("roles", roles, &Role::PEOPLE)?;
    }
    // An owner cannot lock themselves out of owning the tenant.
    let demotes_self = input.roles.as_ref().is_some_and(|r| !r.contains(&Role::Owner));
    if login == c.name && (demotes_self || input.disabled == Some(true)) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "login",
            "an owner cannot disable themselves or give up owning; another owner can",
        ));
    }
    let password_hash = match input.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let mut audit = AuditRecord::new(&c.tenant, AuditKind::AdminUserChanged, &c.name);
    audit.data = json!({ "login": login, "roles": input.roles, "disabled": input.disabled,
        "password_changed": password_hash.is_some() });
    let change = UserChange {
        roles: input.roles,
        disabled: input.disabled,
        password_hash,
    };
    let changed = s
        .pipeline
        .store()
        .change_user(&c.tenant, &login, change, vec![audit])
        .await?;
    Ok(axum::Json(changed).into_response())
}

/// A token to make.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenIn {
    /// The actor in the audit log: 1-64 letters, digits or `.-_@`.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9._@-]+$"))]
    name: String,
    /// One of source, hr, it, auditor.
    role: Role,
    /// The sources it may post for (required for a source token).
    #[serde(default)]
    sources: Vec<String>,
}

/// A token just made: the only time it is shown.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct TokenMade {
    /// Present as `Authorization: Bearer <token>`; not kept, not shown again.
    token: String,
    #[serde(flatten)]
    row: ApiTokenRow,
}

/// `GET /api/v1/tokens`
pub(crate) async fn list_tokens(State(s): State<AppState>, c: Authed<TokenAdmins>) -> ApiResult {
    Ok(axum::Json(s.pipeline.store().api_tokens(&c.tenant).await?).into_response())
}

/// `POST /api/v1/tokens`
pub(crate) async fn create_token(
    State(s): State<AppState>,
    c: Authed<TokenAdmins>,
    body: Bytes,
) -> ApiResult {
    let input: TokenIn = json_body(&body)?;
    check_name("name", &input.name)?;
    check_roles("role", &[input.role], &Role::MACHINES)?;
    // An IT administrator connects systems (source and HR tokens); a token that could do
    // more than they can (an IT or auditor token reads the audit log) needs an owner.
    if !c.has(Role::Owner) && !matches!(input.role, Role::Source | Role::Hr) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role",
            format!("only an owner makes {} tokens", input.role),
        ));
    }
    if input.role == Role::Source && input.sources.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sources",
            "a source token names the sources it posts for",
        ));
    }
    if s.tokens.iter().any(|t| t.name == input.name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "name",
            "a configured token has this name (names are the audit log's actors)",
        ));
    }
    let token = format!("tnr_{}", crate::sessions::random_token()?);
    let mut audit = AuditRecord::new(&c.tenant, AuditKind::AdminTokenCreated, &c.name);
    audit.data = json!({ "name": input.name, "role": input.role, "sources": input.sources });
    let row = ApiTokenRow {
        tenant: c.tenant.clone(),
        name: input.name,
        role: input.role,
        sources: input.sources,
        created_by: c.name.clone(),
        created_ms: 0,
        digest: digest_of(&token),
    };
    let row = s.pipeline.store().create_api_token(row, vec![audit]).await?;
    Ok((StatusCode::CREATED, axum::Json(TokenMade { token, row })).into_response())
}

/// A revoked token.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct TokenRevoked {
    name: String,
}

/// `DELETE /api/v1/tokens/{name}`
pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    c: Authed<TokenAdmins>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    let mut audit = AuditRecord::new(&c.tenant, AuditKind::AdminTokenRevoked, &c.name);
    audit.data = json!({ "name": name });
    if !s
        .pipeline
        .store()
        .revoke_api_token(&c.tenant, &name, vec![audit])
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "name",
            format!("no token named {name:?} was made here"),
        ));
    }
    Ok(axum::Json(TokenRevoked { name }).into_response())
}
