//! Signed plugins: a publisher signs (Ed25519) a statement that names the plugin and the
//! digests of its component and its manifest, so neither can be swapped under the signature;
//! each tenant lists the publishers it trusts ([`TrustPolicy`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The only signature algorithm accepted.
pub const ALGORITHM: &str = "ed25519";

/// A detached signature, as `plugin.sig` beside `plugin.wasm` and in uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSignature {
    /// The publisher's name, as the tenant's trust policy lists it.
    pub publisher: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// Base64 of the 64-byte signature over [`statement`].
    pub signature: String,
}

/// `[tenants.T.plugin_trust]`: whose plugins the tenant accepts, and what an activation needs.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrustPolicy {
    /// Publishers whose signatures the tenant accepts: name = Ed25519 public key (base64 of its
    /// 32 bytes, as `tenure plugins keygen` prints it).
    pub publishers: BTreeMap<String, String>,
    /// Accept uploads that nobody signed (development only; such a version shows no signer).
    pub allow_unsigned: bool,
    /// Four eyes: the administrator who uploaded a version may not activate it (rollbacks are
    /// exempt, so going back to a known version is never held up).
    pub four_eyes: bool,
    /// A rules plugin version is activated only after a shadow run of it was reported.
    pub require_shadow: bool,
}

/// Why a signature or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the component is not signed and the tenant does not allow unsigned plugins")]
    Unsigned,
    #[error("publisher {0:?} is not among the tenant's trusted publishers")]
    UntrustedPublisher(String),
    #[error("the signature does not match this component and manifest for publisher {0:?}")]
    Mismatch(String),
    #[error("{field}: {reason}")]
    Malformed { field: String, reason: String },
}

fn malformed(field: impl Into<String>, reason: impl Into<String>) -> SignatureError {
    SignatureError::Malformed {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The bytes a publisher signs.
pub fn statement(name: &str, component: &[u8], manifest: &str) -> Vec<u8> {
    format!(
        "tenure-plugin-signature-v1\nplugin {name}\ncomponent sha256 {}\nmanifest sha256 {}\n",
        sha256_hex(component),
        sha256_hex(manifest.as_bytes())
    )
    .into_bytes()
}

/// A publisher's private key.
pub struct SigningKey(Ed25519KeyPair);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SigningKey")
            .field(&self.public_key_base64())
            .finish()
    }
}

impl SigningKey {
    /// A new key and its PKCS#8 document (base64), which is what a key file holds.
    pub fn generate() -> Result<(Self, String), SignatureError> {
        let rng = SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| malformed("key", "the system's random source failed"))?;
        let text = BASE64.encode(document.as_ref());
        Ok((Self::from_pkcs8_base64(&text)?, text))
    }

    /// Reads a key file's text (base64 of a PKCS#8 Ed25519 key).
    pub fn from_pkcs8_base64(text: &str) -> Result<Self, SignatureError> {
        let der = BASE64
            .decode(text.trim())
            .map_err(|e| malformed("key", format!("not base64: {e}")))?;
        Ed25519KeyPair::from_pkcs8(&der)
            .map(SigningKey)
            .map_err(|e| malformed("key", format!("not a PKCS#8 Ed25519 key: {e}")))
    }

    /// The public key to list in tenants' trust policies.
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.0.public_key().as_ref())
    }

    /// Signs a plugin as `publisher`.
    pub fn sign(&self, publisher: &str, name: &str, component: &[u8], manifest: &str) -> PluginSignature {
        let signature = self.0.sign(&statement(name, component, manifest));
        PluginSignature {
            publisher: publisher.to_string(),
            algorithm: ALGORITHM.to_string(),
            signature: BASE64.encode(signature.as_ref()),
        }
    }
}

/// A public key from a trust policy, checked.
fn public_key(publisher: &str, text: &str) -> Result<Vec<u8>, SignatureError> {
    let field = format!("publishers.{publisher}");
    let key = BASE64
        .decode(text.trim())
        .map_err(|e| malformed(&field, format!("not base64: {e}")))?;
    if key.len() != 32 {
        return Err(malformed(
            field,
            format!("an Ed25519 public key is 32 bytes, not {}", key.len()),
        ));
    }
    Ok(key)
}

