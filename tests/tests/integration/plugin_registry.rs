//! The plugin platform on a running host: uploads checked (manifest, kind, bytes) and signed by a
//! publisher the tenant trusts, seen by their tenant alone; activation of a rules plugin and of a
//! connector while events keep arriving, and rollbacks, with no job failed or lost and every job's
//! recorded versions those in force when it started; the registry restored after a restart.

use base64::Engine as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_plugin_test::plugin_dir;
use tenure_registry::{PluginRegistry, PluginSignature, SigningKey, TrustPolicy};
use tenure_tests::host::{
    HR_TOKEN, HostSpec, IT_TOKEN, IT2_TOKEN, SOURCE_TOKEN, TestHost, joiner, pipeline_toml, tenant_toml,
};
use tenure_tests::wasm_variant::variant;

const WAIT: Duration = Duration::from_secs(90);

fn spec() -> HostSpec {
    // Accounts are named after the person (the sandbox's first matching attribute), so creates
    // never race for the sandbox's counter and no job is retried for it.
    spec_of(
        "[plugins.swap]\n[plugins.sandbox.grants]\nkv = true\n\
         [plugins.sandbox.settings]\nmatch_attributes = \"name\"\n",
    )
}

fn spec_of(tenant: &str) -> HostSpec {
    HostSpec {
        tenant: tenant_toml(tenant),
        pipeline: pipeline_toml(
            "rules = \"swap\"\n[[destinations]]\nname = \"swap\"\nconnector = \"sandbox\"\n\
             matching = [\"name\"]\n",
        ),
        queue: QueueConfig {
            backoff_base_ms: 50,
            lease_ms: 10_000,
            poll_ms: 20,
            ..QueueConfig::default()
        },
        // The rules plugin `swap` (version A) and the sandbox connector, offered to every tenant.
        plugins: vec!["swap-a", "sandbox"],
    }
}

fn trusting(key: &SigningKey) -> TrustPolicy {
    TrustPolicy {
        publishers: [("acme".to_string(), key.public_key_base64())].into(),
        ..TrustPolicy::default()
    }
}

/// A built plugin's component and manifest text.
fn built(file: &str) -> (Vec<u8>, String) {
    let wasm = plugin_dir().join(format!("{file}.wasm"));
    (
        std::fs::read(&wasm).expect("built plugin (run plugins/build.sh)"),
        std::fs::read_to_string(wasm.with_extension("toml")).expect("its manifest"),
    )
}

fn upload(manifest: &str, component: &[u8], signature: Option<&PluginSignature>) -> Value {
    json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(component),
        "signature": signature,
    })
}

/// Uploads a signed plugin; its version label.
async fn push(h: &TestHost, key: &SigningKey, name: &str, component: &[u8], manifest: &str) -> String {
    let sig = key.sign("acme", name, component, manifest);
    let (status, body) = h
        .post("/api/v1/plugins", &upload(manifest, component, Some(&sig)))
        .await;
    assert_eq!(status, 201, "{body}");
    body["version"]["version"].as_str().expect("label").to_string()
}

async fn switch(h: &TestHost, name: &str, action: &str, version: Option<&str>) -> Value {
    let (status, body) = h
        .post(
            &format!("/api/v1/plugins/{name}/{action}"),
            &json!({ "version": version }),
        )
        .await;
    assert_eq!(status, 200, "{action} {name}: {body}");
    body
}

