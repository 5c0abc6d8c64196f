//! Passport and ID documents (`fortschreibung.dokument.0006`, `.0063`, `.0064`, `.0065`) and
//! passport refusals (`fortschreibung.passversagung.0105`, `.0106`).
//!
//! These are Fortschreibungen the tenant's own registry sends (the tenant is the author). They
//! carry no idNr: the citizen is found by the name/birth fingerprint. Each message becomes one
//! record. Documents of one passport or card share a case (`passart:seriennummer`), so its
//! entry, corrections and deletion line up; the retention clock runs from the document's
//! expiry (PassG §21(4), BMG §14(1)), never from a deletion message, which is not sent for
//! expired documents. The blocking password and sum (`sperrkennwort`, `sperrsumme`) are never
//! copied into a record. Refusals are `secret`.

use efile_bridge_sdk::person::{fingerprint, partial_date};
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

use crate::setting;

/// Name, birth and fingerprint of `identifikation.fortschreibung`-style person elements.
pub(crate) fn citizen(person: Element<'_, '_>) -> Result<CitizenRef, MappingError> {
    let family = person.require_text("name/familienname.unstrukturiert/nachname/name")?;
    // Mandatory in the XSD even when there are none (`nichtVorhanden`), as is `geburt`: a
    // message without them is broken, not just sparse.
    person.require("name/vornamen/vornamen")?;
    let given = person.text_at("name/vornamen/vornamen/name").unwrap_or("");
    let birth = person.require("geburt")?.find("geburtsdatum").and_then(partial_date);
    let place = person.text_at("geburt/geburtsort");
    let display_name = if given.is_empty() { family.to_owned() } else { format!("{family}, {given}") };
    Ok(CitizenRef {
        identifiers: vec![Identifier {
            kind: IdentifierKind::Fingerprint,
            value: fingerprint(family, given, birth.as_deref(), place),
        }],
        display_name,
        family_name: family.to_owned(),
        given_names: given.to_owned(),
        birth_date: birth,
    })
}

fn passart_name(code: &str) -> &'static str {
    match code {
        "01" => "Reisepass",
        "02" => "Ersatz-Personalausweis",
        "03" => "Kinderreisepass",
        "04" => "Amtlicher Pass",
        "05" => "Reiseausweis",
        "06" => "Sonstiges Pass- oder Ausweispapier",
        "07" => "Ausländischer Pass",
        "08" => "Reiseausweis für Staatenlose",
        "09" => "Personalausweis",
        "10" => "Vorläufiger Personalausweis",
        "11" => "Vorläufiger Reisepass",
        "12" => "EU-Identitätsausweis",
        "13" => "Standardreisedokument",
        "14" => "EU-Pass für Nichtstaatsangehörige",
        "15" => "eID-Karte",
        _ => "Pass- oder Ausweisdokument",
    }
}

/// Identity cards and eID cards fall under BMG §14, passports under PassG §21.
fn is_id_card(code: &str) -> bool {
    matches!(code, "02" | "09" | "10" | "12" | "15")
}

pub(crate) fn dokument(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let (element, action) = match info.message_type.as_str() {
        "0006" => ("ausweisdokument", "eingetragen"),
        "0063" => ("kinderreisepass", "verlängert"),
        "0064" => ("personaldokument.neu", "berichtigt"),
        _ => ("personaldokument", "gelöscht"),
    };
    let d = root.require(element)?;
    let person = root.require("betroffener")?;
    let citizen = citizen(person)?;
    let code = d.require_text("passart/code")?;
    let kind = passart_name(code);
    // 0064 may correct the serial number itself: the case is the document as it was.
    let case_doc = if info.message_type == "0064" { root.require("personaldokument.alt")? } else { d };
    let serial = case_doc.text_at("seriennummer");
    let expiry = d.text_at("gueltigkeitsdauer").map(str::to_owned);
    let issued = d.text_at("ausstellungsdatum").map(str::to_owned);
    let rule = retention::rule(config, if is_id_card(code) { "personalausweis" } else { "reisepass" })?;
    let mut metadata = vec![
        ("nachricht".to_owned(), format!("{} ({})", info.message_name, info.message_type)),
        ("passart".to_owned(), format!("{code} {kind}")),
        ("behoerde".to_owned(), d.require_text("behoerde")?.to_owned()),
    ];
    if let Some(s) = d.text_at("seriennummer") {
        metadata.push(("seriennummer".to_owned(), s.to_owned()));
    }
    if let Some(i) = &issued {
        metadata.push(("ausgestellt".to_owned(), i.clone()));
    }
    if let Some(e) = &expiry {
        metadata.push(("gueltig.bis".to_owned(), e.clone()));
    }
    if info.message_type == "0064" {
        for (key, field) in [("vorher.seriennummer", "seriennummer"), ("vorher.gueltig.bis", "gueltigkeitsdauer")] {
            if let Some(v) = case_doc.text_at(field) {
                metadata.push((key.to_owned(), v.to_owned()));
            }
        }
    }
    Ok(vec![EfileRecord {
        file_subject: format!("{} {}", setting(config, "aktenbetreff.ausweiswesen"), citizen.display_name),
        citizen,
        file_plan_code: setting(config, "aktenplan.ausweiswesen"),
        case_type: "ausweiswesen".into(),
        case_ref: Some(format!("{code}:{}", serial.unwrap_or(&info.message_uuid))),
        document_type: if is_id_card(code) { DocumentType::Ausweisdokument } else { DocumentType::Reisepass },
        title: format!("{kind} {action}"),
        event_date: issued.or_else(|| info.created_at.get(..10).map(str::to_owned)),
        retention: rule.apply(expiry.as_deref()),
        confidentiality: Confidentiality::Normal,
        metadata,
        attachments: Vec::new(),
    }])
}

