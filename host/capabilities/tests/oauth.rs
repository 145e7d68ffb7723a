//! The host's credential flows against a local token endpoint and API: client secret,
//! private_key_jwt (the assertion's claims and signature checked against the key's public half),
//! a Google service account's delegated grant, SSWS; single flight, expiry, one refresh after a
//! 401, refusals and throttling.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenure_capabilities::oauth::jwt::Signer;
use tenure_capabilities::{
    CapabilityRequest, ConnectionConfig, EffectiveGrants, HttpAuth, HttpCapability, HttpConnection,
    HttpError, HttpRequest, PluginGrant, Secret, TenantConfig,
};

const RSA_KEY: &str = include_str!("../testdata/rsa-test-key.pem");

/// What the fake identity provider and API saw, and how they answer.
#[derive(Default)]
struct Provider {
    /// Token requests, as posted.
    requests: Vec<HashMap<String, String>>,
    /// Tokens issued and still valid.
    valid: Vec<String>,
    /// Authorization headers the API saw.
    seen: Vec<String>,
    /// How the token endpoint answers next: None issues a token.
    refuse: Option<(StatusCode, HeaderMap, Value)>,
    expires_in: u64,
}

type Shared = Arc<Mutex<Provider>>;

async fn token(State(p): State<Shared>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    // Slow enough that concurrent callers overlap.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut p = p.lock().unwrap();
    p.requests.push(form);
    if let Some((status, headers, body)) = p.refuse.clone() {
        return (status, headers, axum::Json(body)).into_response();
    }
    let token = format!("tok-{}", p.requests.len());
    p.valid.push(token.clone());
    let expires_in = p.expires_in;
    axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}))
        .into_response()
}

async fn me(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut p = p.lock().unwrap();
    p.seen.push(auth.clone());
    let ok = auth.starts_with("SSWS ")
        || auth
            .strip_prefix("Bearer ")
            .is_some_and(|t| p.valid.iter().any(|v| v == t));
    if ok {
        (StatusCode::OK, "{}").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "{\"error\":\"InvalidAuthenticationToken\"}",
        )
            .into_response()
    }
}

/// Records what a create carried (body and header names), as the destination saw it.
async fn users(State(p): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut p = p.lock().unwrap();
    let names: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
    p.seen.push(format!("{} {body}", names.join(",")));
    (StatusCode::CREATED, "{}").into_response()
}

