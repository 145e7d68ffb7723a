//! `tenure rules test FILE`: checks a rule set with the rules plugin that will run
//! it and runs its test cases, so that a customer's CI can gate changes.

use anyhow::{Context, Result, bail};
use std::path::Path;
use tenure_capabilities::TenantConfig;
use tenure_runtime::Runtime;

/// Tenant name the command runs under (nothing is stored).
const TEST_TENANT: &str = "rules-test";

/// Runs the file's tests; prints one line per case and a summary. Fails when the
/// plugin refuses the rule set or a case fails.
pub async fn test(runtime: Runtime, file: &Path, plugin_wasm: &Path) -> Result<()> {
    let document =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let version = runtime
        .register_file(plugin_wasm)
        .with_context(|| format!("loading {} (run plugins/build.sh first)", plugin_wasm.display()))?;
    runtime.set_tenant(TEST_TENANT, TenantConfig::default());
    let handle = runtime.plugin_with_rule_set(TEST_TENANT, &version.manifest.name, &document)?;
    let now = tenure_pipeline::now_ms();
    if let Err(e) = tenure_rulesets::check(&handle, now).await {
        bail!("{}: {e}", file.display());
    }
    let report = tenure_rulesets::cases::run(&handle, &document, now)
        .await
        .with_context(|| format!("{}: the tests section", file.display()))?;
    for case in &report.cases {
        println!("{} {}", if case.passed { "ok  " } else { "FAIL" }, case.name);
        for failure in &case.failures {
            println!("     - {failure}");
        }
    }
    println!(
        "{}: {} ({} with {})",
        file.display(),
        report.summary(),
        version.manifest.name,
        version.label
    );
    if report.cases.is_empty() {
        bail!("{} has no tests; add a tests: section", file.display());
    }
    if report.failed() > 0 {
        bail!("{} test case(s) failed", report.failed());
    }
    Ok(())
}
