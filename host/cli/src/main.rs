//! `efile-bridge`: the command line of the host.
//!
//! | command | what it does |
//! |---|---|
//! | `serve` | HTTP API and drop folder on the configured data directory |
//! | `ingest PATH...` | runs files or folders of messages through the pipeline in-process |
//! | `plugin new NAME` | a new adapter crate that builds and passes `plugin test` as it is |
//! | `plugin build DIR` / `plugin test DIR` | adapter author tooling (see `efile-bridge-devkit`) |
//! | `plugin pack/keygen/sign` | signed adapter packages (see `efile-bridge-package`) |
//! | `plugin install/list/activate/rollback/remove` | the adapter lifecycle per tenant, journaled |
//! | `files list` / `files show` | a tenant's citizens and one citizen's e-file |
//! | `check` | validates config, adapters and storage without processing anything |
//! | `verify` | recomputes the Merkle journal, checkpoints, record versions and payloads |
//! | `receipt`, `verify-receipt` | export a message's receipt; check one offline with the public key |
//! | `checkpoint`, `public-key` | sign a checkpoint now; export the installation's public key |
//! | `retention run`, `hold add/remove/list` | deletion with protocol, legal holds |
//! | `review list/show/assign/new-citizen` | clerk decisions on ambiguous citizen matches |
//! | `deadletter list/show/redeliver/discard` | deliveries that failed for good |
//! | `plugin shadow`, `replay` | a candidate adapter beside what was filed; re-mapping journaled messages |
//!
//! Every command reads the operator config (`--config`, default `efile-bridge.toml`); its
//! relative paths are relative to the config file. Logs go to stderr, filtered by
//! `EFILE_BRIDGE_LOG` (default `info` for `serve`, `warn` for the other commands). Exit codes:
//! 0 ok, 1 a message or fixture failed, 2 the command could not run (bad config, unreadable
//! file, ...).

mod deadletter;
mod files;
mod ingest;
mod journal;
mod plugin;
mod review;
mod scaffold;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use efile_bridge_pipeline::{Config, Pipeline};