fn versagung_status(code: &str) -> &'static str {
    match code {
        "1" => "Vorliegen von Passversagungsgründen",
        "2" => "Pass versagt",
        "3" => "Pass entzogen",
        "4" => "Anordnung nach § 6 Abs. 7 PAuswG",
        "5" => "Personalausweis versagt",
        "6" => "Personalausweis entzogen",
        "7" => "Vorläufiger Personalausweis versagt",
        "8" => "Vorläufiger Personalausweis entzogen",
        _ => "unbekannter Status",
    }
}

pub(crate) fn passversagung(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let citizen = citizen(root.require("identifikation.betroffenePerson")?)?;
    let zeichen = root.text_at("identifikation.ereignis/ereignis.zeichen");
    let zeitpunkt = root.text_at("identifikation.ereignis/ereignis.zeitpunkt");
    let mut metadata = vec![("nachricht".to_owned(), format!("{} ({})", info.message_name, info.message_type))];
    if let Some(z) = zeichen {
        metadata.push(("ereignis.zeichen".to_owned(), z.to_owned()));
    }
    let mut decided = None;
    let mut statuses = Vec::new();
    for (n, v) in root.children_named("passversagung").enumerate() {
        let status = v.require_text("passversagung/status/code")?;
        statuses.push(versagung_status(status));
        let p = format!("versagung.{}", n + 1);
        metadata.push((format!("{p}.status"), format!("{status} {}", versagung_status(status))));
        if let Some(d) = v.text_at("nachweisdaten/datum") {
            decided.get_or_insert_with(|| d.to_owned());
            metadata.push((format!("{p}.datum"), d.to_owned()));
        }
        let reference = v
            .find("nachweisdaten/behoerdeoderaktenzeichen/behoerdeaktenzeichen.getrennt")
            .map(|g| format!("{} {}", g.text_at("behoerde").unwrap_or(""), g.text_at("aktenzeichen").unwrap_or("")))
            .or_else(|| {
                v.text_at(
                    "nachweisdaten/behoerdeoderaktenzeichen/behoerdeaktenzeichen.konkateniert/behoerdeaktenzeichen",
                )
                .map(str::to_owned)
            });
        if let Some(r) = reference {
            metadata.push((format!("{p}.aktenzeichen"), r.trim().to_owned()));
        }
    }
    if let Some(u) = root.text_at("ursprungsnachricht/nachrichtenUUID") {
        metadata.push(("ursprungsnachricht".to_owned(), u.to_owned()));
    }
    let title = match (info.message_type.as_str(), statuses.first()) {
        ("0106", _) => "Hinweis auf Passversagung".to_owned(),
        (_, None) => "Passversagungsdaten aufgehoben".to_owned(),
        (_, Some(first)) if statuses.len() == 1 => (*first).to_owned(),
        (_, Some(first)) => format!("{first} (und {} weitere)", statuses.len() - 1),
    };
    let event_date = decided.or_else(|| zeitpunkt.and_then(|z| z.get(..10)).map(str::to_owned));
    let rule = retention::rule(config, "passversagung")?;
    Ok(vec![EfileRecord {
        file_subject: format!("{} {}", setting(config, "aktenbetreff.ausweiswesen"), citizen.display_name),
        citizen,
        file_plan_code: setting(config, "aktenplan.ausweiswesen"),
        case_type: "passversagung".into(),
        case_ref: zeichen.map(str::to_owned),
        document_type: DocumentType::Passversagung,
        title,
        retention: rule.apply(event_date.as_deref().or(info.created_at.get(..10))),
        event_date,
        confidentiality: Confidentiality::Secret,
        metadata,
        attachments: Vec::new(),
    }])
}
