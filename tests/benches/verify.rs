//! `verify` throughput: fills a fresh store with message payloads (the real 0201 family
//! fixture, repeated to the requested body size, with fresh UUIDs), then runs the full
//! verification and prints payload MB/s next to the raw SHA-256 speed of this machine,
//! measured in the same process.
//!
//! `cargo bench -p efile-bridge-tests --bench verify -- [--mb 512] [--body-kib 256]`

use std::time::Instant;

use efile_bridge_store::{Direction, NewMessage, Storage, Store};
use sha2::{Digest, Sha256};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let total_mb = arg("--mb", 512);
    let body_kib = arg("--body-kib", 256);
    let fixture = efile_bridge_tests::fixture("anmeldung-0201-family-of-three");
    let mut body = Vec::with_capacity(body_kib * 1024);
    while body.len() < body_kib * 1024 {
        body.extend_from_slice(&fixture);
    }
    body.truncate(body_kib * 1024);
    let count = total_mb * 1024 / body_kib;

    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path()).expect("open");
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (store, body) = (&store, &body);
            s.spawn(move || {
                for n in (t..count).step_by(8) {
                    let msg = NewMessage {
                        tenant: "09162000".into(),
                        standard: "XMeld".into(),
                        version: "25.11a".into(),
                        message_type: "0201".into(),
                        message_name: "rueckmeldung.anmeldunginland.0201".into(),
                        message_uuid: format!("b0000000-0000-4000-8000-{n:012x}"),
                        created_at: "2026-01-01T00:00:00Z".into(),
                        direction: Direction::Incoming,
                        host: None,
                        body: body.clone(),
                    };
                    store.accept(msg).expect("accept");
                }
            });
        }
    });
    let fill = started.elapsed().as_secs_f64();
    store.checkpoint().expect("checkpoint");
    println!(
        "filled {count} messages of {body_kib} KiB ({total_mb} MB) in {fill:.1} s ({:.0} MB/s accepted)",
        total_mb as f64 / fill
    );

    // Baseline: SHA-256 of the same bytes on one core, in this process.
    let data = vec![0xa5u8; 64 << 20];
    let t = Instant::now();
    std::hint::black_box(Sha256::digest(&data));
    let sha_mb_s = 64.0 * 1.048_576 / t.elapsed().as_secs_f64();

    let report = store.verify(&|_| {}).expect("verify");
    let mb = report.payload_bytes as f64 / 1e6;
    println!(
        "verify: {} entries, {} payloads, {mb:.0} MB in {:.2} s: {:.0} MB/s payload ({:.2} s in all)",
        report.entries,
        report.payloads,
        report.payload_seconds,
        mb / report.payload_seconds,
        report.seconds
    );
    println!(
        "sha-256 baseline, one core: {sha_mb_s:.0} MB/s; verify/baseline = {:.2}",
        mb / report.payload_seconds / sha_mb_s
    );
}
