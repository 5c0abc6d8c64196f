//! A TR-XhD adapter: the passport or ID card authority's order to the document producer
//! (BSI TR-03123 `BestellungDokument`) as a record in the applicant's Pass- und Ausweisakte.
//!
//! **Modelled, not official.** No public XSD of TR-XhD was available: the element names below
//! are an assumption modelled on the public BSI descriptions, in the namespace the intake check
//! assumes (`efile_bridge_intake::TRXHD_NAMESPACE`). `README.md` says what was used and how a
//! municipality swaps this adapter for one built on the official schema. The message:
//!
//! ```text
//! BestellungDokument
//! ├── Nachrichtenkopf             NachrichtenID, Nachrichtentyp, Erstellungszeitpunkt,
//! │                               Autor/Leser (Behoerdenschluessel, Name); read by intake
//! └── Nutzdaten
//!     ├── Antrag                  Vorgangsnummer?, Antragsdatum?
//!     ├── Dokument                Dokumentart, Seriennummer?, AusstellendeBehoerde, GueltigBis?
//!     ├── Antragsteller           Familienname, Geburtsname?, Vornamen?, Doktorgrad?,
//!     │                           Geburtsdatum, Geburtsort?, IdNr?, Geschlecht?, Groesse?,
//!     │                           Augenfarbe?, Staatsangehoerigkeit?, Anschrift?
//!     └── Biometrie?              Lichtbild, Fingerabdruck*, Unterschrift (never copied)
//! ```
//!
//! One order becomes one record, filed like the XMeld adapter's `fortschreibung.dokument.0006`
//! so both standards fill the same file and case:
//!
//! - the citizen by the SDK's name/birth fingerprint (and the idNr where the order has one),
//!   computed from the same fields as in XMeld messages, so the order joins the file the
//!   registration messages opened;
//! - the Pass- und Ausweisakte (`aktenplan.ausweiswesen`, default `12.30.10`);
//! - the case `ausweiswesen` keyed `passart:seriennummer` with the XMeld Passart code, so the
//!   registry's later 0006 "document entered" for the same serial number lands in the same case;
//! - the retention rule `reisepass` (PassG §21 Abs. 4) or `personalausweis` from the SDK,
//!   counted from the ordered document's expiry; open while no expiry is known.
//!
//! Photo, fingerprints, signature, height and eye colour are never copied into a record: the
//! file is kept for years, fingerprints must be deleted once the document is handed over
//! (PassG §16 Abs. 2, PAuswG §26 Abs. 2).

use efile_bridge_sdk::person::{self, partial_date};
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

/// The adapter.
pub struct TrXhdAdapter;

const STANDARD: &str = "TR-XhD";
const VERSION: &str = "1.8";
/// The one message type mapped.
const BESTELLUNG: &str = "BestellungDokument";

/// Config keys this adapter reads, with defaults. The file keys and retention keys are the
/// XMeld adapter's, so a tenant running both configures its passport file once.
pub const CONFIG_KEYS: &[(&str, &str, &str)] = &[
    ("aktenplan.ausweiswesen", "12.30.10", "file-plan code of the passport and ID document file"),
    (
        "aktenbetreff.ausweiswesen",
        "Pass- und Ausweisakte",
        "subject prefix of that file; the citizen's name is appended",
    ),
    ("aufbewahrung.reisepass.jahre", "5", "years after expiry a passport record is kept (PassG §21 Abs. 4)"),
    ("aufbewahrung.personalausweis.jahre", "5", "years after expiry an ID card record is kept (BMG §14 Abs. 1)"),
];

/// A document the producer makes for a passport or ID card authority.
struct Dokumentart {
    /// The value of `Dokument/Dokumentart`.
    value: &'static str,
    /// The XMeld Passart code of the same document, which keys the case.
    passart: &'static str,
    /// Identity cards fall under the `personalausweis` retention rule, passports under `reisepass`.
    id_card: bool,
}

/// The producer also makes residence permits and travel documents for the foreigners
/// authority; those belong in a different file and are refused rather than misfiled.
const DOKUMENTARTEN: &[Dokumentart] = &[
    Dokumentart { value: "Reisepass", passart: "01", id_card: false },
    Dokumentart { value: "Personalausweis", passart: "09", id_card: true },
    Dokumentart { value: "eID-Karte", passart: "15", id_card: true },
];

/// A config value or its default from [`CONFIG_KEYS`].
fn setting(config: &dyn Config, key: &str) -> String {
    config.get(key).unwrap_or_else(|| {
        CONFIG_KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, d, _)| (*d).to_owned()).unwrap_or_default()
    })
}

