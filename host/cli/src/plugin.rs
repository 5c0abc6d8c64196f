//! `efile-bridge plugin`: build and test adapters from source.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use efile_bridge_devkit::FixtureOutcome;
use efile_bridge_runtime::{Runtime, RuntimeConfig};

use crate::Reported;

#[derive(Subcommand)]
pub(crate) enum PluginCommand {
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
}

pub(crate) fn run(cmd: &PluginCommand) -> anyhow::Result<()> {
    match cmd {
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
    }
}
