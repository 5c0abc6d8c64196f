//! Many tenants share few adapters: a component is compiled once per content hash, a restart
//! takes the precompiled artefact from the cache directory instead of compiling again, and a
//! damaged artefact is compiled afresh rather than trusted. The 400-tenant start-up figures
//! are in `tests/benches/tenants.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use efile_bridge_devkit::message_info;
use efile_bridge_runtime::{LoadedAdapter, Runtime, RuntimeConfig, SandboxLimits};
use efile_bridge_tests::fixture;

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir: Some(cache.to_owned()), ..RuntimeConfig::default() }).expect("runtime")
}

fn map(runtime: &Runtime, adapter: &LoadedAdapter) -> Vec<efile_bridge_model::EfileRecord> {
    let xml = fixture("anmeldung-0201-family-of-three");
    let info = message_info(&xml).expect("info");
    let xml = std::str::from_utf8(&xml).expect("utf-8");
    runtime.map(adapter, Arc::new(BTreeMap::new()), &SandboxLimits::default(), &info, xml).expect("mapped")
}

fn cached(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(cache).expect("cache dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files
}

#[test]
fn a_shared_component_is_compiled_once_and_a_restart_compiles_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let cache = dir.path().join("cache");
    let wasm = efile_bridge_tests::xmeld_wasm();
    // The same component reached under a second path, as two config entries could name it.
    let copy = dir.path().join("xmeld-copy.wasm");
    std::fs::copy(&wasm, &copy).expect("copy");

    let first = runtime(&cache);
    let a = first.load(&std::fs::read(&wasm).expect("read")).expect("load");
    let b = first.load(&std::fs::read(&copy).expect("read")).expect("load again");
    assert!(Arc::ptr_eq(&a, &b), "the same bytes must give the same loaded adapter");
    assert_eq!(first.compilations(), 1);
    assert_eq!(cached(&cache).len(), 1, "one artefact per content hash");
    let fresh = map(&first, &a);
    drop(first);

    // A restart: a new engine with the same cache directory.
    let second = runtime(&cache);
    let c = second.load(&std::fs::read(&wasm).expect("read")).expect("load from cache");
    assert_eq!(second.compilations(), 0, "a warm cache must not compile again");
    assert_eq!(c.content_hash(), a.content_hash());
    assert_eq!(map(&second, &c), fresh, "the cached artefact maps like the fresh compile");
    // `c` runs from a mapping of the artefact file; nothing may change that file while it
    // lives (the runtime itself only ever replaces it by rename).
    drop((c, second));

    // A damaged artefact (a torn write, a disk error) is not trusted: compiled again, replaced.
    let [artefact] = cached(&cache).try_into().expect("one artefact");
    std::fs::write(&artefact, b"not a precompiled component").expect("damage");
    let third = runtime(&cache);
    let d = third.load(&std::fs::read(&wasm).expect("read")).expect("recompiled");
    assert_eq!(third.compilations(), 1);
    assert_eq!(map(&third, &d), fresh);
    assert_ne!(std::fs::read(&artefact).expect("artefact"), b"not a precompiled component");
}