impl Adapter for TrXhdAdapter {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "trxhd".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            handles: vec![MessageKind {
                standard: STANDARD.into(),
                version: VERSION.into(),
                message_type: BESTELLUNG.into(),
            }],
            config_keys: CONFIG_KEYS
                .iter()
                .map(|(name, default, what)| ConfigKey {
                    name: (*name).into(),
                    description: format!("{what} (default `{default}`)"),
                    required: false,
                })
                .collect(),
        }
    }

    fn map(info: &MessageInfo, xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError> {
        let doc = Document::parse(xml)?;
        let root = doc.root();
        if (info.standard.as_str(), info.version.as_str(), info.message_type.as_str())
            != (STANDARD, VERSION, BESTELLUNG)
        {
            let at = root.find("Nachrichtenkopf/Nachrichtentyp").unwrap_or(root);
            return Err(MappingError {
                code: ErrorCode::UnsupportedMessage,
                message: format!(
                    "message type {} {} {} is not handled (only {BESTELLUNG})",
                    info.standard, info.version, info.message_type
                ),
                xml_path: at.xml_path(),
            });
        }
        Ok(vec![bestellung(info, root, config)?])
    }
}

efile_bridge_sdk::export_adapter!(TrXhdAdapter);

/// The applicant as the order names them.
fn applicant(a: Element<'_, '_>) -> Result<CitizenRef, MappingError> {
    let family = a.require_text("Familienname")?;
    // A person without given names has none printed; the element may be absent or empty.
    let given = a.text_at("Vornamen").unwrap_or("");
    let birth_date = partial_date(a.require("Geburtsdatum")?);
    let place = a.text_at("Geburtsort");
    // The same fields and the same SDK function as the XMeld adapter, so the same person gets
    // the same identifiers from either standard.
    person::citizen(family, given, birth_date, place, a.find("IdNr"))
}

fn bestellung(info: &MessageInfo, root: Element<'_, '_>, config: &dyn Config) -> Result<EfileRecord, MappingError> {
    let Some(nutzdaten) = root.find("Nutzdaten") else {
        // TR-03132 encrypts the Nutzdaten for the producer; only the authority's own
        // plain copy can be filed.
        if let Some(encrypted) = root.find("any/EncryptedData") {
            return Err(encrypted.invalid(
                "the payload (`Nutzdaten`) is encrypted for the document producer; file the authority's unencrypted copy",
            ));
        }
        return Err(root.missing("Nutzdaten"));
    };
    let dokument = nutzdaten.require("Dokument")?;
    let art_element = dokument.require("Dokumentart")?;
    let art = DOKUMENTARTEN.iter().find(|d| d.value == art_element.text()).ok_or_else(|| {
        art_element.invalid(format!(
            "document type `{}` is not a passport or ID card (expected `Reisepass`, `Personalausweis` or `eID-Karte`)",
            art_element.text()
        ))
    })?;
    let citizen = applicant(nutzdaten.require("Antragsteller")?)?;
    let behoerde = dokument.require_text("AusstellendeBehoerde")?;
    let serial = dokument.text_at("Seriennummer");
    // The expiry starts the retention clock, so a partial or unreadable one is an error, not
    // an open deadline. Its value stays out of the message (personal data).
    let expiry = match dokument.find("GueltigBis") {
        Some(e) => Some(
            partial_date(e)
                .filter(|d| d.len() == 10)
                .ok_or_else(|| e.invalid("the expiry date must be a full date (YYYY-MM-DD)"))?,
        ),
        None => None,
    };
    let applied = nutzdaten.find("Antrag/Antragsdatum").and_then(partial_date);
    let mut metadata = vec![
        ("nachricht".to_owned(), format!("{} ({STANDARD} {VERSION})", info.message_name)),
        ("passart".to_owned(), format!("{} {}", art.passart, art.value)),
        ("behoerde".to_owned(), behoerde.to_owned()),
    ];
    if let Some(key) = root.text_at("Nachrichtenkopf/Autor/Behoerdenschluessel") {
        metadata.push(("behoerdenschluessel".to_owned(), key.to_owned()));
    }
    if let Some(v) = nutzdaten.text_at("Antrag/Vorgangsnummer") {
        metadata.push(("vorgangsnummer".to_owned(), v.to_owned()));
    }
    if let Some(s) = serial {
        metadata.push(("seriennummer".to_owned(), s.to_owned()));
    }
    if let Some(d) = &applied {
        metadata.push(("beantragt".to_owned(), d.clone()));
    }
    if let Some(e) = &expiry {
        metadata.push(("gueltig.bis".to_owned(), e.clone()));
    }
    let rule = retention::rule(config, if art.id_card { "personalausweis" } else { "reisepass" })?;
    Ok(EfileRecord {
        file_subject: format!("{} {}", setting(config, "aktenbetreff.ausweiswesen"), citizen.display_name),
        citizen,
        file_plan_code: setting(config, "aktenplan.ausweiswesen"),
        case_type: "ausweiswesen".into(),
        case_ref: Some(format!("{}:{}", art.passart, serial.unwrap_or(&info.message_uuid))),
        document_type: DocumentType::Other("bestellung".into()),
        title: format!("{} bestellt", art.value),
        event_date: applied.or_else(|| info.created_at.get(..10).map(str::to_owned)),
        retention: rule.apply(expiry.as_deref()),
        confidentiality: Confidentiality::Normal,
        metadata,
        attachments: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
