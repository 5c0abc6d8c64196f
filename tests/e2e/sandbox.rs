//! The sandbox holds: CPU budget, memory limit, traps, no clock/randomness/files/env, and no
//! state carried from one message to the next. Uses the test-only `probe` adapter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use efile_bridge_devkit::message_info;
use efile_bridge_runtime::{SandboxError, SandboxLimits};
use efile_bridge_tests::fixture;

fn run(mode: &str, limits: &SandboxLimits) -> Result<BTreeMap<String, String>, SandboxError> {
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::probe_wasm());
    run_on(&runtime, &adapter, mode, limits)
}

fn run_on(
    runtime: &efile_bridge_runtime::Runtime,
    adapter: &Arc<efile_bridge_runtime::LoadedAdapter>,
    mode: &str,
    limits: &SandboxLimits,
) -> Result<BTreeMap<String, String>, SandboxError> {
    let xml = fixture("anmeldung-0201-single-person");
    let info = message_info(&xml).expect("info");
    let config = Arc::new(BTreeMap::from([("mode".to_owned(), mode.to_owned())]));
    let records = runtime.map(adapter, config, limits, &info, std::str::from_utf8(&xml).expect("utf-8"))?;
    Ok(records.into_iter().next().expect("one record").metadata.into_iter().collect())
}

#[test]
fn the_host_passes_what_it_knows() {
    let meta = run("ok", &SandboxLimits::default()).expect("ok");
    assert_eq!(meta["tenant"], "09162000");
    assert_eq!(meta["uuid"], "6e884c30-9524-4171-a63e-8845963c47b4");
    assert_eq!(meta["received_at"], efile_bridge_devkit::FIXTURE_RECEIVED_AT);
}

#[test]
fn a_runaway_loop_is_stopped_by_the_cpu_budget() {
    let limits = SandboxLimits { cpu_budget: Duration::from_millis(50), ..SandboxLimits::default() };
    match run("loop", &limits) {
        Err(SandboxError::CpuBudget { adapter, budget_ms }) => {
            assert_eq!(adapter, "probe");
            assert_eq!(budget_ms, 50);
        }
        other => panic!("expected the cpu budget to stop it, got {other:?}"),
    }
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let limits = SandboxLimits { max_memory_bytes: 16 << 20, ..SandboxLimits::default() };
    match run("alloc", &limits) {
        Err(SandboxError::Memory { adapter, limit }) => {
            assert_eq!(adapter, "probe");
            assert_eq!(limit, 16 << 20);
        }
        other => panic!("expected the memory limit to stop it, got {other:?}"),
    }
}

#[test]
fn a_panic_is_a_reported_trap_and_the_adapter_keeps_working() {
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::probe_wasm());
    match run_on(&runtime, &adapter, "panic", &SandboxLimits::default()) {
        Err(SandboxError::Trap { adapter, .. }) => assert_eq!(adapter, "probe"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(run_on(&runtime, &adapter, "ok", &SandboxLimits::default()).is_ok());
}

#[test]
fn the_adapter_sees_no_clock_randomness_environment_or_files() {
    let first = run("escape", &SandboxLimits::default()).expect("escape");
    assert_eq!(first["env"], "0");
    assert_ne!(first["root"], "readable", "{first:?}");
    // A frozen clock: a fixed instant, not now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let seen: u64 = first["clock"].parse().expect("number");
    assert!(seen + 86_400 < now, "the adapter saw the real time {seen}");
    // Deterministic: the same call gives the same output, hash seeds included.
    let second = run("escape", &SandboxLimits::default()).expect("escape");
    assert_eq!(first, second);
}

#[test]
fn every_message_gets_a_fresh_instance() {
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::probe_wasm());
    for _ in 0..3 {
        let meta = run_on(&runtime, &adapter, "remember", &SandboxLimits::default()).expect("remember");
        assert_eq!(meta["calls_before"], "0", "state leaked between messages");
    }
}
