//! The web console in headless Chromium against a real host on 127.0.0.1 (the real adapter
//! in the sandbox, the real store on the backend under test): a clerk finds a citizen, opens
//! a document, reads the original XML and checks the journal proof in the browser; an
//! operator activates and rolls back an adapter and redelivers a dead letter; a clerk of one
//! tenant cannot reach another's. Every view is checked for accessibility basics (labels,
//! names, one h1, `lang`, contrast) and the clerk's search is done by keyboard only.
//! Screenshots go to `target/test-artifacts/console-*.png`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use efile_bridge_model::Confidentiality;
use efile_bridge_package::{Manifest, PublisherKey};
use efile_bridge_pipeline::Config;
use efile_bridge_pipeline::config::{AuthMode, ClerkConfig, SinkConfig, SinkKind, TrustedPublisher, token_hash};
use efile_bridge_tests::fixture;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};

use crate::host::{Host, uuid_of};
use crate::support::{Driver, artifacts, console, percent_decoded};

const ADMIN: &str = "ebt_console-admin";
const MUENCHEN_CLERK: &str = "ebt_console-clerk-muenchen";
const FRANKFURT_CLERK: &str = "ebt_console-clerk-frankfurt";
const MUENCHEN: &str = "09162000";
const FRANKFURT: &str = "06412000";

fn hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(token_hash(token)))
}

fn with_people(c: &mut Config) {
    c.auth.mode = AuthMode::Tokens;
    c.auth.admin_tokens = vec![hash(ADMIN)];
    let clerk = |name: &str, token: &str| ClerkConfig {
        name: name.into(),
        token: hash(token),
        clearance: Confidentiality::Normal,
    };
    c.tenants[0].clerks = vec![clerk("Huber", MUENCHEN_CLERK)];
    c.tenants[1].clerks = vec![clerk("Weber", FRANKFURT_CLERK)];
}

async fn post_as_admin(host: &mut Host, xml: &[u8]) -> serde_json::Value {
    host.token = Some(ADMIN.into());
    let (code, receipt) = host.post(xml.to_vec()).await;
    assert!(code == 202 || code == 200, "{code} {receipt}");
    host.wait_processed(&uuid_of(xml)).await
}

/// Opens the console and logs in with `token`.
async fn login(browser: &Client, base: &str, token: &str) {
    browser.goto(&format!("{base}/console/")).await.expect("console");
    let field = wait_for(browser, "[data-testid=login-token]").await;
    field.send_keys(token).await.expect("type token");
    click(browser, "[data-testid=login-submit]").await;
    wait_for(browser, "[data-testid=logout]").await;
}

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
}

/// Clicks `css`, finding it again if the page re-rendered it in between.
async fn click(browser: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match wait_for(browser, css).await.click().await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline && e.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("click `{css}`: {e}"),
        }
    }
}

