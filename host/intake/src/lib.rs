//! The intake check: the first thing that touches an incoming message, before anything is stored.
//!
//! [`check`] reads the whole document once with quick-xml and either returns the message's
//! [`Envelope`] (standard, version, message type, message UUID, reader and author) or an
//! [`IntakeError`] that says what is wrong in terms a sender can act on. It guarantees:
//!
//! - the bytes are UTF-8 and a single well-formed XML document (tags balanced, attributes
//!   well-formed, only the five predefined entities and character references);
//! - there is no DOCTYPE at all, so no DTD, no entity expansion (billion laughs) and no external
//!   entity (XXE) can reach any later stage;
//! - size, depth, element count, attribute count and attribute length stay within [`Limits`];
//! - the root element is in the namespace of a standard we accept ([`KNOWN_STANDARDS`]), its
//!   `standard` and `version` attributes agree with that namespace, and the standard's header
//!   carries a message UUID, a message type matching the root element and a creation time.
//!
//! The check never allocates in proportion to nesting beyond [`Limits::max_depth`], and it does
//! not keep any message content beyond the few header fields it returns.
//!
//! # Two header layouts
//!
//! - **XÖV** (XMeld 25.11a): `nachrichtenkopf.g2g` with `identifikation.nachricht`
//!   (`nachrichtenUUID`, `nachrichtentyp/code`, `erstellungszeitpunkt`), `leser` and `autor`
//!   with a `kennung` such as `ags:09162000`. The root carries a `version` attribute and its
//!   name ends in the type code (`rueckmeldung.anmeldunginland.0201`).
//! - **TR-XhD** (BSI TR-03123, the passport and ID card authorities' messages to the document
//!   producer, e.g. `BestellungDokument`): `Nachrichtenkopf` next to `Nutzdaten`. No public XSD
//!   was available when this was written, so the namespace ([`TRXHD_NAMESPACE`]) and the
//!   element names below `Nachrichtenkopf` are an **assumption** modelled on the public BSI
//!   descriptions (TR-03132 names the root elements, `Nachrichtenkopf`, `Nutzdaten`, the roles
//!   `Autor` and `Leser` and the Behördenschlüssel `psb:`/`pab:`/`eid:` + AGS + `_NN`):
//!   `NachrichtenID` (a UUID), `Nachrichtentyp` (equal to the root element's name),
//!   `Erstellungszeitpunkt`, and `Autor`/`Leser` each with `Behoerdenschluessel` and `Name`.
//!   Both parties are mandatory. The version is the namespace's; a `version` attribute is not
//!   needed. The official schema's namespace (`http://www.bsi.de/trxhd/1.8` in the TR-03132
//!   examples) is deliberately *not* accepted: a real message must not be read with guessed
//!   element names. A municipality with the official schema changes [`TRXHD_NAMESPACE`] and the
//!   paths in `trxhd_field` together with its adapter (`plugins/adapters/trxhd/README.md`).
//!
//! [`Party::ags`] reads the AGS from both kinds of kennung, so a TR-XhD order authored by
//! `psb:09162000_00` belongs to tenant `09162000` without further configuration.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use serde::Serialize;

/// Limits applied to every incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
    /// Most elements in one message.
    pub max_elements: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Longest attribute value in bytes.
    pub max_attribute_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Real XMeld messages are a few KB to a few hundred KB (a base64 Wohnungsgeberbestätigung
        // is the largest part); 16 MiB leaves room for scanned attachments without letting a
        // single sender exhaust memory.
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 64,
            max_elements: 200_000,
            max_attributes: 32,
            max_attribute_len: 4096,
        }
    }
}

/// A standard the host accepts, recognised by the root element's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownStandard {
    /// The root element's namespace URI.
    pub namespace: &'static str,
    /// The `standard` attribute value, e.g. `XMeld`.
    pub standard: &'static str,
    /// The `version` attribute value, e.g. `25.11a`.
    pub version: &'static str,
    /// Where the header fields are.
    pub header: HeaderLayout,
}

