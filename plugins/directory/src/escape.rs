//! Escaping for distinguished names (RFC 4514) and search filters (RFC 4515),
//! splitting DNs, and AD's objectGUID in its string and filter forms.

/// Escapes one attribute value for use inside a DN (RFC 4514 §2.4, plus AD's `=`, CR and LF).
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            '\r' => out.push_str("\\0D"),
            '\n' => out.push_str("\\0A"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a value for an equality filter (RFC 4515 §3): `* ( ) \ NUL`.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Every byte as `\xx`, for binary attributes such as objectGUID in a filter.
pub fn filter_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Splits a DN into its first RDN and the parent DN, honouring escaped commas.
pub fn split_dn(dn: &str) -> (&str, &str) {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return (&dn[..i], dn[i + 1..].trim_start()),
            _ => i += 1,
        }
    }
    (dn, "")
}

/// The value of an RDN (`CN=Smith\, Ann` -> `Smith, Ann`), unescaped.
pub fn rdn_value(rdn: &str) -> String {
    let value = rdn.split_once('=').map(|(_, v)| v).unwrap_or(rdn);
    let mut out = Vec::with_capacity(value.len());
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            // Two hex digits exactly (`from_str_radix` alone would take `+d` as 13).
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
            } else {
                out.push(bytes[i + 1]);
                i += 2;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A DN's RDNs, most specific first, in one spelling: types and values lowercased,
/// escapes decoded, spaces around separators dropped. None when an RDN has no `=`.
pub fn normalized(dn: &str) -> Option<Vec<String>> {
    let mut rdns = Vec::new();
    let mut rest = dn.trim();
    while !rest.is_empty() {
        let (rdn, parent) = split_dn(rest);
        let (kind, _) = rdn.split_once('=')?;
        if kind.trim().is_empty() {
            return None;
        }
        rdns.push(format!(
            "{}={}",
            kind.trim().to_lowercase(),
            rdn_value(rdn).trim().to_lowercase()
        ));
        rest = parent.trim();
    }
    Some(rdns)
}

/// Whether `dn` is `base` or below it, compared as normalised DNs (so `OU=PeopleX` is not
/// under `OU=People`, nor is a value with an escaped comma that looks like the base).
pub fn is_under(dn: &str, base: &str) -> bool {
    match (normalized(dn), normalized(base)) {
        (Some(dn), Some(base)) => dn.len() >= base.len() && dn[dn.len() - base.len()..] == base[..],
        _ => false,
    }
}

/// AD's string form of an objectGUID: the first three fields are little-endian.
pub fn guid_string(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let b = bytes;
    Some(format!(
        concat!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            "{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}"
        ),
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// The wire bytes of a GUID string (the inverse of [`guid_string`]).
pub fn guid_bytes(text: &str) -> Option<Vec<u8>> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let raw: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    Some(order.iter().map(|&i| raw[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_per_rfc_4514() {
        assert_eq!(dn_value("Smith, Ann"), "Smith\\, Ann");
        assert_eq!(dn_value("#1 fan "), "\\#1 fan\\ ");
        assert_eq!(dn_value(" a+b=c<d>;\"e\\"), "\\ a\\+b\\=c\\<d\\>\\;\\\"e\\\\");
        assert_eq!(dn_value("Zoë"), "Zoë");
    }

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(filter_value("a*(b)\\c"), "a\\2a\\28b\\29\\5cc");
        assert_eq!(filter_value("x\0"), "x\\00");
        assert_eq!(filter_bytes(&[0x90, 0x0a]), "\\90\\0a");
    }

    #[test]
    fn dns_split_at_unescaped_commas() {
        assert_eq!(
            split_dn("CN=Smith\\, Ann,OU=People,DC=x"),
            ("CN=Smith\\, Ann", "OU=People,DC=x")
        );
        assert_eq!(rdn_value("CN=Smith\\, Ann"), "Smith, Ann");
        assert_eq!(rdn_value("CN=Zo\\C3\\AB"), "Zoë");
        assert!(is_under("CN=a,OU=Groups,DC=x", "ou=groups,dc=x"));
        assert!(!is_under("CN=a,OU=Other,DC=x", "OU=Groups,DC=x"));
        assert!(is_under("cn=a, ou=GROUPS ,dc=x", "OU=Groups,DC=x"));
        // Fuzzing finding: an escaped '+' before a hex letter read back as a control character.
        assert_eq!(rdn_value(&format!("CN={}", dn_value("Ann+Dee"))), "Ann+Dee");
        assert!(!is_under("CN=a,OU=GroupsX,DC=x", "OU=Groups,DC=x"));
        assert!(!is_under("CN=a\\,OU=Groups\\,DC=x,DC=y", "OU=Groups,DC=x"));
        assert!(!is_under("no equals sign", "OU=Groups,DC=x"));
    }

    #[test]
    fn guids_round_trip_in_ad_order() {
        let wire = [
            0x90, 0x39, 0x5f, 0x19, 0x1a, 0xb5, 0x1d, 0x4f, 0x8b, 0xd8, 0x9a, 0x6e, 0x1b, 0x2c, 0x3d, 0x4e,
        ];
        let s = guid_string(&wire).unwrap();
        assert_eq!(s, "195f3990-b51a-4f1d-8bd8-9a6e1b2c3d4e");
        assert_eq!(guid_bytes(&s).unwrap(), wire);
        assert!(guid_bytes("not-a-guid").is_none());
        assert!(guid_string(&[1, 2]).is_none());
    }
}
