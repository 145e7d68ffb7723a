//! Initial passwords the host generates for new accounts (LDAP attributes and
//! HTTP bodies alike), and where they go. A plugin never sees one.

use crate::Secret;
use std::sync::Arc;

/// Receives the passwords the host generates for new accounts.
pub trait PasswordSink: Send + Sync {
    /// Called once per generated password, before the write that uses it. `subject`
    /// names the account: its DN for LDAP, the name the plugin gives (a user principal
    /// name, primary email or login) for HTTP.
    fn deliver(&self, tenant: &str, connection: &str, subject: &str, password: &Secret);
}

/// The default password policy: generate, set, and keep nothing (the person
/// resets it through the organisation's own process).
#[derive(Debug, Default)]
pub struct DiscardPasswords;

impl PasswordSink for DiscardPasswords {
    fn deliver(&self, tenant: &str, connection: &str, subject: &str, _password: &Secret) {
        tracing::info!(
            tenant,
            connection,
            subject,
            "generated an initial password; policy: not retained"
        );
    }
}

/// A shared sink, printable in the capabilities' `Debug` output (which shows no password).
#[derive(Clone)]
pub struct Passwords(pub Arc<dyn PasswordSink>);

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords(Arc::new(DiscardPasswords))
    }
}

/// Places a generated password into a JSON request body at `pointer` (RFC 6901, such as
/// `/password` or `/passwordProfile/password`), creating the objects on the way.
pub fn place_in_json(body: &[u8], pointer: &str, password: &Secret) -> Result<Vec<u8>, String> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON object: {e}"))?;
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "{pointer:?} is not a JSON pointer (it must start with '/')"
        ));
    };
    let tokens: Vec<String> = rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut at = &mut doc;
    for (i, token) in tokens.iter().enumerate() {
        let serde_json::Value::Object(map) = at else {
            return Err(format!(
                "{pointer:?} passes through a value that is not an object"
            ));
        };
        if token.is_empty() {
            return Err(format!("{pointer:?} has an empty segment"));
        }
        if i + 1 == tokens.len() {
            map.insert(
                token.clone(),
                serde_json::Value::String(password.expose().to_string()),
            );
            break;
        }
        at = map
            .entry(token.clone())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    serde_json::to_vec(&doc).map_err(|e| format!("cannot encode the body: {e}"))
}

/// A random password of `len` characters with upper, lower, digit and symbol.
pub fn generate_password(len: usize) -> Result<Secret, getrandom::Error> {
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"!#%+-.=?@_~",
    ];
    let len = len.max(SETS.len());
    let mut random = vec![0u8; len * 2];
    getrandom::fill(&mut random)?;
    let all: Vec<u8> = SETS.concat();
    let mut chars: Vec<u8> = (0..len)
        .map(|i| {
            let set = if i < SETS.len() { SETS[i] } else { &all };
            set[random[i] as usize % set.len()]
        })
        .collect();
    // Shuffle so the guaranteed classes are not always in front.
    for i in (1..len).rev() {
        let j = random[len + i] as usize % (i + 1);
        chars.swap(i, j);
    }
    Ok(Secret::new(String::from_utf8_lossy(&chars).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_placed_at_its_pointer() {
        let p = Secret::new("Ab1!");
        let out = place_in_json(br#"{"primaryEmail":"a@x"}"#, "/password", &p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["password"], "Ab1!");
        assert_eq!(v["primaryEmail"], "a@x");
        let out = place_in_json(
            br#"{"passwordProfile":{"forceChangePasswordNextSignIn":true}}"#,
            "/passwordProfile/password",
            &p,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["passwordProfile"]["password"], "Ab1!");
        assert_eq!(v["passwordProfile"]["forceChangePasswordNextSignIn"], true);
        let out = place_in_json(b"{}", "/credentials/password/value", &p).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["credentials"]["password"]["value"], "Ab1!");
    }

    #[test]
    fn a_bad_pointer_or_body_is_refused_by_name() {
        let p = Secret::new("x");
        assert!(
            place_in_json(b"[1]", "/password", &p)
                .unwrap_err()
                .contains("not an object")
        );
        assert!(
            place_in_json(b"not json", "/password", &p)
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            place_in_json(b"{}", "password", &p)
                .unwrap_err()
                .contains("JSON pointer")
        );
        assert!(
            place_in_json(br#"{"a":1}"#, "/a/b", &p)
                .unwrap_err()
                .contains("not an object")
        );
    }
}
