//! Distinguished names compared as LDAP compares them (RFC 4514): attribute types and
//! values case-insensitively, spaces around separators ignored, escapes (`\,` and
//! `\2C`) decoded, multi-valued RDNs in any order. Used to keep a connection's
//! operations inside the subtrees it was given.

/// A DN that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{dn:?} is not a distinguished name: {reason}")]
pub struct DnError {
    pub dn: String,
    pub reason: &'static str,
}

/// The DN's RDNs, most specific first, each in one canonical spelling.
pub fn normalize(dn: &str) -> Result<Vec<String>, DnError> {
    let fail = |reason| DnError {
        dn: dn.chars().take(200).collect(),
        reason,
    };
    let mut rdns = Vec::new();
    if dn.trim().is_empty() {
        return Ok(rdns);
    }
    for rdn in split_unescaped(dn, b',').ok_or_else(|| fail("it ends in a lone backslash"))? {
        let mut parts = Vec::new();
        for ava in split_unescaped(rdn, b'+').ok_or_else(|| fail("it ends in a lone backslash"))? {
            let (kind, value) = ava.split_once('=').ok_or_else(|| fail("an RDN has no '='"))?;
            let kind = kind.trim();
            if kind.is_empty() {
                return Err(fail("an RDN has no attribute type"));
            }
            let value = unescape(value.trim()).ok_or_else(|| fail("an escape is not valid"))?;
            parts.push(format!("{}={}", kind.to_lowercase(), value.to_lowercase()));
        }
        parts.sort();
        rdns.push(parts.join("+"));
    }
    Ok(rdns)
}

/// Whether `dn` is `base` or below it (false when either cannot be read).
pub fn is_under(dn: &str, base: &str) -> bool {
    match (normalize(dn), normalize(base)) {
        (Ok(dn), Ok(base)) => dn.len() >= base.len() && dn[dn.len() - base.len()..] == base[..],
        _ => false,
    }
}

/// Splits on `sep` where it is not escaped; None when the text ends in a lone backslash.
fn split_unescaped(text: &str, sep: u8) -> Option<Vec<&str>> {
    let bytes = text.as_bytes();
    let (mut parts, mut start, mut i) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 >= bytes.len() => return None,
            b'\\' => i += 2,
            b if b == sep => {
                parts.push(&text[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// Decodes `\c` and `\hh` escapes.
fn unescape(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        // Two hex digits exactly (`from_str_radix` alone would take `+d` as 13).
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(*bytes.get(i + 1)?);
                i += 2;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_as_ldap_compares_them() {
        assert!(is_under(
            "CN=Ann,OU=People,DC=x,DC=test",
            "ou=people, dc=X,dc=test"
        ));
        assert!(is_under("ou=People,dc=x", "OU=People,DC=x"));
        assert!(is_under("CN=Smith\\, Ann,OU=P\\2c Q,DC=x", "ou=p\\, q,dc=x"));
        assert!(is_under("CN=a+UID=b,DC=x", "dc=x"));
        assert_eq!(normalize("uid=b+cn=A,dc=x"), normalize("CN=a+UID=b,DC=x"));
        // A look-alike suffix is not the subtree.
        assert!(!is_under("CN=a,OU=PeopleX,DC=x", "OU=People,DC=x"));
        assert!(!is_under("CN=a,OU=People\\,DC=x,DC=y", "OU=People,DC=x"));
        assert!(!is_under("CN=Domain Admins,CN=Users,DC=x", "OU=Groups,DC=x"));
        assert!(!is_under("DC=x", "OU=Groups,DC=x"));
        assert!(!is_under("CN=a\\", "DC=x"));
        assert_eq!(normalize("CN=Ann\\+Dee,DC=x").unwrap()[0], "cn=ann+dee");
        assert!(normalize("no equals").is_err());
        assert!(normalize("=value,DC=x").is_err());
    }
}
