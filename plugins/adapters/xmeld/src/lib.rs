//! The standard XMeld 25.11a adapter.
//!
//! Maps registration messages into records of the citizen's e-file:
//!
//! - `rueckmeldung.anmeldunginland.0201` (Rückmeldung Inland): the new municipality tells the
//!   old one that the people of one or more `umzugsverband`s have registered there. For the
//!   old municipality (the reader, our tenant) that is the move-out (Abmeldung/Wegzug) of every
//!   person in the message, so each `betroffener` becomes one `abmeldung` document in their file.
//! - `onlinedienste.anmeldung.meldeschein.1704` (online Anmeldung with the landlord's
//!   confirmation as attachment): see the `anmeldung` module;
//! - `fortschreibung.anschrift.0090` (Ummeldung, address correction, bedingter Sperrvermerk):
//!   see the `ummeldung` module;
//! - `rueckmeldung.anmeldungausland.0202`, `rueckmeldung.statuswechsel.0206`,
//!   `anmeldung.datenbereitstellung.0301`, `fortschreibung.wohnungsbild.0088`/`.0089`: see the
//!   `further` module;
//! - `fortschreibung.name.0091`/`.0092`, `fortschreibung.tod.0040`,
//!   `fortschreibung.auskunftssperre.0093`/`.0094`: see the `person_events` module;
//! - `fortschreibung.dokument.0006`/`.0063`/`.0064`/`.0065` and
//!   `fortschreibung.passversagung.0105`/`.0106`: see the `dokument` module.
//!
//! Config keys (all optional): see [`CONFIG_KEYS`].

mod anmeldung;
mod dokument;
mod further;
mod person_events;
mod ummeldung;

use efile_bridge_sdk::person::{self, fingerprint, partial_date};
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

/// The adapter.
pub struct XmeldAdapter;

const STANDARD: &str = "XMeld";
const VERSION: &str = "25.11a";

/// The message types mapped.
const HANDLED: &[&str] =
    &["0201", "1704", "0090", "0091", "0092", "0040", "0093", "0094", "0006", "0063", "0064", "0065", "0105", "0106"];

/// Config keys this adapter reads, with defaults.
pub const CONFIG_KEYS: &[(&str, &str, &str)] = &[
    ("aktenplan.meldewesen", "12.20.10", "file-plan code (Aktenplan-Kennzeichen) of the registration file"),
    ("aktenbetreff.meldewesen", "Meldeakte", "subject prefix of the registration file; the citizen's name is appended"),
    ("aktenplan.ausweiswesen", "12.30.10", "file-plan code of the passport and ID document file"),
    (
        "aktenbetreff.ausweiswesen",
        "Pass- und Ausweisakte",
        "subject prefix of that file; the citizen's name is appended",
    ),
    ("aufbewahrung.wegzug.jahre", "5", "years after the end of the move-out year a move-out record is kept (BMG §13)"),
    ("aufbewahrung.personalausweis.jahre", "5", "years after expiry an ID card record is kept (BMG §14 Abs. 1)"),
    ("aufbewahrung.reisepass.jahre", "5", "years after expiry a passport record is kept (PassG §21 Abs. 4)"),
    ("aufbewahrung.tod.jahre", "5", "years after the end of the year of death a death record is kept (BMG §13)"),
    ("aufbewahrung.passversagung.jahre", "5", "years after the end of the decision year a refusal is kept"),
];

/// The citizen a person element names: family and given names under `name/`, birth date
/// and place under `birth` (`geburt` or `geburtsangaben`), and the idNr if there is one.
pub(crate) fn citizen_of(p: Element<'_, '_>, birth: &str) -> Result<CitizenRef, MappingError> {
    let family = p.require_text("name/familienname.unstrukturiert/nachname/name")?;
    let given = p.text_at("name/vornamen/vornamen/name").unwrap_or("");
    let birth_date = p.find(&format!("{birth}/geburtsdatum")).and_then(partial_date);
    let place = p.text_at(&format!("{birth}/geburtsort"));
    person::citizen(family, given, birth_date, place, p.find("idNr"))
}

/// A record in the citizen's registration file (Meldeakte) with the message noted; the
/// caller sets what the event is.
pub(crate) fn meldeakte_record(info: &MessageInfo, config: &dyn Config, citizen: CitizenRef) -> EfileRecord {
    EfileRecord {
        file_subject: format!("{} {}", setting(config, "aktenbetreff.meldewesen"), citizen.display_name),
        citizen,
        file_plan_code: setting(config, "aktenplan.meldewesen"),
        case_type: String::new(),
        case_ref: None,
        document_type: DocumentType::Other(String::new()),
        title: String::new(),
        event_date: None,
        retention: Retention { deadline: None, rule: String::new() },
        confidentiality: Confidentiality::Normal,
        metadata: vec![("nachricht".to_owned(), format!("{} ({})", info.message_name, info.message_type))],
        attachments: Vec::new(),
    }
}

