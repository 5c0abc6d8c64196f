//! Delivery throughput to a local HTTP e-file system: N record versions (0201 single-person
//! messages, one record each, a different person each) queued while the downstream holds its
//! answers, delivered by the host's `http` sink to a hyper
//! server on 127.0.0.1 that answers 201 at once. Baseline in the same process: the same
//! multipart requests sent by a bare reqwest client with the same concurrency, so the ratio
//! shows what the durable queue (claim, item read, outcome + journal entry per delivery) costs
//! over HTTP alone.
//!
//! `cargo bench -p efile-bridge-tests --bench delivery -- [--records 5000] [--concurrency 16]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use efile_bridge_pipeline::config::{SinkConfig, SinkKind};
use efile_bridge_pipeline::{Caller, Pipeline};
use efile_bridge_store::DeliveryState;
use http_body_util::{BodyExt, Full};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A downstream that holds every request until `gate` is true, then answers 201.
async fn downstream(count: Arc<AtomicU64>, gate: tokio::sync::watch::Receiver<bool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/ablage", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (count, gate) = (count.clone(), gate.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (count, mut gate) = (count.clone(), gate.clone());
                    async move {
                        let _ = req.into_body().collect().await;
                        let _ = gate.wait_for(|open| *open).await;
                        count.fetch_add(1, Ordering::Relaxed);
                        let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                        *r.status_mut() = hyper::StatusCode::CREATED;
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    url
}

fn main() {
    let n = arg("--records", 5000);
    let concurrency = arg("--concurrency", 16);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let count = Arc::new(AtomicU64::new(0));
        let (gate, gated) = tokio::sync::watch::channel(true);
        let url = downstream(count.clone(), gated).await;
        let template = String::from_utf8(efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("utf-8");
        let start = template.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
        let end = start + template[start..].find('<').expect("end");
        // A different person per message (name and idNr): one citizen's records are delivered
        // one after the other, by design, so one person N times would measure that instead.
        let body = |i: usize| {
            format!("{}e1000000-0000-4000-8000-{i:012x}{}", &template[..start], &template[end..])
                .replace("<name>Brandl</name>", &format!("<name>Brandl{i}</name>"))
                .replace(
                    "<xmeld:idNr>08962367457</xmeld:idNr>",
                    &format!("<xmeld:idNr>{:011}</xmeld:idNr>", 10_000_000_000u64 + i as u64),
                )
        };

        // Baseline: the same kind of request, straight from a client.
        let client = reqwest::Client::new();
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, next, url, xml) = (client.clone(), next.clone(), url.clone(), body(0));
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                    let form = reqwest::multipart::Form::new()
                        .part("metadata", reqwest::multipart::Part::text("{\"idempotency_key\":\"x\"}"))
                        .part("original", reqwest::multipart::Part::bytes(xml.clone().into_bytes()).file_name("m.xml"));
                    let resp = client.post(&url).multipart(form).send().await.expect("send");
                    assert!(resp.status().is_success());
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let baseline = n as f64 / started.elapsed().as_secs_f64();
        count.store(0, Ordering::Relaxed);

        // The host: file N records while the downstream holds every request, then open it and
        // time the drain: delivery alone.
        gate.send_replace(false);
        let dir = tempfile::tempdir().expect("tmp");
        let mut config = efile_bridge_tests::config(dir.path());
        config.tenants.truncate(1);
        config.tenants[0].sinks.push(SinkConfig {
            name: "bench".into(),
            kind: SinkKind::Http,
            url: Some(url.clone()),
            folder: None,
            authorization: None,
            authorization_env: None,
            timeout_ms: 30_000,
            max_attempts: 10,
            backoff_initial_ms: 1000,
            backoff_max_secs: 60,
            concurrency,
        });
        let pipeline = Arc::new(Pipeline::start(config).expect("start"));
        let mut processed = pipeline.processed();
        let started = Instant::now();
        let bodies = Arc::new(std::sync::Mutex::new((0..n).map(|i| body(i).into_bytes()).collect::<Vec<_>>()));
        let mut senders = Vec::new();
        for _ in 0..32 {
            let (pipeline, bodies) = (pipeline.clone(), bodies.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let Some(b) = bodies.lock().expect("lock").pop() else { break };
                    pipeline.submit(b, &Caller::Admin).await.expect("accepted");
                }
            }));
        }
        for s in senders {
            s.await.expect("sender");
        }
        while *processed.borrow_and_update() < n as u64 {
            processed.changed().await.expect("alive");
        }
        let filed = started.elapsed().as_secs_f64();
        let store = pipeline.store();
        let opened = Instant::now();
        gate.send_replace(true);
        loop {
            let s = store.clone();
            let pending = tokio::task::spawn_blocking(move || s.deliveries(None, Some(DeliveryState::Pending), 1))
                .await
                .expect("join")
                .expect("read");
            if pending.is_empty() && count.load(Ordering::Relaxed) >= n as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain = opened.elapsed().as_secs_f64();
        let delivered = count.load(Ordering::Relaxed);
        let rate = n as f64 / drain;
        println!("baseline (bare reqwest, {concurrency} in flight): {baseline:.0} requests/s");
        println!(
            "host: {n} messages filed in {filed:.2} s; queue of {delivered} record versions drained in {drain:.2} s: \
             {rate:.0} deliveries/s ({:.2}x of baseline; each a claim, a read, an HTTP request and a journal entry)",
            rate / baseline
        );
    });
}
