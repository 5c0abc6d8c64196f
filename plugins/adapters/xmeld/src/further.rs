//! Further Rückmeldungen and Fortschreibungen:
//!
//! - `rueckmeldung.anmeldungausland.0202` (tenant = reader, the last inland municipality): a
//!   former resident came back from abroad and registered elsewhere. One record per
//!   `betroffener`; it closes the old file (BMG §13 clock from the notice).
//! - `rueckmeldung.statuswechsel.0206` (tenant = reader): the main residence moved to another
//!   municipality without a move (a secondary dwelling became the main one). No new address;
//!   the tenant's dwelling stays, so the clock stays open.
//! - `anmeldung.datenbereitstellung.0301` (tenant = reader): the old municipality's answer to
//!   the tenant's data request at a move-in, one record per person asked about; only answer
//!   01 carries data, the others are recorded with the person as asked for.
//! - `fortschreibung.wohnungsbild.0088`/`.0089` (tenant = author): a change of the person's
//!   dwellings (main and secondary), with the dwelling given up.

use efile_bridge_sdk::person::partial_date;
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

use crate::dokument::citizen;
use crate::{address_line, ereignis, meldeakte_record, person};

pub(crate) fn anmeldung_ausland(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let rule = retention::rule(config, "wegzug")?;
    let mut out = Vec::new();
    let betroffene: Vec<_> = root.children_named("betroffener").collect();
    if betroffene.is_empty() {
        return Err(root.missing("betroffener"));
    }
    for (n, b) in betroffene.into_iter().enumerate() {
        let p = person(b)?;
        let (zeichen, date) = ereignis(b, info);
        let mut r = meldeakte_record(info, config, p.citizen());
        r.document_type = DocumentType::Other("rueckmeldung-ausland".into());
        r.case_type = "wegzug".into();
        r.case_ref = zeichen.clone();
        r.title = "Wiederzuzug aus dem Ausland an einen anderen Ort (Rückmeldung)".into();
        r.retention = rule.apply(date.as_deref());
        r.event_date = date;
        r.metadata.push(("person".to_owned(), (n + 1).to_string()));
        if let Some(z) = zeichen {
            r.metadata.push(("ereignis.zeichen".to_owned(), z));
        }
        if let Some(a) = b.find("letzte.inlandswohnung/anschrift") {
            r.metadata.push(("letzte.inlandswohnung".to_owned(), address_line(a)));
        }
        if let Some(d) = b.find("letzte.inlandswohnung/datumLetzterWegzugAusland").and_then(partial_date) {
            r.metadata.push(("wegzug.ausland".to_owned(), d));
        }
        out.push(r);
    }
    Ok(out)
}

pub(crate) fn statuswechsel(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let rule = retention::rule(config, "meldung")?;
    let mut out = Vec::new();
    for verband in root.children_named("umzugsverband") {
        for b in verband.children_named("betroffener") {
            let p = person(b)?;
            let (zeichen, date) = ereignis(b, info);
            let mut r = meldeakte_record(info, config, p.citizen());
            r.document_type = DocumentType::Ummeldung;
            r.case_type = "statuswechsel".into();
            r.case_ref = zeichen;
            r.title = "Wohnungsstatuswechsel: Hauptwohnung jetzt an einem anderen Ort".into();
            let changed = b
                .find("zuzugsperson")
                .into_iter()
                .flat_map(|z| z.children_named("WOHNUNG"))
                .find_map(|w| w.find("datumDesWohnungsstatuswechsels").and_then(partial_date));
            r.event_date = changed.or(date);
            r.retention = rule.apply(None);
            if let Some(a) = b.find("identifikation.betroffener/wohnung.autor/anschrift") {
                r.metadata.push(("hauptwohnung.neu".to_owned(), address_line(a)));
            }
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(root.missing("umzugsverband/betroffener"));
    }
    Ok(out)
}

fn antwort(code: &str) -> &'static str {
    match code {
        "01" => "Person gefunden, Daten übermittelt",
        "02" => "Person nicht gefunden",
        "03" => "Person nicht eindeutig",
        "04" => "Person gefunden, aber verzogen",
        "07" => "Person verstorben",
        "09" => "nur Nebenwohnung",
        _ => "Antwort",
    }
}

pub(crate) fn datenbereitstellung(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let rule = retention::rule(config, "meldung")?;
    let mut out = Vec::new();
    for (n, p) in root.children_named("zuziehende.person").enumerate() {
        let status = p.require_text("antwortstatus/code")?;
        // Data only with answer 01; otherwise the person as the tenant asked for them.
        let source = p.find("personendaten").unwrap_or(p.require("anfrageprofil")?);
        let citizen = crate::citizen_of(source, "geburt")?;
        let mut r = meldeakte_record(info, config, citizen);
        r.document_type = DocumentType::Other("datenbereitstellung".into());
        r.case_type = "zuzug".into();
        r.case_ref = root.text_at("ursprungsnachricht/nachrichtenUUID").map(str::to_owned);
        r.title = format!("Datenbereitstellung zur Anmeldung: {}", antwort(status));
        r.event_date = info.created_at.get(..10).map(str::to_owned);
        r.retention = rule.apply(None);
        r.metadata.push(("person".to_owned(), (n + 1).to_string()));
        r.metadata.push(("antwortstatus".to_owned(), status.to_owned()));
        if let Some(w) = p.find("wegzugsanschrift") {
            r.metadata.push(("wegzugsanschrift".to_owned(), address_line(w)));
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(root.missing("zuziehende.person"));
    }
    Ok(out)
}

pub(crate) fn wohnungsbild(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let citizen = citizen(root.require("identifikation.betroffenePerson")?)?;
    let (zeichen, date) = ereignis(root, info);
    let anlass = root.require_text("anlass/code")?;
    let mut r = meldeakte_record(info, config, citizen);
    r.document_type = DocumentType::Ummeldung;
    r.case_type = "wohnungsbild".into();
    r.case_ref = zeichen.clone();
    r.title = match anlass {
        "3" => "Umzug innerhalb der Gemeinde (Wohnungsbild)".to_owned(),
        "9" => "Aufgabe einer Nebenwohnung".to_owned(),
        other => format!("Wohnungsbild fortgeschrieben (Anlass {other})"),
    };
    r.event_date = date;
    r.retention = retention::rule(config, "meldung")?.apply(None);
    r.metadata.push(("anlass".to_owned(), anlass.to_owned()));
    if let Some(z) = zeichen {
        r.metadata.push(("ereignis.zeichen".to_owned(), z));
    }
    for (key, element) in [
        ("bezogene.wohnung", "bezogeneWohnung"),
        ("aufgegebene.wohnung", "aufgegebeneWohnung"),
        ("geaenderte.wohnung", "geaenderteWohnung"),
    ] {
        if let Some(a) = root.find(element).and_then(|w| w.find("anschrift")) {
            r.metadata.push((key.to_owned(), address_line(a)));
        }
    }
    for (n, w) in root.children_named("aktuelleWohnung").enumerate() {
        if let Some(a) = w.find("anschrift") {
            let status = w.text_at("statusderwohnung/code").unwrap_or("?");
            r.metadata.push((format!("wohnung.{}", n + 1), format!("{} (Status {status})", address_line(a))));
        }
    }
    if root.find("aufgegebeneWohnung/anschrift/bedingterSperrvermerk").is_some()
        || root
            .children_named("aktuelleWohnung")
            .any(|w| w.find("anschrift/anschrift.inland/bedingterSperrvermerk").is_some())
    {
        r.confidentiality = Confidentiality::High;
    }
    Ok(vec![r])
}
