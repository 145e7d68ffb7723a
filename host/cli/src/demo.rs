//! `tenure demo`: the whole flow on a fresh embedded store with the sandbox
//! destination, driven through the real HTTP API, printed step by step.

use crate::host;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

pub async fn run(config_path: &Path, events: Option<PathBuf>) -> Result<()> {
    let mut config = crate::config::HostConfig::load(config_path)?;
    let dir = std::env::temp_dir().join(format!("tenure-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    config.store.path = dir.join("tenure.db");
    // Apart from the database, as in production (a copy of the data directory carries no key),
    // and kept between runs so that the compiled plugins cached under it are reused.
    let keys = config
        .cache_dir
        .parent()
        .map(|p| p.join("demo-keys"))
        .unwrap_or_else(|| dir.join("keys"));
    std::fs::create_dir_all(&keys)?;
    config.store.key_file = Some(keys.join("tenure.key"));
    let token = config
        .api_tokens
        .iter()
        .find(|t| t.role == tenure_server::Role::It)
        .map(|t| t.token.clone())
        .context("the demo config needs an api_tokens entry with role \"it\"")?;
    let store = host::open_store(&config).await?;
    let host = host::build(config, store).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let server = {
        let host_ref = std::sync::Arc::new(host);
        let h = host_ref.clone();
        (
            tokio::spawn(async move { host::run(&h, listener, shutdown).await }),
            host_ref,
        )
    };
    println!(
        "Tenure demo: embedded store {}, API {base}\n",
        dir.join("tenure.db").display()
    );
    let api = Api {
        http: reqwest::Client::new(),
        base,
        token,
    };

    let events_path =
        events.unwrap_or_else(|| config_path.parent().unwrap_or(Path::new(".")).join("events.json"));
    let samples: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&events_path)?)
        .with_context(|| format!("{} is not a list of events", events_path.display()))?;
    if samples.is_empty() {
        bail!("{} holds no events", events_path.display());
    }
    println!("1. Intake: POST /api/v1/events (stored durably, then acknowledged)");
    for (i, e) in samples.iter().enumerate() {
        let key = format!("demo-{i}");
        let (status, body) = api
            .call(reqwest::Method::POST, "/api/v1/events", Some(e), Some(&key))
            .await?;
        println!(
            "   {status} {} {} -> {}",
            e["kind"].as_str().unwrap_or("?"),
            e["person"]["given_name"].as_str().unwrap_or("?"),
            body
        );
        // Let each event apply before the next one, so the output reads as a story.
        wait_idle(&api).await?;
    }
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/events",
            Some(&samples[0]),
            Some("demo-0"),
        )
        .await?;
    println!("   retry of the first request with the same Idempotency-Key: {status} {body}");
    let bad = json!({"kind": "joiner", "person": {"ids": [{"source": "lever", "id": "9"}],
        "start_date": "next monday"}});
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/events",
            Some(&bad),
            Some("demo-bad"),
        )
        .await?;
    println!("   bad input: {status} {body}\n");

    println!("2. Jobs: rules -> plan -> apply through the sandbox connector plugin");
    let (_, jobs) = api
        .call(reqwest::Method::GET, "/api/v1/jobs?limit=20", None, None)
        .await?;
    for j in jobs.as_array().into_iter().flatten().rev() {
        println!(
            "   job {} {:<8} {:<10} {}",
            j["id"],
            j["kind"].as_str().unwrap_or(""),
            j["state"].as_str().unwrap_or(""),
            j["person_key"].as_str().unwrap_or("")
        );
    }

    println!("\n3. Audit trail of lever:1001 (GET /api/v1/audit?person=lever:1001)");
    let (_, audit) = api
        .call(
            reqwest::Method::GET,
            "/api/v1/audit?person=lever:1001",
            None,
            None,
        )
        .await?;
    for e in audit.as_array().into_iter().flatten() {
        let detail = audit_detail(e);
        println!(
            "   #{:<3} {:<16} {:<8} {}",
            e["seq"],
            e["kind"].as_str().unwrap_or(""),
            e["destination"].as_str().unwrap_or(""),
            detail
        );
    }

    println!("\n4. Preview (POST /api/v1/preview): Ada moves to Sales; nothing is written");
    let preview_body = json!({"kind": "mover", "source": "lever", "person": {
        "ids": [{"source": "lever", "id": "1001"}], "given_name": "Ada", "family_name": "Lovelace",
        "department": "Sales", "title": "Account Executive", "location": "Berlin",
        "emails": [{"value": "ada@example.test", "primary": true}]}});
    let (status, preview) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/preview",
            Some(&preview_body),
            None,
        )
        .await?;
    if status != 200 {
        bail!("preview failed: {status} {preview}");
    }
    for d in preview["destinations"].as_array().into_iter().flatten() {
        let ops: Vec<String> = d["operations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{} {}",
                    o["kind"].as_str().unwrap_or(""),
                    o["target"].as_str().unwrap_or("")
                )
            })
            .collect();
        println!(
            "   {} ({}): {}",
            d["destination"].as_str().unwrap_or(""),
            d["matched"].as_str().unwrap_or(""),
            ops.join(", ")
        );
    }
    let matched: Vec<&str> = preview["trace"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["matched"] == true)
        .filter_map(|t| t["rule"].as_str())
        .collect();
    println!("   rules that would fire: {matched:?}");

    rule_set_step(&api, config_path).await?;

    println!("\n6. Audit verify and KPIs");
    let (_, verify) = api
        .call(reqwest::Method::GET, "/api/v1/audit/verify", None, None)
        .await?;
    println!("   verify: {verify}");
    let (_, kpis) = api.call(reqwest::Method::GET, "/api/v1/kpis", None, None).await?;
    println!("   kpis: {kpis}");
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await?
        .text()
        .await?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("tenure_queue_jobs") || l.starts_with("tenure_operations_total"))
    {
        println!("   {line}");
    }
    let _ = stop.send(true);
    let (task, _host) = server;
    task.await??;
    println!(
        "\nDone. Run it for real with: tenure serve --config {}",
        config_path.display()
    );
    console_sign_in(config_path).await
}

