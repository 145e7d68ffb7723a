//! People's passwords: argon2id hashes in PHC form (OWASP's parameters: 19 MiB, two
//! passes), checked off the async threads, and the policy a new password must meet.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Why a password was refused or could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// A new password from the OS's randomness: 18 bytes, base64url (24 characters).
pub fn new_password() -> Result<String, PasswordError> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|e| PasswordError::Hash(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The argon2id hash of a password that meets the policy.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`; with no hash (an unknown or passwordless account) the
/// same work is done against a fixed hash, so the answer's timing says nothing.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let known = hash.and_then(|h| PasswordHash::new(h).ok());
    match known {
        Some(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        None => {
            if let Ok(decoy) = PasswordHash::new(DECOY_HASH) {
                let _ = Argon2::default().verify_password(password.as_bytes(), &decoy);
            }
            false
        }
    }
}

/// An argon2id hash of a random password nobody knows, with the default parameters.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0pBFRSuKzjAXkBLbr1mcRzFqSszYJ0vrmnbeMr3m8Ng";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_checks_its_password_only() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("correct horse batterY", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
        assert!(!verify_password("correct horse battery", Some("not a hash")));
        assert!(matches!(hash_password("short"), Err(PasswordError::TooShort)));
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
    }
}
