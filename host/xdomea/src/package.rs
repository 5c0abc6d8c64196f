//! The zip container of an xdomea transfer: the message first, then its primary documents.
//!
//! Everything that zip would otherwise take from the machine is fixed: the entry order is
//! the caller's, every entry has the DOS epoch (1980-01-01 00:00) as its time and mode 0644,
//! and there is no archive comment. Set explicitly rather than left to defaults, because the
//! zip crate stamps the current time when its `time` feature is on anywhere in the build.

use std::io::{Cursor, Write as _};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::XdomeaError;

pub(crate) fn zip(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, XdomeaError> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        let fail = |reason: String| XdomeaError::Package { entry: (*name).to_owned(), reason };
        zip.start_file(*name, options).map_err(|e| fail(e.to_string()))?;
        zip.write_all(data).map_err(|e| fail(e.to_string()))?;
    }
    let cursor = zip.finish().map_err(|e| XdomeaError::Package { entry: String::new(), reason: e.to_string() })?;
    Ok(cursor.into_inner())
}

/// A file-name part that is safe in a zip entry and on any file system: ASCII letters,
/// digits, `.`, `-`, `_`; anything else becomes `_`. A name from an adapter must not be able
/// to climb out of the folder it is unpacked into (`../`) or be refused by the receiver.
pub(crate) fn safe_name(name: &str) -> String {
    const MAX: usize = 100;
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    let cleaned = cleaned.trim_start_matches('.');
    // Keep the end, where the extension is, when a name is too long.
    let start = cleaned.len().saturating_sub(MAX);
    let cleaned = &cleaned[start..];
    if cleaned.is_empty() { "datei".to_owned() } else { cleaned.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_or_carry_odd_characters() {
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name("Wohnungsgeberbestätigung 2026.pdf"), "Wohnungsgeberbest_tigung_2026.pdf");
        assert_eq!(safe_name(""), "datei");
        assert_eq!(safe_name("..."), "datei");
        let long = format!("{}.pdf", "a".repeat(300));
        let safe = safe_name(&long);
        assert_eq!(safe.len(), 100);
        assert!(safe.ends_with(".pdf"));
    }

    #[test]
    fn the_same_entries_give_the_same_bytes() {
        let entries: [(&str, &[u8]); 2] = [("a.xml", b"<a/>"), ("b.pdf", b"%PDF-1.4")];
        let one = zip(&entries).expect("zip");
        assert_eq!(one, zip(&entries).expect("zip"));
        assert_ne!(one, zip(&entries[..1]).expect("zip"));
        assert!(one.starts_with(b"PK\x03\x04"));
    }
}