/// Polls `probe` until it gives `Ok`; after 30 s fails with `what` and the last `Err` (what
/// was seen instead). The pages and the host work asynchronously: nothing is timed, only
/// waited for.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "{what}; last seen: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of `css` once it contains `needle` (the page updates after API answers).
async fn wait_text(browser: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = match browser.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "`{css}` never showed `{needle}`; it shows {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accessibility basics of what is on the page now: `lang`, one h1, every form field
/// labelled, every button and link named, text contrast (WCAG AA: 4.5:1, 3:1 for large text).
async fn accessibility_problems(browser: &Client) -> Vec<String> {
    const CHECK: &str = r#"
        const problems = [];
        if (!document.documentElement.lang) problems.push('no lang on <html>');
        const h1 = document.querySelectorAll('h1').length;
        if (h1 !== 1) problems.push(h1 + ' h1 elements');
        const shown = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
        for (const el of document.querySelectorAll('input, select, textarea')) {
            if (el.type === 'hidden' || !shown(el)) continue;
            const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
            if (!labelled) problems.push('unlabelled field ' + el.outerHTML.slice(0, 80));
        }
        for (const el of document.querySelectorAll('button, a[href]')) {
            if (!shown(el)) continue;
            const name = el.textContent.trim() || el.getAttribute('aria-label') || el.getAttribute('title');
            if (!name) problems.push('nameless ' + el.outerHTML.slice(0, 80));
        }
        const rgb = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
            const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
        const lum = ({r, g, b}) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
        const background = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
            if (c && c.a > 0.99) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        const seen = new Set();
        while (walker.nextNode()) {
            const node = walker.currentNode, el = node.parentElement;
            if (!node.textContent.trim() || !el || seen.has(el) || !shown(el)) continue;
            seen.add(el);
            const s = getComputedStyle(el), fg = rgb(s.color), bg = background(el);
            const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
            const ratio = (hi + 0.05) / (lo + 0.05);
            const size = parseFloat(s.fontSize), large = size >= 24 || (parseInt(s.fontWeight) >= 700 && size >= 18.66);
            if (ratio < (large ? 3 : 4.5)) problems.push('contrast ' + ratio.toFixed(2) + ':1 ' + el.tagName + ' "' + node.textContent.trim().slice(0, 30) + '"');
        }
        return problems;
    "#;
    let value = browser.execute(CHECK, vec![]).await.expect("run the check");
    serde_json::from_value(value).expect("a list")
}

async fn assert_accessible(browser: &Client, view: &str) {
    let problems = accessibility_problems(browser).await;
    assert!(problems.is_empty(), "{view}: {problems:#?}");
}

/// Console messages other than the 4xx answers a test provokes on purpose.
async fn console_errors(browser: &Client) -> Vec<String> {
    console(browser)
        .await
        .into_iter()
        .filter(|(level, text)| level == "SEVERE" && !text.contains("the server responded with a status of 4"))
        .map(|(_, text)| text)
        .collect()
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(name), png).expect("write screenshot");
}

/// Presses Tab until `css` has the focus (at most 40 times); fails if it never does.
async fn tab_to(browser: &Client, css: &str) {
    for _ in 0..40 {
        let focused: bool = browser
            .execute("return document.activeElement && document.activeElement.matches(arguments[0])", vec![css.into()])
            .await
            .expect("focus")
            .as_bool()
            .unwrap_or(false);
        if focused {
            return;
        }
        browser.active_element().await.expect("focused").send_keys(&Key::Tab.to_string()).await.expect("tab");
    }
    panic!("Tab never reached `{css}`");
}

