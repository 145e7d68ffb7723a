//! People sign in with an OpenID provider (issue 22): the real `tenure serve` against a real
//! provider (oidc-provider from npm), a browser's redirects and cookies followed by hand, then
//! the same sign-in from the console in Chromium.
//! The code flow with PKCE, state and nonce; groups mapped to roles at every sign-in; the
//! session and CSRF cookies; refusals for people without a role, unverified emails, a local
//! account's login, a forged state and a replayed code, each audited.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tenure_tests::idp::Idp;
use tenure_tests::serve::{free_port, run_cli, start_serve, wait_ready};

const CLIENT_SECRET: &str = "oidc-client-secret-0123456789";

fn write_config(dir: &Path, port: u16, issuer: &str) -> PathBuf {
    std::fs::write(dir.join("rules.txt"), tenure_tests::host::rules("sandbox")).unwrap();
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
path = "tenure.db"
[server]
listen = "127.0.0.1:{port}"
[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "sandbox"
connector = "sandbox"
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.plugins.sandbox.grants]
kv = true
[tenants.t.oidc]
issuer = "{issuer}"
client_id = "tenure"
client_secret = "${{secret:oidc-client}}"
redirect_url = "http://127.0.0.1:{port}/api/v1/session/oidc/callback"
scopes = ["openid", "email", "profile", "groups"]
[tenants.t.oidc.roles]
"tenure-owners" = ["owner"]
"hr-admins" = ["hr-admin"]
"it" = ["it-admin", "operator"]
"#,
        plugins = tenure_plugin_test::plugin_dir().display(),
        cache = tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display(),
    );
    let path = dir.join("tenure.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// A browser: cookies per origin, redirects followed one at a time.
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

impl Browser {
    async fn get(&mut self, url: &str) -> (StatusCode, HeaderMap, String) {
        let url = reqwest::Url::parse(url).expect("url");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookies = self
            .jar
            .get(&origin(&url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let mut request = client.get(url.clone());
        if !cookies.is_empty() {
            request = request.header(reqwest::header::COOKIE, cookies);
        }
        let resp = request.send().await.expect("request");
        let (status, headers) = (resp.status(), resp.headers().clone());
        for set in headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("a cookie");
            let jar = self.jar.entry(origin(&url)).or_default();
            if attributes.contains("Max-Age=0") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.to_string());
            }
        }
        (status, headers, resp.text().await.unwrap_or_default())
    }

    fn cookie(&self, base: &str, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(base).unwrap();
        self.jar.get(&origin(&url))?.get(name).cloned()
    }

    /// Starts a sign-in at Tenure and follows the redirects through the provider; returns the
    /// callback URL the provider sends the browser back to.
    async fn through_provider(&mut self, base: &str, login_hint: &str) -> String {
        let start = format!("{base}/api/v1/session/oidc/t?return_to=/console/&login_hint={login_hint}");
        let (status, headers, body) = self.get(&start).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert!(
            self.cookie(base, "tenure_oidc").is_some(),
            "the sign-in cookie is set"
        );
        let mut next = location(&headers, &start);
        for _ in 0..10 {
            if next.starts_with(&format!("{base}/api/v1/session/oidc/callback")) {
                return next;
            }
            let (status, headers, body) = self.get(&next).await;
            assert!(status.is_redirection(), "{next}: {status} {body}");
            next = location(&headers, &next);
        }
        panic!("the provider never sent the browser back");
    }

    /// The whole sign-in: the callback's answer.
    async fn sign_in(&mut self, base: &str, login_hint: &str) -> (StatusCode, HeaderMap, String) {
        let callback = self.through_provider(base, login_hint).await;
        self.get(&callback).await
    }
}

fn location(headers: &HeaderMap, from: &str) -> String {
    let to = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location");
    reqwest::Url::parse(from).unwrap().join(to).unwrap().to_string()
}

