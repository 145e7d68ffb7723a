//! The browser tests' scripts (`tests/browser/*.mjs`, Debian's Chromium driven by
//! playwright-core): each prints one JSON line with what it saw and exits 1 on a failure.

use serde_json::Value;
use std::process::{Child, Command, Stdio};

/// Where the scripts and their npm packages are.
pub fn dir() -> std::path::PathBuf {
    let dir = tenure_plugin_test::workspace_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists() && dir.join("node_modules/axe-core").exists(),
        "playwright-core and axe-core are not installed (run scripts/testbeds/browser.sh install)"
    );
    dir
}

/// Starts a script; [`seen`] reads what it saw once it ends.
pub fn start<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> Child {
    Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node tests/browser/{script}: {e}"))
}

/// Waits for a script and returns its JSON line; panics, with what it saw, when it failed.
pub async fn seen(child: Child) -> Value {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the browser's task")
        .expect("the browser's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{seen:#}");
    seen
}

/// Runs a script to its end.
pub async fn run<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> Value {
    seen(start(script, args)).await
}
