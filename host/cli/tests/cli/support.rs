//! Running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn xmeld_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        efile_bridge_devkit::build(&root().join("plugins/adapters/xmeld"), &root().join("target/adapters"))
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

pub fn bin(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("EFILE_BRIDGE_LOG", "warn")
        .output()
        .expect("run efile-bridge")
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// A config for München with the XMeld adapter, data in `dir/data`.
///
/// With `EFILE_TEST_BACKEND=postgres` the data lives in a fresh PostgreSQL database instead of
/// `dir/data/efile.sqlite3` (see `efile_bridge_tests::backend`).
pub fn write_config(dir: &Path) -> PathBuf {
    let config = dir.join("efile-bridge.toml");
    let storage = efile_bridge_tests::backend::storage_for(&dir.join("data"))
        .map(|url| format!("storage = \"{url}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n{storage}[auth]\nmode = \"open\"\n[[adapter]]\nname = \"xmeld\"\ncomponent = \"{}\"\n\
             [[tenant]]\nags = \"09162000\"\nname = \"München\"\nadapters = [\"xmeld\"]\n",
            xmeld_wasm().display()
        ),
    )
    .expect("config");
    config
}

/// Checks that the journal holds every `acknowledged` message, and each accepted message once
/// and processed once; returns the accepted messages' UUIDs (the acknowledged ones and those
/// whose answer was lost with a killed host).
pub fn accepted_exactly_once(
    journal: &[efile_bridge_tests::backend::RawEntry],
    acknowledged: &std::collections::BTreeSet<String>,
) -> std::collections::BTreeSet<String> {
    let per_message = |kind: &str| {
        journal.iter().filter(|e| e.kind == kind).fold(std::collections::BTreeMap::new(), |mut m, e| {
            *m.entry(e.meta_str("message")).or_insert(0usize) += 1;
            m
        })
    };
    let accepted = per_message("message-accepted");
    let processed = per_message("message-processed");
    for (uuid, n) in accepted.iter().chain(processed.iter()) {
        assert_eq!(*n, 1, "message {uuid} appears {n} times for one kind");
    }
    let accepted: std::collections::BTreeSet<String> = accepted.into_keys().collect();
    let processed: std::collections::BTreeSet<String> = processed.into_keys().collect();
    assert!(acknowledged.is_subset(&accepted), "an acknowledged message is missing from the journal");
    assert_eq!(accepted, processed, "every accepted message is processed exactly once");
    accepted
}