/// How a standard lays out its message header (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderLayout {
    /// XÖV `nachrichtenkopf.g2g`; `version` attribute required; the root name ends in the type code.
    XoevG2g,
    /// TR-XhD `Nachrichtenkopf` (assumed element names); the root name is the message type.
    TrXhd,
}

/// The namespace assumed for TR-XhD 1.8 messages: not the official one, see the crate docs.
pub const TRXHD_NAMESPACE: &str = "http://www.bsi.bund.de/xhd/1.8/modell";

/// The standards this build accepts.
pub const KNOWN_STANDARDS: &[KnownStandard] = &[
    KnownStandard {
        namespace: "http://www.osci.de/xmeld2511a",
        standard: "XMeld",
        version: "25.11a",
        header: HeaderLayout::XoevG2g,
    },
    KnownStandard { namespace: TRXHD_NAMESPACE, standard: "TR-XhD", version: "1.8", header: HeaderLayout::TrXhd },
];

/// A party in the header (`leser` or `autor`; TR-XhD `Leser` or `Autor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    /// The `kennung`, e.g. `ags:09162000`, or the TR-XhD Behördenschlüssel, e.g. `psb:09162000_00`.
    pub kennung: String,
    /// The `name`, if given.
    pub name: Option<String>,
}

impl Party {
    /// The AGS if the kennung is `ags:NNNNNNNN`, or the Behördenschlüssel of a passport (`psb:`),
    /// ID card (`pab:`) or eID card authority (`eid:`) in Germany: `NNNNNNNN_NN`, the AGS and the
    /// office number (TR-03132 5.3.2). Other keys (embassies `AA_…`, municipal associations with
    /// a Land-specific key, the document producer `dbs:`) name no AGS; a tenant maps them with
    /// an alias.
    pub fn ags(&self) -> Option<&str> {
        let (prefix, id) = self.kennung.split_once(':')?;
        let ags = match prefix {
            "ags" => id,
            "psb" | "pab" | "eid" => {
                let (ags, office) = id.split_once('_')?;
                (office.len() == 2 && office.bytes().all(|b| b.is_ascii_digit())).then_some(ags)?
            }
            _ => return None,
        };
        (ags.len() == 8 && ags.bytes().all(|b| b.is_ascii_digit())).then_some(ags)
    }
}

/// What intake learns about a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The standard, e.g. `XMeld`.
    pub standard: String,
    /// The version, e.g. `25.11a`.
    pub version: String,
    /// The root element's local name, e.g. `rueckmeldung.anmeldunginland.0201`.
    pub message_name: String,
    /// The type code, e.g. `0201`; for TR-XhD the `Nachrichtentyp`, e.g. `BestellungDokument`.
    pub message_type: String,
    /// `nachrichtenUUID` (TR-XhD: `NachrichtenID`), lowercased.
    pub message_uuid: String,
    /// `erstellungszeitpunkt` (TR-XhD: `Erstellungszeitpunkt`) as written.
    pub created_at: String,
    /// The reader, if the header names one.
    pub reader: Option<Party>,
    /// The author, if the header names one.
    pub author: Option<Party>,
}

/// How an [`IntakeError`] should be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Not acceptable XML at all (HTTP 400).
    Malformed,
    /// Over a size limit (HTTP 413).
    TooLarge,
    /// Good XML but not a message we accept (HTTP 422).
    Unacceptable,
}

