//! The real servers of `scripts/testbeds/` (OpenLDAP, Samba AD, scim2-server):
//! started (or reused) on demand, their settings read from the script's output.

use std::collections::HashMap;

/// Runs `scripts/testbeds/<script> start` and returns its `KEY=VALUE` settings.
pub fn start(script: &str) -> HashMap<String, String> {
    let path = tenure_plugin_test::workspace_root()
        .join("scripts/testbeds")
        .join(script);
    let out = std::process::Command::new("bash")
        .arg(&path)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{script} start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// A short suffix unique to this test run (names in long-lived servers must not collide).
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:06x}",
        (nanos as u64 ^ u64::from(std::process::id()) << 20) & 0xff_ffff
    )
}

/// Replaces every `$KEY` of `env` in `text`.
pub fn fill(text: &str, env: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = env.keys().collect();
    // Longest first, so `$A_URL` is not cut short by `$A`.
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut out = text.to_string();
    for k in keys {
        out = out.replace(&format!("${k}"), &env[k]);
    }
    out
}
