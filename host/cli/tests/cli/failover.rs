//! Failover on PostgreSQL: three `efile-bridge serve` processes share one database, a client
//! posts to all of them, one is killed with SIGKILL mid-load and started again. Afterwards
//! every acknowledged message is processed exactly once, no record is duplicated, every record
//! version reached the downstream e-file system under one idempotency key, and `verify` passes.
//!
//! Needs the PostgreSQL of the test run (`EFILE_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); without one it fails, it does not skip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use efile_bridge_store::Storage;
use efile_bridge_tests::backend::{fresh_postgres_database, raw_journal_at};

use crate::support::{root, xmeld_wasm};

const HOSTS: usize = 3;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A downstream e-file system: answers 200 to every POST and records each request's
/// idempotency key with the SHA-256 of its body (without the multipart boundary).
/// (idempotency key, body digest) of every request the downstream system received.
type Received = Arc<Mutex<Vec<(String, String)>>>;

fn downstream() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/records", listener.local_addr().expect("addr"));
    let seen: Received = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let (mut key, mut length, mut chunked) = (String::new(), 0usize, false);
                    let mut boundary = String::new();
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            match name.trim().to_ascii_lowercase().as_str() {
                                "idempotency-key" => key = value.trim().to_owned(),
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
                                "content-type" => {
                                    boundary = value.split("boundary=").nth(1).unwrap_or("").trim().to_owned()
                                }
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    while chunked {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                        let mut chunk = vec![0; size + 2];
                        if reader.read_exact(&mut chunk).is_err() {
                            return;
                        }
                        body.extend_from_slice(&chunk[..size]);
                        chunked = size > 0;
                    }
                    // The multipart boundary is random per request; the content must not be.
                    let content = String::from_utf8_lossy(&body).replace(&boundary, "");
                    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
                    log.lock().expect("lock").push((key, digest));
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

struct Node {
    config: PathBuf,
    data: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
            .args(["--config", self.config.to_str().expect("utf-8"), "serve"])
            .env("EFILE_BRIDGE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        self.child = Some(child);
    }

    async fn wait_healthy(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base())).send().await
                && r.status().is_success()
            {
                return;
            }
            let child = self.child.as_mut().expect("started");
            assert!(child.try_wait().expect("wait").is_none(), "serve on port {} exited during start", self.port);
            assert!(Instant::now() < deadline, "serve on port {} did not become healthy", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }
}

fn node(dir: &Path, n: usize, storage: &str, sink: &str) -> Node {
    let data = dir.join(format!("host-{n}"));
    std::fs::create_dir_all(&data).expect("data dir");
    let port = free_port();
    let config = dir.join(format!("host-{n}.toml"));
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\nstorage = \"{storage}\"\nhost_id = \"host-{n}\"\nhost_lease_secs = 3\n\
             listen = \"127.0.0.1:{port}\"\ncheckpoint_interval_secs = 1\n[auth]\nmode = \"open\"\n\
             [[adapter]]\nname = \"xmeld\"\ncomponent = \"{wasm}\"\n\
             [[tenant]]\nags = \"09162000\"\nname = \"München\"\nadapters = [\"xmeld\"]\n\
             [[tenant.sink]]\nname = \"dms\"\nkind = \"http\"\nurl = \"{sink}\"\nmax_attempts = 20\n",
            data = data.display(),
            wasm = xmeld_wasm().display(),
        ),
    )
    .expect("config");
    Node { config, data, port, child: None }
}

