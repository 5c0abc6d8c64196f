//! `fortschreibung.anschrift.0090`: the tenant's registry (the author) records a new address
//! within the municipality (Ummeldung, Anlass 3), corrects an address (Anlass 17), or enters
//! or deletes a conditional block (bedingter Sperrvermerk, BMG §52). One person per message, no
//! idNr, no move date: the citizen is found by fingerprint and the event date is when the
//! change was recorded. The record's retention clock stays open (BMG §13: it starts with the
//! move-out or death).

use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

use crate::dokument::citizen;

/// `Straße Hausnummer, PLZ Ort (AGS)` of an `anschrift.alt`/`anschrift.neu`.
fn address(a: Element<'_, '_>) -> Result<String, MappingError> {
    crate::anmeldung::address(a.require("anschrift.inland")?)
}

fn sperrvermerk(a: Element<'_, '_>) -> bool {
    a.text_at("bedingterSperrvermerk").is_some_and(|v| v == "true" || v == "1")
}

pub(crate) fn anschrift(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let citizen = citizen(root.require("identifikation.betroffenePerson")?)?;
    let alt = root.require("anschrift.alt")?;
    let neu = root.require("anschrift.neu")?;
    let anlass = root.require_text("anlass/code")?;
    let zeichen = root.require_text("identifikation.ereignis/ereignis.zeichen")?;
    let recorded = root.require_text("identifikation.ereignis/ereignis.zeitpunkt")?;
    let (was, is) = (sperrvermerk(alt), sperrvermerk(neu));
    let mut title = match anlass {
        "3" => "Umzug innerhalb der Gemeinde".to_owned(),
        "17" => "Anschrift berichtigt".to_owned(),
        other => format!("Anschrift fortgeschrieben (Anlass {other})"),
    };
    match (was, is) {
        (false, true) => title.push_str("; bedingter Sperrvermerk eingetragen"),
        (true, false) => title.push_str("; bedingter Sperrvermerk gelöscht"),
        _ => {}
    }
    let mut record = crate::meldeakte_record(info, config, citizen);
    record.metadata.extend([
        ("ereignis.zeichen".to_owned(), zeichen.to_owned()),
        ("anlass".to_owned(), anlass.to_owned()),
        ("anschrift.alt".to_owned(), address(alt)?),
        ("anschrift.neu".to_owned(), address(neu)?),
    ]);
    if is {
        record.metadata.push(("bedingter.sperrvermerk".to_owned(), "BMG §52".to_owned()));
        record.confidentiality = Confidentiality::High;
    }
    record.case_type = "ummeldung".into();
    record.case_ref = Some(zeichen.to_owned());
    record.document_type = DocumentType::Ummeldung;
    record.title = title;
    record.event_date = recorded.get(..10).map(str::to_owned);
    record.retention = retention::rule(config, "meldung")?.apply(None);
    Ok(vec![record])
}
