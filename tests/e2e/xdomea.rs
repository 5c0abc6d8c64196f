//! xdomea 3.1.0 export: every record of every golden XMeld fixture is exported as a
//! `FVDaten.SGOAblegen.0605` package, unpacked and checked, and its message is validated by the
//! real `xmllint --schema` against the official XSD in `schemas/xdomea-3.1.0/xsd/`. The
//! replies 0629/0630 are validated the same way before `parse_reply` reads them.
//!
//! xmllint is part of the test environment (Debian package `libxml2-utils`): without it these
//! tests fail, they never skip, because an unvalidated export is exactly what they exist to stop.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use efile_adapter_xmeld::XmeldAdapter;
use efile_bridge_devkit::{fixture_cases, message_info};
use efile_bridge_model::EfileRecord;
use efile_bridge_sdk::Adapter as _;
use efile_bridge_xdomea::{DocumentExport, Package, Recipient, Reply, SCHEMA_FILE, Sender, parse_reply, sgo_ablegen};

fn schema() -> PathBuf {
    efile_bridge_tests::root().join("schemas/xdomea-3.1.0/xsd").join(SCHEMA_FILE)
}

/// `xmllint --noout --nonet --schema XSD FILE`: `Err` with xmllint's output if the file is
/// invalid; a panic naming the package to install if xmllint is missing.
pub(crate) fn xmllint(file: &Path) -> Result<(), String> {
    let output = Command::new("xmllint").arg("--noout").arg("--nonet").arg("--schema").arg(schema()).arg(file).output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "xmllint is not installed, so the xdomea export cannot be validated against its XSD; \
             install it (Debian: apt-get install libxml2-utils)"
        ),
        Err(e) => panic!("cannot run xmllint: {e}"),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() && text.contains("validates") { Ok(()) } else { Err(text) }
}

fn sender() -> Sender {
    Sender { name: "efile-bridge, Rechenzentrum Süd".into(), kennung: "ags:09162000".into() }
}

fn recipient() -> Recipient {
    Recipient { name: "Landeshauptstadt München, E-Akte".into(), kennung: "ags:09162000".into() }
}

/// A fixture whose expectation is records (not an `expected.err`).
struct Case {
    name: String,
    input: Vec<u8>,
    message_uuid: String,
    message_type: String,
    created_at: String,
    records: Vec<EfileRecord>,
}

fn record_cases() -> (Vec<Case>, usize) {
    let dirs = fixture_cases(&efile_bridge_tests::root().join("plugins/adapters/xmeld")).expect("fixtures");
    let mut cases = Vec::new();
    let mut errors = 0;
    for dir in dirs {
        let expected = dir.join("expected.json");
        if !expected.exists() {
            assert!(dir.join("expected.err").exists(), "{}: neither expected.json nor expected.err", dir.display());
            errors += 1;
            continue;
        }
        let input = std::fs::read(dir.join("input.xml")).expect("input");
        let info = message_info(&input).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let records: Vec<EfileRecord> =
            serde_json::from_str(&std::fs::read_to_string(&expected).expect("expected")).expect("records");
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        cases.push(Case {
            name,
            input,
            message_uuid: info.message_uuid,
            message_type: info.message_type,
            created_at: info.created_at,
            records,
        });
    }
    (cases, errors)
}

/// Stable ids the way the store would hand them over: one per citizen and document.
fn export<'a>(case: &'a Case, no: usize, citizen_id: &'a str, document_id: &'a str) -> DocumentExport<'a> {
    DocumentExport {
        record: &case.records[no],
        citizen_id,
        document_id,
        version: 1,
        message_uuid: &case.message_uuid,
        message_type: &case.message_type,
        original_xml: &case.input,
        created_at: &case.created_at,
    }
}

pub(crate) fn unzip(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("package is a zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("entry");
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("entry data");
            (entry.name().expect("entry name").into_owned(), data)
        })
        .collect()
}

