//! Prism (Stoplight's OpenAPI validator) in proxy mode in front of a fake: every request
//! and every answer is checked against the vendor's published API description. With
//! `--errors`, a request that breaks it is answered 422 and never reaches the fake, and an
//! answer that breaks it becomes a 500; both are also kept in [`Prism::errors`].
//!
//! Prism is installed by `scripts/testbeds/prism.sh install` (the test command runs it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running Prism proxy; stopped when dropped.
pub struct Prism {
    /// The proxy's root URL (use it where the vendor's host would go).
    pub url: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

/// Where the test command installs Prism (`TENURE_PRISM` overrides).
pub fn binary() -> PathBuf {
    std::env::var_os("TENURE_PRISM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            tenure_plugin_test::workspace_root().join("target/tools/prism/node_modules/.bin/prism")
        })
}

/// Okta's description as `scripts/testbeds/prism.sh install` prepares it for Prism.
pub fn okta_spec() -> PathBuf {
    prepared("okta-management.json")
}

/// Microsoft Graph's modules cut to the entra connector's operations by `prism.sh install`.
pub fn graph_spec() -> PathBuf {
    prepared("graph-entra.json")
}

/// A description `scripts/testbeds/prism.sh install` prepared beside Prism.
fn prepared(name: &str) -> PathBuf {
    let path = binary()
        .parent()
        .and_then(|bin| bin.parent())
        .and_then(|modules| modules.parent())
        .map(|dir| dir.join(name))
        .unwrap_or_default();
    assert!(
        path.exists(),
        "{name} is missing at {} (run scripts/testbeds/prism.sh install)",
        path.display()
    );
    path
}

/// A vendored description under `tests/specs/`.
pub fn spec(relative: &str) -> PathBuf {
    tenure_plugin_test::workspace_root()
        .join("tests/specs")
        .join(relative)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Prism {
    /// Starts `prism proxy --errors` for `spec` in front of `upstream`, waiting until it listens.
    pub fn proxy(spec: PathBuf, upstream: &str) -> Prism {
        let bin = binary();
        assert!(
            bin.exists(),
            "Prism is not installed at {} (run scripts/testbeds/prism.sh install)",
            bin.display()
        );
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["proxy", "--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(&spec)
            .arg(upstream)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let mut prism = Prism {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        let started = Instant::now();
        while !prism.lines().iter().any(|l| l.contains("Prism is listening")) {
            if let Ok(Some(status)) = prism.child.try_wait() {
                panic!("Prism exited ({status}): {}", prism.lines().join("\n"));
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "Prism did not start: {}",
                prism.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        prism
    }

    /// Everything Prism logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests or answers Prism refused as breaking the description (Prism logs a refusal
    /// just after answering, so this waits a moment for the last one).
    pub fn errors(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        self.lines()
            .into_iter()
            .filter(|l| l.contains("✖") || l.contains("VIOLATIONS"))
            .collect()
    }

    /// Warnings about answers that match the description only loosely (for example an
    /// error status it does not list).
    pub fn warnings(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains("Violation:"))
            .collect()
    }
}

impl Prism {
    /// Asserts that Prism refused nothing and warned only of statuses the description does not
    /// list (vendors' error answers it leaves out).
    pub fn assert_contract_kept(&self, name: &str) {
        assert!(self.errors().is_empty(), "{name}: {:#?}", self.errors());
        let other: Vec<String> = self
            .warnings()
            .into_iter()
            .filter(|w| !w.contains("Unable to match the returned status code"))
            .collect();
        assert!(other.is_empty(), "{name}: {other:#?}");
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "Prism's findings:\n{}",
                [self.errors(), self.warnings()].concat().join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
