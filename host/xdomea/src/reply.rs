//! The answers an e-file system (DMS) sends to a 0605: `FVDaten.EmpfangBestaetigen.0629`
//! (received) and `FVDaten.ImportBestaetigen.0630` (imported, or not, with reasons).
//!
//! Both are defined in `xdomea-Nachrichten-FachverfahrensdatenAustauschen.xsd`; their
//! `ProzessID` is the 0605's, which is how a reply is matched to its package. The 0630's
//! `ErfolgOderMisserfolg` holds one or more `Rueckmeldung` codes for the whole message and,
//! per object of the batch, a `Rueckgabeparameter` with `NummerImStapel`, the DMS's id for the
//! object (`IDSGO`) and `Erfolgreich`.
//!
//! Replies come from the network, so the reader refuses a DOCTYPE (no entity tricks), other
//! than the five predefined entities, more than [`MAX_REPLY_BYTES`] and deeper nesting than
//! [`MAX_DEPTH`].

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::XdomeaError;
use crate::codes;

/// The largest reply accepted; real ones are a few kilobytes.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// The deepest element nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// Namespaces whose 0629/0630 are read: the FVDaten messages did not change from 3.0.0 to
/// 3.1.0, and a DMS on 3.0.0 answers in its own namespace.
const NAMESPACES: [&str; 2] = ["urn:xoev-de:xdomea:schema:3.1.0", "urn:xoev-de:xdomea:schema:3.0.0"];

const RECEIVED: &str = "FVDaten.EmpfangBestaetigen.0629";
const IMPORTED: &str = "FVDaten.ImportBestaetigen.0630";

/// What the e-file system answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 0629: the message arrived; the import result follows as a 0630.
    Received {
        /// `ProzessID`: the 0605's [`Package::message_id`](crate::Package::message_id).
        process_id: String,
        /// `Erstellungszeitpunkt` of the reply, as written.
        created_at: String,
    },
    /// 0630 without a failure: the objects are filed.
    Imported {
        /// `ProzessID`: the 0605's [`Package::message_id`](crate::Package::message_id).
        process_id: String,
        /// The DMS had processed this message before (code 0000009): an earlier attempt of the
        /// same delivery arrived, so nothing was filed twice. Still a success.
        already_processed: bool,
        /// Per object, what the DMS reported (may be empty: `Rueckgabeparameter` is optional).
        objects: Vec<FiledObject>,
    },
    /// 0630 with a failure, for the whole message or for one of its objects.
    Rejected {
        /// `ProzessID`: the 0605's [`Package::message_id`](crate::Package::message_id).
        process_id: String,
        /// Every failure code with its meaning and, for an object, its batch number, joined by
        /// `; `, e.g. `object 1: 0605001 ID des Containers im DMS unbekannt/ungültig`.
        reason: String,
        /// Every failure is one the DMS reports for a passing condition (not available,
        /// connection lost, transmission error, database not accessible): sending the same
        /// package again later may succeed. Otherwise the package itself or the receiver's
        /// configuration must change first.
        transient: bool,
    },
}

impl Reply {
    /// The `ProzessID` the reply answers.
    pub fn process_id(&self) -> &str {
        match self {
            Self::Received { process_id, .. }
            | Self::Imported { process_id, .. }
            | Self::Rejected { process_id, .. } => process_id,
        }
    }
}

/// One object of the batch as the DMS filed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledObject {
    /// `NummerImStapel`: 1 Akte, 2 Vorgang, 3 Dokument in a package from
    /// [`sgo_ablegen`](crate::sgo_ablegen).
    pub number_in_batch: Option<u32>,
    /// `IDSGO`: the id the DMS gave the object (it makes its own Dokument UUIDs).
    pub dms_id: Option<String>,
}

