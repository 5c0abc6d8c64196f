//! Unit tests of the export and the reply reader. Schema validity of real fixture exports
//! (`xmllint --schema`) is checked end to end in `tests/e2e/xdomea.rs`.

use std::io::Read as _;

use efile_bridge_model::{
    Attachment, CitizenRef, Confidentiality, DocumentType, EfileRecord, Identifier, IdentifierKind, Retention,
};

use super::*;

const ORIGINAL: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xmeld:rueckmeldung xmlns:xmeld=\"x\"/>\n";

fn record() -> EfileRecord {
    EfileRecord {
        citizen: CitizenRef {
            identifiers: vec![
                Identifier { kind: IdentifierKind::IdNr, value: "08962367457".into() },
                Identifier { kind: IdentifierKind::Fingerprint, value: "637a20f1210304879762".into() },
            ],
            display_name: "Brandl, Katharina Maria".into(),
            family_name: "Brandl".into(),
            given_names: "Katharina Maria".into(),
            birth_date: Some("1991-04-17".into()),
        },
        file_plan_code: "12.20.10".into(),
        file_subject: "Meldeakte Brandl, Katharina Maria".into(),
        case_type: "wegzug".into(),
        case_ref: Some("ANM-2026-000117".into()),
        document_type: DocumentType::Abmeldung,
        title: "Wegzug nach Frankfurt am Main (Rückmeldung Inland)".into(),
        event_date: Some("2026-01-12".into()),
        retention: Retention {
            deadline: Some("2031-12-31".into()),
            rule: "BMG §13: 5 Jahre nach Ende des Jahres des Wegzugs".into(),
        },
        confidentiality: Confidentiality::High,
        metadata: vec![("zuzug.wohnort".into(), "Frankfurt am Main, Hauptstraße 1".into())],
        attachments: vec![],
    }
}

fn export(record: &EfileRecord) -> DocumentExport<'_> {
    DocumentExport {
        record,
        citizen_id: "3d1c9a4e-citizen",
        document_id: "8f2b7c10-document",
        version: 1,
        message_uuid: "6e884c30-9524-4171-a63e-8845963c47b4",
        message_type: "0201",
        original_xml: ORIGINAL,
        created_at: "2026-01-13T08:15:00.250+01:00",
    }
}

fn sender() -> Sender {
    Sender { name: "efile-bridge Rechenzentrum".into(), kennung: "ags:09162000".into() }
}

fn recipient() -> Recipient {
    Recipient { name: "E-Akte <München>".into(), kennung: "dms-muenchen".into() }
}

fn unzip(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("zip");
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).expect("entry");
            let mut data = Vec::new();
            f.read_to_end(&mut data).expect("read");
            (f.name().expect("entry name").into_owned(), data)
        })
        .collect()
}

fn text(p: &Package) -> String {
    String::from_utf8(p.message_xml.clone()).expect("utf-8")
}

