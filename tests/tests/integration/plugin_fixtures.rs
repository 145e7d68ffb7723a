//! `tenure plugins test DIR` against real first-party connectors: the SCIM plugin's own
//! fixture (recorded SCIM exchanges) and the directory plugin's (recorded LDAP requests and
//! results, through the host's LDAP capability) pass, with steps through lookup, plan and
//! apply; a fixture that expects the wrong plan, leaves a recording unrequested or records
//! the wrong request fails, naming each difference, and never shows a generated password.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
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

/// A copy of a plugin project holding one fixture, changed from one of the project's own.
struct Variants {
    dir: tempfile::TempDir,
    wasm: PathBuf,
    good: Value,
}

impl Variants {
    fn of(project: &Path, fixture: &str, wasm: PathBuf) -> Variants {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(project.join("plugin.toml"), dir.path().join("plugin.toml")).unwrap();
        std::fs::create_dir(dir.path().join("fixtures")).unwrap();
        let good = std::fs::read_to_string(project.join("fixtures").join(fixture)).unwrap();
        Variants {
            dir,
            wasm,
            good: serde_json::from_str(&good).unwrap(),
        }
    }

    /// Runs `tenure plugins test` on the fixture as `change` leaves it.
    fn test(&self, change: impl FnOnce(&mut Value)) -> (bool, String) {
        let mut fixture = self.good.clone();
        change(&mut fixture);
        let file = self.dir.path().join("fixtures/wrong.json");
        std::fs::write(file, serde_json::to_string(&fixture).unwrap()).unwrap();
        test_dir(self.dir.path(), &self.wasm)
    }
}

#[test]
fn the_scim_connectors_fixtures_pass_and_a_wrong_fixture_names_what_differs() {
    let wasm = plugin_dir().join("scim.wasm");
    let project = workspace_root().join("plugins/scim");
    let (passed, text) = test_dir(&project, &wasm);
    assert!(passed, "{text}");
    assert!(text.contains("1 passed, 0 failed"), "{text}");

    // The same fixture, wrong in three ways.
    let variants = Variants::of(&project, "create-then-disable.json", wasm);
    let (passed, text) = variants.test(|fixture| {
        fixture["steps"][1]["expect"]["operations"] = json!(["delete"]);
        let http = fixture["http"].as_array_mut().unwrap();
        let post = http.iter_mut().find(|e| e["method"] == "POST").unwrap();
        post["body"]["userName"] = json!("someone-else@acme.test");
        http.push(json!({ "method": "GET", "path": "/Users/never" }));
    });
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
    let (passed, text) = variants.test(|fixture| {
        fixture["steps"][1]["expect"]["operations"] = json!(["delete"]);
    });
    assert!(!passed, "{text}");
    assert!(
        text.contains(r#"steps[1]: planned ["disable"], expected ["delete"]"#),
        "{text}"
    );
}

#[test]
fn the_directory_connectors_ldap_fixtures_pass_and_a_wrong_one_names_what_differs() {
    let wasm = plugin_dir().join("directory.wasm");
    let project = workspace_root().join("plugins/directory");
    let (passed, text) = test_dir(&project, &wasm);
    assert!(passed, "{text}");
    assert!(text.contains("2 passed, 0 failed"), "{text}");

    let variants = Variants::of(&project, "ad-create-then-disable.json", wasm);
    let wrong = |change: &dyn Fn(&mut Vec<Value>)| {
        variants.test(|fixture| change(fixture["ldap"].as_array_mut().unwrap()))
    };

    // The add recorded with another account name, and a delete the plugin never asks for.
    let (passed, text) = wrong(&|ldap| {
        let add = ldap.iter_mut().find(|e| e["op"] == "add").unwrap();
        add["attributes"]["sAMAccountName"] = json!(["ada2"]);
        ldap.push(json!({ "op": "delete", "dn": "CN=Nobody,DC=acme,DC=test" }));
    });
    assert!(!passed, "{text}");
    assert!(text.contains("0 passed, 1 failed"), "{text}");
    assert!(
        text.contains(r#"unexpected LDAP add of "CN=Ada Lovelace,OU=Staff,DC=acme,DC=test""#)
            && text.contains("attribute sAMAccountName: values differ"),
        "{text}"
    );
    assert!(
        text.contains(r#"recorded LDAP delete of "CN=Nobody,DC=acme,DC=test" was never requested"#),
        "{text}"
    );

    // The password recorded as a value of its own: the generated one differs, and is not shown.
    let (passed, text) = wrong(&|ldap| {
        let set_password = ldap
            .iter_mut()
            .find(|e| e["changes"][0]["attribute"] == "unicodePwd")
            .unwrap();
        set_password["changes"][0]["values"] = json!(["not-the-password"]);
    });
    assert!(!passed, "{text}");
    assert!(text.contains("replace unicodePwd=[1 secret value(s)]"), "{text}");
    assert!(
        !text.contains("\\0"),
        "no UTF-16 password bytes in the output: {text}"
    );

    // A result code the plugin cannot take as success fails the step with it.
    let (passed, text) = wrong(&|ldap| {
        let add = ldap.iter_mut().find(|e| e["op"] == "add").unwrap();
        add["result"] = json!({ "code": 50, "message": "insufficient access rights" });
    });
    assert!(!passed, "{text}");
    assert!(text.contains("insufficient access rights"), "{text}");
}
