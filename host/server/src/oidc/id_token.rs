//! Verifying an OpenID Connect ID token (a JWS in compact form) against the provider's JWKS:
//! RS256/384/512, PS256/384/512 and ES256/384 with ring, the host's one crypto library; then
//! its issuer, audience, authorized party, expiry, issue time and nonce.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// How far clocks may disagree, in seconds.
const LEEWAY_S: i64 = 60;

/// Why an ID token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the ID token is not a signed JWT in compact form")]
    Malformed,
    #[error("the ID token's algorithm {0:?} is not accepted (RS*, PS*, ES256, ES384)")]
    Algorithm(String),
    #[error("no key in the provider's JWKS matches the ID token (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the ID token's signature does not verify")]
    Signature,
    #[error("the ID token's claim {claim} is wrong: {reason}")]
    Claim { claim: &'static str, reason: String },
}

/// A key from a JWKS (RFC 7517); only the members verification needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// A provider's published keys.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// What the token must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Now, in seconds since the epoch.
    pub now_s: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn header(token: &str) -> Result<Header, TokenError> {
    let encoded = token.split('.').next().ok_or(TokenError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// Verifies `token` with a key of `keys` and checks its claims; returns them.
pub fn verify(token: &str, keys: &JwkSet, expected: &Expected<'_>) -> Result<Map<String, Value>, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [head, body, sig] = parts[..] else {
        return Err(TokenError::Malformed);
    };
    let header = header(token)?;
    let algorithm = Algorithm::parse(&header.alg)?;
    let signature = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
    let signed = &token.as_bytes()[..head.len() + 1 + body.len()];
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .filter(|k| k.key_use.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == header.alg))
        .filter(|k| k.kty == algorithm.key_type())
        .collect();
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey(header.kid));
    }
    if !candidates.iter().any(|k| algorithm.verify(k, signed, &signature)) {
        return Err(TokenError::Signature);
    }
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn claim_error(claim: &'static str, reason: impl Into<String>) -> TokenError {
    TokenError::Claim {
        claim,
        reason: reason.into(),
    }
}

fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), TokenError> {
    let text = |name: &'static str| claims.get(name).and_then(Value::as_str);
    let time = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_f64)
            .map(|t| t as i64)
            .ok_or_else(|| claim_error(name, "missing or not a number"))
    };
    if text("iss") != Some(expected.issuer) {
        return Err(claim_error("iss", format!("expected {:?}", expected.issuer)));
    }
    if text("sub").is_none_or(str::is_empty) {
        return Err(claim_error("sub", "missing"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(claim_error(
            "aud",
            format!("does not include {:?}", expected.client_id),
        ));
    }
    // Several audiences: the token must have been issued to this client (OIDC Core 3.1.3.7).
    if let Some(azp) = text("azp").filter(|_| audiences.len() > 1)
        && azp != expected.client_id
    {
        return Err(claim_error("azp", format!("expected {:?}", expected.client_id)));
    }
    if time("exp")? + LEEWAY_S <= expected.now_s {
        return Err(claim_error("exp", "the token has expired"));
    }
    if time("iat")? - LEEWAY_S > expected.now_s {
        return Err(claim_error("iat", "issued in the future"));
    }
    if text("nonce") != Some(expected.nonce) {
        return Err(claim_error("nonce", "does not match this sign-in"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Algorithm {
    Rsa(&'static signature::RsaParameters),
    Ec(
        &'static signature::EcdsaVerificationAlgorithm,
        &'static str,
        usize,
    ),
}

impl Algorithm {
    fn parse(name: &str) -> Result<Self, TokenError> {
        Ok(match name {
            "RS256" => Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            "RS384" => Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            "RS512" => Algorithm::Rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            "PS256" => Algorithm::Rsa(&signature::RSA_PSS_2048_8192_SHA256),
            "PS384" => Algorithm::Rsa(&signature::RSA_PSS_2048_8192_SHA384),
            "PS512" => Algorithm::Rsa(&signature::RSA_PSS_2048_8192_SHA512),
            "ES256" => Algorithm::Ec(&signature::ECDSA_P256_SHA256_FIXED, "P-256", 32),
            "ES384" => Algorithm::Ec(&signature::ECDSA_P384_SHA384_FIXED, "P-384", 48),
            // `none`, HS* (a shared secret is no proof of the provider) and anything else.
            other => return Err(TokenError::Algorithm(other.to_string())),
        })
    }

    fn key_type(self) -> &'static str {
        match self {
            Algorithm::Rsa(_) => "RSA",
            Algorithm::Ec(..) => "EC",
        }
    }

    fn verify(self, key: &Jwk, signed: &[u8], sig: &[u8]) -> bool {
        let decode = |v: &Option<String>| v.as_deref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        match self {
            Algorithm::Rsa(params) => {
                let (Some(n), Some(e)) = (decode(&key.n), decode(&key.e)) else {
                    return false;
                };
                RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(params, signed, sig)
                    .is_ok()
            }
            Algorithm::Ec(alg, curve, size) => {
                let (Some(x), Some(y)) = (decode(&key.x), decode(&key.y)) else {
                    return false;
                };
                if key.crv.as_deref() != Some(curve) || x.len() != size || y.len() != size {
                    return false;
                }
                let point = [&[4u8][..], &x, &y].concat();
                UnparsedPublicKey::new(alg, point).verify(signed, sig).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ec_key() -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            key_use: Some("sig".into()),
            alg: None,
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(b64(&point[1..33])),
            y: Some(b64(&point[33..])),
        };
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64(sig.as_ref()))
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "sub": "u1", "aud": "tenure", "exp": NOW + 300,
               "iat": NOW, "nonce": "n1", "groups": ["owners"]})
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "tenure",
            nonce: "n1",
            now_s: NOW,
        }
    }

    #[test]
    fn a_well_signed_token_with_the_right_claims_verifies() {
        let (pair, jwk) = ec_key();
        let token = sign(&pair, json!({"alg": "ES256", "kid": "k1"}), claims());
        let keys = JwkSet { keys: vec![jwk] };
        let got = verify(&token, &keys, &expected()).unwrap();
        assert_eq!(got["groups"], json!(["owners"]));
    }

    #[test]
    fn a_token_signed_by_another_key_or_tampered_with_is_refused() {
        let (pair, jwk) = ec_key();
        let (other, _) = ec_key();
        let keys = JwkSet { keys: vec![jwk] };
        let forged = sign(&other, json!({"alg": "ES256", "kid": "k1"}), claims());
        assert_eq!(verify(&forged, &keys, &expected()), Err(TokenError::Signature));
        let token = sign(&pair, json!({"alg": "ES256", "kid": "k1"}), claims());
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut changed = claims();
        changed["groups"] = json!(["everyone"]);
        parts[1] = b64(changed.to_string().as_bytes());
        assert_eq!(
            verify(&parts.join("."), &keys, &expected()),
            Err(TokenError::Signature)
        );
        let unknown = sign(&pair, json!({"alg": "ES256", "kid": "k9"}), claims());
        assert_eq!(
            verify(&unknown, &keys, &expected()),
            Err(TokenError::UnknownKey(Some("k9".into())))
        );
    }

    #[test]
    fn unsigned_and_shared_secret_tokens_are_refused() {
        let (_, jwk) = ec_key();
        let keys = JwkSet { keys: vec![jwk] };
        for alg in ["none", "HS256"] {
            let head = b64(json!({"alg": alg}).to_string().as_bytes());
            let body = b64(claims().to_string().as_bytes());
            let token = format!("{head}.{body}.");
            assert_eq!(
                verify(&token, &keys, &expected()),
                Err(TokenError::Algorithm(alg.into()))
            );
        }
        assert_eq!(
            verify("not-a-jwt", &keys, &expected()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn each_wrong_claim_is_named() {
        let (pair, jwk) = ec_key();
        let keys = JwkSet { keys: vec![jwk] };
        let cases: [(&str, Value, &str); 6] = [
            ("iss", json!("https://evil.example"), "iss"),
            ("aud", json!(["other"]), "aud"),
            ("exp", json!(NOW - 120), "exp"),
            ("iat", json!(NOW + 600), "iat"),
            ("nonce", json!("replayed"), "nonce"),
            ("sub", json!(""), "sub"),
        ];
        for (name, value, named) in cases {
            let mut c = claims();
            c[name] = value;
            let token = sign(&pair, json!({"alg": "ES256", "kid": "k1"}), c);
            match verify(&token, &keys, &expected()) {
                Err(TokenError::Claim { claim, .. }) => assert_eq!(claim, named),
                other => panic!("{name}: {other:?}"),
            }
        }
        // Several audiences: the authorized party must be this client.
        let mut c = claims();
        c["aud"] = json!(["tenure", "other"]);
        c["azp"] = json!("other");
        let token = sign(&pair, json!({"alg": "ES256", "kid": "k1"}), c);
        assert!(matches!(
            verify(&token, &keys, &expected()),
            Err(TokenError::Claim { claim: "azp", .. })
        ));
    }
}
