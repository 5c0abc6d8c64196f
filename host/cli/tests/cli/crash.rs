//! Crash safety under load: a real `efile-bridge serve` is killed with SIGKILL at a random
//! point while clients post messages, then restarted. After every cycle and at the end:
//! every acknowledged message is in the journal exactly once and processed exactly once, and
//! `verify` passes.
//!
//! `KILL_CYCLES=N` sets the number of cycles (default 3 in the suite);
//! `scripts/kill-loop.sh` runs many and prints the summary. With `EFILE_TEST_BACKEND=postgres`
//! the host runs on a fresh PostgreSQL database (`scripts/test.sh` runs it on both).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use efile_bridge_store::Storage;

use crate::support::{root, write_config};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn start(config: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
        .args(["--config", config.to_str().expect("utf-8"), "serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("EFILE_BRIDGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve")
}

async fn wait_healthy(client: &reqwest::Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(child.try_wait().expect("wait").is_none(), "serve exited during start");
        assert!(Instant::now() < deadline, "serve did not become healthy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message(template: &str, cycle: usize, n: usize) -> (String, String) {
    let uuid = format!("c0000000-{cycle:04x}-4000-8000-{n:012x}");
    let start = template.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
    let end = start + template[start..].find('<').expect("end");
    (uuid.clone(), format!("{}{uuid}{}", &template[..start], &template[end..]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once() {
    let cycles: usize = std::env::var("KILL_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let seed = std::env::var("KILL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("kill loop: {cycles} cycles, seed {seed} (KILL_SEED={seed} reproduces the kill points)");
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(tmp.path());
    let template = std::fs::read_to_string(
        root().join("plugins/adapters/xmeld/tests/fixtures/anmeldung-0201-single-person/input.xml"),
    )
    .expect("fixture");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut unacknowledged = 0usize;

    for cycle in 0..cycles {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = start(&config, port);
        wait_healthy(&client, &base, &mut child).await;
        // Everything acknowledged so far is processed after the restart.
        let so_far = acknowledged.lock().expect("lock").clone();
        for uuid in so_far {
            let r = client.get(format!("{base}/v1/messages/{uuid}?wait=10")).send().await.expect("get");
            let status: serde_json::Value = r.json().await.expect("json");
            assert_eq!(status["state"], "processed", "cycle {cycle}: acknowledged {uuid} not processed: {status}");
        }
        // A signed checkpoint before the load: the next start checks the journal against it.
        let cp = client.post(format!("{base}/v1/checkpoints")).send().await.expect("checkpoint");
        assert!(cp.status().is_success() || cp.status().as_u16() == 404, "{}", cp.status());
        let kill_after = rng.usize(1..=40);
        let acks = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for worker in 0..4 {
            let (client, base, template) = (client.clone(), base.clone(), template.clone());
            let (acks, stop, sent, acknowledged) = (acks.clone(), stop.clone(), sent.clone(), acknowledged.clone());
            clients.push(tokio::spawn(async move {
                let mut failed = 0usize;
                let mut n = worker;
                while !stop.load(Ordering::SeqCst) {
                    let (uuid, body) = message(&template, cycle, n);
                    n += 4;
                    sent.fetch_add(1, Ordering::SeqCst);
                    let answer = client
                        .post(format!("{base}/v1/messages"))
                        .header("content-type", "application/xml")
                        .body(body)
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status().as_u16() == 202 || r.status().as_u16() == 200 => {
                            acknowledged.lock().expect("lock").insert(uuid);
                            acks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => panic!("unexpected answer {}", r.status()),
                        Err(_) => {
                            // The host is gone: this one was never acknowledged.
                            failed += 1;
                            if failed > 3 {
                                break;
                            }
                        }
                    }
                }
                failed
            }));
        }
        while acks.load(Ordering::SeqCst) < kill_after {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            unacknowledged += c.await.expect("client");
        }
        eprintln!(
            "cycle {cycle}: killed after {} acknowledgements ({} sent)",
            acks.load(Ordering::SeqCst),
            sent.load(Ordering::SeqCst)
        );
    }

    // A last start processes what the last kill left pending; then a clean stop.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(&config, port);
    wait_healthy(&client, &base, &mut child).await;
    let acknowledged = acknowledged.lock().expect("lock").clone();
    for uuid in &acknowledged {
        let r = client.get(format!("{base}/v1/messages/{uuid}?wait=10")).send().await.expect("get");
        let status: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status["state"], "processed", "acknowledged {uuid} not processed: {status}");
        assert_eq!(status["documents"].as_array().map(Vec::len), Some(1), "{status}");
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    let data = tmp.path().join("data");
    let journal = efile_bridge_tests::backend::raw_journal(&data);
    let accepted = crate::support::accepted_exactly_once(&journal, &acknowledged);
    let documents = efile_bridge_tests::backend::raw_query_i64(&data, "SELECT COUNT(*) FROM documents");
    assert_eq!(documents as usize, accepted.len(), "one record per message, none duplicated");
    let report = efile_bridge_tests::backend::open_store(&data).expect("open").verify(&|_| {}).expect("verify passes");
    eprintln!(
        "kill loop result: {cycles} cycles, {} acknowledged, {} in the journal ({} accepted but never acknowledged), \
         {unacknowledged} failed requests, 0 lost, 0 duplicated; verify ok ({} entries, {} checkpoints)",
        acknowledged.len(),
        accepted.len(),
        accepted.len() - acknowledged.len(),
        report.entries,
        report.checkpoints
    );
}
