//! Events that change who a citizen is or how the file is handled, all Fortschreibungen of
//! the tenant's registry (the tenant is the author):
//!
//! - `fortschreibung.name.0091` (the new complete name set in `namen`) and `.0092` (explicit
//!   `vorher`/`nachher` pairs): a name change. The record names the citizen by the fingerprint
//!   of the name the file knows (the identification) *and* of the new name, so the file
//!   continues under the new name and later messages with the new name find it.
//! - `fortschreibung.tod.0040`: death. The file's retention clock starts (BMG §13: 5 years
//!   after the end of the year of death); the date may be missing (then the message date).
//! - `fortschreibung.auskunftssperre.0093`/`.0094`: the current set of information blocks
//!   (BMG §51); each message is read as the complete set, so none means all were lifted.
//!   A set block raises the record to `high`.

use efile_bridge_sdk::person::{fingerprint, partial_date};
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

use crate::dokument::citizen;

fn meldeakte(
    info: &MessageInfo,
    config: &dyn Config,
    citizen: CitizenRef,
    case_type: &str,
    case_ref: Option<String>,
) -> EfileRecord {
    let mut r = crate::meldeakte_record(info, config, citizen);
    r.case_type = case_type.into();
    r.case_ref = case_ref;
    r
}

pub(crate) fn name(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let person = root.require("identifikation.betroffenePerson")?;
    let old = citizen(person)?;
    let (new_family, new_given) = if info.message_type == "0091" {
        let namen = root.require("namen")?;
        let family = namen.require_text("familienname.unstrukturiert/nachname/name")?.to_owned();
        let given = match namen.find("vornamen/vornamen") {
            Some(v) => v.text_at("name").unwrap_or("").to_owned(),
            None => old.given_names.clone(),
        };
        (family, given)
    } else {
        let family = root
            .text_at("familienname.unstrukturiert/nachher/nachname/name")
            .map_or_else(|| old.family_name.clone(), str::to_owned);
        let given = match root.find("vornamen/nachher") {
            Some(v) => v.text_at("name").unwrap_or("").to_owned(),
            None => old.given_names.clone(),
        };
        (family, given)
    };
    let birth = person.find("geburt/geburtsdatum").and_then(partial_date);
    let place = person.text_at("geburt/geburtsort");
    let display_name = if new_given.is_empty() { new_family.clone() } else { format!("{new_family}, {new_given}") };
    let mut identifiers = old.identifiers.clone();
    identifiers.push(Identifier {
        kind: IdentifierKind::Fingerprint,
        value: fingerprint(&new_family, &new_given, birth.as_deref(), place),
    });
    let new =
        CitizenRef { identifiers, display_name, family_name: new_family, given_names: new_given, birth_date: birth };
    let (zeichen, date) = crate::ereignis(root, info);
    let mut record = meldeakte(info, config, new, "namensaenderung", zeichen.clone());
    record.title = format!("Namensänderung: {} → {}", old.display_name, record.citizen.display_name);
    record.document_type = DocumentType::Namensaenderung;
    record.retention = retention::rule(config, "meldung")?.apply(None);
    record.metadata.push(("name.vorher".to_owned(), old.display_name));
    if let Some(z) = zeichen {
        record.metadata.push(("ereignis.zeichen".to_owned(), z));
    }
    if let Some(a) = root.text_at("aenderungsart/code") {
        record.metadata.push(("aenderungsart".to_owned(), a.to_owned()));
    }
    record.event_date = date;
    Ok(vec![record])
}

pub(crate) fn tod(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let person = citizen(root.require("betroffener")?)?;
    let tod = root.require("tod")?;
    let died = tod.text_at("sterbetag").map(str::to_owned);
    let mut record = meldeakte(info, config, person, "sterbefall", None);
    record.document_type = DocumentType::Sterbefall;
    record.title = "Sterbefall".into();
    // Without a date of death the clock starts with the message, never later than it should.
    record.retention = retention::rule(config, "tod")?.apply(died.as_deref().or(info.created_at.get(..10)));
    record.event_date = died.clone().or_else(|| info.created_at.get(..10).map(str::to_owned));
    if let Some(d) = &died {
        record.metadata.push(("sterbetag".to_owned(), d.clone()));
    }
    if let Some(o) = tod.text_at("sterbeort") {
        record.metadata.push(("sterbeort".to_owned(), o.to_owned()));
    }
    if let Some(n) = root.find("nachweis.tod") {
        if let Some(d) = n.text_at("datum") {
            record.metadata.push(("nachweis.datum".to_owned(), d.to_owned()));
        }
        if let Some(d) = n.text_at("dokumentbeschreibung") {
            record.metadata.push(("nachweis.dokument".to_owned(), d.to_owned()));
        }
    }
    Ok(vec![record])
}

pub(crate) fn auskunftssperre(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let person = citizen(root.require("identifikation.betroffenePerson")?)?;
    let (zeichen, date) = crate::ereignis(root, info);
    let sperren: Vec<_> = root.children_named("auskunftssperre").collect();
    let mut record = meldeakte(info, config, person, "auskunftssperre", zeichen.clone());
    record.document_type = DocumentType::Auskunftssperre;
    record.title =
        if sperren.is_empty() { "Auskunftssperre aufgehoben".into() } else { "Auskunftssperre eingetragen".into() };
    record.confidentiality = if sperren.is_empty() { Confidentiality::Normal } else { Confidentiality::High };
    record.retention = retention::rule(config, "meldung")?.apply(None);
    record.event_date = date;
    if let Some(z) = zeichen {
        record.metadata.push(("ereignis.zeichen".to_owned(), z));
    }
    for (n, s) in sperren.iter().enumerate() {
        let grund = s.require_text("grund/code")?;
        record.metadata.push((format!("sperre.{}.grund", n + 1), grund.to_owned()));
        if let Some(f) = s.text_at("frist") {
            record.metadata.push((format!("sperre.{}.frist", n + 1), f.to_owned()));
        }
    }
    Ok(vec![record])
}