/// The login the demo keeps in the store `tenure serve --config` opens, for the console.
const DEMO_LOGIN: &str = "demo";

/// Prints the console's address and a sign-in for it: an owner account `demo` in the store that
/// `tenure serve --config` opens (made, or given a new password, on every run; the password is
/// printed once and kept only as its hash).
async fn console_sign_in(config_path: &Path) -> Result<()> {
    use tenure_store::{AuditKind, AuditRecord, NewUser, Role, UserChange};
    let config = crate::config::HostConfig::load(config_path)?;
    let tenant = config
        .tenants
        .keys()
        .next()
        .cloned()
        .context("the demo config names no tenant")?;
    let (store, _) = host::open_store_of(config_path).await?;
    let password = tenure_server::passwords::new_password()?;
    let hash = tenure_server::passwords::hash_password(&password)?;
    let audit =
        |kind| AuditRecord::new(&tenant, kind, "demo").data(serde_json::json!({ "login": DEMO_LOGIN }));
    let exists = store.users(&tenant).await?.iter().any(|u| u.login == DEMO_LOGIN);
    if exists {
        let change = UserChange {
            roles: Some(vec![Role::Owner]),
            disabled: Some(false),
            password_hash: Some(hash),
        };
        let audit = vec![audit(AuditKind::AdminUserChanged)];
        store.change_user(&tenant, DEMO_LOGIN, change, audit).await?;
    } else {
        let user = NewUser {
            tenant: tenant.clone(),
            login: DEMO_LOGIN.into(),
            display_name: "Demo owner".into(),
            roles: vec![Role::Owner],
            password_hash: Some(hash),
        };
        store
            .create_user(user, vec![audit(AuditKind::AdminUserCreated)])
            .await?;
    }
    println!(
        "\nThe console: run `tenure serve --config {}` and open http://{}/console/\n   \
         sign in to tenant {tenant} as {DEMO_LOGIN} with the password {password} (new on every demo run)",
        config_path.display(),
        config.server.listen,
    );
    Ok(())
}

