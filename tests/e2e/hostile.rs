//! A hostile tenant does not take the host down: tenant Hostdorf runs the test-only `probe`
//! adapter in every hostile mode over HTTP, with tighter sandbox limits of its own, while
//! München's real XMeld messages are processed in between. Each hostile message ends
//! `failed` with the precise reason, shown by the message status and by the mapping
//! dead-letter list (`/v1/admin/messages?state=failed`); München's all end `processed`; the
//! host answers afterwards and the next message of the hostile tenant starts clean. A third
//! tenant with the default limits shows that the tighter budget was Hostdorf's own.

use std::collections::BTreeMap;

use efile_bridge_pipeline::Config;
use efile_bridge_pipeline::config::{AdapterConfig, TenantSandboxConfig};
use efile_bridge_tests::fixture;

use crate::support::{Host, verify, with_parties, with_uuid};

const HOSTILE: &str = "09000001";
const PATIENT: &str = "09000002";
const MUENCHEN: &str = "09162000";

/// Hostdorf and Geduldig run the probe; Hostdorf with 50 ms, 16 MiB memory, 1 MiB output.
fn with_probe_tenants(c: &mut Config) {
    c.adapters.push(AdapterConfig { name: "probe".into(), component: efile_bridge_tests::probe_wasm() });
    for (ags, name) in [(HOSTILE, "Hostdorf"), (PATIENT, "Geduldig")] {
        let mut t = c.tenants[0].clone();
        t.ags = ags.into();
        t.name = name.into();
        t.adapters = vec!["probe".into()];
        // Sizes that trip Hostdorf's 1 MiB output limit.
        t.config = BTreeMap::from([("count".into(), "10000".into()), ("bytes".into(), "2000000".into())]);
        if ags == HOSTILE {
            t.sandbox = TenantSandboxConfig {
                cpu_budget_ms: Some(50),
                max_memory_mib: Some(16),
                max_output_mib: Some(1),
                ..TenantSandboxConfig::default()
            };
        }
        c.tenants.push(t);
    }
}

