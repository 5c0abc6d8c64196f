//! `{{name}}`: an efile-bridge adapter for XMeld 25.11a `rueckmeldung.anmeldunginland.0201`.
//!
//! In a 0201 (Rückmeldung Inland) the new municipality tells the old one, our tenant, that people
//! registered there. For the tenant that is a move-out, so every person in the message becomes
//! one `abmeldung` document in that person's citizen file.
//!
//! The host calls [`describe`](Adapter::describe) once when it loads the component and
//! [`map`](Adapter::map) once per message, each time in a fresh sandbox: no state survives
//! between messages, and the same message must always give the same records (no clock, no
//! randomness), which is what lets `efile-bridge plugin test` compare against
//! `tests/fixtures/<case>/expected.json`.

use efile_bridge_sdk::person::{citizen, partial_date};
use efile_bridge_sdk::prelude::*;
use efile_bridge_sdk::retention;

/// The file-plan code used when the tenant's config has no `aktenplan`.
const DEFAULT_FILE_PLAN_CODE: &str = "12.20.10";

/// The adapter. It has no fields: everything it knows comes with each call.
pub struct {{type}};

impl Adapter for {{type}} {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            // The host routes only these message kinds here; add one per message type you map.
            handles: vec![MessageKind {
                standard: "XMeld".into(),
                version: "25.11a".into(),
                message_type: "0201".into(),
            }],
            // Declared keys go into the package manifest: operators see what a tenant's
            // `[tenant.config]` may set.
            config_keys: vec![ConfigKey {
                name: "aktenplan".into(),
                description: format!("file-plan code of the citizen file (default {DEFAULT_FILE_PLAN_CODE})"),
                required: false,
            }],
        }
    }

    fn map(info: &MessageInfo, xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError> {
        let file_plan_code = config.get("aktenplan").unwrap_or_else(|| DEFAULT_FILE_PLAN_CODE.to_owned());
        // Retention periods are data in the SDK (BMG §13 for a move-out), overridable per tenant.
        let rule = retention::rule(config, "wegzug")?;
        let doc = Document::parse(xml)?;
        let mut records = Vec::new();
        // Paths are local names: the SDK ignores namespace prefixes such as `xmeld:`.
        for verband in doc.root().children_named("umzugsverband") {
            for person in verband.children_named("betroffener") {
                // `require*` turns a missing element into a mapping error that names its XML path,
                // so an operator sees exactly what the message lacked.
                let z = person.require("zuzugsperson")?;
                let family = z.require_text("NAMENATUERLICHEPERSON/familienname.unstrukturiert/nachname/name")?;
                let given = z.text_at("NAMENATUERLICHEPERSON/vornamen/vornamen/name").unwrap_or("");
                let birth = z.find("GEBURT/geburtsdatum").and_then(partial_date);
                // `citizen` gives the identifiers every adapter agrees on (valid idNr, fingerprint),
                // so records from other adapters land in the same citizen file.
                let citizen = citizen(family, given, birth, None, z.find("idNr"))?;
                let new_home = z.text_at("WOHNUNG/anschrift/anschrift.inland/anschrift.inland/wohnort");
                // The retention clock starts with the move; without a known date, with the message.
                let moved = z.find("WOHNUNG/datumDesBeziehens").and_then(partial_date);
                let event_date = moved.or_else(|| info.created_at.get(..10).map(str::to_owned));
                records.push(EfileRecord {
                    file_subject: format!("Meldeakte {}", citizen.display_name),
                    citizen,
                    file_plan_code: file_plan_code.clone(),
                    case_type: "wegzug".into(),
                    case_ref: person.text_at("identifikation.ereignis/ereignis.zeichen").map(str::to_owned),
                    document_type: DocumentType::Abmeldung,
                    title: format!("Wegzug nach {}", new_home.unwrap_or("unbekannt")),
                    retention: rule.apply(event_date.as_deref()),
                    event_date,
                    confidentiality: Confidentiality::Normal,
                    metadata: vec![("nachricht".into(), format!("{} ({})", info.message_name, info.message_type))],
                    attachments: Vec::new(),
                });
            }
        }
        if records.is_empty() {
            return Err(doc.root().missing("umzugsverband/betroffener"));
        }
        Ok(records)
    }
}

// Generates the component's exports (only when built for wasm32; a no-op natively).
efile_bridge_sdk::export_adapter!({{type}});
