//! The web console: a static single-page app (HTML, CSS, JavaScript in `assets/`) compiled
//! into the binary and served by the HTTP API under `/console/`.
//!
//! Nothing is fetched from the network at run time: the files are `include_bytes!`d here, and
//! the page talks only to the same host's `/v1` API with the caller's bearer token (kept in
//! the tab's `sessionStorage`, sent as a header, never as a cookie, so a cross-site request
//! cannot carry it: CSRF has nothing to ride on).
//!
//! [`asset`] answers a path below `/console/`; [`CSP`] and [`SECURITY_HEADERS`] are the
//! headers every console answer carries. The views (clerk: search, citizen timeline, document,
//! original XML, attachments, journal proof checked in the browser, review items; operator:
//! tenants, adapters, shadow runs, message flow, dead letters, checkpoints, verify) live in
//! `assets/app.js`.

/// The content security policy of the console: only its own scripts, styles and API.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Headers on every console answer besides the CSP.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-cache"),
];

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The bytes.
    pub body: &'static [u8],
    /// Its media type.
    pub content_type: &'static str,
}

macro_rules! assets {
    ($($name:literal => $ty:literal),* $(,)?) => {
        /// Every embedded file by its name below `/console/`.
        pub const FILES: &[(&str, Asset)] = &[
            $(($name, Asset { body: include_bytes!(concat!("../assets/", $name)), content_type: $ty }),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
}

/// The file for `path`, the part of the URL path after `/console/` (`""` is the app itself).
pub fn asset(path: &str) -> Option<Asset> {
    let name = if path.is_empty() { "index.html" } else { path };
    FILES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_app_and_its_files_are_found_and_nothing_else() {
        assert_eq!(super::asset("").map(|a| a.content_type), Some("text/html; charset=utf-8"));
        assert!(super::asset("app.js").is_some_and(|a| !a.body.is_empty()));
        assert!(super::asset("../Cargo.toml").is_none());
        assert!(super::asset("index.html/").is_none());
    }
}
