//! How the directory connector reads and writes DNs and GUIDs (its `escape` module,
//! compiled natively): any text splits, unescapes and compares without a panic, an
//! escaped value reads back as itself, and a GUID's string and wire forms round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../plugins/directory/src/escape.rs"]
mod escape;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (rdn, parent) = escape::split_dn(&text);
    let _ = escape::rdn_value(rdn);
    let _ = escape::normalized(&text);
    let _ = escape::is_under(&text, "OU=People,DC=example,DC=test");
    let _ = escape::is_under(parent, &text);
    let _ = escape::filter_value(&text);
    let value: String = text.chars().filter(|c| !c.is_control() || *c == '\0').collect();
    let escaped = escape::dn_value(&value);
    assert_eq!(escape::rdn_value(&format!("CN={escaped}")), value, "{escaped:?}");
    let dn = format!("CN={escaped},OU=People,DC=example,DC=test");
    assert!(escape::is_under(&dn, "ou=people,dc=example,dc=test"), "{dn:?}");
    if let Some(wire) = escape::guid_bytes(&text) {
        let back = escape::guid_string(&wire).expect("16 bytes");
        assert_eq!(escape::guid_bytes(&back), Some(wire));
    }
});
