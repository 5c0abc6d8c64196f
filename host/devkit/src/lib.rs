//! Tooling for adapter authors, shared by the `efile-bridge plugin` commands and the tests.
//!
//! - [`build`] compiles an adapter crate to a `wasm32-wasip2` component with cargo (release,
//!   stripped) and returns the path of the `.wasm`.
//! - [`run_fixtures`] runs every golden fixture of an adapter through the real sandbox:
//!   `DIR/tests/fixtures/<case>/input.xml` with `expected.json` (the records) or
//!   `expected.err` (the mapping error), and an optional `config.toml` of string keys for the
//!   tenant config. With `bless`, the expectations are rewritten from what the adapter does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use efile_bridge_model::{EfileRecord, MessageInfo};
use efile_bridge_runtime::{LoadedAdapter, Runtime, SandboxError, SandboxLimits};

/// A devkit failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevkitError {
    /// Cargo could not be run or failed.
    #[error("building {dir} failed: {reason}")]
    Build {
        /// Adapter directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A fixture could not be read.
    #[error("fixture {path}: {reason}")]
    Fixture {
        /// Path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Builds the adapter crate in `dir` for `wasm32-wasip2` into `target_dir`; returns the component.
pub fn build(dir: &Path, target_dir: &Path) -> Result<PathBuf, DevkitError> {
    let fail = |reason: String| DevkitError::Build { dir: dir.to_owned(), reason };
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(fail(format!("{} does not exist", manifest.display())));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // Adapters ship without debug info; a separate target dir keeps these settings from
        // invalidating the host's own build.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        // One codegen unit with LTO: the adapter runs once per message, for years.
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!(
            "cargo exited with {} (is the target installed? `rustup target add wasm32-wasip2`)",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut wasm = None;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact"
            || msg["manifest_path"].as_str() != manifest.canonicalize().ok().as_deref().and_then(Path::to_str)
        {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            wasm = files.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")).map(PathBuf::from).or(wasm);
        }
    }
    wasm.ok_or_else(|| fail("cargo produced no .wasm; is the crate a `cdylib`?".into()))
}

/// The outcome of one fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixtureOutcome {
    /// Output equals the expectation.
    Passed,
    /// The expectation was (re)written.
    Blessed,
    /// Output differs; the text says how.
    Failed(String),
}

/// One fixture's result.
#[derive(Debug, Clone)]
pub struct FixtureResult {
    /// Case name (folder name).
    pub case: String,
    /// Outcome.
    pub outcome: FixtureOutcome,
}

/// The fixed facts a fixture run gives the adapter besides the envelope.
pub const FIXTURE_RECEIVED_AT: &str = "2026-01-01T00:00:00.000Z";

/// Builds the [`MessageInfo`] the host would pass for `xml`: tenant = the reader's AGS (or the
/// author's if there is no reader AGS), fixed receive time, journal index 0.
pub fn message_info(xml: &[u8]) -> Result<MessageInfo, String> {
    let env = efile_bridge_intake::check(xml, &efile_bridge_intake::Limits::default()).map_err(|e| e.to_string())?;
    let tenant = env
        .reader
        .as_ref()
        .and_then(|p| p.ags())
        .or_else(|| env.author.as_ref().and_then(|p| p.ags()))
        .unwrap_or("00000000")
        .to_owned();
    Ok(MessageInfo {
        tenant_ags: tenant,
        standard: env.standard,
        version: env.version,
        message_type: env.message_type,
        message_name: env.message_name,
        message_uuid: env.message_uuid,
        created_at: env.created_at,
        received_at: FIXTURE_RECEIVED_AT.into(),
        journal_index: 0,
    })
}

/// Reads a fixture's optional `config.toml` (flat string keys).
pub fn fixture_config(case_dir: &Path) -> Result<BTreeMap<String, String>, DevkitError> {
    let path = case_dir.join("config.toml");
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let fail = |reason: String| DevkitError::Fixture { path: path.clone(), reason };
    let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
    toml::from_str(&text).map_err(|e| fail(e.to_string()))
}

/// The case folders under `DIR/tests/fixtures`, sorted.
pub fn fixture_cases(dir: &Path) -> Result<Vec<PathBuf>, DevkitError> {
    let root = dir.join("tests/fixtures");
    let entries =
        std::fs::read_dir(&root).map_err(|e| DevkitError::Fixture { path: root.clone(), reason: e.to_string() })?;
    let mut cases: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.join("input.xml").is_file()).collect();
    cases.sort();
    Ok(cases)
}

/// Renders records the way `expected.json` stores them.
pub fn render_records(records: &[EfileRecord]) -> String {
    let mut s = serde_json::to_string_pretty(records).unwrap_or_default();
    s.push('\n');
    s
}

/// Runs every fixture of the adapter in `dir` through `adapter` in the sandbox.
pub fn run_fixtures(
    runtime: &Runtime,
    adapter: &Arc<LoadedAdapter>,
    dir: &Path,
    bless: bool,
) -> Result<Vec<FixtureResult>, DevkitError> {
    let mut results = Vec::new();
    for case_dir in fixture_cases(dir)? {
        let case = case_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let input_path = case_dir.join("input.xml");
        let fail = |reason: String| DevkitError::Fixture { path: input_path.clone(), reason };
        let xml = std::fs::read(&input_path).map_err(|e| fail(e.to_string()))?;
        let info = message_info(&xml).map_err(fail)?;
        let config = Arc::new(fixture_config(&case_dir)?);
        let text = String::from_utf8(xml).map_err(|e| fail(e.to_string()))?;
        let actual = match runtime.map(adapter, config, &SandboxLimits::default(), &info, &text) {
            Ok(records) => Ok(render_records(&records)),
            Err(SandboxError::Mapping(e)) => Err(format!("{e}\n")),
            Err(other) => Err(format!("sandbox: {other}\n")),
        };
        let (want_file, other_file, got) = match &actual {
            Ok(json) => ("expected.json", "expected.err", json),
            Err(err) => ("expected.err", "expected.json", err),
        };
        let outcome = if bless {
            std::fs::write(case_dir.join(want_file), got).map_err(|e| fail(e.to_string()))?;
            let _ = std::fs::remove_file(case_dir.join(other_file));
            FixtureOutcome::Blessed
        } else {
            match std::fs::read_to_string(case_dir.join(want_file)) {
                Ok(expected) if expected == *got => FixtureOutcome::Passed,
                Ok(expected) => FixtureOutcome::Failed(first_difference(&expected, got)),
                Err(_) if case_dir.join(other_file).exists() => FixtureOutcome::Failed(format!(
                    "expected {other_file} but the adapter produced {}: {}",
                    if actual.is_ok() { "records" } else { "an error" },
                    got.lines().next().unwrap_or("")
                )),
                Err(_) => FixtureOutcome::Failed(format!("no {want_file}; run with BLESS=1 to create it")),
            }
        };
        results.push(FixtureResult { case, outcome });
    }
    Ok(results)
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}: expected `{}`, got `{}`", n + 1, e.trim(), a.trim());
        }
    }
    format!("expected {} lines, got {}", expected.lines().count(), actual.lines().count())
}