/// Starts the fake on loopback; its base URL.
async fn provider() -> (Shared, String) {
    let shared: Shared = Arc::new(Mutex::new(Provider {
        expires_in: 3600,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/token", post(token))
        .route("/api/me", get(me))
        .route("/api/users", post(users))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (shared, format!("http://{addr}"))
}

fn setup(base: &str, auth: HttpAuth) -> (TenantConfig, EffectiveGrants) {
    let mut tenant = TenantConfig::default();
    tenant.connections.insert(
        "api".into(),
        ConnectionConfig::Http(HttpConnection {
            url: format!("{base}/api"),
            auth,
            timeout_ms: Some(5_000),
            rate_limit: None,
            retry_429: 0,
            allow_plaintext: false,
            allow_private_network: true,
            parsed: Default::default(),
        }),
    );
    let request = CapabilityRequest {
        http: vec!["api".into()],
        ..Default::default()
    };
    tenant.plugins.insert(
        "p".into(),
        PluginGrant {
            grants: request.clone(),
            ..Default::default()
        },
    );
    let grants = EffectiveGrants::new("t", "p", &request, &tenant);
    (tenant, grants)
}

fn me_request() -> HttpRequest {
    HttpRequest {
        connection: "api".into(),
        method: "GET".into(),
        path: "/me".into(),
        headers: vec![],
        body: None,
        timeout_ms: None,
    }
}

fn client_secret(base: &str) -> HttpAuth {
    HttpAuth::OAuth2 {
        token_url: format!("{base}/token"),
        client_id: "app-1".into(),
        scopes: vec!["https://graph.microsoft.com/.default".into()],
        client_secret: Secret::new("s3cret-value"),
        dpop: false,
    }
}

/// Decodes a JWT, checking its signature with `signer`'s public key; (header, claims).
fn verified(jwt: &str, signer: &Signer) -> (Value, Value) {
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signer.public_key(),
    )
    .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
    .expect("the assertion is signed by the configured key");
    let (header, claims) = input.split_once('.').unwrap();
    let decode =
        |part: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap() };
    (decode(header), decode(claims))
}

#[tokio::test]
async fn a_client_secret_token_is_fetched_once_for_concurrent_calls_and_renewed_after_a_401() {
    let (p, base) = provider().await;
    let (tenant, grants) = setup(&base, client_secret(&base));
    let http = Arc::new(HttpCapability::new().unwrap());
    let calls = (0..8).map(|_| {
        let (http, tenant, grants) = (http.clone(), tenant.clone(), grants.clone());
        tokio::spawn(async move { http.send(&grants, &tenant, me_request()).await })
    });
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status, 200);
    }
    {
        let p = p.lock().unwrap();
        assert_eq!(p.requests.len(), 1, "one token for eight concurrent calls");
        let form = &p.requests[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "app-1");
        assert_eq!(form["client_secret"], "s3cret-value");
        assert_eq!(form["scope"], "https://graph.microsoft.com/.default");
        assert!(p.seen.iter().all(|a| a == "Bearer tok-1"), "{:?}", p.seen);
    }
    // The provider revokes the token: the next call meets a 401, fetches a new token, retries once.
    p.lock().unwrap().valid.clear();
    assert_eq!(
        http.send(&grants, &tenant, me_request()).await.unwrap().status,
        200
    );
    let p = p.lock().unwrap();
    assert_eq!(p.requests.len(), 2);
    assert_eq!(p.seen[p.seen.len() - 2..], ["Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test]
async fn a_token_is_replaced_before_it_expires() {
    let (p, base) = provider().await;
    p.lock().unwrap().expires_in = 1;
    let (tenant, grants) = setup(&base, client_secret(&base));
    let http = HttpCapability::new().unwrap();
    http.send(&grants, &tenant, me_request()).await.unwrap();
    http.send(&grants, &tenant, me_request()).await.unwrap();
    assert_eq!(p.lock().unwrap().requests.len(), 1, "still fresh");
    tokio::time::sleep(Duration::from_millis(600)).await;
    http.send(&grants, &tenant, me_request()).await.unwrap();
    assert_eq!(
        p.lock().unwrap().requests.len(),
        2,
        "renewed within its last half"
    );
}

#[tokio::test]
async fn a_private_key_jwt_assertion_carries_the_claims_and_the_configured_keys_signature() {
    let (p, base) = provider().await;
    let auth = HttpAuth::OAuth2Jwt {
        token_url: format!("{base}/token"),
        client_id: "0oa-service".into(),
        scopes: vec!["okta.users.manage".into(), "okta.groups.manage".into()],
        private_key: Secret::new(RSA_KEY),
        key_id: Some("kid-1".into()),
        certificate_thumbprint: Some("00112233445566778899AABBCCDDEEFF00112233".into()),
        dpop: false,
    };
    let (tenant, grants) = setup(&base, auth);
    let http = HttpCapability::new().unwrap();
    assert_eq!(
        http.send(&grants, &tenant, me_request()).await.unwrap().status,
        200
    );
    let form = p.lock().unwrap().requests[0].clone();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "okta.users.manage okta.groups.manage");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!form.contains_key("client_secret"));
    let signer = Signer::from_pem(RSA_KEY).unwrap();
    let (header, claims) = verified(&form["client_assertion"], &signer);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "kid-1");
    assert_eq!(header["x5t"], "ABEiM0RVZneImaq7zN3u_wARIjM");
    assert_eq!(
        (claims["iss"].as_str(), claims["sub"].as_str()),
        (Some("0oa-service"), Some("0oa-service"))
    );
    assert_eq!(claims["aud"], format!("{base}/token"));
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert!(exp > iat && exp - iat <= 300, "short-lived: {claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

#[tokio::test]
async fn a_google_service_account_acts_as_its_delegated_admin() {
    let (p, base) = provider().await;
    let key_file = json!({
        "type": "service_account", "project_id": "tenure-test", "private_key_id": "pk-7",
        "private_key": RSA_KEY, "client_email": "tenure@tenure-test.iam.gserviceaccount.com",
        "client_id": "1234", "token_uri": format!("{base}/token"),
    });
    let auth = HttpAuth::GoogleServiceAccount {
        key: Secret::new(key_file.to_string()),
        subject: "admin@example.com".into(),
        scopes: vec![
            "https://www.googleapis.com/auth/admin.directory.user".into(),
            "https://www.googleapis.com/auth/admin.directory.group.member".into(),
        ],
        token_url: None,
    };
    let (tenant, grants) = setup(&base, auth);
    let http = HttpCapability::new().unwrap();
    assert_eq!(
        http.send(&grants, &tenant, me_request()).await.unwrap().status,
        200
    );
    let form = p.lock().unwrap().requests[0].clone();
    assert_eq!(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let (header, claims) = verified(&form["assertion"], &Signer::from_pem(RSA_KEY).unwrap());
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("RS256"), Some("pk-7"))
    );
    assert_eq!(claims["iss"], "tenure@tenure-test.iam.gserviceaccount.com");
    assert_eq!(claims["sub"], "admin@example.com");
    assert_eq!(
        claims["scope"],
        concat!(
            "https://www.googleapis.com/auth/admin.directory.user ",
            "https://www.googleapis.com/auth/admin.directory.group.member"
        )
    );
    assert_eq!(claims["aud"], format!("{base}/token"));
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 3600);
}

