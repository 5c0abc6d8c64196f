//! `efile-bridge plugin`: scaffold, build and test adapters from source; pack, sign and install
//! them; switch tenants between installed versions.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use efile_bridge_devkit::FixtureOutcome;
use efile_bridge_package::{Manifest, PublisherKey, Signature};
use efile_bridge_pipeline::Config;
use efile_bridge_runtime::{Runtime, RuntimeConfig};
use efile_bridge_store::{Storage, Store};

use crate::Reported;

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
    /// Creates an adapter crate NAME that builds and passes `plugin test` as it is: a 0201
    /// mapping, one golden fixture and a README with the next steps.
    New {
        /// Adapter and package name: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// Folder to create (must not exist or be empty). Default: ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The `efile-bridge-sdk` crate folder. Default: the SDK of the source tree this binary
        /// was built from.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Builds the adapter crate in DIR into a `wasm32-wasip2` component.
    Build {
        /// Adapter crate folder.
        dir: PathBuf,
        /// Cargo target folder for adapter builds.
        #[arg(long, default_value = "target/adapters")]
        target_dir: PathBuf,
    },
    /// Builds the adapter and runs its golden fixtures in the sandbox. `BLESS=1` rewrites them.
    Test {
        /// Adapter crate folder.
        dir: PathBuf,
        /// Cargo target folder for adapter builds.
        #[arg(long, default_value = "target/adapters")]
        target_dir: PathBuf,
    },
    /// Builds the adapter and writes the package NAME-VERSION.efpkg (manifest + component).
    Pack {
        /// Adapter crate folder.
        dir: PathBuf,
        /// Who publishes it (recorded in the manifest).
        #[arg(long)]
        author: String,
        /// Output folder.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Cargo target folder for adapter builds.
        #[arg(long, default_value = "target/adapters")]
        target_dir: PathBuf,
    },
    /// Makes a publisher key pair: KEY (private, keep it safe) and KEY.pub (for operators).
    Keygen {
        /// Private key file to write.
        key: PathBuf,
    },
    /// Signs a package with a publisher key: writes PACKAGE.sig.
    Sign {
        /// Package file.
        package: PathBuf,
        /// Private key file (from `plugin keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Verifies a signed package against the config's trusted publishers and installs it.
    Install {
        /// Package file; its signature is PACKAGE.sig unless --signature is given.
        package: PathBuf,
        /// Detached signature file.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Who installs (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Installed adapters, and per tenant what is active and what was before.
    List {
        /// Only this tenant's switches.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Makes NAME@VERSION active for a tenant (all message types it handles, or one).
    Activate {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// NAME@VERSION.
        adapter: String,
        /// Only this message type code.
        #[arg(long = "type")]
        message_type: Option<String>,
        /// Who (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Undoes the tenant's latest switch.
    Rollback {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// Who (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Runs an installed candidate on a tenant's last messages beside what was filed; stores
    /// nothing, prints per message identical / differs (every changed field) / failed.
    /// `--live` runs it beside the active adapter on new messages instead (see `--report`).
    Shadow {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// NAME@VERSION of the installed candidate.
        #[arg(required_unless_present_any = ["stop", "report"])]
        adapter: Option<String>,
        /// Start a live shadow run on new messages (a running host picks it up within a second).
        #[arg(long, conflicts_with_all = ["stop", "report"])]
        live: bool,
        /// Stop the tenant's live shadow run.
        #[arg(long, conflicts_with = "report")]
        stop: bool,
        /// Print the live shadow run's latest comparisons (`--last` of them).
        #[arg(long)]
        report: bool,
        /// Who (recorded in the journal for --live and --stop). Default: the login name.
        #[arg(long)]
        by: Option<String>,
        /// How many of the latest messages.
        #[arg(long, default_value_t = 100)]
        last: u32,
        /// Only this message type code.
        #[arg(long = "type")]
        message_type: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Removes an installed version no tenant uses.
    Remove {
        /// NAME@VERSION.
        adapter: String,
        /// Who (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))
}

fn split(adapter: &str) -> anyhow::Result<(&str, &str)> {
    adapter
        .split_once('@')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .with_context(|| format!("`{adapter}` is not NAME@VERSION"))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The lifecycle commands, which need the operator config.
pub(crate) fn lifecycle(config: &Config, cmd: &PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::Install { package, signature, by } => {
            let bytes = read(package)?;
            let sig_path = signature.clone().unwrap_or_else(|| {
                let mut p = package.clone().into_os_string();
                p.push(".sig");
                PathBuf::from(p)
            });
            let sig: Option<Signature> = match std::fs::read(&sig_path) {
                Ok(text) => Some(
                    serde_json::from_slice(&text)
                        .with_context(|| format!("{}: not a signature file", sig_path.display()))?,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && signature.is_none() => None,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", sig_path.display())),
            };
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir: Some(config.data_dir.join("cache")),
                ..RuntimeConfig::default()
            })?;
            let store = open_store(config)?;
            let by = crate::review::operator(by.as_ref())?;
            let a = efile_bridge_pipeline::adapters::install(config, &runtime, &store, &bytes, sig.as_ref(), &by)
                .with_context(|| format!("{} refused", package.display()))?;
            println!(
                "installed {}@{} from {} (component sha256 {}, journal entry {})",
                a.name, a.version, a.publisher, a.component_sha256, a.installed_index
            );
        }
        PluginCommand::List { tenant } => {
            let store = open_store(config)?;
            for a in store.installed_adapters()? {
                let state = a.removed_index.map(|i| format!(" [removed at entry {i}]")).unwrap_or_default();
                println!("{}@{} from {} sha256 {}{state}", a.name, a.version, a.publisher, a.component_sha256);
            }
            for t in config.tenants.iter().filter(|t| tenant.as_deref().is_none_or(|x| x == t.ags)) {
                println!("tenant {} ({}): config adapters {}", t.ags, t.name, t.adapters.join(", "));
                for s in store.activations(Some(&t.ags))? {
                    let what = match (&s.name, &s.version) {
                        (Some(n), Some(v)) => format!("{n}@{v}"),
                        _ => "the config's adapters".into(),
                    };
                    println!("    entry {}: {} {what} for {} by {}", s.journal_index, s.action, s.scope, s.by);
                }
            }
        }
        PluginCommand::Activate { tenant, adapter, message_type, by } => {
            let (name, version) = split(adapter)?;
            let store = open_store(config)?;
            let scope = message_type.as_deref().unwrap_or("*");
            efile_bridge_pipeline::adapters::check_activation(config, &store, tenant, scope, name, version)
                .map_err(anyhow::Error::msg)?;
            let a = store.activate_adapter(tenant, scope, name, version, &crate::review::operator(by.as_ref())?)?;
            println!("tenant {tenant}: {name}@{version} active for {scope} (journal entry {})", a.journal_index);
        }
        PluginCommand::Rollback { tenant, by } => {
            let store = open_store(config)?;
            let a = store.rollback_adapter(tenant, &crate::review::operator(by.as_ref())?)?;
            let what = match (&a.name, &a.version) {
                (Some(n), Some(v)) => format!("{n}@{v}"),
                _ => "the config's adapters".into(),
            };
            println!("tenant {tenant}: back to {what} for {} (journal entry {})", a.scope, a.journal_index);
        }
        PluginCommand::Shadow { tenant, stop: true, by, .. } => {
            let idx = open_store(config)?.stop_shadow(tenant, &crate::review::operator(by.as_ref())?)?;
            println!("tenant {tenant}: live shadow run stopped (journal entry {idx})");
        }
        PluginCommand::Shadow { tenant, report: true, last, json, .. } => {
            let results = open_store(config)?.shadow_results(tenant, *last)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
                    let changes = r["changes"].as_array().map_or(0, Vec::len);
                    println!(
                        "{} {} {} {}: {} ({changes} change(s)) {}",
                        s("at"),
                        s("message_uuid"),
                        s("message_type"),
                        s("candidate"),
                        s("outcome"),
                        r["error"].as_str().unwrap_or("")
                    );
                }
                println!("{} comparison(s)", results.len());
            }
        }
        PluginCommand::Shadow { tenant, adapter: Some(adapter), live: true, by, .. } => {
            let (name, version) = split(adapter)?;
            let store = open_store(config)?;
            efile_bridge_pipeline::adapters::check_activation(config, &store, tenant, "*", name, version)
                .map_err(anyhow::Error::msg)?;
            let idx = store.start_shadow(tenant, name, version, &crate::review::operator(by.as_ref())?)?;
            println!(
                "tenant {tenant}: {name}@{version} runs beside the active adapters on new messages (journal entry {idx})"
            );
        }
        PluginCommand::Shadow { tenant, adapter: Some(adapter), last, message_type, json, .. } => {
            let (name, version) = split(adapter)?;
            let store = open_store(config)?;
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir: Some(config.data_dir.join("cache")),
                ..RuntimeConfig::default()
            })?;
            let report = efile_bridge_pipeline::shadow::run(
                config,
                &runtime,
                &store,
                tenant,
                name,
                version,
                *last,
                message_type.as_deref(),
            )
            .map_err(anyhow::Error::msg)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(());
            }
            for e in &report.entries {
                let by = e.filed_by.as_deref().unwrap_or("-");
                println!("{} {} (filed by {by}): {}", e.message_uuid, e.message_type, e.outcome);
                for c in &e.changes {
                    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
                    println!("    {}: {} -> {}", c.path, show(&c.filed), show(&c.candidate));
                }
                if let Some(err) = &e.error {
                    println!("    {err}");
                }
            }
            println!(
                "{} message(s) with {}: {} identical, {} differ, {} candidate failed, {} fixed, {} both failed",
                report.entries.len(),
                report.candidate,
                report.count("identical"),
                report.count("differs"),
                report.count("candidate-failed"),
                report.count("fixed"),
                report.count("both-failed")
            );
        }
        PluginCommand::Shadow { .. } => anyhow::bail!("give NAME@VERSION, --stop or --report"),
        PluginCommand::Remove { adapter, by } => {
            let (name, version) = split(adapter)?;
            let store = open_store(config)?;
            let a = store.remove_adapter(name, version, &crate::review::operator(by.as_ref())?)?;
            println!("removed {name}@{version} (journal entry {})", a.removed_index.unwrap_or_default());
        }
        _ => return run(cmd),
    }
    Ok(())
}

/// Whether the command needs the operator config.
pub(crate) fn needs_config(cmd: &PluginCommand) -> bool {
    matches!(
        cmd,
        PluginCommand::Install { .. }
            | PluginCommand::List { .. }
            | PluginCommand::Activate { .. }
            | PluginCommand::Rollback { .. }
            | PluginCommand::Remove { .. }
            | PluginCommand::Shadow { .. }
    )
}

pub(crate) fn run(cmd: &PluginCommand) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::New { name, dir, sdk } => crate::scaffold::scaffold(name, dir.as_deref(), sdk.as_deref()),
        PluginCommand::Pack { dir, author, out, target_dir } => {
            let wasm = efile_bridge_devkit::build(dir, target_dir)?;
            let component = read(&wasm)?;
            let runtime = Runtime::new(RuntimeConfig::default())?;
            let adapter =
                runtime.load(&component).with_context(|| format!("{} is not a valid adapter", wasm.display()))?;
            let manifest = Manifest::new(adapter.info(), author, &component);
            let bytes = efile_bridge_package::pack(&manifest, &component)?;
            std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
            let path = out.join(manifest.file_name());
            std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "{} ({} bytes): {}@{} for {}",
                path.display(),
                bytes.len(),
                manifest.name,
                manifest.version,
                manifest.world
            );
            Ok(())
        }
        PluginCommand::Keygen { key } => {
            if key.exists() {
                anyhow::bail!("{} exists; not overwriting a key", key.display());
            }
            let k = PublisherKey::generate()?;
            write_private(key, &k.to_private_text())?;
            let mut public = key.clone().into_os_string();
            public.push(".pub");
            std::fs::write(&public, format!("{}\n", k.public_key()))
                .with_context(|| format!("cannot write {}", PathBuf::from(&public).display()))?;
            println!("private key {} (keep it secret)", key.display());
            println!("trusted publisher line for operators: public_key = \"{}\"", k.public_key());
            Ok(())
        }
        PluginCommand::Sign { package, key } => {
            let text = std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
            let k = PublisherKey::parse(&text).with_context(|| format!("{}", key.display()))?;
            let sig = efile_bridge_package::sign(&read(package)?, &k);
            let mut path = package.clone().into_os_string();
            path.push(".sig");
            let path = PathBuf::from(path);
            std::fs::write(&path, serde_json::to_vec_pretty(&sig)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("{} signed by {}", path.display(), sig.public_key);
            Ok(())
        }
        PluginCommand::Build { dir, target_dir } => {
            let wasm = efile_bridge_devkit::build(dir, target_dir)?;
            let runtime = Runtime::new(RuntimeConfig::default())?;
            let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
            let adapter = runtime.load(&bytes).with_context(|| format!("{} is not a valid adapter", wasm.display()))?;
            let info = adapter.info();
            println!(
                "{} {} -> {} ({} bytes, sha256 {})",
                info.name,
                info.version,
                wasm.display(),
                bytes.len(),
                adapter.content_hash()
            );
            Ok(())
        }
        PluginCommand::Test { dir, target_dir } => {
            let wasm = efile_bridge_devkit::build(dir, target_dir)?;
            let runtime = Runtime::new(RuntimeConfig::default())?;
            let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
            let adapter = runtime.load(&bytes).with_context(|| format!("{} is not a valid adapter", wasm.display()))?;
            let bless = std::env::var("BLESS").is_ok_and(|v| v == "1");
            let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, dir, bless)?;
            if results.is_empty() {
                anyhow::bail!("{} has no fixtures (expected tests/fixtures/<case>/input.xml)", dir.display());
            }
            let mut failed = 0;
            for r in &results {
                match &r.outcome {
                    FixtureOutcome::Passed => println!("ok      {}", r.case),
                    FixtureOutcome::Blessed => println!("blessed {}", r.case),
                    FixtureOutcome::Failed(why) => {
                        failed += 1;
                        println!("FAILED  {}: {why}", r.case);
                    }
                }
            }
            println!("{} fixture(s), {failed} failed", results.len());
            if failed > 0 { Err(Reported.into()) } else { Ok(()) }
        }
        PluginCommand::Install { .. }
        | PluginCommand::List { .. }
        | PluginCommand::Activate { .. }
        | PluginCommand::Rollback { .. }
        | PluginCommand::Remove { .. }
        | PluginCommand::Shadow { .. } => lifecycle(&Config::load(Path::new("efile-bridge.toml"))?, cmd),
    }
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
