//! A citizen's life in the registry, through the host: the online move-in to München (1704),
//! an address change (0090), a new identity card (0006), a name change after marriage (0091),
//! then the move to Frankfurt (0201).
//! All land in one citizen file (by idNr where the message has it, by the name/birth
//! fingerprint where it has not) with the right files, cases and deadlines.

use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

/// A fixture rewritten to be about Katharina Maria Brandl, born 1991-04-17 (no birth place),
/// the person of the 0201 single-person fixture.
fn about_brandl(case: &str, family: &str, given: &str, birth: &str, uuid: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(case)).expect("utf-8");
    let mut out = String::new();
    for line in text.lines() {
        if line.contains("<xmeld:geburtsort>") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let out = out
        .replacen(&format!("<name>{family}</name>"), "<name>Brandl</name>", 1)
        .replacen(&format!("<name>{given}</name>"), "<name>Katharina Maria</name>", 1)
        .replacen(&format!("<jahrMonatTag>{birth}</jahrMonatTag>"), "<jahrMonatTag>1991-04-17</jahrMonatTag>", 1);
    with_uuid(out.as_bytes(), uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_life_story_lands_in_one_citizen_file() {
    // München alone: every message below names it as reader or author.
    let host = Host::start_with(|c| c.tenants.retain(|t| t.ags == "09162000")).await;
    let ummeldung = about_brandl(
        "ummeldung-0090-single-person",
        "Brandstätter",
        "Johanna Theresia",
        "1979-04-17",
        "a1000000-0000-4000-8000-000000000001",
    );
    let ausweis = about_brandl(
        "dokument-0006-personalausweis",
        "Weißhaupt",
        "Johanna Theresia",
        "1979-11-04",
        "a1000000-0000-4000-8000-000000000002",
    );
    let anmeldung = {
        let text = String::from_utf8(fixture("anmeldung-1704-single-person")).expect("utf-8");
        let text: String =
            text.lines().filter(|l| !l.contains("<xmeld:geburtsort>")).map(|l| format!("{l}\n")).collect();
        let text = text
            .replace("<name>Obermüller</name>", "<name>Brandl</name>")
            .replace("<name>Katharina Elisabeth</name>", "<name>Katharina Maria</name>")
            .replace("1992-02-29", "1991-04-17")
            .replace("<xmeld:idNr>02158049378</xmeld:idNr>", "<xmeld:idNr>08962367457</xmeld:idNr>");
        with_uuid(text.as_bytes(), "a1000000-0000-4000-8000-000000000000")
    };
    // She marries: the file continues under the new name.
    let heirat = fixture("namensaenderung-0091-heirat");
    let wegzug = fixture("anmeldung-0201-single-person");
    for body in [&anmeldung, &ummeldung, &ausweis, &heirat, &wegzug] {
        let (code, receipt) = host.post(body.clone()).await;
        assert_eq!(code, 202, "{receipt}");
        let status = host.wait_processed(&uuid_of(body)).await;
        assert_eq!(status["state"], "processed", "{status}");
    }
    let citizens = host.citizens("09162000").await;
    assert_eq!(citizens.len(), 1, "one person, one file: {citizens:?}");
    assert_eq!(citizens[0]["documents"], 5);
    assert_eq!(citizens[0]["display_name"], "Brandl-Okafor, Katharina Maria", "the name after the marriage");
    let id = citizens[0]["citizen_id"].as_str().expect("id");
    let (_, file) = host.get(&format!("/v1/tenants/09162000/citizens/{id}")).await;
    let ids: Vec<_> = file["identifiers"].as_array().expect("ids").iter().map(|v| v.as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["fingerprint", "id-nr"]);
    let files = file["files"].as_array().expect("files");
    let plan: Vec<_> = files.iter().map(|f| f["file_plan_code"].as_str().unwrap_or("")).collect();
    assert_eq!(plan, ["12.20.10", "12.30.10"], "registration file and passport/ID file");
    let melde = &files[0];
    let cases: Vec<_> =
        melde["cases"].as_array().expect("cases").iter().map(|c| c["case_type"].as_str().unwrap_or("")).collect();
    assert_eq!(cases, ["zuzug", "ummeldung", "namensaenderung", "wegzug"], "in the order they happened");
    let anmeldung_doc = &melde["cases"][0]["documents"][0];
    assert_eq!(anmeldung_doc["document_type"], "anmeldung");
    assert_eq!(anmeldung_doc["attachments"].as_array().map(Vec::len), Some(1), "the landlord's confirmation");
    let ummeldung_doc = &melde["cases"][1]["documents"][0];
    assert_eq!(ummeldung_doc["document_type"], "ummeldung");
    assert!(ummeldung_doc["retention_deadline"].is_null(), "the clock starts with the move-out");
    let heirat_doc = &melde["cases"][2]["documents"][0];
    assert_eq!(heirat_doc["document_type"], "namensaenderung");
    let wegzug_doc = &melde["cases"][3]["documents"][0];
    assert_eq!(wegzug_doc["document_type"], "abmeldung");
    assert_eq!(wegzug_doc["retention_deadline"], "2031-12-31");
    let ausweis_doc = &files[1]["cases"][0]["documents"][0];
    assert_eq!(ausweis_doc["document_type"], "ausweisdokument");
    assert_eq!(ausweis_doc["title"], "Personalausweis eingetragen");
    let expiry = ausweis_doc["metadata"]
        .as_array()
        .expect("metadata")
        .iter()
        .find(|kv| kv[0] == "gueltig.bis")
        .map(|kv| kv[1].as_str().unwrap_or("").to_owned())
        .expect("expiry");
    let year: i32 = expiry[..4].parse().expect("year");
    assert_eq!(ausweis_doc["retention_deadline"], format!("{}{}", year + 5, &expiry[4..]), "BMG §14: expiry + 5 years");
    // Nothing of it leaks into the metadata: the blocking password stays out.
    assert!(!file.to_string().contains("sperrkennwort"), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_anmeldung_files_every_mover_and_keeps_the_landlords_confirmation() {
    let host = Host::start_with(|c| c.tenants.retain(|t| t.ags == "09162000")).await;
    let xml = fixture("anmeldung-1704-family");
    let (code, receipt) = host.post(xml.clone()).await;
    assert_eq!(code, 202, "{receipt}");
    let status = host.wait_processed(&uuid_of(&xml)).await;
    assert_eq!(status["documents"].as_array().map(Vec::len), Some(4), "{status}");
    let citizens = host.citizens("09162000").await;
    assert_eq!(citizens.len(), 4);
    let jonas = citizens.iter().find(|c| c["display_name"] == "Straßer, Jonas Maximilian").expect("registering person");
    let (_, file) =
        host.get(&format!("/v1/tenants/09162000/citizens/{}", jonas["citizen_id"].as_str().expect("id"))).await;
    let doc = &file["files"][0]["cases"][0]["documents"][0];
    assert_eq!(doc["document_type"], "anmeldung");
    let attachments = doc["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{doc}");
    assert!(attachments[0].as_str().expect("name").ends_with(".pdf"));
    // The attachment is part of the record version's content, so verify covers its bytes.
    let report = crate::support::verify(&host).await.expect("verify");
    assert_eq!(report.record_versions, 4);
}
