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
    assert_eq!(ops, ["create", "add-member"], "{preview}");

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

/// The audit head file (issue 18): a cut tail or a missing head file stops the store from
/// opening until an operator accepts the database's head again, with a reason, audited.
#[test]
fn a_cut_audit_tail_stops_the_store_until_an_operator_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "plugins_dir = \"{}\"\ncache_dir = \"{}\"\n[store]\npath = \"data/tenure.db\"\n[tenants.t]\n",
        tenure_plugin_test::plugin_dir().display(),
        tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display()
    );
    std::fs::write(dir.path().join("tenure.toml"), config).unwrap();
    let run = |args: &[&str]| {
        let out = tenure(dir.path(), args, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    // Each verify appends its own audit entry: three entries, the head file recording the last.
    for _ in 0..3 {
        let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
        assert!(ok, "{text}");
    }
    let head = std::fs::read_to_string(dir.path().join("data/tenure.db.audit-head")).unwrap();
    assert_eq!(head.split_whitespace().count(), 3, "seq, hash and MAC: {head}");

    // Someone with the file drops the trigger and cuts the last entry.
    let db = rusqlite::Connection::open(dir.path().join("data/tenure.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit);",
    )
    .unwrap();
    drop(db);
    let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
    assert!(
        !ok && text.contains("entries were removed") && text.contains("accept-head"),
        "{text}"
    );

    let reason = "restored the backup of 3 March; verify held up to entry 2";
    let (ok, text) = run(&[
        "audit",
        "accept-head",
        "--config",
        "tenure.toml",
        "--reason",
        reason,
    ]);
    assert!(ok && text.contains("entries were removed"), "{text}");
    let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
    assert!(ok, "after accepting: {text}");
    let (ok, export) = run(&["audit", "export", "--config", "tenure.toml", "--format", "jsonl"]);
    assert!(
        ok && export.contains("audit.head-accepted") && export.contains(reason),
        "{export}"
    );

    // A forged head file, and a missing one, stop it as well.
    std::fs::write(dir.path().join("data/tenure.db.audit-head"), "99 abc def\n").unwrap();
    let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
    assert!(!ok && text.contains("MAC does not match"), "{text}");
    std::fs::remove_file(dir.path().join("data/tenure.db.audit-head")).unwrap();
    let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
    assert!(!ok && text.contains("is missing"), "{text}");
}

/// Signed checkpoints (issue 18): someone who can rewrite the database and its head file
/// (here: cut the tail, then have the head re-recorded) passes a plain `verify`, but not
/// `verify --checkpoint` with a checkpoint kept outside the host; an altered checkpoint or
/// one signed by another key is refused.
#[test]
fn a_signed_checkpoint_outside_the_host_catches_a_cut_the_head_file_no_longer_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    let config = format!(
        "plugins_dir = \"{}\"\ncache_dir = \"{}\"\n[store]\npath = \"data/tenure.db\"\n[tenants.t]\n\
         [audit_checkpoints]\nfile = \"outside/checkpoints.jsonl\"\n",
        tenure_plugin_test::plugin_dir().display(),
        tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display()
    );
    std::fs::write(dir.path().join("tenure.toml"), config).unwrap();
    let run = |args: &[&str]| {
        let out = tenure(dir.path(), args, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for _ in 0..3 {
        let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
        assert!(ok, "{text}");
    }
    let (ok, text) = run(&["audit", "checkpoint", "--config", "tenure.toml"]);
    assert!(ok && text.contains("checkpoint at entry 3"), "{text}");
    let file = dir.path().join("outside/checkpoints.jsonl");
    let line = std::fs::read_to_string(&file).unwrap();
    let checkpoint: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(checkpoint["seq"], 3, "{line}");
    let out = tenure(
        dir.path(),
        &["audit", "public-key", "--config", "tenure.toml"],
        None,
    );
    let key = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && key.trim() == checkpoint["public_key"],
        "{key} vs {line}"
    );

    let verify = [
        "audit",
        "verify",
        "--config",
        "tenure.toml",
        "--checkpoint",
        "outside/checkpoints.jsonl",
    ];
    let (ok, text) = run(&verify);
    assert!(ok && text.contains("1 signed checkpoint(s) hold"), "{text}");
    let (ok, export) = run(&["audit", "export", "--config", "tenure.toml"]);
    assert!(ok && export.contains("audit.checkpointed"), "{export}");

    // The tail is cut back to entry 2 and the head file re-recorded: a plain verify holds.
    let db = rusqlite::Connection::open(dir.path().join("data/tenure.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq >= 3;")
        .unwrap();
    drop(db);
    let (ok, text) = run(&[
        "audit",
        "accept-head",
        "--config",
        "tenure.toml",
        "--reason",
        "cover-up",
    ]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["audit", "verify", "--config", "tenure.toml"]);
    assert!(ok, "without the checkpoint the cut passes: {text}");
    // accept-head appended entry 3 again, so the chain passes entry 3 with another hash.
    let (ok, text) = run(&verify);
    assert!(
        !ok && text.contains("BROKEN at entry 3") && text.contains("signed checkpoint"),
        "{text}"
    );

    // An altered checkpoint (its sequence moved back) and a stranger's key are refused.
    let altered = line.replacen("\"seq\":3", "\"seq\":2", 1);
    assert_ne!(altered, line);
    std::fs::write(&file, &altered).unwrap();
    let (ok, text) = run(&verify);
    assert!(!ok && text.contains("signature does not match"), "{text}");
    std::fs::write(&file, &line).unwrap();
    let stranger = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let mut with_key = verify.to_vec();
    with_key.extend(["--public-key", stranger]);
    let (ok, text) = run(&with_key);
    assert!(!ok && text.contains("signed by another key"), "{text}");
    std::fs::write(&file, "").unwrap();
    let (ok, text) = run(&verify);
    assert!(!ok && text.contains("holds no checkpoint"), "{text}");
}

#[test]
fn the_api_description_from_the_command_line_is_the_one_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = tenure(dir.path(), &["config", "openapi"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // Compared whole; on a difference only the paths are listed (the document is large).
    let served = tenure_server::openapi();
    assert!(
        printed == served,
        "the printed description differs (a stale binary? cargo build -p tenure): {:?} against {:?}",
        printed["paths"].as_object().map(|p| p.len()),
        served["paths"].as_object().map(|p| p.len())
    );
}
