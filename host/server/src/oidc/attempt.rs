//! A sign-in under way, kept in the browser between leaving for the provider and coming back:
//! the state, the PKCE verifier, the nonce, the tenant and where to go after, in a cookie
//! MACed with a key derived from the master key (so any host of the deployment takes the
//! callback, and nobody can forge or alter one).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The cookie's name.
pub const COOKIE: &str = "tenure_oidc";
/// How long a person has at the provider, in seconds.
pub const LIFETIME_S: i64 = 10 * 60;

/// One sign-in under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub tenant: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
    pub return_to: String,
    pub expires_s: i64,
}

impl Attempt {
    /// The cookie's value: the attempt and its MAC.
    pub fn seal(&self, key: &[u8; 32]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The attempt in a cookie's value, if its MAC holds and it has not expired.
    pub fn open(value: &str, key: &[u8; 32], now_s: i64) -> Option<Attempt> {
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), payload.as_bytes(), &tag).ok()?;
        let attempt: Attempt = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (attempt.expires_s > now_s).then_some(attempt)
    }
}

/// The PKCE challenge of a verifier (S256, RFC 7636).
pub fn challenge(verifier: &str) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Where to go after signing in: a path on this host, never another site.
pub fn safe_return_to(requested: Option<&str>) -> Option<String> {
    let path = requested.unwrap_or("/");
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control);
    local.then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt() -> Attempt {
        Attempt {
            tenant: "acme".into(),
            state: "s".into(),
            verifier: "v".into(),
            nonce: "n".into(),
            return_to: "/".into(),
            expires_s: 1_000,
        }
    }

    #[test]
    fn a_sealed_attempt_opens_only_unaltered_with_its_key_before_it_expires() {
        let key = [7u8; 32];
        let sealed = attempt().seal(&key);
        assert_eq!(Attempt::open(&sealed, &key, 999), Some(attempt()));
        assert_eq!(Attempt::open(&sealed, &key, 1_000), None);
        assert_eq!(Attempt::open(&sealed, &[8u8; 32], 999), None);
        let mut other = attempt();
        other.tenant = "globex".into();
        let (_, tag) = sealed.split_once('.').unwrap();
        let (payload, _) = other
            .seal(&key)
            .split_once('.')
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .unwrap();
        assert_eq!(Attempt::open(&format!("{payload}.{tag}"), &key, 999), None);
        assert_eq!(Attempt::open("garbage", &key, 0), None);
    }

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_paths_on_this_host_are_returned_to() {
        assert_eq!(safe_return_to(None).as_deref(), Some("/"));
        assert_eq!(
            safe_return_to(Some("/console/people?q=a")).as_deref(),
            Some("/console/people?q=a")
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "console",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad}");
        }
    }
}
