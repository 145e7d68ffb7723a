//! Each tenant's share of the plugin host (`plugin_quota`): calls running at once and calls per
//! minute. A tenant over its quota waits or is put off with a reason naming the setting; another
//! tenant's calls go on as before; in the pipeline, jobs put off by the quota retry without
//! spending an attempt and all complete.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_plugin_test::{Harness, context_from_json, person_from_json};
use tenure_runtime::CallError;
use tenure_tests::host::{HostSpec, TestHost, joiner, pipeline_toml, tenant_toml};

fn chaos(mode: &str) -> tenure_runtime::wit::Person {
    person_from_json(json!({ "custom": [["mode", {"Text": mode}]] })).unwrap()
}

async fn call(h: &Harness, tenant: &str, mode: &str) -> Result<(), CallError> {
    h.runtime()
        .plugin(tenant, "chaos")
        .unwrap()
        .evaluate(&chaos(mode), &context_from_json(json!({})).unwrap())
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_quota_waits_or_is_put_off_and_no_other_tenant_notices() {
    let h = Arc::new(Harness::new().unwrap());
    h.load("chaos").unwrap();
    let busy = "[plugin_quota]\nmax_concurrent_calls = 1\n[plugins.chaos]\ndeadline_ms = 3000\n";
    h.tenant("acme", busy).unwrap();
    h.tenant("other", "[plugins.chaos]\ndeadline_ms = 700\n").unwrap();
    h.tenant("metered", "[plugin_quota]\ncalls_per_minute = 2\n")
        .unwrap();

    // acme's one slot is taken by a call that loops until its deadline.
    let looping = {
        let h = h.clone();
        tokio::spawn(async move { call(&h, "acme", "loop").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Another tenant is not held up: its call ends while acme's still holds acme's only slot.
    call(&h, "other", "ok").await.expect("other tenants run");
    assert!(!looping.is_finished(), "other's call waited for acme's");
    // acme's next call, with a shorter deadline (the quota is unchanged, so its state is kept),
    // waits for the slot and is put off when its deadline passes first.
    h.tenant(
        "acme",
        "[plugin_quota]\nmax_concurrent_calls = 1\n[plugins.chaos]\ndeadline_ms = 100\n",
    )
    .unwrap();
    let err = call(&h, "acme", "ok").await.unwrap_err();
    match &err {
        CallError::OverQuota {
            reason,
            retry_after_ms,
            ..
        } => {
            assert!(
                reason.contains("tenants.acme.plugin_quota.max_concurrent_calls"),
                "{reason}"
            );
            assert!(*retry_after_ms > 0);
        }
        other => panic!("expected OverQuota, got {other}"),
    }
    assert!(matches!(looping.await.unwrap(), Err(CallError::Timeout { .. })));
    call(&h, "acme", "ok").await.expect("the slot is free again");

    // Calls per minute: a burst of a tenth of a minute's worth (at least one), then put off.
    call(&h, "metered", "ok").await.expect("the first call");
    let err = call(&h, "metered", "ok").await.unwrap_err();
    match &err {
        CallError::OverQuota {
            reason,
            retry_after_ms,
            ..
        } => {
            assert!(
                reason.contains("tenants.metered.plugin_quota.calls_per_minute"),
                "{reason}"
            );
            assert!(
                *retry_after_ms > 20_000,
                "2 a minute: the next in about 30 s, not {retry_after_ms}"
            );
        }
        other => panic!("expected OverQuota, got {other}"),
    }
    call(&h, "other", "ok")
        .await
        .expect("other tenants are not metered");

    let usage = h.runtime().quota_usage();
    let refused = |tenant: &str| {
        let (_, _, c) = usage.iter().find(|(t, _, _)| t == tenant).unwrap();
        (
            c.rate_refused.load(std::sync::atomic::Ordering::Relaxed),
            c.concurrency_refused.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    assert_eq!(
        (refused("acme"), refused("metered"), refused("other")),
        ((0, 1), (1, 0), (0, 0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_put_off_by_the_quota_retry_without_spending_attempts_and_all_complete() {
    let h = TestHost::start(HostSpec {
        tenant: tenant_toml(
            // Accounts named after the person: creates never race for the sandbox's counter, so
            // the only retries are the quota's.
            "[plugin_quota]\ncalls_per_minute = 240\n[plugins.swap]\n[plugins.sandbox.grants]\nkv = true\n\
             [plugins.sandbox.settings]\nmatch_attributes = \"name\"\n",
        ),
        pipeline: pipeline_toml(
            "rules = \"swap\"\n[[destinations]]\nname = \"swap\"\nconnector = \"sandbox\"\n\
             matching = [\"name\"]\n",
        ),
        queue: QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            max_attempts: 2,
            ..QueueConfig::default()
        },
        plugins: vec!["swap-a", "sandbox"],
    })
    .await;
    let events = 16;
    for i in 0..events {
        let id = format!("q{i}");
        let (status, body) = h.post_event(&joiner(&id, "Sales"), &id).await;
        assert_eq!(status, 202, "{body}");
    }
    h.wait_idle(Duration::from_secs(120)).await;
    let audit = h.audit(None).await;
    let of = |kind: &str| audit.iter().filter(|e| e["kind"] == kind).collect::<Vec<_>>();
    assert_eq!(of("job.completed").len(), events, "every job completed");
    assert!(of("job.dead").is_empty());
    let retries = of("job.retry");
    assert!(
        !retries.is_empty(),
        "4 calls a second with bursts of 24 cannot carry 16 jobs at once"
    );
    for r in &retries {
        assert_eq!(r["data"]["counts_as_attempt"], false, "{r}");
        let error = r["data"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("plugin_quota.calls_per_minute"), "{error}");
    }
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refusals = metrics
        .lines()
        .find(|l| {
            l.starts_with("tenure_plugin_quota_refusals_total{limit=\"calls_per_minute\",tenant=\"t\"}")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    let n: u64 = refusals
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    // Each refusal put off one job; jobs that found the destination held back after it were
    // put off by that hold, without a refusal of their own.
    let refused_here = retries
        .iter()
        .filter(|r| {
            !r["data"]["error"]
                .as_str()
                .unwrap_or_default()
                .contains("is held back")
        })
        .count();
    assert!(
        refused_here > 0 && n >= refused_here as u64,
        "{refusals}: {retries:#?}"
    );
    h.stop().await;
}
