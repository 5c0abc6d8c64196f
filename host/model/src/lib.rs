//! The e-file record model, shared by the host and by adapters.
//!
//! These are the native Rust twins of the types in `plugins/wit/adapter.wit`. Adapters build
//! them with the SDK (so their mapping logic can be unit-tested without a WebAssembly runtime);
//! the SDK converts them at the component boundary, and the host converts the WIT values back
//! into them before it stores or serves anything. This crate has no runtime dependencies, so
//! the guest never pulls in wasmtime (the lesson from Extism's split).
//!
//! The serde form of these types is the JSON the HTTP API and `files show --json` print, and
//! the canonical bytes whose SHA-256 the journal commits to for each record version.

use serde::{Deserialize, Serialize};

/// A message kind: standard, version and message type code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageKind {
    /// The standard, e.g. `XMeld`.
    pub standard: String,
    /// Its version, e.g. `25.11a`.
    pub version: String,
    /// The message type code, e.g. `0201`.
    pub message_type: String,
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.standard, self.version, self.message_type)
    }
}

/// A configuration key an adapter reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// The key.
    pub name: String,
    /// What it means and its default.
    pub description: String,
    /// Whether a tenant must set it.
    pub required: bool,
}

/// What an adapter says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterInfo {
    /// Short name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// Message kinds it maps.
    pub handles: Vec<MessageKind>,
    /// Configuration keys it reads.
    pub config_keys: Vec<ConfigKey>,
}

/// What the host knows about a message before the adapter sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInfo {
    /// The tenant's AGS.
    pub tenant_ags: String,
    /// The standard.
    pub standard: String,
    /// Its version.
    pub version: String,
    /// The message type code.
    pub message_type: String,
    /// The root element's local name.
    pub message_name: String,
    /// `nachrichtenUUID`.
    pub message_uuid: String,
    /// `erstellungszeitpunkt` as written.
    pub created_at: String,
    /// When the journal accepted the message (RFC 3339, UTC).
    pub received_at: String,
    /// The message's journal index.
    pub journal_index: u64,
}

/// How a citizen is identified, strongest first (the derived order is the strength order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum IdentifierKind {
    /// Steuerliche Identifikationsnummer.
    IdNr,
    /// The registration authority's person reference.
    RegisterKey,
    /// Normalised name + birth date + birth place hash.
    Fingerprint,
}

impl IdentifierKind {
    /// The stable name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdNr => "id-nr",
            Self::RegisterKey => "register-key",
            Self::Fingerprint => "fingerprint",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "id-nr" => Some(Self::IdNr),
            "register-key" => Some(Self::RegisterKey),
            "fingerprint" => Some(Self::Fingerprint),
            _ => None,
        }
    }
}

/// One identifier of a citizen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Identifier {
    /// Which kind.
    pub kind: IdentifierKind,
    /// The value.
    pub value: String,
}

/// The citizen a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct CitizenRef {
    /// Identifiers the message carries.
    pub identifiers: Vec<Identifier>,
    /// Name to show a clerk.
    pub display_name: String,
    /// Family name.
    pub family_name: String,
    /// Given names.
    pub given_names: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
}

/// What kind of document a record is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum DocumentType {
    /// Move-in.
    Anmeldung,
    /// Move-out.
    Abmeldung,
    /// Address or status change.
    Ummeldung,
    /// Identity card event.
    Ausweisdokument,
    /// Passport event.
    Reisepass,
    /// Name change.
    Namensaenderung,
    /// Death.
    Sterbefall,
    /// Information block.
    Auskunftssperre,
    /// Passport refusal or withdrawal.
    Passversagung,
    /// Anything else.
    Other(String),
}

impl DocumentType {
    /// The stable name used in storage and listings.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Anmeldung => "anmeldung",
            Self::Abmeldung => "abmeldung",
            Self::Ummeldung => "ummeldung",
            Self::Ausweisdokument => "ausweisdokument",
            Self::Reisepass => "reisepass",
            Self::Namensaenderung => "namensaenderung",
            Self::Sterbefall => "sterbefall",
            Self::Auskunftssperre => "auskunftssperre",
            Self::Passversagung => "passversagung",
            Self::Other(s) => s,
        }
    }
}

/// Who may see a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum Confidentiality {
    /// Every clerk of the tenant.
    Normal,
    /// Restricted.
    High,
    /// Strictly confidential.
    Secret,
}

impl Confidentiality {
    /// The stable name used in storage and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::High => "high",
            Self::Secret => "secret",
        }
    }
}

/// How long a record is kept and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Retention {
    /// Last day to keep, `YYYY-MM-DD`; `None` while the clock has not started.
    pub deadline: Option<String>,
    /// The legal rule.
    pub rule: String,
}

/// A file attached to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// The bytes (base64 in JSON).
    #[serde(with = "base64_bytes")]
    #[cfg_attr(feature = "json-schema", schemars(with = "String"))]
    pub data: Vec<u8>,
}

/// One e-file record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct EfileRecord {
    /// The citizen.
    pub citizen: CitizenRef,
    /// File-plan code of the citizen's file.
    pub file_plan_code: String,
    /// Subject of the citizen's file.
    pub file_subject: String,
    /// Case type.
    pub case_type: String,
    /// Groups messages into one case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_ref: Option<String>,
    /// Document type.
    pub document_type: DocumentType,
    /// Title.
    pub title: String,
    /// Event date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_date: Option<String>,
    /// Retention.
    pub retention: Retention,
    /// Confidentiality.
    pub confidentiality: Confidentiality,
    /// Key/value metadata, in the order the adapter gave it.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// Attachments.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// Why a mapping failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Not a message kind this adapter maps.
    UnsupportedMessage,
    /// A mandatory element is missing.
    MissingElement,
    /// An element has an unusable value.
    InvalidValue,
    /// Tenant configuration is missing or wrong.
    Config,
}

impl ErrorCode {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedMessage => "unsupported-message",
            Self::MissingElement => "missing-element",
            Self::InvalidValue => "invalid-value",
            Self::Config => "config",
        }
    }
}

/// A typed mapping error with the XML path that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingError {
    /// Kind of failure.
    pub code: ErrorCode,
    /// Short explanation, no personal data.
    pub message: String,
    /// The XML path that failed.
    pub xml_path: String,
}

impl std::fmt::Display for MappingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}: {}", self.code.as_str(), self.xml_path, self.message)
    }
}

impl std::error::Error for MappingError {}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// The JSON Schema of [`EfileRecord`] (what `expected.json` fixtures, the HTTP API and
/// `files show --json` carry), as published in `schemas/efile-record.schema.json`.
#[cfg(feature = "json-schema")]
pub fn record_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(EfileRecord).to_value();
    schema["$id"] = "https://efile-bridge.invalid/schemas/efile-record.schema.json".into();
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_kinds_order_by_strength() {
        assert!(IdentifierKind::IdNr < IdentifierKind::RegisterKey);
        assert!(IdentifierKind::RegisterKey < IdentifierKind::Fingerprint);
        for k in [IdentifierKind::IdNr, IdentifierKind::RegisterKey, IdentifierKind::Fingerprint] {
            assert_eq!(IdentifierKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn attachment_bytes_round_trip_as_base64() {
        let a = Attachment { name: "a.pdf".into(), media_type: "application/pdf".into(), data: vec![0, 1, 255] };
        let json = serde_json::to_string(&a).expect("serialize");
        assert!(json.contains("\"AAH/\""), "{json}");
        let back: Attachment = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, a);
    }
}
