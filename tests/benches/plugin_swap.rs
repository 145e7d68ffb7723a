//! Hot swap under load: events flow at a steady rate through the rules plugin `swap` and the sandbox
//! connector on a host whose plugins go through the registry; halfway, a new version of the rules
//! plugin is activated through the API. Reported over five runs (min / median / max, never the best
//! run): the activation's latency (the API call, from request to answer: the store write, the audit
//! entry and the switch), the completed jobs per second in the two seconds before it, and the worst
//! 250 ms window after it as a ratio of that baseline (the dip).
//!
//! Run: `plugins/build.sh && cargo bench -p tenure-tests --bench plugin_swap`
//! (`SWAP_RUNS`, `SWAP_RATE` events per second, default 5 and 200).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine as _;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tenure_pipeline::QueueConfig;
use tenure_registry::TrustPolicy;
use tenure_tests::bench_stats::{Spread, env_usize, load_average};
use tenure_tests::host::{HostSpec, SOURCE_TOKEN, TestHost, joiner, pipeline_toml, tenant_toml};

const WINDOW_MS: i64 = 250;

struct Run {
    switch_ms: f64,
    before_per_s: f64,
    dip_ratio: f64,
}

async fn run(rate: usize) -> Run {
    let spec = HostSpec {
        // Accounts are named after the person (the sandbox's first matching attribute), so no
        // two creates race for a counter.
        tenant: tenant_toml(
            "[plugins.swap]\n[plugins.sandbox.grants]\nkv = true\n\
             [plugins.sandbox.settings]\nmatch_attributes = \"name\"\n",
        ),
        pipeline: pipeline_toml(
            "rules = \"swap\"\n[[destinations]]\nname = \"swap\"\nconnector = \"sandbox\"\n\
             matching = [\"name\"]\n",
        ),
        queue: QueueConfig {
            poll_ms: 5,
            ..QueueConfig::default()
        },
        plugins: vec!["swap-a", "sandbox"],
    };
    let trust = TrustPolicy {
        allow_unsigned: true,
        ..TrustPolicy::default()
    };
    let h = TestHost::start_with_registry(spec, tempfile::tempdir().expect("temp dir"), trust).await;
    let dir = tenure_plugin_test::plugin_dir();
    let component = std::fs::read(dir.join("swap-b.wasm")).expect("swap-b built");
    let manifest = std::fs::read_to_string(dir.join("swap-b.toml")).expect("its manifest");
    let body = json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
    });
    let (status, uploaded) = h.post("/api/v1/plugins", &body).await;
    assert_eq!(status, 201, "{uploaded}");
    let label = uploaded["version"]["version"]
        .as_str()
        .expect("label")
        .to_string();

    // A steady stream: one event every 1/rate s, each posted on its own task.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (stop, base) = (stop.clone(), h.base.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            let mut n = 0usize;
            let mut posts = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (client, base) = (client.clone(), base.clone());
                let id = format!("s{n}");
                posts.push(tokio::spawn(async move {
                    client
                        .post(format!("{base}/api/v1/events"))
                        .bearer_auth(SOURCE_TOKEN)
                        .header("Idempotency-Key", id.clone())
                        .json(&joiner(&id, "Engineering"))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                }));
                n += 1;
            }
            for p in posts {
                assert_eq!(p.await.unwrap_or(0), 202, "every event is accepted");
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let switch_at = tenure_pipeline::now_ms();
    let (status, answer) = h
        .post("/api/v1/plugins/swap/activate", &json!({ "version": label }))
        .await;
    let switch_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 200, "{answer}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.expect("producer");
    h.wait_idle(Duration::from_secs(120)).await;

    let audit = h.audit(None).await;
    let completed: Vec<i64> = audit
        .iter()
        .filter(|e| e["kind"] == "job.completed")
        .filter_map(|e| e["ts_ms"].as_i64())
        .collect();
    assert!(
        audit
            .iter()
            .all(|e| e["kind"] != "job.dead" && e["kind"] != "job.retry"),
        "no job failed"
    );
    let in_window = |from: i64| {
        completed
            .iter()
            .filter(|t| **t >= from && **t < from + WINDOW_MS)
            .count()
    };
    let before: usize = (1..=8).map(|w| in_window(switch_at - w * WINDOW_MS)).sum();
    let before_per_s = before as f64 / 2.0;
    let worst_after = (0..4)
        .map(|w| in_window(switch_at + w * WINDOW_MS))
        .min()
        .unwrap_or(0);
    let dip_ratio = worst_after as f64 * (1000.0 / WINDOW_MS as f64) / before_per_s.max(f64::MIN_POSITIVE);
    h.stop().await;
    Run {
        switch_ms,
        before_per_s,
        dip_ratio,
    }
}

fn main() {
    tenure_capabilities::install_crypto_provider();
    let runs = env_usize("SWAP_RUNS", 5);
    let rate = env_usize("SWAP_RATE", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "plugin_swap: {runs} runs at {rate} events/s, load average {}",
        load_average()
    );
    let results: Vec<Run> = (0..runs).map(|_| rt.block_on(run(rate))).collect();
    let of = |f: fn(&Run) -> f64| Spread::of(&results.iter().map(f).collect::<Vec<_>>());
    println!(
        "activation latency, ms (min / median / max):          {:.1}",
        of(|r| r.switch_ms)
    );
    println!(
        "jobs completed per s, 2 s before (min / median / max): {:.0}",
        of(|r| r.before_per_s)
    );
    println!(
        "worst 250 ms window after, / before (min / median / max): {:.2}",
        of(|r| r.dip_ratio)
    );
}
