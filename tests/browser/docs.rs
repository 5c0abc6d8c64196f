//! The documentation site: built with mdBook from `docs/`, served on 127.0.0.1, read in
//! headless Chromium. Every page loads without console errors, no internal link is broken
//! (pages and `#anchors`), search finds "Anmeldung", code blocks are highlighted, the adapter
//! catalogue lists the adapters; screenshots of the start page, the adapter author guide and
//! the adapter catalogue are kept as artefacts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Locator, key::Key};

use crate::support::{Driver, artifacts, console, percent_decoded, require, serve_dir};

/// Builds the site into a fresh folder (the repository's `docs/book` is left alone).
fn build_site(out: &Path) {
    let mdbook = require("mdbook", "cargo install mdbook --version ^0.4 --locked");
    let root = efile_bridge_tests::root();
    let status = std::process::Command::new(mdbook)
        .args(["build", "--dest-dir"])
        .arg(out)
        .arg(root.join("docs"))
        .status()
        .expect("run mdbook");
    assert!(status.success(), "mdbook build failed");
}

/// Every page of the site, relative to its root (mdBook's own helper pages left out).
fn pages(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry")) {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "html") {
                let rel = p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
                if !["404.html", "print.html", "toc.html"].contains(&rel.as_str()) {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_site_loads_links_searches_and_renders_in_chromium() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tmp.path().join("book");
    build_site(&site);
    let pages = pages(&site);
    for must in [
        "index.html",
        "quickstart.html",
        "operator.html",
        "adapter-guide.html",
        "reference/wit.html",
        "reference/config.html",
        "adapters/index.html",
        "adapters/xmeld.html",
    ] {
        assert!(pages.iter().any(|p| p == must), "the site has no {must}: {pages:?}");
    }
    let base = serve_dir(site.clone()).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // Every page: loads, no console errors, every same-site link collected.
    let mut links: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for page in &pages {
        browser.goto(&format!("{base}/{page}")).await.expect("open page");
        let title = browser.title().await.expect("title");
        assert!(!title.is_empty(), "{page} has no title");
        let errors: Vec<_> = console(&browser).await.into_iter().filter(|(level, _)| level == "SEVERE").collect();
        assert!(errors.is_empty(), "{page}: console errors {errors:?}");
        let hrefs = browser
            .execute("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)", vec![])
            .await
            .expect("links");
        for href in hrefs.as_array().into_iter().flatten().filter_map(|h| h.as_str()) {
            if let Some(rest) = href.strip_prefix(&format!("{base}/")) {
                links.entry(rest.to_owned()).or_default().insert(page.clone());
            }
        }
    }
    assert!(links.len() > pages.len(), "too few internal links found: {}", links.len());

    // No internal link is broken: its page exists, and its #anchor is an id on that page.
    let mut broken = Vec::new();
    for (link, from) in &links {
        let (path, anchor) = link.split_once('#').map_or((link.as_str(), None), |(p, a)| (p, Some(a)));
        let file = if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_owned() };
        let Ok(html) = std::fs::read_to_string(site.join(&file)) else {
            if !site.join(&file).is_file() {
                broken.push(format!("{link} (from {from:?})"));
            }
            continue;
        };
        if let Some(anchor) = anchor.filter(|a| !a.is_empty()).map(percent_decoded)
            && !html.contains(&format!("id=\"{anchor}\""))
        {
            broken.push(format!("{link}: no #{anchor} (from {from:?})"));
        }
    }
    assert!(broken.is_empty(), "broken internal links:\n{}", broken.join("\n"));

    // Search finds "Anmeldung".
    browser.goto(&format!("{base}/index.html")).await.expect("start page");
    browser
        .screenshot()
        .await
        .map(|png| std::fs::write(artifacts().join("docs-start.png"), png))
        .expect("shot")
        .expect("write");
    browser.find(Locator::Css("#search-toggle")).await.expect("search button").click().await.expect("open search");
    let bar = browser.find(Locator::Css("#searchbar")).await.expect("search bar");
    bar.send_keys("Anmeldung").await.expect("type");
    let deadline = Instant::now() + Duration::from_secs(10);
    let hits = loop {
        let hits = browser.find_all(Locator::Css("#searchresults li")).await.expect("results");
        if !hits.is_empty() || Instant::now() > deadline {
            break hits;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!hits.is_empty(), "search found nothing for Anmeldung");
    let first = hits[0].text().await.expect("hit text");
    assert!(first.to_lowercase().contains("anmeldung"), "first hit does not mention Anmeldung: {first}");
    bar.send_keys(&Key::Escape.to_string()).await.expect("close search");

    // Code blocks are highlighted: the adapter guide shows the example adapter's Rust source.
    browser.goto(&format!("{base}/adapter-guide.html")).await.expect("adapter guide");
    let highlighted = browser.find_all(Locator::Css("pre code.hljs")).await.expect("code blocks");
    assert!(highlighted.len() >= 3, "{} highlighted code blocks on the adapter guide", highlighted.len());
    let rust = browser.find(Locator::Css("pre code.language-rust")).await.expect("the example adapter");
    assert!(rust.text().await.expect("code").contains("impl Adapter for"), "the example adapter's source is missing");
    browser
        .screenshot()
        .await
        .map(|png| std::fs::write(artifacts().join("docs-adapter-guide.png"), png))
        .expect("shot")
        .expect("write");
    // The adapter catalogue lists every adapter with its fixtures' result.
    browser.goto(&format!("{base}/adapters/index.html")).await.expect("catalogue");
    let rows = browser.find_all(Locator::Css("main table tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 3, "one row per adapter in plugins/adapters");
    assert!(rows[2].text().await.expect("row").contains("44 of 44 pass"), "the xmeld row shows its fixtures");
    browser
        .screenshot()
        .await
        .map(|png| std::fs::write(artifacts().join("docs-adapter-catalogue.png"), png))
        .expect("shot")
        .expect("write");
    browser.close().await.expect("close");
}
