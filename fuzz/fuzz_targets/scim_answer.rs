//! A SCIM server's answers as the connector reads them (natively): success bodies, list
//! responses, ETags and error answers with `scimType` and `detail`; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The plugin's own source, compiled natively (a cdylib cannot be linked as a library).
#[allow(dead_code)]
#[path = "../../plugins/scim/src/lib.rs"]
mod scim;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 201, 204, 400, 404, 409, 412, 429, 500, 503][usize::from(selector % 10)];
    let headers = if selector & 0x80 != 0 {
        vec![
            ("etag".to_string(), "W/\"1\"".to_string()),
            ("retry-after".to_string(), "7".to_string()),
        ]
    } else {
        Vec::new()
    };
    let _ = scim::client::decode_natively(status, headers, body.to_vec());
});
