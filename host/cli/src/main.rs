//! `tenure`: the Tenure host command line.

mod checkpoints;
mod config;
mod demo;
mod host;
mod plugin_test;
mod plugins;
mod reference;
mod rules;
mod scaffold;
mod sources;
mod store_migrate;

/// mimalloc: the host allocates many small, short-lived buffers (JSON, SQL rows, WIT values).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tenure_capabilities::{MemoryKv, SystemClock};
use tenure_pipeline::audit_events::{AdminAuditExported, AdminAuditVerified, AdminSecretSet, AuditEvent};
use tenure_pipeline::event::{EventKind, PersonIn};
use tenure_runtime::{PluginManifest, Runtime, RuntimeOptions, Services};
use tenure_store::AuditFilter;

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
    /// Run the host: the API, the queue workers and the source pollers.
    Serve {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
    },
    /// Run the sample events through the whole flow on a fresh embedded store and show
    /// each step: intake, rules, plan, apply, preview, audit and KPIs.
    Demo {
        #[arg(long, default_value = "examples/demo/tenure.toml")]
        config: PathBuf,
        /// The sample events (API format).
        #[arg(long)]
        events: Option<PathBuf>,
    },
    /// Show what the rules would produce for a person and what each destination
    /// would be asked to do, against live state; writes nothing.
    Preview {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        /// A person record as JSON (the `person` of an event).
        #[arg(long, required_unless_present = "record", conflicts_with = "record")]
        person: Option<PathBuf>,
        /// Or the source record id of a stored event (from `--source`).
        #[arg(long)]
        record: Option<String>,
        /// The event kind (default: `update` for a person, the stored kind for a record).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value = "api")]
        source: String,
    },
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Keep secrets encrypted in the store; reference them as `${secret:NAME}` in the config.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// People's accounts for signing in (the first owner; the rest through the API).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Work with plugin components.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Work with rule sets.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Work with sources.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Describe the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with the store itself.
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy an embedded SQLite store into an empty PostgreSQL database (to grow from one
    /// host to several) and check the copy. Stop the host first. Both sides use the same
    /// master key: TENURE_MASTER_KEY, or the SQLite store's key file.
    Migrate {
        /// `sqlite:PATH` of the store to copy.
        #[arg(long)]
        from: String,
        /// `postgres://user:password@host:port/database` (an empty database).
        #[arg(long)]
        to: String,
        /// The SQLite store's master key file (default: PATH with the extension `key`).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration reference (Markdown), generated from the config types.
    Reference,
    /// Print the JSON Schema of `tenure.toml` (for editors).
    Schema,
    /// Print the API's OpenAPI 3.1 description (what `GET /api/v1/openapi.json` serves).
    Openapi,
}

#[derive(Subcommand)]
enum SourcesCommand {
    /// Poll a source until it has no more pages, from its stored cursor (or `--since-ms`),
    /// with a progress bar; the events are applied by `tenure serve`.
    Backfill {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        source: String,
        /// Start from this time (milliseconds since the epoch) instead of the stored cursor.
        #[arg(long)]
        since_ms: Option<i64>,
    },
    /// Import a file (CSV or JSON) through a source's plugin, as an upload to
    /// `POST /api/v1/sources/{source}/payload` would; the events are applied by `tenure serve`.
    Import {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        source: String,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check a rule-set file with its rules plugin and run its test cases; exits 1
    /// when the plugin refuses it or a case fails.
    Test {
        file: PathBuf,
        /// The rules plugin that runs it.
        #[arg(long, default_value = "rules")]
        plugin: String,
        #[arg(long, default_value = "target/plugins")]
        plugins_dir: PathBuf,
        #[arg(long, default_value = "target/component-cache")]
        cache_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; exits 1 and names the first bad entry if it was edited,
    /// reordered or truncated.
    Verify {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        /// Pass even when the head file is missing (a cut tail then goes unnoticed).
        #[arg(long)]
        allow_missing_head: bool,
        /// A file of signed checkpoints (kept outside the host): the chain must pass through
        /// each one, so nothing up to it was removed or changed.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The public key the checkpoints must be signed with (default: this deployment's).
        #[arg(long, requires = "checkpoint")]
        public_key: Option<String>,
    },
    /// Sign a checkpoint of the chain's head (Ed25519) and write it to `--out`, `--url` or
    /// the config's `[audit_checkpoints]` destinations (standard output when none).
    Checkpoint {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        /// Append it to this file (one JSON line).
        #[arg(long)]
        out: Option<PathBuf>,
        /// POST it to this endpoint (the config's token is used when its URL is the same).
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the public key that verifies this deployment's checkpoints.
    PublicKey {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
    },
    /// After the store refused to open because the audit head file disagrees with the
    /// database: record the database's head again, with the reason, in the audit log.
    AcceptHead {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        /// Why (for example: restored from the backup of 3 March after verify held).
        #[arg(long)]
        reason: String,
    },
    /// Export entries as JSONL or CSV.
    Export {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        destination: Option<String>,
        /// Only entries at or after this time (milliseconds since the epoch).
        #[arg(long)]
        since_ms: Option<i64>,
        #[arg(long)]
        until_ms: Option<i64>,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Store a secret read from standard input.
    Set {
        name: String,
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Make an account whose password is read from standard input (at least 12 characters).
    Add {
        #[arg(long, default_value = "tenure.toml")]
        config: PathBuf,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        login: String,
        /// owner, hr-admin, it-admin, operator or auditor; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<tenure_server::Role>,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Check that a plugin loads: manifest, WIT version, kind, requested capabilities.
    Check {
        wasm: PathBuf,
        /// Keep the compiled component here (only with `TENURE_MASTER_KEY` set).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Compile every plugin in a folder (into the component cache when `TENURE_MASTER_KEY` is set).
    Compile {
        #[arg(default_value = "target/plugins")]
        dir: PathBuf,
        #[arg(long, default_value = "target/component-cache")]
        cache_dir: PathBuf,
    },
    /// Create a plugin project that builds to a component (`./build.sh`) with a working body to change.
    New {
        name: String,
        #[arg(long, value_enum)]
        kind: scaffold::Kind,
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// The folder to create the project in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The Rust SDK (`sdk/rust` of a Tenure checkout); default: this build's own, else crates.io.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a plugin project's fixtures (`DIR/fixtures/*.json`) in the real host: rules fixtures
    /// against the expected accounts, connector fixtures through lookup, plan and apply against
    /// recorded HTTP exchanges.
    Test {
        /// The project folder (with `plugin.toml`).
        dir: PathBuf,
        /// The built component (default: `DIR/dist/NAME.wasm`).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Keep the compiled component here (only with `TENURE_MASTER_KEY` set).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Create a publisher's signing key (Ed25519, mode 0600) and print its public key.
    Keygen {
        /// Where to write the private key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign `x.wasm` with its manifest `x.toml`; writes `x.sig` beside them.
    Sign {
        wasm: PathBuf,
        /// The publisher's key file (from `keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The publisher's name, as tenants list it in `plugin_trust.publishers`.
        #[arg(long)]
        publisher: String,
    },
    /// Upload `x.wasm` (with `x.toml`, and `x.sig` when signed) to a running host's registry.
    Push {
        wasm: PathBuf,
        #[command(flatten)]
        api: plugins::ApiArgs,
    },
    /// List the tenant's plugins and versions on a running host (`*` marks the one it runs).
    List {
        #[command(flatten)]
        api: plugins::ApiArgs,
    },
    /// Run a version beside the one the tenant runs, on everyone, and print what would change
    /// (a rules plugin: desired states; a connector: plans, looked up but never applied).
    Shadow {
        name: String,
        version: String,
        /// Only the first N people.
        #[arg(long)]
        people: Option<usize>,
        #[command(flatten)]
        api: plugins::ApiArgs,
    },
    /// Make a version the one the tenant runs, for jobs that start from now.
    Activate {
        name: String,
        version: String,
        #[command(flatten)]
        api: plugins::ApiArgs,
    },
    /// Go back to a version (default: the one the tenant ran before).
    Rollback {
        name: String,
        version: Option<String>,
        #[command(flatten)]
        api: plugins::ApiArgs,
    },
}

/// A runtime for one-shot commands; it caches compiled components only with
/// `TENURE_MASTER_KEY` set (cached files are authenticated with a key from it).
fn plugin_runtime(cache_dir: Option<PathBuf>) -> Result<Runtime> {
    let services = Services::new(Arc::new(MemoryKv::default()), Arc::new(SystemClock))?;
    let cache_key = tenure_store::crypto::MasterKey::from_env()?
        .map(|master| tenure_runtime::CacheKey(master.component_cache_key()));
    Ok(Runtime::new(
        RuntimeOptions {
            cache_dir,
            cache_key,
            ..RuntimeOptions::default()
        },
        services,
    )?)
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // The demo prints its own story; logs would drown it.
    let default_filter = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "info,wasmtime=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tenure_capabilities::install_crypto_provider();
    match cli.command {
        Command::Serve { config } => {
            let (mut config, store) = host::load_config(&config).await?;
            let listen = config.server.listen.clone();
            let checkpoint_config = config.audit_checkpoints.take();
            if let Some(c) = &checkpoint_config {
                c.destinations()?;
            }
            let host = host::build(config, store.clone()).await?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("server.listen: cannot listen on {listen}"))?;
            tracing::info!(address = %listener.local_addr()?, "tenure is serving");
            let shutdown = host::shutdown_signal();
            let checkpoints = checkpoint_config.map(|c| {
                let shutdown = shutdown.clone();
                tokio::spawn(async move { checkpoints::run_schedule(store, &c, shutdown).await })
            });
            host::run(&host, listener, shutdown).await?;
            if let Some(task) = checkpoints {
                task.await??;
            }
            Ok(())
        }
        Command::Demo { config, events } => demo::run(&config, events).await,
        Command::Preview {
            config,
            tenant,
            person,
            record,
            kind,
            source,
        } => {
            let (config, store) = host::load_config(&config).await?;
            let host = host::build(config, store).await?;
            let kind: Option<EventKind> = kind
                .map(|k| {
                    serde_json::from_value(serde_json::Value::String(k.clone()))
                        .with_context(|| format!("--kind: {k:?} is not an event kind"))
                })
                .transpose()?;
            let (person, kind) = match (person, record) {
                (Some(file), _) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    let person: PersonIn = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a person record", file.display()))?;
                    let kind = kind.unwrap_or(EventKind::Update);
                    (
                        tenure_pipeline::event::validate_person(&source, kind, person)?,
                        kind,
                    )
                }
                (None, Some(record)) => {
                    host.pipeline
                        .stored_person(&tenant, &source, &record, kind)
                        .await?
                }
                (None, None) => bail!("give --person FILE or --record ID"),
            };
            let preview = host.pipeline.preview(&tenant, &source, &person, kind).await?;
            println!("{}", serde_json::to_string_pretty(&preview)?);
            Ok(())
        }
        Command::Audit(AuditCommand::AcceptHead { config, reason }) => {
            host::accept_audit_head_at_open();
            let store = host::open_sqlite_of(&config)?;
            match store.accept_audit_head(&reason, &actor()).await? {
                None => println!("the audit head file agrees with the database; nothing to accept"),
                Some(mismatch) => println!(
                    "recorded the database's audit head again ({mismatch}); audited as audit.head-accepted"
                ),
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Checkpoint { config, out, url }) => {
            let (config, store) = host::load_config(&config).await?;
            let configured = config.audit_checkpoints.as_ref();
            let mut destinations = Vec::new();
            if let Some(out) = out {
                destinations.push(checkpoints::Destination::File(out));
            }
            if let Some(url) = url {
                let token = configured
                    .filter(|c| c.url.as_deref() == Some(url.as_str()))
                    .and_then(|c| c.token.clone());
                destinations.push(checkpoints::http_destination(&url, token)?);
            }
            if destinations.is_empty()
                && let Some(c) = configured
            {
                destinations = c.destinations()?;
            }
            if destinations.is_empty() {
                destinations.push(checkpoints::Destination::Stdout);
            }
            let checkpoint = checkpoints::take(store.as_ref(), &actor(), &destinations).await?;
            eprintln!(
                "audit checkpoint at entry {} signed by {}",
                checkpoint.seq, checkpoint.public_key
            );
            Ok(())
        }
        Command::Audit(AuditCommand::PublicKey { config }) => {
            let (_, store) = host::load_config(&config).await?;
            println!("{}", checkpoints::public_key(store.as_ref())?);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify {
            config,
            allow_missing_head,
            checkpoint,
            public_key,
        }) => {
            let (_, store) = host::load_config(&config).await?;
            let checkpoints = match &checkpoint {
                None => Vec::new(),
                Some(file) => {
                    let trusted = match public_key {
                        Some(k) => k,
                        None => checkpoints::public_key(store.as_ref())?,
                    };
                    checkpoints::read_verified(file, &trusted)?
                }
            };
            let anchors = checkpoints
                .iter()
                .map(|c| tenure_store::audit::AuditAnchor {
                    seq: c.seq,
                    hash: c.head_hash.clone(),
                })
                .collect();
            let report = store.verify_audit_through(anchors).await?;
            if let (Some(last), None) = (checkpoints.iter().max_by_key(|c| c.seq), &report.problem) {
                println!(
                    "{} signed checkpoint(s) hold; the latest covers entries 1 to {}",
                    checkpoints.len(),
                    last.seq
                );
            }
            let verified = AdminAuditVerified {
                entries: report.entries,
                ok: report.ok(),
            };
            store.append_audit(vec![verified.record("*", &actor())]).await?;
            if report.head_file_missing && report.problem.is_none() {
                eprintln!("the audit head file is missing: a cut tail would go unnoticed");
                if !allow_missing_head {
                    std::process::exit(1);
                }
            }
            match &report.problem {
                None => {
                    println!(
                        "audit log intact: {} entries, head {} {}",
                        report.entries, report.head_seq, report.head_hash
                    );
                    Ok(())
                }
                Some(p) => {
                    eprintln!("audit log BROKEN at entry {}: {}", p.seq, p.reason);
                    std::process::exit(1);
                }
            }
        }
        Command::Audit(AuditCommand::Export {
            config,
            format,
            tenant,
            person,
            destination,
            since_ms,
            until_ms,
        }) => {
            let export_format = tenure_store::audit::ExportFormat::parse(&format)
                .filter(|f| *f != tenure_store::audit::ExportFormat::Json)
                .ok_or_else(|| anyhow::anyhow!("--format: must be jsonl or csv"))?;
            let (_, store) = host::load_config(&config).await?;
            let mut filter = AuditFilter {
                tenant: tenant.clone(),
                person_key: person,
                destination,
                since_ms,
                until_ms,
                limit: Some(tenure_pipeline::admin::AUDIT_PAGE),
                ..AuditFilter::default()
            };
            // Page by page to standard output: the whole log is never held in memory.
            let mut writer = tenure_store::audit::ExportWriter::new(export_format);
            let mut out = std::io::stdout().lock();
            loop {
                let page = store.audit(filter.clone()).await?;
                out.write_all(writer.page(&page).as_bytes())?;
                match page.last() {
                    Some(last) if page.len() == tenure_pipeline::admin::AUDIT_PAGE => {
                        filter.after_seq = Some(last.seq)
                    }
                    _ => break,
                }
            }
            out.write_all(writer.finish().as_bytes())?;
            out.flush()?;
            let exported = AdminAuditExported {
                format: &format,
                entries: Some(writer.written()),
            };
            let tenant = tenant.unwrap_or_else(|| "*".into());
            store
                .append_audit(vec![exported.record(&tenant, &actor())])
                .await?;
            Ok(())
        }
        Command::Secrets(SecretsCommand::Set { name, config }) => {
            let (store, _) = host::open_store_of(&config).await?;
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                bail!("no secret on standard input");
            }
            store.put_secret(&name, value).await?;
            let set = AdminSecretSet { name: &name };
            store.append_audit(vec![set.record("*", &actor())]).await?;
            println!("secret {name} stored (encrypted)");
            Ok(())
        }
        Command::Users(UsersCommand::Add {
            config,
            tenant,
            login,
            roles,
            display_name,
        }) => {
            let (store, _) = host::open_store_of(&config).await?;
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let hash = tenure_server::passwords::hash_password(password.trim_end_matches(['\n', '\r']))?;
            let mut audit =
                tenure_store::AuditRecord::new(&tenant, tenure_store::AuditKind::AdminUserCreated, actor());
            audit.data = serde_json::json!({ "login": login, "roles": roles });
            let user = tenure_store::NewUser {
                tenant,
                display_name: display_name.unwrap_or_else(|| login.clone()),
                login,
                roles,
                password_hash: Some(hash),
            };
            let made = tenure_store::AccessStore::create_user(store.as_ref(), user, vec![audit]).await?;
            println!("account {} made in tenant {}", made.login, made.tenant);
            Ok(())
        }
        Command::Store(StoreCommand::Migrate { from, to, key_file }) => {
            let report = store_migrate::run(&from, &to, key_file).await?;
            for (table, rows) in &report.tables {
                println!("{table:>20}  {rows} rows");
            }
            println!(
                "copied and checked: every table's rows, and the audit chain up to entry {} ({})",
                report.audit_head_seq, report.audit_head_hash
            );
            Ok(())
        }
        Command::Config(ConfigCommand::Reference) => {
            print!("{}", reference::markdown());
            Ok(())
        }
        Command::Config(ConfigCommand::Schema) => print_document(&reference::schema()),
        Command::Config(ConfigCommand::Openapi) => print_document(&tenure_server::openapi()),
        Command::Plugins(PluginsCommand::Check { wasm, cache_dir }) => {
            let manifest = PluginManifest::for_component(&wasm)?;
            let version = plugin_runtime(cache_dir)?.register_file(&wasm)?;
            println!("plugin:       {}", manifest.name);
            println!("version:      {}", version.label);
            println!("kind:         {}", version.kind.as_str());
            println!("wit:          tenure:plugin@{}", version.wit);
            println!("http:         {:?}", manifest.capabilities.http);
            println!("ldap:         {:?}", manifest.capabilities.ldap);
            println!("kv:           {}", manifest.capabilities.kv);
            Ok(())
        }
        Command::Sources(SourcesCommand::Backfill {
            config,
            tenant,
            source,
            since_ms,
        }) => sources::backfill(&config, &tenant, &source, since_ms).await,
        Command::Sources(SourcesCommand::Import {
            config,
            tenant,
            source,
            file,
        }) => sources::import(&config, &tenant, &source, &file).await,
        Command::Rules(RulesCommand::Test {
            file,
            plugin,
            plugins_dir,
            cache_dir,
        }) => {
            let wasm = plugins_dir.join(format!("{plugin}.wasm"));
            rules::test(plugin_runtime(Some(cache_dir))?, &file, &wasm).await
        }
        Command::Plugins(PluginsCommand::New {
            name,
            kind,
            lang,
            dir,
            sdk,
        }) => {
            let project = scaffold::create(&name, kind, lang, &dir, sdk)?;
            println!(
                "created {}: build it with {}/build.sh",
                project.display(),
                project.display()
            );
            Ok(())
        }
        Command::Plugins(PluginsCommand::Test { dir, wasm, cache_dir }) => {
            plugin_test::run(plugin_runtime(cache_dir)?, &dir, wasm).await
        }
        Command::Plugins(PluginsCommand::Keygen { out }) => plugins::keygen(&out),
        Command::Plugins(PluginsCommand::Sign { wasm, key, publisher }) => {
            plugins::sign(&wasm, &key, &publisher).map(|_| ())
        }
        Command::Plugins(PluginsCommand::Push { wasm, api }) => plugins::push(&api, &wasm).await,
        Command::Plugins(PluginsCommand::List { api }) => plugins::list(&api).await,
        Command::Plugins(PluginsCommand::Shadow {
            name,
            version,
            people,
            api,
        }) => plugins::shadow(&api, &name, &version, people).await,
        Command::Plugins(PluginsCommand::Activate { name, version, api }) => {
            plugins::switch(&api, &name, Some(&version), false).await
        }
        Command::Plugins(PluginsCommand::Rollback { name, version, api }) => {
            plugins::switch(&api, &name, version.as_deref(), true).await
        }
        Command::Plugins(PluginsCommand::Compile { dir, cache_dir }) => {
            let rt = plugin_runtime(Some(cache_dir))?;
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
    }
}

/// Prints a JSON document; a reader that stops early (`| head`) is not an error.
fn print_document(document: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{document:#}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
