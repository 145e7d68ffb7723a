//! The HR feed's payloads, CSV and JSON, through the connector's own parsing (natively):
//! records become events or an error naming the record and field, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The plugin's own source, compiled natively (a cdylib cannot be linked as a library).
#[allow(dead_code)]
#[path = "../../plugins/hr-feed/src/lib.rs"]
mod hr_feed;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let settings = BTreeMap::from(
        [
            ("column.employee_id", "Employee ID"),
            ("column.email", "Work Email"),
            ("column.event", "Action"),
            ("column.start_date", "Start"),
            ("event.HIRE", "joiner"),
            ("event.TERM", "leaver"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let content_type = if mode % 2 == 0 {
        "text/csv"
    } else {
        "application/json"
    };
    let _ = hr_feed::parse_natively(settings, content_type, body);
});
