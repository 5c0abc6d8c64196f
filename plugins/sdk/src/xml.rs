//! A small, namespace-aware DOM for XÖV messages.
//!
//! XMeld mixes prefixed elements (`xmeld:umzugsverband`) with unprefixed XInneres children
//! (`nachrichtenkopf.g2g`, `familienname`); adapters almost always want to match on the local
//! name and occasionally on the namespace. [`Document::parse`] reads the message once into an
//! arena of nodes that borrow text from the input where no entity had to be resolved, and
//! every lookup that fails can say *where* with [`Element::xml_path`], which is what a
//! [`MappingError`] carries.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::model::{ErrorCode, MappingError};

const NONE: u32 = u32::MAX;

struct Node<'a> {
    local: &'a str,
    ns: u32,
    parent: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
    text: Cow<'a, str>,
    attrs: Vec<(&'a str, Cow<'a, str>)>,
}

/// A parsed message.
pub struct Document<'a> {
    nodes: Vec<Node<'a>>,
    namespaces: Vec<String>,
}

impl std::fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document").field("elements", &self.nodes.len()).finish()
    }
}

fn parse_error(reason: impl std::fmt::Display) -> MappingError {
    MappingError {
        code: ErrorCode::InvalidValue,
        message: format!("message is not readable xml: {reason}"),
        xml_path: "/".into(),
    }
}

impl<'a> Document<'a> {
    /// Parses a whole message. The host has already checked well-formedness and limits.
    pub fn parse(xml: &'a str) -> Result<Self, MappingError> {
        let mut reader = NsReader::from_str(xml);
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(xml.len() / 40);
        let mut namespaces: Vec<String> = Vec::new();
        let mut stack: Vec<u32> = Vec::with_capacity(32);
        loop {
            let (ns, event) = reader.read_resolved_event().map_err(parse_error)?;
            match event {
                Event::Start(start) => {
                    let id = add_node(&mut nodes, &mut namespaces, &stack, xml, &ns, &start)?;
                    stack.push(id);
                }
                Event::Empty(start) => {
                    add_node(&mut nodes, &mut namespaces, &stack, xml, &ns, &start)?;
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Text(t) => {
                    if let Some(&cur) = stack.last() {
                        let text = reborrow_text(xml, t.decode().map_err(parse_error)?);
                        append(&mut nodes[cur as usize].text, text);
                    }
                }
                Event::CData(c) => {
                    if let Some(&cur) = stack.last() {
                        let text = reborrow_text(xml, c.decode().map_err(parse_error)?);
                        append(&mut nodes[cur as usize].text, text);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(&cur) = stack.last() {
                        let name = r.decode().map_err(parse_error)?;
                        let c = match r.resolve_char_ref().map_err(parse_error)? {
                            Some(c) => c,
                            None => match &*name {
                                "lt" => '<',
                                "gt" => '>',
                                "amp" => '&',
                                "apos" => '\'',
                                "quot" => '"',
                                other => {
                                    return Err(parse_error(format!("unknown entity `{other}`")));
                                }
                            },
                        };
                        nodes[cur as usize].text.to_mut().push(c);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if nodes.is_empty() {
            return Err(parse_error("no root element"));
        }
        Ok(Self { nodes, namespaces })
    }

    /// The root element.
    pub fn root(&self) -> Element<'_, 'a> {
        Element { doc: self, id: 0 }
    }
}

fn add_node<'a>(
    nodes: &mut Vec<Node<'a>>,
    namespaces: &mut Vec<String>,
    stack: &[u32],
    xml: &'a str,
    ns: &ResolveResult<'_>,
    start: &quick_xml::events::BytesStart<'_>,
) -> Result<u32, MappingError> {
    let local = local_name(xml, start.local_name().into_inner())?;
    let ns = match ns {
        ResolveResult::Bound(n) => {
            let uri = std::str::from_utf8(n.into_inner()).map_err(parse_error)?;
            match namespaces.iter().position(|x| x == uri) {
                Some(i) => i as u32,
                None => {
                    namespaces.push(uri.to_owned());
                    (namespaces.len() - 1) as u32
                }
            }
        }
        _ => NONE,
    };
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(parse_error)?;
        let key = local_name(xml, attr.key.local_name().into_inner())?;
        let value = attr.unescape_value().map_err(parse_error)?.into_owned();
        attrs.push((key, Cow::Owned(value)));
    }
    let id = nodes.len() as u32;
    let parent = stack.last().copied().unwrap_or(NONE);
    nodes.push(Node {
        local,
        ns,
        parent,
        first_child: NONE,
        last_child: NONE,
        next_sibling: NONE,
        text: Cow::Borrowed(""),
        attrs,
    });
    if parent != NONE {
        let prev_last = nodes[parent as usize].last_child;
        if prev_last == NONE {
            nodes[parent as usize].first_child = id;
        } else {
            nodes[prev_last as usize].next_sibling = id;
        }
        nodes[parent as usize].last_child = id;
    }
    Ok(id)
}

fn append<'a>(slot: &mut Cow<'a, str>, text: Cow<'a, str>) {
    if slot.is_empty() {
        *slot = text;
    } else {
        slot.to_mut().push_str(&text);
    }
}

/// Text that quick-xml handed out as a slice of the input is re-borrowed for the document's
/// lifetime; anything else is copied.
fn reborrow_text<'a>(xml: &'a str, text: Cow<'_, str>) -> Cow<'a, str> {
    match &text {
        Cow::Borrowed(t) => match local_name(xml, t.as_bytes()) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(text.into_owned()),
        },
        Cow::Owned(_) => Cow::Owned(text.into_owned()),
    }
}

/// Re-borrows a name from the input so nodes can hold `&'a str` without copying.
fn local_name<'a>(xml: &'a str, bytes: &[u8]) -> Result<&'a str, MappingError> {
    let base = xml.as_ptr() as usize;
    let start = (bytes.as_ptr() as usize).wrapping_sub(base);
    match xml.get(start..start + bytes.len()) {
        Some(s) if s.as_bytes() == bytes => Ok(s),
        _ => Err(parse_error("element name outside the input")),
    }
}

