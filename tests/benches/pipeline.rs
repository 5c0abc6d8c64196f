//! End-to-end pipeline throughput without HTTP: N messages (the real 0201 single-person
//! fixture, fresh UUIDs) submitted in-process by 64 concurrent senders, each acknowledged only
//! when durable, then processed by the sandboxed adapter into the store. Prints msg/s for
//! intake+journal (acknowledged) and for the whole path (processed).
//!
//! `cargo bench -p efile-bridge-tests --bench pipeline -- [--messages 20000]`

use std::sync::Arc;
use std::time::Instant;

use efile_bridge_pipeline::{Caller, Pipeline};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tmp");
        let mut config = efile_bridge_tests::config(dir.path());
        config.tenants.truncate(1);
        let pipeline = Arc::new(Pipeline::start(config).expect("start"));
        let template = String::from_utf8(efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("utf-8");
        let start = template.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
        let end = start + template[start..].find('<').expect("end");
        let bodies: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("{}e0000000-0000-4000-8000-{i:012x}{}", &template[..start], &template[end..]).into_bytes())
            .collect();
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
        print!("{}", pipeline.metrics().render().lines().filter(|l| l.contains("_sum") || l.contains("_count")).map(|l| format!("{l}\n")).collect::<String>());
    });
}
