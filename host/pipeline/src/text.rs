//! What text may hold, checked the same way for events from the API and from
//! source plugins: lengths, control characters, and Unicode format characters
//! (bidirectional overrides and invisible characters) where text can become a
//! logon name, a mail address or a directory DN. Every refusal names the field.

use crate::event::InvalidEvent;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest accepted free text (titles, custom attributes).
pub const MAX_TEXT: usize = 4096;
/// Longest identifier (person ids, source names in ids, record ids, idempotency keys).
pub const MAX_ID: usize = 256;

/// How strict a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Free text: no control characters except tab, no bidirectional controls.
    Free,
    /// A name that may become a logon name or a DN: also no invisible format
    /// characters, except the joiners some scripts need (ZWJ, ZWNJ: Persian, Indic).
    Name,
    /// An identifier or address: no format characters at all, no leading or
    /// trailing whitespace.
    Identifier,
}

fn invalid(field: &str, reason: impl Into<String>) -> InvalidEvent {
    InvalidEvent {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Bidirectional embedding, override and isolate controls, and the marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks one value of a field.
pub fn check(field: &str, value: &str, kind: TextKind) -> Result<(), InvalidEvent> {
    let limit = if kind == TextKind::Identifier {
        MAX_ID
    } else {
        MAX_TEXT
    };
    if value.len() > limit {
        return Err(invalid(
            field,
            format!("is {} bytes; the limit is {limit}", value.len()),
        ));
    }
    for (i, c) in value.chars().enumerate() {
        let why = if c.is_control() && !(c == '\t' && kind == TextKind::Free) {
            Some("a control character")
        } else if is_bidi_control(c) {
            Some("a bidirectional control character")
        } else if c.general_category() == GeneralCategory::Format {
            match kind {
                TextKind::Free => None,
                TextKind::Name if matches!(c, '\u{200C}' | '\u{200D}') => None,
                _ => Some("an invisible format character"),
            }
        } else {
            None
        };
        if let Some(why) = why {
            return Err(invalid(
                field,
                format!("contains {why} (U+{:04X}) at character {i}", c as u32),
            ));
        }
    }
    if kind == TextKind::Identifier && value.trim() != value {
        return Err(invalid(field, "must not start or end with whitespace"));
    }
    Ok(())
}

/// Checks an identifier that must not be empty.
pub fn check_id(field: &str, value: &str) -> Result<(), InvalidEvent> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    check(field, value, TextKind::Identifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_scripts_but_lose_overrides_and_invisible_characters() {
        assert!(check("n", "Siobhán Ní Bhriain", TextKind::Name).is_ok());
        assert!(
            check("n", "مهدی\u{200C}زاده", TextKind::Name).is_ok(),
            "ZWNJ is part of Persian"
        );
        let e = check("person.given_name", "adm\u{202E}nimda", TextKind::Name).unwrap_err();
        assert_eq!(e.field, "person.given_name");
        assert!(e.reason.contains("U+202E"), "{e}");
        assert!(
            check("n", "ab\u{200B}c", TextKind::Name).is_err(),
            "zero-width space"
        );
        assert!(check("n", "tab\there", TextKind::Free).is_ok());
        assert!(check("n", "new\nline", TextKind::Free).is_err());
        assert!(check("id", "e\u{200C}1", TextKind::Identifier).is_err());
        assert!(check("id", " e1", TextKind::Identifier).is_err());
        assert!(check_id("id", "hr\0").is_err());
        assert!(check_id("id", "").is_err());
        assert!(check("id", &"x".repeat(MAX_ID + 1), TextKind::Identifier).is_err());
    }
}
