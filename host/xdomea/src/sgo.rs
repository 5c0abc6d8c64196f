//! The `FVDaten.SGOAblegen.0605` message for one document version.
//!
//! Element order follows the schema's sequences (`NkKeineRueckmeldungFVDatenType`,
//! `SchriftgutobjektZumAblegenType`, `AkteType`, `VorgangType`, `DokumentType` in
//! `xdomea-Baukasten.xsd` and `xdomea-Typen-FachverfahrensdatenAustauschen.xsd`); a change
//! here is checked by the end-to-end test that runs `xmllint --schema` on every fixture.

use efile_bridge_model::EfileRecord;

use crate::codes::{self, FileFormat};
use crate::ids::ExportIds;
use crate::xml::XmlWriter;
use crate::{DocumentExport, MESSAGE_NAME, Recipient, Sender, XdomeaError};

/// What `SendendesSystem/Produktname` says. No version: the message must not change when
/// only the software does, or a retry after an upgrade would differ from the first attempt.
const PRODUCT: &str = "efile-bridge";

/// A primary document (`Primaerdokument`) in the package.
pub(crate) struct PrimaryFile<'a> {
    /// Name in the zip and `Dateiname`: starts with its UUID, as xdomea requires.
    pub file_name: String,
    /// `DateinameOriginal`, for attachments: the name the adapter gave.
    pub original_name: Option<&'a str>,
    pub format: FileFormat,
    pub data: &'a [u8],
}

/// The validated values that are not copied verbatim from the record.
pub(crate) struct Normalised {
    /// `Erstellungszeitpunkt` as `xs:dateTime`.
    pub created_at: String,
    /// `Aufbewahrungsende` as `xs:date`.
    pub retention_end: Option<String>,
}