/// `ereignis.zeichen` and the day of `ereignis.zeitpunkt` of an element with an
/// `identifikation.ereignis`; without one, the day the message was created.
pub(crate) fn ereignis(e: Element<'_, '_>, info: &MessageInfo) -> (Option<String>, Option<String>) {
    let zeichen = e.text_at("identifikation.ereignis/ereignis.zeichen").map(str::to_owned);
    let date = e
        .text_at("identifikation.ereignis/ereignis.zeitpunkt")
        .and_then(|z| z.get(..10))
        .or(info.created_at.get(..10))
        .map(str::to_owned);
    (zeichen, date)
}

/// A config value or its default. Every key used must be in [`CONFIG_KEYS`] (a unit test
/// checks the ones the mappings use), so `describe` tells operators about all of them.
pub(crate) fn setting(config: &dyn Config, key: &str) -> String {
    config.get(key).unwrap_or_else(|| {
        CONFIG_KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, d, _)| (*d).to_owned()).unwrap_or_default()
    })
}

impl Adapter for XmeldAdapter {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "xmeld".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            handles: HANDLED
                .iter()
                .map(|t| MessageKind { standard: STANDARD.into(), version: VERSION.into(), message_type: (*t).into() })
                .collect(),
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
        match (info.standard.as_str(), info.version.as_str(), info.message_type.as_str()) {
            (STANDARD, VERSION, "0201") => rueckmeldung_inland(info, root, config),
            (STANDARD, VERSION, "0202") => further::anmeldung_ausland(info, root, config),
            (STANDARD, VERSION, "0206") => further::statuswechsel(info, root, config),
            (STANDARD, VERSION, "0301") => further::datenbereitstellung(info, root, config),
            (STANDARD, VERSION, "0088" | "0089") => further::wohnungsbild(info, root, config),
            (STANDARD, VERSION, "1704") => anmeldung::meldeschein(info, root, config),
            (STANDARD, VERSION, "0091" | "0092") => person_events::name(info, root, config),
            (STANDARD, VERSION, "0040") => person_events::tod(info, root, config),
            (STANDARD, VERSION, "0093" | "0094") => person_events::auskunftssperre(info, root, config),
            (STANDARD, VERSION, "0090") => ummeldung::anschrift(info, root, config),
            (STANDARD, VERSION, "0006" | "0063" | "0064" | "0065") => dokument::dokument(info, root, config),
            (STANDARD, VERSION, "0105" | "0106") => dokument::passversagung(info, root, config),
            _ => Err(MappingError {
                code: ErrorCode::UnsupportedMessage,
                message: format!(
                    "message type {} {} {} is not handled",
                    info.standard, info.version, info.message_type
                ),
                xml_path: root.xml_path(),
            }),
        }
    }
}

efile_bridge_sdk::export_adapter!(XmeldAdapter);

/// A person as the message names them.
pub(crate) struct Person {
    family_name: String,
    given_names: String,
    birth_date: Option<String>,
    birth_place: Option<String>,
    id_nr: Option<String>,
}

impl Person {
    pub(crate) fn citizen(&self) -> CitizenRef {
        let mut identifiers = Vec::new();
        if let Some(id) = &self.id_nr {
            identifiers.push(Identifier { kind: IdentifierKind::IdNr, value: id.clone() });
        }
        identifiers.push(Identifier {
            kind: IdentifierKind::Fingerprint,
            value: fingerprint(
                &self.family_name,
                &self.given_names,
                self.birth_date.as_deref(),
                self.birth_place.as_deref(),
            ),
        });
        let display_name = if self.given_names.is_empty() {
            self.family_name.clone()
        } else {
            format!("{}, {}", self.family_name, self.given_names)
        };
        CitizenRef {
            identifiers,
            display_name,
            family_name: self.family_name.clone(),
            given_names: self.given_names.clone(),
            birth_date: self.birth_date.clone(),
        }
    }
}

