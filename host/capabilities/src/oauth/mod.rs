//! Tokens the host obtains for a connection: OAuth2 client credentials with a client secret or a
//! signed assertion (`private_key_jwt`), and a Google service account's JWT bearer grant with
//! domain-wide delegation. A token is kept per connection until shortly before it expires, fetched
//! once however many calls wait for it (single flight), and dropped after a 401 so that the next
//! attempt fetches a new one. No plugin sees a token, a secret or a key.

pub mod dpop;
pub mod jwt;

use crate::config::{HttpAuth, HttpConnection};
use crate::secret::Secret;
use dpop::DpopKey;
use jwt::Signer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Google's token endpoint, when the key file names none.
const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// How long a signed assertion is valid (Google allows an hour; Microsoft and Okta ask for short).
const ASSERTION_SECS: u64 = 300;
/// A token is replaced this long before it expires (at most half its life).
const REFRESH_MARGIN: Duration = Duration::from_secs(120);
/// The lifetime assumed when the endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3_600);
/// Largest token endpoint answer read.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The endpoint refused the credentials (a configuration problem: retrying will not help).
    #[error("the token endpoint refused the credentials ({status}): {error}")]
    Refused { status: u16, error: String },
    /// The endpoint asked to wait.
    #[error("the token endpoint is throttling: retry in {0:?}")]
    Throttled(Duration),
    /// The endpoint could not be reached or failed (retrying may help).
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// The connection's credentials cannot be used as configured.
    #[error("{0}")]
    Config(String),
}

/// How a connection gets its tokens, read from its `auth`.
enum Grant<'a> {
    ClientSecret {
        token_url: &'a str,
        client_id: &'a str,
        scopes: &'a [String],
        secret: &'a Secret,
        dpop: bool,
    },
    Assertion {
        token_url: &'a str,
        client_id: &'a str,
        scopes: &'a [String],
        private_key: &'a Secret,
        key_id: Option<&'a str>,
        thumbprint: Option<&'a str>,
        dpop: bool,
    },
    Google {
        key: &'a Secret,
        subject: &'a str,
        scopes: &'a [String],
        token_url: Option<&'a str>,
    },
}

impl<'a> Grant<'a> {
    fn of(auth: &'a HttpAuth) -> Option<Grant<'a>> {
        Some(match auth {
            HttpAuth::OAuth2 {
                token_url,
                client_id,
                scopes,
                client_secret,
                dpop,
            } => Grant::ClientSecret {
                token_url,
                client_id,
                scopes,
                secret: client_secret,
                dpop: *dpop,
            },
            HttpAuth::OAuth2Jwt {
                token_url,
                client_id,
                scopes,
                private_key,
                key_id,
                certificate_thumbprint,
                dpop,
            } => Grant::Assertion {
                token_url,
                client_id,
                scopes,
                private_key,
                key_id: key_id.as_deref(),
                thumbprint: certificate_thumbprint.as_deref(),
                dpop: *dpop,
            },
            HttpAuth::GoogleServiceAccount {
                key,
                subject,
                scopes,
                token_url,
            } => Grant::Google {
                key,
                subject,
                scopes,
                token_url: token_url.as_deref(),
            },
            _ => return None,
        })
    }

    /// Whether its tokens are bound to a proof key (DPoP).
    fn dpop(&self) -> bool {
        match self {
            Grant::ClientSecret { dpop, .. } | Grant::Assertion { dpop, .. } => *dpop,
            Grant::Google { .. } => false,
        }
    }
}

/// Identifies a connection's token: everything that decides which token the endpoint gives
/// (endpoint, client, credential, subject, scopes), so two tenants' connections of the same name
/// never share one. Never leaves the process. Hashed on every request, private keys included,
/// so with foldhash, several times quicker than SipHash on a private key.
pub fn cache_key(name: &str, conn: &HttpConnection) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = crate::KEY_HASHER.build_hasher();
    (name, &conn.url).hash(&mut h);
    match Grant::of(&conn.auth) {
        Some(Grant::ClientSecret {
            token_url,
            client_id,
            scopes,
            secret,
            dpop,
        }) => (0u8, token_url, client_id, scopes, secret.expose(), dpop).hash(&mut h),
        Some(Grant::Assertion {
            token_url,
            client_id,
            scopes,
            private_key,
            key_id,
            thumbprint,
            dpop,
        }) => (
            1u8,
            token_url,
            client_id,
            scopes,
            private_key.expose(),
            key_id,
            thumbprint,
            dpop,
        )
            .hash(&mut h),
        Some(Grant::Google {
            key,
            subject,
            scopes,
            token_url,
        }) => (2u8, key.expose(), subject, scopes, token_url).hash(&mut h),
        None => 3u8.hash(&mut h),
    }
    h.finish()
}