#[test]
fn the_message_carries_the_three_objects_and_their_metadata() {
    let r = record();
    let p = sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export");
    let xml = text(&p);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xdomea:FVDaten.SGOAblegen.0605 "), "{xml}");
    assert!(xml.contains(&format!("<xdomea:ProzessID>{}</xdomea:ProzessID>", p.message_id)), "{xml}");
    assert!(xml.contains("<xdomea:Erstellungszeitpunkt>2026-01-13T08:15:00.25+01:00</xdomea:Erstellungszeitpunkt>"));
    for expected in [
        "<xdomea:FachverfahrenObjektID>3d1c9a4e-citizen/12.20.10</xdomea:FachverfahrenObjektID>",
        "<xdomea:FachverfahrenObjektID>3d1c9a4e-citizen/12.20.10/wegzug/ANM-2026-000117</xdomea:FachverfahrenObjektID>",
        "<xdomea:FachverfahrenObjektID>8f2b7c10-document</xdomea:FachverfahrenObjektID>",
        "<xdomea:Betreff>Meldeakte Brandl, Katharina Maria</xdomea:Betreff>",
        "<xdomea:Kennzeichen>12.20.10</xdomea:Kennzeichen>",
        "<xdomea:Betreff>wegzug ANM-2026-000117</xdomea:Betreff>",
        "<xdomea:AnzahlJahre>5</xdomea:AnzahlJahre>",
        "<xdomea:Aufbewahrungsende>2031-12-31</xdomea:Aufbewahrungsende>",
        "<xdomea:Betreff>Wegzug nach Frankfurt am Main (Rückmeldung Inland)</xdomea:Betreff>",
        "<xdomea:Typ>abmeldung</xdomea:Typ>",
        "<xdomea:Stapellaenge>3</xdomea:Stapellaenge>",
        "<xdomea:Name>E-Akte &lt;München&gt;</xdomea:Name>",
        "<xdomea:Datum>1991-04-17</xdomea:Datum>",
    ] {
        assert!(xml.contains(expected), "missing {expected}\n{xml}");
    }
    // Auskunftssperre → nur für den Dienstgebrauch.
    assert!(xml.contains("listURI=\"urn:xoev-de:xdomea:codeliste:vertraulichkeitsstufe\" listVersionID=\"1.0\">\n"));
    assert!(xml.contains("<code>002</code>"), "{xml}");
    // The sender's DVDV kennung is split; the recipient's has no prefix and stays whole.
    assert!(xml.contains("<code>09162000</code>") && xml.contains("<code>ags</code>"), "{xml}");
    assert!(xml.contains("<code>dms-muenchen</code>"), "{xml}");
    // Containers point at the objects before them.
    let ids = ids::ExportIds::new(
        "3d1c9a4e-citizen",
        "12.20.10",
        "wegzug",
        Some("ANM-2026-000117"),
        "8f2b7c10-document",
        1,
        0,
    );
    assert!(xml.contains(&format!("<xdomea:IDContainer>{}</xdomea:IDContainer>", ids.akte)));
    assert!(xml.contains(&format!("<xdomea:IDContainer>{}</xdomea:IDContainer>", ids.vorgang)));
    assert_eq!(p.message_id, ids.process);
}

#[test]
fn identifiers_and_free_metadata_stay_out_of_the_message() {
    let r = record();
    let xml = text(&sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export"));
    assert!(!xml.contains("08962367457"), "tax id leaked");
    assert!(!xml.contains("637a20f1210304879762"), "fingerprint leaked");
    assert!(!xml.contains("Hauptstraße"), "metadata leaked");
}

#[test]
fn the_package_holds_the_message_and_the_original_byte_for_byte() {
    let r = record();
    let p = sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export");
    assert_eq!(p.file_name, format!("{}_FVDaten.SGOAblegen.0605.zip", p.message_id));
    let entries = unzip(&p.zip);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].0, format!("{}_FVDaten.SGOAblegen.0605.xml", p.message_id));
    assert_eq!(entries[0].1, p.message_xml);
    let xml = text(&p);
    assert!(xml.contains(&format!("<xdomea:Dateiname>{}</xdomea:Dateiname>", entries[1].0)), "{xml}");
    assert!(entries[1].0.ends_with("_Originalnachricht_0201.xml"), "{}", entries[1].0);
    assert_eq!(entries[1].1, ORIGINAL);
}

#[test]
fn the_same_input_gives_the_same_bytes_and_a_new_version_a_new_process() {
    let r = record();
    let one = sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export");
    let two = sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export");
    assert_eq!(one, two);
    let v2 = DocumentExport { version: 2, ..export(&r) };
    let three = sgo_ablegen(&v2, &sender(), &recipient()).expect("export");
    assert_ne!(three.message_id, one.message_id);
    assert!(text(&three).contains("<xdomea:Nummer>2</xdomea:Nummer>"));
    let dokument = ids::derive(&["dokument", "8f2b7c10-document"]);
    assert!(text(&one).contains(&dokument) && text(&three).contains(&dokument), "the Dokument keeps its UUID");
}

