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
    ok_call_in(h, "acme").await
}

async fn ok_call_in(h: &Harness, tenant: &str) {
    let e = h
        .runtime()
        .plugin(tenant, "chaos")
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
    // A deadline long enough that the loop is still spinning while the ordinary
    // calls (each starting an instance of its own, on a loaded CI machine) run.
    let h = Harness::new().unwrap();
    h.load("chaos").unwrap();
    h.tenant("steady", "[plugins.chaos]\ndeadline_ms = 5000\nmemory_mib = 32\n")
        .unwrap();
    let looping = {
        let handle = h.runtime().plugin("steady", "chaos").unwrap();
        tokio::spawn(async move {
            handle
                .evaluate(&chaos("loop"), &context_from_json(json!({})).unwrap())
                .await
        })
    };
    // While one instance spins, others on the same runtime still answer.
    for _ in 0..20 {
        ok_call_in(&h, "steady").await;
    }
    assert!(matches!(looping.await.unwrap(), Err(CallError::Timeout { .. })));
}

#[tokio::test]
async fn a_plugin_that_floods_the_log_is_cut_off_per_call() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = setup();
    let handle = h.runtime().plugin("acme", "chaos").unwrap();
    let person =
        person_from_json(json!({ "custom": [["mode", {"Text": "log-flood"}], ["lines", {"Text": "5000"}]] }))
            .unwrap();
    let e = handle
        .evaluate(&person, &context_from_json(json!({})).unwrap())
        .await
        .unwrap();
    assert_eq!(attr(&e, "logged"), "5000", "the plugin kept running");
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let flood = text.lines().filter(|l| l.contains("flood line")).count();
    assert_eq!(flood, 999, "a call keeps {} log lines", flood);
    assert!(text.contains("dropping the rest of this call's logs"));
    assert!(text.lines().any(|l| l.contains("flood line 0")
        && l.contains("tenant=\"acme\"")
        && l.contains("plugin=\"chaos\"")));
    // The next call has its own budget.
    let small =
        person_from_json(json!({ "custom": [["mode", {"Text": "log-flood"}], ["lines", {"Text": "3"}]] }))
            .unwrap();
    handle
        .evaluate(&small, &context_from_json(json!({})).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("flood line")).count(), 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_instance_limit_wait_for_a_slot() {
    use std::sync::Arc;
    use tenure_capabilities::{MemoryKv, SystemClock};
    use tenure_runtime::RuntimeOptions;
    let options = RuntimeOptions {
        max_instances: 2,
        max_idle_instances: 1,
        ..RuntimeOptions::default()
    };
    let h = Arc::new(Harness::with(options, Arc::new(MemoryKv::default()), Arc::new(SystemClock)).unwrap());
    h.load("swap-a").unwrap();
    h.tenant("acme", "").unwrap();
    let mut calls = Vec::new();
    for i in 0..16 {
        let h = h.clone();
        calls.push(tokio::spawn(async move {
            let p = person_from_json(json!({ "given_name": format!("p{i}") })).unwrap();
            h.runtime()
                .plugin("acme", "swap")
                .unwrap()
                .evaluate(&p, &context_from_json(json!({})).unwrap())
                .await
        }));
    }
    for c in calls {
        assert!(c.await.unwrap().is_ok(), "every call gets a slot in turn");
    }
}