/// The 0201 fixture for `tenant` (as reader), with its own UUID, asking the probe for `mode`.
fn probe_message(tenant: &str, mode: &str, n: usize) -> (String, Vec<u8>) {
    let uuid = format!("b0000000-0000-4000-8000-{n:012x}");
    let xml = with_uuid(&with_parties(&fixture("anmeldung-0201-single-person"), tenant, "06412000"), &uuid);
    let text = String::from_utf8(xml).expect("utf-8").replacen("?>", &format!("?>\n<!-- probe: {mode} -->"), 1);
    (uuid, text.into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_tenant_fails_precisely_and_the_others_carry_on() {
    let host = Host::start_with(with_probe_tenants).await;
    // What each mode must end with: the limit or capability, named.
    let hostile = [
        ("loop", "adapter `probe` exceeded its cpu budget of 50 ms"),
        ("slow", "adapter `probe` exceeded its cpu budget of 50 ms"),
        // Under Geduldig's default budget of 1 s: filling memory must not race a 50 ms budget
        // on a loaded machine.
        ("alloc", "adapter `probe` exceeded its memory limit of 67108864 bytes"),
        ("recurse", "adapter `probe` overflowed its call stack of 1048576 bytes"),
        ("panic", "adapter `probe` panicked at tests/adapters/probe/src/lib.rs:"),
        ("records", "adapter `probe` returned more than its output limit of 1048576 bytes"),
        ("string", "adapter `probe` returned more than its output limit of 1048576 bytes"),
        ("attachment", "adapter `probe` returned more than its output limit of 1048576 bytes"),
        ("files", "adapter `probe` tried to use the file system (`wasi:filesystem/preopens@"),
        ("sockets", "adapter `probe` tried to use the network (`wasi:sockets/"),
        ("clock", "adapter `probe` tried to use a clock (`wasi:clocks/wall-clock@"),
        ("sleep", "adapter `probe` tried to use a clock (`wasi:clocks/monotonic-clock@"),
    ];

    // Everything is posted before anything is awaited, München's messages between Hostdorf's.
    let mut failing = Vec::new();
    let mut normal = Vec::new();
    for (n, (mode, reason)) in hostile.iter().enumerate() {
        let tenant = if *mode == "alloc" { PATIENT } else { HOSTILE };
        let (uuid, body) = probe_message(tenant, mode, n);
        let (code, receipt) = host.post(body).await;
        assert_eq!(code, 202, "{mode}: {receipt}");
        failing.push((uuid, *mode, *reason));
        let uuid = format!("c0000000-0000-4000-8000-{n:012x}");
        let (code, receipt) = host.post(with_uuid(&fixture("anmeldung-0201-single-person"), &uuid)).await;
        assert_eq!((code, receipt["tenant"].as_str()), (202, Some(MUENCHEN)), "{receipt}");
        normal.push(uuid);
    }
    // The same slow work under the default budget of another tenant.
    let (patient, body) = probe_message(PATIENT, "slow", 100);
    assert_eq!(host.post(body).await.0, 202);

    for (uuid, mode, reason) in &failing {
        let status = host.wait_processed(uuid).await;
        assert_eq!(status["state"], "failed", "{mode}: {status}");
        let error = status["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(reason), "{mode}: `{error}` does not start with `{reason}`");
    }
    let panicked = failing.iter().find(|(_, mode, _)| *mode == "panic").expect("panic mode");
    let panic = host.wait_processed(&panicked.0).await;
    assert!(panic["error"].as_str().unwrap_or_default().ends_with(": probe asked to panic"), "{panic}");
    for uuid in &normal {
        let status = host.wait_processed(uuid).await;
        assert_eq!(status["state"], "processed", "{status}");
        assert_eq!(status["documents"].as_array().map(Vec::len), Some(1), "{status}");
    }
    let status = host.wait_processed(&patient).await;
    assert_eq!(status["state"], "processed", "the default budget lets slow work finish: {status}");

    // The mapping dead letters: exactly the hostile messages (Hostdorf's, and Geduldig's memory
    // bomb), with the same reasons.
    let (code, dead) = host.get("/v1/admin/messages?state=failed&limit=100").await;
    assert_eq!(code, 200, "{dead}");
    let dead: BTreeMap<&str, &str> = dead
        .as_array()
        .expect("list")
        .iter()
        .map(|m| (m["message_uuid"].as_str().expect("uuid"), m["error"].as_str().expect("error")))
        .collect();
    assert_eq!(dead.len(), failing.len(), "{dead:?}");
    for (uuid, mode, reason) in &failing {
        assert!(dead.get(uuid.as_str()).is_some_and(|e| e.starts_with(reason)), "{mode} missing or wrong: {dead:?}");
    }

    // The host is up, and Hostdorf's next message starts in a clean instance.
    assert_eq!(host.get("/healthz").await.0, 200);
    let (uuid, body) = probe_message(HOSTILE, "remember", 200);
    assert_eq!(host.post(body).await.0, 202);
    assert_eq!(host.wait_processed(&uuid).await["state"], "processed");
    let citizens = host.citizens(HOSTILE).await;
    assert_eq!(citizens.len(), 1, "only the last message produced a record: {citizens:?}");
    let id = citizens[0]["citizen_id"].as_str().expect("id");
    let (_, file) = host.get(&format!("/v1/tenants/{HOSTILE}/citizens/{id}")).await;
    let metadata = &file["files"][0]["cases"][0]["documents"][0]["metadata"];
    let seen = metadata.as_array().expect("metadata").iter().find(|kv| kv[0] == "calls_before");
    assert_eq!(seen.map(|kv| kv[1].clone()), Some("0".into()), "state survived: {file}");

    verify(&host).await.expect("the journal holds every failure and verifies");
}
