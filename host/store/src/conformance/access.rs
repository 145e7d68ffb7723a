//! People's accounts, sessions and run-time API tokens.

use super::{audited, now};
use crate::*;
use std::sync::Arc;

fn account(login: &str, roles: Vec<Role>) -> NewUser {
    NewUser {
        tenant: "t".into(),
        login: login.into(),
        display_name: format!("{login} (test)"),
        roles,
        password_hash: Some(format!("$argon2id$hash-of-{login}")),
    }
}

fn session(login: &str, id: u8, expires_ms: i64) -> NewSession {
    NewSession {
        tenant: "t".into(),
        login: login.into(),
        digest: [id; 32],
        csrf_digest: [id.wrapping_add(100); 32],
        expires_ms,
    }
}

pub async fn accounts_are_made_once_changed_and_listed(store: Arc<dyn Store>) {
    let made = store
        .create_user(account("ada", vec![Role::Owner]), vec![])
        .await
        .unwrap();
    assert_eq!(
        (made.login.as_str(), made.roles.clone()),
        ("ada", vec![Role::Owner])
    );
    assert!(!made.disabled && made.failed_attempts == 0 && made.last_sign_in_ms.is_none());
    let again = store
        .create_user(account("ada", vec![Role::Auditor]), vec![])
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    store
        .create_user(account("bob", vec![Role::Operator, Role::HrAdmin]), vec![])
        .await
        .unwrap();
    let listed: Vec<String> = store
        .users("t")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.login)
        .collect();
    assert_eq!(listed, ["ada", "bob"]);
    assert!(store.users("other").await.unwrap().is_empty(), "per tenant");
    let credentials = store.user_credentials("t", "bob").await.unwrap().expect("bob");
    assert_eq!(
        credentials.password_hash.as_deref(),
        Some("$argon2id$hash-of-bob")
    );
    assert_eq!(credentials.user.roles, [Role::Operator, Role::HrAdmin]);
    assert!(store.user_credentials("t", "nobody").await.unwrap().is_none());

    let audit = vec![AuditRecord::new("t", AuditKind::AdminUserChanged, "ada")];
    let changed = store
        .change_user(
            "t",
            "bob",
            UserChange {
                roles: Some(vec![Role::Auditor]),
                ..UserChange::default()
            },
            audit,
        )
        .await
        .unwrap();
    assert_eq!(changed.roles, [Role::Auditor]);
    assert_eq!(audited(&store, AuditKind::AdminUserChanged).await.len(), 1);
    let missing = store
        .change_user("t", "nobody", UserChange::default(), vec![])
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}

