//! The sandbox holds against a hostile adapter: each kind of misbehaviour of the test-only
//! `probe` adapter (built from source) ends in its own precise [`SandboxError`], the runtime
//! keeps mapping afterwards, and no state is carried from one message to the next.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use efile_bridge_devkit::message_info;
use efile_bridge_model::EfileRecord;
use efile_bridge_runtime::{LoadedAdapter, Runtime, SandboxError, SandboxLimits};
use efile_bridge_tests::fixture;

/// One runtime with the probe loaded, shared by the tests: compiling it once is what costs.
fn probe() -> &'static (Runtime, Arc<LoadedAdapter>) {
    static PROBE: OnceLock<(Runtime, Arc<LoadedAdapter>)> = OnceLock::new();
    PROBE.get_or_init(|| efile_bridge_tests::load(&efile_bridge_tests::probe_wasm()))
}

/// Maps the single-person fixture with the probe configured by `config`.
fn map(config: &[(&str, &str)], limits: &SandboxLimits) -> Result<Vec<EfileRecord>, SandboxError> {
    let (runtime, adapter) = probe();
    let xml = fixture("anmeldung-0201-single-person");
    let info = message_info(&xml).expect("info");
    let config = Arc::new(config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    runtime.map(adapter, config, limits, &info, std::str::from_utf8(&xml).expect("utf-8"))
}

/// The metadata of the one record `mode` returns.
fn run(mode: &str, limits: &SandboxLimits) -> Result<BTreeMap<String, String>, SandboxError> {
    let records = map(&[("mode", mode)], limits)?;
    assert_eq!(records.len(), 1, "mode {mode}");
    Ok(records.into_iter().next().expect("one record").metadata.into_iter().collect())
}

fn limits() -> SandboxLimits {
    SandboxLimits::default()
}

#[test]
fn the_host_passes_what_it_knows() {
    let meta = run("ok", &limits()).expect("ok");
    assert_eq!(meta["tenant"], "09162000");
    assert_eq!(meta["uuid"], "6e884c30-9524-4171-a63e-8845963c47b4");
    assert_eq!(meta["received_at"], efile_bridge_devkit::FIXTURE_RECEIVED_AT);
}

#[test]
fn a_runaway_loop_is_stopped_by_the_cpu_budget() {
    let limits = SandboxLimits { cpu_budget: Duration::from_millis(50), ..limits() };
    match run("loop", &limits) {
        Err(e @ SandboxError::CpuBudget { .. }) => {
            assert_eq!(e.to_string(), "adapter `probe` exceeded its cpu budget of 50 ms");
        }
        other => panic!("expected the cpu budget to stop it, got {other:?}"),
    }
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let limits = SandboxLimits { max_memory_bytes: 16 << 20, ..limits() };
    match run("alloc", &limits) {
        Err(e @ SandboxError::Memory { .. }) => {
            assert_eq!(e.to_string(), "adapter `probe` exceeded its memory limit of 16777216 bytes");
        }
        other => panic!("expected the memory limit to stop it, got {other:?}"),
    }
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    match run("recurse", &limits()) {
        Err(e @ SandboxError::StackOverflow { .. }) => {
            assert_eq!(e.to_string(), "adapter `probe` overflowed its call stack of 1048576 bytes");
        }
        other => panic!("expected a stack overflow, got {other:?}"),
    }
}

#[test]
fn a_panic_is_reported_with_its_location_and_message() {
    match run("panic", &limits()) {
        Err(SandboxError::Panic { adapter, location, message }) => {
            assert_eq!(adapter, "probe");
            assert_eq!(message, "probe asked to panic");
            assert!(location.starts_with("tests/adapters/probe/src/lib.rs:"), "{location}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn a_flood_of_records_a_huge_string_or_attachment_is_stopped_by_the_output_limit() {
    let limits = SandboxLimits { max_output_bytes: 1 << 20, ..limits() };
    let cases = [("records", "count", "10000"), ("string", "bytes", "2000000"), ("attachment", "bytes", "2000000")];
    for (mode, key, value) in cases {
        match map(&[("mode", mode), (key, value)], &limits) {
            Err(e @ SandboxError::OutputTooLarge { .. }) => {
                assert_eq!(e.to_string(), "adapter `probe` returned more than its output limit of 1048576 bytes");
            }
            other => panic!("{mode}: expected the output limit to stop it, got {:?}", other.map(|r| r.len())),
        }
    }
}

#[test]
fn the_default_limits_stop_a_flood_of_records_at_the_output_limit() {
    // 50 000 empty records fit the default 64 MiB guest memory but not the 16 MiB of output.
    match map(&[("mode", "records")], &limits()) {
        Err(SandboxError::OutputTooLarge { limit, .. }) => assert_eq!(limit, 16 << 20),
        other => panic!("expected the output limit to stop it, got {:?}", other.map(|r| r.len())),
    }
}

#[test]
fn output_under_the_limit_comes_back_whole() {
    let limits = SandboxLimits { max_output_bytes: 1 << 20, ..limits() };
    let records = map(&[("mode", "string"), ("bytes", "500000")], &limits).expect("under the limit");
    assert_eq!(records[0].title.len(), 500_000);
    let records = map(&[("mode", "attachment"), ("bytes", "500000")], &limits).expect("under the limit");
    assert_eq!(records[0].attachments[0].data, vec![7u8; 500_000]);
    let records = map(&[("mode", "records"), ("count", "1000")], &limits).expect("under the limit");
    assert_eq!(records.len(), 1000);
}

#[test]
fn files_sockets_and_clocks_are_denied_by_name() {
    let cases = [
        ("files", "the file system", "wasi:filesystem/preopens@"),
        ("sockets", "the network", "wasi:sockets/"),
        ("clock", "a clock", "wasi:clocks/wall-clock@"),
        // A sleeping adapter would hold its worker outside the cpu budget.
        ("sleep", "a clock", "wasi:clocks/monotonic-clock@"),
        // `escape` reads the clock first and gets no further.
        ("escape", "a clock", "wasi:clocks/wall-clock@"),
    ];
    for (mode, capability, import) in cases {
        match run(mode, &limits()) {
            Err(e @ SandboxError::Denied { .. }) => {
                let SandboxError::Denied { capability: c, import: i, .. } = &e else { unreachable!() };
                assert_eq!(c, capability, "{mode}");
                assert!(i.starts_with(import) && i.contains('#'), "{mode}: {i}");
                assert!(e.to_string().starts_with(&format!("adapter `probe` tried to use {capability} (`")), "{e}");
            }
            other => panic!("{mode}: expected it to be denied, got {other:?}"),
        }
    }
}

#[test]
fn environment_arguments_and_randomness_are_granted_empty_and_fixed() {
    let first = run("env", &limits()).expect("env");
    assert_eq!((first["env"].as_str(), first["args"].as_str()), ("0", "0"), "{first:?}");
    // Deterministic: the same call gives the same output, hash seeds included.
    assert_eq!(first, run("env", &limits()).expect("env"));
}

#[test]
fn slow_legal_work_finishes_within_the_budget_and_a_tighter_budget_stops_it() {
    let meta = run("slow", &limits()).expect("the default budget lets it finish");
    assert!(meta["work"].parse::<u64>().is_ok(), "{meta:?}");
    let tight = SandboxLimits { cpu_budget: Duration::from_millis(10), ..limits() };
    assert!(matches!(run("slow", &tight), Err(SandboxError::CpuBudget { budget_ms: 10, .. })));
}

#[test]
fn the_runtime_keeps_working_after_every_kind_of_failure_and_keeps_no_state() {
    let tight =
        SandboxLimits { cpu_budget: Duration::from_millis(20), max_memory_bytes: 16 << 20, max_output_bytes: 1 << 20 };
    let hostile = ["loop", "alloc", "recurse", "panic", "records", "files", "sockets", "clock", "sleep"];
    for mode in hostile {
        assert!(map(&[("mode", mode), ("count", "10000")], &tight).is_err(), "{mode} was not stopped");
        // The next message, in a fresh instance, sees no trace of the one before.
        let meta = run("remember", &limits()).unwrap_or_else(|e| panic!("after {mode}: {e}"));
        assert_eq!(meta["calls_before"], "0", "state leaked after {mode}");
    }
}

#[test]
fn every_message_gets_a_fresh_instance() {
    for _ in 0..3 {
        let meta = run("remember", &limits()).expect("remember");
        assert_eq!(meta["calls_before"], "0", "state leaked between messages");
    }
}
