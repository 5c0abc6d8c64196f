//! Golden fixtures: the sandboxed component and the same code compiled natively must both
//! produce exactly the checked-in expectation.

use std::sync::Arc;

use efile_adapter_xmeld::XmeldAdapter;
use efile_bridge_devkit::{FixtureOutcome, fixture_cases, fixture_config, message_info, render_records};
use efile_bridge_runtime::{SandboxError, SandboxLimits};
use efile_bridge_sdk::Adapter as _;

#[test]
fn every_fixture_matches_in_the_sandbox_and_natively() {
    let dir = efile_bridge_tests::root().join("plugins/adapters/xmeld");
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::xmeld_wasm());
    let cases = fixture_cases(&dir).expect("fixtures");
    assert!(cases.len() >= 9, "fixtures went missing: {}", cases.len());
    let mut errors = 0;
    for case in &cases {
        let xml = std::fs::read_to_string(case.join("input.xml")).expect("input");
        let info = message_info(xml.as_bytes()).expect("envelope");
        let config = fixture_config(case).expect("config");
        let native = match XmeldAdapter::map(&info, &xml, &config) {
            Ok(records) => render_records(&records),
            Err(e) => format!("{e}\n"),
        };
        let sandboxed = match runtime.map(&adapter, Arc::new(config), &SandboxLimits::default(), &info, &xml) {
            Ok(records) => render_records(&records),
            Err(SandboxError::Mapping(e)) => format!("{e}\n"),
            Err(other) => panic!("{}: sandbox failed: {other}", case.display()),
        };
        assert_eq!(native, sandboxed, "{}: native and sandbox differ", case.display());
        let expected = std::fs::read_to_string(case.join("expected.json"))
            .or_else(|_| {
                errors += 1;
                std::fs::read_to_string(case.join("expected.err"))
            })
            .expect("an expectation");
        assert_eq!(sandboxed, expected, "{}: output differs from the expectation", case.display());
    }
    assert!(errors >= 2, "the negative fixtures are gone");
    // The devkit runner (what `efile-bridge plugin test` uses) agrees.
    let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, &dir, false).expect("run");
    for r in results {
        assert_eq!(r.outcome, FixtureOutcome::Passed, "{}", r.case);
    }
}

#[test]
fn the_adapter_describes_what_it_handles() {
    let (_runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::xmeld_wasm());
    let info = adapter.info();
    assert_eq!(info.name, "xmeld");
    assert!(info.handles.iter().any(|k| k.message_type == "0201" && k.version == "25.11a"), "{:?}", info.handles);
    assert!(info.config_keys.iter().any(|k| k.name == "aktenplan.meldewesen"));
    assert_eq!(*info, XmeldAdapter::describe());
}

#[test]
fn a_changed_fixture_is_reported_not_blessed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let case = tmp.path().join("tests/fixtures/one");
    std::fs::create_dir_all(&case).expect("mkdir");
    std::fs::write(case.join("input.xml"), efile_bridge_tests::fixture("anmeldung-0201-single-person")).expect("write");
    let expected = std::fs::read_to_string(
        efile_bridge_tests::xmeld_fixtures().join("anmeldung-0201-single-person/expected.json"),
    )
    .expect("expected")
    .replace("12.20.10", "99.99.99");
    std::fs::write(case.join("expected.json"), expected).expect("write");
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::xmeld_wasm());
    let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, tmp.path(), false).expect("run");
    match &results[0].outcome {
        FixtureOutcome::Failed(why) => assert!(why.contains("99.99.99"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, tmp.path(), true).expect("bless");
    assert_eq!(results[0].outcome, FixtureOutcome::Blessed);
    let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, tmp.path(), false).expect("run");
    assert_eq!(results[0].outcome, FixtureOutcome::Passed);
}

#[test]
fn the_published_record_schema_matches_the_types() {
    let path = efile_bridge_tests::root().join("schemas/efile-record.schema.json");
    let generated = format!("{}\n", serde_json::to_string_pretty(&efile_bridge_model::record_schema()).expect("json"));
    if std::env::var("BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write");
    }
    let published = std::fs::read_to_string(&path).expect("schemas/efile-record.schema.json (BLESS=1 writes it)");
    assert_eq!(published, generated, "the record types changed: review and run with BLESS=1");
}

#[test]
fn every_expected_json_is_a_list_of_records() {
    for case in fixture_cases(&efile_bridge_tests::root().join("plugins/adapters/xmeld")).expect("fixtures") {
        let Ok(text) = std::fs::read_to_string(case.join("expected.json")) else { continue };
        let records: Vec<efile_bridge_model::EfileRecord> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        assert_eq!(render_records(&records), text, "{}: does not round-trip", case.display());
        for a in records.iter().flat_map(|r| &r.attachments) {
            if a.media_type == "application/pdf" {
                assert!(a.data.starts_with(b"%PDF-"), "{}: {} is not a PDF", case.display(), a.name);
            }
        }
    }
}

#[test]
fn every_bundled_adapter_passes_its_fixtures() {
    let adapters = efile_bridge_tests::root().join("plugins/adapters");
    let mut dirs: Vec<_> =
        std::fs::read_dir(&adapters).expect("adapters").filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    assert!(dirs.len() >= 2, "{dirs:?}");
    for dir in dirs {
        let rel = dir.strip_prefix(efile_bridge_tests::root()).expect("inside").to_string_lossy().into_owned();
        let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::adapter_wasm(&rel));
        let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, &dir, false).expect("run");
        assert!(!results.is_empty(), "{rel} has no fixtures");
        for r in results {
            assert_eq!(r.outcome, FixtureOutcome::Passed, "{rel}: {}", r.case);
        }
    }
}
