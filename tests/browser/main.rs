//! The web pages users read, checked in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): the documentation site built with mdBook, and
//! the web console served by a real host.
//!
//! Needs `mdbook`, `chromium` and `chromedriver` on the PATH (`scripts/test.sh` installs them);
//! without them the tests fail and say what is missing. Screenshots go to
//! `target/test-artifacts/`.

mod console;
mod docs;
#[path = "../e2e/support.rs"]
#[allow(dead_code, reason = "the e2e suite's host; this binary uses part of it")]
mod host;
mod reference;
mod support;