/// Reads name, birth and idNr of a `zuzugsperson`, falling back to `identifikation.betroffener`.
pub(crate) fn person(betroffener: Element<'_, '_>) -> Result<Person, MappingError> {
    let z = betroffener.require("zuzugsperson")?;
    let ident = betroffener.find("identifikation.betroffener");
    let family_name = z
        .text_at("NAMENATUERLICHEPERSON/familienname.unstrukturiert/nachname/name")
        .or_else(|| ident.and_then(|i| i.text_at("name/familienname.unstrukturiert/nachname/name")))
        .ok_or_else(|| z.missing("NAMENATUERLICHEPERSON/familienname.unstrukturiert/nachname/name"))?;
    // `nichtVorhanden` (no given names) is legal and leaves the field empty.
    let given_names = z
        .text_at("NAMENATUERLICHEPERSON/vornamen/vornamen/name")
        .or_else(|| ident.and_then(|i| i.text_at("name/vornamen/vornamen/name")))
        .unwrap_or("");
    let geburt = z.find("GEBURT").or_else(|| ident.and_then(|i| i.find("geburt")));
    let birth_date = geburt.and_then(|g| g.find("geburtsdatum")).and_then(partial_date);
    let birth_place = geburt.and_then(|g| g.text_at("geburtsort")).map(str::to_owned);
    let id_nr = match z.find("idNr") {
        Some(e) if e.text().len() == 11 && e.text().bytes().all(|b| b.is_ascii_digit()) => Some(e.text().to_owned()),
        Some(e) => return Err(e.invalid("idNr must be eleven digits")),
        None => None,
    };
    Ok(Person {
        family_name: family_name.to_owned(),
        given_names: given_names.to_owned(),
        birth_date,
        birth_place,
        id_nr,
    })
}

/// Where the person moved to, as far as the message says.
struct NewHome {
    ags: Option<String>,
    place: String,
    moved_in: Option<String>,
}

fn inland<'d, 'a>(anschrift: Element<'d, 'a>) -> Option<Element<'d, 'a>> {
    anschrift.find("anschrift.inland/anschrift.inland")
}

fn new_home(betroffener: Element<'_, '_>) -> NewHome {
    let autor = betroffener.find("identifikation.betroffener/wohnung.autor/anschrift");
    let ags = autor.and_then(inland).and_then(|a| a.text_at("gemeindeschluessel/code")).map(str::to_owned);
    let mut place = autor.and_then(inland).and_then(|a| a.text_at("wohnort")).map(str::to_owned);
    let mut moved_in = None;
    // The dwelling moved into: the WOHNUNG in the new municipality, else one not moved out of.
    let wohnungen: Vec<_> =
        betroffener.find("zuzugsperson").into_iter().flat_map(|z| z.children_named("WOHNUNG")).collect();
    let chosen = wohnungen
        .iter()
        .find(|w| {
            ags.is_some()
                && w.find("anschrift").and_then(inland).and_then(|a| a.text_at("gemeindeschluessel/code"))
                    == ags.as_deref()
        })
        .or_else(|| wohnungen.iter().find(|w| w.find("datumDesAuszugs").is_none()));
    if let Some(w) = chosen {
        moved_in = w.find("datumDesBeziehens").and_then(partial_date);
        if place.is_none() {
            place = w.find("anschrift").and_then(|a| {
                if let Some(i) = inland(a) {
                    i.text_at("wohnort").map(str::to_owned)
                } else if let Some(s) = a.text_at("anschrift.ausland/staat/code") {
                    Some(format!("Ausland (Staat {s})"))
                } else {
                    a.find("anschrift.unbekannt").map(|_| "unbekannt".to_owned())
                }
            });
        }
    }
    NewHome { ags, place: place.unwrap_or_else(|| "unbekannt".to_owned()), moved_in }
}

/// One line for an address of any kind 0201 can carry: inland, foreign (state only, or
/// withheld), unknown.
pub(crate) fn address_line(anschrift: Element<'_, '_>) -> String {
    if let Some(i) = inland(anschrift) {
        let place = i.text_at("wohnort").unwrap_or("?");
        return match i.text_at("gemeindeschluessel/code") {
            Some(ags) => format!("inland: {place} ({ags})"),
            None => format!("inland: {place}"),
        };
    }
    if let Some(a) = anschrift.find("anschrift.ausland") {
        return match a.text_at("staat/code") {
            Some(code) => format!("ausland: Staat {code}"),
            None => "ausland: zu Recht nicht übermittelt".to_owned(),
        };
    }
    if let Some(u) = anschrift.find("anschrift.unbekannt") {
        return match u.text_at("sachverhalt/code") {
            Some(code) => format!("unbekannt (Sachverhalt {code})"),
            None => "unbekannt".to_owned(),
        };
    }
    "nicht angegeben".to_owned()
}

