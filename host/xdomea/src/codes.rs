//! The xdomea code lists this crate writes or reads, with the versions the 3.1.0 schema names.
//!
//! Values are from `schemas/xdomea-3.1.0/xsd/xdomea-Datentypen.xsd` (the lists the schema
//! enumerates) and, for the open Dateiformat list, from the genericode list
//! `urn:xoev-de:xdomea:codeliste:dateiformat` version 1.0 (`shared/xoev/xdomea-3.0.0/codelists/`).

use efile_bridge_model::Confidentiality;

/// `Nachrichtentyp` (version 2.0, fixed by the schema).
pub(crate) const NACHRICHTENTYP: (&str, &str) = ("urn:xoev-de:xdomea:codeliste:nachrichtentyp", "2.0");
/// `Vertraulichkeitsstufe` (version 1.0, fixed by the schema).
pub(crate) const VERTRAULICHKEITSSTUFE: (&str, &str) = ("urn:xoev-de:xdomea:codeliste:vertraulichkeitsstufe", "1.0");
/// `Medium` (version 1.0, fixed by the schema).
pub(crate) const MEDIUM: (&str, &str) = ("urn:xoev-de:xdomea:codeliste:medium", "1.0");
/// `Dateiformat`: the schema leaves the version open (`listVersionID` is required).
pub(crate) const DATEIFORMAT: (&str, &str) = ("urn:xoev-de:xdomea:codeliste:dateiformat", "1.0");

/// Medium 001: the object exists in electronic form only.
pub(crate) const MEDIUM_ELEKTRONISCH: &str = "001";

/// Vertraulichkeitsstufe for a record's confidentiality.
///
/// `high` (an Auskunftssperre) is "nur für den Dienstgebrauch"; `secret` is the next VSA
/// level, "Vertraulich". Both are classifications under the Verschlusssachenanweisung, so the
/// receiving e-file system restricts access accordingly; `normal` is "Offen" (not classified).
pub(crate) fn vertraulichkeitsstufe(c: Confidentiality) -> &'static str {
    match c {
        Confidentiality::Normal => "003",
        Confidentiality::High => "002",
        Confidentiality::Secret => "005",
    }
}

/// A `Format` of a primary document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileFormat {
    /// Dateiformat code.
    pub code: &'static str,
    /// `SonstigerName` for code 100 ("Sonstiges"): the media type.
    pub other_name: Option<String>,
    /// `Version` of the format (mandatory in xdomea), `unbekannt` where the bytes do not say.
    pub version: String,
}

/// The Dateiformat of a file from its media type, its name's extension where the list tells
/// spellings apart (`jpg`/`jpeg`, `tif`/`tiff`), and its first bytes for the format version.
pub(crate) fn file_format(media_type: &str, file_name: &str, data: &[u8]) -> FileFormat {
    let media = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let code = match media.as_str() {
        "application/pdf" => "018",
        "text/xml" | "application/xml" => "030",
        m if m.ends_with("+xml") => "030",
        "image/png" => "019",
        "image/jpeg" => match ext.as_str() {
            "jpeg" => "010",
            "jpe" => "009",
            _ => "011",
        },
        "image/tiff" => {
            if ext == "tif" {
                "023"
            } else {
                "024"
            }
        }
        "image/bmp" => "001",
        "text/csv" => "002",
        "text/html" => "008",
        "text/plain" => "045",
        "application/rtf" | "text/rtf" => "022",
        "message/rfc822" => "006",
        "application/vnd.oasis.opendocument.text" => "015",
        "application/vnd.oasis.opendocument.spreadsheet" => "014",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "035",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "036",
        _ => "100",
    };
    let version = match code {
        "018" => pdf_version(data),
        "030" => xml_version(data),
        _ => None,
    };
    FileFormat {
        code,
        other_name: (code == "100").then(|| if media.is_empty() { "unbekannt".to_owned() } else { media }),
        version: version.unwrap_or_else(|| "unbekannt".to_owned()),
    }
}

/// `%PDF-1.7` → `1.7`.
fn pdf_version(data: &[u8]) -> Option<String> {
    let rest = data.strip_prefix(b"%PDF-")?;
    let v: Vec<u8> = rest.iter().copied().take_while(|b| b.is_ascii_digit() || *b == b'.').collect();
    (!v.is_empty()).then(|| String::from_utf8_lossy(&v).into_owned())
}

/// The XML declaration's version; a document without a declaration is XML 1.0.
fn xml_version(data: &[u8]) -> Option<String> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let Some(decl) = data.strip_prefix(b"<?xml") else {
        return Some("1.0".to_owned());
    };
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let after = decl.split_once("version")?.1.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = after[1..].split(quote).next()?;
    Some(value.to_owned())
}