/// A call made in the browser's session (the CSRF header from its cookie, when `csrf`).
async fn call(
    b: &Browser,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> (StatusCode, Value) {
    let session = b.cookie(base, "tenure_session").expect("a session cookie");
    let mut request = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header(reqwest::header::COOKIE, format!("tenure_session={session}"));
    if csrf {
        request = request.header(
            "X-CSRF-Token",
            b.cookie(base, "tenure_csrf").expect("the CSRF cookie"),
        );
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let resp = request.send().await.expect("call");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn error_field(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["field"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_with_an_openid_provider_and_their_groups_decide_their_roles() {
    tenure_capabilities::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (port, idp_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(
        idp_port,
        &format!("{base}/api/v1/session/oidc/callback"),
        CLIENT_SECRET,
    );
    let config = write_config(&path, port, &idp.issuer);
    let out = run_cli(
        &path,
        &["secrets", "set", "oidc-client"],
        Some(&format!("{CLIENT_SECRET}\n")),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let args = [
        "users",
        "add",
        "--tenant",
        "t",
        "--login",
        "carol@example.com",
        "--role",
        "owner",
    ];
    let out = run_cli(&path, &args, Some("carols local passphrase\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut server = start_serve(&path, &config, &path.join("serve.log"));
    wait_ready(&reqwest::Client::new(), &base).await;

    // Ada (tenure-owners) signs in: back where she was going, with a session and its CSRF cookie.
    let mut ada = Browser::default();
    let (status, headers, body) = ada.sign_in(&base, "ada").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers.get(LOCATION).unwrap(), "/console/");
    let cookies: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("tenure_session="))
        .expect("session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(
        ada.cookie(&base, "tenure_oidc").is_none(),
        "the sign-in cookie is cleared"
    );
    let (status, me) = call(&ada, &base, reqwest::Method::GET, "/api/v1/session", None, false).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "ada@example.com");
    assert_eq!(me["roles"], json!(["owner"]));
    assert_eq!(me["via"], "session");
    // Her changes carry the CSRF token from its cookie; without it they are refused.
    let token = json!({ "name": "ci", "role": "it" });
    let (status, _) = call(
        &ada,
        &base,
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(token.clone()),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, made) = call(
        &ada,
        &base,
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(token),
        true,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");

    // Bob's roles follow his groups at every sign-in, and his open session sees the change.
    let mut bob = Browser::default();
    let (status, _, body) = bob.sign_in(&base, "bob").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let (_, me) = call(&bob, &base, reqwest::Method::GET, "/api/v1/session", None, false).await;
    assert_eq!(me["roles"], json!(["hr-admin"]));
    idp.set_groups("bob", &["it", "staff"]).await;
    let mut bob_again = Browser::default();
    let (status, _, body) = bob_again.sign_in(&base, "bob").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    for b in [&bob, &bob_again] {
        let (_, me) = call(b, &base, reqwest::Method::GET, "/api/v1/session", None, false).await;
        assert_eq!(me["roles"], json!(["it-admin", "operator"]));
    }

    // Refused: no group with a role, an unverified email, the login of a local account.
    for (who, field) in [
        ("eve", "groups"),
        ("mallory", "email_verified"),
        ("carol", "login"),
    ] {
        let (status, _, body) = Browser::default().sign_in(&base, who).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        assert_eq!(error_field(&body), field, "{who}: {body}");
    }

    // A forged state, a callback without the browser's sign-in, a replayed code.
    let mut b = Browser::default();
    let callback = b.through_provider(&base, "ada").await;
    let attempt = b.cookie(&base, "tenure_oidc").unwrap();
    let mut forged = reqwest::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            (
                k.to_string(),
                if k == "state" {
                    "forged".into()
                } else {
                    v.to_string()
                },
            )
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, _, body) = b.get(forged.as_str()).await;
    assert_eq!(
        (status, error_field(&body)),
        (StatusCode::BAD_REQUEST, "state".into()),
        "{body}"
    );
    let (status, _, body) = Browser::default().get(&callback).await;
    assert_eq!(
        (status, error_field(&body)),
        (StatusCode::BAD_REQUEST, "Cookie".into()),
        "{body}"
    );
    let (status, _, body) = b.get(&callback).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let mut replay = Browser::default();
    replay
        .jar
        .entry(format!("http://127.0.0.1:{port}"))
        .or_default()
        .insert("tenure_oidc".into(), attempt);
    let (status, _, body) = replay.get(&callback).await;
    assert_eq!(
        (status, error_field(&body)),
        (StatusCode::UNAUTHORIZED, "code".into()),
        "{body}"
    );

    // A tenant without a provider has no sign-in.
    let (status, _, _) = Browser::default()
        .get(&format!("{base}/api/v1/session/oidc/nobody"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every sign-in and refusal is in the audit log, with the person.
    let (status, entries) = call(
        &ada,
        &base,
        reqwest::Method::GET,
        "/api/v1/audit?kind=auth.",
        None,
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let of_kind = |kind: &str| -> Vec<String> {
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["actor"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        of_kind("auth.signed_in"),
        [
            "ada@example.com",
            "bob@example.com",
            "bob@example.com",
            "ada@example.com"
        ]
    );
    let refused = of_kind("auth.sign_in_refused");
    for who in ["eve@example.com", "mallory@example.com", "carol@example.com"] {
        assert!(refused.contains(&who.to_string()), "{refused:?}");
    }
    // The forged state and the replayed code (no person known yet); a callback without the
    // browser's sign-in names no tenant, so it has no tenant's log to go to.
    assert_eq!(refused.iter().filter(|a| *a == "oidc").count(), 2, "{refused:?}");

    // The same sign-in in Chromium, from the console's button: through the provider and back to
    // the console, signed in with her roles, the session cookie out of the page's reach.
    let seen = tenure_tests::browser::run("oidc.mjs", &[base.as_str(), "t", "ada"]).await;
    assert!(
        seen["who"]
            .as_str()
            .unwrap_or_default()
            .contains("ada@example.com (owner)"),
        "{seen:#}"
    );
    assert_eq!(seen["at"], "/console/", "{seen:#}");
    assert!(
        seen["visited"]
            .as_array()
            .is_some_and(|v| v.contains(&json!(idp.issuer))),
        "the browser went through the provider: {seen:#}"
    );
    let cookies = seen["cookies"].as_array().expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c["name"] == "tenure_session")
        .expect("session cookie");
    assert_eq!(
        (session["httpOnly"].clone(), session["sameSite"].clone()),
        (json!(true), json!("Strict"))
    );
    let _ = server.kill();
    let _ = server.wait();
    let out = run_cli(&path, &["audit", "verify", "--config", "tenure.toml"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
