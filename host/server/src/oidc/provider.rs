//! Talking to an OpenID provider: its discovery document and keys (cached, the keys fetched
//! again when a token names one not yet seen), the code exchange and the userinfo endpoint.

use super::config::{OidcConfig, is_loopback};
use super::id_token::JwkSet;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a discovery document and keys are used before they are read again.
const METADATA_TTL: Duration = Duration::from_secs(60 * 60);
/// Fewest seconds between two fetches of the keys for an unknown `kid`.
const KEYS_REFRESH_MIN: Duration = Duration::from_secs(30);
/// How long one call to the provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider cannot be reached or answered badly: {0}")]
    Unavailable(String),
    #[error("the provider's discovery document is not usable: {0}")]
    Discovery(String),
    #[error("the provider refused the code: {0}")]
    Refused(String),
}

/// The parts of the discovery document (OpenID Connect Discovery 1.0) a sign-in uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// What the token endpoint answers.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub id_token: String,
    #[serde(default)]
    pub access_token: Option<String>,
}

struct Cached {
    metadata: Arc<Metadata>,
    keys: Arc<JwkSet>,
    fetched: Instant,
    keys_fetched: Instant,
}

/// One tenant's provider, its client settings, and what was read from it.
pub struct Provider {
    pub config: OidcConfig,
    client: reqwest::Client,
    cache: Mutex<Option<Cached>>,
}

impl Provider {
    pub fn new(config: OidcConfig, client: reqwest::Client) -> Self {
        Provider {
            config,
            client,
            cache: Mutex::new(None),
        }
    }

    /// The discovery document and keys, read when missing or stale.
    pub async fn metadata(&self) -> Result<(Arc<Metadata>, Arc<JwkSet>), ProviderError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| c.fetched.elapsed() < METADATA_TTL) {
            return Ok((c.metadata.clone(), c.keys.clone()));
        }
        let metadata = Arc::new(self.discover().await?);
        let keys = Arc::new(self.keys(&metadata).await?);
        let now = Instant::now();
        *cache = Some(Cached {
            metadata: metadata.clone(),
            keys: keys.clone(),
            fetched: now,
            keys_fetched: now,
        });
        Ok((metadata, keys))
    }

    /// The keys read again (a token named a key not seen yet: the provider rotated its keys),
    /// at most once every [`KEYS_REFRESH_MIN`]; `None` when they were read too recently.
    pub async fn refreshed_keys(&self) -> Result<Option<Arc<JwkSet>>, ProviderError> {
        let mut cache = self.cache.lock().await;
        let Some(c) = cache.as_mut() else {
            return Ok(None);
        };
        if c.keys_fetched.elapsed() < KEYS_REFRESH_MIN {
            return Ok(None);
        }
        let keys = Arc::new(self.keys(&c.metadata).await?);
        c.keys = keys.clone();
        c.keys_fetched = Instant::now();
        Ok(Some(keys))
    }

    /// A JSON GET (with a bearer token when given).
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, ProviderError> {
        let unavailable = |e: reqwest::Error| ProviderError::Unavailable(format!("{url}: {e}"));
        let mut request = self.client.get(url).timeout(TIMEOUT);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!(
                "{url} answered {}",
                response.status()
            )));
        }
        response.json().await.map_err(unavailable)
    }

    async fn discover(&self) -> Result<Metadata, ProviderError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = self.get(&url, None).await?;
        if metadata.issuer != self.config.issuer {
            return Err(ProviderError::Discovery(format!(
                "issuer is {:?}, the configuration says {:?}",
                metadata.issuer, self.config.issuer
            )));
        }
        for (name, endpoint) in [
            ("authorization_endpoint", &metadata.authorization_endpoint),
            ("token_endpoint", &metadata.token_endpoint),
            ("jwks_uri", &metadata.jwks_uri),
        ] {
            let url =
                url::Url::parse(endpoint).map_err(|e| ProviderError::Discovery(format!("{name}: {e}")))?;
            if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
                return Err(ProviderError::Discovery(format!("{name} is not https")));
            }
        }
        if let Some(methods) = &metadata.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(ProviderError::Discovery(
                "the provider does not offer PKCE with S256".into(),
            ));
        }
        Ok(metadata)
    }

    async fn keys(&self, metadata: &Metadata) -> Result<JwkSet, ProviderError> {
        self.get(&metadata.jwks_uri, None).await
    }

    /// Exchanges the code (with its PKCE verifier) for tokens.
    pub async fn exchange(
        &self,
        metadata: &Metadata,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, ProviderError> {
        let c = &self.config;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", c.redirect_url.as_str()),
            ("code_verifier", verifier),
        ];
        let mut request = self.client.post(&metadata.token_endpoint).timeout(TIMEOUT);
        match &c.client_secret {
            // client_secret_basic unless the provider offers only client_secret_post.
            Some(secret) if !self.secret_in_body(metadata) => {
                let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&c.client_id), Some(encode(secret.expose())));
            }
            Some(secret) => {
                form.push(("client_id", c.client_id.as_str()));
                form.push(("client_secret", secret.expose()));
            }
            None => form.push(("client_id", c.client_id.as_str())),
        }
        let body = serde_urlencoded::to_string(&form).map_err(|e| ProviderError::Refused(e.to_string()))?;
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| {
            ProviderError::Unavailable(format!("token endpoint answered {status} without JSON: {e}"))
        })?;
        if !status.is_success() {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            let detail = answer
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(ProviderError::Refused(
                format!("{error} {detail}").trim().to_string(),
            ));
        }
        serde_json::from_value(answer)
            .map_err(|e| ProviderError::Refused(format!("the token endpoint's answer has no ID token: {e}")))
    }

    fn secret_in_body(&self, metadata: &Metadata) -> bool {
        metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|m| {
                !m.iter().any(|m| m == "client_secret_basic") && m.iter().any(|m| m == "client_secret_post")
            })
    }

    /// The userinfo endpoint's claims for this access token.
    pub async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, ProviderError> {
        self.get(endpoint, Some(access_token)).await
    }
}
