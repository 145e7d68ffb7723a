//! People signing in (issue 22): argon2id passwords, a lockout, server-side sessions in
//! `Secure`, `HttpOnly`, `SameSite=Strict` cookies, a CSRF token on every change made in a
//! session, people's roles, and API tokens made and revoked at run time.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenure_pipeline::QueueConfig;
use tenure_store::prelude::*;
use tenure_store::{AuditFilter, AuditKind, NewUser, Role};
use tenure_tests::host::{HostSpec, IT_TOKEN, TENANT, TestHost, joiner, pipeline_toml, rules, tenant_toml};

const PASSWORD: &str = "a long enough passphrase";

fn spec() -> HostSpec {
    let tenant = tenant_toml(&format!(
        "[plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n",
    );
    HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "sandbox"],
    }
}

async fn host() -> TestHost {
    let h = TestHost::start(spec()).await;
    // The first owner, as `tenure users add` makes one.
    let owner = NewUser {
        tenant: TENANT.into(),
        login: "olivia".into(),
        display_name: "Olivia Owner".into(),
        roles: vec![Role::Owner],
        password_hash: Some(tenure_server::passwords::hash_password(PASSWORD).expect("hash")),
    };
    h.store.create_user(owner, vec![]).await.expect("owner");
    h
}

/// A signed-in person: the cookie and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(
    h: &TestHost,
    login: &str,
    password: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/session", h.base))
        .json(&json!({ "tenant": TENANT, "login": login, "password": password }))
        .send()
        .await
        .expect("sign in");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn session(h: &TestHost, login: &str) -> Session {
    let (status, headers, body) = sign_in(h, login, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let set = headers
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    Session {
        cookie: set.split(';').next().expect("name=value").to_string(),
        csrf: body["csrf_token"].as_str().expect("csrf token").to_string(),
    }
}

/// A request in a session, with or without its CSRF token.
async fn call(
    h: &TestHost,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", h.base))
        .header(reqwest::header::COOKIE, &s.cookie);
    if csrf {
        req = req.header(tenure_server::CSRF_HEADER, &s.csrf);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn audited(h: &TestHost, kind: AuditKind) -> Vec<String> {
    h.store
        .audit(AuditFilter::default())
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.record.kind == kind)
        .map(|e| e.record.actor)
        .collect()
}

#[tokio::test]
async fn people_sign_in_and_every_change_in_a_session_carries_its_csrf_token() {
    let h = host().await;
    let olivia = session(&h, "olivia").await;
    let (status, me) = call(&h, &olivia, Method::GET, "/api/v1/session", None, false).await;
    assert_eq!(
        (status, me["name"].clone(), me["via"].clone()),
        (200, json!("olivia"), json!("session"))
    );
    assert_eq!(me["roles"], json!(["owner"]));

    // A change without the CSRF token is refused, whatever the role.
    let otto = json!({ "login": "otto", "roles": ["operator"], "password": PASSWORD });
    let (status, body) = call(
        &h,
        &olivia,
        Method::POST,
        "/api/v1/users",
        Some(otto.clone()),
        false,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (403, json!("X-CSRF-Token")),
        "{body}"
    );
    let (status, body) = call(
        &h,
        &olivia,
        Method::POST,
        "/api/v1/users",
        Some(otto.clone()),
        true,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["roles"], json!(["operator"]));
    assert!(body.get("password_hash").is_none() && !body.to_string().contains("argon2"));
    let (status, _) = call(&h, &olivia, Method::POST, "/api/v1/users", Some(otto), true).await;
    assert_eq!(status, 409, "a login is taken once");
    // Roles for machines are not given to people.
    let machine = json!({ "login": "mia", "roles": ["source"], "password": PASSWORD });
    let (status, body) = call(&h, &olivia, Method::POST, "/api/v1/users", Some(machine), true).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (422, json!("roles")),
        "{body}"
    );

    // An operator reads and runs the queue's commands, but publishes nothing.
    let otto = session(&h, "otto").await;
    let (status, _) = call(&h, &otto, Method::GET, "/api/v1/jobs", None, false).await;
    assert_eq!(status, 200);
    let (status, body) = call(&h, &otto, Method::POST, "/api/v1/jobs/999/replay", None, true).await;
    assert_eq!(status, 404, "allowed, and the job does not exist: {body}");
    let (status, body) = call(&h, &otto, Method::POST, "/api/v1/rule-sets/1/publish", None, true).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (403, json!("Authorization")),
        "{body}"
    );
    let (status, _) = call(&h, &otto, Method::GET, "/api/v1/users", None, false).await;
    assert_eq!(status, 403, "only owners manage accounts");

    // Sign-ins and the account made are audited with the person.
    assert_eq!(audited(&h, AuditKind::AuthSignedIn).await, ["olivia", "otto"]);
    assert_eq!(audited(&h, AuditKind::AdminUserCreated).await, ["olivia"]);

    // Disabling an account ends its sessions at once; signing out ends one's own.
    let disable = json!({ "disabled": true });
    let (status, body) = call(
        &h,
        &olivia,
        Method::POST,
        "/api/v1/users/otto",
        Some(disable),
        true,
    )
    .await;
    assert_eq!((status, body["disabled"].clone()), (200, json!(true)), "{body}");
    let (status, _) = call(&h, &otto, Method::GET, "/api/v1/session", None, false).await;
    assert_eq!(status, 401);
    let (status, _, _) = sign_in(&h, "otto", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled account cannot sign in"
    );
    let own = json!({ "roles": ["auditor"] });
    let (status, _) = call(&h, &olivia, Method::POST, "/api/v1/users/olivia", Some(own), true).await;
    assert_eq!(status, 409, "an owner does not give up owning alone");
    let (status, _) = call(&h, &olivia, Method::DELETE, "/api/v1/session", None, false).await;
    assert_eq!(status, 403, "signing out is a change too");
    let (status, _) = call(&h, &olivia, Method::DELETE, "/api/v1/session", None, true).await;
    assert_eq!(status, 204);
    let (status, _) = call(&h, &olivia, Method::GET, "/api/v1/session", None, false).await;
    assert_eq!(status, 401);
    assert_eq!(audited(&h, AuditKind::AuthSignedOut).await, ["olivia"]);
    h.stop().await;
}

