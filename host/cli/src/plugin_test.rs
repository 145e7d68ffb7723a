//! `tenure plugins test DIR`: a plugin project's fixtures run in the real host (the same
//! runtime, grants and limits as production), so an author knows before pushing.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tenure_plugin_test::Harness;
use tenure_runtime::{PluginManifest, Runtime};

/// Runs `dir/fixtures/*.json`; prints a line per fixture and fails when any fails.
pub async fn run(runtime: Runtime, dir: &Path, wasm: Option<PathBuf>) -> Result<()> {
    let manifest_path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = PluginManifest::parse(&manifest_path.display().to_string(), &text)?;
    let wasm = wasm.unwrap_or_else(|| dir.join("dist").join(format!("{}.wasm", manifest.name)));
    if !wasm.exists() {
        bail!("{} is not built; run the project's build first", wasm.display());
    }
    let harness = Harness::with_runtime(runtime);
    let version = harness
        .runtime()
        .register_file(&wasm)
        .with_context(|| format!("loading {}", wasm.display()))?;
    let results = harness.run_fixture_dir(&version, &dir.join("fixtures")).await?;
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    for result in &results {
        let mark = if result.failures.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        println!("{mark} {}", result.name);
        for failure in &result.failures {
            println!("     - {failure}");
        }
    }
    println!(
        "{}: {} passed, {failed} failed ({} {})",
        dir.display(),
        results.len() - failed,
        version.manifest.name,
        version.label
    );
    if failed > 0 {
        bail!("{failed} fixture(s) failed");
    }
    Ok(())
}
