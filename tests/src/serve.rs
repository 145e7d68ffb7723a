//! The real `tenure` binary as tests run it: `tenure serve` as a child process on a
//! free loopback port, and one-shot CLI commands on the same config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The master key every test process shares (base64 of bytes 0..32).
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Starts `tenure serve --config CONFIG` in `dir`, its log appended to `log`.
pub fn start_serve(dir: &Path, config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the serve log");
    Command::new(crate::tenure_binary())
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .env("TENURE_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start tenure serve")
}

/// Waits until `base` answers `/readyz` (30 s at most).
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("{base}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tenure serve did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// GETs `path` from `base` as the holder of `token` and reads its JSON answer (a test fails on
/// any transport or decoding error).
pub async fn get_json(client: &reqwest::Client, base: &str, path: &str, token: &str) -> serde_json::Value {
    client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

/// Runs one `tenure` command in `dir` with the shared master key (and `stdin`, if given).
pub fn run_cli(dir: &PathBuf, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(crate::tenure_binary())
        .args(args)
        .current_dir(dir)
        .env("TENURE_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tenure");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("tenure output")
}
