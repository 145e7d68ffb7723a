//! LDAP result codes (RFC 4511 Appendix A) and AD's extended error codes as
//! the error variants that drive the host's retries.

use tenure_sdk::errors::invalid_input;
use tenure_sdk::host::ldap::LdapError;
use tenure_sdk::types::PluginError;

pub const NO_SUCH_ATTRIBUTE: u32 = 16;
pub const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
pub const NO_SUCH_OBJECT: u32 = 32;
pub const UNWILLING_TO_PERFORM: u32 = 53;
pub const ENTRY_ALREADY_EXISTS: u32 = 68;

/// The code of a failed LDAP operation, if the server answered one.
pub fn code(e: &LdapError) -> Option<u32> {
    match e {
        LdapError::Failed(r) => Some(r.code),
        _ => None,
    }
}

/// The server's diagnostic message, if any.
pub fn message(e: &LdapError) -> &str {
    match e {
        LdapError::Failed(r) => &r.message,
        _ => "",
    }
}

/// The attribute a diagnostic names: AD's `AtrErr` (`... Att 90001 (cn)`) or
/// Samba's `attribute 'employeeID' on entry ...`.
pub fn named_attribute(message: &str) -> Option<String> {
    if let Some(pos) = message.find("attribute '") {
        let rest = &message[pos + "attribute '".len()..];
        if let Some(end) = rest.find('\'') {
            return Some(rest[..end].to_string()).filter(|n| !n.is_empty());
        }
    }
    let start = message.find("Att ")?;
    let rest = &message[start..];
    let open = rest.find('(')?;
    let close = rest[open..].find(')')?;
    let name = rest[open + 1..open + close].trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Maps an LDAP failure. `what` says which operation on which entry; `field` is the
/// attribute to blame when the server names none.
pub fn map(e: LdapError, what: &str, field: &str) -> PluginError {
    match e {
        LdapError::Denied(m) => PluginError::Unauthorized(m),
        LdapError::Transport(m) => PluginError::Transient(format!("{what}: {m}")),
        LdapError::Timeout => PluginError::Transient(format!("{what}: timed out")),
        LdapError::Failed(r) => {
            let detail = format!("{what}: LDAP {} {}: {}", r.code, name(r.code), r.message.trim());
            match r.code {
                // busy, unavailable, timeLimitExceeded, adminLimitExceeded
                51 | 52 | 3 | 11 => PluginError::Transient(detail),
                // `other`: Samba reports a missing parent this way.
                80 if r.message.contains("does not exist") => PluginError::NotFound(detail),
                49 | 50 | 8 | 13 => PluginError::Unauthorized(detail),
                NO_SUCH_OBJECT => PluginError::NotFound(detail),
                ENTRY_ALREADY_EXISTS | ATTRIBUTE_OR_VALUE_EXISTS => PluginError::Conflict(detail),
                19 | 21 | 34 | 64 | 65 | 67 | 17 | NO_SUCH_ATTRIBUTE => {
                    let attr = named_attribute(&r.message).unwrap_or_else(|| field.to_string());
                    invalid_input(attr, detail)
                }
                _ => PluginError::Permanent(detail),
            }
        }
    }
}

/// The RFC 4511 name of a result code.
pub fn name(code: u32) -> &'static str {
    match code {
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        80 => "other",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_sdk::host::ldap::LdapResult;

    fn failed(code: u32, message: &str) -> LdapError {
        LdapError::Failed(LdapResult {
            code,
            message: message.into(),
            matched_dn: String::new(),
        })
    }

    #[test]
    fn result_codes_drive_retries() {
        assert!(matches!(
            map(failed(51, "busy"), "add", "cn"),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            map(failed(52, ""), "add", "cn"),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            map(failed(68, ""), "add", "cn"),
            PluginError::Conflict(_)
        ));
        assert!(matches!(
            map(failed(32, ""), "modify", "cn"),
            PluginError::NotFound(_)
        ));
        assert!(matches!(
            map(failed(50, ""), "modify", "cn"),
            PluginError::Unauthorized(_)
        ));
        assert!(matches!(
            map(failed(53, "0000052D"), "enable", "cn"),
            PluginError::Permanent(_)
        ));
        assert!(matches!(
            map(LdapError::Timeout, "add", "cn"),
            PluginError::Transient(_)
        ));
        let samba = "00002095: objectclass: Cannot rename CN=a, parent does not exist!";
        assert!(matches!(
            map(failed(80, samba), "move", "container"),
            PluginError::NotFound(_)
        ));
        assert!(matches!(
            map(failed(80, "odd"), "move", "container"),
            PluginError::Permanent(_)
        ));
    }

    #[test]
    fn constraint_violations_name_the_attribute() {
        let ad = "00002082: AtrErr: DSID-03190F80, #1:\n\t0: 00002082: DSID-03190F80, problem 1005 \
            (CONSTRAINT_ATT_TYPE), data 0, Att 90001 (cn)";
        let PluginError::InvalidInput(i) = map(failed(19, ad), "add CN=x", "sAMAccountName") else {
            panic!("expected invalid-input")
        };
        assert_eq!(i.field, "cn");
        assert!(i.reason.contains("constraintViolation"), "{}", i.reason);
        let PluginError::InvalidInput(i) = map(
            failed(19, "0000052D: password policy"),
            "set password",
            "unicodePwd",
        ) else {
            panic!("expected invalid-input")
        };
        assert_eq!(i.field, "unicodePwd");
        let samba = "0000200B: objectclass_attrs: attribute 'employeeID' on entry 'CN=x' contains at least \
            one invalid value!";
        let PluginError::InvalidInput(i) = map(failed(21, samba), "add CN=x", "cn") else {
            panic!("expected invalid-input")
        };
        assert_eq!(i.field, "employeeID");
    }
}
