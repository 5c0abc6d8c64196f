//! Sandbox vs native: maps the same XMeld 0201 fixtures through the adapter component
//! (fresh instance per message, limits on, exactly as the pipeline does) and through the same
//! mapping code compiled natively, in one process, and prints µs/message and the ratio.
//!
//! `cargo bench -p efile-bridge-tests --bench sandbox` (add `-- --quick` for a short run).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use efile_adapter_xmeld::XmeldAdapter;
use efile_bridge_devkit::message_info;
use efile_bridge_runtime::SandboxLimits;
use efile_bridge_sdk::Adapter as _;

/// Median of `rounds` timings of `iters` calls, in µs per call.
fn measure(rounds: usize, iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters {
        f();
    }
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, budget) = if quick { (5, Duration::from_millis(100)) } else { (21, Duration::from_millis(300)) };
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::xmeld_wasm());
    let (_probe_rt, probe) = efile_bridge_tests::load(&efile_bridge_tests::probe_wasm());
    let limits = SandboxLimits::default();
    let config: Arc<BTreeMap<String, String>> = Arc::new(BTreeMap::new());

    println!(
        "{:<32} {:>8} {:>12} {:>12} {:>8} {:>12}",
        "fixture", "bytes", "native µs", "sandbox µs", "ratio", "overhead µs"
    );
    for case in ["anmeldung-0201-single-person", "anmeldung-0201-family-of-three", "anmeldung-0201-large-umzugsverband"]
    {
        let xml = String::from_utf8(efile_bridge_tests::fixture(case)).expect("utf-8");
        let info = message_info(xml.as_bytes()).expect("info");
        // Calibrate iterations so one round takes about `budget`.
        let one = {
            let s = Instant::now();
            let _ = runtime.map(&adapter, config.clone(), &limits, &info, &xml);
            s.elapsed()
        };
        let iters = (budget.as_secs_f64() / one.as_secs_f64().max(1e-6)).clamp(10.0, 100_000.0) as u32;
        let native = measure(rounds, iters, || {
            black_box(XmeldAdapter::map(black_box(&info), black_box(&xml), &*config).expect("native"));
        });
        let sandbox = measure(rounds, iters, || {
            black_box(
                runtime.map(&adapter, config.clone(), &limits, black_box(&info), black_box(&xml)).expect("sandbox"),
            );
        });
        println!(
            "{:<32} {:>8} {:>12.1} {:>12.1} {:>7.2}x {:>12.1}",
            case.trim_start_matches("anmeldung-"),
            xml.len(),
            native,
            sandbox,
            sandbox / native,
            sandbox - native
        );
    }
    // The fixed cost of one sandboxed call: a fresh instance of an adapter that does almost
    // nothing (the probe echoes the message info), with the same single-person message.
    let xml = String::from_utf8(efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("utf-8");
    let info = message_info(xml.as_bytes()).expect("info");
    let probe_config = Arc::new(BTreeMap::from([("mode".to_owned(), "ok".to_owned())]));
    let fixed = measure(rounds, 2000, || {
        black_box(_probe_rt.map(&probe, probe_config.clone(), &limits, &info, &xml).expect("probe"));
    });
    println!("fixed per-message cost (fresh instance + call + copy in/out, near-empty adapter): {fixed:.1} µs");
}