/// Whether a connection's requests carry a token the host fetches.
pub fn uses_tokens(auth: &HttpAuth) -> bool {
    Grant::of(auth).is_some()
}

/// How a token is presented: `Authorization: Bearer`, or `Authorization: DPoP` with a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScheme {
    Bearer,
    Dpop,
}

/// A token the host fetched, and how to present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub secret: Secret,
    pub scheme: TokenScheme,
}

/// One request to a token endpoint: where, the form, and the DPoP proof when the grant has one.
pub struct TokenRequest {
    pub url: String,
    pub form: String,
    pub dpop: Option<String>,
}

/// A token and when to replace it.
#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// One connection's token, behind an async lock held while it is fetched (single flight).
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// The fields of a Google service account key file the grant needs.
#[derive(serde::Deserialize)]
struct GoogleKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Tokens per connection, and the parsed signing keys.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<u64, Slot>>,
    signers: Mutex<HashMap<u64, Arc<Signer>>>,
    proof_keys: Mutex<HashMap<u64, Arc<DpopKey>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

/// A token endpoint's answer: status, headers and body.
pub type TokenAnswer = (u16, Vec<(String, String)>, Vec<u8>);

impl TokenCache {
    fn slot(&self, key: u64) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }

    /// The connection's current token, fetched through `post` when there is none or it is about
    /// to expire. Callers waiting at the same time share one fetch.
    /// `post` sends one request (the HTTP client, the connection's egress rules and its
    /// deadline are the caller's); a DPoP grant may send a second when the endpoint asks for a
    /// nonce.
    pub async fn token<F, Fut>(
        &self,
        key: u64,
        conn: &HttpConnection,
        post: F,
    ) -> Result<AccessToken, TokenError>
    where
        F: Fn(TokenRequest) -> Fut,
        Fut: std::future::Future<Output = Result<TokenAnswer, String>>,
    {
        let Some(grant) = Grant::of(&conn.auth) else {
            return Err(TokenError::Config("this connection does not use tokens".into()));
        };
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let proof_key = grant.dpop().then(|| self.proof_key(key)).transpose()?;
        let fetched_at = Instant::now();
        let mut nonce_asked = false;
        let (status, headers, body) = loop {
            // A new assertion each time: its `jti` may be used once.
            let (url, form) = self.request(key, &grant)?;
            let Some(proof_key) = &proof_key else {
                let request = TokenRequest {
                    url,
                    form,
                    dpop: None,
                };
                break post(request).await.map_err(TokenError::Unavailable)?;
            };
            let endpoint =
                url::Url::parse(&url).map_err(|e| TokenError::Config(format!("token_url: {e}")))?;
            let proof = proof_key
                .proof("POST", &endpoint, None)
                .map_err(|e| TokenError::Config(format!("DPoP proof: {e}")))?;
            let request = TokenRequest {
                url,
                form,
                dpop: Some(proof),
            };
            let answer = post(request).await.map_err(TokenError::Unavailable)?;
            let new_nonce = proof_key.remember_nonce(&endpoint, answer.1.iter().map(|(n, v)| (&**n, &**v)));
            if new_nonce && !nonce_asked && dpop::token_endpoint_wants_nonce(answer.0, &answer.2) {
                nonce_asked = true;
                continue;
            }
            break answer;
        };
        let (token, lifetime) = read_token_response(status, &headers, &body)?;
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: fetched_at + lifetime - margin,
        });
        Ok(token)
    }

    /// Forgets `used` after the destination answered 401 with it (a newer token stays).
    pub async fn reject(&self, key: u64, used: &AccessToken) {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == used) {
            *cached = None;
        }
    }

    /// The connection's DPoP key, made when first asked for (it lives as long as the process;
    /// tokens bound to it are fetched again after a restart).
    pub fn proof_key(&self, key: u64) -> Result<Arc<DpopKey>, TokenError> {
        let mut keys = self.proof_keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&key) {
            return Ok(k.clone());
        }
        let made = Arc::new(
            DpopKey::generate().map_err(|e| TokenError::Config(format!("cannot make a DPoP key: {e}")))?,
        );
        keys.insert(key, made.clone());
        Ok(made)
    }

    fn signer(&self, key: u64, pem: &str) -> Result<Arc<Signer>, TokenError> {
        let mut signers = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = signers.get(&key) {
            return Ok(s.clone());
        }
        let signer = Arc::new(
            Signer::from_pem(pem)
                .map_err(|e| TokenError::Config(format!("the connection's private key: {e}")))?,
        );
        signers.insert(key, signer.clone());
        Ok(signer)
    }

    /// The token endpoint and the form to post to it.
    fn request(&self, key: u64, grant: &Grant<'_>) -> Result<(String, String), TokenError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        let scope = |scopes: &[String]| scopes.join(" ");
        let url = match grant {
            Grant::ClientSecret {
                token_url,
                client_id,
                scopes,
                secret,
                ..
            } => {
                form.append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", secret.expose());
                if !scopes.is_empty() {
                    form.append_pair("scope", &scope(scopes));
                }
                token_url.to_string()
            }
            Grant::Assertion {
                token_url,
                client_id,
                scopes,
                private_key,
                key_id,
                thumbprint,
                ..
            } => {
                let signer = self.signer(key, private_key.expose())?;
                let mut header = Vec::new();
                if let Some(kid) = key_id {
                    header.push(("kid", kid.to_string()));
                }
                if let Some(hex_print) = thumbprint {
                    header.push(("x5t", x5t(hex_print)?));
                }
                let now = unix_now();
                let claims = serde_json::json!({
                    "iss": client_id, "sub": client_id, "aud": token_url,
                    "iat": now, "nbf": now, "exp": now + ASSERTION_SECS, "jti": jwt::random_id(),
                });
                let fields: Vec<(&str, &str)> = header.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let assertion = signer
                    .sign(&fields, &claims)
                    .map_err(|e| TokenError::Config(e.to_string()))?;
                form.append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", client_id)
                    .append_pair(
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    )
                    .append_pair("client_assertion", &assertion);
                if !scopes.is_empty() {
                    form.append_pair("scope", &scope(scopes));
                }
                token_url.to_string()
            }
            Grant::Google {
                key: key_file,
                subject,
                scopes,
                token_url,
            } => {
                let parsed: GoogleKey = serde_json::from_str(key_file.expose()).map_err(|e| {
                    // serde_json's message names the field and position, never the value.
                    TokenError::Config(format!(
                        "the service account key is not a Google JSON key file: {e}"
                    ))
                })?;
                let url = token_url
                    .map(str::to_string)
                    .or(parsed.token_uri.clone())
                    .unwrap_or_else(|| GOOGLE_TOKEN_URL.to_string());
                let signer = self.signer(key, &parsed.private_key)?;
                let now = unix_now();
                let claims = serde_json::json!({
                    "iss": parsed.client_email, "sub": subject, "scope": scope(scopes),
                    "aud": url, "iat": now, "exp": now + ASSERTION_SECS,
                });
                let header: Vec<(&str, &str)> = parsed
                    .private_key_id
                    .as_deref()
                    .map(|k| ("kid", k))
                    .into_iter()
                    .collect();
                let assertion = signer
                    .sign(&header, &claims)
                    .map_err(|e| TokenError::Config(e.to_string()))?;
                form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &assertion);
                url
            }
        };
        Ok((url, form.finish()))
    }
}