impl TrustPolicy {
    /// Checks every listed key; the error names the publisher.
    pub fn validate(&self) -> Result<(), SignatureError> {
        self.publishers
            .iter()
            .try_for_each(|(name, key)| public_key(name, key).map(|_| ()))
    }

    /// Checks an upload's signature: the publisher it names, when the signature holds and the
    /// tenant trusts the publisher; `None` for an unsigned upload the tenant allows.
    pub fn verify(
        &self,
        name: &str,
        component: &[u8],
        manifest: &str,
        signature: Option<&PluginSignature>,
    ) -> Result<Option<String>, SignatureError> {
        let Some(sig) = signature else {
            return if self.allow_unsigned {
                Ok(None)
            } else {
                Err(SignatureError::Unsigned)
            };
        };
        if sig.algorithm != ALGORITHM {
            return Err(malformed(
                "signature.algorithm",
                format!("{:?} is not supported; use {ALGORITHM}", sig.algorithm),
            ));
        }
        let key = self
            .publishers
            .get(&sig.publisher)
            .ok_or_else(|| SignatureError::UntrustedPublisher(sig.publisher.clone()))?;
        let key = public_key(&sig.publisher, key)?;
        let bytes = BASE64
            .decode(sig.signature.trim())
            .map_err(|e| malformed("signature.signature", format!("not base64: {e}")))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&statement(name, component, manifest), &bytes)
            .map_err(|_| SignatureError::Mismatch(sig.publisher.clone()))?;
        Ok(Some(sig.publisher.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusting(publisher: &str, key: &SigningKey) -> TrustPolicy {
        TrustPolicy {
            publishers: [(publisher.to_string(), key.public_key_base64())].into(),
            ..TrustPolicy::default()
        }
    }

    #[test]
    fn a_trusted_signature_names_its_publisher_and_any_change_breaks_it() {
        let (key, text) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8_base64(&text).unwrap();
        assert_eq!(key.public_key_base64(), again.public_key_base64());
        let trust = trusting("acme", &key);
        trust.validate().unwrap();
        let sig = key.sign("acme", "scim", b"\0asm", "name = \"scim\"");
        assert_eq!(
            trust.verify("scim", b"\0asm", "name = \"scim\"", Some(&sig)),
            Ok(Some("acme".into()))
        );
        for (name, component, manifest) in [
            ("other", &b"\0asm"[..], "name = \"scim\""),
            ("scim", &b"\0asm!"[..], "name = \"scim\""),
            (
                "scim",
                &b"\0asm"[..],
                "name = \"scim\"\n[capabilities]\nhttp = [\"all\"]",
            ),
        ] {
            assert_eq!(
                trust.verify(name, component, manifest, Some(&sig)),
                Err(SignatureError::Mismatch("acme".into()))
            );
        }
    }

    #[test]
    fn unsigned_untrusted_and_malformed_are_refused_with_the_reason() {
        let (key, _) = SigningKey::generate().unwrap();
        let (stranger, _) = SigningKey::generate().unwrap();
        let trust = trusting("acme", &key);
        assert_eq!(trust.verify("p", b"x", "m", None), Err(SignatureError::Unsigned));
        let open = TrustPolicy {
            allow_unsigned: true,
            ..trust.clone()
        };
        assert_eq!(open.verify("p", b"x", "m", None), Ok(None));
        let forged = stranger.sign("acme", "p", b"x", "m");
        assert_eq!(
            trust.verify("p", b"x", "m", Some(&forged)),
            Err(SignatureError::Mismatch("acme".into()))
        );
        let unknown = stranger.sign("mallory", "p", b"x", "m");
        assert_eq!(
            trust.verify("p", b"x", "m", Some(&unknown)),
            Err(SignatureError::UntrustedPublisher("mallory".into()))
        );
        let rsa = PluginSignature {
            algorithm: "rsa".into(),
            ..key.sign("acme", "p", b"x", "m")
        };
        let err = trust.verify("p", b"x", "m", Some(&rsa)).unwrap_err().to_string();
        assert!(err.starts_with("signature.algorithm:"), "{err}");
        let short = TrustPolicy {
            publishers: [("acme".to_string(), "AAAA".to_string())].into(),
            ..TrustPolicy::default()
        };
        let err = short.validate().unwrap_err().to_string();
        assert!(
            err.contains("publishers.acme") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(SigningKey::from_pkcs8_base64("not a key").is_err());
    }
}