/// Why intake refused a message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntakeError {
    /// Body over [`Limits::max_bytes`].
    #[error("message is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Actual size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("message is not valid utf-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A DOCTYPE was present.
    #[error("message contains a doctype declaration at byte {offset}; dtds and entities are not accepted")]
    Doctype {
        /// Where.
        offset: u64,
    },
    /// An entity reference other than the predefined ones.
    #[error("message references entity `&{name};` at byte {offset}; only the predefined xml entities are accepted")]
    Entity {
        /// Entity name.
        name: String,
        /// Where.
        offset: u64,
    },
    /// Syntax error.
    #[error("message is not well-formed xml at byte {offset}: {reason}")]
    NotWellFormed {
        /// Where.
        offset: u64,
        /// What quick-xml said.
        reason: String,
    },
    /// A structural limit was exceeded.
    #[error("message exceeds the {what} limit of {limit} at byte {offset}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
        /// Where.
        offset: u64,
    },
    /// No root element.
    #[error("message has no root element")]
    Empty,
    /// Root element in a namespace we do not accept.
    #[error("root element `{root}` is in namespace `{namespace}`, which is not a supported standard")]
    UnknownStandard {
        /// Root local name.
        root: String,
        /// Its namespace (empty if none).
        namespace: String,
    },
    /// Root attributes disagree with the namespace.
    #[error("root attribute `{attribute}` is `{found}` but namespace `{namespace}` is {expected}")]
    StandardMismatch {
        /// Attribute name.
        attribute: &'static str,
        /// What was there.
        found: String,
        /// What the namespace implies.
        expected: String,
        /// Namespace.
        namespace: String,
    },
    /// A mandatory header field is missing.
    #[error("header has no `{path}`")]
    MissingHeader {
        /// Path below the root.
        path: &'static str,
    },
    /// A header field has an invalid value.
    #[error("header field `{path}` has invalid value `{value}`: {reason}")]
    InvalidHeader {
        /// Path below the root.
        path: &'static str,
        /// The value (header fields carry no personal data).
        value: String,
        /// Why.
        reason: &'static str,
    },
}

impl IntakeError {
    /// How the error should be answered.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::TooLarge { .. } => ErrorClass::TooLarge,
            Self::InvalidUtf8 { .. }
            | Self::Doctype { .. }
            | Self::Entity { .. }
            | Self::NotWellFormed { .. }
            | Self::LimitExceeded { .. }
            | Self::Empty => ErrorClass::Malformed,
            Self::UnknownStandard { .. }
            | Self::StandardMismatch { .. }
            | Self::MissingHeader { .. }
            | Self::InvalidHeader { .. } => ErrorClass::Unacceptable,
        }
    }

    /// A short machine-readable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::Doctype { .. } => "doctype_forbidden",
            Self::Entity { .. } => "entity_forbidden",
            Self::NotWellFormed { .. } => "malformed_xml",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::Empty => "empty",
            Self::UnknownStandard { .. } => "unknown_standard",
            Self::StandardMismatch { .. } => "standard_mismatch",
            Self::MissingHeader { .. } => "missing_header",
            Self::InvalidHeader { .. } => "invalid_header",
        }
    }
}

/// Header fields we look for, by path below the root element.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Uuid,
    TypeCode,
    CreatedAt,
    ReaderKennung,
    ReaderName,
    AuthorKennung,
    AuthorName,
}

const HEADER: &str = "nachrichtenkopf.g2g";
const TRXHD_HEADER: &str = "Nachrichtenkopf";

fn field_at(layout: HeaderLayout, path: &[Box<str>]) -> Option<Field> {
    // path[0] is the root; header fields live at fixed places below the header element.
    let rest: Vec<&str> = path.get(1..)?.iter().map(|s| &**s).collect();
    match layout {
        HeaderLayout::XoevG2g => match rest.as_slice() {
            [HEADER, "identifikation.nachricht", "nachrichtenUUID"] => Some(Field::Uuid),
            [HEADER, "identifikation.nachricht", "nachrichtentyp", "code"] => Some(Field::TypeCode),
            [HEADER, "identifikation.nachricht", "erstellungszeitpunkt"] => Some(Field::CreatedAt),
            [HEADER, "leser", "kennung"] => Some(Field::ReaderKennung),
            [HEADER, "leser", "name"] => Some(Field::ReaderName),
            [HEADER, "autor", "kennung"] => Some(Field::AuthorKennung),
            [HEADER, "autor", "name"] => Some(Field::AuthorName),
            _ => None,
        },
        HeaderLayout::TrXhd => trxhd_field(&rest),
    }
}

