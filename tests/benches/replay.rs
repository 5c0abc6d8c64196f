//! Replay throughput: N journaled 0201 messages (a different person each) mapped again by an
//! installed adapter. Prints msg/s for a dry run and for real runs (same adapter: every record
//! byte-identical, nothing written; another adapter: one new version per message), and as the
//! baseline, in the same process, the bare sandbox mapping of the same messages on as many
//! threads as the replay uses.
//!
//! `cargo bench -p efile-bridge-tests --bench replay -- [--messages 5000]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use efile_bridge_package::{Manifest, PublisherKey};
use efile_bridge_pipeline::config::TrustedPublisher;
use efile_bridge_pipeline::replay::{ReplaySpec, run};
use efile_bridge_pipeline::{Caller, Pipeline};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tmp");
        let key = PublisherKey::generate().expect("key");
        let mut config = efile_bridge_tests::config(dir.path());
        config.tenants.truncate(1);
        config.tenants[0].config.insert("aktenplan".into(), "99.1".into());
        config.trusted_publishers.push(TrustedPublisher { name: "bench".into(), public_key: key.public_key() });
        let pipeline = Arc::new(Pipeline::start(config.clone()).expect("start"));
        let template = String::from_utf8(efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("utf-8");
        let start = template.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
        let end = start + template[start..].find('<').expect("end");
        let bodies: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                format!("{}e9000000-0000-4000-8000-{i:012x}{}", &template[..start], &template[end..])
                    .replace("<name>Brandl</name>", &format!("<name>Brandl{i}</name>"))
                    .replace("<xmeld:idNr>08962367457</xmeld:idNr>", &format!("<xmeld:idNr>{:011}</xmeld:idNr>", 10_000_000_000u64 + i as u64))
                    .into_bytes()
            })
            .collect();
        let mut processed = pipeline.processed();
        for b in &bodies {
            pipeline.submit(b.clone(), &Caller::Admin).await.expect("accepted");
        }
        while *processed.borrow_and_update() < n as u64 {
            processed.changed().await.expect("alive");
        }
        let runtime = pipeline.runtime();
        let store = pipeline.store();
        let mut versions = std::collections::BTreeMap::new();
        for wasm in [efile_bridge_tests::xmeld_wasm(), efile_bridge_tests::einheitsakte_wasm()] {
            let component = std::fs::read(&wasm).expect("component");
            let adapter = runtime.load(&component).expect("load");
            let manifest = Manifest::new(adapter.info(), "bench", &component);
            let bytes = efile_bridge_package::pack(&manifest, &component).expect("pack");
            let sig = efile_bridge_package::sign(&bytes, &key);
            efile_bridge_pipeline::adapters::install(&config, &runtime, store.as_ref(), &bytes, Some(&sig), "bench")
                .expect("install");
            versions.insert(manifest.name.clone(), manifest.version.clone());
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());

        // Baseline: the sandbox alone, same messages, same threads.
        let xmeld = runtime.load(&std::fs::read(efile_bridge_tests::xmeld_wasm()).expect("wasm")).expect("load");
        let infos: Vec<_> = {
            let q = efile_bridge_store::MessageQuery::all("09162000");
            store.journaled_messages(&q).expect("messages")
        };
        let limits = config.sandbox.to_limits();
        let tenant_config = Arc::new(config.tenants[0].config.clone());
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while let Some(m) = infos.get(next.fetch_add(1, Ordering::Relaxed)) {
                        runtime.map(&xmeld, tenant_config.clone(), &limits, &m.info, &m.body).expect("maps");
                    }
                });
            }
        });
        let baseline = infos.len() as f64 / started.elapsed().as_secs_f64();
        println!("baseline: sandbox mapping alone, {threads} threads: {baseline:.0} msg/s");

        for (name, dry_run) in [("xmeld", true), ("xmeld", false), ("einheitsakte", true), ("einheitsakte", false)] {
            let spec = ReplaySpec {
                messages: efile_bridge_store::MessageQuery::all("09162000"),
                name: name.into(),
                version: versions[name].clone(),
                dry_run,
                by: "bench".into(),
            };
            let (config, runtime, store) = (config.clone(), runtime.clone(), store.clone());
            let stats = tokio::task::spawn_blocking(move || run(&config, &runtime, store.as_ref(), &spec, &|_| {}))
                .await
                .expect("join")
                .expect("replay");
            let rate = stats.messages as f64 / stats.seconds;
            println!(
                "replay {name:<12} {:<8} {} messages in {:.2} s: {rate:.0} msg/s ({:.2}x of baseline); {} unchanged, {} new versions",
                if dry_run { "dry-run" } else { "for real" },
                stats.messages,
                stats.seconds,
                rate / baseline,
                stats.unchanged,
                stats.new_versions
            );
        }
    });
}
