//! Signed JWT assertions for token endpoints (RFC 7523): a private key from PEM (PKCS#8, or
//! PKCS#1 for RSA), RS256 for RSA keys and ES256 for P-256 keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// Why a key cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not PEM (expected -----BEGIN PRIVATE KEY-----)")]
    NotPem,
    #[error("the private key is neither RSA (2048 bits or more) nor EC P-256: {0}")]
    Unsupported(String),
    #[error("signing failed")]
    Signing,
}

/// A private key that signs assertions.
pub struct Signer {
    key: Key,
    rng: SystemRandom,
}

enum Key {
    Rsa(RsaKeyPair),
    EcP256(EcdsaKeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.algorithm())
    }
}

impl Signer {
    /// Reads a PEM private key.
    pub fn from_pem(pem: &str) -> Result<Signer, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem.trim().as_bytes()).map_err(|_| KeyError::NotPem)?;
        let rng = SystemRandom::new();
        let unsupported = |e: &dyn std::fmt::Display| KeyError::Unsupported(e.to_string());
        let key = match &der {
            PrivateKeyDer::Pkcs1(k) => {
                Key::Rsa(RsaKeyPair::from_der(k.secret_pkcs1_der()).map_err(|e| unsupported(&e))?)
            }
            PrivateKeyDer::Pkcs8(k) => {
                let der = k.secret_pkcs8_der();
                match RsaKeyPair::from_pkcs8(der) {
                    Ok(rsa) => Key::Rsa(rsa),
                    Err(rsa_error) => Key::EcP256(
                        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                            .map_err(|_| unsupported(&rsa_error))?,
                    ),
                }
            }
            _ => {
                return Err(KeyError::Unsupported(
                    "SEC1 keys: convert to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)".into(),
                ));
            }
        };
        Ok(Signer { key, rng })
    }

    /// `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "RS256",
            Key::EcP256(_) => "ES256",
        }
    }

    /// The public half (RSA: PKCS#1 `RSAPublicKey` DER; EC: the uncompressed point), for tests
    /// and for showing what to register with the identity provider.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            Key::Rsa(k) => k.public().as_ref().to_vec(),
            Key::EcP256(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// A compact JWS over `claims` with the extra header fields given (such as `kid`, `x5t`).
    pub fn sign(
        &self,
        header_fields: &[(&str, &str)],
        claims: &serde_json::Value,
    ) -> Result<String, KeyError> {
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), "JWT".into());
        for (name, value) in header_fields {
            header.insert((*name).into(), (*value).into());
        }
        self.sign_with_header(header, claims)
    }

    /// A compact JWS over `claims` with `header` as given (its `alg` set to the key's).
    pub fn sign_with_header(
        &self,
        mut header: serde_json::Map<String, serde_json::Value>,
        claims: &serde_json::Value,
    ) -> Result<String, KeyError> {
        header.insert("alg".into(), self.algorithm().into());
        let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let signing_input = format!("{}.{}", encode(&header.into()), encode(claims));
        let signature = match &self.key {
            Key::Rsa(k) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    signing_input.as_bytes(),
                    &mut out,
                )
                .map_err(|_| KeyError::Signing)?;
                out
            }
            Key::EcP256(k) => k
                .sign(&self.rng, signing_input.as_bytes())
                .map_err(|_| KeyError::Signing)?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// A new P-256 key that lives only in this process (a DPoP key, RFC 9449).
    pub fn generate_p256() -> Result<Signer, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Signing)?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .map_err(|e| KeyError::Unsupported(e.to_string()))?;
        Ok(Signer {
            key: Key::EcP256(pair),
            rng,
        })
    }
}

/// A random `jti` (128 bits, URL-safe).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::UnparsedPublicKey;

    fn verify(signer: &Signer, jwt: &str) -> serde_json::Value {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let algorithm: &dyn signature::VerificationAlgorithm = match signer.algorithm() {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => &signature::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(algorithm, signer.public_key())
            .verify(input.as_bytes(), &sig)
            .expect("the signature verifies with the public key");
        let (header, claims) = input.split_once('.').unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header["alg"], signer.algorithm());
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
    }

    #[test]
    fn an_ec_key_signs_es256_that_its_public_key_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let signer = Signer::from_pem(&pem).unwrap();
        assert_eq!(signer.algorithm(), "ES256");
        let jwt = signer
            .sign(&[("kid", "k1")], &serde_json::json!({"iss": "me"}))
            .unwrap();
        assert_eq!(verify(&signer, &jwt)["iss"], "me");
    }

    #[test]
    fn an_rsa_key_in_pkcs8_or_pkcs1_signs_rs256() {
        for pem in [
            include_str!("../../testdata/rsa-test-key.pem"),
            include_str!("../../testdata/rsa-test-key-pkcs1.pem"),
        ] {
            let signer = Signer::from_pem(pem).unwrap();
            assert_eq!(signer.algorithm(), "RS256");
            let jwt = signer
                .sign(&[("x5t", "abc")], &serde_json::json!({"aud": "x"}))
                .unwrap();
            assert_eq!(verify(&signer, &jwt)["aud"], "x");
        }
    }

    #[test]
    fn bad_keys_are_refused_by_reason() {
        assert_eq!(Signer::from_pem("not a key").unwrap_err(), KeyError::NotPem);
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(Signer::from_pem(junk), Err(KeyError::Unsupported(_))));
        assert!(format!("{:?}", Signer::from_pem(junk)).len() < 200);
    }
}
