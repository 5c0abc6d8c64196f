//! Throughput of 1, 2 and 3 hosts on one PostgreSQL database, against the embedded SQLite
//! store in the same process as the baseline.
//!
//! Each "host" is a full pipeline (its own store with writer thread and connections, its own
//! sandbox workers and `host_id`), started in this process on the PostgreSQL of the test run
//! (`EFILE_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/postgres`; a fresh
//! database per run). 64 senders submit generated messages round-robin to the hosts; the
//! figure is messages acknowledged (durable) and processed per second. Each setup runs twice:
//! all messages for one tenant (a batch for that tenant waits for another host's batch for it)
//! and spread over several tenants (hosts file side by side and meet only at the journal
//! lock). On one machine the hosts share its cores, so the figure shows how the design
//! scales on the database side (the locks, batching), not what more machines would add.
//!
//! `cargo bench -p efile-bridge-tests --bench hosts -- [--messages 6000] [--hosts 3] [--tenants 6]`

use std::sync::Arc;
use std::time::Instant;

use efile_bridge_pipeline::{Caller, Config, Pipeline};
use efile_bridge_tests::generator::{Generator, Kind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let n: usize = value("--messages").and_then(|v| v.parse().ok()).unwrap_or(6_000);
    let max_hosts: usize = value("--hosts").and_then(|v| v.parse().ok()).unwrap_or(3);
    let spread: usize = value("--tenants").and_then(|v| v.parse().ok()).unwrap_or(6).clamp(1, 9);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        for tenants in [1, spread] {
            let codes: Vec<String> = (0..tenants).map(efile_bridge_tests::spread_tenant_ags).collect();
            let mut generator = Generator::new(1);
            let bodies: Vec<Vec<u8>> = (0..n)
                .map(|i| generator.message(Kind::ALL[i % Kind::ALL.len()], &codes[i % tenants]).xml)
                .collect();
            let label = if tenants == 1 { "1 tenant".to_owned() } else { format!("{tenants} tenants") };
            let (acked, done, lock) = run(&bodies, 1, tenants, None).await;
            println!(
                "{label}, sqlite, 1 host: acknowledged {acked:.0} msg/s, processed {done:.0} msg/s (baseline); {lock}"
            );
            let baseline = done;
            for hosts in 1..=max_hosts {
                let url = efile_bridge_tests::backend::fresh_postgres_database();
                let (acked, done, lock) = run(&bodies, hosts, tenants, Some(url)).await;
                println!(
                    "{label}, postgres, {hosts} host{}: acknowledged {acked:.0} msg/s, processed {done:.0} msg/s ({:.2}x the sqlite baseline); {lock}",
                    if hosts == 1 { "" } else { "s" },
                    done / baseline
                );
            }
        }
    });
}

fn config(dir: &std::path::Path, storage: Option<&str>, host: usize, tenants: usize) -> Config {
    let mut config = efile_bridge_tests::config(dir);
    efile_bridge_tests::spread_tenants(&mut config, tenants);
    config.storage = storage.map(str::to_owned);
    config.host_id = Some(format!("bench-{host}"));
    config
}

/// Sends every body once, round-robin over `hosts` pipelines; (acknowledged/s, processed/s,
/// how the journal's write lock was used).
async fn run(bodies: &[Vec<u8>], hosts: usize, tenants: usize, storage: Option<String>) -> (f64, f64, String) {
    let dirs: Vec<tempfile::TempDir> = (0..hosts).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let mut pipelines = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if i > 0 {
            efile_bridge_tests::share_signing_key(dirs[0].path(), dir.path());
        }
        pipelines.push(Arc::new(Pipeline::start(config(dir.path(), storage.as_deref(), i, tenants)).expect("start")));
    }
    let n = bodies.len();
    let queue = Arc::new(std::sync::Mutex::new(bodies.iter().cloned().enumerate().collect::<Vec<_>>()));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..64 {
        let (pipelines, queue) = (pipelines.clone(), queue.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some((i, body)) = queue.lock().expect("lock").pop() else { break };
                pipelines[i % pipelines.len()].submit(body, &Caller::Admin).await.expect("accepted");
            }
        }));
    }
    for s in senders {
        s.await.expect("sender");
    }
    let acked = started.elapsed().as_secs_f64();
    let mut watches: Vec<_> = pipelines.iter().map(|p| p.processed()).collect();
    loop {
        let total: u64 = watches.iter_mut().map(|w| *w.borrow_and_update()).sum();
        if total >= n as u64 {
            break;
        }
        let changed = watches.iter_mut().map(|w| Box::pin(w.changed()));
        let _ = futures_select(changed).await;
    }
    let done = started.elapsed().as_secs_f64();
    // Held time summed over the hosts against the wall clock: near 100 % the lock is the
    // bottleneck (one batch at a time), and more hosts cannot add throughput.
    let locks: Vec<_> = pipelines.iter().map(|p| p.store().write_lock()).collect();
    let held: f64 = locks.iter().map(|l| l.held_seconds).sum();
    let wait: f64 = locks.iter().map(|l| l.wait_seconds).sum();
    let tenant_wait: f64 = locks.iter().map(|l| l.tenant_wait_seconds).sum();
    let batches: u64 = locks.iter().map(|l| l.batches).sum();
    let writes: u64 = locks.iter().map(|l| l.writes).sum();
    let lock = format!(
        "journal lock held {:.0} % of the time, waited for {:.1} s in all (tenant locks {:.1} s), {batches} batches of {:.1} writes, {:.2} ms held per write",
        100.0 * held / done,
        wait,
        tenant_wait,
        writes as f64 / batches.max(1) as f64,
        1000.0 * held / writes.max(1) as f64
    );
    (n as f64 / acked, n as f64 / done, lock)
}

/// Waits until any of the watches changes.
async fn futures_select<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(|cx| {
        for f in &mut futures {
            if std::pin::Pin::new(&mut *f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}
