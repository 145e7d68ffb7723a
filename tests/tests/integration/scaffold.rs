//! `tenure plugins new` as a newcomer meets it: connector and rules projects in Rust, Python and
//! JavaScript created, built to components with the project's own build script, accepted by
//! `tenure plugins check`, their generated fixtures passed by `tenure plugins test`, and run in
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
    scaffold_in(dir, name, kind, "rust")
}

/// Creates a project in `lang`, builds it with its own build script, checks it and runs its
/// generated fixture in the host; the built component's path.
fn scaffold_in(dir: &Path, name: &str, kind: &str, lang: &str) -> std::path::PathBuf {
    let created = ok(
        run_cli(
            &dir.to_path_buf(),
            &["plugins", "new", name, "--kind", kind, "--lang", lang],
            None,
        ),
        "plugins new",
    );
    assert!(created.contains(&format!("created ./{name}")), "{created}");
    let project = dir.join(name);
    let mut build = Command::new(project.join("build.sh"));
    let root = workspace_root();
    match lang {
        // Resolve the SDK's dependencies as Tenure's own plugins do (the versions are in the cache).
        "rust" => {
            std::fs::copy(root.join("plugins/Cargo.lock"), project.join("Cargo.lock")).unwrap();
            build.env("CARGO_TARGET_DIR", root.join("target/scaffold"));
        }
        // The pinned tools plugins/build.sh installed (a project installs its own otherwise).
        "python" => {
            build.env(
                "COMPONENTIZE_PY",
                root.join("target/tools/venv/bin/componentize-py"),
            );
        }
        _ => {
            build.env("JS_TOOLS", root.join("plugins/js/node_modules/.bin"));
        }
    }
    ok(build.output().expect("run build.sh"), "build.sh");
    let wasm = project.join(format!("dist/{name}.wasm"));
    // Compiled once: `check` keeps the component in the cache `test` then reads.
    let cache = root.join("target/component-cache");
    let cache = cache.to_str().unwrap();
    let checked = ok(
        run_cli(
            &dir.to_path_buf(),
            &["plugins", "check", wasm.to_str().unwrap(), "--cache-dir", cache],
            None,
        ),
        "plugins check",
    );
    assert!(checked.contains(&format!("kind:         {kind}")), "{checked}");
    // The generated fixtures pass in the real host.
    let tested = ok(
        run_cli(
            &dir.to_path_buf(),
            &["plugins", "test", project.to_str().unwrap(), "--cache-dir", cache],
            None,
        ),
        "plugins test",
    );
    assert!(tested.contains("1 passed, 0 failed"), "{tested}");
    wasm
}

/// Every kind in `lang`: created, built by its own `build.sh`, checked, its fixture passed.
fn every_kind_in(lang: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["connector", "rules", "source"] {
        let name = format!("acme-{lang}-{kind}");
        let wasm = scaffold_in(tmp.path(), &name, kind, lang);
        assert!(wasm.exists(), "{}", wasm.display());
    }
    tmp
}

#[test]
fn python_projects_of_every_kind_build_and_pass_their_fixtures() {
    every_kind_in("python");
}

#[test]
fn javascript_projects_of_every_kind_build_and_pass_their_fixtures() {
    let tmp = every_kind_in("js");
    // The JavaScript project's README names the file a newcomer edits.
    let readme = std::fs::read_to_string(tmp.path().join("acme-js-rules/README.md")).unwrap();
    assert!(readme.contains("Change `rules.js`"), "{readme}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connector_and_rules_projects_build_and_run_in_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let connector = scaffold(tmp.path(), "acme-app", "connector");
    let rules = scaffold(tmp.path(), "acme-rules", "rules");
    scaffold(tmp.path(), "acme-hr", "source");

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

/// docs/first-connector.md, followed as written: a new project, the page's manifest, code and
/// fixture (each shown on the page exactly as in docs/tutorial/people-api), then `build.sh`,
/// `plugins check` and `plugins test`.
#[test]
fn the_first_connector_tutorial_builds_and_passes_its_fixture() {
    let root = workspace_root();
    let page = std::fs::read_to_string(root.join("docs/first-connector.md")).unwrap();
    let tutorial = root.join("docs/tutorial/people-api");
    let shown = ["plugin.toml", "src/lib.rs", "fixtures/joiner-mover-leaver.json"];
    for file in shown {
        let text = std::fs::read_to_string(tutorial.join(file)).unwrap();
        assert!(page.contains(&text), "the page does not show {file} as it is");
    }
    let tmp = tempfile::tempdir().unwrap();
    ok(
        run_cli(
            &tmp.path().to_path_buf(),
            &["plugins", "new", "people-api", "--kind", "connector"],
            None,
        ),
        "plugins new",
    );
    let project = tmp.path().join("people-api");
    std::fs::remove_file(project.join("fixtures/lifecycle.json")).unwrap();
    for file in shown {
        std::fs::copy(tutorial.join(file), project.join(file)).unwrap();
    }
    let cargo = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains("serde_json = "),
        "the project has the JSON crates: {cargo}"
    );
    std::fs::copy(root.join("plugins/Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let built = Command::new(project.join("build.sh"))
        .env("CARGO_TARGET_DIR", root.join("target/scaffold"))
        .output()
        .expect("run build.sh");
    ok(built, "build.sh");
    let cache = root.join("target/component-cache");
    let cache = cache.to_str().unwrap();
    let wasm = project.join("dist/people-api.wasm");
    let checked = ok(
        run_cli(
            &project,
            &["plugins", "check", wasm.to_str().unwrap(), "--cache-dir", cache],
            None,
        ),
        "plugins check",
    );
    assert!(checked.contains("http:         [\"people-api\"]"), "{checked}");
    let tested = ok(
        run_cli(&project, &["plugins", "test", ".", "--cache-dir", cache], None),
        "plugins test",
    );
    assert!(
        tested.contains("ok   a joiner gets an account and a group") && tested.contains("1 passed, 0 failed"),
        "{tested}"
    );
}