pub(crate) fn message(
    doc: &DocumentExport<'_>,
    sender: &Sender,
    recipient: &Recipient,
    ids: &ExportIds,
    values: &Normalised,
    original: &PrimaryFile<'_>,
    attachments: &[PrimaryFile<'_>],
) -> Result<String, XdomeaError> {
    let record = doc.record;
    let mut w = XmlWriter::new(MESSAGE_NAME);
    kopf(&mut w, sender, recipient, ids, values)?;

    // Three objects in one batch, container first: each carries its own
    // FachverfahrenObjektID, and the DMS answers per object (NummerImStapel) with the id it
    // gave it. Vorgang and Dokument name their container by our stable UUID, which the DMS
    // knows from the first item or from an earlier export of the same Akte.
    w.open("SchriftgutobjektZumAblegen");
    w.leaf("NummerImStapel", "1")?;
    w.leaf("FachverfahrenObjektID", &akte_objekt_id(doc))?;
    w.open("Schriftgutobjekt");
    akte(&mut w, record, ids)?;
    w.close();
    w.close();

    w.open("SchriftgutobjektZumAblegen");
    w.leaf("NummerImStapel", "2")?;
    w.leaf("FachverfahrenObjektID", &vorgang_objekt_id(doc))?;
    w.leaf("IDContainer", &ids.akte)?;
    w.open("Schriftgutobjekt");
    vorgang(&mut w, record, ids, values)?;
    w.close();
    w.close();

    w.open("SchriftgutobjektZumAblegen");
    w.leaf("NummerImStapel", "3")?;
    w.leaf("FachverfahrenObjektID", doc.document_id)?;
    w.leaf("IDContainer", &ids.vorgang)?;
    w.open("Schriftgutobjekt");
    dokument(&mut w, doc, ids, original, attachments)?;
    w.close();
    w.close();

    Ok(w.finish())
}

/// The Akte is the citizen's file for one file-plan code: a citizen with a Meldeakte and a
/// Pass- und Ausweisakte has two, so the citizen id alone would make them one object.
pub(crate) fn akte_objekt_id(doc: &DocumentExport<'_>) -> String {
    format!("{}/{}", doc.citizen_id, doc.record.file_plan_code)
}

/// The Vorgang is one case of that file, as the store groups them (case type + reference).
pub(crate) fn vorgang_objekt_id(doc: &DocumentExport<'_>) -> String {
    let r = doc.record;
    match &r.case_ref {
        Some(case_ref) => format!("{}/{}/{}/{}", doc.citizen_id, r.file_plan_code, r.case_type, case_ref),
        None => format!("{}/{}/{}", doc.citizen_id, r.file_plan_code, r.case_type),
    }
}

fn kopf(
    w: &mut XmlWriter,
    sender: &Sender,
    recipient: &Recipient,
    ids: &ExportIds,
    values: &Normalised,
) -> Result<(), XdomeaError> {
    w.open("Kopf");
    w.leaf("ProzessID", &ids.process)?;
    w.code("Nachrichtentyp", Some(codes::NACHRICHTENTYP), "0605")?;
    w.leaf("Erstellungszeitpunkt", &values.created_at)?;
    w.open("Absender");
    kontakt_behoerde(w, &sender.name, &sender.kennung)?;
    w.close();
    w.open("Empfaenger");
    kontakt_behoerde(w, &recipient.name, &recipient.kennung)?;
    w.close();
    w.open("SendendesSystem");
    w.leaf("Produktname", PRODUCT)?;
    w.close();
    // The 0630 import confirmation is mandatory in 0605 (fixed to 1) and says everything a
    // receipt would; over HTTP the 2xx answer already is the receipt. So no 0629 is asked
    // for, as xdomea recommends by default; `parse_reply` still understands one.
    w.leaf("Empfangsbestaetigung", "0")?;
    w.leaf("Importbestaetigung", "1")?;
    w.leaf("Erstellerkennung", PRODUCT)?;
    w.leaf("Stapel", "1")?;
    w.leaf("Stapellaenge", "3")?;
    w.close();
    Ok(())
}

/// A DVDV Behördenkennung is `präfix:schlüssel` (`ags:09162000`), which xdomea carries as
/// `Praefix` and `Behoerdenschluessel`; anything else goes whole into `Behoerdenschluessel`.
fn kontakt_behoerde(w: &mut XmlWriter, name: &str, kennung: &str) -> Result<(), XdomeaError> {
    if !kennung.is_empty() {
        w.open("Behoerdenkennung");
        match kennung.split_once(':') {
            Some((praefix, schluessel)) if !praefix.is_empty() && !schluessel.is_empty() => {
                w.code("Behoerdenschluessel", None, schluessel)?;
                w.code("Praefix", None, praefix)?;
            }
            _ => w.code("Behoerdenschluessel", None, kennung)?,
        }
        w.close();
    }
    w.open("Institution");
    w.leaf("Name", name)?;
    w.close();
    Ok(())
}

fn akte(w: &mut XmlWriter, record: &EfileRecord, ids: &ExportIds) -> Result<(), XdomeaError> {
    w.open("Akte");
    identifikation(w, &ids.akte)?;
    w.open("AllgemeineMetadaten");
    w.leaf_if("Betreff", &record.file_subject)?;
    w.leaf_if("Kennzeichen", &record.file_plan_code)?;
    if !record.file_plan_code.is_empty() {
        w.open("Aktenplaneinheit");
        w.leaf("Kennzeichen", &record.file_plan_code)?;
        w.close();
    }
    w.close();
    // The citizen is the Geschäftsprozessbeteiligter of the file: name and a complete birth
    // date, nothing else. Identifiers (the tax id above all) stay out: xdomea has no place
    // for them and the receiver does not need them to file.
    let citizen = &record.citizen;
    w.open("Kontakt");
    if !citizen.family_name.is_empty() || !citizen.given_names.is_empty() {
        w.open("Name");
        if !citizen.family_name.is_empty() {
            w.open("Familienname");
            w.leaf("Name", &citizen.family_name)?;
            w.close();
        }
        if !citizen.given_names.is_empty() {
            w.open("Vorname");
            w.leaf("Name", &citizen.given_names)?;
            w.close();
        }
        w.close();
    }
    // A partial birth date (year or year-month) has no xs:date form; the original message
    // in the package still carries it.
    if let Some(date) = citizen.birth_date.as_deref().filter(|d| crate::parse_date(d).is_some()) {
        w.open("Geburt");
        w.leaf("Datum", date)?;
        w.close();
    }
    w.close();
    w.close();
    Ok(())
}

fn vorgang(w: &mut XmlWriter, record: &EfileRecord, ids: &ExportIds, values: &Normalised) -> Result<(), XdomeaError> {
    w.open("Vorgang");
    identifikation(w, &ids.vorgang)?;
    w.open("AllgemeineMetadaten");
    let betreff = match &record.case_ref {
        Some(case_ref) if !case_ref.is_empty() => format!("{} {case_ref}", record.case_type),
        _ => record.case_type.clone(),
    };
    w.leaf_if("Betreff", &betreff)?;
    w.leaf_if("Kennzeichen", &record.file_plan_code)?;
    w.close();
    // Retention lives on the Vorgang because xdomea's DokumentType has no archival
    // metadata; the Vorgang is the smallest object that can carry it.
    let years = retention_years(&record.retention.rule);
    if years.is_some() || values.retention_end.is_some() {
        w.open("ArchivspezifischeMetadaten");
        if let Some(years) = years {
            w.open("Aufbewahrungsdauer");
            w.leaf("AnzahlJahre", &years.to_string())?;
            w.close();
        }
        if let Some(end) = &values.retention_end {
            w.leaf("Aufbewahrungsende", end)?;
        }
        w.close();
    }
    // Sent without its Akte in the same object, so the Akte's subject goes along as context.
    w.leaf_if("Aktenbetreff", &record.file_subject)?;
    w.leaf_if("Typ", &record.case_type)?;
    w.close();
    Ok(())
}

fn dokument(
    w: &mut XmlWriter,
    doc: &DocumentExport<'_>,
    ids: &ExportIds,
    original: &PrimaryFile<'_>,
    attachments: &[PrimaryFile<'_>],
) -> Result<(), XdomeaError> {
    let record = doc.record;
    let stufe = codes::vertraulichkeitsstufe(record.confidentiality);
    let version = doc.version.to_string();
    w.open("Dokument");
    identifikation(w, &ids.dokument)?;
    w.open("AllgemeineMetadaten");
    w.leaf_if("Betreff", &record.title)?;
    w.leaf_if("Kennzeichen", &record.file_plan_code)?;
    w.code("Vertraulichkeitsstufe", Some(codes::VERTRAULICHKEITSSTUFE), stufe)?;
    w.leaf("Bemerkung", &format!("Originalnachricht {}, Nachrichten-UUID {}", doc.message_type, doc.message_uuid))?;
    w.code("Medium", Some(codes::MEDIUM), codes::MEDIUM_ELEKTRONISCH)?;
    w.close();
    w.leaf("Typ", record.document_type.as_str())?;
    version_element(w, &version, original)?;
    for (number, (file, (anlage_id, _))) in attachments.iter().zip(&ids.attachments).enumerate() {
        w.open("Anlage");
        identifikation(w, anlage_id)?;
        w.open("AllgemeineMetadaten");
        w.leaf_if("Betreff", file.original_name.unwrap_or_default())?;
        w.code("Vertraulichkeitsstufe", Some(codes::VERTRAULICHKEITSSTUFE), stufe)?;
        w.code("Medium", Some(codes::MEDIUM), codes::MEDIUM_ELEKTRONISCH)?;
        w.close();
        version_element(w, &version, file)?;
        w.leaf("Nummer", &(number + 1).to_string())?;
        w.close();
    }
    w.close();
    Ok(())
}

fn identifikation(w: &mut XmlWriter, id: &str) -> Result<(), XdomeaError> {
    w.open("Identifikation");
    w.leaf("ID", id)?;
    w.close();
    Ok(())
}

fn version_element(w: &mut XmlWriter, number: &str, file: &PrimaryFile<'_>) -> Result<(), XdomeaError> {
    w.open("Version");
    w.leaf("Nummer", number)?;
    w.open("Format");
    w.code("Name", Some(codes::DATEIFORMAT), file.format.code)?;
    if let Some(other) = &file.format.other_name {
        w.leaf("SonstigerName", other)?;
    }
    w.leaf("Version", &file.format.version)?;
    w.open("Primaerdokument");
    w.leaf("Dateiname", &file.file_name)?;
    if let Some(original) = file.original_name {
        w.leaf_if("DateinameOriginal", original)?;
    }
    w.close();
    w.close();
    w.close();
    Ok(())
}

/// The retention period in years, when the rule states exactly one ("BMG §13: 5 Jahre nach
/// Ende des Jahres des Wegzugs"). The record model carries the rule as text and the deadline
/// as a date; xdomea wants the period as a number, and guessing between two numbers would
/// put a wrong period into the e-file, so then it is left out and only the deadline goes.
pub(crate) fn retention_years(rule: &str) -> Option<u16> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let mut found: Option<u16> = None;
    for pair in words.windows(2) {
        if pair[1].starts_with("Jahr") && !pair[0].is_empty() && pair[0].bytes().all(|b| b.is_ascii_digit()) {
            let years: u16 = pair[0].parse().ok()?;
            if found.is_some_and(|f| f != years) {
                return None;
            }
            found = Some(years);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_years_only_from_one_unambiguous_number() {
        assert_eq!(retention_years("BMG §13: 5 Jahre nach Ende des Jahres des Wegzugs"), Some(5));
        assert_eq!(retention_years("BMG §13, abweichend festgelegt: 10 Jahre nach Ende des Jahres"), Some(10));
        assert_eq!(retention_years("BMG §13: Frist beginnt mit Wegzug oder Tod"), None);
        assert_eq!(retention_years("5 Jahre, bei Sperre 10 Jahre"), None);
        assert_eq!(retention_years("PassG §21 Abs. 4: 5 Jahre nach Ablauf"), Some(5));
    }
}
