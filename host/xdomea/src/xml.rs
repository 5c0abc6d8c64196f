//! A small XML writer for the messages this crate produces.
//!
//! The output is a pure function of the calls made, so the same export gives the same bytes:
//! fixed namespace prefix `xdomea`, two-space indentation, `\n` line ends, and attributes only
//! where the caller writes them. Every text value is checked and escaped here, so no caller
//! can put markup or a character XML 1.0 cannot carry into a message.

use crate::XdomeaError;

/// The xdomea 3.1.0 target namespace.
pub const NAMESPACE: &str = "urn:xoev-de:xdomea:schema:3.1.0";

pub(crate) struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document whose root element is `xdomea:{root}`.
    pub(crate) fn new(root: &'static str) -> Self {
        let mut w = Self { out: String::with_capacity(8 * 1024), open: Vec::new() };
        w.out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w.out.push_str("<xdomea:");
        w.out.push_str(root);
        w.out.push_str(" xmlns:xdomea=\"");
        w.out.push_str(NAMESPACE);
        w.out.push_str("\">\n");
        w.open.push(root);
        w
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    /// Opens `xdomea:{name}`; [`close`](Self::close) ends it.
    pub(crate) fn open(&mut self, name: &'static str) {
        self.indent();
        self.out.push_str("<xdomea:");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.open.push(name);
    }

    /// Closes the innermost open element.
    pub(crate) fn close(&mut self) {
        if let Some(name) = self.open.pop() {
            self.indent();
            self.out.push_str("</xdomea:");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
    }

    /// `<xdomea:{name}>{text}</xdomea:{name}>`, with `text` checked and escaped.
    pub(crate) fn leaf(&mut self, name: &'static str, text: &str) -> Result<(), XdomeaError> {
        self.check(name, text)?;
        self.indent();
        self.out.push_str("<xdomea:");
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</xdomea:");
        self.out.push_str(name);
        self.out.push_str(">\n");
        Ok(())
    }

    /// [`leaf`](Self::leaf) if `text` is not empty: an empty optional element says nothing
    /// and some receivers treat it as "clear this value".
    pub(crate) fn leaf_if(&mut self, name: &'static str, text: &str) -> Result<(), XdomeaError> {
        if text.is_empty() { Ok(()) } else { self.leaf(name, text) }
    }

    /// A XÖV code value: `<xdomea:{name} listURI=… listVersionID=…><code>…</code></xdomea:{name}>`.
    ///
    /// `code` is unqualified, as `xoev-code:Code` declares it. The list attributes are
    /// written even where the schema fixes them, so a reader needs no schema to know the list.
    pub(crate) fn code(
        &mut self,
        name: &'static str,
        list: Option<(&str, &str)>,
        code: &str,
    ) -> Result<(), XdomeaError> {
        self.check(name, code)?;
        self.indent();
        self.out.push_str("<xdomea:");
        self.out.push_str(name);
        if let Some((uri, version)) = list {
            self.out.push_str(" listURI=\"");
            escape_into(&mut self.out, uri);
            self.out.push_str("\" listVersionID=\"");
            escape_into(&mut self.out, version);
            self.out.push('"');
        }
        self.out.push_str(">\n");
        self.open.push(name);
        self.indent();
        self.out.push_str("<code>");
        escape_into(&mut self.out, code);
        self.out.push_str("</code>\n");
        self.open.pop();
        self.indent();
        self.out.push_str("</xdomea:");
        self.out.push_str(name);
        self.out.push_str(">\n");
        Ok(())
    }

    /// Closes everything still open and returns the document.
    pub(crate) fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }

    fn check(&self, name: &'static str, text: &str) -> Result<(), XdomeaError> {
        match text.chars().find(|&c| !is_xml_char(c)) {
            None => Ok(()),
            Some(c) => {
                let mut path = self.open[1..].join("/");
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(name);
                Err(XdomeaError::UnrepresentableChar { element: path, code_point: u32::from(c) })
            }
        }
    }
}

/// XML 1.0 `Char`: Rust strings hold no surrogates, so only the C0 controls and the two
/// non-characters at the end of the BMP are left out.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text for both content and double-quoted attributes. `\r` becomes a character
/// reference because a parser would otherwise normalise it away and change the value.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_carriage_returns_survive() {
        let mut w = XmlWriter::new("Root");
        w.leaf("Betreff", "a<b & \"c\" >\r\n").expect("leaf");
        let xml = w.finish();
        assert!(xml.contains("<xdomea:Betreff>a&lt;b &amp; &quot;c&quot; &gt;&#13;\n</xdomea:Betreff>"), "{xml}");
        assert!(xml.ends_with("</xdomea:Root>\n"), "{xml}");
    }

    #[test]
    fn a_control_character_is_refused_with_its_element_path() {
        let mut w = XmlWriter::new("Root");
        w.open("Akte");
        let err = w.leaf("Betreff", "x\u{1}y").expect_err("control char");
        assert_eq!(err.to_string(), "Akte/Betreff contains U+0001, which XML 1.0 cannot carry");
    }

    #[test]
    fn empty_optional_values_are_left_out() {
        let mut w = XmlWriter::new("Root");
        w.leaf_if("Kennzeichen", "").expect("leaf");
        assert!(!w.finish().contains("Kennzeichen"));
    }
}