/// Waits until no job is available, running or retrying.
async fn wait_idle(api: &Api) -> Result<()> {
    let started = Instant::now();
    loop {
        let (_, jobs) = api
            .call(reqwest::Method::GET, "/api/v1/jobs?limit=50", None, None)
            .await?;
        let busy = jobs
            .as_array()
            .into_iter()
            .flatten()
            .any(|j| matches!(j["state"].as_str(), Some("available" | "running" | "retryable")));
        if !busy {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("jobs did not finish within 30 s: {jobs}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One line of detail for an audit entry in the demo's output.
fn audit_detail(e: &Value) -> String {
    let data = &e["data"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    match e["kind"].as_str().unwrap_or("") {
        "rules.evaluated" => {
            let fired: Vec<String> = data["fired"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| text(&x["rule"]))
                .collect();
            format!("fired {fired:?}")
        }
        "plan.created" => data["operations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                format!("{} {}", text(&x["op"]), text(&x["target"]))
                    .trim()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(", "),
        "op.applied" => format!("{} ({} ms)", text(&data["summary"]), data["duration_ms"]),
        "op.failed" => format!("{} ({} ms)", text(&data["error"]), data["duration_ms"]),
        "lifecycle.shaped" => text(&data["why"]),
        "lifecycle.changed" => format!(
            "{} -> {}",
            data["from"].as_str().unwrap_or("(new)"),
            text(&data["to"])
        ),
        _ => String::new(),
    }
}

/// Step 5: a new rule-set version as a draft: its tests, the diff, and its impact
/// on everyone the host knows, before anything is published.
async fn rule_set_step(api: &Api, config_path: &Path) -> Result<()> {
    let file = config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("rules-v2.yaml");
    let Ok(document) = std::fs::read_to_string(&file) else {
        return Ok(());
    };
    println!(
        "\n5. Rule-set versions: {} as a draft; its impact before publishing",
        file.display()
    );
    let (status, draft) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/rule-sets",
            Some(&json!({ "document": document, "message": "office badges for Berlin and Lisbon" })),
            None,
        )
        .await?;
    if status != 201 {
        bail!("the draft was refused: {status} {draft}");
    }
    let version = draft["version"]["version"].as_i64().unwrap_or_default();
    println!(
        "   version {version} saved by {}; tests: {}",
        draft["version"]["author"].as_str().unwrap_or(""),
        draft["tests"]["cases"]
            .as_array()
            .map(|c| format!(
                "{} of {} passed",
                c.iter().filter(|x| x["passed"] == true).count(),
                c.len()
            ))
            .unwrap_or_default()
    );
    let (_, diff) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/rule-sets/{version}/diff"),
            None,
            None,
        )
        .await?;
    for line in diff["diff"].as_str().unwrap_or("").lines().filter(|l| {
        (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
    }) {
        println!("   {line}");
    }
    let (status, impact) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/rule-sets/{version}/impact"),
            None,
            None,
        )
        .await?;
    if status != 200 {
        bail!("impact preview failed: {status} {impact}");
    }
    println!("   impact on {} people (nothing written):", impact["people"]);
    for (dest, d) in impact["destinations"].as_object().into_iter().flatten() {
        println!("   {dest}: {}", d["counts"]);
        for p in d["people"].as_array().into_iter().flatten() {
            let changes: Vec<&str> = p["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            println!(
                "     {}: {}",
                p["person_key"].as_str().unwrap_or(""),
                changes.join("; ")
            );
        }
    }
    Ok(())
}
