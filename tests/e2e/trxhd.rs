//! A second standard next to XMeld: München runs the XMeld adapter and the TR-XhD adapter
//! (element names modelled on the public BSI description, see
//! `plugins/adapters/trxhd/README.md`). The online Anmeldung (XMeld 1704) and the passport
//! authority's order to the document producer (TR-XhD `BestellungDokument`) for the same
//! person end up in one citizen's e-file.

use efile_bridge_devkit::FixtureOutcome;
use efile_bridge_pipeline::Config;
use efile_bridge_pipeline::config::AdapterConfig;
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of};

/// A TR-XhD adapter fixture's input.
fn order(case: &str) -> Vec<u8> {
    let path = efile_bridge_tests::root().join("plugins/adapters/trxhd/tests/fixtures").join(case).join("input.xml");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// München runs both adapters; Frankfurt keeps XMeld only.
fn with_trxhd(c: &mut Config) {
    c.adapters.push(AdapterConfig { name: "trxhd".into(), component: efile_bridge_tests::trxhd_wasm() });
    let muenchen = c.tenants.iter_mut().find(|t| t.ags == "09162000").expect("münchen");
    muenchen.adapters.push("trxhd".into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anmeldung_and_a_passport_order_land_in_one_citizen_file() {
    let host = Host::start_with(with_trxhd).await;
    // Katharina Elisabeth Obermüller, born 1992-02-29 in Regensburg: the Anmeldung brings her
    // idNr, the order only her name and birth (so it is found by the fingerprint).
    let anmeldung = fixture("anmeldung-1704-single-person");
    let bestellung = order("bestellung-reisepass");
    for body in [&anmeldung, &bestellung] {
        let (code, receipt) = host.post(body.clone()).await;
        assert_eq!((code, receipt["tenant"].as_str()), (202, Some("09162000")), "{receipt}");
        let status = host.wait_processed(&uuid_of(body)).await;
        assert_eq!(status["state"], "processed", "{status}");
    }
    let status = host.wait_processed(&uuid_of(&bestellung)).await;
    assert_eq!(status["adapter"]["name"], "trxhd", "{status}");
    // The Passbehörde (psb:09162000_00) wrote it to the producer: München's own copy, found
    // by the AGS in the Behördenschlüssel, no alias configured.
    assert_eq!(status["direction"], "outgoing-copy", "{status}");

    let citizens = host.citizens("09162000").await;
    assert_eq!(citizens.len(), 1, "one person, one citizen: {citizens:?}");
    assert_eq!(citizens[0]["documents"], 2, "{citizens:?}");
    assert_eq!(citizens[0]["display_name"], "Obermüller, Katharina Elisabeth");
    let id = citizens[0]["citizen_id"].as_str().expect("id");
    let (code, file) = host.get(&format!("/v1/tenants/09162000/citizens/{id}")).await;
    assert_eq!(code, 200, "{file}");
    let ids: Vec<_> = file["identifiers"].as_array().expect("ids").iter().map(|v| v.as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["fingerprint", "id-nr"], "the Anmeldung's idNr and the fingerprint both stand for her");
    let files = file["files"].as_array().expect("files");
    let plan: Vec<_> = files.iter().map(|f| f["file_plan_code"].as_str().unwrap_or("")).collect();
    assert_eq!(plan, ["12.20.10", "12.30.10"], "registration file and passport/ID file");
    assert_eq!(files[0]["cases"][0]["documents"][0]["document_type"], "anmeldung");
    let case = &files[1]["cases"][0];
    assert_eq!(case["case_type"], "ausweiswesen");
    let doc = &case["documents"][0];
    assert_eq!(doc["document_type"], "bestellung");
    assert_eq!(doc["title"], "Reisepass bestellt");
    assert_eq!(doc["event_date"], "2026-06-01", "the application date");
    assert_eq!(doc["retention_deadline"], "2041-05-31", "PassG §21 Abs. 4: expiry + 5 years");
    // Photo and fingerprints stay in the journaled message, out of the file.
    let text = String::from_utf8(bestellung).expect("utf-8");
    let lichtbild = text.split("<xhd:Lichtbild>").nth(1).and_then(|t| t.split('<').next()).expect("photo");
    assert!(!file.to_string().contains(lichtbild), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passport_order_needs_a_known_authority_and_a_tenant_running_the_adapter() {
    // The default config: München and Frankfurt with the XMeld adapter only.
    let host = Host::start().await;
    let bestellung = order("bestellung-reisepass");
    let (code, body) = host.post(bestellung.clone()).await;
    assert_eq!((code, body["error"].as_str()), (422, Some("no_adapter")), "{body}");
    let elsewhere = String::from_utf8(bestellung).expect("utf-8").replace("psb:09162000_00", "psb:09000009_00");
    let (code, body) = host.post(elsewhere).await;
    assert_eq!((code, body["error"].as_str()), (422, Some("unknown_tenant")), "{body}");
    let citizens = host.citizens("09162000").await;
    assert!(citizens.is_empty(), "nothing stored: {citizens:?}");
}

#[test]
fn the_trxhd_golden_fixtures_pass_in_the_sandbox() {
    let dir = efile_bridge_tests::root().join("plugins/adapters/trxhd");
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::trxhd_wasm());
    let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, &dir, false).expect("run");
    assert!(results.len() >= 5, "fixtures went missing: {}", results.len());
    for r in &results {
        assert_eq!(r.outcome, FixtureOutcome::Passed, "{}", r.case);
    }
    let errors = results.iter().filter(|r| dir.join("tests/fixtures").join(&r.case).join("expected.err").exists());
    assert!(errors.count() >= 3, "the negative fixtures are gone");
}