fn message(template: &str, n: usize) -> (String, String) {
    let uuid = format!("f0000000-0000-4000-8000-{n:012x}");
    let start = template.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
    let end = start + template[start..].find('<').expect("end");
    (uuid.clone(), format!("{}{uuid}{}", &template[..start], &template[end..]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_survive_one_killed_mid_load_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let storage = fresh_postgres_database();
    let (sink, received) = downstream();
    let mut nodes: Vec<Node> = (0..HOSTS).map(|n| node(tmp.path(), n, &storage, &sink)).collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    // The first host creates the installation's signing key; the others get a copy of it.
    nodes[0].start();
    nodes[0].wait_healthy(&client).await;
    for n in 1..HOSTS {
        efile_bridge_tests::share_signing_key(&nodes[0].data, &nodes[n].data);
        nodes[n].start();
    }
    for node in &mut nodes[1..] {
        node.wait_healthy(&client).await;
    }
    let bases: Vec<String> = nodes.iter().map(Node::base).collect();
    let template = std::fs::read_to_string(
        root().join("plugins/adapters/xmeld/tests/fixtures/anmeldung-0201-single-person/input.xml"),
    )
    .expect("fixture");

    // Four clients post round-robin to all hosts; a message whose answer is lost is sent again
    // (same nachrichtenUUID) to the next host, as a careful sender would.
    let acknowledged: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for worker in 0..4 {
        let (client, bases, template) = (client.clone(), bases.clone(), template.clone());
        let (acknowledged, stop, acks, retried) = (acknowledged.clone(), stop.clone(), acks.clone(), retried.clone());
        clients.push(tokio::spawn(async move {
            let mut n = worker;
            let mut host = worker;
            while !stop.load(Ordering::SeqCst) {
                let (uuid, body) = message(&template, n);
                n += 4;
                let mut tries = 0;
                loop {
                    host = (host + 1) % bases.len();
                    let answer = client
                        .post(format!("{}/v1/messages", bases[host]))
                        .header("content-type", "application/xml")
                        .body(body.clone())
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status().as_u16() == 202 || r.status().as_u16() == 200 => {
                            acknowledged.lock().expect("lock").insert(uuid.clone());
                            acks.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Ok(r) => panic!("unexpected answer {} from {}", r.status(), bases[host]),
                        Err(_) => {
                            retried.fetch_add(1, Ordering::SeqCst);
                            tries += 1;
                            assert!(tries < 20, "no host answers");
                        }
                    }
                }
            }
        }));
    }
    let wait_for = |target: usize| {
        let acks = acks.clone();
        async move {
            while acks.load(Ordering::SeqCst) < target {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(60).await;
    let victim = 1;
    nodes[victim].kill();
    let killed_at = tokio::time::Instant::now();
    let at_kill = acks.load(Ordering::SeqCst);
    wait_for(at_kill + 60).await;
    // Past the lease (3 s) the others take over what the dead host accepted but had not
    // processed; its restart then finds its own claims gone.
    tokio::time::sleep_until(killed_at + Duration::from_secs(4)).await;
    nodes[victim].start();
    nodes[victim].wait_healthy(&client).await;
    wait_for(acks.load(Ordering::SeqCst) + 40).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();

    // Every acknowledged message is processed, whichever host one asks.
    for (i, uuid) in acknowledged.iter().enumerate() {
        let base = &bases[i % HOSTS];
        let r = client.get(format!("{base}/v1/messages/{uuid}?wait=20")).send().await.expect("get");
        let status: serde_json::Value = r.json().await.expect("json");
        assert_eq!(status["state"], "processed", "acknowledged {uuid} not processed: {status}");
        assert_eq!(status["documents"].as_array().map(Vec::len), Some(1), "{status}");
    }
    // Every record version reaches the downstream system (retried by a live host if the
    // killed one had claimed it).
    let deadline = Instant::now() + Duration::from_secs(60);
    let keys = loop {
        let keys: BTreeMap<String, BTreeSet<String>> =
            received.lock().expect("lock").iter().fold(BTreeMap::new(), |mut m, (k, d)| {
                m.entry(k.clone()).or_default().insert(d.clone());
                m
            });
        if keys.len() >= acknowledged.len() || Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for node in &mut nodes {
        node.stop();
    }

    let journal = raw_journal_at(&storage);
    let accepted = crate::support::accepted_exactly_once(&journal, &acknowledged);
    let delivered = journal.iter().filter(|e| e.kind == "delivered").fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.meta_str("key")).or_insert(0usize) += 1;
        m
    });
    assert_eq!(delivered.len(), accepted.len(), "one delivery per record version");
    assert!(delivered.values().all(|n| *n == 1), "a record version was recorded as delivered twice");
    assert_eq!(keys.len(), accepted.len(), "every record version reached the downstream system");
    assert!(keys.values().all(|bodies| bodies.len() == 1), "one idempotency key carried two different records");
    let resent: usize = received.lock().expect("lock").len() - keys.len();

    let store = efile_bridge_store::open(Some(&storage), &nodes[0].data).expect("open");
    let report = tokio::task::spawn_blocking(move || store.verify(&|_| {})).await.expect("join").expect("verify");
    eprintln!(
        "failover: {HOSTS} hosts, host-{victim} killed after {at_kill} acknowledgements and restarted; {} acknowledged, \
         {} accepted, {} requests re-sent by clients, {resent} deliveries re-sent under their key; 0 lost, 0 duplicated; \
         verify ok ({} entries, {} checkpoints)",
        acknowledged.len(),
        accepted.len(),
        retried.load(Ordering::SeqCst),
        report.entries,
        report.checkpoints
    );
}
