//! A real OpenID provider for the sign-in tests: `tests/idp/server.mjs` runs oidc-provider
//! (installed by `scripts/testbeds/oidc-provider.sh install`, which the test command runs).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running provider; stopped when dropped.
pub struct Idp {
    /// The issuer (`http://127.0.0.1:PORT`).
    pub issuer: String,
    child: Child,
}

impl Idp {
    /// Starts the provider on `port` with one client, `tenure`, whose secret is `secret` and
    /// whose one redirect URI is `redirect_uri`; waits until it serves.
    pub fn start(port: u16, redirect_uri: &str, secret: &str) -> Idp {
        let dir = tenure_plugin_test::workspace_root().join("tests/idp");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed (run scripts/testbeds/oidc-provider.sh install)"
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .args([&port.to_string(), redirect_uri, secret])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/idp/server.mjs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("listening") => break,
                _ => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("the OpenID provider exited ({status})");
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(30),
                        "the OpenID provider did not start"
                    );
                }
            }
        }
        Idp {
            issuer: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// Sets the groups the provider says `account` is in.
    pub async fn set_groups(&self, account: &str, groups: &[&str]) {
        let resp = reqwest::Client::new()
            .post(format!("{}/test/groups/{account}", self.issuer))
            .json(&groups)
            .send()
            .await
            .expect("set groups");
        assert_eq!(resp.status(), reqwest::StatusCode::NO_CONTENT);
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
