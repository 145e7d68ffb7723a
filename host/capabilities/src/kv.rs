//! The key-value store private to one plugin in one tenant.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Longest key a plugin may use.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value a plugin may store.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most keys one (tenant, plugin) store holds unless its grant says otherwise.
pub const MAX_KEYS_PER_STORE: usize = 100_000;
/// Most bytes (keys and values) one (tenant, plugin) store holds unless its grant says otherwise.
pub const MAX_BYTES_PER_STORE: usize = 256 * 1024 * 1024;
/// The most keys any grant may give one store.
pub const CEILING_KEYS_PER_STORE: usize = 50_000_000;
/// The most bytes any grant may give one store (64 GiB).
pub const CEILING_BYTES_PER_STORE: usize = 64 << 30;
/// Most keys one listing returns (a plugin pages by prefix beyond it).
pub const MAX_LISTED_KEYS: usize = 100_000;

/// How much one (tenant, plugin) store may hold: the defaults above, or what the
/// tenant grants (`kv_max_keys`, `kv_max_mib`) up to the ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    pub keys: usize,
    pub bytes: usize,
}

impl Default for KvQuota {
    fn default() -> Self {
        KvQuota {
            keys: MAX_KEYS_PER_STORE,
            bytes: MAX_BYTES_PER_STORE,
        }
    }
}

impl KvQuota {
    /// A grant's quota: its values where given, the defaults otherwise, within the ceilings.
    pub fn granted(keys: Option<usize>, mib: Option<usize>) -> Self {
        let d = KvQuota::default();
        KvQuota {
            keys: keys.unwrap_or(d.keys).min(CEILING_KEYS_PER_STORE),
            bytes: mib
                .map_or(d.bytes, |m| m.saturating_mul(1 << 20))
                .min(CEILING_BYTES_PER_STORE),
        }
    }

    /// Refuses a store that would hold `keys` keys and `bytes` bytes.
    pub fn check(&self, keys: usize, bytes: usize) -> Result<(), KvError> {
        if keys > self.keys {
            return Err(KvError::TooLarge(format!(
                "the store is full: {} keys (raise kv_max_keys in the plugin's grant)",
                self.keys
            )));
        }
        if bytes > self.bytes {
            return Err(KvError::TooLarge(format!(
                "the store is full: {} bytes (raise kv_max_mib in the plugin's grant)",
                self.bytes
            )));
        }
        Ok(())
    }
}

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
    /// A key the call read and wrote was changed by another call meanwhile: nothing of this
    /// call was written (the host retries it rather than lose the other's update).
    #[error("{0} was changed by another call meanwhile")]
    Changed(String),
    #[error("{0}")]
    Other(String),
}

/// Storage behind the plugin key-value capability (memory here; SQLite and
/// PostgreSQL implement it in the store crate).
/// Methods return futures so that a durable backend can group-commit writes
/// without blocking the thread that runs the plugin.
pub trait KvBackend: Send + Sync {
    fn get<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Writes one key within the default quota.
    fn set<'a>(&'a self, ns: &'a KvNamespace, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        self.apply_batch(
            ns,
            vec![(key.to_string(), Some(value.to_vec()))],
            KvQuota::default(),
        )
    }
    fn remove<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, ()> {
        self.apply_batch(ns, vec![(key.to_string(), None)], KvQuota::default())
    }
    fn list_keys<'a>(&'a self, ns: &'a KvNamespace, prefix: &'a str) -> KvFuture<'a, Vec<String>>;
    /// Resolves once every write answered so far survives what the backend promises
    /// (a durable backend may answer writes at commit and make them durable just
    /// after). The host awaits it before a plugin's request leaves the host, so
    /// nothing is done outside on the strength of data a power loss could take back.
    fn settle(&self) -> KvFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Applies one plugin call's writes (`None` removes) all or nothing, within `quota`.
    fn apply_batch<'a>(
        &'a self,
        ns: &'a KvNamespace,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> KvFuture<'a, ()> {
        self.apply_checked(ns, Vec::new(), writes, quota)
    }
    /// [`apply_batch`](Self::apply_batch), only if every `expected` key still holds what the
    /// call read of it (`None`: absent); otherwise nothing is written and the answer is
    /// [`KvError::Changed`]. Two calls that read, change and write the same key (a counter,
    /// an index entry) cannot both succeed, so neither update is lost.
    fn apply_checked<'a>(
        &'a self,
        ns: &'a KvNamespace,
        expected: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> KvFuture<'a, ()>;
}

/// What a [`KvBackend`] call returns.
pub type KvFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, KvError>> + Send + 'a>>;

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

#[derive(Debug, Default)]
struct Namespace {
    entries: BTreeMap<String, Vec<u8>>,
    bytes: usize,
}

/// An in-memory backend (tests and the embedded demo), with the same
/// per-store quotas as the durable backends.
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<KvNamespace, Namespace>>,
}

impl MemoryKv {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<KvNamespace, Namespace>) -> R) -> R {
        let mut guard = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl KvBackend for MemoryKv {
    fn get<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(self.get_now(ns, key)))
    }
    fn apply_checked<'a>(
        &'a self,
        ns: &'a KvNamespace,
        expected: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> KvFuture<'a, ()> {
        Box::pin(std::future::ready(
            self.apply_checked_now(ns, &expected, writes, quota),
        ))
    }
    fn list_keys<'a>(&'a self, ns: &'a KvNamespace, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        Box::pin(std::future::ready(self.list_keys_now(ns, prefix)))
    }
}

