//! The HTTP API: receipts, processing, the citizen's file, duplicates and every refusal.

use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_parties, with_uuid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_0201_lands_in_the_citizens_file() {
    let host = Host::start().await;
    let xml = fixture("anmeldung-0201-single-person");
    let uuid = uuid_of(&xml);
    let (status, receipt) = host.post(xml.clone()).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["message_uuid"], uuid.as_str());
    assert_eq!(receipt["tenant"], "09162000");
    assert!(receipt["journal_index"].is_u64(), "{receipt}");
    assert_eq!(receipt["entry_hash"].as_str().expect("hash").len(), 64, "{receipt}");

    let status = host.wait_processed(&uuid).await;
    assert_eq!(status["state"], "processed", "{status}");
    assert_eq!(status["adapter"]["name"], "xmeld");
    let docs = status["documents"].as_array().expect("documents");
    assert_eq!(docs.len(), 1, "{status}");
    assert_eq!(docs[0]["document_type"], "abmeldung");

    let citizens = host.citizens("09162000").await;
    assert_eq!(citizens.len(), 1, "{citizens:?}");
    assert_eq!(citizens[0]["display_name"], "Brandl, Katharina Maria");
    assert_eq!(citizens[0]["birth_date"], "1991-04-17");
    let id = citizens[0]["citizen_id"].as_str().expect("id");
    assert_eq!(docs[0]["citizen_id"], id);

    let (code, file) = host.get(&format!("/v1/tenants/09162000/citizens/{id}")).await;
    assert_eq!(code, 200, "{file}");
    assert!(file["identifiers"].as_array().expect("ids").iter().any(|i| i == "id-nr"), "{file}");
    let akte = &file["files"][0];
    assert_eq!(akte["file_plan_code"], "12.20.10");
    assert_eq!(akte["subject"], "Meldeakte Brandl, Katharina Maria");
    let case = &akte["cases"][0];
    assert_eq!(case["case_type"], "wegzug");
    let doc = &case["documents"][0];
    assert_eq!(doc["document_type"], "abmeldung");
    assert_eq!(doc["event_date"], "2026-01-12");
    assert_eq!(doc["retention_deadline"], "2031-12-31");
    assert_eq!(doc["confidentiality"], "normal");
    assert_eq!(doc["message_uuid"], uuid.as_str());
    assert_eq!(doc["version"], 1);

    // The other tenant sees nothing of it.
    assert!(host.citizens("06412000").await.is_empty());
    let (code, _) = host.get(&format!("/v1/tenants/06412000/citizens/{id}")).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_gets_the_first_receipt_and_is_not_processed_again() {
    let host = Host::start().await;
    let xml = fixture("anmeldung-0201-family-of-three");
    let (status, first) = host.post(xml.clone()).await;
    assert_eq!(status, 202, "{first}");
    host.wait_processed(first["message_uuid"].as_str().expect("uuid")).await;
    let (status, second) = host.post(xml.clone()).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first, second);
    // A different UUID with the same people is a new message, and the same citizens' files grow.
    let (status, third) = host.post(with_uuid(&xml, "0b0d2a52-5a3c-4c84-9d36-5cfc7c4e3f10")).await;
    assert_eq!(status, 202, "{third}");
    assert_ne!(third["journal_index"], first["journal_index"]);
    host.wait_processed("0b0d2a52-5a3c-4c84-9d36-5cfc7c4e3f10").await;
    let citizens = host.citizens("09162000").await;
    assert_eq!(citizens.len(), 3, "{citizens:?}");
    for c in &citizens {
        assert_eq!(c["documents"], 2, "{c}");
    }
    // The journal holds exactly: the configuration, 2 accepted + 2 processed.
    let report = crate::support::verify(&host).await.expect("verify");
    assert_eq!((report.entries, report.messages, report.record_versions), (5, 2, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_clear_and_stores_nothing() {
    let host = Host::start_with(|c| {
        c.limits.max_body_bytes = 20 * 1024;
        // A tenant whose only adapter does not handle 1330.
        c.tenants.push(efile_bridge_pipeline::config::TenantConfig {
            ags: "09000009".into(),
            name: "Testbehörde".into(),
            adapters: vec!["xmeld".into()],
            config: Default::default(),
            tokens: Vec::new(),
            clerks: Vec::new(),
            aliases: Vec::new(),
            disabled: false,
            rate_limit_per_sec: 0,
            rate_burst: None,
            sinks: Vec::new(),
            sandbox: Default::default(),
        });
    })
    .await;
    let good = fixture("anmeldung-0201-single-person");
    let kosit = std::fs::read(
        efile_bridge_tests::root()
            .join("schemas/xmeld-25.11a/samples/kosit-testsuite/FachspezifischBehoerdenauskunft011a-1330.xml"),
    )
    .expect("kosit sample");
    let mut doctype = b"<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"aaaa\">]>\n".to_vec();
    doctype.extend_from_slice(&good[good.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1)..]);
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("unknown tenant", with_parties(&good, "99999999", "99999998"), "application/xml", 422, "unknown_tenant"),
        ("malformed", good[..good.len() / 2].to_vec(), "application/xml", 400, ""),
        ("doctype", doctype, "application/xml", 400, ""),
        ("oversized", fixture("anmeldung-0201-family-of-three"), "application/xml", 413, "too_large"),
        ("no adapter", kosit, "application/xml", 422, "no_adapter"),
        ("not xml", good.clone(), "application/json", 415, "unsupported_media_type"),
    ];
    for (what, body, ct, want, code) in cases {
        let (status, answer) = host.post_as(body, ct).await;
        assert_eq!(status, want, "{what}: {answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(!reason.is_empty(), "{what}: no reason in {answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"], code, "{what}: {answer}");
        }
        // Short reasons, never the message itself.
        assert!(!reason.contains("Brandl"), "{what}: {reason}");
    }
    // Nothing of it reached the journal or the files.
    let report = crate::support::verify(&host).await.expect("verify");
    assert_eq!((report.entries, report.messages), (1, 0), "only the config-applied entry");
    let (code, _) = host.get(&format!("/v1/messages/{}", uuid_of(&good))).await;
    assert_eq!(code, 404);
    // And a good message still goes through afterwards.
    let (status, answer) = host.post(good).await;
    assert_eq!(status, 202, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_sent_by_the_tenant_itself_is_filed_under_the_author() {
    // Only Frankfurt (the author) is a tenant here: the message is its own outgoing copy.
    let host = Host::start_with(|c| c.tenants.retain(|t| t.ags == "06412000")).await;
    let xml = fixture("anmeldung-0201-single-person");
    let (status, receipt) = host.post(xml.clone()).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["tenant"], "06412000");
    let status = host.wait_processed(&uuid_of(&xml)).await;
    assert_eq!(status["direction"], "outgoing-copy", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_unknown_routes() {
    let host = Host::start().await;
    assert_eq!(host.get("/healthz").await.0, 200);
    assert_eq!(host.get("/readyz").await.0, 200);
    let (code, body) = host.get("/v2/nothing").await;
    assert_eq!(code, 404);
    assert!(body["reason"].as_str().expect("reason").contains("/v2/nothing"));
    let resp = host.client.delete(format!("{}/v1/messages", host.base)).send().await.expect("delete");
    assert_eq!(resp.status().as_u16(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_run_different_adapters_for_the_same_message_type() {
    let host = Host::start_with(|c| {
        c.adapters.push(efile_bridge_pipeline::config::AdapterConfig {
            name: "einheitsakte".into(),
            component: efile_bridge_tests::einheitsakte_wasm(),
        });
        let frankfurt = c.tenants.iter_mut().find(|t| t.ags == "06412000").expect("frankfurt");
        frankfurt.adapters = vec!["einheitsakte".into()];
        frankfurt.config.insert("aktenplan".into(), "022.1".into());
    })
    .await;
    let family = fixture("anmeldung-0201-family-of-three");
    // The same kind of message, once read by München, once (parties swapped) by Frankfurt.
    let to_frankfurt =
        with_uuid(&with_parties(&family, "06412000", "09162000"), "f0000000-0000-4000-8000-000000000001");
    for body in [&family, &to_frankfurt] {
        let (status, receipt) = host.post(body.clone()).await;
        assert_eq!(status, 202, "{receipt}");
        host.wait_processed(&uuid_of(body)).await;
    }
    let muc = host.citizens("09162000").await;
    let ffm = host.citizens("06412000").await;
    assert_eq!(muc.len(), 3, "xmeld files one document per person: {muc:?}");
    assert_eq!(ffm.len(), 1, "einheitsakte files one household document: {ffm:?}");
    let status = host.wait_processed("f0000000-0000-4000-8000-000000000001").await;
    assert_eq!(status["adapter"]["name"], "einheitsakte");
    let id = ffm[0]["citizen_id"].as_str().expect("id");
    let (_, file) = host.get(&format!("/v1/tenants/06412000/citizens/{id}")).await;
    assert_eq!(file["files"][0]["file_plan_code"], "022.1");
    assert_eq!(file["files"][0]["cases"][0]["documents"][0]["title"], "Wegzug von 3 Person(en)");
}
