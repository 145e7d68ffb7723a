//! The `tenure` command line on a real store: secrets, preview and audit.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tenure(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let bin = tenure_tests::tenure_binary();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("TENURE_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tenure");
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("tenure output")
}

#[test]
fn secrets_preview_and_audit_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = tenure_plugin_test::workspace_root();
    std::fs::write(
        dir.path().join("rules.txt"),
        "destination sandbox\nrule sales: department == \"Sales\" => group:Sales\nset employeeId = \
            \"{id}\"\n",
    )
    .unwrap();
    let config = format!(
        r#"plugins_dir = "{}"
cache_dir = "{}"
[store]
path = "data/tenure.db"
[[api_tokens]]
name = "it"
role = "it"
tenant = "t"
token = "${{secret:it-token}}"
[tenants.t]
rules = "rules-basic"
[[tenants.t.destinations]]
name = "sandbox"
connector = "sandbox"
[tenants.t.plugins.rules-basic]
rule_set = "@rules.txt"
[tenants.t.plugins.sandbox.grants]
kv = true
"#,
        tenure_plugin_test::plugin_dir().display(),
        root.join("target/component-cache").display()
    );
    std::fs::write(dir.path().join("tenure.toml"), config).unwrap();

    // A secret referenced by the config must be in the store first.
    let out = tenure(dir.path(), &["audit", "verify", "--config", "tenure.toml"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api_tokens[0].token: secret \"it-token\" is not in the store"),
        "{err}"
    );
    let out = tenure(
        dir.path(),
        &["secrets", "set", "it-token", "--config", "tenure.toml"],
        Some("a-long-it-token-0123\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = std::fs::read_to_string(dir.path().join("data/tenure.key")).unwrap();
    assert_eq!(key.trim().len(), 44, "a base64 master key was created");
    let db = std::fs::read(dir.path().join("data/tenure.db")).unwrap();
    assert!(
        !db.windows(20).any(|w| w == b"a-long-it-token-0123"),
        "the secret is not stored in clear"
    );

    // Preview writes nothing and shows the plan.
    std::fs::write(
        dir.path().join("person.json"),
        r#"{"ids": [{"source": "api", "id": "42"}], "department": "Sales"}"#,
    )
    .unwrap();
    let args = [
        "preview",
        "--config",
        "tenure.toml",
        "--tenant",
        "t",
        "--person",
        "person.json",
        "--kind",
        "joiner",
    ];
    let out = tenure(dir.path(), &args, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let preview: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ops: Vec<&str> = preview["destinations"][0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["create", "add-member"]);

    let args = [
        "preview",
        "--config",
        "tenure.toml",
        "--tenant",
        "t",
        "--record",
        "hire-42",
    ];
    let out = tenure(dir.path(), &args, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("source_record_id: no event from api with record hire-42"),
        "{err}"
    );

    let out = tenure(dir.path(), &["audit", "verify", "--config", "tenure.toml"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit log intact"));
    let out = tenure(
        dir.path(),
        &["audit", "export", "--config", "tenure.toml", "--format", "csv"],
        None,
    );
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(csv.starts_with(tenure_store::audit::CSV_HEADER), "{csv}");
    assert!(
        csv.contains("admin.secret_set") && csv.contains("admin.audit_verified"),
        "admin actions are audited: {csv}"
    );
    assert!(!csv.contains("a-long-it-token"), "{csv}");
    let out = tenure(
        dir.path(),
        &["audit", "export", "--config", "tenure.toml", "--format", "xml"],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format: must be jsonl or csv"));
}