#[test]
fn attachments_become_anlagen_with_safe_uuid_prefixed_files() {
    let mut r = record();
    r.attachments = vec![
        Attachment {
            name: "../Wohnungsgeberbestätigung.pdf".into(),
            media_type: "application/pdf".into(),
            data: b"%PDF-1.4 x".to_vec(),
        },
        Attachment { name: "foto.jpg".into(), media_type: "image/jpeg".into(), data: vec![0xFF, 0xD8, 0xFF] },
    ];
    let p = sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export");
    let xml = text(&p);
    let entries = unzip(&p.zip);
    assert_eq!(entries.len(), 4);
    assert!(entries[2].0.ends_with("__Wohnungsgeberbest_tigung.pdf"), "{}", entries[2].0);
    assert!(!entries[2].0.contains('/'), "{}", entries[2].0);
    assert_eq!(entries[2].1, b"%PDF-1.4 x");
    assert_eq!(entries[3].1, [0xFF, 0xD8, 0xFF]);
    for (name, _) in &entries[1..] {
        assert!(uuid::Uuid::parse_str(&name[..36]).is_ok(), "{name}");
        assert!(xml.contains(&format!("<xdomea:Dateiname>{name}</xdomea:Dateiname>")), "{name} not named\n{xml}");
    }
    assert!(xml.contains("<xdomea:DateinameOriginal>../Wohnungsgeberbestätigung.pdf</xdomea:DateinameOriginal>"));
    assert!(xml.contains("<code>018</code>") && xml.contains("<xdomea:Version>1.4</xdomea:Version>"), "{xml}");
    assert!(xml.contains("<code>011</code>"), "{xml}");
    assert_eq!(xml.matches("<xdomea:Anlage>").count(), 2);
    // Version 1, so a Nummer 2 can only be the second Anlage's.
    assert!(xml.contains("<xdomea:Nummer>2</xdomea:Nummer>"), "{xml}");
}

