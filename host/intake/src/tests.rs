use super::*;

fn message(root: &str, header_extra: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xmeld:{root} xmlns:xmeld="http://www.osci.de/xmeld2511a" version="25.11a" standard="XMeld">
  <nachrichtenkopf.g2g>
    <identifikation.nachricht>
      <nachrichtenUUID>6F1C2B3A-1111-4222-8333-944455556666</nachrichtenUUID>
      <nachrichtentyp><code>0201</code></nachrichtentyp>
      <erstellungszeitpunkt>2026-03-02T10:00:00+01:00</erstellungszeitpunkt>
    </identifikation.nachricht>
    <leser><kennung>ags:09162000</kennung><name>M&#252;nchen &amp; Umland</name></leser>
    <autor><kennung>ags:06412000</kennung></autor>{header_extra}
  </nachrichtenkopf.g2g>{body}
</xmeld:{root}>"#
    )
}

fn ok(xml: &str) -> Envelope {
    check(xml.as_bytes(), &Limits::default()).expect("message should pass intake")
}

fn err(xml: &[u8], limits: &Limits) -> IntakeError {
    check(xml, limits).expect_err("message should be refused")
}

#[test]
fn extracts_the_envelope() {
    let env = ok(&message("rueckmeldung.anmeldunginland.0201", "", "<xmeld:x/>"));
    assert_eq!(env.standard, "XMeld");
    assert_eq!(env.version, "25.11a");
    assert_eq!(env.message_name, "rueckmeldung.anmeldunginland.0201");
    assert_eq!(env.message_type, "0201");
    assert_eq!(env.message_uuid, "6f1c2b3a-1111-4222-8333-944455556666");
    assert_eq!(env.created_at, "2026-03-02T10:00:00+01:00");
    let reader = env.reader.expect("reader");
    assert_eq!(reader.ags(), Some("09162000"));
    assert_eq!(reader.name.as_deref(), Some("München & Umland"));
    assert_eq!(env.author.expect("author").ags(), Some("06412000"));
}

#[test]
fn every_kosit_sample_parses() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/xmeld-25.11a/samples/kosit-testsuite");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("samples folder") {
        let path = entry.expect("entry").path();
        let body = std::fs::read(&path).expect("read sample");
        let env = check(&body, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(env.message_name.ends_with(&env.message_type), "{}", path.display());
        assert!(env.reader.is_some(), "{}", path.display());
        seen += 1;
    }
    assert_eq!(seen, 7, "the seven KoSIT test messages");
}