/// Reads a 0629 or 0630 reply.
pub fn parse_reply(xml: &[u8]) -> Result<Reply, XdomeaError> {
    if xml.len() > MAX_REPLY_BYTES {
        return Err(XdomeaError::ReplyTooLarge { size: xml.len(), limit: MAX_REPLY_BYTES });
    }
    let root = read_tree(xml)?;
    if !matches!(root.ns, Ns::Xdomea) || (root.name != RECEIVED && root.name != IMPORTED) {
        return Err(XdomeaError::NotAReply { root: root.name });
    }
    let message: &'static str = if root.name == RECEIVED { RECEIVED } else { IMPORTED };
    let missing = |element: &'static str| XdomeaError::MissingReplyElement { message, element };
    let kopf = root.child("Kopf").ok_or_else(|| missing("Kopf"))?;
    let process_id = kopf.child_text("ProzessID").ok_or_else(|| missing("Kopf/ProzessID"))?;
    let typ = kopf.child("Nachrichtentyp").and_then(|t| t.code()).ok_or_else(|| missing("Kopf/Nachrichtentyp"))?;
    let expected_typ = &message[message.len() - 4..];
    if typ != expected_typ {
        return Err(XdomeaError::InvalidReplyValue {
            message,
            element: "Kopf/Nachrichtentyp",
            value: typ.to_owned(),
            expected: if message == RECEIVED { "0629" } else { "0630" },
        });
    }
    if message == RECEIVED {
        let created_at = kopf.child_text("Erstellungszeitpunkt").ok_or_else(|| missing("Kopf/Erstellungszeitpunkt"))?;
        return Ok(Reply::Received { process_id: process_id.to_owned(), created_at: created_at.to_owned() });
    }

    let result = root.child("ErfolgOderMisserfolg").ok_or_else(|| missing("ErfolgOderMisserfolg"))?;
    let mut failures = Vec::new();
    let mut transient = true;
    let mut already_processed = false;
    let mut any_feedback = false;
    for r in result.children_named("Rueckmeldung") {
        any_feedback = true;
        let feedback = feedback(r).ok_or_else(|| missing("ErfolgOderMisserfolg/Rueckmeldung"))?;
        match feedback.code.as_deref() {
            Some(codes::RUECKMELDUNG_ERFOLG) if feedback.general => {}
            Some(codes::RUECKMELDUNG_BEREITS_VERARBEITET) if feedback.general => already_processed = true,
            code => {
                transient &= feedback.general && code.is_some_and(codes::is_transient);
                failures.push(feedback.describe());
            }
        }
    }
    if !any_feedback {
        return Err(missing("ErfolgOderMisserfolg/Rueckmeldung"));
    }
    let mut objects = Vec::new();
    for p in result.children_named("Rueckgabeparameter") {
        let number_in_batch = match p.child_text("NummerImStapel") {
            Some(n) => Some(n.trim().parse::<u32>().map_err(|_| XdomeaError::InvalidReplyValue {
                message,
                element: "Rueckgabeparameter/NummerImStapel",
                value: n.to_owned(),
                expected: "a number",
            })?),
            None => None,
        };
        let dms_id = p.child_text("IDSGO").map(|s| s.trim().to_owned());
        let ok = p.child_text("Erfolgreich").ok_or_else(|| missing("Rueckgabeparameter/Erfolgreich"))?;
        let ok = parse_boolean(ok).ok_or_else(|| XdomeaError::InvalidReplyValue {
            message,
            element: "Rueckgabeparameter/Erfolgreich",
            value: ok.to_owned(),
            expected: "an xs:boolean",
        })?;
        if !ok {
            transient = false;
            let which = match (number_in_batch, &dms_id) {
                (Some(n), _) => format!("object {n}"),
                (None, Some(id)) => format!("object {id}"),
                (None, None) => "an object".to_owned(),
            };
            let reasons: Vec<String> =
                p.children_named("Rueckmeldung").filter_map(feedback).map(|f| f.describe()).collect();
            if reasons.is_empty() {
                failures.push(format!("{which}: not filed"));
            } else {
                failures.push(format!("{which}: {}", reasons.join(", ")));
            }
        }
        objects.push(FiledObject { number_in_batch, dms_id });
    }
    let process_id = process_id.to_owned();
    if failures.is_empty() {
        Ok(Reply::Imported { process_id, already_processed, objects })
    } else {
        Ok(Reply::Rejected { process_id, reason: failures.join("; "), transient })
    }
}

/// `xs:boolean`: `true`, `false`, `1`, `0`, surrounding whitespace allowed.
fn parse_boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// One `Rueckmeldung` choice: a code from a list or free text.
struct Feedback {
    /// `AllgemeineRueckmeldung` (the only list with a success code).
    general: bool,
    code: Option<String>,
    text: String,
}