/// The texts of every `<xdomea:{element}>` in a message this crate wrote (one per line).
fn values(xml: &str, element: &str) -> Vec<String> {
    let open = format!("<xdomea:{element}>");
    let close = format!("</xdomea:{element}>");
    xml.match_indices(&open)
        .filter_map(|(at, _)| {
            let rest = &xml[at + open.len()..];
            rest.find(&close).map(|end| rest[..end].to_owned())
        })
        .collect()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// Checks one package against its record; returns the problems found.
fn check_package(case: &Case, record: &EfileRecord, package: &Package) -> Vec<String> {
    let mut problems = Vec::new();
    let xml = String::from_utf8(package.message_xml.clone()).expect("message is UTF-8");
    let entries = unzip(&package.zip);
    let message_name = format!("{}_FVDaten.SGOAblegen.0605.xml", package.message_id);
    if package.file_name != format!("{}_FVDaten.SGOAblegen.0605.zip", package.message_id) {
        problems.push(format!("package name {}", package.file_name));
    }
    if values(&xml, "ProzessID") != [package.message_id.clone()] || !is_uuid(&package.message_id) {
        problems.push(format!("ProzessID is not the message id {}", package.message_id));
    }
    match entries.first() {
        Some((name, data)) if *name == message_name && *data == package.message_xml => {}
        Some((name, _)) => problems.push(format!("first entry is {name}, not the message {message_name}")),
        None => problems.push("empty zip".into()),
    }
    // Every primary document is named in the message, starts with its own UUID, and every
    // file the message names is in the zip.
    let named: BTreeSet<String> = values(&xml, "Dateiname").into_iter().collect();
    let files: BTreeSet<String> = entries.iter().skip(1).map(|(n, _)| n.clone()).collect();
    if named != files {
        problems.push(format!("message names {named:?}, zip holds {files:?}"));
    }
    let prefixes: BTreeSet<&str> = files.iter().map(|f| f.get(..36).unwrap_or_default()).collect();
    if prefixes.len() != files.len() {
        problems.push(format!("file UUIDs are not distinct: {files:?}"));
    }
    for f in &files {
        if !is_uuid(f.get(..36).unwrap_or_default()) || f.as_bytes().get(36) != Some(&b'_') {
            problems.push(format!("file {f} does not start with a UUID"));
        }
        if f.contains('/') || f.contains('\\') {
            problems.push(format!("file {f} has a path"));
        }
    }
    let originals: Vec<&(String, Vec<u8>)> =
        entries.iter().filter(|(n, _)| n.contains("_Originalnachricht_")).collect();
    match originals.as_slice() {
        [(_, data)] if *data == case.input => {}
        [(name, _)] => problems.push(format!("{name} is not the original message byte for byte")),
        other => problems.push(format!("{} original messages in the zip", other.len())),
    }
    for a in &record.attachments {
        if !entries.iter().any(|(_, data)| *data == a.data) {
            problems.push(format!("attachment {} is not in the zip", a.name));
        }
        if !values(&xml, "DateinameOriginal").contains(&a.name) {
            problems.push(format!("attachment {} is not named in the message", a.name));
        }
    }
    if entries.len() != 2 + record.attachments.len() {
        problems.push(format!("{} entries for {} attachments", entries.len(), record.attachments.len()));
    }
    // Identifiers (the tax id above all) are not xdomea data and stay out.
    for id in &record.citizen.identifiers {
        if xml.contains(&id.value) {
            problems.push(format!("identifier {} is in the message", id.kind.as_str()));
        }
    }
    problems
}

#[test]
fn every_fixture_record_exports_to_a_schema_valid_0605_package() {
    let (cases, errors) = record_cases();
    assert!(cases.len() >= 30, "record fixtures went missing: {}", cases.len());
    assert!(errors >= 2, "the negative fixtures are gone");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut validated = 0;
    let mut failures = Vec::new();
    let mut message_types = BTreeSet::new();
    for case in &cases {
        for no in 0..case.records.len() {
            let citizen_id = format!("citizen-{}-{no}", case.name);
            let document_id = format!("document-{}-{no}", case.name);
            let doc = export(case, no, &citizen_id, &document_id);
            let package = match sgo_ablegen(&doc, &sender(), &recipient()) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{} record {no}: export failed: {e}", case.name));
                    continue;
                }
            };
            let again = sgo_ablegen(&doc, &sender(), &recipient()).expect("second export");
            if again != package {
                failures.push(format!("{} record {no}: a second export differs", case.name));
            }
            for p in check_package(case, &case.records[no], &package) {
                failures.push(format!("{} record {no}: {p}", case.name));
            }
            let file = tmp.path().join(format!("{}-{no}_{}.xml", case.name, package.message_id));
            std::fs::write(&file, &package.message_xml).expect("write message");
            match xmllint(&file) {
                Ok(()) => validated += 1,
                Err(out) => failures.push(format!("{} record {no}: invalid against {SCHEMA_FILE}:\n{out}", case.name)),
            }
            message_types.insert(case.message_type.clone());
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    let records: usize = cases.iter().map(|c| c.records.len()).sum();
    assert_eq!(validated, records);
    assert!(validated >= 50, "only {validated} exports validated");
    // Every message type the adapter maps was exported from at least one fixture.
    let handled: BTreeSet<String> = XmeldAdapter::describe().handles.into_iter().map(|k| k.message_type).collect();
    let missing: Vec<&String> = handled.difference(&message_types).collect();
    assert!(missing.is_empty(), "no export of a record of type {missing:?}; exported: {message_types:?}");
    eprintln!(
        "xdomea: {validated} exports of {} fixtures ({} message types) validate against {SCHEMA_FILE}",
        cases.len(),
        message_types.len()
    );
}

#[test]
fn the_validation_catches_an_invalid_message() {
    // The harness must be able to fail: the same message with a mandatory Kopf element
    // removed is refused by xmllint.
    let (cases, _) = record_cases();
    let case = cases.iter().find(|c| c.name == "anmeldung-0201-single-person").expect("fixture");
    let package = sgo_ablegen(&export(case, 0, "c", "d"), &sender(), &recipient()).expect("export");
    let xml = String::from_utf8(package.message_xml).expect("utf-8");
    let broken = xml.replace("<xdomea:Erstellerkennung>efile-bridge</xdomea:Erstellerkennung>\n", "");
    assert_ne!(broken, xml, "the element to remove is not in the message");
    let tmp = tempfile::tempdir().expect("tmp");
    let good = tmp.path().join("good.xml");
    let bad = tmp.path().join("bad.xml");
    std::fs::write(&good, &xml).expect("write");
    std::fs::write(&bad, &broken).expect("write");
    xmllint(&good).expect("the intact message validates");
    let out = xmllint(&bad).expect_err("the broken message must not validate");
    assert!(out.contains("Erstellerkennung"), "{out}");
}

#[test]
fn a_1704_record_carries_its_pdf_as_an_anlage() {
    let (cases, _) = record_cases();
    let case = cases.iter().find(|c| c.name == "anmeldung-1704-single-person").expect("fixture");
    let record = &case.records[0];
    let [pdf] = record.attachments.as_slice() else {
        panic!("expected one attachment: {:?}", record.attachments.len())
    };
    assert_eq!(pdf.media_type, "application/pdf");
    let package = sgo_ablegen(&export(case, 0, "c-1704", "d-1704"), &sender(), &recipient()).expect("export");
    assert_eq!(check_package(case, record, &package), Vec::<String>::new());
    let xml = String::from_utf8(package.message_xml.clone()).expect("utf-8");
    assert_eq!(xml.matches("<xdomea:Anlage>").count(), 1, "{xml}");
    assert_eq!(values(&xml, "DateinameOriginal"), std::slice::from_ref(&pdf.name));
    let entries = unzip(&package.zip);
    let (name, data) = &entries[2];
    assert_eq!(data, &pdf.data, "the PDF is byte-identical in the zip");
    assert!(name.ends_with(&format!("_{}", pdf.name)), "{name}");
    assert!(values(&xml, "Dateiname").contains(name));
    // Format: PDF (Dateiformat 018) with the version from the file's header.
    let header = String::from_utf8_lossy(&pdf.data[..8]).into_owned();
    assert!(xml.contains("<code>018</code>"), "{xml}");
    assert!(values(&xml, "Version").iter().any(|v| header.ends_with(v.as_str())), "{header}: {xml}");
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("1704.xml");
    std::fs::write(&file, &package.message_xml).expect("write");
    xmllint(&file).unwrap_or_else(|out| panic!("invalid:\n{out}"));
}

#[test]
fn exports_are_byte_identical_across_calls_and_differ_per_version() {
    let (cases, _) = record_cases();
    let case = cases.iter().find(|c| c.name == "anmeldung-1704-family").expect("fixture");
    let doc = export(case, 0, "c-family", "d-family");
    let first = sgo_ablegen(&doc, &sender(), &recipient()).expect("export");
    for _ in 0..3 {
        assert_eq!(sgo_ablegen(&doc, &sender(), &recipient()).expect("export"), first);
    }
    let v2 = sgo_ablegen(&DocumentExport { version: 2, ..doc }, &sender(), &recipient()).expect("export");
    assert_ne!(v2.message_id, first.message_id);
    assert_ne!(v2.zip, first.zip);
    // Another citizen gets other UUIDs for the same content.
    let other = sgo_ablegen(&DocumentExport { citizen_id: "c-other", ..doc }, &sender(), &recipient()).expect("export");
    let ids = |p: &Package| values(std::str::from_utf8(&p.message_xml).expect("utf-8"), "ID");
    assert_ne!(ids(&other)[0], ids(&first)[0], "Akte UUID");
    assert_eq!(ids(&other)[2], ids(&first)[2], "the Dokument UUID follows the document id only");
}

/// A reply as an e-file system would send it; `result` is the `ErfolgOderMisserfolg` content.
pub(crate) fn reply_0630(process_id: &str, result: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xdomea:FVDaten.ImportBestaetigen.0630 xmlns:xdomea="urn:xoev-de:xdomea:schema:3.1.0">
  <xdomea:Kopf>
    <xdomea:ProzessID>{process_id}</xdomea:ProzessID>
    <xdomea:Nachrichtentyp listURI="urn:xoev-de:xdomea:codeliste:nachrichtentyp" listVersionID="2.0"><code>0630</code></xdomea:Nachrichtentyp>
    <xdomea:Erstellungszeitpunkt>2026-02-01T10:00:05Z</xdomea:Erstellungszeitpunkt>
    <xdomea:Absender><xdomea:Institution><xdomea:Name>Landeshauptstadt München, E-Akte</xdomea:Name></xdomea:Institution></xdomea:Absender>
    <xdomea:Empfaenger><xdomea:Institution><xdomea:Name>efile-bridge</xdomea:Name></xdomea:Institution></xdomea:Empfaenger>
    <xdomea:FVSessionID>none</xdomea:FVSessionID>
  </xdomea:Kopf>
  <xdomea:ErfolgOderMisserfolg>
{result}
  </xdomea:ErfolgOderMisserfolg>
</xdomea:FVDaten.ImportBestaetigen.0630>
"#
    )
}

