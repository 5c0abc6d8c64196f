//! The one place that holds the wasmtime bindings generated from `plugins/wit`, and the
//! conversions between them and the native model in `efile-bridge-model`.

use efile_bridge_model as model;

wasmtime::component::bindgen!({
    path: "../../plugins/wit",
    world: "adapter",
});

pub use efile_bridge::adapter::host::{Host, LogLevel};
pub use efile_bridge::adapter::types as wit;

impl From<&model::MessageInfo> for wit::MessageInfo {
    fn from(m: &model::MessageInfo) -> Self {
        Self {
            tenant_ags: m.tenant_ags.clone(),
            standard: m.standard.clone(),
            version: m.version.clone(),
            message_type: m.message_type.clone(),
            message_name: m.message_name.clone(),
            message_uuid: m.message_uuid.clone(),
            created_at: m.created_at.clone(),
            received_at: m.received_at.clone(),
            journal_index: m.journal_index,
        }
    }
}

impl From<wit::AdapterInfo> for model::AdapterInfo {
    fn from(a: wit::AdapterInfo) -> Self {
        Self {
            name: a.name,
            version: a.version,
            handles: a
                .handles
                .into_iter()
                .map(|k| model::MessageKind { standard: k.standard, version: k.version, message_type: k.message_type })
                .collect(),
            config_keys: a
                .config_keys
                .into_iter()
                .map(|k| model::ConfigKey { name: k.name, description: k.description, required: k.required })
                .collect(),
        }
    }
}

impl From<wit::MappingError> for model::MappingError {
    fn from(e: wit::MappingError) -> Self {
        let code = match e.code {
            wit::ErrorCode::UnsupportedMessage => model::ErrorCode::UnsupportedMessage,
            wit::ErrorCode::MissingElement => model::ErrorCode::MissingElement,
            wit::ErrorCode::InvalidValue => model::ErrorCode::InvalidValue,
            wit::ErrorCode::Config => model::ErrorCode::Config,
        };
        Self { code, message: e.message, xml_path: e.xml_path }
    }
}

impl From<wit::EfileRecord> for model::EfileRecord {
    fn from(r: wit::EfileRecord) -> Self {
        Self {
            citizen: model::CitizenRef {
                identifiers: r
                    .citizen
                    .identifiers
                    .into_iter()
                    .map(|i| model::Identifier {
                        kind: match i.kind {
                            wit::IdentifierKind::IdNr => model::IdentifierKind::IdNr,
                            wit::IdentifierKind::RegisterKey => model::IdentifierKind::RegisterKey,
                            wit::IdentifierKind::Fingerprint => model::IdentifierKind::Fingerprint,
                        },
                        value: i.value,
                    })
                    .collect(),
                display_name: r.citizen.display_name,
                family_name: r.citizen.family_name,
                given_names: r.citizen.given_names,
                birth_date: r.citizen.birth_date,
            },
            file_plan_code: r.file_plan_code,
            file_subject: r.file_subject,
            case_type: r.case_type,
            case_ref: r.case_ref,
            document_type: match r.document_type {
                wit::DocumentType::Anmeldung => model::DocumentType::Anmeldung,
                wit::DocumentType::Abmeldung => model::DocumentType::Abmeldung,
                wit::DocumentType::Ummeldung => model::DocumentType::Ummeldung,
                wit::DocumentType::Ausweisdokument => model::DocumentType::Ausweisdokument,
                wit::DocumentType::Reisepass => model::DocumentType::Reisepass,
                wit::DocumentType::Namensaenderung => model::DocumentType::Namensaenderung,
                wit::DocumentType::Sterbefall => model::DocumentType::Sterbefall,
                wit::DocumentType::Auskunftssperre => model::DocumentType::Auskunftssperre,
                wit::DocumentType::Passversagung => model::DocumentType::Passversagung,
                wit::DocumentType::Other(s) => model::DocumentType::Other(s),
            },
            title: r.title,
            event_date: r.event_date,
            retention: model::Retention { deadline: r.retention.deadline, rule: r.retention.rule },
            confidentiality: match r.confidentiality {
                wit::Confidentiality::Normal => model::Confidentiality::Normal,
                wit::Confidentiality::High => model::Confidentiality::High,
                wit::Confidentiality::Secret => model::Confidentiality::Secret,
            },
            metadata: r.metadata,
            attachments: r
                .attachments
                .into_iter()
                .map(|a| model::Attachment { name: a.name, media_type: a.media_type, data: a.data })
                .collect(),
        }
    }
}
