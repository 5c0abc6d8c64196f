//! Many tenants, one installation: startup time and memory with 400 tenants (distinct AGS,
//! two API tokens and the adapter config keys each, every fourth with aliases) that share the
//! `xmeld` and `einheitsakte` adapters, against a one-tenant baseline in the same run.
//!
//! Every measurement runs in a child process (this binary re-executed with `--child`), so
//! its RSS holds nothing of the parent or of an earlier run:
//!
//! - cold: empty data directory, so an empty store and an empty compile cache;
//! - warm: the same data directory again (store from the cold run, precompiled adapters on
//!   disk). The parent checks that the warm start left the cache files untouched: the runtime
//!   writes a cache file after every compilation, so an unchanged file means no recompile.
//!
//! The child does what `efile-bridge serve` does (config, `Pipeline::start`, HTTP listener,
//! drop-folder watcher) and times it, then posts the first message (to the last tenant in the
//! config, with that tenant's own token) and waits until it is processed; then it posts one
//! message to each of `--messages` tenants spread over the list and waits for them too. It
//! reads VmRSS, VmHWM, RssAnon, RssFile and VmSize from `/proc/self/status` after the start and
//! after the messages, notes when the drop-folder watcher has prepared every tenant's folder,
//! and measures the CPU it uses while idle for three seconds afterwards. The baseline tenant
//! gets the same number of messages, so the difference is the tenant count.
//!
//! `cargo bench -p efile-bridge-tests --bench tenants -- [--tenants 400] [--messages 50] [--rounds 3]`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use efile_bridge_pipeline::config::token_hash;
use efile_bridge_pipeline::{Config, Pipeline};
use efile_bridge_tests::generator::{Generator, Kind};

/// Goals from the issue.
const GOAL_START: Duration = Duration::from_secs(2);
const GOAL_RSS_KIB: u64 = 300 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    if let Some(config) = value("--child") {
        let messages = value("--messages").and_then(|v| v.parse().ok()).unwrap_or(50);
        let seed = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(1);
        child(Path::new(config), messages, seed);
        return;
    }
    let tenants: usize = value("--tenants").and_then(|v| v.parse().ok()).unwrap_or(400);
    let messages: usize = value("--messages").and_then(|v| v.parse().ok()).unwrap_or(50);
    let rounds: usize = value("--rounds").and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    parent(tenants, messages, rounds);
}

/// What one child measured; printed as `key=value` pairs on one stdout line.
#[derive(Debug, Clone, Default)]
struct Sample {
    values: BTreeMap<String, f64>,
}

impl Sample {
    fn parse(line: &str) -> Self {
        let values = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or_else(|e| panic!("`{k}={v}`: {e}"))))
            .collect();
        Self { values }
    }

    fn get(&self, key: &str) -> f64 {
        *self.values.get(key).unwrap_or_else(|| panic!("child did not report `{key}`"))
    }
}

