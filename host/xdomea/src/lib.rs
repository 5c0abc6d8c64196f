//! xdomea 3.1.0 export: one version of one e-file record becomes one
//! `FVDaten.SGOAblegen.0605` transfer package for the tenant's e-file system (DMS).
//!
//! # What a package is
//!
//! [`sgo_ablegen`] takes a stored record version ([`DocumentExport`]) and returns a
//! [`Package`]: a zip named `<ProzessID>_FVDaten.SGOAblegen.0605.zip` holding
//!
//! - `<ProzessID>_FVDaten.SGOAblegen.0605.xml`, the message, valid against
//!   `schemas/xdomea-3.1.0/xsd/`[`SCHEMA_FILE`];
//! - `<uuid>_Originalnachricht_<type>.xml`, the original XMeld message, byte for byte;
//! - `<uuid>_<name>` for every attachment of the record.
//!
//! Every primary document's file name starts with its own UUID and is the `Dateiname` the
//! message names, as xdomea transfers do. The delivery worker writes the zip into a folder or
//! POSTs it to a URL; this crate does no I/O.
//!
//! # What the message says
//!
//! Three objects in one batch (`Stapel`), each with its own `FachverfahrenObjektID`:
//!
//! 1. the **Akte**: the citizen's file for the record's file-plan code (`Betreff` = file
//!    subject, `Kennzeichen` = file-plan code, the citizen as `Kontakt` with name and birth date);
//! 2. the **Vorgang** in it: the case (case type and reference), with the retention period
//!    and deadline as `ArchivspezifischeMetadaten`;
//! 3. the **Dokument** in that: title, document type, `Vertraulichkeitsstufe`, and one
//!    `Version` (our version number) whose `Primaerdokument` is the original message; each
//!    attachment is an `Anlage` with its own `Version/Format/Primaerdokument`.
//!
//! The mapping element by element is in `docs/src/xdomea.md`.
//!
//! # Deterministic, so a retry is the same delivery
//!
//! The same input gives the same bytes: every UUID is derived from our stable ids
//! (`ids` module: SHA-256, RFC 9562 version 8), the only time in the message is
//! [`DocumentExport::created_at`], and the zip has fixed entry times and order. The e-file
//! system sees a retried delivery as the same `ProzessID` with the same objects.
//!
//! # Replies
//!
//! [`parse_reply`] reads the DMS's `FVDaten.EmpfangBestaetigen.0629` (received) and
//! `FVDaten.ImportBestaetigen.0630` (filed, or rejected with codes) into a [`Reply`], matched
//! to the package by [`Reply::process_id`] = [`Package::message_id`].
//!
//! ```
//! use efile_bridge_model::*;
//! use efile_bridge_xdomea::{DocumentExport, Recipient, Sender, sgo_ablegen};
//!
//! let record = EfileRecord {
//!     citizen: CitizenRef {
//!         identifiers: vec![],
//!         display_name: "Brandl, Katharina".into(),
//!         family_name: "Brandl".into(),
//!         given_names: "Katharina".into(),
//!         birth_date: Some("1991-04-17".into()),
//!     },
//!     file_plan_code: "12.20.10".into(),
//!     file_subject: "Meldeakte Brandl, Katharina".into(),
//!     case_type: "wegzug".into(),
//!     case_ref: Some("ANM-2026-000117".into()),
//!     document_type: DocumentType::Abmeldung,
//!     title: "Wegzug nach Frankfurt am Main".into(),
//!     event_date: Some("2026-01-12".into()),
//!     retention: Retention { deadline: Some("2031-12-31".into()), rule: "BMG §13: 5 Jahre".into() },
//!     confidentiality: Confidentiality::Normal,
//!     metadata: vec![],
//!     attachments: vec![],
//! };
//! let original = b"<?xml version=\"1.0\"?><rueckmeldung/>";
//! let export = DocumentExport {
//!     record: &record,
//!     citizen_id: "c-1",
//!     document_id: "d-1",
//!     version: 1,
//!     message_uuid: "6e884c30-9524-4171-a63e-8845963c47b4",
//!     message_type: "0201",
//!     original_xml: original,
//!     created_at: "2026-01-13T08:00:00Z",
//! };
//! let sender = Sender { name: "efile-bridge München".into(), kennung: "ags:09162000".into() };
//! let recipient = Recipient { name: "E-Akte München".into(), kennung: "ags:09162000".into() };
//! let package = sgo_ablegen(&export, &sender, &recipient)?;
//! assert_eq!(package.file_name, format!("{}_FVDaten.SGOAblegen.0605.zip", package.message_id));
//! assert_eq!(sgo_ablegen(&export, &sender, &recipient)?.zip, package.zip);
//! # Ok::<(), efile_bridge_xdomea::XdomeaError>(())
//! ```

