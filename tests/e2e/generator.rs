//! The test-data generator (`efile_bridge_tests::generator`): every message it builds passes
//! the host's intake check and maps in the real sandboxed XMeld adapter into exactly the
//! persons it says it put in, names byte for byte; a seed always gives the same bytes.
//!
//! `EFILE_GEN_SEEDS=N` checks seeds 1 to N instead of 1 to 12; `EFILE_GEN_DUMP=DIR` also writes
//! every message checked to `DIR/<seed>-<code>.xml`, for validating them with xmllint (see
//! `docs/src/benchmarks.md`).

use std::collections::BTreeMap;
use std::sync::Arc;

use efile_adapter_xmeld::XmeldAdapter;
use efile_bridge_devkit::{message_info, render_records};
use efile_bridge_model::{Confidentiality, EfileRecord, IdentifierKind};
use efile_bridge_runtime::SandboxLimits;
use efile_bridge_sdk::Adapter as _;
use efile_bridge_tests::generator::{Generated, Generator, Kind, PartialDate};

use crate::support::Host;

/// München (in the default test config) and an AGS no table of the generator knows.
const TENANTS: [&str; 2] = ["09162000", "03241001"];

fn text(g: &Generated) -> &str {
    std::str::from_utf8(&g.xml).unwrap_or_else(|e| panic!("{:?} {}: not UTF-8: {e}", g.kind, g.uuid))
}

fn id_nr(r: &EfileRecord) -> Option<String> {
    r.citizen.identifiers.iter().find(|i| i.kind == IdentifierKind::IdNr).map(|i| i.value.clone())
}

