//! Compiled components, cached on disk so each version compiles once per machine.
//!
//! A cached artifact is native code, loaded without checks, so each file ends with an
//! HMAC-SHA256 (keyed by the host: from the master key) over its name and content; a
//! file whose MAC does not hold is never deserialized, only compiled anew.

use crate::error::RuntimeError;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Length of the MAC at the end of a cached artifact.
const MAC_LEN: usize = 32;

/// Where compiled artifacts live and the key that authenticates them; without both,
/// components compile in memory every time.
#[derive(Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    key: [u8; 32],
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache").field("dir", &self.dir).finish()
    }
}

/// The MAC of a cached artifact: over its file name (source digest and engine) and bytes.
fn artifact_mac(key: &[u8; 32], path: &Path, bytes: &[u8]) -> [u8; MAC_LEN] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(b"tenure component cache v1\n");
    mac.update(path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
    mac.update(b"\n");
    mac.update(bytes);
    mac.finalize().into_bytes().into()
}

/// The artifact in a cache file, if its MAC holds.
fn authenticated(key: &[u8; 32], path: &Path, file: &[u8]) -> Option<usize> {
    let body = file.len().checked_sub(MAC_LEN)?;
    let expected = artifact_mac(key, path, &file[..body]);
    let stored = &file[body..];
    let same = expected.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    same.then_some(body)
}

impl ComponentCache {
    /// A cache in `dir` whose files are authenticated with `key`; no disk cache without both.
    pub fn new(dir: Option<PathBuf>, key: Option<crate::engine::CacheKey>) -> Self {
        match key {
            Some(crate::engine::CacheKey(key)) => Self { dir, key },
            None => Self {
                dir: None,
                key: [0; 32],
            },
        }
    }

    /// Loads `wasm` from the cache, or compiles and stores it. Returns the
    /// component and the hex SHA-256 of `wasm`.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, String), RuntimeError> {
        let digest = hex::encode(Sha256::digest(wasm));
        let compile = || {
            Component::new(engine, wasm).map_err(|e| RuntimeError::InvalidPlugin {
                plugin: digest[..12].to_string(),
                reason: format!("not a valid WebAssembly component: {e:#}"),
            })
        };
        let Some(dir) = &self.dir else {
            return Ok((compile()?, digest));
        };
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        // Each key has its own files (hosts, tests and the demo may share a directory);
        // the name carries a fingerprint of the key, never the key.
        let fingerprint = hex::encode(&Sha256::digest(self.key)[..4]);
        let path = dir.join(format!("{digest}-{:016x}-{fingerprint}.cwasm", h.finish()));
        if let Ok(file) = std::fs::read(&path) {
            match authenticated(&self.key, &path, &file) {
                Some(body) => {
                    // SAFETY: the bytes carry this host's MAC over the file's name (the
                    // source hash and the engine's compatibility hash) and content: the
                    // host wrote them (below) from a component it compiled itself.
                    if let Ok(component) = unsafe { Component::deserialize(engine, &file[..body]) } {
                        return Ok((component, digest));
                    }
                    tracing::warn!(path = %path.display(), "unusable cached component; recompiling");
                }
                None => tracing::warn!(
                    path = %path.display(),
                    "cached component whose MAC does not hold (altered); recompiling"
                ),
            }
        }
        let component = compile()?;
        let cache_err = |e: std::io::Error| RuntimeError::Cache {
            path: dir.display().to_string(),
            reason: e.to_string(),
        };
        create_private_dir(dir).map_err(cache_err)?;
        let bytes = component.serialize().map_err(|e| RuntimeError::Cache {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut file = bytes;
        let mac = artifact_mac(&self.key, &path, &file);
        file.extend_from_slice(&mac);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, file).map_err(cache_err)?;
        std::fs::rename(&tmp, &path).map_err(cache_err)?;
        Ok((component, digest))
    }
}

/// Creates the cache directory readable and writable by the host's user only (0700): a
/// compiled component is loaded as native code, so nobody else may place one there.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_cache_directory_is_private_to_the_host() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("tenure-cache-test-{}", std::process::id()));
        let dir = root.join("component-cache");
        super::create_private_dir(&dir).expect("create");
        let mode = std::fs::metadata(&dir).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let _ = std::fs::remove_dir_all(&root);
    }
}
