//! `tenure plugins keygen | sign | push | list | shadow | activate | rollback`: a publisher's key and
//! signatures, and the registry of a running host, reached through its API (so the host swaps
//! the version at once and audits who did it).

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::Args;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenure_registry::{PluginSignature, SigningKey};

/// Where the host's API is and the IT token to call it with.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// The host's base URL.
    #[arg(long, env = "TENURE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An IT token of the tenant.
    #[arg(long, env = "TENURE_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Writes a new publisher key (mode 0600) and prints its public key.
pub fn keygen(out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{} exists; a key is never overwritten", out.display());
    }
    let (key, text) = SigningKey::generate()?;
    write_private(out, &text)?;
    println!("private key:  {} (keep it secret)", out.display());
    println!("public key:   {}", key.public_key_base64());
    println!(
        "trust it with [tenants.T.plugin_trust.publishers] NAME = \"{}\"",
        key.public_key_base64()
    );
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The component, its manifest beside it (`x.toml`) and its signature if any (`x.sig`).
fn read_plugin(wasm: &Path) -> Result<(Vec<u8>, String, Option<PluginSignature>)> {
    let component = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let manifest_path = wasm.with_extension("toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read the manifest {}", manifest_path.display()))?;
    let sig_path = wasm.with_extension("sig");
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a plugin signature", sig_path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("cannot read {}: {e}", sig_path.display()),
    };
    Ok((component, manifest, signature))
}

/// Signs `x.wasm` with its manifest as `publisher`; writes `x.sig` beside them.
pub fn sign(wasm: &Path, key: &Path, publisher: &str) -> Result<PathBuf> {
    let key_text = std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    let key = SigningKey::from_pkcs8_base64(&key_text).with_context(|| format!("{}", key.display()))?;
    let (component, manifest, _) = read_plugin(wasm)?;
    let parsed =
        tenure_runtime::PluginManifest::parse(&wasm.with_extension("toml").display().to_string(), &manifest)?;
    let signature = key.sign(publisher, &parsed.name, &component, &manifest);
    let out = wasm.with_extension("sig");
    std::fs::write(&out, serde_json::to_string_pretty(&signature)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("signed {} as {publisher}: {}", parsed.name, out.display());
    Ok(out)
}

/// How long a command keeps sending a throttled call again.
const MAX_THROTTLED: Duration = Duration::from_secs(300);

async fn call(api: &ApiArgs, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()?;
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let mut request = client.request(method, &url).bearer_auth(&api.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    // A throttled call (another upload of the tenant compiling, a shadow running) is sent
    // again after the Retry-After the host gives, for up to a few minutes.
    let mut waited = Duration::ZERO;
    let response = loop {
        let attempt = request.try_clone().context("the request cannot be sent again")?;
        let response = attempt
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.clamp(1, 60)));
        match retry_after {
            Some(wait)
                if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS && waited < MAX_THROTTLED =>
            {
                tokio::time::sleep(wait).await;
                waited += wait;
            }
            _ => break response,
        }
    };
    let status = response.status();
    let text = response.text().await?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let field = value["error"]["field"].as_str().unwrap_or("?");
        let reason = value["error"]["reason"]
            .as_str()
            .map(str::to_string)
            .unwrap_or(value.to_string());
        bail!("{status}: {field}: {reason}");
    }
    Ok(value)
}

/// Uploads `x.wasm` (with `x.toml` and `x.sig`) to the tenant's registry.
pub async fn push(api: &ApiArgs, wasm: &Path) -> Result<()> {
    let (component, manifest, signature) = read_plugin(wasm)?;
    let body = json!({
        "manifest": manifest,
        "component": base64::engine::general_purpose::STANDARD.encode(&component),
        "signature": signature,
    });
    let answer = call(api, reqwest::Method::POST, "/api/v1/plugins", Some(body)).await?;
    let v = &answer["version"];
    let state = if answer["new"].as_bool() == Some(true) {
        "uploaded"
    } else {
        "already uploaded"
    };
    println!(
        "{state} {} {} (signer: {}); activate with: tenure plugins activate {} {}",
        v["name"].as_str().unwrap_or_default(),
        v["version"].as_str().unwrap_or_default(),
        v["signer"].as_str().unwrap_or("none"),
        v["name"].as_str().unwrap_or_default(),
        v["version"].as_str().unwrap_or_default(),
    );
    Ok(())
}

/// Prints the tenant's plugins and their versions (the running one marked).
pub async fn list(api: &ApiArgs) -> Result<()> {
    let answer = call(api, reqwest::Method::GET, "/api/v1/plugins", None).await?;
    for plugin in answer["plugins"].as_array().into_iter().flatten() {
        println!(
            "{} ({})",
            plugin["name"].as_str().unwrap_or_default(),
            plugin["kind"].as_str().unwrap_or_default()
        );
        for v in plugin["versions"].as_array().into_iter().flatten() {
            println!(
                "  {} {:<24} {:<8} signer {:<10} by {}",
                if v["active"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                },
                v["version"].as_str().unwrap_or_default(),
                v["offered_to"].as_str().unwrap_or_default(),
                v["signer"].as_str().unwrap_or("-"),
                v["uploaded_by"].as_str().unwrap_or_default(),
            );
        }
    }
    Ok(())
}

/// Makes `version` the one the tenant runs, or rolls back (to `version`, or the one before).
pub async fn switch(api: &ApiArgs, name: &str, version: Option<&str>, rollback: bool) -> Result<()> {
    let (path, body) = if rollback {
        (
            format!("/api/v1/plugins/{name}/rollback"),
            json!({ "version": version }),
        )
    } else {
        let Some(version) = version else {
            bail!("give the version to activate (tenure plugins list shows them)");
        };
        (
            format!("/api/v1/plugins/{name}/activate"),
            json!({ "version": version }),
        )
    };
    let answer = call(api, reqwest::Method::POST, &path, Some(body)).await?;
    println!(
        "{name}: {} -> {} (jobs that start from now run it)",
        answer["previous"].as_str().unwrap_or_default(),
        answer["version"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// Runs `version` beside the one the tenant runs (plan-only for a connector) and prints the
/// report's summary; the whole report is kept on the host (`GET /api/v1/plugins/NAME/shadows`).
pub async fn shadow(api: &ApiArgs, name: &str, version: &str, people: Option<usize>) -> Result<()> {
    let body = json!({ "version": version, "people": people });
    let path = format!("/api/v1/plugins/{name}/shadow");
    let answer = call(api, reqwest::Method::POST, &path, Some(body)).await?;
    let report = &answer["report"];
    let against = report["against"].as_str().unwrap_or("nothing");
    println!(
        "{name} {version} against {against}: {} people (report {})",
        report["people"], answer["report_id"]
    );
    match report["kind"].as_str() {
        Some("connector") => {
            println!(
                "plans compared: {}, the same: {}, different: {}, candidate errors: {}",
                report["compared"], report["same"], report["different"], report["candidate_errors"]
            );
            for d in report["differences"].as_array().into_iter().flatten().take(20) {
                println!(
                    "  {} {}: {} {} -> {} {}",
                    d["person_key"].as_str().unwrap_or_default(),
                    d["destination"].as_str().unwrap_or_default(),
                    d["active"]["found"].as_str().unwrap_or_default(),
                    d["active"]["operations"],
                    d["candidate"]["found"].as_str().unwrap_or_default(),
                    d["candidate"]["operations"]
                );
            }
        }
        _ => {
            for (destination, impact) in report["destinations"].as_object().into_iter().flatten() {
                println!("  {destination}: {}", impact["counts"]);
            }
        }
    }
    Ok(())
}