/// `AllgemeineRueckmeldung` (list version 1.1): the success codes and what the codes of the
/// direction Fachverfahren → DMS mean, for a rejection reason an operator can act on.
pub(crate) const RUECKMELDUNG_ERFOLG: &str = "0000000";
/// The DMS has processed this message before: a retried delivery that had already arrived.
pub(crate) const RUECKMELDUNG_BEREITS_VERARBEITET: &str = "0000009";

/// The general codes for a condition that passes: DMS not available or timed out (0000001),
/// connection lost (0000002), transmission error (0000015), database not accessible (0000019).
pub(crate) fn is_transient(code: &str) -> bool {
    matches!(code, "0000001" | "0000002" | "0000015" | "0000019")
}

/// What a general code means, for the rejection reason.
pub(crate) fn allgemeine_rueckmeldung(code: &str) -> Option<&'static str> {
    Some(match code {
        "0000000" => "Ausführung wurde erfolgreich beendet",
        "0000001" => "DMS nicht verfügbar oder Time-out",
        "0000002" => "Verbindungsabbruch",
        "0000003" => "Kennung dem DMS nicht bekannt",
        "0000004" => "dem Benutzer bzw. der Rolle fehlen die erforderlichen Rechte",
        "0000005" => "ID des Fachverfahrens unbekannt",
        "0000006" => "ID der Verwaltung unbekannt",
        "0000007" => "DMS-Session-ID ungültig bzw. nicht bekannt",
        "0000008" => "XML-Struktur entspricht nicht dem Schema",
        "0000009" => "Nachricht bereits verarbeitet",
        "0000010" => "Stapellänge kleiner oder gleich 0",
        "0000011" => "Stapellänge größer als 1 in der Dialogverarbeitung",
        "0000012" => "Stapellänge kleiner als 1 in der Stapelverarbeitung",
        "0000013" => "Stapellänge stimmt nicht mit der Anzahl der Objekte überein",
        "0000014" => "Stapel syntaktisch nicht korrekt",
        "0000015" => "Übertragungsfehler",
        "0000016" => "Verzeichnis ungültig",
        "0000017" => "URL ungültig",
        "0000018" => "Datei nicht gefunden",
        "0000019" => "Datenbanktabelle nicht zugreifbar",
        "0000499" => "unbekannter Fehler",
        _ => return None,
    })
}

/// `0605.SpezifischeFehlermeldung` (list version 1.0).
pub(crate) fn spezifische_fehlermeldung_0605(code: &str) -> Option<&'static str> {
    Some(match code {
        "0605001" => "ID des Containers im DMS unbekannt/ungültig",
        "0605002" => "Verzeichnis ungültig",
        "0605003" => "URL ungültig",
        "0605004" => "Datei kann nicht gefunden werden",
        "0605005" => "Datei kann im DMS nicht abgelegt werden",
        "0605006" => "Name eines Metadatums enthält ungültige Zeichen",
        "0605007" => "Wert eines Metadatums enthält ungültige Zeichen",
        "0605008" => "Beschreibung eines Metadatums enthält ungültige Zeichen",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_media_type_extension_and_header() {
        let pdf = file_format("application/pdf", "a.pdf", b"%PDF-1.7\n%...");
        assert_eq!((pdf.code, pdf.version.as_str(), pdf.other_name), ("018", "1.7", None));
        let xml = file_format("text/xml; charset=utf-8", "m.xml", b"<?xml version='1.1' encoding='UTF-8'?><a/>");
        assert_eq!((xml.code, xml.version.as_str()), ("030", "1.1"));
        assert_eq!(file_format("application/xml", "m", b"<a/>").version, "1.0");
        assert_eq!(file_format("image/jpeg", "scan.JPEG", b"").code, "010");
        assert_eq!(file_format("image/jpeg", "scan.jpg", b"").code, "011");
        let other = file_format("application/x-foo", "f.bin", b"");
        assert_eq!(
            (other.code, other.other_name.as_deref(), other.version.as_str()),
            ("100", Some("application/x-foo"), "unbekannt")
        );
        assert_eq!(file_format("application/pdf", "a.pdf", b"not a pdf").version, "unbekannt");
    }

    #[test]
    fn confidentiality_maps_to_ascending_vsa_levels() {
        assert_eq!(vertraulichkeitsstufe(Confidentiality::Normal), "003");
        assert_eq!(vertraulichkeitsstufe(Confidentiality::High), "002");
        assert_eq!(vertraulichkeitsstufe(Confidentiality::Secret), "005");
    }
}
