//! `onlinedienste.anmeldung.meldeschein.1704`: a citizen registered a move-in online. The
//! portal is the author, the registration office (our tenant) the reader. Everyone who moves
//! (the registering person, a partner, children) becomes one `anmeldung` record in their own
//! file, all in one case per message. The landlord's confirmation (base64 PDF; the message
//! gives neither file name nor media type) is attached to the registering person's record.
//! The retention clock stays open until move-out or death (BMG §13).

use base64::Engine as _;
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

use crate::setting;

/// `Straße Nr, PLZ Ort (AGS)` of an address whose fields are its direct children.
pub(crate) fn address(a: Element<'_, '_>) -> Result<String, MappingError> {
    let mut street = a.require_text("strasse")?.to_owned();
    for part in ["hausnummer", "hausnummerBuchstabeZusatzziffer", "teilnummerDerHausnummer"] {
        if let Some(p) = a.text_at(part) {
            street.push(' ');
            street.push_str(p);
        }
    }
    Ok(format!(
        "{street}, {} {} ({})",
        a.require_text("postleitzahl")?,
        a.require_text("wohnort")?,
        a.require_text("gemeindeschluessel/code")?
    ))
}

/// One moving person as read from the message.
struct Mover {
    citizen: CitizenRef,
    /// An Auskunftssperre is registered for the person.
    sperre: bool,
    metadata: Vec<(String, String)>,
}

/// One moving person (`type.Meldeschein.Personendaten`).
fn person(x: Element<'_, '_>) -> Result<Mover, MappingError> {
    let pd = x.require("bestaetigteMeldedaten/personendaten")?;
    let citizen = crate::citizen_of(pd, "geburtsangaben")?;
    let mut metadata = Vec::new();
    if let Some(status) = x.text_at("statusDerNeuenWohnung/code") {
        metadata.push(("wohnungsstatus".to_owned(), status.to_owned()));
    }
    for (n, w) in pd.children_named("wohnung").enumerate() {
        if let Some(a) = w.find("anschrift/anschrift.inland") {
            metadata.push((format!("bisherige.wohnung.{}", n + 1), address(a)?));
        }
    }
    let sperre = pd.find("auskunftssperre");
    if let Some(s) = sperre {
        if let Some(code) = s.text_at("grund/code") {
            metadata.push(("auskunftssperre.grund".to_owned(), code.to_owned()));
        }
        if let Some(frist) = s.text_at("frist") {
            metadata.push(("auskunftssperre.frist".to_owned(), frist.to_owned()));
        }
    }
    for (n, e) in
        x.children_named("widerspruecheUebermittlungssperren").flat_map(|w| w.children_named("eintragung")).enumerate()
    {
        if let Some(code) = e.text_at("code") {
            metadata.push((format!("widerspruch.{}", n + 1), code.to_owned()));
        }
    }
    Ok(Mover { citizen, sperre: sperre.is_some(), metadata })
}

pub(crate) fn meldeschein(
    info: &MessageInfo,
    root: Element<'_, '_>,
    config: &dyn Config,
) -> Result<Vec<EfileRecord>, MappingError> {
    let e = root.require("ergaenzendeMeldedaten")?;
    let wohnung = e.require("wohnung")?;
    let new_address = address(wohnung.require("anschrift")?)?;
    let place = wohnung.require_text("anschrift/wohnort")?;
    let moved_in = wohnung.require_text("datumDesBeziehens")?;
    let attachment = match e.find("wohnungsgeberbestaetigung") {
        None => None,
        Some(b) => {
            let clean: String = b.text().chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let data = base64::engine::general_purpose::STANDARD
                .decode(clean.as_bytes())
                .map_err(|_| b.invalid("wohnungsgeberbestaetigung is not base64"))?;
            Some(Attachment {
                name: format!("wohnungsgeberbestaetigung-{}.pdf", info.message_uuid),
                media_type: "application/pdf".into(),
                data,
            })
        }
    };
    let mut movers = vec![root.require("berechtigtePerson")?];
    if let Some(w) = root.find("weitereMitzuziehendePerson") {
        movers.extend(w.find("partner/personendaten"));
        movers.extend(w.children_named("kind"));
    }
    let rule = retention::rule(config, "meldung")?;
    let mut records = Vec::new();
    for (n, x) in movers.into_iter().enumerate() {
        let Mover { citizen, sperre, metadata: person_meta } = person(x)?;
        let mut metadata = vec![
            ("nachricht".to_owned(), format!("{} ({})", info.message_name, info.message_type)),
            ("person".to_owned(), (n + 1).to_string()),
            ("anschrift.neu".to_owned(), new_address.clone()),
            ("einzug".to_owned(), moved_in.to_owned()),
        ];
        if let Some(d) = e.text_at("datumDesAuszugs") {
            metadata.push(("auszug".to_owned(), d.to_owned()));
        }
        metadata.extend(person_meta);
        if n > 0 && attachment.is_some() {
            metadata
                .push(("wohnungsgeberbestaetigung".to_owned(), "beim Datensatz der meldepflichtigen Person".into()));
        }
        records.push(EfileRecord {
            file_subject: format!("{} {}", setting(config, "aktenbetreff.meldewesen"), citizen.display_name),
            citizen,
            file_plan_code: setting(config, "aktenplan.meldewesen"),
            case_type: "zuzug".into(),
            case_ref: Some(info.message_uuid.clone()),
            document_type: DocumentType::Anmeldung,
            title: format!("Zuzug nach {place} (elektronische Anmeldung)"),
            event_date: Some(moved_in.to_owned()),
            retention: rule.apply(None),
            confidentiality: if sperre { Confidentiality::High } else { Confidentiality::Normal },
            metadata,
            attachments: if n == 0 { attachment.clone().into_iter().collect() } else { Vec::new() },
        });
    }
    Ok(records)
}
