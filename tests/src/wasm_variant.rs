//! Another build of a plugin: its component with a custom section added behaves the same but
//! has another digest, so a test has a second version to upload, activate and roll back.

/// `component` with a custom section `tenure-test-variant` holding `tag`.
pub fn variant(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"tenure-test-variant";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(payload.len()));
    out.extend(payload);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lengths_are_unsigned_leb128() {
        assert_eq!(super::leb128(0), [0]);
        assert_eq!(super::leb128(127), [0x7f]);
        assert_eq!(super::leb128(128), [0x80, 0x01]);
        assert_eq!(super::leb128(300), [0xac, 0x02]);
    }
}
