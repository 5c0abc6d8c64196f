//! End-to-end pipeline throughput without HTTP: N messages submitted in-process by 64
//! concurrent senders, each acknowledged only when durable, then processed by the sandboxed
//! adapter into the store. Prints msg/s for intake+journal (acknowledged) and for the whole
//! path (processed).
//!
//! The messages come from the test-data generator (`efile_bridge_tests::generator`, seed 1 or
//! `--seed S`): every message type it builds in turn, one to six persons, partial dates,
//! foreign and unknown addresses, Auskunftssperren, Unicode names, so the figure covers
//! the adapter's and the store's real variety. `--fixture` instead sends the 0201
//! single-person fixture N times with fresh UUIDs (the figure before the generator existed).
//!
//! `cargo bench -p efile-bridge-tests --bench pipeline -- [--messages 20000] [--seed 1 | --fixture]`

use std::sync::Arc;
use std::time::Instant;

use efile_bridge_pipeline::{Caller, Pipeline};
use efile_bridge_tests::generator::{Generator, Kind};

/// The tenant: the default test config's first tenant (München), the only one kept.
const TENANT: &str = "09162000";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let n: usize = value("--messages").and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seed: u64 = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(1);
    let fixture = args.iter().any(|a| a == "--fixture");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tmp");
        let mut config = efile_bridge_tests::config(dir.path());
        config.tenants.truncate(1);
        let pipeline = Arc::new(Pipeline::start(config).expect("start"));
        let bodies = if fixture { fixture_bodies(n) } else { generated_bodies(n, seed) };
        let mut processed = pipeline.processed();
        let started = Instant::now();
        let bodies = Arc::new(std::sync::Mutex::new(bodies));
        let mut senders = Vec::new();
        for _ in 0..64 {
            let (pipeline, bodies) = (pipeline.clone(), bodies.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let Some(body) = bodies.lock().expect("lock").pop() else { break };
                    pipeline.submit(body, &Caller::Admin).await.expect("accepted");
                }
            }));
        }
        for s in senders {
            s.await.expect("sender");
        }
        let acked = started.elapsed().as_secs_f64();
        while *processed.borrow_and_update() < n as u64 {
            processed.changed().await.expect("pipeline alive");
        }
        let done = started.elapsed().as_secs_f64();
        println!(
            "{n} messages: acknowledged (durable) at {:.0} msg/s ({acked:.2} s), processed at {:.0} msg/s ({done:.2} s)",
            n as f64 / acked,
            n as f64 / done
        );
        let metrics = pipeline.metrics().render(&pipeline.store().write_lock());
        print!("{}", metrics.lines().filter(|l| l.contains("_sum") || l.contains("_count")).map(|l| format!("{l}\n")).collect::<String>());
        // A failed message is over quickly: counted as processed, it would flatter the figure.
        let failed: Vec<&str> = metrics.lines().filter(|l| l.contains("outcome=\"failed\"")).collect();
        assert!(failed.is_empty(), "messages failed, so the figure above is not valid: {failed:?}");
    });
}

/// The 0201 single-person fixture with fresh UUIDs.
fn fixture_bodies(n: usize) -> Vec<Vec<u8>> {
    let template = String::from_utf8(efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("utf-8");
    let start = template.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
    let end = start + template[start..].find('<').expect("end");
    (0..n)
        .map(|i| format!("{}e0000000-0000-4000-8000-{i:012x}{}", &template[..start], &template[end..]).into_bytes())
        .collect()
}

/// N generated messages, the kinds in turn; made before the clock starts.
fn generated_bodies(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut generator = Generator::new(seed);
    let messages: Vec<_> = (0..n).map(|i| generator.message(Kind::ALL[i % Kind::ALL.len()], TENANT)).collect();
    let bytes: usize = messages.iter().map(|m| m.xml.len()).sum();
    let persons: usize = messages.iter().map(|m| m.persons.len()).sum();
    // On stderr: stdout keeps exactly the lines it printed before the generator existed.
    eprintln!(
        "generated {n} messages (seed {seed}; {}): {:.1} KB and {:.2} persons on average",
        Kind::ALL.map(Kind::code).join(", "),
        bytes as f64 / n.max(1) as f64 / 1000.0,
        persons as f64 / n.max(1) as f64
    );
    messages.into_iter().map(|m| m.xml).collect()
}