#[test]
fn partial_birth_dates_and_missing_deadlines_are_left_out() {
    let mut r = record();
    r.citizen.birth_date = Some("1991-04".into());
    r.retention = Retention { deadline: None, rule: "BMG §13: Frist beginnt mit Wegzug oder Tod".into() };
    r.case_ref = None;
    let xml = text(&sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export"));
    assert!(!xml.contains("<xdomea:Geburt>"), "{xml}");
    assert!(!xml.contains("ArchivspezifischeMetadaten"), "{xml}");
    assert!(xml.contains("<xdomea:Betreff>wegzug</xdomea:Betreff>"), "{xml}");
}

#[test]
fn confidentiality_levels_reach_the_dokument() {
    for (c, code) in [(Confidentiality::Normal, "003"), (Confidentiality::Secret, "005")] {
        let mut r = record();
        r.confidentiality = c;
        let xml = text(&sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export"));
        assert!(xml.contains(&format!("<code>{code}</code>")), "{c:?}: {xml}");
    }
}

#[test]
fn created_at_is_normalised_to_xs_date_time() {
    let r = record();
    let doc = DocumentExport { created_at: "2026-01-13t07:15:00z", ..export(&r) };
    let xml = text(&sgo_ablegen(&doc, &sender(), &recipient()).expect("export"));
    assert!(xml.contains("<xdomea:Erstellungszeitpunkt>2026-01-13T07:15:00Z</xdomea:Erstellungszeitpunkt>"), "{xml}");
}

#[test]
fn unusable_input_is_refused_naming_the_value() {
    let r = record();
    let err = |doc: DocumentExport<'_>| sgo_ablegen(&doc, &sender(), &recipient()).expect_err("refused").to_string();
    assert_eq!(err(DocumentExport { version: 0, ..export(&r) }), "version `0` is not a version number from 1");
    assert_eq!(
        err(DocumentExport { created_at: "13.01.2026", ..export(&r) }),
        "created_at `13.01.2026` is not an RFC 3339 date-time"
    );
    assert_eq!(err(DocumentExport { document_id: " ", ..export(&r) }), "document_id is empty");
    assert_eq!(err(DocumentExport { original_xml: b"", ..export(&r) }), "original_xml is empty");
    let mut bad = record();
    bad.retention.deadline = Some("2031-02-30".into());
    assert_eq!(err(export(&bad)), "retention.deadline `2031-02-30` is not a date YYYY-MM-DD");
    let mut bad = record();
    bad.title = "Wegzug\u{7}".into();
    assert_eq!(
        err(export(&bad)),
        "SchriftgutobjektZumAblegen/Schriftgutobjekt/Dokument/AllgemeineMetadaten/Betreff \
         contains U+0007, which XML 1.0 cannot carry"
    );
    let nobody = Sender { name: String::new(), kennung: String::new() };
    assert_eq!(
        sgo_ablegen(&export(&r), &nobody, &recipient()).expect_err("refused").to_string(),
        "sender.name is empty"
    );
}

const REPLY_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<x:FVDaten.ImportBestaetigen.0630 xmlns:x="urn:xoev-de:xdomea:schema:3.1.0">
  <x:Kopf>
    <x:ProzessID>0f6b1d9e-7c20-4c3e-8a44-2f6b1d9e7c20</x:ProzessID>
    <x:Nachrichtentyp><code>0630</code></x:Nachrichtentyp>
    <x:Erstellungszeitpunkt>2026-01-13T09:00:00Z</x:Erstellungszeitpunkt>
    <x:Absender/><x:Empfaenger/>
    <x:FVSessionID>s</x:FVSessionID>
  </x:Kopf>
  <x:ErfolgOderMisserfolg>
"#;

fn reply_0630(body: &str) -> String {
    format!("{REPLY_HEAD}{body}\n  </x:ErfolgOderMisserfolg>\n</x:FVDaten.ImportBestaetigen.0630>\n")
}

const OK: &str =
    "<x:Rueckmeldung><x:AllgemeineRueckmeldung><code>0000000</code></x:AllgemeineRueckmeldung></x:Rueckmeldung>";

#[test]
fn a_0630_without_failures_is_imported_with_the_dms_ids() {
    let xml = reply_0630(&format!(
        "{OK}<x:Rueckgabeparameter><x:NummerImStapel>3</x:NummerImStapel><x:IDSGO>AAAAAAAA-0000-4000-8000-000000000003</x:IDSGO>\
         <x:Parameter><x:Ablageort>/akten/1</x:Ablageort></x:Parameter><x:Erfolgreich>true</x:Erfolgreich></x:Rueckgabeparameter>"
    ));
    let reply = parse_reply(xml.as_bytes()).expect("reply");
    assert_eq!(
        reply,
        Reply::Imported {
            process_id: "0f6b1d9e-7c20-4c3e-8a44-2f6b1d9e7c20".into(),
            already_processed: false,
            objects: vec![FiledObject {
                number_in_batch: Some(3),
                dms_id: Some("AAAAAAAA-0000-4000-8000-000000000003".into())
            }],
        }
    );
    assert_eq!(reply.process_id(), "0f6b1d9e-7c20-4c3e-8a44-2f6b1d9e7c20");
}

#[test]
fn already_processed_counts_as_imported() {
    let xml = reply_0630(
        "<x:Rueckmeldung><x:AllgemeineRueckmeldung><code>0000009</code></x:AllgemeineRueckmeldung></x:Rueckmeldung>",
    );
    match parse_reply(xml.as_bytes()).expect("reply") {
        Reply::Imported { already_processed, .. } => assert!(already_processed),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failures_for_the_message_or_an_object_are_rejections_with_reasons() {
    let xml = reply_0630(
        "<x:Rueckmeldung><x:AllgemeineRueckmeldung><code>0000008</code></x:AllgemeineRueckmeldung></x:Rueckmeldung>",
    );
    assert_eq!(
        parse_reply(xml.as_bytes()).expect("reply"),
        Reply::Rejected {
            process_id: "0f6b1d9e-7c20-4c3e-8a44-2f6b1d9e7c20".into(),
            reason: "0000008 XML-Struktur entspricht nicht dem Schema".into(),
            transient: false,
        }
    );
    // A DMS that is down says so with a general code; the same package may go again later.
    let xml = reply_0630(
        "<x:Rueckmeldung><x:AllgemeineRueckmeldung><code>0000001</code></x:AllgemeineRueckmeldung></x:Rueckmeldung>\
         <x:Rueckmeldung><x:AllgemeineRueckmeldung><code>0000015</code></x:AllgemeineRueckmeldung></x:Rueckmeldung>",
    );
    match parse_reply(xml.as_bytes()).expect("reply") {
        Reply::Rejected { reason, transient, .. } => {
            assert!(transient, "{reason}");
            assert_eq!(reason, "0000001 DMS nicht verfügbar oder Time-out; 0000015 Übertragungsfehler");
        }
        other => panic!("{other:?}"),
    }
    let xml = reply_0630(&format!(
        "{OK}<x:Rueckgabeparameter><x:NummerImStapel>2</x:NummerImStapel><x:Parameter><x:ZumLoeschenMarkiert>0</x:ZumLoeschenMarkiert></x:Parameter>\
         <x:Erfolgreich>0</x:Erfolgreich><x:Rueckmeldung><x:SpezifischeFehlermeldung0605><code>0605001</code></x:SpezifischeFehlermeldung0605></x:Rueckmeldung>\
         <x:Rueckmeldung><x:SonstigeFehlermeldung>Akte gesperrt &amp; archiviert</x:SonstigeFehlermeldung></x:Rueckmeldung></x:Rueckgabeparameter>"
    ));
    match parse_reply(xml.as_bytes()).expect("reply") {
        Reply::Rejected { reason, transient, .. } => {
            assert!(!transient, "an object that was refused is refused again");
            assert_eq!(
                reason,
                "object 2: 0605001 ID des Containers im DMS unbekannt/ungültig, Akte gesperrt & archiviert"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_0629_is_received() {
    let xml = r#"<FVDaten.EmpfangBestaetigen.0629 xmlns="urn:xoev-de:xdomea:schema:3.0.0">
  <Kopf><ProzessID>0f6b1d9e-7c20-4c3e-8a44-2f6b1d9e7c20</ProzessID>
  <Nachrichtentyp><code xmlns="">0629</code></Nachrichtentyp>
  <Erstellungszeitpunkt>2026-01-13T09:00:00Z</Erstellungszeitpunkt><Absender/><Empfaenger/></Kopf>
</FVDaten.EmpfangBestaetigen.0629>"#;
    assert_eq!(
        parse_reply(xml.as_bytes()).expect("reply"),
        Reply::Received {
            process_id: "0f6b1d9e-7c20-4c3e-8a44-2f6b1d9e7c20".into(),
            created_at: "2026-01-13T09:00:00Z".into()
        }
    );
}

#[test]
fn what_is_not_a_usable_reply_is_an_error() {
    let r = record();
    let own = sgo_ablegen(&export(&r), &sender(), &recipient()).expect("export");
    assert_eq!(
        parse_reply(&own.message_xml).expect_err("not a reply").to_string(),
        "`FVDaten.SGOAblegen.0605` is not an xdomea 0629 or 0630 reply"
    );
    let wrong_type = reply_0630(OK).replace("<code>0630</code>", "<code>0629</code>");
    assert_eq!(
        parse_reply(wrong_type.as_bytes()).expect_err("type").to_string(),
        "reply FVDaten.ImportBestaetigen.0630: Kopf/Nachrichtentyp `0629` is not 0630"
    );
    let no_result = reply_0630("");
    assert_eq!(
        parse_reply(no_result.as_bytes()).expect_err("empty").to_string(),
        "reply FVDaten.ImportBestaetigen.0630 has no ErfolgOderMisserfolg/Rueckmeldung"
    );
    let doctype =
        reply_0630(OK).replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<!DOCTYPE x [<!ENTITY e \"boom\">]>");
    assert!(matches!(parse_reply(doctype.as_bytes()), Err(XdomeaError::ReplyDoctype)));
    let entity = reply_0630(OK).replace("<x:FVSessionID>s<", "<x:FVSessionID>&e;<");
    assert!(parse_reply(entity.as_bytes()).expect_err("entity").to_string().contains("`&e;`"));
    assert!(matches!(parse_reply(b"<a><b></a>"), Err(XdomeaError::MalformedReply { .. })));
    let big = vec![b' '; MAX_REPLY_BYTES + 1];
    assert!(matches!(parse_reply(&big), Err(XdomeaError::ReplyTooLarge { .. })));
    let foreign = reply_0630(OK).replace("urn:xoev-de:xdomea:schema:3.1.0", "urn:example:other");
    assert!(matches!(parse_reply(foreign.as_bytes()), Err(XdomeaError::NotAReply { .. })));
}
