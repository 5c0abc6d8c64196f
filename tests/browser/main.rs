//! The web pages users read, checked in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver): the documentation site built with mdBook.
//!
//! Needs `mdbook`, `chromium` and `chromedriver` on the PATH (`scripts/test.sh` installs them);
//! without them the tests fail and say what is missing. Screenshots go to
//! `target/test-artifacts/`.

mod docs;
mod reference;
mod support;