impl Feedback {
    fn describe(&self) -> String {
        match &self.code {
            Some(code) => {
                let meaning = if !self.text.is_empty() {
                    Some(self.text.as_str())
                } else if self.general {
                    codes::allgemeine_rueckmeldung(code)
                } else {
                    codes::spezifische_fehlermeldung_0605(code)
                };
                match meaning {
                    Some(m) => format!("{code} {m}"),
                    None => code.clone(),
                }
            }
            None => self.text.clone(),
        }
    }
}

fn feedback(r: &Node) -> Option<Feedback> {
    let choice = r.children.iter().find(|c| matches!(c.ns, Ns::Xdomea))?;
    if choice.name == "SonstigeFehlermeldung" {
        let text = choice.text.trim();
        let text = if text.is_empty() { "SonstigeFehlermeldung" } else { text };
        return Some(Feedback { general: false, code: None, text: text.to_owned() });
    }
    let code = choice.code()?.to_owned();
    let text = choice.children.iter().find(|c| matches!(c.ns, Ns::None) && c.name == "name").map(|n| n.text.trim());
    Some(Feedback {
        general: choice.name == "AllgemeineRueckmeldung",
        code: Some(code),
        text: text.unwrap_or("").to_owned(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Xdomea,
    None,
    Other,
}

/// An element with its text; replies are small enough to hold whole.
#[derive(Debug)]
struct Node {
    ns: Ns,
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children_named(name).next()
    }

    fn children_named<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Node> + use<'a, 'n> {
        self.children.iter().filter(move |c| matches!(c.ns, Ns::Xdomea) && c.name == name)
    }

    fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim()).filter(|t| !t.is_empty())
    }

    /// The unqualified `code` child of a XÖV code element.
    fn code(&self) -> Option<&str> {
        self.children
            .iter()
            .find(|c| matches!(c.ns, Ns::None) && c.name == "code")
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }
}

fn read_tree(xml: &[u8]) -> Result<Node, XdomeaError> {
    let text = std::str::from_utf8(xml)
        .map_err(|e| XdomeaError::MalformedReply { offset: e.valid_up_to() as u64, reason: "invalid UTF-8".into() })?;
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;

    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let offset = reader.buffer_position();
        let malformed = |reason: String| XdomeaError::MalformedReply { offset, reason };
        let (ns, event) = reader.read_resolved_event().map_err(|e| malformed(e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed("content after the root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                stack.push(node(&ns, start.local_name().as_ref()));
            }
            Event::Empty(start) => {
                let n = node(&ns, start.local_name().as_ref());
                match stack.last_mut() {
                    Some(parent) => parent.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(malformed("unexpected end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| malformed(e.to_string()))?;
                match stack.last_mut() {
                    Some(n) => n.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(malformed("text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let s = std::str::from_utf8(&c).map_err(|_| malformed("invalid UTF-8 in CDATA".into()))?;
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(s);
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        other => {
                            return Err(malformed(format!(
                                "entity `&{};` is not one of the five predefined ones",
                                String::from_utf8_lossy(other)
                            )));
                        }
                    },
                    Err(e) => return Err(malformed(e.to_string())),
                };
                if let Some(n) = stack.last_mut() {
                    n.text.push(c);
                }
            }
            Event::DocType(_) => return Err(XdomeaError::ReplyDoctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(XdomeaError::MalformedReply {
            offset: reader.buffer_position(),
            reason: format!("element `{}` is not closed", open.name),
        });
    }
    root.ok_or(XdomeaError::MalformedReply { offset: 0, reason: "no root element".into() })
}

fn node(ns: &ResolveResult<'_>, local: &[u8]) -> Node {
    let ns = match ns {
        ResolveResult::Bound(n) if NAMESPACES.iter().any(|x| x.as_bytes() == n.as_ref()) => Ns::Xdomea,
        ResolveResult::Unbound => Ns::None,
        _ => Ns::Other,
    };
    Node { ns, name: String::from_utf8_lossy(local).into_owned(), text: String::new(), children: Vec::new() }
}