fn parent(tenants: usize, messages: usize, rounds: usize) {
    // Built once here (cargo, wasm32-wasip2), so no child pays for it.
    let xmeld = efile_bridge_tests::xmeld_wasm();
    let einheitsakte = efile_bridge_tests::einheitsakte_wasm();
    let exe = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("tmp");
    let names = |n: usize, kind: &str| format!("{n} tenant{} {kind}", if n == 1 { "" } else { "s" });
    let mut results: Vec<(String, Vec<Sample>)> = [1, tenants]
        .into_iter()
        .flat_map(|n| [(names(n, "cold"), Vec::new()), (names(n, "warm"), Vec::new())])
        .collect();
    let mut cache_reused = Vec::new();
    // Rounds outside, tenant counts inside: a build starting on the machine halfway through
    // then slows both counts alike instead of only the one measured last.
    for round in 0..rounds {
        for (i, n) in [1, tenants].into_iter().enumerate() {
            let base = dir.path().join(format!("t{n}-r{round}"));
            let data = base.join("data");
            let config = base.join("efile-bridge.toml");
            std::fs::create_dir_all(&base).expect("mkdir");
            std::fs::write(&config, config_toml(n, &data, &xmeld, &einheitsakte)).expect("write config");
            let seed = (n * 100 + round * 2) as u64;
            results[2 * i].1.push(run_child(&exe, &config, messages, seed));
            let before = cache_files(&data.join("cache"));
            results[2 * i + 1].1.push(run_child(&exe, &config, messages, seed + 1));
            let after = cache_files(&data.join("cache"));
            assert_eq!(before.len(), 2, "one precompiled artefact per distinct component, not per tenant: {before:?}");
            cache_reused.push(before == after);
            // Keep the disk small and the next round's page cache comparable.
            std::fs::remove_dir_all(&base).expect("clean up");
        }
    }
    print!("{}", table(&results, tenants, messages, rounds));
    println!(
        "warm starts that reused the precompiled cache unchanged: {}/{}",
        cache_reused.iter().filter(|r| **r).count(),
        cache_reused.len()
    );
    assert!(cache_reused.iter().all(|r| *r), "a warm start rewrote the compile cache, so it compiled again");
}

