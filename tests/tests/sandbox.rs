//! A plugin that loops, allocates without bound or panics is stopped, reported
//! as a typed error, and the host (and the next call) carries on.

use serde_json::json;
use std::time::{Duration, Instant};
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_runtime::CallError;
use tenure_runtime::wit::{Value, rules::Evaluation};

fn chaos(mode: &str) -> tenure_runtime::wit::Person {
    person_from_json(json!({ "custom": [["mode", {"Text": mode}]] })).unwrap()
}

fn setup() -> Harness {
    let h = Harness::new().unwrap();
    h.load("chaos").unwrap();
    h.tenant("acme", "[plugins.chaos]\ndeadline_ms = 300\nmemory_mib = 32\n")
        .unwrap();
    h
}

fn attr(e: &Evaluation, name: &str) -> String {
    e.accounts[0]
        .attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| match &a.value {
            Value::Text(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .unwrap_or_default()
}

async fn ok_call(h: &Harness) {
    let e = h
        .runtime()
        .plugin("acme", "chaos")
        .unwrap()
        .evaluate(&chaos("ok"), &context_from_json(json!({})).unwrap())
        .await;
    assert_eq!(attr(&e.expect("the next call works"), "mode"), "ok");
}

#[tokio::test]
async fn endless_loop_is_stopped_at_its_deadline() {
    let h = setup();
    let handle = h.runtime().plugin("acme", "chaos").unwrap();
    let started = Instant::now();
    let err = handle
        .evaluate(&chaos("loop"), &context_from_json(json!({})).unwrap())
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, CallError::Timeout { deadline_ms: 300, .. }),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(300),
        "stopped before its deadline: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "not stopped near its deadline: {took:?}"
    );
    assert!(
        err.to_string().contains("chaos@0.1.0+"),
        "names the plugin version: {err}"
    );
    ok_call(&h).await;
}

#[tokio::test]
async fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let h = setup();
    let handle = h.runtime().plugin("acme", "chaos").unwrap();
    let err = handle
        .evaluate(&chaos("alloc"), &context_from_json(json!({})).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::OutOfMemory { limit_mib: 32, .. }),
        "{err}"
    );
    ok_call(&h).await;
}

#[tokio::test]
async fn panic_is_reported_with_its_message_and_the_next_call_works() {
    let h = setup();
    let handle = h.runtime().plugin("acme", "chaos").unwrap();
    let err = handle
        .evaluate(&chaos("panic"), &context_from_json(json!({})).unwrap())
        .await
        .unwrap_err();
    match &err {
        CallError::Trap { message, .. } => assert!(message.contains("chaos was asked to panic"), "{message}"),
        other => panic!("expected a trap, got {other}"),
    }
    ok_call(&h).await;
}

#[tokio::test]
async fn typed_plugin_errors_pass_through_and_keep_the_instance() {
    let h = setup();
    let handle = h.runtime().plugin("acme", "chaos").unwrap();
    let err = handle
        .evaluate(&chaos("error"), &context_from_json(json!({})).unwrap())
        .await
        .unwrap_err();
    match err {
        CallError::Plugin {
            error: tenure_runtime::wit::PluginError::InvalidInput(i),
            ..
        } => {
            assert_eq!(
                (i.field.as_str(), i.reason.as_str()),
                ("department", "must not be empty")
            );
        }
        other => panic!("expected invalid-input, got {other}"),
    }
    ok_call(&h).await;
}

#[tokio::test]
async fn a_misbehaving_plugin_does_not_disturb_other_calls() {
    let h = setup();
    let looping = {
        let handle = h.runtime().plugin("acme", "chaos").unwrap();
        tokio::spawn(async move {
            handle
                .evaluate(&chaos("loop"), &context_from_json(json!({})).unwrap())
                .await
        })
    };
    // While one instance spins, others on the same runtime still answer.
    for _ in 0..20 {
        ok_call(&h).await;
    }
    assert!(matches!(looping.await.unwrap(), Err(CallError::Timeout { .. })));
}