/// The assumed TR-XhD header (see the crate docs); replace these names with the official
/// schema's when it is available.
fn trxhd_field(rest: &[&str]) -> Option<Field> {
    match rest {
        [TRXHD_HEADER, "NachrichtenID"] => Some(Field::Uuid),
        [TRXHD_HEADER, "Nachrichtentyp"] => Some(Field::TypeCode),
        [TRXHD_HEADER, "Erstellungszeitpunkt"] => Some(Field::CreatedAt),
        [TRXHD_HEADER, "Leser", "Behoerdenschluessel"] => Some(Field::ReaderKennung),
        [TRXHD_HEADER, "Leser", "Name"] => Some(Field::ReaderName),
        [TRXHD_HEADER, "Autor", "Behoerdenschluessel"] => Some(Field::AuthorKennung),
        [TRXHD_HEADER, "Autor", "Name"] => Some(Field::AuthorName),
        _ => None,
    }
}

/// The header paths errors name, per layout.
struct HeaderPaths {
    uuid: &'static str,
    type_code: &'static str,
    created_at: &'static str,
    reader: &'static str,
    author: &'static str,
}

impl HeaderLayout {
    fn paths(self) -> HeaderPaths {
        match self {
            Self::XoevG2g => HeaderPaths {
                uuid: "nachrichtenkopf.g2g/identifikation.nachricht/nachrichtenUUID",
                type_code: "nachrichtenkopf.g2g/identifikation.nachricht/nachrichtentyp/code",
                created_at: "nachrichtenkopf.g2g/identifikation.nachricht/erstellungszeitpunkt",
                reader: "nachrichtenkopf.g2g/leser/kennung",
                author: "nachrichtenkopf.g2g/autor/kennung",
            },
            Self::TrXhd => HeaderPaths {
                uuid: "Nachrichtenkopf/NachrichtenID",
                type_code: "Nachrichtenkopf/Nachrichtentyp",
                created_at: "Nachrichtenkopf/Erstellungszeitpunkt",
                reader: "Nachrichtenkopf/Leser/Behoerdenschluessel",
                author: "Nachrichtenkopf/Autor/Behoerdenschluessel",
            },
        }
    }
}

#[derive(Default)]
struct Header {
    uuid: Option<String>,
    type_code: Option<String>,
    created_at: Option<String>,
    reader_kennung: Option<String>,
    reader_name: Option<String>,
    author_kennung: Option<String>,
    author_name: Option<String>,
}

impl Header {
    fn slot(&mut self, f: Field) -> &mut Option<String> {
        match f {
            Field::Uuid => &mut self.uuid,
            Field::TypeCode => &mut self.type_code,
            Field::CreatedAt => &mut self.created_at,
            Field::ReaderKennung => &mut self.reader_kennung,
            Field::ReaderName => &mut self.reader_name,
            Field::AuthorKennung => &mut self.author_kennung,
            Field::AuthorName => &mut self.author_name,
        }
    }
}

/// Checks a message and extracts its envelope. See the crate docs for what is guaranteed.
pub fn check(body: &[u8], limits: &Limits) -> Result<Envelope, IntakeError> {
    if body.len() > limits.max_bytes {
        return Err(IntakeError::TooLarge { size: body.len(), limit: limits.max_bytes });
    }
    let text = std::str::from_utf8(body).map_err(|e| IntakeError::InvalidUtf8 { offset: e.valid_up_to() })?;

    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;

    let mut scan = Scan {
        path: Vec::with_capacity(16),
        elements: 0,
        root: None,
        root_closed: false,
        layout: None,
        header: Header::default(),
        current: None,
    };
    loop {
        let offset = reader.buffer_position();
        let (ns, event) = match reader.read_resolved_event() {
            Ok(ok) => ok,
            Err(e) => {
                let reason = e.to_string();
                return Err(IntakeError::NotWellFormed { offset: reader.error_position(), reason });
            }
        };
        match event {
            Event::Start(start) => scan.open(&ns, &start, limits, offset)?,
            Event::Empty(start) => {
                scan.open(&ns, &start, limits, offset)?;
                scan.close();
            }
            Event::End(_) => scan.close(),
            Event::Text(t) => {
                if let Some(field) = scan.current {
                    let raw = t.decode().map_err(|e| IntakeError::NotWellFormed { offset, reason: e.to_string() })?;
                    scan.header.slot(field).get_or_insert_with(String::new).push_str(&raw);
                } else if scan.path.is_empty() && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(IntakeError::NotWellFormed { offset, reason: "text outside the root element".into() });
                }
            }
            Event::CData(c) => {
                if let Some(field) = scan.current {
                    let raw =
                        std::str::from_utf8(&c).map_err(|_| IntakeError::InvalidUtf8 { offset: offset as usize })?;
                    scan.header.slot(field).get_or_insert_with(String::new).push_str(raw);
                }
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => predefined(&name),
                    Err(e) => {
                        return Err(IntakeError::NotWellFormed { offset, reason: e.to_string() });
                    }
                };
                let Some(c) = resolved else {
                    return Err(IntakeError::Entity { name, offset });
                };
                if let Some(field) = scan.current {
                    scan.header.slot(field).get_or_insert_with(String::new).push(c);
                }
            }
            Event::DocType(_) => return Err(IntakeError::Doctype { offset }),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = scan.path.last() {
        return Err(IntakeError::NotWellFormed {
            offset: reader.buffer_position(),
            reason: format!("element `{open}` is not closed"),
        });
    }
    let header = scan.header;
    let (root_name, namespace, standard_attr, version_attr) = scan.root.ok_or(IntakeError::Empty)?;
    envelope(root_name, namespace, standard_attr, version_attr, header)
}