// Multi-threaded like the host: on a current-thread runtime a spinning guest
// delays tokio's timer driver, and the waiting call's deadline would fire late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_never_gets_a_slot_is_busy_not_lost() {
    use std::sync::Arc;
    use tenure_capabilities::{MemoryKv, SystemClock};
    use tenure_runtime::RuntimeOptions;
    let options = RuntimeOptions {
        max_instances: 1,
        ..RuntimeOptions::default()
    };
    let h = Arc::new(Harness::with(options, Arc::new(MemoryKv::default()), Arc::new(SystemClock)).unwrap());
    h.load("chaos").unwrap();
    h.tenant("acme", "[plugins.chaos]\ndeadline_ms = 600\n").unwrap();
    // A second tenant whose calls give up sooner than the loop holds the only slot.
    h.tenant("quick", "[plugins.chaos]\ndeadline_ms = 100\n").unwrap();
    let looping = {
        let h = h.clone();
        tokio::spawn(async move {
            let handle = h.runtime().plugin("acme", "chaos").unwrap();
            handle
                .evaluate(&chaos("loop"), &context_from_json(json!({})).unwrap())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = h
        .runtime()
        .plugin("quick", "chaos")
        .unwrap()
        .evaluate(&chaos("ok"), &context_from_json(json!({})).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Busy { waited_ms, .. } if waited_ms >= 100),
        "{err}"
    );
    assert!(matches!(looping.await.unwrap(), Err(CallError::Timeout { .. })));
    ok_call_on(&h).await;
}

async fn ok_call_on(h: &Harness) {
    let e = h
        .runtime()
        .plugin("acme", "chaos")
        .unwrap()
        .evaluate(&chaos("ok"), &context_from_json(json!({})).unwrap())
        .await;
    assert_eq!(attr(&e.expect("the slot is free again"), "mode"), "ok");
}

/// The SDK's allocator: a call's small allocations come from the per-call arena,
/// which empties when they are freed and is reused by the next call, and a
/// fresh instance's heap starts inside its initial memory (no `memory.grow`).
#[tokio::test]
async fn a_calls_allocations_come_from_an_arena_that_the_next_call_reuses() {
    let h = setup();
    let handle = h.runtime().plugin("acme", "chaos").unwrap();
    let ctx = context_from_json(json!({})).unwrap();
    let number = |e: &Evaluation, name: &str| -> u64 {
        attr(e, name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is a number"))
    };
    let first = handle.evaluate(&chaos("heap"), &ctx).await.unwrap();
    assert_eq!(
        number(&first, "pages-after"),
        number(&first, "pages-before"),
        "a small call grows no memory"
    );
    assert!(number(&first, "served") >= 4000, "{first:?}");
    assert!(
        number(&first, "resets") >= 1,
        "the arena emptied once the strings were dropped"
    );
    assert_eq!(number(&first, "overflowed"), 0);

    let second = handle.evaluate(&chaos("heap"), &ctx).await.unwrap();
    assert!(
        number(&second, "served") > number(&first, "served"),
        "the same warm instance"
    );
    assert_eq!(
        number(&second, "chunks"),
        number(&first, "chunks"),
        "the emptied chunk is reused, not a new one taken"
    );
    assert_eq!(number(&second, "pages-after"), number(&first, "pages-after"));
}

/// Fair slots (issue 18): draft rule sets (tests, impact previews) get a bounded share of
/// the instance slots, runtime-wide and per tenant, so a flood of them leaves provisioning
/// its slots and one tenant's drafts leave another tenant's drafts theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_never_take_the_slots_provisioning_or_another_tenant_needs() {
    use std::sync::Arc;
    use tenure_capabilities::{MemoryKv, SystemClock};
    use tenure_runtime::RuntimeOptions;
    let options = RuntimeOptions {
        max_instances: 3,
        draft_instances: 2,
        draft_instances_per_tenant: 1,
        ..RuntimeOptions::default()
    };
    let h = Arc::new(Harness::with(options, Arc::new(MemoryKv::default()), Arc::new(SystemClock)).unwrap());
    h.load("chaos").unwrap();
    h.tenant("acme", "[plugins.chaos]\ndeadline_ms = 800\n").unwrap();
    h.tenant("beta", "[plugins.chaos]\ndeadline_ms = 150\n").unwrap();
    // Three looping drafts of acme: one holds acme's draft share, two wait for it.
    let mut drafts = Vec::new();
    for _ in 0..3 {
        let h = h.clone();
        drafts.push(tokio::spawn(async move {
            let handle = h
                .runtime()
                .plugin_with_rule_set("acme", "chaos", "draft")
                .unwrap();
            handle
                .evaluate(&chaos("loop"), &context_from_json(json!({})).unwrap())
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ok = |tenant: &'static str, draft: bool| {
        let h = h.clone();
        async move {
            let runtime = h.runtime();
            let handle = if draft {
                runtime.plugin_with_rule_set(tenant, "chaos", "draft").unwrap()
            } else {
                runtime.plugin(tenant, "chaos").unwrap()
            };
            handle
                .evaluate(&chaos("ok"), &context_from_json(json!({})).unwrap())
                .await
        }
    };
    // Provisioning for beta (a 150 ms deadline) gets a slot at once, and so does beta's draft.
    assert!(ok("beta", false).await.is_ok(), "provisioning keeps its slots");
    assert!(
        ok("beta", true).await.is_ok(),
        "another tenant's draft keeps its share"
    );
    for d in drafts {
        let _ = d.await.unwrap();
    }
}
