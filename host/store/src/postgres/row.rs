//! Reading columns back: typed values with errors that name the column, and the
//! text columns that hold enums in their one spelling.

use crate::{StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};

/// Typed column access for a row.
pub(crate) trait RowExt {
    /// The value of column `i`.
    fn at<'r, T: Decode<'r, Postgres> + Type<Postgres>>(&'r self, i: usize) -> StoreResult<T>;
    /// A text column parsed into its enum (an unknown spelling is an error naming it).
    fn parsed<T>(&self, i: usize) -> StoreResult<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display;
    /// A count or attempt number (BIGINT) as u32.
    fn count(&self, i: usize) -> StoreResult<u32>;
    /// A JSON text column decoded (None when it does not parse).
    fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> StoreResult<Option<T>>;
}

impl RowExt for PgRow {
    fn at<'r, T: Decode<'r, Postgres> + Type<Postgres>>(&'r self, i: usize) -> StoreResult<T> {
        self.try_get(i)
            .map_err(|e| StoreError::Database(format!("column {i}: {e}")))
    }

    fn parsed<T>(&self, i: usize) -> StoreResult<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text: &str = self.at(i)?;
        text.parse()
            .map_err(|e: T::Err| StoreError::Database(format!("column {i}: {e}")))
    }

    fn count(&self, i: usize) -> StoreResult<u32> {
        Ok(super::to_u32(self.at::<i64>(i)?))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, i: usize) -> StoreResult<Option<T>> {
        let text: Option<&str> = self.at(i)?;
        Ok(text.and_then(|t| serde_json::from_str(t).ok()))
    }
}

/// A stored JSON document (a body, audit details): JSON text, or the compact encoding's
/// format byte and the compressed JSON (JSON text never starts with that byte). One that
/// cannot be read back becomes a note saying why.
pub(crate) fn stored_json(bytes: &[u8]) -> String {
    match bytes.first() {
        Some(b) if b.is_ascii_control() && !b.is_ascii_whitespace() => {
            crate::compact_json::decompress(bytes).unwrap_or_else(|e| format!("<unreadable: {e}>"))
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A JSON document as stored: compressed when that makes it smaller.
pub(crate) fn to_stored(json: &str) -> Vec<u8> {
    match crate::compact_json::compress(json) {
        crate::compact_json::Compact::Text(text) => text.into_bytes(),
        crate::compact_json::Compact::Compressed(bytes) => bytes,
    }
}