/// Every dwelling the message lists for the person, with its dates, as metadata lines.
fn dwellings(betroffener: Element<'_, '_>) -> Vec<(String, String)> {
    let Some(z) = betroffener.find("zuzugsperson") else {
        return Vec::new();
    };
    z.children_named("WOHNUNG")
        .enumerate()
        .map(|(n, w)| {
            let mut line = w.find("anschrift").map_or_else(|| "nicht angegeben".to_owned(), address_line);
            let date = |name: &str| w.find(name).map(|d| partial_date(d).unwrap_or_else(|| "unbekannt".to_owned()));
            if let Some(d) = date("datumDesBeziehens") {
                line.push_str(&format!("; bezogen {d}"));
            }
            if let Some(d) = date("datumDesAuszugs") {
                line.push_str(&format!("; ausgezogen {d}"));
            }
            (format!("wohnung.{}", n + 1), line)
        })
        .collect()
}

fn rueckmeldung_inland(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let file_plan_code = setting(config, "aktenplan.meldewesen");
    let subject_prefix = setting(config, "aktenbetreff.meldewesen");
    let wegzug = retention::rule(config, "wegzug")?;
    let mut records = Vec::new();
    let verbaende: Vec<_> = root.children_named("umzugsverband").collect();
    if verbaende.is_empty() {
        return Err(root.missing("umzugsverband"));
    }
    for (v, verband) in verbaende.iter().enumerate() {
        let betroffene: Vec<_> = verband.children_named("betroffener").collect();
        if betroffene.is_empty() {
            return Err(verband.missing("betroffener"));
        }
        for (p, b) in betroffene.iter().enumerate() {
            let person = person(*b)?;
            let home = new_home(*b);
            let zeichen = b.require_text("identifikation.ereignis/ereignis.zeichen")?;
            let sperre = b.find("zuzugsperson/AUSKUNFTSSPERRE");
            let event_date = home.moved_in.clone();
            // The clock starts with the move; without a known date, with the message.
            let retention = wegzug.apply(event_date.as_deref().or(info.created_at.get(..10)));
            let mut metadata = vec![
                ("nachricht".to_owned(), format!("{} ({})", info.message_name, info.message_type)),
                ("ereignis.zeichen".to_owned(), zeichen.to_owned()),
                ("umzugsverband".to_owned(), (v + 1).to_string()),
                ("person".to_owned(), (p + 1).to_string()),
                ("zuzug.wohnort".to_owned(), home.place.clone()),
            ];
            if let Some(ags) = &home.ags {
                metadata.push(("zuzug.gemeindeschluessel".to_owned(), ags.clone()));
            }
            if let Some(d) = &event_date {
                metadata.push(("zuzug.datum".to_owned(), d.clone()));
            }
            metadata.extend(dwellings(*b));
            if let Some(s) = sperre {
                if let Some(code) = s.text_at("grund/code") {
                    metadata.push(("auskunftssperre.grund".to_owned(), code.to_owned()));
                }
                if let Some(frist) = s.text_at("frist") {
                    metadata.push(("auskunftssperre.frist".to_owned(), frist.to_owned()));
                }
            }
            let citizen = person.citizen();
            records.push(EfileRecord {
                file_subject: format!("{subject_prefix} {}", citizen.display_name),
                citizen,
                file_plan_code: file_plan_code.clone(),
                case_type: "wegzug".into(),
                case_ref: Some(zeichen.to_owned()),
                document_type: DocumentType::Abmeldung,
                title: format!("Wegzug nach {} (Rückmeldung Inland)", home.place),
                event_date,
                retention,
                confidentiality: if sperre.is_some() { Confidentiality::High } else { Confidentiality::Normal },
                metadata,
                attachments: Vec::new(),
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_setting_used_has_a_default() {
        let sources = [
            include_str!("lib.rs"),
            include_str!("anmeldung.rs"),
            include_str!("dokument.rs"),
            include_str!("further.rs"),
            include_str!("person_events.rs"),
            include_str!("ummeldung.rs"),
        ];
        for src in sources {
            for part in src.split("setting(config, \"").skip(1) {
                let key = part.split('"').next().unwrap_or_default();
                let default = super::CONFIG_KEYS.iter().find(|(k, ..)| *k == key).map(|(_, d, _)| *d);
                assert!(default.is_some_and(|d| !d.is_empty()), "config key `{key}` has no default in CONFIG_KEYS");
            }
        }
    }
}
