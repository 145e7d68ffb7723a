//! `tenure plugins test DIR` against a real first-party connector: the SCIM plugin's own
//! fixture (recorded SCIM exchanges, steps through lookup, plan and apply) passes, and a
//! fixture that expects the wrong plan, leaves a recording unrequested or records the wrong
//! request body fails, naming each difference.

use serde_json::{Value, json};
use std::path::Path;
use tenure_plugin_test::{plugin_dir, workspace_root};
use tenure_tests::serve::run_cli;

fn test_dir(dir: &Path, wasm: &Path) -> (bool, String) {
    let out = run_cli(
        &workspace_root(),
        &[
            "plugins",
            "test",
            dir.to_str().unwrap(),
            "--wasm",
            wasm.to_str().unwrap(),
        ],
        None,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_scim_connectors_fixtures_pass_and_a_wrong_fixture_names_what_differs() {
    let wasm = plugin_dir().join("scim.wasm");
    let project = workspace_root().join("plugins/scim");
    let (passed, text) = test_dir(&project, &wasm);
    assert!(passed, "{text}");
    assert!(text.contains("1 passed, 0 failed"), "{text}");

    // The same fixture, wrong in three ways.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(project.join("plugin.toml"), tmp.path().join("plugin.toml")).unwrap();
    std::fs::create_dir(tmp.path().join("fixtures")).unwrap();
    let good = std::fs::read_to_string(project.join("fixtures/create-then-disable.json")).unwrap();
    let mut fixture: Value = serde_json::from_str(&good).unwrap();
    fixture["steps"][1]["expect"]["operations"] = json!(["delete"]);
    let http = fixture["http"].as_array_mut().unwrap();
    let post = http.iter_mut().find(|e| e["method"] == "POST").unwrap();
    post["body"]["userName"] = json!("someone-else@acme.test");
    http.push(json!({ "method": "GET", "path": "/Users/never" }));
    std::fs::write(
        tmp.path().join("fixtures/wrong.json"),
        serde_json::to_string(&fixture).unwrap(),
    )
    .unwrap();
    let (passed, text) = test_dir(tmp.path(), &wasm);
    assert!(!passed, "{text}");
    assert!(text.contains("0 passed, 1 failed"), "{text}");
    assert!(text.contains("FAIL creates a user"), "{text}");
    assert!(
        text.contains(r#"unexpected request POST /Users on scim: body.userName is "ada@acme.test""#),
        "{text}"
    );
    assert!(
        text.contains("recorded GET /Users/never on the connection was never requested"),
        "{text}"
    );

    // A fixture without the POST's wrong body: the plan differs only.
    let mut fixture: Value = serde_json::from_str(&good).unwrap();
    fixture["steps"][1]["expect"]["operations"] = json!(["delete"]);
    std::fs::write(
        tmp.path().join("fixtures/wrong.json"),
        serde_json::to_string(&fixture).unwrap(),
    )
    .unwrap();
    let (passed, text) = test_dir(tmp.path(), &wasm);
    assert!(!passed, "{text}");
    assert!(
        text.contains(r#"steps[1]: planned ["disable"], expected ["delete"]"#),
        "{text}"
    );
}
