//! Demonstrating Proof of Possession (DPoP, RFC 9449): tokens bound to a key the host holds, so
//! a token that leaks is useless without it. Okta service apps ask for it by default ("Require
//! DPoP header in token requests").
//!
//! Each connection gets a P-256 key made in this process when first needed; it never leaves the
//! host. Every token request and every API request carries a fresh proof: a JWT signed by that
//! key, naming the method and URL (and for API requests, the token's hash). A server that asks
//! for a nonce (`use_dpop_nonce`, with a `DPoP-Nonce` header) gets it in the next proof.

use super::jwt::{KeyError, Signer, random_id};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::HashMap;
use std::sync::Mutex;

/// The header a proof travels in, and the one a server's nonce comes in.
pub const PROOF_HEADER: &str = "DPoP";
pub const NONCE_HEADER: &str = "DPoP-Nonce";

/// One connection's proof key, and the last nonce each server (by origin) asked for.
pub struct DpopKey {
    signer: Signer,
    jwk: serde_json::Value,
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpopKey({})", self.thumbprint())
    }
}

impl DpopKey {
    /// A new key.
    pub fn generate() -> Result<DpopKey, KeyError> {
        let signer = Signer::generate_p256()?;
        // The public key as an uncompressed point: 0x04, then x and y (32 bytes each).
        let point = signer.public_key();
        let (x, y) = match point.as_slice() {
            [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => return Err(KeyError::Unsupported("not an uncompressed P-256 point".into())),
        };
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        Ok(DpopKey {
            signer,
            jwk,
            nonces: Mutex::default(),
        })
    }

    /// The public key as a JWK (what every proof's header carries).
    pub fn jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// The key's JWK thumbprint (RFC 7638), which a bound token's `cnf.jkt` names.
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(&self.jwk)
    }

    /// A proof for one request: `method` on `url`, for `access_token` when one is sent with it,
    /// with the nonce the server last asked for.
    pub fn proof(
        &self,
        method: &str,
        url: &url::Url,
        access_token: Option<&str>,
    ) -> Result<String, KeyError> {
        let mut claims = serde_json::json!({
            "jti": random_id(),
            "htm": method.to_ascii_uppercase(),
            "htu": target_uri(url),
            "iat": super::unix_now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = token_hash(token).into();
        }
        if let Some(nonce) = self.lock().get(&origin(url)) {
            claims["nonce"] = nonce.clone().into();
        }
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("jwk".into(), self.jwk.clone());
        self.signer.sign_with_header(header, &claims)
    }

    /// Keeps the nonce an answer from `url`'s server carries (servers may send a new one with
    /// any answer). True when it differs from the one kept.
    pub fn remember_nonce<'h>(
        &self,
        url: &url::Url,
        mut headers: impl Iterator<Item = (&'h str, &'h str)>,
    ) -> bool {
        let Some((_, nonce)) = headers.find(|(name, _)| name.eq_ignore_ascii_case(NONCE_HEADER)) else {
            return false;
        };
        let nonce = nonce.trim();
        if nonce.is_empty() {
            return false;
        }
        let previous = self.lock().insert(origin(url), nonce.to_string());
        previous.as_deref() != Some(nonce)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.nonces.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `htu` claim: the URL without its query and fragment (RFC 9449, 4.2).
pub fn target_uri(url: &url::Url) -> String {
    let mut bare = url.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    bare.to_string()
}

/// The `ath` claim: the token's SHA-256, base64url.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()))
}

/// A JWK's thumbprint (RFC 7638): SHA-256 over its required members in lexical order.
pub fn jwk_thumbprint(jwk: &serde_json::Value) -> String {
    let text = |name: &str| jwk[name].as_str().unwrap_or_default().to_string();
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, text("e"), text("n")),
        _ => format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            text("crv"),
            text("kty"),
            text("x"),
            text("y")
        ),
    };
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

/// Whether a token endpoint's refusal asks for a nonce (RFC 9449, 8: `400 use_dpop_nonce`).
pub fn token_endpoint_wants_nonce(status: u16, body: &[u8]) -> bool {
    status == 400
        && serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|json| json["error"] == "use_dpop_nonce")
}

