//! The API behind the web console: clerks and their clearance, one document with its
//! original, attachments and journal proof, the operator's flow, checkpoints and verify, and
//! the console's files with their security headers.

use efile_bridge_model::Confidentiality;
use efile_bridge_pipeline::Config;
use efile_bridge_pipeline::config::{ClerkConfig, token_hash};
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};
use crate::tenancy::{ADMIN, with_tokens};

const HUBER: &str = "ebt_clerk-huber-muenchen";
const LEITNER: &str = "ebt_clerk-leitner-muenchen";
const WEBER: &str = "ebt_clerk-weber-frankfurt";
const MUENCHEN: &str = "09162000";
const FRANKFURT: &str = "06412000";
/// The third tenant of the tenancy tests: the reader of the Passversagung fixture.
const ANDERSWO: &str = "09000009";

fn clerk(name: &str, token: &str, clearance: Confidentiality) -> ClerkConfig {
    ClerkConfig { name: name.into(), token: format!("sha256:{}", hex::encode(token_hash(token))), clearance }
}

/// Tokens as in the tenancy tests, plus clerks: Huber (Anderswo, normal), Leitner (Anderswo,
/// secret), Weber (München, normal).
pub(crate) fn with_clerks(c: &mut Config) {
    with_tokens(c);
    let anderswo = c.tenants.iter_mut().find(|t| t.ags == ANDERSWO).expect("tenant");
    anderswo.clerks =
        vec![clerk("Huber", HUBER, Confidentiality::Normal), clerk("Leitner", LEITNER, Confidentiality::Secret)];
    c.tenants[0].clerks = vec![clerk("Weber", WEBER, Confidentiality::Normal)];
}

async fn post_processed(host: &mut Host, xml: &[u8]) -> serde_json::Value {
    host.token = Some(ADMIN.into());
    let (code, receipt) = host.post(xml.to_vec()).await;
    assert!(code == 202 || code == 200, "{code} {receipt}");
    host.wait_processed(&uuid_of(xml)).await
}

async fn raw(host: &Host, token: &str, path: &str) -> reqwest::Response {
    host.client.get(format!("{}{path}", host.base)).bearer_auth(token).send().await.expect("request")
}

