//! Many municipalities behind one door: tokens, scoping, the admin and clerk APIs, metrics,
//! rate limits, reload without restart, TLS, and limits against hostile senders.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use efile_bridge_pipeline::config::{AuthMode, token_hash};
use efile_bridge_pipeline::{Caller, Config};
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

pub(crate) const MUENCHEN: &str = "ebt_muenchen-test-token";
pub(crate) const FRANKFURT: &str = "ebt_frankfurt-test-token";
const OTHER: &str = "ebt_other-test-token";
pub(crate) const ADMIN: &str = "ebt_admin-test-token";

fn hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(token_hash(token)))
}

pub(crate) fn with_tokens(c: &mut Config) {
    c.auth.mode = AuthMode::Tokens;
    c.auth.admin_tokens = vec![hash(ADMIN)];
    c.tenants[0].tokens = vec![hash(MUENCHEN)];
    c.tenants[1].tokens = vec![hash(FRANKFURT)];
    let mut other = c.tenants[0].clone();
    other.ags = "09000009".into();
    other.name = "Anderswo".into();
    other.tokens = vec![hash(OTHER)];
    c.tenants.push(other);
}

async fn as_token(host: &mut Host, token: Option<&str>) {
    host.token = token.map(str::to_owned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_who_posts_and_who_reads_what() {
    let mut host = Host::start_with(with_tokens).await;
    let single = fixture("anmeldung-0201-single-person");
    let family = fixture("anmeldung-0201-family-of-three");

    let (code, body) = host.post(single.clone()).await;
    assert_eq!((code, body["error"].as_str()), (401, Some("unauthenticated")), "{body}");
    as_token(&mut host, Some("ebt_nonsense")).await;
    let (code, body) = host.post(single.clone()).await;
    assert_eq!((code, body["error"].as_str()), (401, Some("invalid_token")), "{body}");

    // A tenant that is neither reader nor author may not post it.
    as_token(&mut host, Some(OTHER)).await;
    let (code, body) = host.post(single.clone()).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["reason"].as_str().expect("reason").contains("tenant 09000009 may only post"), "{body}");

    // The reader posts its incoming message; the author posts its own copy of another.
    as_token(&mut host, Some(MUENCHEN)).await;
    let (code, receipt) = host.post(single.clone()).await;
    assert_eq!((code, receipt["tenant"].as_str()), (202, Some("09162000")), "{receipt}");
    host.wait_processed(&uuid_of(&single)).await;
    as_token(&mut host, Some(FRANKFURT)).await;
    let (code, receipt) = host.post(family.clone()).await;
    assert_eq!((code, receipt["tenant"].as_str()), (202, Some("06412000")), "{receipt}");
    let status = host.wait_processed(&uuid_of(&family)).await;
    assert_eq!(status["direction"], "outgoing-copy");

    // Reading: own tenant only.
    let (code, _) = host.get("/v1/tenants/09162000/citizens").await;
    assert_eq!(code, 403);
    let (code, _) = host.get(&format!("/v1/messages/{}", uuid_of(&single))).await;
    assert_eq!(code, 404, "Frankfurt sees München's message");
    let (code, _) = host.get(&format!("/v1/messages/{}/proof", uuid_of(&single))).await;
    assert_eq!(code, 404, "Frankfurt gets München's receipt");
    as_token(&mut host, Some(MUENCHEN)).await;
    let (code, citizens) = host.get("/v1/tenants/09162000/citizens").await;
    assert_eq!(code, 200);
    let id = citizens[0]["citizen_id"].as_str().expect("id").to_owned();
    let (code, _) = host.get(&format!("/v1/tenants/06412000/citizens/{id}")).await;
    assert_eq!(code, 403);
    let (code, _) = host.get("/metrics").await;
    assert_eq!(code, 403, "a tenant reads the metrics");
    let (code, _) = host.get("/v1/admin/tenants").await;
    assert_eq!(code, 403, "a tenant uses the admin API");

    // Clerk search by name and birth date.
    let (_, hits) = host.get("/v1/tenants/09162000/citizens?name=BRANDL").await;
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    let (_, hits) = host.get("/v1/tenants/09162000/citizens?name=katharina+maria&birth_date=1991-04").await;
    assert_eq!(hits.as_array().map(Vec::len), Some(1), "{hits}");
    let (_, hits) = host.get("/v1/tenants/09162000/citizens?birth_date=1992").await;
    assert_eq!(hits.as_array().map(Vec::len), Some(0), "{hits}");

    // The admin sees everything.
    as_token(&mut host, Some(ADMIN)).await;
    let (code, tenants) = host.get("/v1/admin/tenants").await;
    assert_eq!(code, 200);
    let tenants = tenants.as_array().expect("tenants");
    assert_eq!(tenants.len(), 3);
    let muc = tenants.iter().find(|t| t["ags"] == "09162000").expect("München");
    assert_eq!(muc["messages"]["processed"], 1, "{muc}");
    assert_eq!(muc["adapters"][0]["name"], "xmeld");
    assert_eq!(muc["tokens"], 1);
    let (code, msgs) = host.get("/v1/admin/messages?tenant=06412000&state=processed").await;
    assert_eq!(code, 200);
    assert_eq!(msgs.as_array().map(Vec::len), Some(1), "{msgs}");
    let (code, _) = host.get("/v1/admin/messages?state=nonsense").await;
    assert_eq!(code, 400);
    let metrics = host
        .client
        .get(format!("{}/metrics", host.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("efile_messages_total{tenant=\"09162000\",type=\"0201\",outcome=\"processed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("efile_refused_total{reason=\"forbidden\"} 1"), "{metrics}");
    assert!(metrics.contains("efile_adapter_seconds_count 2"), "{metrics}");
    assert!(metrics.contains("efile_journal_commit_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("efile_queue_depth 0"), "{metrics}");
    // The journal's write lock: this host committed batches and held the lock for them.
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line[name.len() + 1..].parse().expect("a number")
    };
    assert!(value("efile_journal_batches_total") >= 1.0, "{metrics}");
    assert!(value("efile_journal_writes_total") >= value("efile_journal_batches_total"), "{metrics}");
    assert!(value("efile_journal_lock_held_seconds_total") > 0.0, "{metrics}");
    assert!(value("efile_journal_lock_wait_seconds_total") >= 0.0, "{metrics}");
    assert!(value("efile_journal_tenant_wait_seconds_total") >= 0.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_disabling_and_new_tokens_apply_without_restart() {
    let mut host = Host::start_with(|c| {
        with_tokens(c);
        c.tenants[0].rate_limit_per_sec = 1;
        c.tenants[0].rate_burst = Some(2);
    })
    .await;
    as_token(&mut host, Some(MUENCHEN)).await;
    let xml = fixture("anmeldung-0201-single-person");
    let mut codes = Vec::new();
    for n in 0..3 {
        let body = with_uuid(&xml, &format!("dddddddd-0000-4000-8000-00000000000{n}"));
        let resp = host
            .client
            .post(format!("{}/v1/messages", host.base))
            .bearer_auth(MUENCHEN)
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .expect("post");
        codes.push((resp.status().as_u16(), resp.headers().get("retry-after").is_some()));
    }
    assert_eq!(codes, vec![(202, false), (202, false), (429, true)]);

    // Reload: München disabled, a second token for Frankfurt, a fourth tenant.
    let mut config = host.pipeline.config();
    config.tenants[0].disabled = true;
    config.tenants[1].tokens.push(hash("ebt_frankfurt-rotated"));
    let mut fourth = config.tenants[2].clone();
    fourth.ags = "01001000".into();
    fourth.name = "Flensburg".into();
    fourth.tokens = vec![hash("ebt_flensburg")];
    config.tenants.push(fourth);
    host.pipeline.reload(config).await.expect("reload");
    let (code, body) = host.post(with_uuid(&xml, "dddddddd-0000-4000-8000-000000000009")).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["reason"].as_str().expect("reason").contains("disabled"), "{body}");
    assert_eq!(host.pipeline.authenticate(Some("Bearer ebt_frankfurt-rotated")), Ok(Caller::Tenant("06412000".into())));
    assert_eq!(host.pipeline.authenticate(Some("Bearer ebt_flensburg")), Ok(Caller::Tenant("01001000".into())));
    as_token(&mut host, Some("ebt_flensburg")).await;
    let (code, _) = host.get("/v1/tenants/01001000/citizens").await;
    assert_eq!(code, 200);
    // The reload is journaled.
    let report = crate::support::verify(&host).await.expect("verify");
    assert!(report.entries >= 2 + 4, "{report:?}");
}

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).expect("write");
    std::fs::write(&k, cert.key_pair.serialize_pem()).expect("write");
    (c, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_only() {
    let certs = tempfile::tempdir().expect("tmp");
    let (cert, key) = self_signed(certs.path());
    let host = Host::start_with(|c| {
        c.http.tls_cert = Some(cert.clone());
        c.http.tls_key = Some(key.clone());
    })
    .await;
    assert!(host.base.starts_with("https://"));
    let xml = fixture("anmeldung-0201-single-person");
    let (code, receipt) = host.post(xml.clone()).await;
    assert_eq!(code, 202, "{receipt}");
    host.wait_processed(&uuid_of(&xml)).await;
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = host.base.replace("https://localhost", "http://127.0.0.1");
    let resp = reqwest::Client::new().get(format!("{plain}/healthz")).timeout(Duration::from_secs(5)).send().await;
    assert!(resp.is_err() || !resp.expect("resp").status().is_success());
}

/// A small message with `inner` inserted right after the root's start tag.
fn hostile(inner: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("anmeldung-0201-single-person")).expect("utf-8");
    let at = text.find("<xmeld:nachrichtenkopf.g2g").or_else(|| text.find("<nachrichtenkopf.g2g")).expect("header");
    format!("{}{inner}{}", &text[..at], &text[at..]).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_clear_errors() {
    let host = Host::start_with(|c| {
        c.limits.max_depth = 40;
        c.limits.max_elements = 2_000;
        c.limits.max_attributes = 24;
        c.limits.max_attribute_len = 256;
    })
    .await;
    let good = fixture("anmeldung-0201-single-person");
    let laughs = b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>\n<lolz>&lol2;</lolz>".to_vec();
    let xxe =
        b"<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<x>&xxe;</x>".to_vec();
    let mut bad_utf8 = good.clone();
    let pos = bad_utf8.windows(6).position(|w| w == b"Brandl").expect("name");
    bad_utf8[pos] = 0xff;
    let wrong_ns = String::from_utf8(good.clone())
        .expect("utf-8")
        .replace("http://www.osci.de/xmeld2511a", "http://example.org/other")
        .into_bytes();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("too deep", hostile(&format!("{}{}", "<d>".repeat(60), "</d>".repeat(60))), 400, "limit_exceeded"),
        ("too many elements", hostile(&"<e/>".repeat(3_000)), 400, "limit_exceeded"),
        (
            "too many attributes",
            hostile(&format!("<e {}/>", (0..25).map(|i| format!("a{i}='1'")).collect::<Vec<_>>().join(" "))),
            400,
            "limit_exceeded",
        ),
        ("attribute too long", hostile(&format!("<e a='{}'/>", "x".repeat(300))), 400, "limit_exceeded"),
        ("billion laughs", laughs, 400, "doctype_forbidden"),
        ("xxe", xxe, 400, "doctype_forbidden"),
        ("entity reference", hostile("<e>&undefined;</e>"), 400, "entity_forbidden"),
        ("invalid utf-8", bad_utf8, 400, "invalid_utf8"),
        ("wrong namespace", wrong_ns, 422, "unknown_standard"),
        ("empty", Vec::new(), 400, "empty"),
    ];
    for (what, body, status, code) in cases {
        let (got, answer) = host.post(body).await;
        assert_eq!((got, answer["error"].as_str().unwrap_or_default()), (status, code), "{what}: {answer}");
    }
    let report = crate::support::verify(&host).await.expect("verify");
    assert_eq!(report.messages, 0, "a hostile body was stored");
}

fn raw(base: &str) -> std::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_are_cut_off() {
    let host = Host::start_with(|c| {
        c.http.body_timeout_secs = 1;
        c.http.header_timeout_secs = 1;
    })
    .await;
    let base = host.base.clone();
    tokio::task::spawn_blocking(move || {
        // Headers complete, body stalls: 408.
        let mut s = raw(&base);
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<x>")
            .expect("write");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
        // Headers stall: the connection is closed.
        let mut s = raw(&base);
        s.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n").expect("write");
        let mut rest = Vec::new();
        let read = s.read_to_end(&mut rest);
        assert!(read.is_ok() || rest.is_empty(), "{read:?}");
    })
    .await
    .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_wait_their_turn() {
    let host = Host::start_with(|c| {
        c.http.max_connections = 1;
        c.http.header_timeout_secs = 30;
    })
    .await;
    let base = host.base.clone();
    tokio::task::spawn_blocking(move || {
        let first = raw(&base);
        let mut second = raw(&base);
        second.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
        // While the first connection holds the only slot, the second is not served.
        second.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        let mut buf = [0u8; 64];
        assert!(second.read(&mut buf).is_err(), "served beyond max_connections");
        drop(first);
        second.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut answer = String::new();
        let _ = second.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    })
    .await
    .expect("join");
}
