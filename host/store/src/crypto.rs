//! The master key and what is derived from it: AES-256-GCM for secrets at
//! rest and the HMAC key of the audit chain.

use crate::StoreError;
use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

/// The environment variable that may hold the master key (base64, 32 bytes).
pub const MASTER_KEY_ENV: &str = "TENURE_MASTER_KEY";

/// The deployment's master key. Debug output never shows it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// From `TENURE_MASTER_KEY`, else from `key_file`, else a new random key written
    /// to `key_file` readable by its owner only.
    pub fn load_or_create(key_file: &Path) -> Result<Self, StoreError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Self::from_base64(&text)
                .map_err(|e| StoreError::Crypto(format!("{MASTER_KEY_ENV}: {e}")));
        }
        match std::fs::read_to_string(key_file) {
            Ok(text) => Self::from_base64(&text)
                .map_err(|e| StoreError::Crypto(format!("{}: {e}", key_file.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| StoreError::Crypto("no randomness".into()))?;
                write_private(key_file, &base64::engine::general_purpose::STANDARD.encode(key))?;
                Ok(MasterKey(key))
            }
            Err(e) => Err(StoreError::Io(format!("{}: {e}", key_file.display()))),
        }
    }

    /// From `TENURE_MASTER_KEY`, else from `key_file`; never made here. Hosts that share a
    /// database must share its key, so a missing key is an error, not a new key.
    pub fn load_existing(key_file: Option<&Path>) -> Result<Self, StoreError> {
        if let Some(key) = Self::from_env()? {
            return Ok(key);
        }
        let Some(key_file) = key_file else {
            return Err(StoreError::Crypto(format!(
                "no master key: set {MASTER_KEY_ENV} (the same on every host) or store.key_file"
            )));
        };
        let text = std::fs::read_to_string(key_file)
            .map_err(|e| StoreError::Io(format!("store.key_file {}: {e}", key_file.display())))?;
        Self::from_base64(&text).map_err(|e| StoreError::Crypto(format!("{}: {e}", key_file.display())))
    }

    /// From `TENURE_MASTER_KEY` when it is set.
    pub fn from_env() -> Result<Option<Self>, StoreError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) => Self::from_base64(&text)
                .map(Some)
                .map_err(|e| StoreError::Crypto(format!("{MASTER_KEY_ENV}: {e}"))),
            Err(_) => Ok(None),
        }
    }

    /// The key that authenticates compiled components cached on disk.
    pub fn component_cache_key(&self) -> [u8; 32] {
        self.derive("tenure component cache v1")
    }

    /// A fixed key (tests).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        MasterKey(key)
    }

    fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("must be 32 bytes, got {}", b.len()))?;
        Ok(MasterKey(key))
    }

    /// A subkey for one purpose (HMAC-SHA256 of the purpose under the master key).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn aead(&self) -> Result<LessSafeKey, StoreError> {
        let key = UnboundKey::new(&AES_256_GCM, &self.derive("tenure secrets v1"))
            .map_err(|_| StoreError::Crypto("bad key".into()))?;
        Ok(LessSafeKey::new(key))
    }

    /// Encrypts a secret; the name is bound as associated data.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Crypto("no randomness".into()))?;
        let mut data = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
        Ok((nonce.to_vec(), data))
    }

    /// Decrypts a secret sealed under the same name.
    pub fn open(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| StoreError::Crypto("bad nonce".into()))?;
        let mut data = ciphertext.to_vec();
        let plain = self
            .aead()?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .map_err(|_| {
                StoreError::Crypto(format!("secret {name} cannot be decrypted with this master key"))
            })?;
        Ok(plain.to_vec())
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), StoreError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_bind_their_name() {
        let key = MasterKey::from_bytes([7; 32]);
        let (nonce, sealed) = key.seal("lever", b"s3cret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(key.open("lever", &nonce, &sealed).unwrap(), b"s3cret");
        assert!(key.open("other", &nonce, &sealed).is_err());
        assert!(
            MasterKey::from_bytes([8; 32])
                .open("lever", &nonce, &sealed)
                .is_err()
        );
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }
}