/// Every document of a citizen's file as (id, confidentiality).
fn documents(file: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in file["files"].as_array().expect("files") {
        for c in f["cases"].as_array().expect("cases") {
            for d in c["documents"].as_array().expect("documents") {
                out.push((
                    d["document_id"].as_str().expect("id").into(),
                    d["confidentiality"].as_str().expect("c").into(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerks_read_their_own_tenant_up_to_their_clearance() {
    let mut host = Host::start_with(with_clerks).await;
    // A Passversagung (secret) for Anderswo's citizen; an Anmeldung for München.
    let versagt = post_processed(&mut host, &fixture("passversagung-0105-pass-versagt")).await;
    post_processed(&mut host, &fixture("anmeldung-0201-single-person")).await;
    assert_eq!(versagt["tenant"], ANDERSWO, "{versagt}");
    let secret_doc = versagt["documents"][0]["document_id"].as_str().expect("document").to_owned();
    let citizen = versagt["documents"][0]["citizen_id"].as_str().expect("citizen").to_owned();

    host.token = Some(HUBER.into());
    let (code, session) = host.get("/v1/session").await;
    assert_eq!(code, 200, "{session}");
    assert_eq!((session["role"].as_str(), session["tenant"].as_str()), (Some("clerk"), Some(ANDERSWO)));
    assert_eq!((session["name"].as_str(), session["clearance"].as_str()), (Some("Huber"), Some("normal")));
    let visible: Vec<&str> =
        session["tenants"].as_array().expect("tenants").iter().filter_map(|t| t["ags"].as_str()).collect();
    assert_eq!(visible, [ANDERSWO], "a clerk is offered its own tenant only");

    // Huber (normal) does not see the Passversagung: left out with a count, and 404 by id.
    let (code, file) = host.get(&format!("/v1/tenants/{ANDERSWO}/citizens/{citizen}")).await;
    assert_eq!(code, 200, "{file}");
    assert!(documents(&file).iter().all(|(id, c)| c == "normal" && *id != secret_doc), "{file}");
    assert!(file["withheld_documents"].as_u64().expect("count") >= 1, "{file}");
    for part in ["", "/original", "/proof", "/attachments/0"] {
        let (code, body) = host.get(&format!("/v1/tenants/{ANDERSWO}/documents/{secret_doc}{part}")).await;
        assert_eq!(code, 404, "{part}: {body}");
    }
    // Leitner (secret) sees it.
    host.token = Some(LEITNER.into());
    let (_, file) = host.get(&format!("/v1/tenants/{ANDERSWO}/citizens/{citizen}")).await;
    assert!(documents(&file).iter().any(|(id, c)| *id == secret_doc && c == "secret"), "{file}");
    assert_eq!(file["withheld_documents"], 0);
    let (code, doc) = host.get(&format!("/v1/tenants/{ANDERSWO}/documents/{secret_doc}")).await;
    assert_eq!((code, doc["document"]["document_type"].as_str()), (200, Some("passversagung")), "{doc}");

    // Clerks post nothing and read no message status (it names every document's title).
    let (code, body) =
        host.post(with_uuid(&fixture("anmeldung-0201-single-person"), "c1000000-0000-4000-8000-000000000001")).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["reason"].as_str().expect("reason").contains("clerk tokens"), "{body}");
    let (code, _) = host.get(&format!("/v1/messages/{}", uuid_of(&fixture("passversagung-0105-pass-versagt")))).await;
    assert_eq!(code, 403);

    // München's clerk reaches nothing of Anderswo's, by either path.
    host.token = Some(WEBER.into());
    let (code, _) = host.get(&format!("/v1/tenants/{ANDERSWO}/citizens")).await;
    assert_eq!(code, 403);
    let (code, _) = host.get(&format!("/v1/tenants/{ANDERSWO}/citizens/{citizen}")).await;
    assert_eq!(code, 403);
    let (code, _) = host.get(&format!("/v1/tenants/{ANDERSWO}/documents/{secret_doc}")).await;
    assert_eq!(code, 403);
    let (code, body) = host.get(&format!("/v1/tenants/{MUENCHEN}/documents/{secret_doc}")).await;
    assert_eq!(code, 404, "Anderswo's document under München's path: {body}");
    let (code, body) = host.get(&format!("/v1/tenants/{MUENCHEN}/citizens/{citizen}")).await;
    assert_eq!(code, 404, "{body}");
    let (code, mine) = host.get(&format!("/v1/tenants/{MUENCHEN}/citizens")).await;
    assert_eq!((code, mine.as_array().map(Vec::len)), (200, Some(1)), "{mine}");
    let (code, _) = host.get("/v1/admin/flow").await;
    assert_eq!(code, 403);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_comes_with_its_original_its_attachments_and_a_proof_that_verifies() {
    let mut host = Host::start_with(with_clerks).await;
    let xml = fixture("anmeldung-1704-single-person");
    let status = post_processed(&mut host, &xml).await;
    let tenant = status["tenant"].as_str().expect("tenant").to_owned();
    let doc = status["documents"][0]["document_id"].as_str().expect("document").to_owned();
    let token = ADMIN;

    let (code, detail) = host.get(&format!("/v1/tenants/{tenant}/documents/{doc}")).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(detail["message"]["uuid"], uuid_of(&xml));
    assert_eq!(detail["citizen_id"], status["documents"][0]["citizen_id"]);
    assert_eq!(detail["versions"].as_array().map(Vec::len), Some(1), "{detail}");
    assert!(detail["file_plan_code"].as_str().is_some_and(|c| !c.is_empty()), "{detail}");

    // The original, byte for byte, as a download the browser never renders.
    let resp = raw(&host, token, &format!("/v1/tenants/{tenant}/documents/{doc}/original")).await;
    assert_eq!(resp.status(), 200);
    let header =
        |r: &reqwest::Response, h: &str| r.headers().get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(header(&resp, "content-disposition").starts_with("attachment;"), "{:?}", resp.headers());
    assert!(header(&resp, "content-security-policy").contains("sandbox"), "{:?}", resp.headers());
    assert_eq!(resp.bytes().await.expect("body").as_ref(), xml.as_slice());

    // The Wohnungsgeberbestätigung PDF.
    let resp = raw(&host, token, &format!("/v1/tenants/{tenant}/documents/{doc}/attachments/0")).await;
    assert_eq!((resp.status().as_u16(), header(&resp, "content-type")), (200, "application/pdf".into()));
    assert!(header(&resp, "content-disposition").contains(".pdf"), "{:?}", resp.headers());
    assert!(resp.bytes().await.expect("pdf").starts_with(b"%PDF"));
    let (code, body) = host.get(&format!("/v1/tenants/{tenant}/documents/{doc}/attachments/7")).await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = host.get(&format!("/v1/tenants/{tenant}/documents/{doc}/attachments/x")).await;
    assert_eq!(code, 400, "{body}");

    // The proof: a receipt that verifies with the installation's key, naming this version.
    let (code, proof) = host.get(&format!("/v1/tenants/{tenant}/documents/{doc}/proof")).await;
    assert_eq!(code, 200, "{proof}");
    let receipt: efile_bridge_store::journal::receipt::Receipt =
        serde_json::from_value(proof["receipt"].clone()).expect("receipt");
    let key = host.pipeline.store().public_key();
    receipt.verify(&key, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(receipt.entry.index, detail["versions"][0]["journal_index"].as_u64().expect("index"));
    let meta: serde_json::Value = serde_json::from_str(&receipt.entry.meta).expect("meta");
    let named = meta["records"]
        .as_array()
        .expect("records")
        .iter()
        .any(|r| r["document"] == doc.as_str() && r["digest"] == proof["digest"]);
    assert!(named, "the entry names the document and its digest: {meta}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_the_flow_the_checkpoints_and_the_last_verify() {
    let mut host = Host::start_with(with_clerks).await;
    post_processed(&mut host, &fixture("anmeldung-0201-single-person")).await;
    post_processed(&mut host, &fixture("anmeldung-0201-family-of-three")).await;
    let broken = fixture("dokument-0006-invalid");
    let failed = post_processed(&mut host, &broken).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let failed_tenant = failed["tenant"].as_str().expect("tenant");

    let (code, flow) = host.get("/v1/admin/flow").await;
    assert_eq!(code, 200, "{flow}");
    let rows = flow.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "every configured tenant, also without messages: {flow}");
    let of = |ags: &str| rows.iter().find(|r| r["tenant"] == ags).unwrap_or_else(|| panic!("{ags} in {flow}"));
    let processed: u64 = rows.iter().map(|r| r["processed"].as_u64().expect("n")).sum();
    assert_eq!(processed, 2, "{flow}");
    let with_latency: u64 = rows.iter().filter_map(|r| r["latency_ms"]["sample"].as_u64()).sum();
    assert_eq!(with_latency, 2, "{flow}");
    assert!(
        rows.iter()
            .all(|r| r["latency_ms"].is_null() || r["latency_ms"]["p95"].as_u64() <= r["latency_ms"]["max"].as_u64())
    );
    assert_eq!(of(failed_tenant)["failed"], 1, "{flow}");
    assert_eq!(of(failed_tenant)["last_error"]["uuid"], uuid_of(&broken), "{flow}");
    assert_eq!(of(FRANKFURT)["received_24h"], 0, "{flow}");
    assert_eq!(rows.iter().map(|r| r["received_24h"].as_u64().expect("n")).sum::<u64>(), 3);

    // Checkpoints, newest first.
    for n in 0..2 {
        let resp =
            host.client.post(format!("{}/v1/checkpoints", host.base)).bearer_auth(ADMIN).send().await.expect("post");
        assert_eq!(resp.status(), 200);
        post_processed(
            &mut host,
            &with_uuid(&fixture("anmeldung-0201-single-person"), &format!("c2000000-0000-4000-8000-00000000000{n}")),
        )
        .await;
    }
    let (code, cps) = host.get("/v1/admin/checkpoints?limit=10").await;
    assert_eq!(code, 200, "{cps}");
    let sizes: Vec<u64> =
        cps.as_array().expect("list").iter().map(|c| c["tree_size"].as_u64().expect("size")).collect();
    assert!(sizes.len() >= 2 && sizes.windows(2).all(|w| w[0] > w[1]), "{sizes:?}");

    // Verify: never, then started in the background, then its outcome.
    let (_, last) = host.get("/v1/admin/verify").await;
    assert_eq!(last["state"], "never", "{last}");
    let resp =
        host.client.post(format!("{}/v1/admin/verify", host.base)).bearer_auth(ADMIN).send().await.expect("post");
    assert_eq!(resp.status(), 202);
    let mut last = serde_json::Value::Null;
    for _ in 0..600 {
        let (_, v) = host.get("/v1/admin/verify").await;
        if v["state"] != "running" {
            last = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last["state"], "ok", "{last}");
    assert!(last["report"]["entries"].as_u64().is_some_and(|n| n >= 6), "{last}");
    assert!(last["by"].as_str().is_some_and(|b| !b.is_empty()), "{last}");
    host.token = Some(HUBER.into());
    for path in ["/v1/admin/verify", "/v1/admin/checkpoints"] {
        let (code, _) = host.get(path).await;
        assert_eq!(code, 403, "{path}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_the_api_is_not_cross_origin() {
    let host = Host::start_with(with_clerks).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = client.get(format!("{}/console", host.base)).send().await.expect("get");
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/console/");

    let resp = client.get(format!("{}/console/", host.base)).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(h["content-type"].to_str().expect("ct").starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().expect("csp");
    for needed in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'none'"] {
        assert!(csp.contains(needed), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = resp.text().await.expect("html");
    // The policy forbids inline code: the page must not need any.
    assert!(
        html.contains("<script") && !html.contains("<script>") && !html.contains(" style="),
        "inline code in index.html"
    );
    assert!(!html.contains("http://") && !html.contains("https://"), "the console loads nothing from elsewhere");
    for (file, ty) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let resp = client.get(format!("{}/console/{file}", host.base)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{file}");
        assert!(resp.headers()["content-type"].to_str().expect("ct").starts_with(ty));
    }
    let resp = client.get(format!("{}/console/secrets.toml", host.base)).send().await.expect("get");
    assert_eq!(resp.status(), 404);

    // API answers: never cached, never framed, no CORS grant for another origin's page.
    let resp = client
        .get(format!("{}/v1/session", host.base))
        .bearer_auth(HUBER)
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/tenants/{MUENCHEN}/citizens", host.base))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("options");
    assert!(preflight.headers().get("access-control-allow-origin").is_none(), "{:?}", preflight.headers());
    assert!(preflight.headers().get("access-control-allow-headers").is_none());
    host.stop().await;
}

/// The online Anmeldung with an Auskunftssperre (filed `high`) with another idNr (`None`:
/// without one) and message UUID.
fn gesperrt(id_nr: Option<&str>, uuid: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("anmeldung-1704-block-name-auskunftssperre")).expect("utf-8");
    let line = "<xmeld:idNr>07194235764</xmeld:idNr>";
    assert!(text.contains(line), "the fixture carries an idNr");
    let text = match id_nr {
        Some(id) => text.replace(line, &format!("<xmeld:idNr>{id}</xmeld:idNr>")),
        None => text.lines().filter(|l| !l.contains(line)).map(|l| format!("{l}\n")).collect(),
    };
    with_uuid(text.as_bytes(), uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_review_item_is_only_for_clerks_cleared_for_it() {
    let mut host = Host::start_with(with_clerks).await;
    // Two people alike but for their idNr, then a message without one: a review item whose
    // waiting record is confidential (Auskunftssperre).
    post_processed(&mut host, &gesperrt(Some("07194235764"), "d2000000-0000-4000-8000-000000000001")).await;
    post_processed(&mut host, &gesperrt(Some("08962367457"), "d2000000-0000-4000-8000-000000000002")).await;
    let waiting = post_processed(&mut host, &gesperrt(None, "d2000000-0000-4000-8000-000000000003")).await;
    let tenant = waiting["tenant"].as_str().expect("tenant").to_owned();
    let review = waiting["reviews"][0].as_str().unwrap_or_else(|| panic!("a review item: {waiting}")).to_owned();
    let (_, item) = host.get(&format!("/v1/tenants/{tenant}/reviews/{review}")).await;
    assert_eq!(item["record"]["confidentiality"], "high", "{item}");
    let candidate = item["review"]["candidates"][0]["citizen_id"].as_str().expect("candidate").to_owned();

    // München's clerk (clearance `normal`) neither lists, reads nor decides it.
    assert_eq!(tenant, MUENCHEN, "{waiting}");
    host.token = Some(WEBER.into());
    let (code, list) = host.get(&format!("/v1/tenants/{MUENCHEN}/reviews")).await;
    assert_eq!((code, list.as_array().map(Vec::len)), (200, Some(0)), "{list}");
    let (code, _) = host.get(&format!("/v1/tenants/{MUENCHEN}/reviews/{review}")).await;
    assert_eq!(code, 404);
    let decide = |token: &str| {
        host.client
            .post(format!("{}/v1/tenants/{MUENCHEN}/reviews/{review}", host.base))
            .bearer_auth(token.to_owned())
            .json(&serde_json::json!({"decision": "assign", "citizen": candidate}))
            .send()
    };
    assert_eq!(decide(WEBER).await.expect("post").status(), 404);
    // The admin (every document) lists and decides it.
    host.token = Some(ADMIN.into());
    let (code, list) = host.get(&format!("/v1/tenants/{MUENCHEN}/reviews")).await;
    assert_eq!((code, list.as_array().map(Vec::len)), (200, Some(1)), "{list}");
    assert_eq!(decide(ADMIN).await.expect("post").status(), 200);
    host.stop().await;
}