/// The version the tenant runs of each plugin, from the API.
async fn active(h: &TestHost) -> BTreeMap<String, String> {
    let listed = h.get("/api/v1/plugins").await;
    listed["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["active"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_signed_and_seen_by_their_tenant_alone() {
    let (key, _) = SigningKey::generate().unwrap();
    let (stranger, _) = SigningKey::generate().unwrap();
    let h = TestHost::start_with_registry(spec(), tempfile::tempdir().unwrap(), trusting(&key)).await;
    let (component, manifest) = built("swap-b");
    let seeded = active(&h).await;
    assert!(seeded["swap"].starts_with("0.1.0-a+"), "{seeded:?}");
    assert!(seeded.contains_key("sandbox"), "{seeded:?}");
    // What each runs may use: its manifest's request as far as the tenant grants it.
    let listed = h.get("/api/v1/plugins").await;
    let grants = |name: &str| {
        listed["plugins"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name))
            .map(|p| p["grants"].clone())
            .unwrap_or_default()
    };
    assert_eq!(grants("sandbox"), json!({ "http": [], "ldap": [], "kv": true }));
    assert_eq!(grants("swap"), json!({ "http": [], "ldap": [], "kv": false }));

    let refused = |status: u16, body: &Value, field: &str, words: &str| {
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        let reason = body["error"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(words), "{reason}");
    };
    // Unsigned, signed by a key the tenant does not trust, or under a name it does not list.
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&manifest, &component, None))
        .await;
    refused(status, &body, "signature", "not signed");
    let forged = stranger.sign("acme", "swap", &component, &manifest);
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&manifest, &component, Some(&forged)))
        .await;
    refused(status, &body, "signature", "does not match");
    let unknown = key.sign("mallory", "swap", &component, &manifest);
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&manifest, &component, Some(&unknown)))
        .await;
    refused(
        status,
        &body,
        "signature",
        "not among the tenant's trusted publishers",
    );
    // A signature covers the manifest: asking for more capabilities breaks it.
    let signed = key.sign("acme", "swap", &component, &manifest);
    let greedy = format!("{manifest}\n[capabilities]\nhttp = [\"everything\"]\n");
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&greedy, &component, Some(&signed)))
        .await;
    refused(status, &body, "signature", "does not match");
    // Signed but wrong: bytes that are no component, a manifest that lies about the kind.
    let junk = b"not a component".to_vec();
    let sig = key.sign("acme", "swap", &junk, &manifest);
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&manifest, &junk, Some(&sig)))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("component")),
        "{body}"
    );
    let lying = manifest.replace("kind = \"rules\"", "kind = \"connector\"");
    let sig = key.sign("acme", "swap", &component, &lying);
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&lying, &component, Some(&sig)))
        .await;
    refused(status, &body, "component", "kind");
    let (status, body) = h
        .request(
            reqwest::Method::POST,
            "/api/v1/plugins",
            IT_TOKEN,
            Some(&json!({ "manifest": manifest, "component": "%%%" })),
            None,
        )
        .await;
    refused(status, &body, "component", "not base64");
    // Only IT uploads.
    let (status, body) = h
        .request(
            reqwest::Method::POST,
            "/api/v1/plugins",
            HR_TOKEN,
            Some(&upload(&manifest, &component, Some(&signed))),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(active(&h).await, seeded, "nothing refused changed what runs");

    // The good upload is kept once, with its signer, and runs only once activated.
    let (status, body) = h
        .post("/api/v1/plugins", &upload(&manifest, &component, Some(&signed)))
        .await;
    assert_eq!(status, 201, "{body}");
    let label = body["version"]["version"].as_str().unwrap().to_string();
    assert!(label.starts_with("0.1.0-b+"), "{body}");
    assert_eq!(body["version"]["signer"], "acme");
    assert_eq!(body["version"]["offered_to"], "tenant");
    assert_eq!(body["version"]["active"], false);
    let (status, again) = h
        .post("/api/v1/plugins", &upload(&manifest, &component, Some(&signed)))
        .await;
    assert_eq!((status, again["new"].as_bool()), (200, Some(false)), "{again}");
    assert_eq!(active(&h).await, seeded);
    let uploaded: Vec<Value> = h
        .audit(None)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "plugin.uploaded")
        .collect();
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    assert_eq!(
        (
            &uploaded[0]["actor"],
            &uploaded[0]["data"]["signer"],
            &uploaded[0]["data"]["version"]
        ),
        (&json!("it-admin"), &json!("acme"), &json!(label))
    );

    // Another tenant neither sees nor activates it.
    let other = PluginRegistry::new(
        h.store.clone() as Arc<dyn tenure_store::Store>,
        h.pipeline.runtime().clone(),
        BTreeMap::new(),
    );
    let theirs = other.list("other").await.unwrap();
    let swap = theirs
        .iter()
        .find(|p| p.name == "swap")
        .expect("the seeded swap is offered to all");
    assert!(swap.versions.iter().all(|v| v.version != label), "{theirs:?}");
    let err = other.activate("other", "it", "swap", &label).await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    let (status, body) = h
        .post(
            "/api/v1/plugins/swap/activate",
            &json!({ "version": "0.0.0+nothing" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    h.stop().await;
}

/// A shadow run evaluates the candidate beside the active version for everyone and keeps its
/// report; a tenant that asks for four eyes and a shadow first gets both before an activation,
/// while a rollback is never held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_run_reports_the_change_and_the_tenants_policy_holds_activation() {
    let (key, _) = SigningKey::generate().unwrap();
    let policy = TrustPolicy {
        four_eyes: true,
        require_shadow: true,
        ..trusting(&key)
    };
    let h = TestHost::start_with_registry(spec(), tempfile::tempdir().unwrap(), policy).await;
    for id in ["1", "2", "3"] {
        let (status, body) = h.post_event(&joiner(id, "Engineering"), &format!("k{id}")).await;
        assert_eq!(status, 202, "{body}");
    }
    h.wait_idle(WAIT).await;
    let rules_a = active(&h).await["swap"].clone();
    let (component, manifest) = built("swap-b");
    let rules_b = push(&h, &key, "swap", &component, &manifest).await;
    let activate = |token: &'static str| {
        let body = json!({ "version": rules_b });
        let h = &h;
        async move {
            h.request(
                reqwest::Method::POST,
                "/api/v1/plugins/swap/activate",
                token,
                Some(&body),
                None,
            )
            .await
        }
    };

    // The uploader may not activate it; another administrator may, once a shadow ran.
    let (status, body) = activate(IT_TOKEN).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("four eyes"),
        "{body}"
    );
    let (status, body) = activate(IT2_TOKEN).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("shadow run"),
        "{body}"
    );

    let (status, shadowed) = h
        .post("/api/v1/plugins/swap/shadow", &json!({ "version": rules_b }))
        .await;
    assert_eq!(status, 201, "{shadowed}");
    let report = &shadowed["report"];
    assert_eq!(report["kind"], "rules", "{report}");
    assert_eq!(
        (&report["version"], &report["against"]),
        (&json!(rules_b), &json!(rules_a))
    );
    assert_eq!(report["people"], 3, "{report}");
    let swap = &report["destinations"]["swap"];
    assert_eq!(
        (&swap["counts"]["group-added"], &swap["counts"]["group-removed"]),
        (&json!(3), &json!(3)),
        "{swap}"
    );
    let changes = swap["people"][0]["changes"].to_string();
    assert!(changes.contains("vA") && changes.contains("vB"), "{changes}");
    let listed = h.get("/api/v1/plugins/swap/shadows").await;
    let shadows = listed["shadows"].as_array().expect("shadows");
    assert_eq!(shadows.len(), 1, "{listed}");
    assert_eq!(shadows[0]["summary"]["version"], json!(rules_b));
    assert_eq!(shadows[0]["id"], shadowed["report_id"]);
    // Nothing ran on the candidate: the accounts still say A.
    assert!(
        h.sandbox_accounts()
            .await
            .iter()
            .all(|a| a.to_string().contains("\"vA\""))
    );

    let (status, body) = activate(IT2_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(active(&h).await["swap"], rules_b);
    let back = switch(&h, "swap", "rollback", None).await;
    assert_eq!(
        back["version"],
        json!(rules_a),
        "a rollback is never held: {back}"
    );
    let shadowed_audit = h
        .audit(None)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "plugin.shadowed")
        .count();
    assert_eq!(shadowed_audit, 1);
    h.stop().await;
}

