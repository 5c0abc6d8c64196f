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