/// A certificate thumbprint (hex SHA-1, as Entra shows it) as a JWT `x5t` (base64url).
fn x5t(hex_print: &str) -> Result<String, TokenError> {
    use base64::Engine;
    let cleaned: String = hex_print.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bytes = (0..cleaned.len())
        .step_by(2)
        .map(|i| cleaned.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .filter(|b| b.len() == 20)
        .ok_or_else(|| {
            TokenError::Config(
                "certificate_thumbprint: expected the certificate's SHA-1 thumbprint in hex (40 digits)"
                    .into(),
            )
        })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads a token endpoint's answer: the token and how long it lives, or why there is none.
fn read_token_response(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<(AccessToken, Duration), TokenError> {
    let json: serde_json::Value = serde_json::from_slice(&body[..body.len().min(MAX_TOKEN_RESPONSE)])
        .unwrap_or(serde_json::Value::Null);
    match status {
        200..=299 => {}
        429 | 503 => {
            let wait = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                .map_or(Duration::from_secs(1), Duration::from_secs);
            return Err(TokenError::Throttled(wait));
        }
        400 | 401 | 403 => {
            // OAuth2 errors (RFC 6749 5.2): a code and a description, never the credential.
            let code = json["error"].as_str().unwrap_or("unknown error");
            let description = json["error_description"].as_str().unwrap_or("");
            let first_line = description.lines().next().unwrap_or("").trim();
            return Err(TokenError::Refused {
                status,
                error: format!(
                    "{code}{}{}",
                    if first_line.is_empty() { "" } else { ": " },
                    first_line
                )
                .chars()
                .take(300)
                .collect(),
            });
        }
        _ => return Err(TokenError::Unavailable(format!("HTTP {status}"))),
    }
    let token = json["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::Unavailable("the answer has no access_token".into()))?;
    // Microsoft's v1 endpoint sends `expires_in` as a string.
    let lifetime = match &json["expires_in"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|s| *s > 0)
    .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    // A token bound to the proof key says so (`DPoP`); any other type is presented as Bearer.
    let scheme = match json["token_type"].as_str() {
        Some(t) if t.eq_ignore_ascii_case("dpop") => TokenScheme::Dpop,
        _ => TokenScheme::Bearer,
    };
    let token = AccessToken {
        secret: Secret::new(token),
        scheme,
    };
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_are_read_as_oauth2_says() {
        let ok = br#"{"access_token":"t1","token_type":"Bearer","expires_in":"3599"}"#;
        let (token, life) = read_token_response(200, &[], ok).unwrap();
        assert_eq!((token.secret.expose(), life), ("t1", Duration::from_secs(3599)));
        assert_eq!(token.scheme, TokenScheme::Bearer);
        let bound = br#"{"access_token":"t2","token_type":"DPoP","expires_in":3600}"#;
        assert_eq!(
            read_token_response(200, &[], bound).unwrap().0.scheme,
            TokenScheme::Dpop
        );
        let refused = concat!(
            r#"{"error":"invalid_client","#,
            r#""error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#
        )
        .as_bytes();
        assert_eq!(
            read_token_response(401, &[], refused).unwrap_err(),
            TokenError::Refused {
                status: 401,
                error: "invalid_client: AADSTS7000215: Invalid client secret provided.".into()
            }
        );
        let wait = [("Retry-After".to_string(), "7".to_string())];
        assert_eq!(
            read_token_response(429, &wait, b"").unwrap_err(),
            TokenError::Throttled(Duration::from_secs(7))
        );
        assert!(matches!(
            read_token_response(502, &[], b"<html>"),
            Err(TokenError::Unavailable(_))
        ));
        assert!(matches!(
            read_token_response(200, &[], b"{}"),
            Err(TokenError::Unavailable(_))
        ));
    }

    #[test]
    fn thumbprints_become_x5t() {
        assert_eq!(
            x5t("00112233445566778899AABBCCDDEEFF00112233").unwrap(),
            "ABEiM0RVZneImaq7zN3u_wARIjM"
        );
        assert!(x5t("abc").is_err());
    }
}
