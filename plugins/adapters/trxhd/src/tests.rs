use std::collections::BTreeMap;

use super::*;

fn fixture(case: &str) -> String {
    let path = format!("{}/tests/fixtures/{case}/input.xml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the host would pass for `xml`, from the real intake check.
fn info(xml: &str) -> MessageInfo {
    let env = efile_bridge_intake::check(xml.as_bytes(), &efile_bridge_intake::Limits::default())
        .unwrap_or_else(|e| panic!("intake: {e}"));
    MessageInfo {
        tenant_ags: "09162000".into(),
        standard: env.standard,
        version: env.version,
        message_type: env.message_type,
        message_name: env.message_name,
        message_uuid: env.message_uuid,
        created_at: env.created_at,
        received_at: "2026-06-02T07:15:00.000Z".into(),
        journal_index: 1,
    }
}

fn map(xml: &str, config: &BTreeMap<String, String>) -> Result<Vec<EfileRecord>, MappingError> {
    TrXhdAdapter::map(&info(xml), xml, config)
}

fn one(xml: &str) -> EfileRecord {
    let mut records = map(xml, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(records.len(), 1);
    records.remove(0)
}

fn fingerprint_of(c: &CitizenRef) -> &str {
    c.identifiers.iter().find(|i| i.kind == IdentifierKind::Fingerprint).map_or("", |i| i.value.as_str())
}

#[test]
fn describe_handles_exactly_what_intake_reports_for_an_order() {
    let i = info(&fixture("bestellung-reisepass"));
    let kinds = TrXhdAdapter::describe().handles;
    let want = MessageKind { standard: i.standard, version: i.version, message_type: i.message_type };
    assert_eq!(kinds, vec![want], "the host routes by this triple");
}

#[test]
fn the_order_names_the_same_citizen_as_the_xmeld_anmeldung() {
    let anmeldung = std::fs::read_to_string(format!(
        "{}/../xmeld/tests/fixtures/anmeldung-1704-single-person/input.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("xmeld fixture");
    let xmeld = efile_adapter_xmeld::XmeldAdapter::map(&info(&anmeldung), &anmeldung, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let order = one(&fixture("bestellung-reisepass"));
    assert_eq!(fingerprint_of(&order.citizen), fingerprint_of(&xmeld[0].citizen));
    assert!(!fingerprint_of(&order.citizen).is_empty());
    assert_eq!(order.citizen.display_name, xmeld[0].citizen.display_name);
    assert_eq!(order.file_plan_code, "12.30.10", "the XMeld adapter's Pass- und Ausweisakte");
    // The key XMeld's fortschreibung.dokument.0006 gives the same passport.
    assert_eq!(order.case_ref.as_deref(), Some("01:C4JR7T2X9"));
    assert_eq!(order.retention.deadline.as_deref(), Some("2041-05-31"), "expiry + 5 years (PassG §21 Abs. 4)");
}

#[test]
fn an_id_card_order_keeps_din_91379_names_as_sent_and_uses_the_id_card_rule() {
    let r = one(&fixture("bestellung-personalausweis-unicode"));
    assert_eq!(r.citizen.family_name, "Weißenbach-Jabłońska");
    assert_eq!(r.citizen.given_names, "Zoe\u{301} Łucja", "the combining accent is kept, not composed");
    assert_eq!(r.citizen.identifiers[0], Identifier { kind: IdentifierKind::IdNr, value: "81274036591".into() });
    // The fingerprint folds the spelling: the precomposed é and a plain l give the same one.
    let folded =
        efile_bridge_sdk::person::fingerprint("Weissenbach-Jablonska", "Zoé Lucja", Some("1988-07-03"), Some("Lodz"));
    assert_eq!(fingerprint_of(&r.citizen), folded);
    assert_eq!(r.document_type, DocumentType::Other("bestellung".into()));
    assert_eq!(r.title, "Personalausweis bestellt");
    assert!(r.retention.rule.starts_with("BMG §14 Abs. 1"), "{}", r.retention.rule);
}

#[test]
fn biometrics_and_physical_features_never_reach_the_record() {
    for case in ["bestellung-reisepass", "bestellung-personalausweis-unicode"] {
        let xml = fixture(case);
        let record = format!("{:?}", one(&xml));
        let doc = Document::parse(&xml).expect("xml");
        let biometrie = doc.root().find("Nutzdaten/Biometrie").expect("fixture has biometrics");
        for b in biometrie.children() {
            assert!(!record.contains(b.text()), "{case}: {} copied", b.name());
        }
        for field in ["Groesse", "Augenfarbe"] {
            let value = doc.root().find(&format!("Nutzdaten/Antragsteller/{field}")).expect(field).text();
            assert!(!record.contains(&format!("\"{value}\"")), "{case}: {field} copied");
        }
    }
}

#[test]
fn the_tenant_config_moves_the_file_and_the_deadline() {
    let config = BTreeMap::from([
        ("aktenplan.ausweiswesen".to_owned(), "022.31".to_owned()),
        ("aktenbetreff.ausweiswesen".to_owned(), "Passakte".to_owned()),
        ("aufbewahrung.reisepass.jahre".to_owned(), "10".to_owned()),
    ]);
    let r = map(&fixture("bestellung-reisepass"), &config).expect("maps").remove(0);
    assert_eq!(r.file_plan_code, "022.31");
    assert_eq!(r.file_subject, "Passakte Obermüller, Katharina Elisabeth");
    assert_eq!(r.retention.deadline.as_deref(), Some("2046-05-31"));
}

#[test]
fn without_serial_number_and_expiry_the_case_is_the_message_and_the_deadline_open() {
    let xml = fixture("bestellung-reisepass")
        .replace("<xhd:Seriennummer>C4JR7T2X9</xhd:Seriennummer>", "")
        .replace("<xhd:GueltigBis>2036-05-31</xhd:GueltigBis>", "")
        .replace("<xhd:Antragsdatum>2026-06-01</xhd:Antragsdatum>", "");
    let r = one(&xml);
    assert_eq!(r.case_ref.as_deref(), Some("01:5d1f0c3e-8a47-4b2e-9f61-2c7e4a9b0d13"));
    assert_eq!(r.retention.deadline, None);
    assert_eq!(r.event_date.as_deref(), Some("2026-06-02"), "the message date");
}

#[test]
fn bad_values_are_refused_at_their_path_without_quoting_personal_data() {
    let xml = fixture("bestellung-personalausweis-unicode").replace("81274036591", "8127403659");
    let e = map(&xml, &BTreeMap::new()).expect_err("short idNr");
    assert_eq!(e.code, ErrorCode::InvalidValue);
    assert_eq!(e.xml_path, "/BestellungDokument/Nutzdaten/Antragsteller/IdNr");
    assert!(!e.message.contains("8127403659"), "{}", e.message);
    let xml = fixture("bestellung-reisepass").replace("2036-05-31", "2036-05");
    let e = map(&xml, &BTreeMap::new()).expect_err("partial expiry");
    assert_eq!(e.xml_path, "/BestellungDokument/Nutzdaten/Dokument/GueltigBis");
}

#[test]
fn an_encrypted_payload_is_refused_naming_where_it_is() {
    let xml = fixture("bestellung-reisepass");
    let start = xml.find("<xhd:Nutzdaten>").expect("start");
    let end = xml.find("</xhd:Nutzdaten>").expect("end") + "</xhd:Nutzdaten>".len();
    let encrypted = format!(
        "{}<xhd:any><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" \
         Type=\"http://www.w3.org/2001/04/xmlenc#Element\"/></xhd:any>{}",
        &xml[..start],
        &xml[end..]
    );
    let e = map(&encrypted, &BTreeMap::new()).expect_err("encrypted");
    assert_eq!(e.xml_path, "/BestellungDokument/any/EncryptedData");
    assert!(e.message.contains("encrypted for the document producer"), "{}", e.message);
}

#[test]
fn every_setting_used_has_a_default() {
    for part in include_str!("lib.rs").split("setting(config, \"").skip(1) {
        let key = part.split('"').next().unwrap_or_default();
        let default = CONFIG_KEYS.iter().find(|(k, ..)| *k == key).map(|(_, d, _)| *d);
        assert!(default.is_some_and(|d| !d.is_empty()), "config key `{key}` has no default in CONFIG_KEYS");
    }
}
