//! A key-value store that reads through to another and keeps its own writes: a shadow run
//! sees the plugin's real data (cached lookups, ids it keeps) and changes none of it.

use crate::kv::{KvBackend, KvError, KvFuture, KvNamespace, KvQuota, MemoryKv};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Reads `base` where this store has no write of its own; writes stay here.
pub struct OverlayKv {
    base: Arc<dyn KvBackend>,
    written: MemoryKv,
    /// Keys removed here (they read as absent whatever `base` holds).
    removed: Mutex<BTreeSet<(KvNamespace, String)>>,
}

impl OverlayKv {
    pub fn over(base: Arc<dyn KvBackend>) -> Self {
        OverlayKv {
            base,
            written: MemoryKv::default(),
            removed: Mutex::default(),
        }
    }

    fn is_removed(&self, ns: &KvNamespace, key: &str) -> bool {
        let removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        removed.contains(&(ns.clone(), key.to_string()))
    }
}

impl KvBackend for OverlayKv {
    fn get<'a>(&'a self, ns: &'a KvNamespace, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            if self.is_removed(ns, key) {
                return Ok(None);
            }
            match self.written.get_now(ns, key)? {
                Some(value) => Ok(Some(value)),
                None => self.base.get(ns, key).await,
            }
        })
    }

    fn apply_checked<'a>(
        &'a self,
        ns: &'a KvNamespace,
        expected: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
        quota: KvQuota,
    ) -> KvFuture<'a, ()> {
        Box::pin(async move {
            for (key, value) in &expected {
                if self.get(ns, key).await? != *value {
                    return Err(KvError::Changed(key.clone()));
                }
            }
            {
                let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
                for (key, value) in &writes {
                    let entry = (ns.clone(), key.clone());
                    if value.is_some() {
                        removed.remove(&entry);
                    } else {
                        removed.insert(entry);
                    }
                }
            }
            self.written.apply_now(ns, writes, quota)
        })
    }

    fn list_keys<'a>(&'a self, ns: &'a KvNamespace, prefix: &'a str) -> KvFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut keys: BTreeSet<String> = self.base.list_keys(ns, prefix).await?.into_iter().collect();
            keys.extend(self.written.list_keys_now(ns, prefix)?);
            Ok(keys.into_iter().filter(|k| !self.is_removed(ns, k)).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_fall_through_and_writes_stay_in_the_overlay() {
        let ns = KvNamespace {
            tenant: "t".into(),
            plugin: "p".into(),
        };
        let base = Arc::new(MemoryKv::default());
        base.set_now(&ns, "a", b"1").unwrap();
        base.set_now(&ns, "b", b"2").unwrap();
        let overlay = OverlayKv::over(base.clone());
        assert_eq!(overlay.get(&ns, "a").await.unwrap(), Some(b"1".to_vec()));
        overlay.set(&ns, "a", b"changed").await.unwrap();
        overlay.remove(&ns, "b").await.unwrap();
        overlay.set(&ns, "c", b"3").await.unwrap();
        assert_eq!(overlay.get(&ns, "a").await.unwrap(), Some(b"changed".to_vec()));
        assert_eq!(overlay.get(&ns, "b").await.unwrap(), None);
        assert_eq!(overlay.list_keys(&ns, "").await.unwrap(), ["a", "c"]);
        // The store underneath is as it was.
        assert_eq!(base.get_now(&ns, "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(base.get_now(&ns, "b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(base.get_now(&ns, "c").unwrap(), None);
    }
}