mod codes;
mod ids;
mod package;
mod reply;
mod sgo;
mod xml;

use efile_bridge_model::EfileRecord;

pub use reply::{FiledObject, MAX_DEPTH, MAX_REPLY_BYTES, Reply, parse_reply};
pub use xml::NAMESPACE;

/// The root element of the export message.
pub const MESSAGE_NAME: &str = "FVDaten.SGOAblegen.0605";

/// The schema file in `schemas/xdomea-3.1.0/xsd/` that defines 0605, 0629 and 0630.
pub const SCHEMA_FILE: &str = "xdomea-Nachrichten-FachverfahrensdatenAustauschen.xsd";

/// Who sends: the IT provider or efile-bridge installation (`Kopf/Absender`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `Institution/Name`.
    pub name: String,
    /// DVDV Behördenkennung (`ags:09162000`) → `Behoerdenkennung`; may be empty.
    pub kennung: String,
}

/// Who receives: the tenant's e-file system (`Kopf/Empfaenger`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// `Institution/Name`.
    pub name: String,
    /// DVDV Behördenkennung → `Behoerdenkennung`; may be empty.
    pub kennung: String,
}

/// One stored version of one document, with what the export needs besides the record.
#[derive(Debug, Clone, Copy)]
pub struct DocumentExport<'a> {
    /// The record as stored.
    pub record: &'a EfileRecord,
    /// Our stable citizen id: with the file-plan code, the Akte's `FachverfahrenObjektID`.
    pub citizen_id: &'a str,
    /// Our stable document id: the Dokument's `FachverfahrenObjektID`.
    pub document_id: &'a str,
    /// The version (from 1): `Version/Nummer`.
    pub version: u32,
    /// `nachrichtenUUID` of the message the record came from.
    pub message_uuid: &'a str,
    /// Its type code, e.g. `0201`.
    pub message_type: &'a str,
    /// The original message, primary document of the Dokument (`text/xml`).
    pub original_xml: &'a [u8],
    /// When this version was created (RFC 3339): the message's `Erstellungszeitpunkt`.
    pub created_at: &'a str,
}

/// A transfer package, ready to write or send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The message's `ProzessID`; replies carry it.
    pub message_id: String,
    /// `<message_id>_FVDaten.SGOAblegen.0605.zip`.
    pub file_name: String,
    /// The zip: message first, then the primary documents.
    pub zip: Vec<u8>,
    /// The message alone (also in the zip), for logs and validation.
    pub message_xml: Vec<u8>,
}