fn metadata<'a>(r: &'a EfileRecord, key: &str) -> Option<&'a str> {
    r.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn every_generated_message_passes_intake_and_maps_person_by_person() {
    let (runtime, adapter) = efile_bridge_tests::load(&efile_bridge_tests::xmeld_wasm());
    let dump = std::env::var_os("EFILE_GEN_DUMP").map(std::path::PathBuf::from);
    let seeds: u64 = std::env::var("EFILE_GEN_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(24);
    let mut checked = 0;
    for seed in 1..=seeds {
        let tenant = TENANTS[seed as usize % TENANTS.len()];
        let mut generator = Generator::new(seed);
        for kind in Kind::ALL {
            let g = generator.message(kind, tenant);
            let case = format!("seed {seed}, {kind:?}");
            if let Some(dir) = &dump {
                std::fs::create_dir_all(dir).expect("dump folder");
                std::fs::write(dir.join(format!("{seed}-{}.xml", kind.code())), &g.xml).expect("dump");
            }

            let envelope = efile_bridge_intake::check(&g.xml, &efile_bridge_intake::Limits::default())
                .unwrap_or_else(|e| panic!("{case}: intake refused it: {e}"));
            assert_eq!(envelope.message_type, kind.code(), "{case}");
            assert_eq!(envelope.message_name, kind.message_name(), "{case}");
            assert_eq!(envelope.message_uuid, g.uuid, "{case}");
            assert_eq!(envelope.created_at, g.created_at, "{case}");
            let (ours, theirs) = if kind.tenant_is_reader() {
                (envelope.reader, envelope.author)
            } else {
                (envelope.author, envelope.reader)
            };
            assert_eq!(ours.as_ref().and_then(|p| p.ags()), Some(tenant), "{case}: the tenant's side");
            assert_eq!(theirs.map(|p| p.kennung), Some(g.counterpart.clone()), "{case}: the other side");

            let info = message_info(&g.xml).unwrap_or_else(|e| panic!("{case}: {e}"));
            let config = BTreeMap::new();
            let records = runtime
                .map(&adapter, Arc::new(config.clone()), &SandboxLimits::default(), &info, text(&g))
                .unwrap_or_else(|e| panic!("{case}: the adapter failed: {e}\n{}", text(&g)));
            let native = XmeldAdapter::map(&info, text(&g), &config).unwrap_or_else(|e| panic!("{case}: native: {e}"));
            assert_eq!(render_records(&records), render_records(&native), "{case}: sandbox and native differ");

            assert_eq!(records.len(), g.persons.len(), "{case}: one record per person");
            for (n, (r, p)) in records.iter().zip(&g.persons).enumerate() {
                let who = format!("{case}, person {}", n + 1);
                assert_eq!(r.citizen.family_name, p.family_name, "{who}");
                assert_eq!(r.citizen.given_names, p.given_names.clone().unwrap_or_default(), "{who}");
                assert_eq!(r.citizen.birth_date, p.birth_date.partial(), "{who}");
                assert_eq!(id_nr(r), p.id_nr, "{who}");
                let restricted = p.auskunftssperre || p.sperrvermerk;
                assert_eq!(r.confidentiality == Confidentiality::High, restricted, "{who}: {:?}", r.confidentiality);
                match kind {
                    Kind::Rueckmeldung0201 | Kind::Anschrift0090 => {
                        assert!(p.ereignis_zeichen.is_some(), "{who}");
                        assert_eq!(r.case_ref, p.ereignis_zeichen, "{who}: the person's own event");
                    }
                    Kind::Meldeschein1704 => assert_eq!(r.case_ref.as_deref(), Some(g.uuid.as_str()), "{who}"),
                    _ => {}
                }
                if matches!(kind, Kind::Rueckmeldung0201 | Kind::Meldeschein1704) {
                    assert_eq!(r.event_date, p.moved_in, "{who}: the move-in date");
                }
            }

            match kind {
                Kind::Meldeschein1704 => {
                    let attached: Vec<_> = records.iter().map(|r| r.attachments.len()).collect();
                    match &g.attachment {
                        Some(pdf) => {
                            assert!(pdf.starts_with(b"%PDF-1.4") && pdf.ends_with(b"%%EOF\n"), "{case}");
                            assert_eq!(records[0].attachments.first().map(|a| &a.data), Some(pdf), "{case}");
                            assert_eq!(attached.iter().sum::<usize>(), 1, "{case}: with the registering person only");
                        }
                        None => assert!(attached.iter().all(|&a| a == 0), "{case}"),
                    }
                }
                Kind::Dokument0006 | Kind::Dokument0064 | Kind::Dokument0065 => {
                    let doc = g.document.as_ref().unwrap_or_else(|| panic!("{case}: no document"));
                    let r = &records[0];
                    assert_eq!(metadata(r, "seriennummer"), doc.seriennummer.as_deref(), "{case}");
                    assert_eq!(metadata(r, "gueltig.bis"), doc.gueltig_bis.as_deref(), "{case}");
                    assert_eq!(metadata(r, "ausgestellt"), doc.ausgestellt.as_deref(), "{case}");
                    assert!(metadata(r, "passart").is_some_and(|p| p.starts_with(&doc.passart)), "{case}");
                    if let Some(secret) = &doc.sperrkennwort {
                        let json = render_records(&records);
                        assert!(text(&g).contains(secret.as_str()), "{case}: the message carries it");
                        assert!(!json.contains(secret.as_str()), "{case}: the revocation password leaked");
                    }
                    assert_eq!(g.document_before.is_some(), kind == Kind::Dokument0064, "{case}");
                    if let Some(before) = &g.document_before {
                        assert_ne!(before, doc, "{case}: a correction changes something");
                        assert_eq!(metadata(r, "vorher.seriennummer"), before.seriennummer.as_deref(), "{case}");
                    }
                }
                _ => {}
            }
            checked += 1;
        }
    }
    assert_eq!(checked, seeds as usize * Kind::ALL.len());
}

#[test]
fn a_seed_gives_the_same_bytes_and_other_seeds_other_messages() {
    for kind in Kind::ALL {
        let a = Generator::new(42).message(kind, "09162000");
        let b = Generator::new(42).message(kind, "09162000");
        assert_eq!(a.xml, b.xml, "{kind:?}: same seed, different bytes");
        assert_eq!(a, b);

        // Not only the UUID changes with the seed: the content does.
        let other = Generator::new(43).message(kind, "09162000");
        assert_ne!(a.uuid, other.uuid, "{kind:?}");
        let without_uuid = |g: &Generated| text(g).replace(&g.uuid, "").replace(&g.created_at, "");
        assert_ne!(without_uuid(&a), without_uuid(&other), "{kind:?}: seeds 42 and 43 differ only in the UUID");

        // Successive messages of one generator are new messages, not copies.
        let mut generator = Generator::new(42);
        let first = generator.message(kind, "09162000");
        let second = generator.message(kind, "09162000");
        assert_eq!(first, a, "{kind:?}: the first message depends on the seed alone");
        assert_ne!(first.uuid, second.uuid, "{kind:?}");
    }
}

#[test]
fn the_generated_corpus_has_the_variety_the_issue_asks_for() {
    let messages: Vec<Generated> = (1..=40u64)
        .flat_map(|seed| {
            let mut generator = Generator::new(seed);
            Kind::ALL.map(|kind| generator.message(kind, "09162000"))
        })
        .collect();
    let all_xml: String = messages.iter().map(text).collect();
    let persons: Vec<_> = messages.iter().flat_map(|g| &g.persons).collect();
    let count = |needle: &str| all_xml.matches(needle).count();

    // Several persons, and 0201 with more than one Umzugsverband.
    for kind in [Kind::Rueckmeldung0201, Kind::Meldeschein1704] {
        let most = messages.iter().filter(|g| g.kind == kind).map(|g| g.persons.len()).max();
        assert!(most.is_some_and(|m| m >= 3), "{kind:?}: at most {most:?} persons");
    }
    for g in messages.iter().filter(|g| g.kind == Kind::Rueckmeldung0201) {
        assert_eq!(text(g).matches("<xmeld:umzugsverband>").count(), g.households, "{}", g.uuid);
        assert_eq!(text(g).matches("<xmeld:betroffener>").count(), g.persons.len(), "{}", g.uuid);
    }
    assert!(messages.iter().any(|g| g.households > 1), "no Sammelnachricht with several Umzugsverbände");

    // Partial and unknown birth dates, in the XML and in the facts.
    let born = |shape: fn(&PartialDate) -> bool| persons.iter().filter(|p| shape(&p.birth_date)).count();
    for (needle, persons_with) in [
        ("<jahrMonat>", born(|d| matches!(d, PartialDate::Month(..)))),
        ("<jahr>", born(|d| matches!(d, PartialDate::Year(_)))),
        ("<unbekannt>true</unbekannt>", born(|d| matches!(d, PartialDate::Unknown))),
    ] {
        assert!(persons_with > 0, "no birth date like {needle}");
        assert!(count(needle) > 0, "{needle}");
    }

    // Rightly missing given names: exactly where the facts say so.
    for g in &messages {
        let blocks = g.persons.iter().filter(|p| p.given_names.is_none()).count();
        assert_eq!(blocks > 0, text(g).contains("<nichtVorhanden>true</nichtVorhanden>"), "{}", g.uuid);
    }
    assert!(persons.iter().any(|p| p.given_names.is_none()), "no block name");

    // Foreign, withheld and unknown earlier addresses; Auskunftssperre; bedingter Sperrvermerk.
    for needle in [
        "<xmeld:anschrift.ausland>",
        "<xmeld:zurechtnichtuebermittelt>true</xmeld:zurechtnichtuebermittelt>",
        "<xmeld:anschrift.unbekannt>",
        "<xmeld:AUSKUNFTSSPERRE>",
        "<xmeld:auskunftssperre>",
        "<xmeld:bedingterSperrvermerk>true</xmeld:bedingterSperrvermerk>",
        "<xmeld:sperrkennwort>",
    ] {
        assert!(count(needle) > 0, "{needle} never generated");
    }
    assert!(persons.iter().any(|p| p.auskunftssperre) && persons.iter().any(|p| p.sperrvermerk));

    // DIN 91379 names: ß, Ø, ł, combining sequences (S + U+0331, r + U+0325), particles.
    let names: Vec<String> =
        persons.iter().map(|p| format!("{} {}", p.family_name, p.given_names.as_deref().unwrap_or_default())).collect();
    for wanted in ['ß', 'Ø', 'ł', '\u{331}', '\u{325}', '’'] {
        assert!(names.iter().any(|n| n.contains(wanted)), "no name with {wanted:?}");
    }
    assert!(
        names.iter().any(|n| ["von ", "zu ", "de ", "van "].iter().any(|p| n.starts_with(p))),
        "no family name with a particle"
    );
    for n in &names {
        assert!(!n.contains('\u{301}'), "{n}: decomposed accents are not DIN 91379 sequences");
    }

    // The limit on persons holds.
    let mut small = Generator::new(5).max_persons(2);
    for _ in 0..20 {
        for kind in Kind::ALL {
            let g = small.message(kind, "09162000");
            assert!((1..=2).contains(&g.persons.len()), "{kind:?}: {} persons", g.persons.len());
        }
    }
}

#[test]
fn an_unknown_tenant_gets_consistent_addresses() {
    let g = Generator::new(3).message(Kind::Anschrift0090, "03241001");
    let xml = text(&g);
    assert!(xml.contains("<kennung>ags:03241001</kennung>"), "{xml}");
    assert!(xml.contains("<code>03241001</code>"), "the tenant's addresses carry its AGS");
    assert!(xml.contains("<wohnort>Gemeinde 03241001</wohnort>"), "{xml}");
}

#[test]
#[should_panic(expected = "not an eight-digit AGS")]
fn a_tenant_that_is_not_an_ags_is_refused() {
    Generator::new(1).message(Kind::Rueckmeldung0201, "ags:09162000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_messages_go_through_the_pipeline_for_a_configured_tenant() {
    // Frankfurt alone: for the messages it authors, the reader must not be a tenant too.
    let host = Host::start_with(|c| c.tenants.retain(|t| t.ags == "06412000")).await;
    let mut generator = Generator::new(11);
    let mut expected = Vec::new();
    for round in 0..2 {
        for kind in Kind::ALL {
            let g = generator.message(kind, "06412000");
            let (status, receipt) = host.post(g.xml.clone()).await;
            assert_eq!(status, 202, "round {round}, {kind:?}: {receipt}");
            assert_eq!(receipt["tenant"], "06412000", "{kind:?}");
            let state = host.wait_processed(&g.uuid).await;
            assert_eq!(state["state"], "processed", "{kind:?}: {state}");
            let documents = state["documents"].as_array().map(Vec::len);
            assert_eq!(documents, Some(g.persons.len()), "{kind:?}: {state}");
            expected.extend(g.persons);
        }
    }
    let citizens = host.citizens("06412000").await;
    let shown: Vec<&str> = citizens.iter().filter_map(|c| c["display_name"].as_str()).collect();
    assert!(!citizens.is_empty() && citizens.len() <= expected.len(), "{} citizens", citizens.len());
    for p in &expected {
        let name = match &p.given_names {
            Some(given) => format!("{}, {given}", p.family_name),
            None => p.family_name.clone(),
        };
        assert!(shown.contains(&name.as_str()), "{name} is not among {shown:?}");
    }
    host.stop().await;
}
