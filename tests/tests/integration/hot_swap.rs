//! Hot swap: a new version registered while calls run; calls in flight finish
//! on their version, new calls use the new one, none is lost, and each call
//! sees exactly one version. Rollback restores the old one.

use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tenure_plugin_test::{Harness, context_from_json, person_from_json, plugin_dir};
use tenure_runtime::wit::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_and_rollback_under_concurrent_calls() {
    let h = Arc::new(Harness::new().unwrap());
    let a = h.load("swap-a").unwrap();
    h.tenant("acme", "[plugins.swap]\n").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..6 {
        let (h, stop) = (h.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let person = person_from_json(json!({ "given_name": format!("w{w}") })).unwrap();
            let ctx = context_from_json(json!({})).unwrap();
            let mut seen: Vec<String> = Vec::new();
            let mut calls = 0usize;
            while !stop.load(Ordering::Relaxed) || calls < 20 {
                let handle = h.runtime().plugin("acme", "swap").unwrap();
                let e = handle.evaluate(&person, &ctx).await.expect("no call is lost");
                let acct = &e.accounts[0];
                let version_attr = match &acct.attributes[0].value {
                    Value::Text(v) => v.clone(),
                    other => panic!("unexpected {other:?}"),
                };
                // One call, one version: attribute, group, trace and the handle's label agree.
                assert_eq!(acct.groups, vec![format!("v{version_attr}")]);
                assert_eq!(e.trace[0].contributed, vec![version_attr.clone()]);
                let label_letter = if handle.version().starts_with("0.1.0-a+") {
                    "A"
                } else {
                    "B"
                };
                assert_eq!(
                    label_letter,
                    version_attr,
                    "handle {} ran {}",
                    handle.version(),
                    version_attr
                );
                assert_eq!(acct.attributes[1].value, Value::Text(format!("w{w}")));
                seen.push(version_attr);
                calls += 1;
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    let letter = |h: &Harness| h.runtime().current("swap").unwrap().label.clone();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let b = h.load("swap-b").unwrap();
    assert_eq!(letter(&h), b.label);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let back = h.runtime().rollback("swap", None).unwrap();
    assert_eq!(back.label, a.label, "rollback restores the previous version");
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for w in workers {
        let seen = w.await.expect("worker finished");
        assert!(seen.len() >= 20);
        for v in seen {
            *totals.entry(v).or_default() += 1;
        }
    }
    assert!(
        totals.get("A").copied().unwrap_or(0) > 0 && totals.get("B").copied().unwrap_or(0) > 0,
        "{totals:?}"
    );
    // After the rollback, new calls run A again.
    let handle = h.runtime().plugin("acme", "swap").unwrap();
    let e = handle
        .evaluate(
            &person_from_json(json!({})).unwrap(),
            &context_from_json(json!({})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(e.accounts[0].attributes[0].value, Value::Text("A".into()));
    // Rolling back to a named version works too; an unknown one is refused.
    assert_eq!(
        h.runtime().rollback("swap", Some(&b.label)).unwrap().label,
        b.label
    );
    assert!(h.runtime().rollback("swap", Some("9.9.9")).is_err());
    assert_eq!(h.runtime().versions("swap").unwrap().len(), 2);
    assert!(plugin_dir().join("swap-a.wasm").exists());
}

#[tokio::test]
async fn a_handle_taken_before_a_swap_keeps_its_version() {
    let h = Harness::new().unwrap();
    h.load("swap-a").unwrap();
    h.tenant("acme", "").unwrap();
    let before = h.runtime().plugin("acme", "swap").unwrap();
    h.load("swap-b").unwrap();
    let after = h.runtime().plugin("acme", "swap").unwrap();
    let ctx = context_from_json(json!({})).unwrap();
    let p = person_from_json(json!({})).unwrap();
    assert_eq!(
        before.evaluate(&p, &ctx).await.unwrap().accounts[0].groups,
        vec!["vA"]
    );
    assert_eq!(
        after.evaluate(&p, &ctx).await.unwrap().accounts[0].groups,
        vec!["vB"]
    );
}

/// Versions per tenant: a version added beside the default runs nowhere until a tenant activates
/// it, then for that tenant alone; a new default leaves the tenant's choice alone; a candidate
/// handle runs a version no tenant runs.
#[tokio::test]
async fn each_tenant_runs_the_version_it_activated() {
    let h = Harness::new().unwrap();
    let a = h.load("swap-a").unwrap();
    h.tenant("acme", "").unwrap();
    h.tenant("other", "").unwrap();
    let path = plugin_dir().join("swap-b.wasm");
    let manifest = tenure_runtime::PluginManifest::for_component(&path).unwrap();
    let b = h
        .runtime()
        .add_version(manifest.clone(), &std::fs::read(&path).unwrap())
        .unwrap();
    let ctx = context_from_json(json!({})).unwrap();
    let p = person_from_json(json!({})).unwrap();
    let group = |tenant: &'static str| {
        let handle = h.runtime().plugin(tenant, "swap").unwrap();
        let (ctx, p) = (ctx.clone(), p.clone());
        async move { handle.evaluate(&p, &ctx).await.unwrap().accounts[0].groups[0].clone() }
    };
    assert_eq!(
        (group("acme").await, group("other").await),
        ("vA".into(), "vA".into())
    );
    let candidate = h.runtime().candidate("acme", "swap", &b.label).unwrap();
    assert_eq!(
        candidate.evaluate(&p, &ctx).await.unwrap().accounts[0].groups,
        ["vB"]
    );
    assert_eq!(group("acme").await, "vA", "a candidate runs nowhere");

    let previous = h.runtime().activate("acme", "swap", &b.label).unwrap();
    assert_eq!(previous.label, a.label);
    assert_eq!(
        (group("acme").await, group("other").await),
        ("vB".into(), "vA".into())
    );
    // The same bytes again are the same version; another kind under the name is refused.
    let again = h
        .runtime()
        .add_version(manifest.clone(), &std::fs::read(&path).unwrap())
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&again, &b));
    let mut connector = manifest;
    connector.kind = tenure_runtime::PluginKind::Connector;
    let err = h
        .runtime()
        .add_version(
            connector,
            &std::fs::read(plugin_dir().join("sandbox.wasm")).unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("kind"), "{err}");
    // Moving the default (a rollback to A's neighbour, here B as the default) leaves acme's choice.
    h.runtime().rollback("swap", Some(&b.label)).unwrap();
    h.runtime().activate("acme", "swap", &a.label).unwrap();
    assert_eq!(
        (group("acme").await, group("other").await),
        ("vA".into(), "vB".into())
    );
    assert!(h.runtime().activate("acme", "swap", "9.9.9+none").is_err());
}

/// A tenant's private upload of a plugin nobody offers yet never becomes what other tenants run:
/// they have no version of it until one is offered to all, and then the uploader keeps its own.
#[tokio::test]
async fn a_private_first_version_runs_for_its_uploader_alone() {
    let h = Harness::new().unwrap();
    h.tenant("acme", "").unwrap();
    h.tenant("other", "").unwrap();
    let manifest_of = |file: &str| {
        let path = plugin_dir().join(format!("{file}.wasm"));
        let mut manifest = tenure_runtime::PluginManifest::for_component(&path).unwrap();
        manifest.name = "acme-rules".into();
        (manifest, std::fs::read(&path).unwrap())
    };
    let (manifest, bytes) = manifest_of("swap-b");
    let private = h.runtime().add_private_version(manifest, &bytes, "acme").unwrap();
    assert_eq!(
        h.runtime().active("acme", "acme-rules").unwrap().label,
        private.label
    );
    let refused = h.runtime().plugin("other", "acme-rules").unwrap_err();
    assert!(
        matches!(refused, tenure_runtime::RuntimeError::UnknownPlugin(_)),
        "{refused}"
    );
    assert!(h.runtime().active("other", "acme-rules").is_err());

    // A version offered to everyone: the other tenant runs it, the uploader keeps its own.
    let (manifest, bytes) = manifest_of("swap-a");
    let shared = h.runtime().add_version(manifest, &bytes).unwrap();
    assert_eq!(
        h.runtime().active("other", "acme-rules").unwrap().label,
        shared.label
    );
    assert_eq!(
        h.runtime().active("acme", "acme-rules").unwrap().label,
        private.label
    );
}
