//! Two calls that read and write the same key-value entry at once cannot both succeed: the
//! sandbox connector numbers accounts from a counter in its store when the first matching
//! attribute is missing, and creates running side by side used to take the same number, the later
//! one overwriting the other's account. Now the later one is refused as transient (nothing it
//! wrote is kept) and its retry takes the next number.

use std::collections::BTreeSet;
use tenure_plugin_test::Harness;
use tenure_runtime::CallError;
use tenure_runtime::wit::{Attribute, DesiredAccount, MatchKey, Operation, PluginError, Value};

fn account(name: &str) -> DesiredAccount {
    DesiredAccount {
        destination: "sandbox".into(),
        // No employeeId (the first matching attribute): the anchor comes from the counter.
        attributes: vec![Attribute {
            name: "mail".into(),
            value: Value::Text(format!("{name}@example.test")),
        }],
        container: None,
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled: true,
        expires_at: None,
        tickets: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_overwrite_each_other() {
    let h = Harness::new().unwrap();
    h.load("sandbox").unwrap();
    h.tenant("t", "[plugins.sandbox.grants]\nkv = true\n").unwrap();
    let names: Vec<String> = (0..24).map(|i| format!("p{i}")).collect();
    let mut pending: Vec<String> = names.clone();
    let mut refused = 0;
    for _round in 0..50 {
        let mut calls = tokio::task::JoinSet::new();
        for name in pending.drain(..) {
            let handle = h.plugin("t", "sandbox").unwrap();
            let op = Operation::Create(account(&name));
            calls.spawn(async move { (name, handle.apply(&op).await) });
        }
        while let Some(joined) = calls.join_next().await {
            let (name, result) = joined.unwrap();
            match result {
                Ok(_) => {}
                Err(CallError::Plugin {
                    error: PluginError::Transient(reason),
                    ..
                }) => {
                    assert!(
                        reason.contains("changed by another call")
                            || reason.contains("by another call meanwhile"),
                        "{reason}"
                    );
                    refused += 1;
                    pending.push(name);
                }
                Err(other) => panic!("{name}: {other}"),
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "still failing: {pending:?}");
    // Every person has their own account, found by their own mail.
    let sandbox = h.plugin("t", "sandbox").unwrap();
    let mut anchors = BTreeSet::new();
    for name in &names {
        let found = sandbox
            .lookup(&[MatchKey {
                attribute: "mail".into(),
                value: format!("{name}@example.test"),
            }])
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        anchors.insert(found[0].anchor.clone());
    }
    assert_eq!(
        anchors.len(),
        names.len(),
        "{refused} calls were refused and retried"
    );
}
