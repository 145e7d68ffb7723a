//! The key-value store private to one plugin in one tenant.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Longest key a plugin may use.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value a plugin may store.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Whose data this is. Built by the host from the tenant and plugin names; a
/// plugin cannot choose it, so it cannot reach another tenant's or plugin's keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvNamespace {
    pub tenant: String,
    pub plugin: String,
}

/// Why a key-value call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Other(String),
}

/// Storage behind the plugin key-value capability (memory here; SQLite and
/// PostgreSQL implement it in the store crate).
pub trait KvBackend: Send + Sync {
    fn get(&self, ns: &KvNamespace, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, ns: &KvNamespace, key: &str, value: &[u8]) -> Result<(), KvError>;
    fn remove(&self, ns: &KvNamespace, key: &str) -> Result<(), KvError>;
    fn list_keys(&self, ns: &KvNamespace, prefix: &str) -> Result<Vec<String>, KvError>;
}

/// Checks a key and value against the host's limits.
pub fn check_sizes(key: &str, value: Option<&[u8]>) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::TooLarge(format!(
            "key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    if let Some(v) = value
        && v.len() > MAX_VALUE_BYTES
    {
        return Err(KvError::TooLarge(format!(
            "value for key {key:?} is {} bytes; the limit is {MAX_VALUE_BYTES}",
            v.len()
        )));
    }
    Ok(())
}

/// An in-memory backend (tests and the embedded demo).
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<KvNamespace, BTreeMap<String, Vec<u8>>>>,
}

impl MemoryKv {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<KvNamespace, BTreeMap<String, Vec<u8>>>) -> R) -> R {
        let mut guard = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl KvBackend for MemoryKv {
    fn get(&self, ns: &KvNamespace, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with(|d| d.get(ns).and_then(|m| m.get(key)).cloned()))
    }

    fn set(&self, ns: &KvNamespace, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.with(|d| {
            d.entry(ns.clone())
                .or_default()
                .insert(key.to_string(), value.to_vec())
        });
        Ok(())
    }

    fn remove(&self, ns: &KvNamespace, key: &str) -> Result<(), KvError> {
        self.with(|d| d.get_mut(ns).map(|m| m.remove(key)));
        Ok(())
    }

    fn list_keys(&self, ns: &KvNamespace, prefix: &str) -> Result<Vec<String>, KvError> {
        Ok(self.with(|d| {
            d.get(ns)
                .map(|m| {
                    m.range(prefix.to_string()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_do_not_mix() {
        let kv = MemoryKv::default();
        let a = KvNamespace {
            tenant: "a".into(),
            plugin: "p".into(),
        };
        let b = KvNamespace {
            tenant: "b".into(),
            plugin: "p".into(),
        };
        kv.set(&a, "user/1", b"x").unwrap();
        kv.set(&a, "user/2", b"y").unwrap();
        kv.set(&a, "v", b"z").unwrap();
        assert_eq!(kv.get(&b, "user/1").unwrap(), None);
        assert_eq!(kv.list_keys(&a, "user/").unwrap(), vec!["user/1", "user/2"]);
        kv.remove(&a, "user/1").unwrap();
        assert_eq!(kv.get(&a, "user/1").unwrap(), None);
        assert!(check_sizes("", None).is_err());
        assert!(check_sizes("k", Some(&vec![0; MAX_VALUE_BYTES + 1])).is_err());
    }
}
