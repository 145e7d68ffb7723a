//! JSON kept compactly in the store: audit details and event bodies.
//!
//! Most of these documents repeat the same keys and shapes (an operation applied, a plan, a rule
//! trace, a person), so each is compressed on its own with zstd against a fixed dictionary of
//! those shapes: a 180-byte audit entry becomes about 45 bytes, and each row still reads back
//! alone (a person's history needs no neighbouring rows). The audit hash covers the JSON text,
//! never the stored bytes, so the chain verifies whatever the encoding.
//!
//! Stored forms, told apart by SQLite's storage class:
//! - TEXT: the JSON as is (rows written before this encoding, and documents too small to gain);
//! - BLOB `[1, zstd frame...]`: compressed against [`DICTIONARY_V1`].
//!
//! A dictionary is never edited once released (a test pins its digest): rows written with it must
//! read back for ever. A better one is added as format 2 beside it.

use std::cell::RefCell;
use std::sync::OnceLock;

/// Typical person events and the details of the common audit kinds, as raw zstd dictionary content.
pub const DICTIONARY_V1: &[u8] = include_bytes!("dictionary_v1.txt");

/// The first byte of a document compressed against [`DICTIONARY_V1`].
const FORMAT_ZSTD_V1: u8 = 1;

/// zstd's level: on audit details levels 1 to 19 give the same size within 1%, and 1 is fastest.
const LEVEL: i32 = 1;

/// Documents larger than this are not decompressed (nothing the host writes comes near it).
const MAX_DETAILS_BYTES: u64 = 64 * 1024 * 1024;

/// A JSON document as it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compact {
    /// The JSON text, when compressing would not make it smaller.
    Text(String),
    /// A format byte and the compressed JSON.
    Compressed(Vec<u8>),
}

/// Why a stored document could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompactError {
    #[error("stored JSON in an unknown format ({0})")]
    UnknownFormat(u8),
    #[error("stored JSON is empty")]
    Empty,
    #[error("stored JSON does not decompress: {0}")]
    Corrupt(String),
    #[error("stored JSON claims {0} bytes, more than any document holds")]
    TooLarge(u64),
}

fn encoder_dictionary() -> &'static zstd::dict::EncoderDictionary<'static> {
    static DICTIONARY: OnceLock<zstd::dict::EncoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| zstd::dict::EncoderDictionary::copy(DICTIONARY_V1, LEVEL))
}

fn decoder_dictionary() -> &'static zstd::dict::DecoderDictionary<'static> {
    static DICTIONARY: OnceLock<zstd::dict::DecoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| zstd::dict::DecoderDictionary::copy(DICTIONARY_V1))
}

thread_local! {
    /// One compression context per thread (they are not shared, and making one costs more
    /// than compressing an entry).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Encodes a JSON document for storage.
pub fn compress(json: &str) -> Compact {
    let compressed = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = zstd::bulk::Compressor::with_prepared_dictionary(encoder_dictionary()).ok();
        }
        let compressor = cell.as_mut()?;
        let mut out = Vec::with_capacity(json.len() / 2 + 16);
        out.push(FORMAT_ZSTD_V1);
        let frame = compressor.compress(json.as_bytes()).ok()?;
        out.extend_from_slice(&frame);
        Some(out)
    });
    match compressed {
        Some(bytes) if bytes.len() < json.len() => Compact::Compressed(bytes),
        _ => Compact::Text(json.to_string()),
    }
}

/// Reads back a document stored as a BLOB (a format byte and its payload).
pub fn decompress(stored: &[u8]) -> Result<String, CompactError> {
    let (&format, frame) = stored.split_first().ok_or(CompactError::Empty)?;
    if format != FORMAT_ZSTD_V1 {
        return Err(CompactError::UnknownFormat(format));
    }
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .map_err(|_| CompactError::Corrupt("not a zstd frame".into()))?
        .ok_or_else(|| CompactError::Corrupt("the frame does not say its size".into()))?;
    if size > MAX_DETAILS_BYTES {
        return Err(CompactError::TooLarge(size));
    }
    let bytes = DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(
                zstd::bulk::Decompressor::with_prepared_dictionary(decoder_dictionary())
                    .map_err(|e| CompactError::Corrupt(e.to_string()))?,
            );
        }
        let decompressor = cell
            .as_mut()
            .ok_or_else(|| CompactError::Corrupt("no decompressor".into()))?;
        decompressor
            .decompress(frame, size as usize)
            .map_err(|e| CompactError::Corrupt(e.to_string()))
    })?;
    String::from_utf8(bytes).map_err(|_| CompactError::Corrupt("not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn the_released_dictionary_is_never_edited() {
        // Rows compressed against it must read back for ever: add a new format instead.
        assert_eq!(
            hex::encode(sha2::Sha256::digest(DICTIONARY_V1)),
            PINNED_DICTIONARY_V1_SHA256,
            "dictionary_v1.txt changed"
        );
    }

    const PINNED_DICTIONARY_V1_SHA256: &str =
        "ca598bd093320d1f6a45c881ac6bee245a3d0e5b1ef2f9eeab65516ffed57b6e";

    #[test]
    fn documents_round_trip_and_shrink() {
        let json = concat!(
            r#"{"anchor":"a-17","duration_ms":4,"key":"ad/add/Finance","op":"add-member","#,
            r#""status":"done","summary":"added a-17 to Finance","target":"Finance"}"#
        );
        let Compact::Compressed(bytes) = compress(json) else {
            panic!("a typical entry compresses");
        };
        assert!(
            bytes.len() * 2 < json.len(),
            "{} bytes from {}",
            bytes.len(),
            json.len()
        );
        assert_eq!(decompress(&bytes).unwrap(), json);
    }

    #[test]
    fn tiny_documents_stay_text() {
        assert_eq!(compress("{}"), Compact::Text("{}".into()));
    }

    #[test]
    fn damaged_documents_are_an_error_not_a_panic() {
        let Compact::Compressed(mut bytes) = compress(&"x".repeat(500)) else {
            panic!("a repeated string compresses");
        };
        assert_eq!(decompress(&[]), Err(CompactError::Empty));
        assert_eq!(decompress(&[9, 1, 2]), Err(CompactError::UnknownFormat(9)));
        assert!(decompress(&[FORMAT_ZSTD_V1, 1, 2, 3]).is_err());
        let last = bytes.len() - 1;
        bytes.truncate(last);
        assert!(decompress(&bytes).is_err());
    }
}