fn filed(no: u32, dms_id: &str) -> String {
    format!(
        "    <xdomea:Rueckgabeparameter><xdomea:NummerImStapel>{no}</xdomea:NummerImStapel>\
         <xdomea:IDSGO>{dms_id}</xdomea:IDSGO><xdomea:Parameter><xdomea:Ablageort>dms://akten/{no}</xdomea:Ablageort>\
         </xdomea:Parameter><xdomea:Erfolgreich>1</xdomea:Erfolgreich></xdomea:Rueckgabeparameter>"
    )
}

pub(crate) const SUCCESS: &str = "    <xdomea:Rueckmeldung><xdomea:AllgemeineRueckmeldung listVersionID=\"1.1\"><code>0000000</code></xdomea:AllgemeineRueckmeldung></xdomea:Rueckmeldung>";

fn validated(name: &str, xml: &str) -> Reply {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join(name);
    std::fs::write(&file, xml).expect("write");
    xmllint(&file).unwrap_or_else(|out| panic!("the hand-built {name} is not valid:\n{out}"));
    parse_reply(xml.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn schema_valid_replies_are_read_and_matched_to_their_package() {
    let (cases, _) = record_cases();
    let case = cases.iter().find(|c| c.name == "anmeldung-0201-single-person").expect("fixture");
    let package = sgo_ablegen(&export(case, 0, "c", "d"), &sender(), &recipient()).expect("export");
    let id = package.message_id.as_str();

    let received = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<xdomea:FVDaten.EmpfangBestaetigen.0629 xmlns:xdomea="urn:xoev-de:xdomea:schema:3.1.0">
  <xdomea:Kopf>
    <xdomea:ProzessID>{id}</xdomea:ProzessID>
    <xdomea:Nachrichtentyp listURI="urn:xoev-de:xdomea:codeliste:nachrichtentyp" listVersionID="2.0"><code>0629</code></xdomea:Nachrichtentyp>
    <xdomea:Erstellungszeitpunkt>2026-02-01T10:00:01Z</xdomea:Erstellungszeitpunkt>
    <xdomea:Absender><xdomea:Institution><xdomea:Name>E-Akte</xdomea:Name></xdomea:Institution></xdomea:Absender>
    <xdomea:Empfaenger><xdomea:Institution><xdomea:Name>efile-bridge</xdomea:Name></xdomea:Institution></xdomea:Empfaenger>
  </xdomea:Kopf>
</xdomea:FVDaten.EmpfangBestaetigen.0629>
"#
    );
    assert_eq!(
        validated("0629.xml", &received),
        Reply::Received { process_id: id.into(), created_at: "2026-02-01T10:00:01Z".into() }
    );

    let objects = [
        filed(1, "11111111-1111-4111-8111-111111111111"),
        filed(2, "22222222-2222-4222-8222-222222222222"),
        filed(3, "33333333-3333-4333-8333-333333333333"),
    ];
    let imported = reply_0630(id, &format!("{SUCCESS}\n{}", objects.join("\n")));
    match validated("0630-imported.xml", &imported) {
        Reply::Imported { process_id, already_processed, objects } => {
            assert_eq!(process_id, package.message_id);
            assert!(!already_processed);
            let numbers: Vec<Option<u32>> = objects.iter().map(|o| o.number_in_batch).collect();
            assert_eq!(numbers, [Some(1), Some(2), Some(3)]);
            assert_eq!(objects[2].dms_id.as_deref(), Some("33333333-3333-4333-8333-333333333333"));
        }
        other => panic!("expected Imported, got {other:?}"),
    }

    // A retry the DMS had already processed is still a success.
    let again = reply_0630(
        id,
        "    <xdomea:Rueckmeldung><xdomea:AllgemeineRueckmeldung><code>0000009</code></xdomea:AllgemeineRueckmeldung></xdomea:Rueckmeldung>",
    );
    assert!(matches!(validated("0630-again.xml", &again), Reply::Imported { already_processed: true, .. }));
}

#[test]
fn a_rejecting_or_broken_reply_is_not_taken_for_success() {
    let id = "7d0e6a52-9b1f-4c3e-8a44-2f6b1d9e7c20";
    // Valid 0630 whose Dokument (object 3) could not be filed: its container is unknown.
    let failed = format!(
        "{SUCCESS}\n{}\n    <xdomea:Rueckgabeparameter><xdomea:NummerImStapel>3</xdomea:NummerImStapel>\
         <xdomea:Parameter><xdomea:Ablageort>-</xdomea:Ablageort></xdomea:Parameter><xdomea:Erfolgreich>false</xdomea:Erfolgreich>\
         <xdomea:Rueckmeldung><xdomea:SpezifischeFehlermeldung0605><code>0605001</code></xdomea:SpezifischeFehlermeldung0605></xdomea:Rueckmeldung>\
         </xdomea:Rueckgabeparameter>",
        filed(1, "11111111-1111-4111-8111-111111111111")
    );
    match validated("0630-rejected.xml", &reply_0630(id, &failed)) {
        Reply::Rejected { process_id, reason, transient } => {
            assert!(!transient);
            assert_eq!(process_id, id);
            assert_eq!(reason, "object 3: 0605001 ID des Containers im DMS unbekannt/ungültig");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    // A whole-message failure with the DMS's own wording.
    let schema_error = "    <xdomea:Rueckmeldung><xdomea:AllgemeineRueckmeldung><code>0000008</code><name>Schema verletzt</name></xdomea:AllgemeineRueckmeldung></xdomea:Rueckmeldung>";
    assert_eq!(
        validated("0630-schema.xml", &reply_0630(id, schema_error)),
        Reply::Rejected { process_id: id.into(), reason: "0000008 Schema verletzt".into(), transient: false }
    );
    // Without any Rueckmeldung the reply is invalid for the schema and an error for us.
    let empty = reply_0630(id, "");
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("0630-empty.xml");
    std::fs::write(&file, &empty).expect("write");
    assert!(xmllint(&file).is_err(), "xmllint accepted a 0630 without Rueckmeldung");
    let err = parse_reply(empty.as_bytes()).expect_err("no result");
    assert!(err.to_string().contains("ErfolgOderMisserfolg/Rueckmeldung"), "{err}");
    // Our own 0605 is not a reply.
    let handwritten = std::fs::read(efile_bridge_tests::root().join(
        "schemas/xdomea-3.1.0/samples/handwritten/7d0e6a52-9b1f-4c3e-8a44-2f6b1d9e7c20_FVDaten.SGOAblegen.0605.xml",
    ))
    .expect("sample");
    assert!(parse_reply(&handwritten).is_err());
}
