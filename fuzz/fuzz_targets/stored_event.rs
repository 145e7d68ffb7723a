//! The store's event envelope: whatever a database row holds, decoding gives an event or
//! an error, never a panic; what decodes encodes to text that decodes to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(event) = tenure_pipeline::stored::decode(text) {
        let again = tenure_pipeline::stored::encode(&event);
        let back = tenure_pipeline::stored::decode(&again).expect("re-encoded envelope decodes");
        assert_eq!(tenure_pipeline::stored::encode(&back), again);
    }
    let _ = tenure_store::envelope::decode(text);
});
