//! The SDK's XML reader (what every adapter parses with) on arbitrary text: never panics, and
//! every element of a parsed document can report its path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = efile_bridge_sdk::xml::Document::parse(text) {
        let root = doc.root();
        let _ = root.xml_path();
        for child in root.children() {
            let _ = child.xml_path();
            let _ = child.text();
            let _ = child.find("a/b");
        }
    }
});