/// The versions that processed one job, from its audit entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Ran {
    rules: Vec<String>,
    connector: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_connector_versions_swap_and_roll_back_under_a_steady_stream() {
    let (key, _) = SigningKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = TestHost::start_with_registry(spec(), dir, trusting(&key)).await;
    let seeded = active(&h).await;
    let (rules_a, sandbox_0) = (seeded["swap"].clone(), seeded["sandbox"].clone());
    let (swap_b, swap_b_manifest) = built("swap-b");
    let rules_b = push(&h, &key, "swap", &swap_b, &swap_b_manifest).await;
    let (sandbox, sandbox_manifest) = built("sandbox");
    let sandbox_1 = push(&h, &key, "sandbox", &variant(&sandbox, "1"), &sandbox_manifest).await;
    assert_ne!(sandbox_1, sandbox_0);

    // A steady stream of joiners; each remembers the phase in force when it was posted.
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (phase, stop, base, accepted) = (phase.clone(), stop.clone(), h.base.clone(), accepted.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut posted = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let at = phase.load(Ordering::SeqCst);
                let id = n.to_string();
                let answer = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(SOURCE_TOKEN)
                    .header("Idempotency-Key", format!("swap-{id}"))
                    .json(&joiner(&id, "Engineering"))
                    .send()
                    .await
                    .expect("the host answers");
                assert_eq!(answer.status().as_u16(), 202, "event {id}");
                accepted.fetch_add(1, Ordering::SeqCst);
                posted.push((id, at));
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            posted
        })
    };
    let phases = [
        (rules_a.clone(), sandbox_0.clone()),
        (rules_b.clone(), sandbox_0.clone()),
        (rules_b.clone(), sandbox_1.clone()),
        (rules_a.clone(), sandbox_1.clone()),
        (rules_a.clone(), sandbox_0.clone()),
    ];
    // Each phase lasts until a few jobs posted during it have completed, however loaded the machine.
    let db =
        rusqlite::Connection::open_with_flags(h.store.path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("a read-only view of the store");
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let dwell = || {
        let mark = accepted.load(Ordering::SeqCst);
        let db = &db;
        async move {
            let started = std::time::Instant::now();
            loop {
                let completed: usize = db
                    .query_row(
                        "SELECT count(*) FROM audit WHERE kind = 'job.completed'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                if completed >= mark + 5 && started.elapsed() >= Duration::from_millis(300) {
                    return;
                }
                assert!(
                    started.elapsed() < WAIT,
                    "jobs stopped completing: {completed} of {mark}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    dwell().await;
    let activated = switch(&h, "swap", "activate", Some(&rules_b)).await;
    assert_eq!(
        (&activated["previous"], &activated["version"]),
        (&json!(rules_a), &json!(rules_b))
    );
    phase.store(1, Ordering::SeqCst);
    dwell().await;
    switch(&h, "sandbox", "activate", Some(&sandbox_1)).await;
    phase.store(2, Ordering::SeqCst);
    dwell().await;
    // Back to what ran before, named by nobody: the previous activation (here the seeded default).
    let back = switch(&h, "swap", "rollback", None).await;
    assert_eq!(back["version"], json!(rules_a), "{back}");
    phase.store(3, Ordering::SeqCst);
    dwell().await;
    switch(&h, "sandbox", "rollback", Some(&sandbox_0)).await;
    phase.store(4, Ordering::SeqCst);
    dwell().await;
    stop.store(true, Ordering::Relaxed);
    let posted = producer.await.expect("the producer ran");
    h.wait_idle(WAIT).await;
    assert!(posted.len() >= 50, "a steady stream: {} events", posted.len());
    for p in 0..phases.len() {
        assert!(
            posted.iter().any(|(_, at)| *at == p),
            "events were posted in phase {p}"
        );
    }

    // Every job completed on its first attempt; none failed, retried or was lost.
    let audit = h.audit(None).await;
    let count = |kind: &str| audit.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("event.received"), posted.len());
    assert_eq!(count("job.completed"), posted.len());
    assert_eq!(
        (count("job.retry"), count("job.dead"), count("job.held")),
        (0, 0, 0)
    );
    let mut ran: HashMap<String, Ran> = HashMap::new();
    for e in &audit {
        let person = e["person_key"].as_str().unwrap_or_default().to_string();
        match e["kind"].as_str() {
            Some("rules.evaluated") => ran
                .entry(person)
                .or_default()
                .rules
                .push(e["data"]["version"].as_str().unwrap_or_default().into()),
            Some("plan.created") => ran
                .entry(person)
                .or_default()
                .connector
                .push(e["data"]["connector_version"].as_str().unwrap_or_default().into()),
            _ => {}
        }
    }
    // Each job ran on the versions of the phase it was posted in or of a later one (a job starts
    // after its event arrives), never on versions switched away before it arrived; and its
    // account says the same version the audit records.
    let accounts: HashMap<String, Value> = h
        .sandbox_accounts()
        .await
        .into_iter()
        .map(|a| (name_of(&a), a))
        .collect();
    let mut per_phase = vec![0usize; phases.len()];
    for (id, at) in &posted {
        let got = ran.get(&format!("hr:{id}")).cloned().unwrap_or_default();
        assert_eq!(
            (got.rules.len(), got.connector.len()),
            (1, 1),
            "event {id}: {got:?}"
        );
        let pair = (got.rules[0].clone(), got.connector[0].clone());
        let when = (*at..phases.len()).find(|p| phases[*p] == pair);
        assert!(
            when.is_some(),
            "event {id} posted in phase {at} ran {pair:?}; phases {phases:?}"
        );
        per_phase[when.unwrap_or_default()] += 1;
        let letter = if pair.0 == rules_a { "A" } else { "B" };
        let account = accounts
            .get(&format!("Given{id}"))
            .unwrap_or_else(|| panic!("no account for event {id}"));
        assert!(
            account["attributes"]
                .to_string()
                .contains(&format!("\"v{letter}\""))
                || account.to_string().contains(&format!("\"v{letter}\"")),
            "event {id} ran rules {} but its account is {account}",
            pair.0
        );
    }
    assert!(
        per_phase.iter().all(|n| *n > 0),
        "every phase's versions ran jobs: {per_phase:?}"
    );
    let switched: Vec<String> = audit
        .iter()
        .filter(|e| e["kind"] == "plugin.activated" || e["kind"] == "plugin.rolled-back")
        .map(|e| format!("{} {} {}", e["kind"], e["data"]["plugin"], e["data"]["version"]))
        .collect();
    assert_eq!(switched.len(), 4, "{switched:?}");

    // The registry and the tenant's choices survive a restart.
    switch(&h, "swap", "activate", Some(&rules_b)).await;
    let dir = h.stop().await;
    let h = TestHost::start_with_registry(spec(), dir, trusting(&key)).await;
    let restored = active(&h).await;
    assert_eq!((&restored["swap"], &restored["sandbox"]), (&rules_b, &sandbox_0));
    let (status, body) = h
        .post_event(&joiner("after-restart", "Engineering"), "after-restart")
        .await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(WAIT).await;
    let evaluated: Vec<Value> = h
        .audit(Some("hr:after-restart"))
        .await
        .into_iter()
        .filter(|e| e["kind"] == "rules.evaluated")
        .collect();
    assert_eq!(evaluated[0]["data"]["version"], json!(rules_b));
    h.stop().await;
}

/// The `name` attribute of a sandbox account.
fn name_of(account: &Value) -> String {
    let text = account["attributes"].to_string();
    let v: Value = account["attributes"].clone();
    let found = v.as_array().and_then(|a| {
        a.iter().find_map(|x| match x {
            Value::Array(pair) if pair.first() == Some(&json!("name")) => pair.get(1).cloned(),
            Value::Object(_) if x["name"] == "name" => Some(x["value"].clone()),
            _ => None,
        })
    });
    match found {
        Some(Value::Object(o)) => o
            .get("Text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Some(Value::String(s)) => s,
        _ => panic!("no name in {text}"),
    }
}

const CLI_TOKEN: &str = "plugins-cli-token-0123456789";

/// The README's plugin lifecycle, command by command, against a live `tenure serve`: a publisher
/// key, a signature, the upload, the list, a shadow run, activation (the next job runs it) and
/// rollback. (The scaffold, its build and `plugins test` are run by `scaffold.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_plugin_lifecycle_runs_against_a_live_server() {
    use tenure_tests::serve::{free_port, run_cli, start_serve, wait_ready};
    tenure_capabilities::install_crypto_provider();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ok = |out: std::process::Output, what: &str| -> String {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{what}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let keygen = ok(
        run_cli(&dir, &["plugins", "keygen", "--out", "acme.key"], None),
        "keygen",
    );
    let public = keygen
        .lines()
        .find_map(|l| l.strip_prefix("public key:"))
        .map(str::trim)
        .expect("the public key is printed")
        .to_string();
    let (component, manifest) = built("swap-b");
    std::fs::write(dir.join("swap-b.wasm"), &component).unwrap();
    std::fs::write(dir.join("swap-b.toml"), &manifest).unwrap();
    // The host's plugins directory: version A of `swap` and the sandbox, as the operator ships them.
    let plugins = dir.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    for (from, to) in [("swap-a", "swap"), ("sandbox", "sandbox")] {
        for ext in ["wasm", "toml"] {
            std::fs::copy(
                plugin_dir().join(format!("{from}.{ext}")),
                plugins.join(format!("{to}.{ext}")),
            )
            .unwrap();
        }
    }
    let port = free_port();
    let config = format!(
        r#"plugins_dir = "{plugins}"
cache_dir = "{cache}"
[store]
path = "tenure.db"
[server]
listen = "127.0.0.1:{port}"
[queue]
poll_ms = 20
[[api_tokens]]
name = "it"
role = "it"
tenant = "t"
token = "{CLI_TOKEN}"
[tenants.t]
rules = "swap"
[[tenants.t.destinations]]
name = "swap"
connector = "sandbox"
matching = ["name"]
[tenants.t.plugins.swap]
[tenants.t.plugins.sandbox.grants]
kv = true
[tenants.t.plugin_trust]
publishers = {{ acme = "{public}" }}
"#,
        plugins = plugins.display(),
        cache = tenure_plugin_test::workspace_root()
            .join("target/component-cache")
            .display(),
    );
    std::fs::write(dir.join("tenure.toml"), config).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_serve(&dir, &dir.join("tenure.toml"), &dir.join("serve.log"));
    wait_ready(&client, &base).await;
    let api = ["--url", base.as_str(), "--token", CLI_TOKEN];
    let with_api = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(api.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |args: Vec<String>, what: &str| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(run_cli(&dir, &refs, None), what)
    };

    let signed = ok(
        run_cli(
            &dir,
            &[
                "plugins",
                "sign",
                "swap-b.wasm",
                "--key",
                "acme.key",
                "--publisher",
                "acme",
            ],
            None,
        ),
        "sign",
    );
    assert!(signed.contains("signed swap as acme"), "{signed}");
    let pushed = run(with_api(&["plugins", "push", "swap-b.wasm"]), "push");
    let label = pushed
        .split_whitespace()
        .find(|w| w.starts_with("0.1.0-b+"))
        .expect("the pushed version's label")
        .to_string();
    assert!(pushed.contains("(signer: acme)"), "{pushed}");
    // Two pushes at once: the host compiles one upload of a tenant at a time and throttles the
    // other (429, Retry-After), which the CLI sends again; both are uploaded.
    for tag in ["c1", "c2"] {
        std::fs::write(dir.join(format!("swap-{tag}.wasm")), variant(&component, tag)).unwrap();
        std::fs::write(dir.join(format!("swap-{tag}.toml")), &manifest).unwrap();
        let file = format!("swap-{tag}.wasm");
        let args = [
            "plugins",
            "sign",
            &file,
            "--key",
            "acme.key",
            "--publisher",
            "acme",
        ];
        ok(run_cli(&dir, &args, None), "sign");
    }
    let concurrent: Vec<String> = std::thread::scope(|scope| {
        let pushes: Vec<_> = ["swap-c1.wasm", "swap-c2.wasm"]
            .into_iter()
            .map(|file| scope.spawn(move || run(with_api(&["plugins", "push", file]), "concurrent push")))
            .collect();
        pushes
            .into_iter()
            .map(|p| p.join().expect("push thread"))
            .collect()
    });
    assert!(
        concurrent.iter().all(|out| out.contains("uploaded")),
        "{concurrent:?}"
    );
    let listed = run(with_api(&["plugins", "list"]), "list");
    assert!(
        listed.lines().any(|l| l.trim_start().starts_with("* 0.1.0-a+")) && listed.contains(&label),
        "{listed}"
    );
    let mut args = with_api(&["plugins", "shadow", "swap"]);
    args.insert(3, label.clone());
    let shadowed = run(args, "shadow");
    assert!(
        shadowed.contains(&format!("swap {label} against 0.1.0-a+")),
        "{shadowed}"
    );
    let mut args = with_api(&["plugins", "activate", "swap"]);
    args.insert(3, label.clone());
    let activated = run(args, "activate");
    assert!(activated.contains(&format!("-> {label}")), "{activated}");

    let event = joiner("cli-1", "Engineering");
    let posted = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(CLI_TOKEN)
        .json(&event)
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status().as_u16(), 202);
    let mut version = Value::Null;
    for _ in 0..500 {
        let audit: Value = client
            .get(format!(
                "{base}/api/v1/audit?person=hr:cli-1&kind=rules.evaluated"
            ))
            .bearer_auth(CLI_TOKEN)
            .send()
            .await
            .expect("audit")
            .json()
            .await
            .expect("audit JSON");
        if let Some(v) = audit.as_array().and_then(|a| a.first()) {
            version = v["data"]["version"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(version, json!(label), "the next job ran the activated version");
    let rolled = run(with_api(&["plugins", "rollback", "swap"]), "rollback");
    assert!(rolled.contains(&format!("swap: {label} -> 0.1.0-a+")), "{rolled}");
    let _ = server.kill();
    let _ = server.wait();
}

/// A connector version in plan-only shadow: each person's desired state planned through the active
/// version and the candidate against the live destination, plan against plan. A rebuilt version
/// plans the same for everyone; a different one (the JavaScript sandbox under the same name,
/// which keeps its index in another form) is reported person by person. Nothing is applied and
/// the destination's data is unchanged; a tenant that requires a shadow holds the activation
/// until one ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_shadow_compares_plans_and_writes_nothing() {
    let (key, _) = SigningKey::generate().unwrap();
    let policy = TrustPolicy {
        require_shadow: true,
        ..trusting(&key)
    };
    // The sandbox's default settings (accounts numbered, indexed by employeeId and mail), which
    // the JavaScript build reads differently.
    let spec = spec_of("[plugins.swap]\n[plugins.sandbox.grants]\nkv = true\n");
    let h = TestHost::start_with_registry(spec, tempfile::tempdir().unwrap(), policy).await;
    for id in ["1", "2", "3"] {
        let (status, body) = h.post_event(&joiner(id, "Engineering"), &format!("k{id}")).await;
        assert_eq!(status, 202, "{body}");
    }
    h.wait_idle(WAIT).await;
    let before = h.sandbox_accounts().await;
    let jobs_before = h.get("/api/v1/jobs").await;
    assert_eq!(before.len(), 3, "{jobs_before:#}");

    // A rebuild of the same connector: the same plan for everyone.
    let (sandbox, sandbox_manifest) = built("sandbox");
    let rebuilt = push(
        &h,
        &key,
        "sandbox",
        &variant(&sandbox, "rebuilt"),
        &sandbox_manifest,
    )
    .await;
    let (status, body) = h
        .post("/api/v1/plugins/sandbox/activate", &json!({ "version": rebuilt }))
        .await;
    assert_eq!(status, 409, "the tenant requires a shadow first: {body}");
    let (status, same) = h
        .post("/api/v1/plugins/sandbox/shadow", &json!({ "version": rebuilt }))
        .await;
    assert_eq!(status, 201, "{same}");
    let report = &same["report"];
    assert_eq!(report["kind"], "connector", "{report}");
    assert_eq!(
        (
            &report["people"],
            &report["compared"],
            &report["same"],
            &report["different"]
        ),
        (&json!(3), &json!(3), &json!(3), &json!(0)),
        "{report}"
    );

    // Another connector under the same name: every plan differs, and each is listed.
    let (js, js_manifest) = built("connector-js");
    let js_manifest = js_manifest.replace("name = \"connector-js\"", "name = \"sandbox\"");
    let other = push(&h, &key, "sandbox", &js, &js_manifest).await;
    let (status, differs) = h
        .post("/api/v1/plugins/sandbox/shadow", &json!({ "version": other }))
        .await;
    assert_eq!(status, 201, "{differs}");
    let report = &differs["report"];
    assert_eq!(
        (&report["compared"], &report["different"]),
        (&json!(3), &json!(3)),
        "{report}"
    );
    assert_eq!(report["by_destination"]["swap"], 3, "{report}");
    // The JavaScript build keys its index otherwise: it would find nobody and create everyone
    // again, where the active version has nothing to do.
    let first = &report["differences"][0];
    assert_eq!(
        (&first["person_key"], &first["destination"]),
        (&json!("hr:1"), &json!("swap")),
        "{first}"
    );
    assert_eq!(first["active"]["operations"], json!([]), "{first}");
    assert_ne!(first["active"]["found"], "none", "{first}");
    assert_eq!(
        (&first["candidate"]["found"], &first["candidate"]["operations"]),
        (&json!("none"), &json!(["create", "add-member vA"])),
        "{first}"
    );

    // Nothing was applied: the accounts, the key-value data and the jobs are as they were.
    assert_eq!(h.sandbox_accounts().await, before);
    assert_eq!(h.get("/api/v1/jobs").await, jobs_before);
    let listed = h.get("/api/v1/plugins/sandbox/shadows").await;
    let kinds: Vec<&Value> = listed["shadows"]
        .as_array()
        .expect("shadows")
        .iter()
        .map(|s| &s["summary"]["kind"])
        .collect();
    assert_eq!(kinds, [&json!("connector"), &json!("connector")], "{listed}");
    // The rebuilt version was shadowed, so the tenant's policy lets it be activated.
    switch(&h, "sandbox", "activate", Some(&rebuilt)).await;
    h.stop().await;
}

/// A rules version in shadow on live events: for a few seconds each person whose job completes is
/// compared under the candidate and the active version, off the job's path; people who had no job
/// meanwhile are not. The report is listed as running from the start and finished in place when
/// the period ends; one live shadow at a time; a host that stops first leaves it interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_shadow_compares_the_people_whose_jobs_complete_in_its_period() {
    let (key, _) = SigningKey::generate().unwrap();
    let h = TestHost::start_with_registry(spec(), tempfile::tempdir().unwrap(), trusting(&key)).await;
    for id in ["1", "2"] {
        let (status, body) = h.post_event(&joiner(id, "Engineering"), &format!("k{id}")).await;
        assert_eq!(status, 202, "{body}");
    }
    h.wait_idle(WAIT).await;
    let rules_a = active(&h).await["swap"].clone();
    let (component, manifest) = built("swap-b");
    let rules_b = push(&h, &key, "swap", &component, &manifest).await;

    let live = json!({ "version": rules_b, "live_seconds": 3 });
    let (status, started) = h.post("/api/v1/plugins/swap/shadow", &live).await;
    assert_eq!(status, 202, "{started}");
    assert!(started["until_ms"].as_i64().is_some(), "{started}");
    // Listed as running from the start, under the id its report will have.
    let report_id = started["report"].as_i64().expect("report id");
    let listed = h.get("/api/v1/plugins/swap/shadows").await;
    assert_eq!(
        (
            &listed["shadows"][0]["id"],
            &listed["shadows"][0]["summary"]["status"]
        ),
        (&json!(report_id), &json!("running")),
        "{listed}"
    );
    let (status, again) = h.post("/api/v1/plugins/swap/shadow", &live).await;
    assert_eq!(status, 409, "one live shadow at a time: {again}");
    let (status, refused) = h
        .post(
            "/api/v1/plugins/swap/shadow",
            &json!({ "version": rules_b, "live_seconds": 0 }),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (422, Some("live_seconds")),
        "{refused}"
    );
    for id in ["3", "4"] {
        let (status, body) = h.post_event(&joiner(id, "Engineering"), &format!("k{id}")).await;
        assert_eq!(status, 202, "{body}");
    }
    h.wait_idle(WAIT).await;
    // The jobs ran on the active version; the report comes when the period is over.
    let mut summary = Value::Null;
    for _ in 0..200 {
        let listed = h.get("/api/v1/plugins/swap/shadows").await;
        summary = listed["shadows"][0].clone();
        if summary["summary"]["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(summary["summary"]["status"], "done", "{summary}");
    assert_eq!(summary["summary"]["live_seconds"], 3, "{summary}");
    assert_eq!(summary["summary"]["missed"], 0, "{summary}");
    let id = summary["id"].as_i64().expect("report id");
    assert_eq!(id, report_id, "finished in place");
    let report = h.get(&format!("/api/v1/plugins/swap/shadows/{id}")).await;
    let body = &report["body"];
    assert_eq!(
        (&body["kind"], &body["version"], &body["against"], &body["people"]),
        (&json!("rules"), &json!(rules_b), &json!(rules_a), &json!(2)),
        "{body}"
    );
    let mut compared: Vec<&str> = body["destinations"]["swap"]["people"]
        .as_array()
        .expect("people")
        .iter()
        .filter_map(|p| p["person_key"].as_str())
        .collect();
    compared.sort_unstable();
    assert_eq!(
        compared,
        ["hr:3", "hr:4"],
        "only the people whose jobs completed: {body}"
    );
    // The accounts were made by the active version.
    assert!(
        h.sandbox_accounts()
            .await
            .iter()
            .all(|a| a.to_string().contains("\"vA\""))
    );

    // A host that stops in a live shadow's period leaves its report interrupted, not running.
    let long = json!({ "version": rules_b, "live_seconds": 3600 });
    let (status, started) = h.post("/api/v1/plugins/swap/shadow", &long).await;
    assert_eq!(status, 202, "{started}");
    let cut = started["report"].as_i64().expect("report id");
    let dir = h.stop().await;
    let h = TestHost::start_with_registry(spec(), dir, trusting(&key)).await;
    let report = h.get(&format!("/api/v1/plugins/swap/shadows/{cut}")).await;
    assert_eq!(report["summary"]["status"], "interrupted", "{report}");
    assert!(
        report["summary"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("host stopped")),
        "{report}"
    );
    let listed = h.get("/api/v1/plugins/swap/shadows").await;
    let statuses: Vec<&Value> = listed["shadows"]
        .as_array()
        .expect("shadows")
        .iter()
        .map(|r| &r["summary"]["status"])
        .collect();
    assert_eq!(statuses, [&json!("interrupted"), &json!("done")], "{listed}");
    // The tenant may start another at once.
    let (status, again) = h
        .post(
            "/api/v1/plugins/swap/shadow",
            &json!({ "version": rules_b, "live_seconds": 1 }),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    h.stop().await;
}

/// A burst of uploads while jobs flow: components are compiled one at a time, off the runtime's
/// threads; a tenant's upload sent while its previous one compiles is throttled (429 with the
/// reason), never failed or half kept, and goes through when sent again; every event posted
/// meanwhile completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_uploads_is_compiled_one_at_a_time_while_jobs_flow() {
    let (key, _) = SigningKey::generate().unwrap();
    let h = TestHost::start_with_registry(spec(), tempfile::tempdir().unwrap(), trusting(&key)).await;
    let (sandbox, manifest) = built("sandbox");
    let bodies: Vec<Value> = (0..4)
        .map(|i| {
            let component = variant(&sandbox, &format!("burst-{i}"));
            let signature = key.sign("acme", "sandbox", &component, &manifest);
            upload(&manifest, &component, Some(&signature))
        })
        .collect();
    let mut burst = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let (client, url, body) = (
            h.client.clone(),
            format!("{}/api/v1/plugins", h.base),
            body.clone(),
        );
        burst.spawn(async move {
            let answer = client
                .post(url)
                .bearer_auth(IT_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("upload");
            let status = answer.status().as_u16();
            (i, status, answer.json::<Value>().await.expect("JSON answer"))
        });
    }
    for id in 0..10 {
        let (status, body) = h
            .post_event(
                &joiner(&format!("burst-{id}"), "Engineering"),
                &format!("burst-{id}"),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let mut throttled = Vec::new();
    let mut kept = 0;
    while let Some(answer) = burst.join_next().await {
        let (i, status, body) = answer.expect("upload task");
        match status {
            201 => kept += 1,
            429 => {
                let reason = body["error"]["reason"].as_str().unwrap_or_default();
                assert!(reason.contains("still being compiled"), "{body}");
                assert_eq!(body["error"]["field"], "component", "{body}");
                throttled.push(i);
            }
            other => panic!("upload {i} answered {other}: {body}"),
        }
    }
    assert!(kept >= 1, "the first upload of the burst is kept");
    // Sent again one after another, each throttled upload goes through.
    for i in &throttled {
        let (status, body) = h.post("/api/v1/plugins", &bodies[*i]).await;
        assert_eq!(status, 201, "{body}");
    }
    let listed = h.get("/api/v1/plugins").await;
    let versions = listed["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["name"] == "sandbox")
        .and_then(|p| p["versions"].as_array())
        .map(|v| v.len())
        .unwrap_or_default();
    assert_eq!(versions, 5, "the seeded version and the four uploads: {listed}");
    h.wait_idle(WAIT).await;
    let made = h.sandbox_accounts().await;
    assert!(
        (0..10).all(|id| made
            .iter()
            .any(|a| a.to_string().contains(&format!("burst-{id}")))),
        "every joiner of the burst has its account: {made:?}"
    );
    h.stop().await;
}