pub async fn failures_lock_an_account_and_a_sign_in_clears_them(store: Arc<dyn Store>) {
    store
        .create_user(account("ada", vec![Role::Owner]), vec![])
        .await
        .unwrap();
    let policy = LockoutPolicy {
        max_failures: 3,
        lock_ms: 60_000,
    };
    let refused = || vec![AuditRecord::new("t", AuditKind::AuthSignInRefused, "ada")];
    for _ in 0..2 {
        assert_eq!(
            store.sign_in_failed("t", "ada", policy, refused()).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .user_credentials("t", "ada")
            .await
            .unwrap()
            .unwrap()
            .user
            .failed_attempts,
        2
    );
    // A success clears the count.
    store
        .sign_in_succeeded(session("ada", 1, now() + 60_000), vec![])
        .await
        .unwrap();
    let user = store.user_credentials("t", "ada").await.unwrap().unwrap().user;
    assert_eq!(user.failed_attempts, 0);
    assert!(user.last_sign_in_ms.is_some());
    for _ in 0..2 {
        assert_eq!(
            store.sign_in_failed("t", "ada", policy, refused()).await.unwrap(),
            None
        );
    }
    let until = store
        .sign_in_failed("t", "ada", policy, refused())
        .await
        .unwrap()
        .expect("locked by the third failure");
    assert!(until >= now() + 50_000, "{until}");
    let user = store.user_credentials("t", "ada").await.unwrap().unwrap().user;
    assert_eq!(user.locked_until_ms, Some(until));
    assert_eq!(audited(&store, AuditKind::AuthSignInRefused).await.len(), 5);
    assert_eq!(audited(&store, AuditKind::AuthLocked).await.len(), 1);
    // Failures for an unknown login are audited and lock nothing.
    assert_eq!(
        store
            .sign_in_failed("t", "nobody", policy, refused())
            .await
            .unwrap(),
        None
    );
}

pub async fn sessions_end_by_time_sign_out_password_change_and_disabling(store: Arc<dyn Store>) {
    store
        .create_user(account("ada", vec![Role::Owner]), vec![])
        .await
        .unwrap();
    let signed_in = vec![AuditRecord::new("t", AuditKind::AuthSignedIn, "ada")];
    store
        .sign_in_succeeded(session("ada", 1, now() + 60_000), signed_in)
        .await
        .unwrap();
    let live = store.session([1; 32]).await.unwrap().expect("live");
    assert_eq!((live.user.login.as_str(), live.csrf_digest), ("ada", [101; 32]));
    assert!(store.session([2; 32]).await.unwrap().is_none(), "no such session");
    // An expired session is not found.
    store
        .sign_in_succeeded(session("ada", 3, now() - 1), vec![])
        .await
        .unwrap();
    assert!(store.session([3; 32]).await.unwrap().is_none());
    // Roles changed meanwhile apply to the live session at once.
    let roles = UserChange {
        roles: Some(vec![Role::Auditor]),
        ..UserChange::default()
    };
    store.change_user("t", "ada", roles, vec![]).await.unwrap();
    assert_eq!(
        store.session([1; 32]).await.unwrap().expect("live").user.roles,
        [Role::Auditor]
    );
    // Sign-out ends it once.
    let out = || vec![AuditRecord::new("t", AuditKind::AuthSignedOut, "ada")];
    assert!(store.end_session([1; 32], out()).await.unwrap());
    assert!(!store.end_session([1; 32], out()).await.unwrap());
    assert_eq!(audited(&store, AuditKind::AuthSignedOut).await.len(), 1);
    assert!(store.session([1; 32]).await.unwrap().is_none());
    // A new password ends every session; so does disabling.
    store
        .sign_in_succeeded(session("ada", 4, now() + 60_000), vec![])
        .await
        .unwrap();
    let password = UserChange {
        password_hash: Some("$argon2id$new".into()),
        ..UserChange::default()
    };
    store.change_user("t", "ada", password, vec![]).await.unwrap();
    assert!(store.session([4; 32]).await.unwrap().is_none());
    store
        .sign_in_succeeded(session("ada", 5, now() + 60_000), vec![])
        .await
        .unwrap();
    let disable = UserChange {
        disabled: Some(true),
        ..UserChange::default()
    };
    assert!(
        store
            .change_user("t", "ada", disable, vec![])
            .await
            .unwrap()
            .disabled
    );
    assert!(store.session([5; 32]).await.unwrap().is_none());
}

pub async fn api_tokens_are_kept_as_digests_named_once_and_revoked(store: Arc<dyn Store>) {
    let token = |name: &str, digest: u8| ApiTokenRow {
        tenant: "t".into(),
        name: name.into(),
        role: Role::Source,
        sources: vec!["hr".into()],
        created_by: "ada".into(),
        created_ms: 0,
        digest: [digest; 32],
    };
    let made = vec![AuditRecord::new("t", AuditKind::AdminTokenCreated, "ada")];
    let stored = store.create_api_token(token("feed", 7), made).await.unwrap();
    assert!(stored.created_ms > 0);
    let again = store.create_api_token(token("feed", 8), vec![]).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let found = store
        .api_token_by_digest([7; 32])
        .await
        .unwrap()
        .expect("by digest");
    assert_eq!(
        (found.name.as_str(), found.role, found.sources.clone()),
        ("feed", Role::Source, vec!["hr".to_string()])
    );
    assert!(store.api_token_by_digest([8; 32]).await.unwrap().is_none());
    assert_eq!(store.api_tokens("t").await.unwrap().len(), 1);
    let revoked = || vec![AuditRecord::new("t", AuditKind::AdminTokenRevoked, "ada")];
    assert!(store.revoke_api_token("t", "feed", revoked()).await.unwrap());
    assert!(!store.revoke_api_token("t", "feed", revoked()).await.unwrap());
    assert!(store.api_token_by_digest([7; 32]).await.unwrap().is_none());
    assert_eq!(audited(&store, AuditKind::AdminTokenRevoked).await.len(), 1);
    assert_eq!(audited(&store, AuditKind::AdminTokenCreated).await.len(), 1);
}