struct Scan {
    path: Vec<Box<str>>,
    elements: usize,
    root: Option<(String, String, Option<String>, Option<String>)>,
    root_closed: bool,
    /// The header layout of the root's standard; none for an unknown namespace.
    layout: Option<HeaderLayout>,
    header: Header,
    current: Option<Field>,
}

impl Scan {
    fn open(
        &mut self,
        ns: &ResolveResult<'_>,
        start: &BytesStart<'_>,
        limits: &Limits,
        offset: u64,
    ) -> Result<(), IntakeError> {
        if self.root_closed {
            return Err(IntakeError::NotWellFormed { offset, reason: "content after the root element".into() });
        }
        self.elements += 1;
        if self.elements > limits.max_elements {
            return Err(IntakeError::LimitExceeded { what: "element count", limit: limits.max_elements, offset });
        }
        if self.path.len() >= limits.max_depth {
            return Err(IntakeError::LimitExceeded { what: "depth", limit: limits.max_depth, offset });
        }
        let local = std::str::from_utf8(start.local_name().into_inner())
            .map_err(|_| IntakeError::InvalidUtf8 { offset: offset as usize })?;
        let attrs = check_attributes(start, limits, offset)?;
        if self.path.is_empty() {
            let namespace = match ns {
                ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.into_inner()).into_owned(),
                _ => String::new(),
            };
            self.layout = KNOWN_STANDARDS.iter().find(|k| k.namespace == namespace).map(|k| k.header);
            self.root = Some((local.to_owned(), namespace, attrs.standard, attrs.version));
        }
        self.path.push(local.into());
        self.current = self.layout.and_then(|layout| field_at(layout, &self.path));
        Ok(())
    }

    fn close(&mut self) {
        self.path.pop();
        self.current = None;
        if self.path.is_empty() {
            self.root_closed = true;
        }
    }
}