/// Whether an API's refusal asks for a nonce (RFC 9449, 9: `401` with
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"`).
pub fn resource_wants_nonce<'h>(status: u16, mut headers: impl Iterator<Item = (&'h str, &'h str)>) -> bool {
    status == 401
        && headers.any(|(name, value)| {
            name.eq_ignore_ascii_case("www-authenticate")
                && value.trim_start().starts_with("DPoP")
                && value.contains("use_dpop_nonce")
        })
}

/// A server's identity for its nonces: scheme, host and port.
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    /// Checks a proof as a server would: its header, its signature by the key in the header.
    fn read(proof: &str) -> (serde_json::Value, serde_json::Value) {
        let part = |p: &str| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        let (input, signature) = proof.rsplit_once('.').unwrap();
        let (header, claims) = input.split_once('.').unwrap();
        let (header, claims) = (part(header), part(claims));
        let coordinate = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(header["jwk"][name].as_str().unwrap())
                .unwrap()
        };
        let point = [vec![4], coordinate("x"), coordinate("y")].concat();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
            .expect("the proof verifies with the key in its header");
        (header, claims)
    }

    #[test]
    fn a_proof_names_the_request_and_is_signed_by_the_key_it_carries() {
        let key = DpopKey::generate().unwrap();
        let url = url::Url::parse("https://example.okta.com/api/v1/users?search=x#frag").unwrap();
        let (header, claims) = read(&key.proof("get", &url, Some("tok")).unwrap());
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(&header["jwk"], key.jwk());
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://example.okta.com/api/v1/users");
        assert_eq!(claims["ath"], token_hash("tok"));
        assert!(claims.get("nonce").is_none(), "no nonce until a server asks");
        let (_, again) = read(&key.proof("get", &url, Some("tok")).unwrap());
        assert_ne!(claims["jti"], again["jti"], "every proof is new");
        // The key's private half never appears, only x and y.
        assert_eq!(key.jwk().as_object().unwrap().len(), 4);
    }

    #[test]
    fn a_nonce_is_kept_per_server_and_sent_with_the_next_proof() {
        let key = DpopKey::generate().unwrap();
        let token_url = url::Url::parse("https://example.okta.com/oauth2/v1/token").unwrap();
        let other = url::Url::parse("https://other.example/token").unwrap();
        assert!(key.remember_nonce(&token_url, [("dpop-nonce", "n-1")].into_iter()));
        assert!(!key.remember_nonce(&token_url, [("DPoP-Nonce", "n-1")].into_iter()));
        assert!(!key.remember_nonce(&token_url, [("content-type", "x")].into_iter()));
        assert_eq!(
            read(&key.proof("POST", &token_url, None).unwrap()).1["nonce"],
            "n-1"
        );
        assert!(
            read(&key.proof("POST", &other, None).unwrap())
                .1
                .get("nonce")
                .is_none()
        );
    }

    #[test]
    fn refusals_that_ask_for_a_nonce_are_recognised() {
        let body = concat!(
            r#"{"error":"use_dpop_nonce","#,
            r#""error_description":"Authorization server requires nonce in DPoP proof."}"#
        )
        .as_bytes();
        assert!(token_endpoint_wants_nonce(400, body));
        assert!(!token_endpoint_wants_nonce(
            400,
            br#"{"error":"invalid_dpop_proof"}"#
        ));
        assert!(!token_endpoint_wants_nonce(401, body));
        let asks = [(
            "WWW-Authenticate",
            r#"DPoP error="use_dpop_nonce", error_description="x""#,
        )];
        assert!(resource_wants_nonce(401, asks.into_iter()));
        assert!(!resource_wants_nonce(
            401,
            [("WWW-Authenticate", "Bearer")].into_iter()
        ));
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638, 3.1: the example RSA key's thumbprint.
        let jwk = serde_json::json!({
            "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_",
                "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_",
                "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI",
                "4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            ),
        });
        assert_eq!(
            jwk_thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