#[derive(Parser)]
#[command(name = "efile-bridge", version, about = "XÖV messages into revision-safe citizen e-files")]
struct Cli {
    /// Operator config file.
    #[arg(long, global = true, env = "EFILE_BRIDGE_CONFIG", default_value = "efile-bridge.toml")]
    config: PathBuf,
    /// Overrides `data_dir` from the config.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the HTTP API and watches the drop folder until Ctrl-C or SIGTERM.
    Serve {
        /// Overrides `listen` from the config.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Submits message files (or every `.xml` in folders) and waits until they are processed.
    Ingest {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Adapter author tooling.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Inspects citizens' e-files.
    #[command(subcommand)]
    Files(files::FilesCommand),
    /// Validates the config, loads every adapter and opens the storage; processes nothing.
    Check,
    /// Recomputes the whole journal and checks every checkpoint, record version and payload.
    Verify {
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Writes the receipt (entry, inclusion proof, signed checkpoint) of a message.
    Receipt {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// Message UUID.
        uuid: String,
    },
    /// Checks a receipt offline with nothing but the installation's public key.
    VerifyReceipt {
        /// Receipt file (JSON, from `receipt` or `GET /v1/messages/{uuid}/proof`).
        receipt: PathBuf,
        /// Public key file (from `public-key` or `GET /v1/public-key`).
        #[arg(long)]
        public_key: PathBuf,
        /// The message itself: also checks that exactly these bytes were accepted.
        #[arg(long)]
        message: Option<PathBuf>,
    },
    /// Signs a checkpoint now (if the journal grew) and prints the latest.
    Checkpoint,
    /// Prints the installation's public key (JSON), for auditors.
    PublicKey,
    /// Deletion at the end of retention periods.
    #[command(subcommand)]
    Retention(journal::RetentionCommand),
    /// Legal holds: a held citizen's records are never deleted.
    #[command(subcommand)]
    Hold(journal::HoldCommand),
    /// Maps a tenant's journaled messages again with an installed adapter; what differs becomes
    /// new record versions (nothing is overwritten). `--dry-run` prints the differences.
    Replay {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// NAME@VERSION of an installed adapter.
        #[arg(long)]
        adapter: String,
        /// From this journal index (inclusive) or time (received at or after; RFC 3339 UTC or
        /// a prefix such as 2026-11-01).
        #[arg(long)]
        from: Option<String>,
        /// To this journal index or time (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// Only this message type code.
        #[arg(long = "type")]
        message_type: Option<String>,
        /// Write nothing; print what would change.
        #[arg(long)]
        dry_run: bool,
        /// Who (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Deliveries that failed for good: list, show, redeliver, discard.
    #[command(subcommand, name = "deadletter")]
    DeadLetter(deadletter::DeadLetterCommand),
    /// Clerk review of records that matched several citizens.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Prints the JSON Schema of the e-file record model.
    Schema,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Makes a new random token; prints it once, and the hash line for the config.
    New,
    /// Prints the config hash of an existing token (read from stdin).
    Hash,
}

/// A failure that has already been reported; the process exits with 1.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failures reported above")
    }
}

impl std::error::Error for Reported {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A host logs what it does; a one-shot command prints its result and only warns on stderr.
    let default = if matches!(cli.command, Command::Serve { .. }) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EFILE_BRIDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        // No colour codes in files and journald, only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Reported>() => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(&cli.config)?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve { listen } => {
            let mut config = load_config(&cli)?;
            if let Some(addr) = listen {
                config.listen = *addr;
                config.validate().map_err(|e| anyhow::anyhow!("with --listen {addr}: {e}"))?;
            }
            tokio_runtime()?.block_on(serve(config, cli.config.clone(), cli.data_dir.clone()))
        }
        Command::Ingest { paths, quiet } => {
            let config = load_config(&cli)?;
            tokio_runtime()?.block_on(ingest::run(config, paths, *quiet))
        }
        Command::Plugin(cmd) if plugin::needs_config(cmd) => plugin::lifecycle(&load_config(&cli)?, cmd),
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Files(cmd) => files::run(&load_config(&cli)?, cmd),
        Command::Check => check(&load_config(&cli)?),
        Command::Verify { quiet } => journal::verify(&load_config(&cli)?, *quiet),
        Command::Receipt { tenant, uuid } => journal::receipt(&load_config(&cli)?, tenant, uuid),
        Command::VerifyReceipt { receipt, public_key, message } => {
            journal::verify_receipt(receipt, public_key, message.as_deref())
        }
        Command::Checkpoint => journal::checkpoint(&load_config(&cli)?),
        Command::PublicKey => journal::public_key(&load_config(&cli)?),
        Command::Retention(cmd) => journal::retention(&load_config(&cli)?, cmd),
        Command::Hold(cmd) => journal::hold(&load_config(&cli)?, cmd),
        Command::Review(cmd) => review::run(&load_config(&cli)?, cmd),
        Command::DeadLetter(cmd) => deadletter::run(&load_config(&cli)?, cmd),
        Command::Replay { tenant, adapter, from, to, message_type, dry_run, by, quiet } => {
            let config = load_config(&cli)?;
            let (name, version) = adapter
                .split_once('@')
                .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                .with_context(|| format!("`{adapter}` is not NAME@VERSION"))?;
            // A number is a journal index, anything else a time.
            let bound = |v: &Option<String>| match v.as_deref().map(str::trim) {
                None => (None, None),
                Some(s) => match s.parse::<u64>() {
                    Ok(i) => (Some(i), None),
                    Err(_) => (None, Some(s.to_owned())),
                },
            };
            let ((from_index, from_time), (to_index, to_time)) = (bound(from), bound(to));
            let spec = efile_bridge_pipeline::replay::ReplaySpec {
                messages: efile_bridge_store::MessageQuery {
                    message_type: message_type.clone(),
                    from_index: from_index.unwrap_or(0),
                    to_index: to_index.unwrap_or(u64::MAX),
                    from_time,
                    to_time,
                    ..efile_bridge_store::MessageQuery::all(tenant)
                },
                name: name.to_owned(),
                version: version.to_owned(),
                dry_run: *dry_run,
                by: review::operator(by.as_ref())?,
            };
            let store = efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)
                .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
            let runtime = efile_bridge_runtime::Runtime::new(efile_bridge_runtime::RuntimeConfig {
                cache_dir: Some(config.data_dir.join("cache")),
                ..efile_bridge_runtime::RuntimeConfig::default()
            })?;
            let bar = if *quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos} messages replayed ({per_sec})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            let stats = efile_bridge_pipeline::replay::run(&config, &runtime, &store, &spec, &|n| bar.set_position(n))
                .map_err(anyhow::Error::msg)?;
            bar.finish_and_clear();
            for e in &stats.differences {
                println!("{} {}: {}", e.message_uuid, e.message_type, e.outcome);
                for c in &e.changes {
                    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
                    println!("    {}: {} -> {}", c.path, show(&c.filed), show(&c.candidate));
                }
            }
            println!(
                "{} {} message(s) with {adapter} in {:.2} s ({:.0} msg/s): {} record(s) unchanged, {} new version(s), {} new document(s), {} message(s) failed",
                if *dry_run { "dry run:" } else { "replayed" },
                stats.messages,
                stats.seconds,
                stats.messages as f64 / stats.seconds.max(1e-9),
                stats.unchanged,
                stats.new_versions,
                stats.new_documents,
                stats.failed
            );
            Ok(())
        }
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&efile_bridge_model::record_schema())?);
            Ok(())
        }
        Command::Token(TokenCommand::New) => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let token = format!("ebt_{}", hex::encode(bytes));
            println!("token:  {token}");
            println!("config: \"sha256:{}\"", hex::encode(efile_bridge_pipeline::config::token_hash(&token)));
            eprintln!("give the token to the sender; put only the config line (the hash) into efile-bridge.toml");
            Ok(())
        }
        Command::Token(TokenCommand::Hash) => {
            let mut token = String::new();
            std::io::stdin().read_line(&mut token).context("cannot read the token from stdin")?;
            println!("\"sha256:{}\"", hex::encode(efile_bridge_pipeline::config::token_hash(token.trim())));
            Ok(())
        }
    }
}