fn predefined(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

struct RootAttrs {
    standard: Option<String>,
    version: Option<String>,
}

fn check_attributes(start: &BytesStart<'_>, limits: &Limits, offset: u64) -> Result<RootAttrs, IntakeError> {
    let mut out = RootAttrs { standard: None, version: None };
    let mut count = 0usize;
    for attr in start.attributes().with_checks(true) {
        let attr = attr.map_err(|e| IntakeError::NotWellFormed { offset, reason: e.to_string() })?;
        count += 1;
        if count > limits.max_attributes {
            return Err(IntakeError::LimitExceeded { what: "attribute count", limit: limits.max_attributes, offset });
        }
        if attr.value.len() > limits.max_attribute_len {
            return Err(IntakeError::LimitExceeded {
                what: "attribute length",
                limit: limits.max_attribute_len,
                offset,
            });
        }
        let value = attr.unescape_value().map_err(|e| match e {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, name)) => {
                IntakeError::Entity { name, offset }
            }
            other => IntakeError::NotWellFormed { offset, reason: other.to_string() },
        })?;
        match attr.key.as_ref() {
            b"standard" => out.standard = Some(value.into_owned()),
            b"version" => out.version = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(out)
}

fn envelope(
    root: String,
    namespace: String,
    standard_attr: Option<String>,
    version_attr: Option<String>,
    header: Header,
) -> Result<Envelope, IntakeError> {
    let Some(known) = KNOWN_STANDARDS.iter().find(|k| k.namespace == namespace) else {
        return Err(IntakeError::UnknownStandard { root, namespace });
    };
    if let Some(found) = standard_attr.filter(|s| s != known.standard) {
        return Err(IntakeError::StandardMismatch {
            attribute: "standard",
            found,
            expected: known.standard.into(),
            namespace,
        });
    }
    let paths = known.header.paths();
    match version_attr {
        Some(v) if v == known.version => {}
        Some(found) => {
            return Err(IntakeError::StandardMismatch {
                attribute: "version",
                found,
                expected: known.version.into(),
                namespace,
            });
        }
        // TR-XhD carries its version in the namespace only.
        None if known.header == HeaderLayout::TrXhd => {}
        None => return Err(IntakeError::MissingHeader { path: "@version" }),
    }
    let uuid =
        header.uuid.map(|s| s.trim().to_ascii_lowercase()).ok_or(IntakeError::MissingHeader { path: paths.uuid })?;
    if !is_uuid(&uuid) {
        return Err(IntakeError::InvalidHeader { path: paths.uuid, value: truncate(&uuid), reason: "not a uuid" });
    }
    let type_code =
        header.type_code.map(|s| s.trim().to_owned()).ok_or(IntakeError::MissingHeader { path: paths.type_code })?;
    // XÖV root names end in the type code (`rueckmeldung.anmeldunginland.0201`), TR-XhD root
    // names are the type (`BestellungDokument`); a mismatch means the header and the body
    // disagree about what the message is.
    let type_matches = match known.header {
        HeaderLayout::XoevG2g => root.rsplit('.').next() == Some(type_code.as_str()),
        HeaderLayout::TrXhd => root == type_code,
    };
    if !type_matches {
        return Err(IntakeError::InvalidHeader {
            path: paths.type_code,
            value: truncate(&type_code),
            reason: "does not match the root element",
        });
    }
    let created_at =
        header.created_at.map(|s| s.trim().to_owned()).ok_or(IntakeError::MissingHeader { path: paths.created_at })?;
    if known.header == HeaderLayout::TrXhd {
        // Every TR-XhD message is between an authority and the document producer; without
        // both keys there is no tenant to file it for and no counterpart to name.
        for (path, kennung) in [(paths.author, &header.author_kennung), (paths.reader, &header.reader_kennung)] {
            let k = kennung.as_deref().map(str::trim).filter(|k| !k.is_empty());
            let Some(k) = k else {
                return Err(IntakeError::MissingHeader { path });
            };
            if !is_behoerdenschluessel(k) {
                return Err(IntakeError::InvalidHeader {
                    path,
                    value: truncate(k),
                    reason: "not a behördenschlüssel (prefix:behörden-id)",
                });
            }
        }
    }
    let party = |kennung: Option<String>, name: Option<String>| {
        kennung.map(|k| Party { kennung: k.trim().to_owned(), name: name.map(|n| n.trim().to_owned()) })
    };
    Ok(Envelope {
        standard: known.standard.to_owned(),
        version: known.version.to_owned(),
        message_name: root,
        message_type: type_code,
        message_uuid: uuid,
        created_at,
        reader: party(header.reader_kennung, header.reader_name),
        author: party(header.author_kennung, header.author_name),
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `prefix:id` as TR-03132 forms it: a lowercase prefix (`psb`, `pab`, `eid`, `azr`, `dbs`)
/// and an id of letters, digits and `_`.
fn is_behoerdenschluessel(s: &str) -> bool {
    s.split_once(':').is_some_and(|(prefix, id)| {
        !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_lowercase())
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests;