/// Why an export or a reply failed. Messages name the field or element, never personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XdomeaError {
    /// A value the export needs is empty.
    #[error("{field} is empty")]
    Empty {
        /// Which input.
        field: &'static str,
    },
    /// A value has the wrong form.
    #[error("{field} `{value}` is not {expected}")]
    InvalidValue {
        /// Which input.
        field: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A text holds a character XML 1.0 cannot represent (a control character).
    #[error("{element} contains U+{code_point:04X}, which XML 1.0 cannot carry")]
    UnrepresentableChar {
        /// The element path inside the message, e.g. `SchriftgutobjektZumAblegen/…/Betreff`.
        element: String,
        /// The character.
        code_point: u32,
    },
    /// The zip could not be written.
    #[error("cannot write zip entry `{entry}`: {reason}")]
    Package {
        /// The entry, or `central directory`.
        entry: String,
        /// The zip library's reason.
        reason: String,
    },
    /// A reply is larger than [`MAX_REPLY_BYTES`].
    #[error("reply is {size} bytes, more than the {limit} accepted")]
    ReplyTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A reply is not well-formed XML.
    #[error("reply is not well-formed XML at byte {offset}: {reason}")]
    MalformedReply {
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A reply has a DOCTYPE.
    #[error("reply has a DOCTYPE, which is refused")]
    ReplyDoctype,
    /// The root is not a 0629 or 0630 in an xdomea 3.x namespace.
    #[error("`{root}` is not an xdomea 0629 or 0630 reply")]
    NotAReply {
        /// The root element's local name.
        root: String,
    },
    /// A reply lacks a mandatory element.
    #[error("reply {message} has no {element}")]
    MissingReplyElement {
        /// The reply message name.
        message: &'static str,
        /// The element path.
        element: &'static str,
    },
    /// A reply element has an unusable value.
    #[error("reply {message}: {element} `{value}` is not {expected}")]
    InvalidReplyValue {
        /// The reply message name.
        message: &'static str,
        /// The element path.
        element: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// Builds the 0605 package for one document version. Pure: no clock, no randomness, no I/O.
pub fn sgo_ablegen(doc: &DocumentExport<'_>, sender: &Sender, recipient: &Recipient) -> Result<Package, XdomeaError> {
    let record = doc.record;
    for (field, value) in [
        ("citizen_id", doc.citizen_id),
        ("document_id", doc.document_id),
        ("message_uuid", doc.message_uuid),
        ("message_type", doc.message_type),
        ("sender.name", sender.name.as_str()),
        ("recipient.name", recipient.name.as_str()),
    ] {
        if value.trim().is_empty() {
            return Err(XdomeaError::Empty { field });
        }
    }
    if doc.original_xml.is_empty() {
        return Err(XdomeaError::Empty { field: "original_xml" });
    }
    if doc.version == 0 {
        return Err(XdomeaError::InvalidValue {
            field: "version",
            value: "0".into(),
            expected: "a version number from 1",
        });
    }
    let values = sgo::Normalised { created_at: xs_date_time(doc.created_at)?, retention_end: retention_end(record)? };

    let ids = ids::ExportIds::new(
        doc.citizen_id,
        &record.file_plan_code,
        &record.case_type,
        record.case_ref.as_deref(),
        doc.document_id,
        doc.version,
        record.attachments.len(),
    );
    let original_name = format!("Originalnachricht_{}.xml", package::safe_name(doc.message_type));
    let original = sgo::PrimaryFile {
        file_name: format!("{}_{original_name}", ids.original_file),
        original_name: None,
        format: codes::file_format("application/xml", &original_name, doc.original_xml),
        data: doc.original_xml,
    };
    let attachments: Vec<sgo::PrimaryFile<'_>> = record
        .attachments
        .iter()
        .zip(&ids.attachments)
        .map(|(a, (_, file_id))| sgo::PrimaryFile {
            file_name: format!("{file_id}_{}", package::safe_name(&a.name)),
            original_name: Some(a.name.as_str()),
            format: codes::file_format(&a.media_type, &a.name, &a.data),
            data: &a.data,
        })
        .collect();

    let xml = sgo::message(doc, sender, recipient, &ids, &values, &original, &attachments)?;
    let message_file = format!("{}_{MESSAGE_NAME}.xml", ids.process);
    let mut entries: Vec<(&str, &[u8])> = Vec::with_capacity(2 + attachments.len());
    entries.push((message_file.as_str(), xml.as_bytes()));
    entries.push((original.file_name.as_str(), original.data));
    for a in &attachments {
        entries.push((a.file_name.as_str(), a.data));
    }
    let zip = package::zip(&entries)?;
    Ok(Package {
        file_name: format!("{}_{MESSAGE_NAME}.zip", ids.process),
        message_id: ids.process,
        zip,
        message_xml: xml.into_bytes(),
    })
}

/// RFC 3339 → the canonical `xs:dateTime` form (`T`, `Z`), so lowercase separators or a
/// `-00:00` offset, which RFC 3339 allows and XML Schema does not, never reach the message.
fn xs_date_time(value: &str) -> Result<String, XdomeaError> {
    use time::format_description::well_known::Rfc3339;
    let invalid = || XdomeaError::InvalidValue {
        field: "created_at",
        value: value.to_owned(),
        expected: "an RFC 3339 date-time",
    };
    let t = time::OffsetDateTime::parse(value, &Rfc3339).map_err(|_| invalid())?;
    t.format(&Rfc3339).map_err(|_| invalid())
}

fn retention_end(record: &EfileRecord) -> Result<Option<String>, XdomeaError> {
    match record.retention.deadline.as_deref() {
        None => Ok(None),
        Some(d) => match parse_date(d) {
            Some(_) => Ok(Some(d.to_owned())),
            None => Err(XdomeaError::InvalidValue {
                field: "retention.deadline",
                value: d.to_owned(),
                expected: "a date YYYY-MM-DD",
            }),
        },
    }
}

/// A complete calendar date `YYYY-MM-DD`, the only form that is both our model's full date
/// and an `xs:date` without a time zone.
pub(crate) fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests;
