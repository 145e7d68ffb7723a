//! WIT versions and plugin identity: the host refuses what it cannot run, clearly.

use tenure_plugin_test::{Harness, plugin_dir};
use tenure_runtime::{PluginManifest, RuntimeError, SUPPORTED_WIT};

#[test]
fn a_plugin_built_for_an_unsupported_wit_version_is_refused_with_the_fix() {
    let h = Harness::new().unwrap();
    let err = h.load("future-wit").unwrap_err().to_string();
    assert!(err.contains("needs Tenure WIT tenure:plugin@0.2.0"), "{err}");
    assert!(err.contains("supports 0.1.x (wit/since_v0.1.0)"), "{err}");
    assert!(err.contains("Rebuild the plugin"), "{err}");
    assert_eq!(SUPPORTED_WIT.len(), 1);
}

#[test]
fn a_manifest_that_lies_about_the_kind_is_refused() {
    let h = Harness::new().unwrap();
    let wasm = std::fs::read(plugin_dir().join("chaos.wasm")).unwrap();
    let manifest = PluginManifest::parse(
        "chaos.toml",
        "name = \"chaos\"\nversion = \"1\"\nkind = \"connector\"\n",
    )
    .unwrap();
    let err = h.runtime().register(manifest, &wasm).unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidPlugin { .. }), "{err}");
    assert!(err.to_string().contains("exports the rules interface"), "{err}");
}

#[test]
fn bad_manifests_and_bytes_are_refused_with_reasons() {
    let err = PluginManifest::parse(
        "x.toml",
        "name = \"Bad Name\"\nversion = \"1\"\nkind = \"rules\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("lowercase"), "{err}");
    let err =
        PluginManifest::parse("x.toml", "name = \"x\"\nversion = \"1\"\nkind = \"mapper\"\n").unwrap_err();
    assert!(err.to_string().contains("x.toml"), "{err}");
    let h = Harness::new().unwrap();
    let manifest =
        PluginManifest::parse("x.toml", "name = \"x\"\nversion = \"1\"\nkind = \"rules\"\n").unwrap();
    let err = h.runtime().register(manifest, b"not wasm").unwrap_err();
    assert!(
        err.to_string().contains("not a valid WebAssembly component"),
        "{err}"
    );
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let h = Harness::new().unwrap();
    let v = h.load("rules-basic").unwrap();
    let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/component-cache");
    let cached = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with(&v.sha256));
    assert!(
        cached,
        "a compiled artifact for {} is in {}",
        v.sha256,
        cache.display()
    );
    // A second runtime loads the same artifact.
    let again = Harness::new().unwrap().load("rules-basic").unwrap();
    assert_eq!(again.sha256, v.sha256);
}

/// A harness whose compiled components are cached in `dir` under `key`.
fn cached_in(dir: &std::path::Path, key: [u8; 32]) -> Harness {
    let services = tenure_runtime::Services::new(
        std::sync::Arc::new(tenure_capabilities::MemoryKv::default()),
        std::sync::Arc::new(tenure_capabilities::SystemClock),
    )
    .unwrap();
    let options = tenure_runtime::RuntimeOptions {
        cache_dir: Some(dir.to_path_buf()),
        cache_key: Some(tenure_runtime::CacheKey(key)),
        ..tenure_runtime::RuntimeOptions::default()
    };
    Harness::with_services(options, services).unwrap()
}

#[test]
fn a_cached_component_without_the_hosts_mac_is_compiled_again_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let v = cached_in(dir.path(), [1; 32]).load("rules-basic").unwrap();
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&v.sha256))
        })
        .expect("a cached artifact");
    let written = std::fs::read(&file).unwrap();

    // Someone with write access to the cache alters the native code.
    let mut altered = written.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0xff;
    std::fs::write(&file, &altered).unwrap();
    let again = cached_in(dir.path(), [1; 32]).load("rules-basic").unwrap();
    assert_eq!(again.sha256, v.sha256);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        written,
        "recompiled and written anew"
    );

    // Another key has files of its own; its artifact copied under this key's name is not
    // this host's either (the MAC covers the name).
    cached_in(dir.path(), [2; 32]).load("rules-basic").unwrap();
    let artifacts: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&v.sha256))
        })
        .collect();
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    let other = artifacts.iter().find(|p| **p != file).unwrap();
    std::fs::copy(other, &file).unwrap();
    cached_in(dir.path(), [1; 32]).load("rules-basic").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), written, "recompiled, not loaded");
}
