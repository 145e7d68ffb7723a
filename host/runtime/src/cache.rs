//! Compiled components, cached on disk so each version compiles once per machine.

use crate::error::RuntimeError;
use sha2::{Digest, Sha256};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled artifacts live; `None` compiles in memory every time.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
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
        let path = dir.join(format!("{digest}-{:016x}.cwasm", h.finish()));
        if path.exists() {
            // SAFETY: the file was written by this host (below) from a component it
            // compiled itself, under a name that includes the source hash and the
            // engine's compatibility hash; the cache directory is the host's own.
            if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
                return Ok((component, digest));
            }
            tracing::warn!(path = %path.display(), "unusable cached component; recompiling");
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
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(cache_err)?;
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
