//! Shared support for the end-to-end tests and benchmarks.
//!
//! Adapters are always built from source here (never a committed `.wasm`), once per test
//! binary, into `target/adapters`, the same folder `efile-bridge plugin build` uses, so a
//! developer's earlier build is reused.
//!
//! [`generator`] builds varied, valid XMeld messages from a seed (several persons, partial
//! dates, `nichtVorhanden`, foreign and unknown addresses, Auskunftssperren, DIN 91379 names)
//! and says what it put in, for tests that go beyond the golden fixtures and for the pipeline
//! benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use efile_bridge_pipeline::Config;
use efile_bridge_pipeline::config::{AdapterConfig, TenantConfig};
use efile_bridge_runtime::{LoadedAdapter, Runtime, RuntimeConfig};

pub mod backend;
pub mod generator;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Builds an adapter crate (path relative to the workspace root) once per process.
pub fn adapter_wasm(crate_dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get(crate_dir) {
        return p.clone();
    }
    let wasm = efile_bridge_devkit::build(&root().join(crate_dir), &root().join("target/adapters"))
        .unwrap_or_else(|e| panic!("{e}"));
    built.insert(crate_dir.to_owned(), wasm.clone());
    wasm
}

/// The XMeld adapter component.
pub fn xmeld_wasm() -> PathBuf {
    adapter_wasm("plugins/adapters/xmeld")
}

/// The misbehaving probe adapter component.
pub fn probe_wasm() -> PathBuf {
    adapter_wasm("tests/adapters/probe")
}

/// A runtime without an on-disk cache plus the adapter loaded into it.
pub fn load(wasm: &Path) -> (Runtime, Arc<LoadedAdapter>) {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap_or_else(|e| panic!("runtime: {e}"));
    let bytes = std::fs::read(wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    let adapter = runtime.load(&bytes).unwrap_or_else(|e| panic!("load: {e}"));
    (runtime, adapter)
}

/// Fixture folder of the XMeld adapter.
pub fn xmeld_fixtures() -> PathBuf {
    root().join("plugins/adapters/xmeld/tests/fixtures")
}

/// A fixture's input.
pub fn fixture(case: &str) -> Vec<u8> {
    let path = xmeld_fixtures().join(case).join("input.xml");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// München (reader of the fixtures) and Frankfurt (their author), both with the XMeld adapter.
pub fn config(data_dir: &Path) -> Config {
    let mut config: Config = toml_config("");
    config.data_dir = data_dir.to_owned();
    config.storage = backend::storage_for(data_dir);
    config.drop_folder = Some(data_dir.join("drop"));
    // The shared tests run without tokens (loopback); tests/e2e/tenancy.rs sets tokens.
    config.auth.mode = efile_bridge_pipeline::config::AuthMode::Open;
    config.adapters.push(AdapterConfig { name: "xmeld".into(), component: xmeld_wasm() });
    for (ags, name) in [("09162000", "München"), ("06412000", "Frankfurt am Main")] {
        config.tenants.push(TenantConfig {
            ags: ags.into(),
            name: name.into(),
            adapters: vec!["xmeld".into()],
            config: BTreeMap::new(),
            tokens: Vec::new(),
            clerks: Vec::new(),
            aliases: Vec::new(),
            disabled: false,
            rate_limit_per_sec: 0,
            rate_burst: None,
            sinks: Vec::new(),
            sandbox: Default::default(),
        });
    }
    config
}

/// The AGS of the `n`-th tenant of [`spread_tenants`]: München's, then made-up codes beside it.
pub fn spread_tenant_ags(n: usize) -> String {
    format!("0916200{n}")
}

/// Keeps only the config's first tenant (München, `09162000`) and adds copies of it under
/// [`spread_tenant_ags`] until there are `n`: load spread over tenants.
pub fn spread_tenants(config: &mut Config, n: usize) {
    assert!((1..=9).contains(&n), "1 to 9 tenants, not {n}");
    config.tenants.truncate(1);
    for k in 1..n {
        let mut copy = config.tenants[0].clone();
        copy.ags = spread_tenant_ags(k);
        copy.name = format!("Gemeinde {k}");
        config.tenants.push(copy);
    }
}

/// One installation on several hosts: copies the signing key of the host with data folder
/// `from` to the one with `to`, before that one's first start.
pub fn share_signing_key(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("keys")).expect("keys");
    for e in std::fs::read_dir(from.join("keys")).expect("keys") {
        let e = e.expect("key");
        std::fs::copy(e.path(), to.join("keys").join(e.file_name())).expect("copy the key");
    }
}

/// A config from TOML text (defaults for everything not given).
pub fn toml_config(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|e| panic!("config: {e}"))
}

/// The deliberately different `einheitsakte` adapter component.
pub fn einheitsakte_wasm() -> PathBuf {
    adapter_wasm("plugins/adapters/einheitsakte")
}

/// The TR-XhD passport order adapter component (modelled, no public XSD).
pub fn trxhd_wasm() -> PathBuf {
    adapter_wasm("plugins/adapters/trxhd")
}
