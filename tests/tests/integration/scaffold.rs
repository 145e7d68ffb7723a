//! `tenure plugins new` as a newcomer meets it: a connector and a rules project created, built to
//! components with the project's own build script, accepted by `tenure plugins check`, and run in
//! the real host (the connector creates and finds an account; the rules give one per destination).

use serde_json::json;
use std::path::Path;
use std::process::Command;
use tenure_plugin_test::{Harness, context_from_json, person_from_json, workspace_root};
use tenure_runtime::wit::{Attribute, DesiredAccount, MatchKey, Operation, Value};
use tenure_tests::serve::run_cli;

fn ok(out: std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Creates and builds a project; the built component's path.
fn scaffold(dir: &Path, name: &str, kind: &str) -> std::path::PathBuf {
    let created = ok(
        run_cli(
            &dir.to_path_buf(),
            &["plugins", "new", name, "--kind", kind],
            None,
        ),
        "plugins new",
    );
    assert!(created.contains(&format!("created ./{name}")), "{created}");
    let project = dir.join(name);
    // Resolve the SDK's dependencies as Tenure's own plugins do (the versions are in the cache).
    std::fs::copy(
        workspace_root().join("plugins/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    let built = Command::new(project.join("build.sh"))
        .env("CARGO_TARGET_DIR", workspace_root().join("target/scaffold"))
        .output()
        .expect("run build.sh");
    ok(built, "build.sh");
    let wasm = project.join(format!("dist/{name}.wasm"));
    let checked = ok(
        run_cli(
            &dir.to_path_buf(),
            &["plugins", "check", wasm.to_str().unwrap()],
            None,
        ),
        "plugins check",
    );
    assert!(checked.contains(&format!("kind:         {kind}")), "{checked}");
    wasm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connector_and_rules_projects_build_and_run_in_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let connector = scaffold(tmp.path(), "acme-app", "connector");
    let rules = scaffold(tmp.path(), "acme-rules", "rules");

    let h = Harness::new().unwrap();
    h.runtime().register_file(&connector).unwrap();
    h.runtime().register_file(&rules).unwrap();
    h.tenant(
        "t",
        "[plugins.acme-app.grants]\nkv = true\n[plugins.acme-rules]\n",
    )
    .unwrap();

    // The rules give each destination one account, grouped by department.
    let person = person_from_json(json!({
        "ids": [{"source": "hr", "id": "1001"}], "given_name": "Ada", "family_name": "Lovelace",
        "department": "Engineering"
    }))
    .unwrap();
    let evaluation = h
        .plugin("t", "acme-rules")
        .unwrap()
        .evaluate(
            &person,
            &context_from_json(json!({ "destinations": ["acme-app"] })).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(evaluation.accounts.len(), 1);
    let account: DesiredAccount = evaluation.accounts[0].clone();
    assert_eq!(account.groups, ["Engineering"]);
    assert!(account.attributes.contains(&Attribute {
        name: "displayName".into(),
        value: Value::Text("Ada Lovelace".into())
    }));

    // The connector takes that account and finds it again by its matching key.
    let app = h.plugin("t", "acme-app").unwrap();
    let created = app.apply(&Operation::Create(account)).await.unwrap();
    assert_eq!(created.anchor.as_deref(), Some("1001"));
    let found = app
        .lookup(&[MatchKey {
            attribute: "employeeId".into(),
            value: "1001".into(),
        }])
        .await
        .unwrap();
    assert_eq!(
        (found.len(), found[0].groups.clone()),
        (1, vec!["Engineering".to_string()])
    );

    // A name that is no plugin name is refused before anything is written.
    let refused = run_cli(
        &tmp.path().to_path_buf(),
        &["plugins", "new", "Bad_Name", "--kind", "rules"],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("lowercase"));
    assert!(!tmp.path().join("Bad_Name").exists());
}