#[tokio::test]
async fn repeated_failures_lock_an_account_for_a_while() {
    let h = host().await;
    for _ in 0..5 {
        let (status, _, body) = sign_in(&h, "olivia", "not the passphrase").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Locked: even the right password waits.
    let (status, headers, body) = sign_in(&h, "olivia", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((800..=900).contains(&wait), "{wait}");
    // A form post (what a cross-site page can send) is not a sign-in.
    let form = reqwest::Client::new()
        .post(format!("{}/api/v1/session", h.base))
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body(json!({ "tenant": TENANT, "login": "olivia", "password": PASSWORD }).to_string())
        .send()
        .await
        .expect("form post");
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An unknown login is refused the same way and audited.
    let (status, _, body) = sign_in(&h, "nobody", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["field"], "password");
    assert_eq!(audited(&h, AuditKind::AuthLocked).await, ["olivia"]);
    assert_eq!(audited(&h, AuditKind::AuthSignInRefused).await.len(), 7);
    assert!(audited(&h, AuditKind::AuthSignedIn).await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn tokens_made_at_run_time_are_shown_once_and_work_until_revoked() {
    let h = host().await;
    let olivia = session(&h, "olivia").await;
    let new = json!({ "name": "workday", "role": "source", "sources": ["hr"] });
    let (status, made) = call(&h, &olivia, Method::POST, "/api/v1/tokens", Some(new), true).await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().expect("the token, once").to_string();
    let (status, listed) = call(&h, &olivia, Method::GET, "/api/v1/tokens", None, false).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["name"], "workday");
    assert!(!listed.to_string().contains(&token), "never shown again");

    let (status, body) = h
        .request(
            Method::POST,
            "/api/v1/events",
            &token,
            Some(&joiner("w-1", "Sales")),
            Some("w-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["event_id"].as_i64().map(|_| ()), Some(()));
    // A configured IT token may not make tokens: owners and IT administrators do.
    let (status, _) = h
        .request(
            Method::POST,
            "/api/v1/tokens",
            IT_TOKEN,
            Some(&json!({ "name": "x", "role": "it" })),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // An IT administrator makes source and HR tokens, not tokens that could do more than they can.
    let ivan = json!({ "login": "ivan", "roles": ["it-admin"], "password": PASSWORD });
    let (status, _) = call(&h, &olivia, Method::POST, "/api/v1/users", Some(ivan), true).await;
    assert_eq!(status, 201);
    let ivan = session(&h, "ivan").await;
    let it = json!({ "name": "it-bot", "role": "it" });
    let (status, body) = call(&h, &ivan, Method::POST, "/api/v1/tokens", Some(it), true).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (403, json!("role")),
        "{body}"
    );
    let feed = json!({ "name": "feed", "role": "source", "sources": ["hr"] });
    let (status, _) = call(&h, &ivan, Method::POST, "/api/v1/tokens", Some(feed), true).await;
    assert_eq!(status, 201);

    let (status, _) = call(&h, &olivia, Method::DELETE, "/api/v1/tokens/workday", None, true).await;
    assert_eq!(status, 200);
    let (status, _) = h
        .request(
            Method::POST,
            "/api/v1/events",
            &token,
            Some(&joiner("w-2", "Sales")),
            Some("w-2"),
        )
        .await;
    assert_eq!(status, 401, "revoked");
    assert_eq!(
        audited(&h, AuditKind::AdminTokenCreated).await,
        ["olivia", "ivan"]
    );
    assert_eq!(audited(&h, AuditKind::AdminTokenRevoked).await, ["olivia"]);
    h.stop().await;
}

#[tokio::test]
async fn a_burst_of_sign_ins_and_passwords_in_other_scripts() {
    let h = host().await;
    let olivia = session(&h, "olivia").await;
    // A password in Cyrillic with an emoji and combining marks signs in as typed.
    let password = "пароль-для-входа 🔐 e\u{301}té";
    let zoe = json!({ "login": "zoe", "roles": ["auditor"], "password": password });
    let (status, body) = call(&h, &olivia, Method::POST, "/api/v1/users", Some(zoe), true).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = sign_in(&h, "zoe", password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same text in another normalisation is another password.
    let (status, _, _) = sign_in(&h, "zoe", "пароль-для-входа 🔐 été").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A login outside the allowed characters is refused, naming the field.
    let jose = json!({ "login": "josé", "roles": ["auditor"], "password": PASSWORD });
    let (status, body) = call(&h, &olivia, Method::POST, "/api/v1/users", Some(jose), true).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (422, json!("login")),
        "{body}"
    );

    // Forty sign-ins at once: each is answered (signed in, or asked to retry), none fails,
    // and each is in the audit as what it was.
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let url = format!("{}/api/v1/session", h.base);
        attempts.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({ "tenant": TENANT, "login": "olivia", "password": PASSWORD }))
                .send()
                .await
                .map(|r| r.status())
                .ok()
        });
    }
    let answers: Vec<Option<StatusCode>> = attempts.join_all().await;
    let ok = answers.iter().filter(|s| **s == Some(StatusCode::OK)).count();
    let busy = answers
        .iter()
        .filter(|s| **s == Some(StatusCode::TOO_MANY_REQUESTS))
        .count();
    assert_eq!(ok + busy, 40, "{answers:?}");
    assert!(ok >= 2, "{ok} signed in");
    let signed_in = audited(&h, AuditKind::AuthSignedIn).await;
    assert_eq!(signed_in.iter().filter(|a| *a == "olivia").count(), ok + 1);
    // A refusal for being busy is not a failed password: the account is not locked.
    let (status, _, _) = sign_in(&h, "olivia", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn a_session_outlives_a_restart_of_the_host_and_a_sign_out_ends_it_for_good() {
    let h = host().await;
    let s = session(&h, "olivia").await;
    // The session lives in the store: a restarted host (or another host) honours it.
    let dir = h.stop().await;
    let h = TestHost::start_in(spec(), dir).await;
    let (status, me) = call(&h, &s, Method::GET, "/api/v1/session", None, false).await;
    assert_eq!((status, me["name"].as_str()), (200, Some("olivia")), "{me}");
    let token = json!({ "name": "after-restart", "role": "it" });
    let (status, body) = call(&h, &s, Method::POST, "/api/v1/tokens", Some(token), true).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = call(&h, &s, Method::DELETE, "/api/v1/session", None, true).await;
    assert_eq!(status, 204);
    let dir = h.stop().await;
    let h = TestHost::start_in(spec(), dir).await;
    let (status, _) = call(&h, &s, Method::GET, "/api/v1/session", None, false).await;
    assert_eq!(status, 401, "a signed-out session stays ended after a restart");
}
