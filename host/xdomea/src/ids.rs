//! Identifikation UUIDs derived from our stable ids.
//!
//! A delivery is retried until the e-file system confirms it, so every UUID in a message must
//! be the same on every attempt: the receiver recognises a repeated `ProzessID` (xdomea
//! `AllgemeineRueckmeldung` 0000009, "bereits verarbeitet") and a known Akte or Vorgang by its
//! `Identifikation`. A random UUID would turn each retry into a new object.
//!
//! The UUIDs are RFC 9562 version 8 ("custom") UUIDs made from the first 16 bytes of a SHA-256
//! over a fixed domain label and length-prefixed parts, the name-based construction RFC 9562
//! shows in its appendix for SHA-256. Length prefixes keep `("ab", "c")` and `("a", "bc")` apart.

use sha2::{Digest, Sha256};

/// Label that keeps these UUIDs apart from any other SHA-256-derived id we may make later.
const DOMAIN: &[u8] = b"efile-bridge/xdomea/3.1.0";

/// The UUID for `parts`, hyphenated and lowercase.
pub(crate) fn derive(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid().hyphenated().to_string()
}

/// Every UUID one export needs, each from the stable ids that make it unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportIds {
    /// `ProzessID` of the message: one per document version, so a retry is recognisable.
    pub process: String,
    /// The Akte: one per citizen and file-plan code (the store's `files`).
    pub akte: String,
    /// The Vorgang: one per Akte, case type and case reference (the store's `cases`).
    pub vorgang: String,
    /// The Dokument: one per document; its versions are `Version/Nummer`.
    pub dokument: String,
    /// File-name prefix of the original message in this version.
    pub original_file: String,
    /// Per attachment of this version: the Anlage and its file-name prefix.
    pub attachments: Vec<(String, String)>,
}

impl ExportIds {
    pub(crate) fn new(
        citizen_id: &str,
        file_plan_code: &str,
        case_type: &str,
        case_ref: Option<&str>,
        document_id: &str,
        version: u32,
        attachments: usize,
    ) -> Self {
        let v = version.to_string();
        // A missing case reference and an empty one are different cases; the marker keeps
        // them from sharing a Vorgang.
        let case_ref = case_ref.map_or_else(|| "none".to_owned(), |r| format!("ref:{r}"));
        Self {
            process: derive(&["process", document_id, &v]),
            akte: derive(&["akte", citizen_id, file_plan_code]),
            vorgang: derive(&["vorgang", citizen_id, file_plan_code, case_type, &case_ref]),
            dokument: derive(&["dokument", document_id]),
            original_file: derive(&["file", document_id, &v, "original"]),
            attachments: (0..attachments)
                .map(|i| {
                    let i = i.to_string();
                    (derive(&["anlage", document_id, &v, &i]), derive(&["file", document_id, &v, "attachment", &i]))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uuids_are_stable_version_8_and_unambiguous() {
        let a = derive(&["ab", "c"]);
        assert_eq!(a, derive(&["ab", "c"]));
        assert_ne!(a, derive(&["a", "bc"]));
        let parsed = uuid::Uuid::parse_str(&a).expect("uuid");
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a, a.to_lowercase());
    }

    #[test]
    fn each_object_has_its_own_uuid_and_versions_share_the_document() {
        let v1 = ExportIds::new("c1", "12.20.10", "wegzug", Some("ANM-1"), "d1", 1, 2);
        let v2 = ExportIds::new("c1", "12.20.10", "wegzug", Some("ANM-1"), "d1", 2, 2);
        let mut all = vec![&v1.process, &v1.akte, &v1.vorgang, &v1.dokument, &v1.original_file];
        all.extend(v1.attachments.iter().flat_map(|(a, f)| [a, f]));
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "{all:?}");
        assert_eq!(v1.dokument, v2.dokument);
        assert_eq!(v1.akte, v2.akte);
        assert_ne!(v1.process, v2.process);
        assert_ne!(v1.original_file, v2.original_file);
        // Another file of the same citizen is another Akte; no case reference is another case.
        assert_ne!(v1.akte, ExportIds::new("c1", "12.30.10", "wegzug", Some("ANM-1"), "d1", 1, 0).akte);
        assert_ne!(v1.vorgang, ExportIds::new("c1", "12.20.10", "wegzug", None, "d1", 1, 0).vorgang);
        assert_ne!(
            ExportIds::new("c1", "12.20.10", "wegzug", Some(""), "d1", 1, 0).vorgang,
            ExportIds::new("c1", "12.20.10", "wegzug", None, "d1", 1, 0).vorgang
        );
    }
}
