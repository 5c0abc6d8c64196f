//! Persons in XÖV messages: partial dates, name normalisation and the citizen fingerprint.
//!
//! **Name normalisation** (the normalisation is documented in `docs/src/messages/catalog.md`): names follow
//! DIN 91379, so they may contain any Latin letter with diacritics (`ß`, `Ø`, `ł`, combining
//! accents). To compare names across messages we fold them: Unicode NFKD decomposition,
//! combining marks removed, the letters that do not decompose mapped to their usual
//! transliteration (`ß`→`ss`, `ø`→`o`, `ł`→`l`, `đ`→`d`, `æ`→`ae`, `œ`→`oe`, `þ`→`th`,
//! `ı`→`i`), lower-cased, and every run of spaces, hyphens and apostrophes made one space.
//! The fold is only used for matching; the file keeps the names exactly as sent.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::xml::Element;

/// Folds a name for comparison (see the module docs).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_space = false;
    for c in name.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        let mapped: &str = match c {
            'ß' | 'ẞ' => "ss",
            'ø' | 'Ø' => "o",
            'ł' | 'Ł' => "l",
            'đ' | 'Đ' => "d",
            'æ' | 'Æ' => "ae",
            'œ' | 'Œ' => "oe",
            'þ' | 'Þ' => "th",
            'ı' => "i",
            c if c.is_whitespace() || matches!(c, '-' | '\'' | '‐' | '’' | '`') => {
                pending_space = !out.is_empty();
                continue;
            }
            _ => {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                out.extend(c.to_lowercase());
                continue;
            }
        };
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push_str(mapped);
    }
    out
}

/// The citizen fingerprint: SHA-256 (hex) of the folded family name, given names, birth date
/// and birth place. It is a weak identifier: the store never merges two citizens on it alone.
pub fn fingerprint(
    family_name: &str,
    given_names: &str,
    birth_date: Option<&str>,
    birth_place: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"efile-bridge fingerprint v1\0");
    for part in [normalize_name(family_name), normalize_name(given_names)] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(birth_date.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(normalize_name(birth_place.unwrap_or("")).as_bytes());
    hex::encode(h.finalize())
}

/// Reads a date that may be partly unknown (`teilbekanntesDatum` and friends) as
/// `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
///
/// Accepts the element's own text in any of those forms (also `xs:date` with a time zone),
/// or child elements `jahr`, `monat`, `tag` / `jahrMonat` / `jahrMonatTag` / `datum` at any
/// depth. Returns `None` when nothing usable is there (e.g. `nichtVorhanden`).
pub fn partial_date(el: Element<'_, '_>) -> Option<String> {
    if let Some(d) = date_text(el.text()) {
        return Some(d);
    }
    for child in el.children() {
        match child.name() {
            "jahrMonatTag" | "datum" | "jahrMonat" | "jahr" | "tagesdatum" | "vollstaendig" => {
                if let Some(d) = date_text(child.text()) {
                    return Some(d);
                }
            }
            _ => {}
        }
        if let Some(d) = partial_date(child) {
            return Some(d);
        }
    }
    None
}

fn date_text(t: &str) -> Option<String> {
    let t = t.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let core = t.get(..10).filter(|c| c.len() == 10 && c.as_bytes()[4] == b'-' && c.as_bytes()[7] == b'-');
    if let Some(c) = core
        && digits(&c[..4])
        && digits(&c[5..7])
        && digits(&c[8..10])
    {
        return Some(c.to_owned());
    }
    let ym = t.get(..7).filter(|c| c.len() == 7 && c.as_bytes()[4] == b'-');
    if let Some(c) = ym
        && digits(&c[..4])
        && digits(&c[5..7])
    {
        return Some(c.to_owned());
    }
    (t.len() >= 4 && digits(&t[..4]) && t.get(4..5).is_none_or(|r| !r.bytes().all(|b| b.is_ascii_digit())))
        .then(|| t[..4].to_owned())
}

/// The citizen a person's names, birth and (optional) idNr element name: the idNr if valid,
/// and the fingerprint. Every adapter builds citizens with this, so that the same person gets
/// the same identifiers from any standard.
pub fn citizen(
    family: &str,
    given: &str,
    birth_date: Option<String>,
    place: Option<&str>,
    id_nr: Option<Element<'_, '_>>,
) -> Result<crate::model::CitizenRef, crate::model::MappingError> {
    use crate::model::{CitizenRef, Identifier, IdentifierKind};
    let mut identifiers = Vec::new();
    if let Some(id) = id_nr {
        if id.text().len() != 11 || !id.text().bytes().all(|b| b.is_ascii_digit()) {
            // The value is personal data and stays out of the error, which operators see.
            return Err(id.invalid("idNr must be eleven digits"));
        }
        identifiers.push(Identifier { kind: IdentifierKind::IdNr, value: id.text().to_owned() });
    }
    identifiers.push(Identifier {
        kind: IdentifierKind::Fingerprint,
        value: fingerprint(family, given, birth_date.as_deref(), place),
    });
    let display_name = if given.is_empty() { family.to_owned() } else { format!("{family}, {given}") };
    Ok(CitizenRef {
        identifiers,
        display_name,
        family_name: family.to_owned(),
        given_names: given.to_owned(),
        birth_date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn din_91379_names_fold() {
        assert_eq!(normalize_name("Müller-Lüdenscheidt"), "muller ludenscheidt");
        assert_eq!(normalize_name("Straße"), "strasse");
        assert_eq!(normalize_name("Søren  Łukasz"), "soren lukasz");
        // "é" written as e + combining acute folds like the precomposed one.
        assert_eq!(normalize_name("Ren\u{0065}\u{0301}e"), normalize_name("Renée"));
        assert_eq!(normalize_name("  O'Brien "), "o brien");
    }

    #[test]
    fn fingerprint_ignores_spelling_variants_but_not_dates() {
        let a = fingerprint("Müller", "Anna", Some("1980-05-17"), Some("München"));
        assert_eq!(a, fingerprint("MUELLER".replace("UE", "Ü").as_str(), "anna", Some("1980-05-17"), Some("Munchen")));
        assert_ne!(a, fingerprint("Müller", "Anna", Some("1980-05-18"), Some("München")));
    }

    #[test]
    fn partial_dates() {
        for (xml, want) in [
            ("<d>1980-05-17</d>", Some("1980-05-17")),
            ("<d>1980-05-17+01:00</d>", Some("1980-05-17")),
            ("<d><teilbekannt><jahrMonat>1980-05</jahrMonat></teilbekannt></d>", Some("1980-05")),
            ("<d><teilbekannt><jahr>1980</jahr></teilbekannt></d>", Some("1980")),
            ("<d><nichtVorhanden>true</nichtVorhanden></d>", None),
        ] {
            let doc = crate::xml::Document::parse(xml).expect("xml");
            assert_eq!(partial_date(doc.root()).as_deref(), want, "{xml}");
        }
    }
}
