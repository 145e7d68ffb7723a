//! The event API's body: JSON parsing and validation (`POST /api/v1/events`). Any input
//! gives a valid event or an error that names a field; a valid one survives the store's
//! envelope unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match tenure_pipeline::event::parse_event(body) {
        Ok(valid) => {
            let stored = tenure_pipeline::stored::encode(&valid.event);
            let back =
                tenure_pipeline::stored::decode(&stored).expect("a validated event is stored and read back");
            assert_eq!(tenure_pipeline::stored::encode(&back), stored);
        }
        Err(e) => assert!(!e.field.is_empty(), "an error names its field: {e:?}"),
    }
});
