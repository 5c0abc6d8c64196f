//! Does a hostile tenant slow the others down? Tenant B (München, the XMeld adapter) sends a
//! steady stream of normal 0201 messages; its latency per message, from `submit` to the
//! message being `processed`, is measured in three runs of one process, each on a fresh
//! pipeline with the default config (workers = CPUs, 1 s CPU budget):
//!
//! 1. baseline: B alone;
//! 2. flood, uncapped: tenant A (Hostdorf, the test-only `probe` adapter in `loop` mode) keeps
//!    `--flood` messages in flight that each spin until the CPU budget stops them, and may
//!    use every worker (`max_concurrent_maps` = workers);
//! 3. flood, default cap: the same flood with A at the default `max_concurrent_maps`.
//!
//! Prints p50, p99 and max of B's latency per run and each flood run's ratio to the baseline.
//! Figures are reported, never asserted.
//!
//! `cargo bench -p efile-bridge-tests --bench isolation -- [--messages 100] [--interval-ms 50] [--flood 32]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use efile_bridge_pipeline::config::{AdapterConfig, TenantSandboxConfig};
use efile_bridge_pipeline::store::MessageState;
use efile_bridge_pipeline::{Caller, Config, Pipeline, Submitted};

const B: &str = "09162000";
const A: &str = "09000001";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let messages: usize = value("--messages").and_then(|v| v.parse().ok()).unwrap_or(100);
    let interval = Duration::from_millis(value("--interval-ms").and_then(|v| v.parse().ok()).unwrap_or(50));
    let flood: usize = value("--flood").and_then(|v| v.parse().ok()).unwrap_or(32);
    // Built before any clock starts.
    let probe = efile_bridge_tests::probe_wasm();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "tenant B: {messages} messages, one every {} ms; tenant A: {flood} `loop` messages in flight; {workers} workers, 1 s budget",
        interval.as_millis()
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let runs = [
        ("baseline (B alone)", None),
        ("flood, A uncapped", Some(Some(workers))),
        ("flood, A at the default cap", Some(None)),
    ];
    let mut baseline = None;
    for (name, a) in runs {
        let run = rt.block_on(run(&probe, messages, interval, a.map(|cap| (flood, cap))));
        let (p50, p99, max) = (run.percentile(50.0), run.percentile(99.0), run.percentile(100.0));
        let ratio = baseline.map_or(String::new(), |(b50, b99): (f64, f64)| {
            format!(" -> x{:.1} p50, x{:.1} p99", p50 / b50, p99 / b99)
        });
        println!(
            "{name:<28} B latency p50 {p50:>8.1} ms  p99 {p99:>8.1} ms  max {max:>8.1} ms{ratio}{}",
            a.map_or(String::new(), |_| format!("  (A: {} messages stopped meanwhile)", run.flood_failed))
        );
        baseline.get_or_insert((p50, p99));
    }
    // A's last loops may still spin; nothing waits for them.
    rt.shutdown_background();
}

struct Run {
    latencies_ms: Vec<f64>,
    flood_failed: u64,
}

impl Run {
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i]
    }
}

/// One run on a fresh pipeline; `flood` is A's messages in flight and its cap, if A floods.
async fn run(
    probe: &std::path::Path,
    messages: usize,
    interval: Duration,
    flood: Option<(usize, Option<usize>)>,
) -> Run {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config: Config = efile_bridge_tests::config(dir.path());
    config.adapters.push(AdapterConfig { name: "probe".into(), component: probe.to_owned() });
    let mut hostile = config.tenants[0].clone();
    hostile.ags = A.into();
    hostile.name = "Hostdorf".into();
    hostile.adapters = vec!["probe".into()];
    hostile.config = [("mode".to_owned(), "loop".to_owned())].into();
    hostile.sandbox =
        TenantSandboxConfig { max_concurrent_maps: flood.and_then(|(_, cap)| cap), ..TenantSandboxConfig::default() };
    config.tenants.push(hostile);
    let pipeline = Arc::new(Pipeline::start(config).expect("start"));

    let stop = Arc::new(AtomicBool::new(false));
    if let Some((in_flight, _)) = flood {
        let (pipeline, stop) = (pipeline.clone(), stop.clone());
        // One task tops A up to `in_flight` whenever something finished; it counts A's failed
        // messages with one query, so the flood adds no polling load of its own per message.
        tokio::spawn(async move {
            let mut processed = pipeline.processed();
            let mut submitted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let done = a_failed(&pipeline).await;
                while submitted - done < in_flight as u64 {
                    submit(&pipeline, &message(A, &format!("a0000000-0000-4000-8000-{submitted:012x}"))).await;
                    submitted += 1;
                }
                processed.changed().await.expect("pipeline alive");
            }
        });
        // Let the flood fill the queue and the workers before B starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let a_before = a_failed(&pipeline).await;
    let mut waiters = Vec::new();
    let mut tick = tokio::time::interval(interval);
    for n in 0..messages {
        tick.tick().await;
        let pipeline = pipeline.clone();
        waiters.push(tokio::spawn(async move {
            let uuid = format!("b0000000-0000-4000-8000-{n:012x}");
            let started = Instant::now();
            let uuid = submit(&pipeline, &message(B, &uuid)).await;
            assert_eq!(wait(&pipeline, B, &uuid).await, MessageState::Processed, "B's message {uuid}");
            started.elapsed().as_secs_f64() * 1000.0
        }));
    }
    let mut latencies_ms = Vec::new();
    for w in waiters {
        latencies_ms.push(w.await.expect("waiter"));
    }
    let flood_failed = a_failed(&pipeline).await - a_before;
    stop.store(true, Ordering::Relaxed);
    Run { latencies_ms, flood_failed }
}

/// How many of A's messages have failed (every one of them fails: the budget stops it).
async fn a_failed(pipeline: &Pipeline) -> u64 {
    let store = pipeline.store();
    let counts = tokio::task::spawn_blocking(move || store.message_counts()).await.expect("join").expect("counts");
    counts.iter().filter(|c| c.tenant == A && c.state == MessageState::Failed).map(|c| c.count).sum()
}

/// The 0201 single-person fixture for `tenant` as reader, with `uuid`.
fn message(tenant: &str, uuid: &str) -> Vec<u8> {
    let text = String::from_utf8(efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("utf-8");
    let start = text.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
    let end = start + text[start..].find('<').expect("end");
    format!("{}{uuid}{}", &text[..start], &text[end..]).replace("ags:09162000", &format!("ags:{tenant}")).into_bytes()
}

async fn submit(pipeline: &Pipeline, body: &[u8]) -> String {
    match pipeline.submit(body.to_vec(), &Caller::Admin).await.expect("accepted") {
        Submitted::Accepted(r) | Submitted::Duplicate(r) => r.message_uuid,
    }
}

/// Waits until the message is no longer `accepted`.
async fn wait(pipeline: &Pipeline, tenant: &str, uuid: &str) -> MessageState {
    let mut processed = pipeline.processed();
    loop {
        let store = pipeline.store();
        let (t, u) = (tenant.to_owned(), uuid.to_owned());
        let status = tokio::task::spawn_blocking(move || store.message_status(Some(&t), &u))
            .await
            .expect("join")
            .expect("status")
            .expect("known message");
        if status.state != MessageState::Accepted {
            return status.state;
        }
        processed.changed().await.expect("pipeline alive");
    }
}