/// An element of a [`Document`].
#[derive(Clone, Copy)]
pub struct Element<'d, 'a> {
    doc: &'d Document<'a>,
    id: u32,
}

impl std::fmt::Debug for Element<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Element({})", self.xml_path())
    }
}

impl<'d, 'a> Element<'d, 'a> {
    fn node(&self) -> &'d Node<'a> {
        &self.doc.nodes[self.id as usize]
    }

    /// The local name, without prefix.
    pub fn name(&self) -> &'a str {
        self.node().local
    }

    /// The namespace URI, if the element is in one.
    pub fn namespace(&self) -> Option<&'d str> {
        let ns = self.node().ns;
        (ns != NONE).then(|| self.doc.namespaces[ns as usize].as_str())
    }

    /// The element's own text, trimmed.
    pub fn text(&self) -> &'d str {
        self.node().text.trim()
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&'d str> {
        self.node().attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| &**v)
    }

    /// The parent element.
    pub fn parent(&self) -> Option<Self> {
        let p = self.node().parent;
        (p != NONE).then_some(Self { doc: self.doc, id: p })
    }

    /// All child elements in document order.
    pub fn children(self) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        let doc = self.doc;
        let mut next = self.node().first_child;
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let e = Element { doc, id: next };
                next = doc.nodes[next as usize].next_sibling;
                e
            })
        })
    }

    /// Child elements with this local name.
    pub fn children_named<'n>(self, name: &'n str) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a, 'n> {
        self.children().filter(move |c| c.name() == name)
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<Self> {
        self.children().find(|c| c.name() == name)
    }

    /// The first element at a `/`-separated path of local names below this one.
    pub fn find(&self, path: &str) -> Option<Self> {
        path.split('/').filter(|s| !s.is_empty()).try_fold(*self, |e, step| e.child(step))
    }

    /// The trimmed, non-empty text at `path`.
    pub fn text_at(&self, path: &str) -> Option<&'d str> {
        self.find(path).map(|e| e.text()).filter(|t| !t.is_empty())
    }

    /// Like [`Element::find`], but a missing element is a [`MappingError`] naming the path.
    pub fn require(&self, path: &str) -> Result<Self, MappingError> {
        self.find(path).ok_or_else(|| self.missing(path))
    }

    /// Like [`Element::text_at`], but missing or empty text is a [`MappingError`].
    pub fn require_text(&self, path: &str) -> Result<&'d str, MappingError> {
        self.text_at(path).ok_or_else(|| self.missing(path))
    }

    /// A missing-element error for `path` below this element.
    pub fn missing(&self, path: &str) -> MappingError {
        MappingError {
            code: ErrorCode::MissingElement,
            message: format!("mandatory element `{path}` is missing or empty"),
            xml_path: format!("{}/{}", self.xml_path(), path.trim_start_matches('/')),
        }
    }

    /// An invalid-value error at this element.
    pub fn invalid(&self, message: impl Into<String>) -> MappingError {
        MappingError { code: ErrorCode::InvalidValue, message: message.into(), xml_path: self.xml_path() }
    }

    /// The path from the root, with 1-based positions among same-named siblings where there
    /// is more than one, e.g. `/rueckmeldung.anmeldunginland.0201/umzugsverband[2]/person`.
    pub fn xml_path(&self) -> String {
        let mut steps = Vec::new();
        let mut cur = Some(*self);
        while let Some(e) = cur {
            let step = match e.parent() {
                Some(p) => {
                    let same: Vec<u32> = p.children_named(e.name()).map(|c| c.id).collect();
                    if same.len() > 1 {
                        let pos = same.iter().position(|&id| id == e.id).map_or(0, |p| p + 1);
                        format!("{}[{pos}]", e.name())
                    } else {
                        e.name().to_owned()
                    }
                }
                None => e.name().to_owned(),
            };
            steps.push(step);
            cur = e.parent();
        }
        steps.reverse();
        format!("/{}", steps.join("/"))
    }
}
