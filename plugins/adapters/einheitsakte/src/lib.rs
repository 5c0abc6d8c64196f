//! A deliberately different adapter for XMeld 25.11a `rueckmeldung.anmeldunginland.0201`.
//!
//! Some municipalities keep one household file per move instead of one file per citizen
//! entry: this adapter files the whole message as a single document under one
//! municipality-specific file-plan code (`aktenplan`, required), assigned to the first
//! person of the first `umzugsverband` (the head of the household as the registry lists it),
//! with everyone else listed in the metadata. It exists to show, and test, that two
//! municipalities on one installation can run different adapters for the same message type.

use efile_bridge_sdk::person::{fingerprint, partial_date};
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention::Date;

/// The adapter.
pub struct Einheitsakte;

impl Adapter for Einheitsakte {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "einheitsakte".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            handles: vec![MessageKind {
                standard: "XMeld".into(),
                version: "25.11a".into(),
                message_type: "0201".into(),
            }],
            config_keys: vec![ConfigKey {
                name: "aktenplan".into(),
                description: "the one file-plan code all moves are filed under".into(),
                required: true,
            }],
        }
    }

    fn map(info: &MessageInfo, xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError> {
        let plan = config.get("aktenplan").ok_or_else(|| MappingError {
            code: ErrorCode::Config,
            message: "config key `aktenplan` is required".into(),
            xml_path: "/".into(),
        })?;
        let doc = Document::parse(xml)?;
        let root = doc.root();
        let mut people = Vec::new();
        for verband in root.children_named("umzugsverband") {
            for b in verband.children_named("betroffener") {
                let z = b.require("zuzugsperson")?;
                let family = z.require_text("NAMENATUERLICHEPERSON/familienname.unstrukturiert/nachname/name")?;
                let given = z.text_at("NAMENATUERLICHEPERSON/vornamen/vornamen/name").unwrap_or("");
                let birth = z.find("GEBURT/geburtsdatum").and_then(partial_date);
                people.push((family.to_owned(), given.to_owned(), birth, z.text_at("idNr").map(str::to_owned)));
            }
        }
        let Some((family, given, birth, id_nr)) = people.first().cloned() else {
            return Err(root.missing("umzugsverband/betroffener"));
        };
        let mut identifiers = Vec::new();
        if let Some(id) = id_nr {
            identifiers.push(Identifier { kind: IdentifierKind::IdNr, value: id });
        }
        identifiers.push(Identifier {
            kind: IdentifierKind::Fingerprint,
            value: fingerprint(&family, &given, birth.as_deref(), None),
        });
        let display_name = if given.is_empty() { family.clone() } else { format!("{family}, {given}") };
        let created = info.created_at.get(..10).and_then(Date::parse);
        let metadata = people
            .iter()
            .enumerate()
            .map(|(n, (f, g, b, _))| {
                (format!("person.{}", n + 1), format!("{f}, {g} ({})", b.as_deref().unwrap_or("?")))
            })
            .collect();
        Ok(vec![EfileRecord {
            citizen: CitizenRef {
                identifiers,
                display_name: display_name.clone(),
                family_name: family,
                given_names: given,
                birth_date: birth,
            },
            file_plan_code: plan,
            file_subject: format!("Haushaltsakte {display_name}"),
            case_type: "umzug".into(),
            case_ref: Some(info.message_uuid.clone()),
            document_type: DocumentType::Abmeldung,
            title: format!("Wegzug von {} Person(en)", people.len()),
            event_date: info.created_at.get(..10).map(str::to_owned),
            retention: Retention {
                deadline: created.map(|d| d.end_of_year_plus(10).to_iso()),
                rule: "Satzung: 10 Jahre nach Ende des Jahres der Meldung".into(),
            },
            confidentiality: Confidentiality::Normal,
            metadata,
            attachments: Vec::new(),
        }])
    }
}

efile_bridge_sdk::export_adapter!(Einheitsakte);
