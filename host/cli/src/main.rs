//! `tenure`: the Tenure host command line.

mod config;
mod demo;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use tenure_capabilities::{MemoryKv, SystemClock};
use tenure_runtime::{PluginManifest, Runtime, RuntimeOptions, Services};

#[derive(Parser)]
#[command(
    name = "tenure",
    version,
    about = "Identity lifecycle engine: HR events in, accounts and access out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with plugin components.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Run sample people through the example rules and the sandbox connector.
    Demo {
        /// Host config file.
        #[arg(long, default_value = "examples/demo/tenure.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Check that a plugin loads: manifest, WIT version, kind, requested capabilities.
    Check { wasm: PathBuf },
    /// Compile every plugin in a folder into the component cache.
    Compile {
        #[arg(default_value = "target/plugins")]
        dir: PathBuf,
        #[arg(long, default_value = "target/component-cache")]
        cache_dir: PathBuf,
    },
}

fn runtime(cache_dir: Option<PathBuf>) -> Result<Runtime> {
    let services = Services::new(Arc::new(MemoryKv::default()), Arc::new(SystemClock))?;
    Ok(Runtime::new(
        RuntimeOptions {
            cache_dir,
            ..RuntimeOptions::default()
        },
        services,
    )?)
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tenure_capabilities::install_crypto_provider();
    match Cli::parse().command {
        Command::Plugins(PluginsCommand::Check { wasm }) => {
            let manifest = PluginManifest::for_component(&wasm)?;
            let version = runtime(None)?.register_file(&wasm)?;
            println!("plugin:       {}", manifest.name);
            println!("version:      {}", version.label);
            println!("kind:         {}", version.kind.as_str());
            println!("wit:          tenure:plugin@{}", version.wit);
            println!("http:         {:?}", manifest.capabilities.http);
            println!("ldap:         {:?}", manifest.capabilities.ldap);
            println!("kv:           {}", manifest.capabilities.kv);
            Ok(())
        }
        Command::Plugins(PluginsCommand::Compile { dir, cache_dir }) => {
            let rt = runtime(Some(cache_dir))?;
            let mut count = 0;
            for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "wasm") {
                    match rt.register_file(&path) {
                        Ok(v) => println!("compiled {} {}", v.manifest.name, v.label),
                        Err(e) => println!("skipped {}: {e}", path.display()),
                    }
                    count += 1;
                }
            }
            if count == 0 {
                bail!("no .wasm files in {}; run plugins/build.sh", dir.display());
            }
            Ok(())
        }
        Command::Demo { config } => demo::run(&config).await,
    }
}