#[test]
fn refuses_doctype_and_billion_laughs() {
    let xml = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(matches!(e, IntakeError::Doctype { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Malformed);
}

#[test]
fn refuses_undeclared_entities_in_text_and_attributes() {
    let e = err(message("a.0201", "", "<b>&xxe;</b>").as_bytes(), &Limits::default());
    assert!(matches!(&e, IntakeError::Entity { name, .. } if name == "xxe"), "{e}");
    let e = err(message("a.0201", "", r#"<b c="&xxe;"/>"#).as_bytes(), &Limits::default());
    assert!(matches!(&e, IntakeError::Entity { name, .. } if name == "xxe"), "{e}");
}

#[test]
fn refuses_malformed_xml() {
    for bad in ["<a><b></a>", "<a>", "<a></a><b></b>", "<a x='1' x='2'/>", "text<a/>", ""] {
        let e = err(bad.as_bytes(), &Limits::default());
        assert_eq!(e.class(), ErrorClass::Malformed, "{bad:?}: {e}");
    }
}

#[test]
fn refuses_invalid_utf8_naming_the_offset() {
    let mut body = message("a.0201", "", "").into_bytes();
    body.insert(50, 0xff);
    assert_eq!(err(&body, &Limits::default()), IntakeError::InvalidUtf8 { offset: 50 });
}

#[test]
fn enforces_each_limit() {
    let xml = message("rueckmeldung.anmeldunginland.0201", "", "<a><b><c><d/></c></b></a>");
    let small = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        l
    };
    let e = err(xml.as_bytes(), &small(|l| l.max_bytes = 100));
    assert!(matches!(e, IntakeError::TooLarge { limit: 100, .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::TooLarge);
    let e = err(xml.as_bytes(), &small(|l| l.max_depth = 4));
    assert!(matches!(e, IntakeError::LimitExceeded { what: "depth", .. }), "{e}");
    let e = err(xml.as_bytes(), &small(|l| l.max_elements = 10));
    assert!(matches!(e, IntakeError::LimitExceeded { what: "element count", .. }), "{e}");
    let e = err(xml.as_bytes(), &small(|l| l.max_attributes = 2));
    assert!(matches!(e, IntakeError::LimitExceeded { what: "attribute count", .. }), "{e}");
    let e = err(xml.as_bytes(), &small(|l| l.max_attribute_len = 10));
    assert!(matches!(e, IntakeError::LimitExceeded { what: "attribute length", .. }), "{e}");
}

#[test]
fn refuses_unknown_namespace_and_wrong_version() {
    let xml = message("a.0201", "", "").replace("xmeld2511a", "xmeld2411");
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(
        matches!(&e, IntakeError::UnknownStandard { namespace, .. } if namespace == "http://www.osci.de/xmeld2411"),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Unacceptable);
    let xml = message("a.0201", "", "").replace("version=\"25.11a\"", "version=\"2.4.3\"");
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(matches!(&e, IntakeError::StandardMismatch { found, .. } if found == "2.4.3"), "{e}");
}

#[test]
fn refuses_missing_or_inconsistent_header_fields() {
    let xml = message("a.0201", "", "")
        .replace("<nachrichtenUUID>6F1C2B3A-1111-4222-8333-944455556666</nachrichtenUUID>", "");
    assert!(matches!(err(xml.as_bytes(), &Limits::default()), IntakeError::MissingHeader { .. }));
    let xml = message("a.0201", "", "").replace("6F1C2B3A-1111-4222-8333-944455556666", "not-a-uuid");
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(e.to_string().contains("`not-a-uuid`"), "{e}");
    let e = err(message("a.0202", "", "").as_bytes(), &Limits::default());
    assert!(e.to_string().contains("does not match the root element"), "{e}");
}

/// A TR-XhD order in the assumed layout (see the crate docs), with `kopf` as its header body.
fn trxhd(root: &str, kopf: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xhd:{root} xmlns:xhd="{TRXHD_NAMESPACE}">
  <xhd:Nachrichtenkopf>{kopf}
  </xhd:Nachrichtenkopf>
  <xhd:Nutzdaten><xhd:Antragsteller><xhd:Familienname>Stra&#223;er</xhd:Familienname></xhd:Antragsteller></xhd:Nutzdaten>
</xhd:{root}>"#
    )
}

const TRXHD_ID: &str = "\n    <xhd:NachrichtenID>0B5E1C7A-2F4D-4E8B-9A61-3C2D1E0F9A8B</xhd:NachrichtenID>";
const TRXHD_TYPE: &str = "\n    <xhd:Nachrichtentyp>BestellungDokument</xhd:Nachrichtentyp>";
const TRXHD_TIME: &str = "\n    <xhd:Erstellungszeitpunkt>2026-06-02T09:14:00+02:00</xhd:Erstellungszeitpunkt>";
const TRXHD_AUTOR: &str = "\n    <xhd:Autor><xhd:Behoerdenschluessel>psb:09162000_00</xhd:Behoerdenschluessel>\
<xhd:Name>Landeshauptstadt M&#252;nchen, Pass- und Ausweisstelle</xhd:Name></xhd:Autor>";
const TRXHD_LESER: &str =
    "\n    <xhd:Leser><xhd:Behoerdenschluessel>dbs:110000000001</xhd:Behoerdenschluessel></xhd:Leser>";

fn trxhd_order(without: &str) -> String {
    let kopf: String = [TRXHD_ID, TRXHD_TYPE, TRXHD_TIME, TRXHD_AUTOR, TRXHD_LESER]
        .into_iter()
        .filter(|part| !part.contains(without))
        .collect();
    trxhd("BestellungDokument", &kopf)
}

#[test]
fn extracts_the_trxhd_header_and_the_authoritys_ags() {
    let env = ok(&trxhd_order("nothing left out"));
    assert_eq!(env.standard, "TR-XhD");
    assert_eq!(env.version, "1.8");
    assert_eq!(env.message_name, "BestellungDokument");
    assert_eq!(env.message_type, "BestellungDokument");
    assert_eq!(env.message_uuid, "0b5e1c7a-2f4d-4e8b-9a61-3c2d1e0f9a8b");
    assert_eq!(env.created_at, "2026-06-02T09:14:00+02:00");
    let author = env.author.expect("author");
    assert_eq!(author.kennung, "psb:09162000_00");
    assert_eq!(author.name.as_deref(), Some("Landeshauptstadt München, Pass- und Ausweisstelle"));
    assert_eq!(author.ags(), Some("09162000"), "the Passbehörde's key names the tenant");
    let reader = env.reader.expect("reader");
    assert_eq!((reader.kennung.as_str(), reader.ags()), ("dbs:110000000001", None), "the producer is no tenant");
}

#[test]
fn refuses_a_trxhd_order_without_message_id() {
    let e = err(trxhd_order("NachrichtenID").as_bytes(), &Limits::default());
    assert_eq!(e, IntakeError::MissingHeader { path: "Nachrichtenkopf/NachrichtenID" });
    assert_eq!((e.class(), e.code()), (ErrorClass::Unacceptable, "missing_header"));
    let xml = trxhd_order("nothing left out").replace("0B5E1C7A-2F4D-4E8B-9A61-3C2D1E0F9A8B", "BDR-4711");
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(e.to_string().contains("`bdr-4711`: not a uuid"), "{e}");
}

#[test]
fn refuses_a_trxhd_order_without_the_authority_naming_the_tenant() {
    let e = err(trxhd_order("<xhd:Autor>").as_bytes(), &Limits::default());
    assert_eq!(e, IntakeError::MissingHeader { path: "Nachrichtenkopf/Autor/Behoerdenschluessel" });
    assert_eq!(e.to_string(), "header has no `Nachrichtenkopf/Autor/Behoerdenschluessel`");
    let e = err(trxhd_order("<xhd:Leser>").as_bytes(), &Limits::default());
    assert_eq!(e, IntakeError::MissingHeader { path: "Nachrichtenkopf/Leser/Behoerdenschluessel" });
    let xml = trxhd_order("nothing left out").replace("psb:09162000_00", "09162000");
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(
        matches!(&e, IntakeError::InvalidHeader { path: "Nachrichtenkopf/Autor/Behoerdenschluessel", value, .. } if value == "09162000"),
        "{e}"
    );
}

#[test]
fn refuses_a_trxhd_type_that_disagrees_with_the_root_and_the_official_namespace() {
    let xml = trxhd("Lieferinformation", &[TRXHD_ID, TRXHD_TYPE, TRXHD_TIME, TRXHD_AUTOR, TRXHD_LESER].concat());
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(
        matches!(&e, IntakeError::InvalidHeader { path: "Nachrichtenkopf/Nachrichtentyp", value, .. } if value == "BestellungDokument"),
        "{e}"
    );
    // Any other TR-XhD message passes intake; whether a tenant's adapter handles it is routing.
    let kopf = [TRXHD_ID, TRXHD_TIME, TRXHD_AUTOR, TRXHD_LESER].concat()
        + "\n    <xhd:Nachrichtentyp>Lieferinformation</xhd:Nachrichtentyp>";
    assert_eq!(ok(&trxhd("Lieferinformation", &kopf)).message_type, "Lieferinformation");
    // The official namespace is not read with the assumed element names.
    let xml = trxhd_order("nothing left out").replace(TRXHD_NAMESPACE, "http://www.bsi.de/trxhd/1.8");
    let e = err(xml.as_bytes(), &Limits::default());
    assert!(matches!(e, IntakeError::UnknownStandard { .. }), "{e}");
    // A version attribute is optional, but must agree when given.
    let xml = trxhd_order("nothing left out").replace("xmlns:xhd", "version=\"1.7\" xmlns:xhd");
    assert!(matches!(err(xml.as_bytes(), &Limits::default()), IntakeError::StandardMismatch { .. }));
}

#[test]
fn behoerdenschluessel_names_an_ags_only_for_german_pass_id_and_eid_authorities() {
    let ags = |kennung: &str| Party { kennung: kennung.into(), name: None }.ags().map(str::to_owned);
    assert_eq!(ags("ags:09162000").as_deref(), Some("09162000"));
    assert_eq!(ags("psb:04011300_00").as_deref(), Some("04011300"));
    assert_eq!(ags("pab:04011300_01").as_deref(), Some("04011300"));
    assert_eq!(ags("eid:04011300_00").as_deref(), Some("04011300"));
    for none in ["psb:AA_00000999", "azr:022100", "dbs:110000000001", "psb:04011300", "psb:0401130_000", "x:09162000"] {
        assert_eq!(ags(none), None, "{none}");
    }
}
