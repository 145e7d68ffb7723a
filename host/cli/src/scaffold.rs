//! `tenure plugins new`: a plugin project that builds to a component on the first try, with the
//! manifest, the toolchain and the build settings Tenure's own plugins use, and a working body
//! to change (a connector keeping accounts in its key-value store, or a rules engine mapping a
//! person to one account per destination).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// What kind of plugin to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Connector,
    Rules,
}

/// The language of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
}

/// The SDK next to this binary's sources, when they are there (a checkout of Tenure).
fn sdk_in_checkout() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust");
    sdk.join("Cargo.toml")
        .exists()
        .then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// Creates `dir/name` (or `dir` itself with `here`); returns the project's folder.
pub fn create(name: &str, kind: Kind, lang: Lang, dir: &Path, sdk: Option<PathBuf>) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("name {name:?}: use lowercase letters, digits and '-', starting with a letter");
    }
    let Lang::Rust = lang;
    let project = dir.join(name);
    if project.exists() {
        bail!("{} exists; choose another name or folder", project.display());
    }
    let sdk_dependency = match sdk.or_else(sdk_in_checkout) {
        Some(path) => format!("tenure-sdk = {{ path = {:?} }}", path.display().to_string()),
        None => "tenure-sdk = \"0.1\"".to_string(),
    };
    let files: [(&str, String); 7] = [
        ("Cargo.toml", CARGO_TOML.replace("{sdk}", &sdk_dependency)),
        ("rust-toolchain.toml", RUST_TOOLCHAIN.to_string()),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        ("plugin.toml", manifest(kind)),
        (
            "src/lib.rs",
            match kind {
                Kind::Connector => CONNECTOR_RS,
                Kind::Rules => RULES_RS,
            }
            .to_string(),
        ),
        ("build.sh", BUILD_SH.to_string()),
        ("README.md", README.to_string()),
    ];
    for (path, text) in files {
        let path = project.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(
            &path,
            text.replace("{name}", name)
                .replace("{crate}", &name.replace('-', "_")),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(project.join("build.sh"), std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(project)
}

fn manifest(kind: Kind) -> String {
    match kind {
        Kind::Connector => "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"connector\"\n\
            description = \"{name}: accounts kept in its key-value store (replace with your system)\"\n\n\
            [capabilities]\nkv = true\n# http = [\"my-app\"]   # named connections the tenant grants\n"
            .to_string(),
        Kind::Rules => "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"rules\"\n\
            description = \"{name}: one account per destination from the person's record\"\n"
            .to_string(),
    }
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
{sdk}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A project of its own, outside any workspace.
[workspace]
"#;

const RUST_TOOLCHAIN: &str = r#"# The toolchain Tenure's plugins are built with, and the WebAssembly target.
[toolchain]
channel = "1.99.1"
profile = "minimal"
targets = ["wasm32-wasip2"]
"#;

const CARGO_CONFIG: &str = r#"[build]
target = "wasm32-wasip2"

# A 128 KiB shadow stack (Rust's wasm default is 1 MiB): a fresh instance touches less memory.
[target.wasm32-wasip2]
rustflags = ["-C", "link-arg=-zstack-size=131072"]
"#;

const BUILD_SH: &str = r#"#!/usr/bin/env bash
# Builds the component into dist/{name}.wasm with its manifest beside it (dist/{name}.toml):
# then `tenure plugins check dist/{name}.wasm`, sign and push it.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release
mkdir -p dist
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{crate}.wasm" dist/{name}.wasm
cp plugin.toml dist/{name}.toml
echo "built dist/{name}.wasm"
"#;

const README: &str = r#"# {name}

A Tenure plugin. Change `src/lib.rs`, then:

```sh
./build.sh                                              # dist/{name}.wasm and dist/{name}.toml
tenure plugins check dist/{name}.wasm                   # kind, contract version, capabilities
tenure plugins sign dist/{name}.wasm --key publisher.key --publisher you
tenure plugins push dist/{name}.wasm                    # to a running host (TENURE_URL, TENURE_TOKEN)
tenure plugins activate {name} <version>
```

The SDK's guide is docs/plugin-authoring.md in Tenure's repository.
"#;

const CONNECTOR_RS: &str = r#"//! {name}: a connector keeping accounts in its key-value store, by
//! employeeId. Replace the bodies with calls to your system
//! (`tenure_sdk::http::Client` on a named connection).

use tenure_sdk::connector::OperationKind::{Create, Disable, Update};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::kv_json::{first, put, require};
use tenure_sdk::prelude::*;

struct Plugin;

impl Connector for Plugin {
    /// The plugin's settings (`[tenants.T.plugins.{name}.settings]`), typed.
    type Settings = ();
    const OPERATIONS: &'static [OperationKind] = &[Create, Update, Disable];
    const MATCHING_KEYS: &'static [&'static str] = &["employeeId"];

    fn new(_: ()) -> Result<Self, PluginError> {
        Ok(Plugin)
    }

    fn lookup(&mut self, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        Ok(first(keys.iter().map(|k| &k.value))?.into_iter().collect())
    }

    fn create(&mut self, d: DesiredAccount) -> Result<Outcome, PluginError> {
        let id = d.attribute("employeeId").and_then(Value::to_text);
        let id = id.ok_or(invalid_input("employeeId", "required"))?;
        put(&id, &Account::from_desired(&id, d)).map(|_| Outcome::created(id, "created"))
    }

    fn update(&mut self, id: String, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
        let mut account: Account = require(&id)?;
        account.set_attributes(changes);
        put(&id, &account).map(|_| Outcome::done("updated"))
    }

    fn disable(&mut self, id: String) -> Result<Outcome, PluginError> {
        let mut account: Account = require(&id)?;
        account.enabled = false;
        put(&id, &account).map(|_| Outcome::done("disabled"))
    }
}

tenure_sdk::connector_plugin!(Plugin);
"#;

const RULES_RS: &str = r#"//! {name}: rules giving each destination one account named after
//! the person, in a group named after their department. Replace
//! `evaluate` with your own rules (the rule-set document arrives in `new`).

use tenure_sdk::prelude::*;
use tenure_sdk::rules::{Context, Evaluation, TraceEntry};

struct Plugin;

impl Rules for Plugin {
    type Settings = ();

    fn new(_rule_set: String, _: ()) -> Result<Self, PluginError> {
        Ok(Plugin)
    }

    fn evaluate(&mut self, person: Person, context: Context) -> Result<Evaluation, PluginError> {
        let id = person.ids.first().map(|i| i.id.clone()).unwrap_or_default();
        let name = [person.given_name.as_deref(), person.family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let department = person.department.clone().unwrap_or_else(|| "Staff".into());
        let mut evaluation = Evaluation { accounts: vec![], trace: vec![] };
        for destination in context.destinations {
            evaluation.accounts.push(DesiredAccount {
                destination: destination.clone(),
                attributes: vec![
                    Attribute::new("employeeId", id.as_str()),
                    Attribute::new("displayName", name.as_str()),
                ],
                container: None,
                groups: vec![department.clone()],
                licenses: vec![],
                app_assignments: vec![],
                enabled: true,
                expires_at: None,
                tickets: vec![],
            });
            evaluation.trace.push(TraceEntry {
                destination,
                rule: "everyone".into(),
                matched: true,
                reason: "every person gets one account".into(),
                inputs: vec![],
                contributed: vec![format!("group {department}")],
            });
        }
        Ok(evaluation)
    }
}

tenure_sdk::rules_plugin!(Plugin);
"#;