async fn press_enter(browser: &Client) {
    browser.active_element().await.expect("focused").send_keys(&Key::Enter.to_string()).await.expect("enter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_finds_a_citizen_by_keyboard_opens_a_document_and_checks_its_proof() {
    let mut host = Host::start_with(with_people).await;
    let anmeldung = fixture("anmeldung-1704-single-person");
    let status = post_as_admin(&mut host, &anmeldung).await;
    post_as_admin(&mut host, &fixture("anmeldung-0201-family-of-three")).await;
    let tenant = status["tenant"].as_str().expect("tenant").to_owned();
    assert_eq!(tenant, MUENCHEN, "{status}");
    let citizen = status["documents"][0]["citizen_id"].as_str().expect("citizen").to_owned();
    let doc = status["documents"][0]["document_id"].as_str().expect("document").to_owned();
    let (_, file) = host.get(&format!("/v1/tenants/{tenant}/citizens/{citizen}")).await;
    let family = file["family_name"].as_str().expect("family name").to_owned();
    let birth = file["birth_date"].as_str().expect("birth date").to_owned();

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, MUENCHEN_CLERK).await;
    assert_accessible(&browser, "clerk search (de)").await;
    assert!(browser.find(Locator::Css("[data-testid=nav-operator]")).await.is_err(), "a clerk gets no operator view");

    // By keyboard: Tab to the name field, type, Enter; Tab to the result, Enter.
    tab_to(&browser, "[data-testid=search-name]").await;
    browser.active_element().await.expect("field").send_keys(&family).await.expect("type");
    press_enter(&browser).await;
    wait_text(&browser, "[data-testid=citizen-link]", &family).await;
    let results = browser.find_all(Locator::Css("[data-testid=citizen-link]")).await.expect("results");
    assert_eq!(results.len(), 1, "one {family} in München");
    tab_to(&browser, "[data-testid=citizen-link]").await;
    press_enter(&browser).await;

    // The citizen's file as a timeline.
    wait_for(&browser, "[data-testid=timeline-item]").await;
    let items = browser.find_all(Locator::Css("[data-testid=timeline-item]")).await.expect("items");
    let documents_in_file: usize = file["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| f["cases"].as_array().expect("cases"))
        .map(|c| c["documents"].as_array().expect("documents").len())
        .sum();
    assert_eq!(items.len(), documents_in_file, "every document of the file in the timeline");
    let timeline = wait_text(&browser, "[data-testid=timeline]", "Anmeldung").await;
    let shown_birth = browser.find(Locator::Css("main")).await.expect("main").text().await.expect("text");
    let german_birth = format!("{}.{}.{}", &birth[8..10], &birth[5..7], &birth[0..4]);
    assert!(shown_birth.contains(&german_birth) || shown_birth.contains(&birth), "birth date {birth} not shown");
    assert!(timeline.contains(file["files"][0]["file_plan_code"].as_str().expect("code")), "{timeline}");
    assert_accessible(&browser, "citizen file").await;
    // Names and birth dates stay out of the URL and the title (the browser's history).
    let (url, title) = (browser.current_url().await.expect("url"), browser.title().await.expect("title"));
    let url = percent_decoded(url.as_str());
    for private in [family.as_str(), birth.as_str(), german_birth.as_str()] {
        assert!(!url.contains(private) && !title.contains(private), "{private} in {url} / {title}");
    }
    screenshot(&browser, "console-citizen-file.png").await;

    // The document: metadata, original XML, attachment, proof checked in the browser.
    click(&browser, &format!("[data-testid=timeline-item][data-document='{doc}'] [data-testid=document-link]")).await;
    wait_for(&browser, "[data-testid=document-title]").await;
    click(&browser, "[data-testid=show-original]").await;
    let xml = wait_text(&browser, "[data-testid=original-xml]", &uuid_of(&anmeldung)).await;
    assert!(xml.contains("<xmeld:"), "the original shows as text: {}", &xml[..xml.len().min(200)]);
    let attachments = browser.find_all(Locator::Css("[data-testid=attachment-download]")).await.expect("attachments");
    assert_eq!(attachments.len(), 1, "the Wohnungsgeberbestätigung");
    assert!(attachments[0].text().await.expect("text").contains(".pdf"));
    click(&browser, "[data-testid=check-proof]").await;
    let result = wait_text(&browser, "[data-testid=proof-result]", "Nachweis verifiziert").await;
    assert!(!result.contains("fehlgeschlagen"), "{result}");
    assert_accessible(&browser, "document with proof").await;
    screenshot(&browser, "console-document.png").await;

    // English, on request (the page is drawn again in English; the proof checked again).
    browser
        .find(Locator::Css("[data-testid=lang-select]"))
        .await
        .expect("select")
        .select_by_value("en")
        .await
        .expect("en");
    wait_text(&browser, "[data-testid=check-proof]", "journal").await;
    click(&browser, "[data-testid=check-proof]").await;
    wait_text(&browser, "[data-testid=proof-result]", "Proof verified").await;
    let lang = browser.execute("return document.documentElement.lang", vec![]).await.expect("lang");
    assert_eq!(lang, "en");
    assert_accessible(&browser, "document (en)").await;
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await.expect("close");
    host.stop().await;
}

/// A host with one Anmeldung filed for München, and München's clerk logged in; the
/// document's and the citizen's ids.
async fn clerk_with_one_document() -> (Host, String, String, Driver, Client) {
    let mut host = Host::start_with(with_people).await;
    let status = post_as_admin(&mut host, &fixture("anmeldung-0201-single-person")).await;
    let doc = status["documents"][0]["document_id"].as_str().expect("document").to_owned();
    let citizen = status["documents"][0]["citizen_id"].as_str().expect("citizen").to_owned();
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, MUENCHEN_CLERK).await;
    (host, doc, citizen, driver, browser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_that_does_not_match_is_not_shown_as_verified() {
    // The browser check must fail on a forged receipt: the host here answers the real proof,
    // and the page is fed one whose entry was changed after the fact.
    let (host, doc, citizen, _driver, browser) = clerk_with_one_document().await;
    // Every later fetch of a proof answers with a changed entry time.
    browser
        .execute(
            r#"const real = window.fetch;
               window.fetch = async (url, init) => {
                   const resp = await real(url, init);
                   if (!String(url).endsWith('/proof')) return resp;
                   const proof = await resp.json();
                   proof.receipt.entry.at = '2020-01-01T00:00:00.000Z';
                   return new Response(JSON.stringify(proof), {status: 200, headers: {'content-type': 'application/json'}});
               };"#,
            vec![],
        )
        .await
        .expect("wrap fetch");
    browser.goto(&format!("{}/console/#/clerk/{MUENCHEN}/citizens/{citizen}", host.base)).await.expect("go");
    click(&browser, &format!("[data-testid=timeline-item][data-document='{doc}'] [data-testid=document-link]")).await;
    click(&browser, "[data-testid=check-proof]").await;
    let result = wait_text(&browser, "[data-testid=proof-result]", "fehlgeschlagen").await;
    assert!(!result.contains("Nachweis verifiziert"), "{result}");
    browser.close().await.expect("close");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_in_open_mode_logs_in_with_an_empty_token() {
    // The README's trial: `auth.mode = "open"` on loopback, no tokens at all.
    let host = Host::start().await;
    let (code, _) = host.post(fixture("anmeldung-0201-single-person")).await;
    assert_eq!(code, 202);
    host.wait_processed(&uuid_of(&fixture("anmeldung-0201-single-person"))).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, "").await;
    // Open mode may do everything: the operator view is offered, and the clerk view finds Brandl.
    wait_for(&browser, "[data-testid=nav-operator]").await;
    click(&browser, "[data-testid=nav-clerk]").await;
    wait_for(&browser, "[data-testid=tenant-select]").await.select_by_value(MUENCHEN).await.expect("München");
    wait_text(&browser, "main", "München").await;
    let name = wait_for(&browser, "[data-testid=search-name]").await;
    name.send_keys("Brandl").await.expect("type");
    click(&browser, "[data-testid=search-submit]").await;
    wait_text(&browser, "[data-testid=citizen-link]", "Brandl").await;
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await.expect("close");
    host.stop().await;
}

/// The online Anmeldung of Katharina Elisabeth Obermüller with another idNr (`None`: none).
fn obermueller(id_nr: Option<&str>, uuid: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("anmeldung-1704-single-person")).expect("utf-8");
    let line = "<xmeld:idNr>02158049378</xmeld:idNr>";
    let text = match id_nr {
        Some(id) => text.replace(line, &format!("<xmeld:idNr>{id}</xmeld:idNr>")),
        None => text.lines().filter(|l| !l.contains(line)).map(|l| format!("{l}\n")).collect(),
    };
    crate::host::with_uuid(text.as_bytes(), uuid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_assigns_a_waiting_record_to_one_of_its_candidates() {
    let mut host = Host::start_with(with_people).await;
    // Two people alike in name, birth date and place, told apart by their idNr; a third
    // message without idNr fits both and waits for a clerk.
    let first =
        post_as_admin(&mut host, &obermueller(Some("02158049378"), "b2000000-0000-4000-8000-000000000001")).await;
    post_as_admin(&mut host, &obermueller(Some("08962367457"), "b2000000-0000-4000-8000-000000000002")).await;
    let waiting = post_as_admin(&mut host, &obermueller(None, "b2000000-0000-4000-8000-000000000003")).await;
    let review = waiting["reviews"][0].as_str().expect("a review item").to_owned();
    let chosen = first["documents"][0]["citizen_id"].as_str().expect("citizen").to_owned();

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, MUENCHEN_CLERK).await;
    click(&browser, "[data-testid=reviews-link]").await;
    click(&browser, &format!("[data-testid=review-item][data-review='{review}']")).await;
    wait_for(&browser, &format!("[data-testid=review-assign][data-citizen='{chosen}']")).await;
    assert_eq!(browser.find_all(Locator::Css("[data-testid=review-assign]")).await.expect("candidates").len(), 2);
    assert_accessible(&browser, "review item").await;
    click(&browser, &format!("[data-testid=review-assign][data-citizen='{chosen}']")).await;
    let decided = eventually("the review item is decided", || async {
        let (_, item) = host.get(&format!("/v1/tenants/{MUENCHEN}/reviews/{review}")).await;
        let decision = &item["review"]["decision"];
        if decision.is_object() { Ok(decision.clone()) } else { Err(item.to_string()) }
    })
    .await;
    assert_eq!(decided["citizen_id"], chosen.as_str(), "{decided}");
    assert_eq!(decided["by"], "clerk-token:09162000 clerk:Huber", "the journal names the clerk from the config");
    let (_, file) = host.get(&format!("/v1/tenants/{MUENCHEN}/citizens/{chosen}")).await;
    let count: usize = file["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| f["cases"].as_array().expect("cases"))
        .map(|c| c["documents"].as_array().expect("docs").len())
        .sum();
    assert_eq!(count, 2, "the waiting record joined the chosen citizen's file: {file}");
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await.expect("close");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_key_seen_is_pinned_and_another_key_fails_the_proof() {
    let (host, doc, citizen, _driver, browser) = clerk_with_one_document().await;
    let pin = |value: &str| format!("localStorage.setItem('efile-bridge.key-pin', '{value}')");
    let pinned = || async {
        let v = browser.execute("return localStorage.getItem('efile-bridge.key-pin')", vec![]).await.expect("pin");
        v.as_str().map(str::to_owned)
    };
    // Another key was pinned in this browser: the proof fails at the pin step.
    let other = r#"{"fingerprint":"0000000000000000000000000000000000000000000000000000000000000000","at":"2026-01-02T00:00:00Z"}"#;
    browser.execute(&pin(other), vec![]).await.expect("set pin");
    browser.goto(&format!("{}/console/#/clerk/{MUENCHEN}/documents/{doc}", host.base)).await.expect("go");
    click(&browser, "[data-testid=check-proof]").await;
    wait_text(&browser, "[data-testid=proof-result]", "fehlgeschlagen").await;
    let step = wait_for(&browser, "[data-step=pin]").await;
    assert_eq!(step.attr("class").await.expect("class").as_deref(), Some("fail"));
    assert!(step.text().await.expect("text").contains("02.01.2026"), "names when it was pinned");
    assert_eq!(pinned().await.as_deref(), Some(other), "a failed check does not replace the pin");
    // Without a pin, the first successful check pins the installation's key.
    browser.execute("localStorage.removeItem('efile-bridge.key-pin')", vec![]).await.expect("clear");
    browser.goto(&format!("{}/console/#/clerk/{MUENCHEN}/citizens/{citizen}", host.base)).await.expect("go");
    click(&browser, &format!("[data-testid=timeline-item][data-document='{doc}'] [data-testid=document-link]")).await;
    click(&browser, "[data-testid=check-proof]").await;
    wait_text(&browser, "[data-testid=proof-result]", "Nachweis verifiziert").await;
    let stored: serde_json::Value = serde_json::from_str(&pinned().await.expect("pinned")).expect("json");
    let key = host.pipeline.store().public_key().to_json();
    let raw = serde_json::from_str::<serde_json::Value>(&key).expect("key")["key"].as_str().expect("b64").to_owned();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &raw).expect("base64");
    let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(stored["fingerprint"], expected.as_str(), "the pin is the installation key's SHA-256");
    // And the next check finds the same key.
    click(&browser, "[data-testid=check-proof]").await;
    wait_text(&browser, "[data-testid=proof-result]", "Nachweis verifiziert").await;
    assert_eq!(
        wait_for(&browser, "[data-step=pin]").await.attr("class").await.expect("class").as_deref(),
        Some("pass")
    );
    browser.close().await.expect("close");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_without_clearance_sees_that_a_confidential_document_is_withheld() {
    // An Anmeldung with an Auskunftssperre: the adapter files it as `high`. Huber's clearance
    // is `normal`; the admin sees it.
    let mut host = Host::start_with(with_people).await;
    let status = post_as_admin(&mut host, &fixture("anmeldung-0201-auskunftssperre")).await;
    assert_eq!(status["tenant"], MUENCHEN, "{status}");
    let citizen = status["documents"][0]["citizen_id"].as_str().expect("citizen").to_owned();
    let doc = status["documents"][0]["document_id"].as_str().expect("document").to_owned();
    let (_, file) = host.get(&format!("/v1/tenants/{MUENCHEN}/citizens/{citizen}")).await;
    assert!(file.to_string().contains("\"confidentiality\":\"high\""), "{file}");
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, MUENCHEN_CLERK).await;
    browser.goto(&format!("{}/console/#/clerk/{MUENCHEN}/citizens/{citizen}", host.base)).await.expect("go");
    let note = wait_text(&browser, "[data-testid=withheld-note]", "vertrauliche").await;
    assert!(note.contains('1'), "{note}");
    let shown = browser
        .find_all(Locator::Css(&format!("[data-testid=timeline-item][data-document='{doc}']")))
        .await
        .expect("items");
    assert!(shown.is_empty(), "the confidential document is in the clerk's timeline");
    assert_accessible(&browser, "citizen file with a withheld document").await;
    // The admin sees the document, with its confidentiality marked.
    click(&browser, "[data-testid=logout]").await;
    login(&browser, &host.base, ADMIN).await;
    browser.goto(&format!("{}/console/#/clerk/{MUENCHEN}/citizens/{citizen}", host.base)).await.expect("go");
    let item = wait_text(&browser, &format!("[data-testid=timeline-item][data-document='{doc}']"), "vertraulich").await;
    assert!(!item.is_empty());
    assert!(
        browser.find(Locator::Css("[data-testid=withheld-note]")).await.is_err(),
        "nothing withheld from the admin"
    );
    browser.close().await.expect("close");
    host.stop().await;
}

/// A downstream e-file system that answers every delivery with the status it is set to.
async fn downstream(status: Arc<AtomicU16>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/ablage", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let status = status.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                    let code = status.load(Ordering::SeqCst);
                    async move {
                        let mut r =
                            hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from_static(b"{}")));
                        *r.status_mut() = hyper::StatusCode::from_u16(code).expect("status");
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_switches_and_rolls_back_an_adapter_and_redelivers_a_dead_letter() {
    let key = PublisherKey::generate().expect("key");
    let public = key.public_key();
    let answer = Arc::new(AtomicU16::new(400));
    let url = downstream(answer.clone()).await;
    let mut host = Host::start_with(move |c| {
        with_people(c);
        c.trusted_publishers.push(TrustedPublisher { name: "KRZ Test".into(), public_key: public });
        c.tenants[0].config.insert("aktenplan".into(), "99.1".into());
        let sink: SinkConfig = serde_json::from_value(serde_json::json!({
            "name": "eakte", "kind": "http", "url": url, "max_attempts": 1, "timeout_ms": 2000,
        }))
        .expect("sink");
        assert_eq!(sink.kind, SinkKind::Http);
        c.tenants[0].sinks.push(sink);
    })
    .await;
    // A signed einheitsakte package, installed; the tenant still runs xmeld.
    let wasm = efile_bridge_tests::einheitsakte_wasm();
    let component = std::fs::read(&wasm).expect("component");
    let (_, adapter) = efile_bridge_tests::load(&wasm);
    let manifest = Manifest::new(adapter.info(), "KRZ Test", &component);
    let package = efile_bridge_package::pack(&manifest, &component).expect("pack");
    let signature = efile_bridge_package::sign(&package, &key);
    let installed = efile_bridge_pipeline::adapters::install(
        &host.pipeline.config(),
        &host.pipeline.runtime(),
        host.pipeline.store().as_ref(),
        &package,
        Some(&signature),
        "test:ops",
    )
    .expect("install");
    let candidate = format!("{}@{}", installed.name, installed.version);
    // A message whose delivery the downstream refuses with 400: a dead letter at once.
    post_as_admin(&mut host, &fixture("anmeldung-0201-single-person")).await;
    let store = host.pipeline.store();
    let dead = eventually("a dead letter", || async {
        let (_, list) = host.get("/v1/admin/deadletters").await;
        let first = list.as_array().and_then(|l| l.first()).and_then(|d| d["delivery_id"].as_str());
        first.map(str::to_owned).ok_or_else(|| list.to_string())
    })
    .await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, ADMIN).await;
    click(&browser, "[data-testid=nav-operator]").await;
    wait_for(&browser, "[data-testid=flow-table]").await;
    wait_for(&browser, "[data-testid=checkpoints-table]").await;
    assert_accessible(&browser, "operator view").await;
    let name = wait_for(&browser, "[data-testid=operator-name]").await;
    name.send_keys("Operator Test").await.expect("name");

    // Activate the candidate for München, then roll it back, each confirmed in the page.
    click(&browser, &format!("[data-testid=activate][data-tenant='{MUENCHEN}'][data-adapter='{candidate}']")).await;
    click(&browser, "[data-testid=confirm-yes]").await;
    // The number of switches once the latest one mentions `expected`.
    let active_is = |expected: &'static str| {
        let store = store.clone();
        eventually(expected, move || {
            let switches = store.activations(Some(MUENCHEN)).expect("switches");
            let latest = switches.last().map(|s| serde_json::to_string(s).expect("json")).unwrap_or_default();
            std::future::ready(if latest.contains(expected) { Ok(switches.len()) } else { Err(latest) })
        })
    };
    assert_eq!(active_is("einheitsakte").await, 1);
    click(&browser, &format!("[data-testid=rollback][data-tenant='{MUENCHEN}']")).await;
    click(&browser, "[data-testid=confirm-yes]").await;
    assert_eq!(active_is("roll").await, 2, "the rollback is the second switch");
    let switches = serde_json::to_string(&store.activations(Some(MUENCHEN)).expect("switches")).expect("json");
    assert!(switches.contains("Operator Test"), "the journal names the operator: {switches}");

    // A shadow run of the candidate beside xmeld: a new message is compared, then it stops.
    click(&browser, &format!("[data-testid=shadow-start][data-tenant='{MUENCHEN}'][data-adapter='{candidate}']")).await;
    let shadows = |running: bool| {
        let store = store.clone();
        eventually(if running { "a shadow run" } else { "no shadow run" }, move || {
            let now = store.shadows().expect("shadows");
            std::future::ready(if now.is_empty() != running { Ok(()) } else { Err(format!("{now:?}")) })
        })
    };
    shadows(true).await;
    // The page announces the start once the API answered, which is after the host applied it:
    // only then is the next message compared.
    wait_text(&browser, "[data-testid=status]", "Schattenlauf mit").await;
    answer.store(201, Ordering::SeqCst);
    post_as_admin(
        &mut host,
        &crate::host::with_uuid(&fixture("anmeldung-0201-family-of-three"), "5a000000-0000-4000-8000-000000000001"),
    )
    .await;
    eventually("a shadow comparison", || {
        let results = store.shadow_results(MUENCHEN, 10).expect("results");
        std::future::ready(if results.is_empty() { Err("none".to_owned()) } else { Ok(()) })
    })
    .await;
    browser.refresh().await.expect("reload");
    let summary = format!("[data-tenant='{MUENCHEN}'] details.shadow summary");
    click(&browser, &summary).await;
    wait_text(&browser, &format!("[data-tenant='{MUENCHEN}'] details.shadow"), &candidate).await;
    click(&browser, &format!("[data-testid=shadow-stop][data-tenant='{MUENCHEN}']")).await;
    shadows(false).await;

    // Redeliver the dead letter (the downstream accepts again since the shadow run).
    let item = format!("[data-testid=deadletter-item][data-delivery='{dead}']");
    let shown = wait_for(&browser, &item).await;
    browser
        .execute("arguments[0].scrollIntoView({block: 'center'})", vec![serde_json::to_value(&shown).expect("element")])
        .await
        .expect("scroll");
    screenshot(&browser, "console-operator.png").await;
    click(&browser, &format!("{item} [data-testid=redeliver]")).await;
    eventually("the dead letter redelivered", || async {
        let (_, d) = host.get(&format!("/v1/admin/deliveries/{dead}")).await;
        if d["state"] == "delivered" { Ok(()) } else { Err(d.to_string()) }
    })
    .await;
    // The verify button runs the journal check and shows its outcome.
    click(&browser, "[data-testid=verify-run]").await;
    eventually("verify shows ok", || async {
        // Read in one step: the section is drawn again while it polls.
        let state = browser
            .execute(
                "const e = document.querySelector('[data-testid=verify-state]'); return e && e.dataset.state",
                vec![],
            )
            .await
            .expect("state");
        assert_ne!(state, "failed", "verify failed");
        if state == "ok" { Ok(()) } else { Err(state.to_string()) }
    })
    .await;
    let errors = console_errors(&browser).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.close().await.expect("close");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_of_one_tenant_cannot_reach_another() {
    let mut host = Host::start_with(with_people).await;
    let status = post_as_admin(&mut host, &fixture("anmeldung-0201-single-person")).await;
    assert_eq!(status["tenant"], MUENCHEN);
    let citizen = status["documents"][0]["citizen_id"].as_str().expect("citizen").to_owned();
    let doc = status["documents"][0]["document_id"].as_str().expect("document").to_owned();
    let (_, file) = host.get(&format!("/v1/tenants/{MUENCHEN}/citizens/{citizen}")).await;
    let family = file["family_name"].as_str().expect("name").to_owned();

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    login(&browser, &host.base, FRANKFURT_CLERK).await;
    // Only Frankfurt is offered, and searching finds nobody of München.
    let offered = browser
        .execute(
            "return Array.from(document.querySelectorAll('[data-testid=tenant-select] option')).map(o => o.value)",
            vec![],
        )
        .await
        .expect("options");
    assert!(offered.as_array().is_none_or(|o| o.iter().all(|v| v == FRANKFURT)), "{offered}");
    click(&browser, "[data-testid=search-submit]").await;
    wait_for(&browser, "[data-testid=status]").await;
    // München's citizen and document by URL. Under München's path the page sends Frankfurt's
    // clerk back to Frankfurt (no request is made); under Frankfurt's path the API answers 404
    // and the page says so. Either way nothing of München's is on the page.
    let paths = [
        (format!("#/clerk/{MUENCHEN}/citizens/{citizen}"), false),
        (format!("#/clerk/{MUENCHEN}/documents/{doc}"), false),
        ("#/operator".to_owned(), false),
        (format!("#/clerk/{FRANKFURT}/citizens/{citizen}"), true),
        (format!("#/clerk/{FRANKFURT}/documents/{doc}"), true),
    ];
    for (path, refused) in paths {
        browser.goto(&format!("{}/console/{path}", host.base)).await.expect("go");
        browser.refresh().await.expect("reload");
        wait_for(&browser, "[data-testid=logout]").await;
        if refused {
            let error = wait_text(&browser, "[data-testid=error]", "404").await;
            assert!(error.contains(&format!("tenant {FRANKFURT} has no")), "{path}: {error}");
        } else {
            eventually(&format!("{path}: sent back to Frankfurt"), || async {
                let hash = browser.execute("return location.hash", vec![]).await.expect("hash");
                let hash = hash.as_str().unwrap_or_default().to_owned();
                if hash.starts_with(&format!("#/clerk/{FRANKFURT}")) { Ok(()) } else { Err(hash) }
            })
            .await;
            wait_for(&browser, "[data-testid=search-name]").await;
        }
        let text = browser.find(Locator::Css("body")).await.expect("body").text().await.expect("text");
        assert!(!text.contains(&family), "{path}: München's citizen {family} shown to Frankfurt's clerk");
        assert!(browser.find(Locator::Css("[data-testid=timeline-item]")).await.is_err(), "{path}: a timeline");
        assert!(browser.find(Locator::Css("[data-testid=document-title]")).await.is_err(), "{path}: a document");
        assert!(browser.find(Locator::Css("[data-testid=flow-table]")).await.is_err(), "{path}: the operator view");
    }
    screenshot(&browser, "console-other-tenant-refused.png").await;
    browser.close().await.expect("close");
    host.stop().await;
}