fn run_child(exe: &Path, config: &Path, messages: usize, seed: u64) -> Sample {
    let out = Command::new(exe)
        .arg("--child")
        .arg(config)
        .args(["--messages", &messages.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("run child");
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("child result line");
    Sample::parse(line)
}

/// Name, inode and mtime of each cached artefact: a rewrite (tmp file + rename) changes them.
fn cache_files(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .map(|e| e.expect("cache entry"))
        .map(|e| {
            let m = e.metadata().expect("metadata");
            (e.file_name().to_string_lossy().into_owned(), (m.ino(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// The AGS of tenant `i`: Rheinland-Pfalz numbers (`07…`), none of which the generator picks
/// as the counterpart of a message, so every message belongs to exactly the tenant it was
/// generated for.
fn ags(i: usize) -> String {
    format!("07{:06}", 1001 + i * 7)
}

fn config_toml(tenants: usize, data: &Path, xmeld: &Path, einheitsakte: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "data_dir = {:?}\nworkers = 2\n", data.display().to_string());
    for (name, path) in [("xmeld", xmeld), ("einheitsakte", einheitsakte)] {
        let _ = writeln!(t, "[[adapter]]\nname = \"{name}\"\ncomponent = {:?}\n", path.display().to_string());
    }
    for i in 0..tenants {
        let ags = ags(i);
        // Every third tenant files moves (0201) as household documents; the rest use xmeld.
        let adapters = if i % 3 == 0 { r#"["einheitsakte", "xmeld"]"# } else { r#"["xmeld"]"# };
        let tokens: Vec<String> =
            (0..2).map(|k| format!("\"sha256:{}\"", hex::encode(token_hash(&format!("token-{ags}-{k}"))))).collect();
        let _ = writeln!(t, "[[tenant]]\nags = \"{ags}\"\nname = \"Gemeinde {ags}\"\nadapters = {adapters}");
        let _ = writeln!(t, "tokens = [{}]", tokens.join(", "));
        if i % 4 == 0 {
            let _ = writeln!(t, "aliases = [\"dvdv:{ags}-meldebehoerde\", \"psb:{ags}_01\"]");
        }
        let _ = writeln!(t, "[tenant.config]");
        let _ = writeln!(t, "aktenplan = \"02.{:03}\"", i % 1000);
        let _ = writeln!(t, "\"aktenplan.meldewesen\" = \"12.20.{:02}\"", i % 100);
        let _ = writeln!(t, "\"aktenbetreff.meldewesen\" = \"Meldeakte {ags}\"");
        let _ = writeln!(t, "\"aktenplan.ausweiswesen\" = \"12.30.{:02}\"", i % 100);
        let _ = writeln!(t, "\"aufbewahrung.wegzug.jahre\" = \"{}\"\n", 5 + i % 3);
    }
    t
}

fn child(config_path: &Path, messages: usize, seed: u64) {
    let at_exec = status();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        // What `efile-bridge serve` does: config, pipeline, listener, drop-folder watcher, API.
        let t0 = Instant::now();
        let config = Config::load(config_path).unwrap_or_else(|e| panic!("{e}"));
        let loaded = t0.elapsed();
        let tenants: Vec<String> = config.tenants.iter().map(|t| t.ags.clone()).collect();
        let drop_folder = config.drop_folder();
        // The watcher prepares tenants in AGS order; the last one's last subfolder marks the end.
        let last_folder = drop_folder.join(tenants.iter().max().expect("a tenant")).join("failed");
        let pipeline = Arc::new(Pipeline::start(config).unwrap_or_else(|e| panic!("start: {e}")));
        let started = t0.elapsed();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(efile_bridge_server::drop_folder::run(pipeline.clone(), drop_folder, Duration::from_millis(500)));
        let options = efile_bridge_server::http::Options::default();
        tokio::spawn(efile_bridge_server::http::serve(pipeline.clone(), listener, options, std::future::pending()));
        let after_start = status();
        let folders = tokio::spawn(async move {
            while !last_folder.exists() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            t0.elapsed()
        });

        let mut generator = Generator::new(seed).max_persons(3);
        let mut processed = pipeline.processed();
        let last = tenants.last().expect("a tenant");
        let first = generator.message(Kind::Rueckmeldung0201, last);
        let t1 = Instant::now();
        post(addr, last, first.xml).await;
        processed_at_least(&mut processed, 1).await;
        let first_message = t1.elapsed();
        let ready = t0.elapsed();
        let after_first = status();

        let step = (tenants.len() / messages.max(1)).max(1);
        let t2 = Instant::now();
        for i in 0..messages {
            let tenant = &tenants[(i * step) % tenants.len()];
            let m = generator.message(Kind::ALL[i % Kind::ALL.len()], tenant);
            post(addr, tenant, m.xml).await;
        }
        processed_at_least(&mut processed, 1 + messages as u64).await;
        let rest = t2.elapsed();
        let after_messages = status();

        let folders_ready = folders.await.expect("drop folders");
        // Idle: only the checkpoint ticker and the drop-folder scans (every tenant's inbox,
        // twice a second) run now.
        let cpu_before = cpu_ticks();
        let idle = Duration::from_secs(3);
        tokio::time::sleep(idle).await;
        let idle_cpu = (cpu_ticks() - cpu_before) as f64 / CLOCK_TICKS_PER_SEC / idle.as_secs_f64() * 100.0;

        let metrics = pipeline.metrics().render(&pipeline.store().write_lock());
        let failed: Vec<&str> = metrics.lines().filter(|l| l.contains("outcome=\"failed\"")).collect();
        assert!(failed.is_empty(), "messages failed, so the figures are not valid: {failed:?}");

        let mut line = String::from("RESULT");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for (k, v) in [
            ("config_ms", ms(loaded)),
            ("start_ms", ms(started)),
            ("first_ms", ms(first_message)),
            ("ready_ms", ms(ready)),
            ("messages_ms", ms(rest)),
            ("folders_ms", ms(folders_ready)),
            ("idle_cpu_pct", idle_cpu),
        ] {
            let _ = write!(line, " {k}={v:.3}");
        }
        for (stage, s) in
            [("exec", &at_exec), ("start", &after_start), ("first", &after_first), ("msgs", &after_messages)]
        {
            for (k, v) in s {
                let _ = write!(line, " {stage}_{k}={v}");
            }
        }
        println!("{line}");
    });
}

/// Posts one message with the tenant's own API token (plain HTTP/1.1, so no client library
/// adds to the child's memory) and expects 202.
async fn post(addr: SocketAddr, ags: &str, body: Vec<u8>) {
    let token = format!("token-{ags}-0");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let head = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body)).expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        assert!(answer.starts_with("HTTP/1.1 202"), "not accepted: {answer}");
    })
    .await
    .expect("post");
}

/// `USER_HZ`, the unit of `utime` and `stime` in `/proc/self/stat`; 100 on every Linux
/// architecture this runs on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time of this process so far, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces; the fields after its `)` are fixed.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `rest` starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Memory figures of this process in KiB.
fn status() -> Vec<(&'static str, u64)> {
    let text = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    ["VmRSS", "VmHWM", "RssAnon", "RssFile", "VmSize"]
        .into_iter()
        .map(|key| {
            let kib = text
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in /proc/self/status"));
            (key, kib)
        })
        .collect()
}

fn median(samples: &[Sample], key: &str) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(|s| s.get(key)).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn range(samples: &[Sample], key: &str) -> (f64, f64) {
    let v = samples.iter().map(|s| s.get(key));
    (v.clone().fold(f64::INFINITY, f64::min), v.fold(0.0, f64::max))
}

fn table(results: &[(String, Vec<Sample>)], tenants: usize, messages: usize, rounds: usize) -> String {
    let mut out = String::new();
    let mib = |kib: f64| kib / 1024.0;
    let _ = writeln!(
        out,
        "median of {rounds} runs (ready: min-max); ms from the child's main(); MiB; \
         \"after msgs\" = after {messages} more messages to {} tenants",
        messages.min(tenants)
    );
    let _ = writeln!(
        out,
        "| run | config | start returns | first message | ready | {messages} msgs | drop folders | RSS start | \
         RSS after msgs | HWM after msgs | anon / file | VmSize GiB | idle CPU |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, s) in results {
        let (lo, hi) = range(s, "ready_ms");
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {:.1} | **{:.1}** ({lo:.0}-{hi:.0}) | {:.1} | {:.1} | {:.1} | {:.1} | **{:.1}** | \
             {:.1} / {:.1} | {:.0} | {:.1} % |",
            median(s, "config_ms"),
            median(s, "start_ms"),
            median(s, "first_ms"),
            median(s, "ready_ms"),
            median(s, "messages_ms"),
            median(s, "folders_ms"),
            mib(median(s, "start_VmRSS")),
            mib(median(s, "msgs_VmRSS")),
            mib(median(s, "msgs_VmHWM")),
            mib(median(s, "msgs_RssAnon")),
            mib(median(s, "msgs_RssFile")),
            mib(median(s, "msgs_VmSize")) / 1024.0,
            median(s, "idle_cpu_pct"),
        );
    }
    let find = |name: &str| results.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    let plural = if tenants == 1 { "" } else { "s" };
    for kind in ["cold", "warm"] {
        let one = find(&format!("1 tenant {kind}"));
        let many = find(&format!("{tenants} tenant{plural} {kind}"));
        if let (Some(one), Some(many)) = (one, many) {
            let ready = median(many, "ready_ms");
            let hwm = median(many, "msgs_VmHWM");
            let _ = writeln!(
                out,
                "{kind}: {tenants} vs 1 tenant: ready {:.2}x, HWM {:.2}x; goal ready <= {} ms: {}, HWM <= {} MiB: {}",
                ready / median(one, "ready_ms"),
                hwm / median(one, "msgs_VmHWM"),
                GOAL_START.as_millis(),
                if ready <= GOAL_START.as_secs_f64() * 1e3 { "met" } else { "MISSED" },
                GOAL_RSS_KIB / 1024,
                if hwm <= GOAL_RSS_KIB as f64 { "met" } else { "MISSED" },
            );
        }
    }
    out
}

/// Waits until the pipeline has processed (or failed) `n` messages since it started.
async fn processed_at_least(rx: &mut tokio::sync::watch::Receiver<u64>, n: u64) {
    while *rx.borrow_and_update() < n {
        rx.changed().await.expect("pipeline alive");
    }
}