async fn serve(config: Config, config_path: PathBuf, data_dir_override: Option<PathBuf>) -> anyhow::Result<()> {
    let listen = config.listen;
    let drop_folder = config.drop_folder();
    let data_dir = config.data_dir.clone();
    let options = efile_bridge_server::http::Options::from_config(&config.http).map_err(|e| anyhow::anyhow!(e))?;
    let tls = options.tls.is_some();
    let pipeline = Arc::new(Pipeline::start(config)?);
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr().unwrap_or(listen);
    tracing::info!(listen = %bound, tls, data_dir = %data_dir.display(), drop_folder = %drop_folder.display(), "efile-bridge serving");
    let watcher = tokio::spawn(efile_bridge_server::drop_folder::run(
        pipeline.clone(),
        drop_folder,
        std::time::Duration::from_millis(500),
    ));
    let reloader = tokio::spawn(reload_on_sighup(pipeline.clone(), config_path, data_dir_override));
    efile_bridge_server::http::serve(pipeline, listener, options, shutdown_signal()).await;
    watcher.abort();
    reloader.abort();
    tracing::info!("efile-bridge stopped");
    Ok(())
}

/// Reloads the config file on SIGHUP: tenants, tokens, adapters and limits change without a
/// restart. A config that does not load is reported and the running one stays.
async fn reload_on_sighup(pipeline: Arc<Pipeline>, path: PathBuf, data_dir: Option<PathBuf>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; config reload needs a restart");
            return;
        };
        while hup.recv().await.is_some() {
            let loaded = Config::load(&path).map(|mut c| {
                if let Some(d) = &data_dir {
                    c.data_dir = d.clone();
                }
                c
            });
            match loaded {
                Err(e) => tracing::error!(error = %e, "config reload refused; the running config stays"),
                Ok(config) => match pipeline.reload(config).await {
                    Ok(warnings) => {
                        for w in warnings {
                            tracing::warn!("{w}");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "config reload refused; the running config stays"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (pipeline, path, data_dir);
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn check(config: &Config) -> anyhow::Result<()> {
    let runtime = efile_bridge_runtime::Runtime::new(efile_bridge_runtime::RuntimeConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        ..Default::default()
    })?;
    println!("config ok: {} tenant(s), {} adapter(s)", config.tenants.len(), config.adapters.len());
    let mut failed = false;
    for a in &config.adapters {
        let loaded = std::fs::read(&a.component)
            .map_err(|e| format!("cannot read {}: {e}", a.component.display()))
            .and_then(|bytes| runtime.load(&bytes).map_err(|e| e.to_string()));
        match loaded {
            Ok(adapter) if adapter.info().name == a.name => {
                let info = adapter.info();
                println!("adapter `{}` {} ok: {} message type(s)", info.name, info.version, info.handles.len());
            }
            Ok(adapter) => {
                failed = true;
                eprintln!("adapter `{}`: the component calls itself `{}`", a.name, adapter.info().name);
            }
            Err(e) => {
                failed = true;
                eprintln!("adapter `{}`: {e}", a.name);
            }
        }
    }
    let store = efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    if efile_bridge_store::Storage::healthy(&store) {
        println!("storage ok: {}", config.data_dir.display());
    } else {
        failed = true;
        eprintln!("storage in {} is not writable", config.data_dir.display());
    }
    if failed { Err(Reported.into()) } else { Ok(()) }
}
