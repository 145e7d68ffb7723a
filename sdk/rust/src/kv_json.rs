//! The plugin's private key-value store, holding JSON, with errors as [`PluginError`]s.

use crate::host::kv::{self, KvError};
use crate::types::PluginError;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn storage(e: KvError) -> PluginError {
    PluginError::Transient(format!("key-value store: {e:?}"))
}

/// The value at `key`, if any; a stored value that is not `T` is `permanent`.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    match kv::get(key).map_err(storage)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PluginError::Permanent(format!("stored {key} is unreadable: {e}"))),
    }
}

/// The value at `key`; none there is `not-found` naming the key.
pub fn require<T: DeserializeOwned>(key: &str) -> Result<T, PluginError> {
    get(key)?.ok_or_else(|| PluginError::NotFound(format!("nothing stored at {key}")))
}

/// The first of `keys` that holds a value, with that value.
pub fn first<T: DeserializeOwned>(
    keys: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<Option<T>, PluginError> {
    for key in keys {
        if let Some(value) = get(key.as_ref())? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Stores `value` at `key`.
pub fn put<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), PluginError> {
    let bytes = serde_json::to_vec(value).map_err(|e| PluginError::Permanent(e.to_string()))?;
    kv::set(key, &bytes).map_err(storage)
}

/// Removes `key` (absent is fine).
pub fn remove(key: &str) -> Result<(), PluginError> {
    kv::remove(key).map_err(storage)
}

/// The raw bytes at `key`.
pub fn get_raw(key: &str) -> Result<Option<Vec<u8>>, PluginError> {
    kv::get(key).map_err(storage)
}

/// Stores raw bytes at `key`.
pub fn put_raw(key: &str, value: &[u8]) -> Result<(), PluginError> {
    kv::set(key, value).map_err(storage)
}

/// The keys starting with `prefix`.
pub fn keys(prefix: &str) -> Result<Vec<String>, PluginError> {
    kv::list_keys(prefix).map_err(storage)
}