impl MemoryKv {
    /// Reads one key.
    pub fn get_now(&self, ns: &KvNamespace, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with(|d| d.get(ns).and_then(|n| n.entries.get(key)).cloned()))
    }

    /// Writes one key within the default quota.
    pub fn set_now(&self, ns: &KvNamespace, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.apply_now(
            ns,
            vec![(key.to_string(), Some(value.to_vec()))],
            KvQuota::default(),
        )
    }

    /// Applies writes all or nothing within `quota`.
    pub fn apply_now(
        &self,
        ns: &KvNamespace,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> Result<(), KvError> {
        self.apply_checked_now(ns, &[], writes, quota)
    }

    /// Applies writes all or nothing within `quota` if every `expected` key holds its value.
    pub fn apply_checked_now(
        &self,
        ns: &KvNamespace,
        expected: &[(String, Option<Vec<u8>>)],
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> Result<(), KvError> {
        self.with(|d| {
            let n = d.entry(ns.clone()).or_default();
            if let Some((key, _)) = expected.iter().find(|(k, v)| n.entries.get(k) != v.as_ref()) {
                return Err(KvError::Changed(key.clone()));
            }
            let (mut keys, mut bytes) = (n.entries.len(), n.bytes);
            // Each key counted once, at its last write in the batch.
            let mut last: BTreeMap<&str, Option<&Vec<u8>>> = BTreeMap::new();
            for (key, value) in &writes {
                last.insert(key, value.as_ref());
            }
            for (key, value) in &last {
                if let Some(old) = n.entries.get(*key) {
                    keys -= 1;
                    bytes -= key.len() + old.len();
                }
                if let Some(v) = value {
                    keys += 1;
                    bytes += key.len() + v.len();
                }
            }
            quota.check(keys, bytes)?;
            for (key, value) in writes {
                match value {
                    Some(v) => {
                        n.entries.insert(key, v);
                    }
                    None => {
                        n.entries.remove(&key);
                    }
                }
            }
            n.bytes = bytes;
            Ok(())
        })
    }

    /// Removes one key.
    pub fn remove_now(&self, ns: &KvNamespace, key: &str) -> Result<(), KvError> {
        self.with(|d| {
            if let Some(n) = d.get_mut(ns)
                && let Some(v) = n.entries.remove(key)
            {
                n.bytes -= key.len() + v.len();
            }
        });
        Ok(())
    }

    /// Keys starting with `prefix`, in order.
    pub fn list_keys_now(&self, ns: &KvNamespace, prefix: &str) -> Result<Vec<String>, KvError> {
        Ok(self.with(|d| {
            d.get(ns)
                .map(|n| {
                    n.entries
                        .range(prefix.to_string()..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .take(MAX_LISTED_KEYS)
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
        kv.set_now(&a, "user/1", b"x").unwrap();
        kv.set_now(&a, "user/2", b"y").unwrap();
        kv.set_now(&a, "v", b"z").unwrap();
        assert_eq!(kv.get_now(&b, "user/1").unwrap(), None);
        assert_eq!(kv.list_keys_now(&a, "user/").unwrap(), vec!["user/1", "user/2"]);
        kv.remove_now(&a, "user/1").unwrap();
        assert_eq!(kv.get_now(&a, "user/1").unwrap(), None);
        assert!(check_sizes("", None).is_err());
        // Overwrites and removals keep the byte count exact.
        kv.set_now(&b, "k", &[0; 10]).unwrap();
        kv.set_now(&b, "k", &[0; 4]).unwrap();
        kv.remove_now(&b, "k").unwrap();
        assert_eq!(kv.with(|d| d[&b].bytes), 0);
    }

    #[test]
    fn a_store_has_a_key_quota() {
        let kv = MemoryKv::default();
        let ns = KvNamespace {
            tenant: "t".into(),
            plugin: "p".into(),
        };
        for i in 0..MAX_KEYS_PER_STORE {
            kv.set_now(&ns, &format!("k{i}"), b"").unwrap();
        }
        let err = kv.set_now(&ns, "one-more", b"").unwrap_err();
        assert!(err.to_string().contains("the store is full"), "{err}");
        // Overwriting an existing key is still allowed.
        kv.set_now(&ns, "k1", b"new").unwrap();
        assert!(check_sizes("k", Some(&vec![0; MAX_VALUE_BYTES + 1])).is_err());
    }

    #[test]
    fn a_grant_raises_the_quota_up_to_the_ceiling() {
        let kv = MemoryKv::default();
        let ns = KvNamespace {
            tenant: "t".into(),
            plugin: "p".into(),
        };
        let small = KvQuota::granted(Some(2), Some(1));
        let write = |k: &str| vec![(k.to_string(), Some(b"v".to_vec()))];
        kv.apply_now(&ns, write("a"), small).unwrap();
        kv.apply_now(&ns, write("b"), small).unwrap();
        let err = kv.apply_now(&ns, write("c"), small).unwrap_err();
        assert!(err.to_string().contains("kv_max_keys"), "{err}");
        // A batch that removes one key and adds another fits.
        kv.apply_now(
            &ns,
            vec![("a".into(), None), ("c".into(), Some(b"v".to_vec()))],
            small,
        )
        .unwrap();
        let big = vec![("d".to_string(), Some(vec![0; 2 << 20]))];
        let err = kv
            .apply_now(&ns, big, KvQuota::granted(Some(10), Some(1)))
            .unwrap_err();
        assert!(err.to_string().contains("kv_max_mib"), "{err}");
        assert_eq!(
            kv.list_keys_now(&ns, "").unwrap(),
            ["b", "c"],
            "nothing of a refused batch is kept"
        );
        let huge = KvQuota::granted(Some(usize::MAX), Some(usize::MAX));
        assert_eq!(
            (huge.keys, huge.bytes),
            (CEILING_KEYS_PER_STORE, CEILING_BYTES_PER_STORE)
        );
        assert_eq!(KvQuota::granted(None, None), KvQuota::default());
    }
}