#[tokio::test]
async fn a_refusal_names_the_connection_and_the_reason_and_a_throttle_is_a_429_from_the_host() {
    let (p, base) = provider().await;
    let (tenant, grants) = setup(&base, client_secret(&base));
    let http = HttpCapability::new().unwrap();
    p.lock().unwrap().refuse = Some((
        StatusCode::UNAUTHORIZED,
        HeaderMap::new(),
        json!({"error": "invalid_client",
               "error_description": "AADSTS7000215: Invalid client secret provided."}),
    ));
    let e = http.send(&grants, &tenant, me_request()).await.unwrap_err();
    let text = e.to_string();
    let named =
        |m: &str| m.contains("\"api\"") && m.contains("invalid_client") && m.contains("AADSTS7000215");
    assert!(matches!(&e, HttpError::Denied(m) if named(m)), "{e:?}");
    assert!(
        !text.contains("s3cret-value"),
        "the secret never appears in an error"
    );
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "3".parse().unwrap());
    p.lock().unwrap().refuse = Some((
        StatusCode::TOO_MANY_REQUESTS,
        headers,
        json!({"error": "slow down"}),
    ));
    let throttled = http.send(&grants, &tenant, me_request()).await.unwrap();
    assert_eq!(throttled.status, 429);
    let header = |name: &str| {
        throttled
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        (header("retry-after"), header("x-tenure-throttled")),
        (Some("3"), Some("host"))
    );
    assert!(
        p.lock().unwrap().seen.is_empty(),
        "the API was never called without a token"
    );
}

#[tokio::test]
async fn an_okta_api_token_goes_as_ssws_and_a_plugin_cannot_set_authorization() {
    let (p, base) = provider().await;
    let (tenant, grants) = setup(
        &base,
        HttpAuth::Ssws {
            token: Secret::new("00okta-token"),
        },
    );
    let http = HttpCapability::new().unwrap();
    assert_eq!(
        http.send(&grants, &tenant, me_request()).await.unwrap().status,
        200
    );
    assert_eq!(p.lock().unwrap().seen, ["SSWS 00okta-token"]);
    let mut forged = me_request();
    forged.headers.push(("Authorization".into(), "SSWS other".into()));
    assert!(matches!(
        http.send(&grants, &tenant, forged).await,
        Err(HttpError::InvalidRequest(_))
    ));
}

/// The passwords a policy was handed, by subject.
#[derive(Default)]
struct Kept(Mutex<Vec<(String, String, String)>>);

impl tenure_capabilities::passwords::PasswordSink for Kept {
    fn deliver(&self, tenant: &str, _connection: &str, subject: &str, password: &Secret) {
        let entry = (
            tenant.to_string(),
            subject.to_string(),
            password.expose().to_string(),
        );
        self.0.lock().unwrap().push(entry);
    }
}

fn create_request(headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        connection: "api".into(),
        method: "POST".into(),
        path: "/users".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: Some(br#"{"primaryEmail":"ann@example.test","name":{"givenName":"Ann"}}"#.to_vec()),
        timeout_ms: None,
    }
}

/// A plugin asks for an initial password by JSON pointer; the host generates it, places it in the
/// body, hands it to the tenant's policy under the named account, and sends neither header.
#[tokio::test]
async fn the_host_places_a_generated_password_where_the_plugin_points() {
    let (p, base) = provider().await;
    let (tenant, grants) = setup(&base, HttpAuth::None);
    let kept = Arc::new(Kept::default());
    let http = HttpCapability::new().unwrap().with_passwords(kept.clone());
    let asked = [
        ("x-tenure-generated-password", "/password"),
        ("x-tenure-password-subject", "ann@example.test"),
    ];
    let answer = http.send(&grants, &tenant, create_request(&asked)).await.unwrap();
    assert_eq!(answer.status, 201);
    let kept = kept.0.lock().unwrap().clone();
    assert_eq!(kept.len(), 1);
    let (tenant_name, subject, password) = &kept[0];
    assert_eq!(
        (tenant_name.as_str(), subject.as_str()),
        ("t", "ann@example.test")
    );
    assert!(password.len() >= 20, "{password}");
    let seen = p.lock().unwrap().seen.last().cloned().unwrap();
    let (names, body) = seen.split_once(' ').unwrap();
    assert!(
        !names.contains("x-tenure"),
        "the password headers are not sent: {names}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["password"], password.as_str());
    assert_eq!(body["name"]["givenName"], "Ann");

    // No subject, or a pointer that cannot be followed: refused before anything is sent.
    let before = p.lock().unwrap().seen.len();
    for headers in [
        vec![("x-tenure-generated-password", "/password")],
        vec![
            ("x-tenure-generated-password", "/name/givenName/x"),
            ("x-tenure-password-subject", "ann@example.test"),
        ],
    ] {
        let e = http
            .send(&grants, &tenant, create_request(&headers))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, HttpError::InvalidRequest(m) if m.contains("x-tenure-")),
            "{e:?}"
        );
    }
    assert_eq!(p.lock().unwrap().seen.len(), before);
}
