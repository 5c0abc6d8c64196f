//! Swapping a municipality's adapter: signed packages, install checks, activation while
//! messages flow, rollback, every action journaled with who did it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use efile_bridge_package::{Manifest, PublisherKey, Signature};
use efile_bridge_pipeline::adapters::{InstallError, install};
use efile_bridge_pipeline::config::TrustedPublisher;
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

const TENANT: &str = "09162000";

fn package(wasm: &std::path::Path) -> (Manifest, Vec<u8>) {
    let component = std::fs::read(wasm).expect("component");
    let (_, adapter) = efile_bridge_tests::load(wasm);
    let manifest = Manifest::new(adapter.info(), "KRZ Test", &component);
    let bytes = efile_bridge_package::pack(&manifest, &component).expect("pack");
    (manifest, bytes)
}

async fn start(key: &PublisherKey) -> Host {
    let public = key.public_key();
    Host::start_with(move |c| {
        c.tenants.retain(|t| t.ags == TENANT);
        c.tenants[0].config = BTreeMap::from([("aktenplan".to_owned(), "99.1".to_owned())]);
        c.trusted_publishers.push(TrustedPublisher { name: "KRZ Test".into(), public_key: public });
    })
    .await
}

fn do_install(host: &Host, bytes: &[u8], sig: Option<&Signature>) -> Result<String, InstallError> {
    let config = host.pipeline.config();
    let store = host.pipeline.store();
    install(&config, &host.pipeline.runtime(), store.as_ref(), bytes, sig, "test:ops-1")
        .map(|a| format!("{}@{}", a.name, a.version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_foreign_or_incompatible_packages_are_refused_at_install() {
    let key = PublisherKey::generate().expect("key");
    let host = start(&key).await;
    let (manifest, bytes) = package(&efile_bridge_tests::einheitsakte_wasm());
    let err = do_install(&host, &bytes, None).expect_err("unsigned").to_string();
    assert!(err.contains("not signed"), "{err}");
    let stranger = PublisherKey::generate().expect("key");
    let err = do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &stranger))).expect_err("foreign");
    assert!(err.to_string().contains("is not a trusted publisher"), "{err}");
    let mut future = manifest.clone();
    future.world = "efile-bridge:adapter@9.0.0".into();
    let component = std::fs::read(efile_bridge_tests::einheitsakte_wasm()).expect("component");
    let other = efile_bridge_package::pack(&future, &component).expect("pack");
    let err = do_install(&host, &other, Some(&efile_bridge_package::sign(&other, &key))).expect_err("world");
    assert!(err.to_string().contains("targets `efile-bridge:adapter@9.0.0`"), "{err}");
    let mut lying = manifest;
    lying.name = "xmeld".into();
    let other = efile_bridge_package::pack(&lying, &component).expect("pack");
    let err = do_install(&host, &other, Some(&efile_bridge_package::sign(&other, &key))).expect_err("lying");
    assert!(err.to_string().contains("the component says einheitsakte@"), "{err}");
    let store = host.pipeline.store();
    assert!(store.installed_adapters().expect("list").is_empty(), "nothing refused was installed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_is_swapped_while_messages_flow_and_rolled_back() {
    let key = PublisherKey::generate().expect("key");
    let host = Arc::new(start(&key).await);
    let (_, bytes) = package(&efile_bridge_tests::einheitsakte_wasm());
    let installed = do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &key))).expect("installs");
    let (name, version) = installed.split_once('@').expect("name@version");
    assert_eq!(do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &key))).expect("again"), installed);

    // Messages flow from a sender task while the switch happens.
    let template = fixture("anmeldung-0201-single-person");
    let bodies: Vec<Vec<u8>> =
        (0..60).map(|i| with_uuid(&template, &format!("e6000000-0000-4000-8000-{i:012}"))).collect();
    let sender = {
        let (host, bodies) = (host.clone(), bodies.clone());
        tokio::spawn(async move {
            for b in bodies {
                let (code, body) = host.post(b).await;
                assert_eq!(code, 202, "{body}");
            }
        })
    };
    // Switch once the first messages were accepted.
    let first = uuid_of(&bodies[5]);
    while host.get(&format!("/v1/messages/{first}")).await.0 == 404 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    host.wait_processed(&first).await;
    let store = host.pipeline.store();
    store.activate_adapter(TENANT, "*", name, version, "test:ops-1").expect("activate");
    host.pipeline.refresh_adapters().await.expect("applied");
    let after = with_uuid(&template, "e6000000-0000-4000-8000-100000000000");
    sender.await.expect("sender");
    let (code, _) = host.post(after.clone()).await;
    assert_eq!(code, 202);

    let mut used = HashSet::new();
    for b in bodies.iter().chain([&after]) {
        let status = host.wait_processed(&uuid_of(b)).await;
        assert_eq!(status["state"], "processed", "no message lost: {status}");
        let adapter = status["adapter"]["name"].as_str().expect("adapter").to_owned();
        // All records of a message come from the one adapter that mapped it.
        let plan: HashSet<&str> =
            status["documents"].as_array().expect("docs").iter().filter_map(|d| d["document_type"].as_str()).collect();
        assert!(!plan.is_empty(), "{status}");
        used.insert(adapter);
    }
    assert_eq!(used, HashSet::from(["xmeld".to_owned(), "einheitsakte".to_owned()]), "both ran");
    let status = host.wait_processed(&uuid_of(&after)).await;
    assert_eq!(status["adapter"]["name"], "einheitsakte", "accepted after the switch: the new adapter");
    assert_eq!(status["adapter"]["version"], version);

    // Rollback: the config's adapter again.
    let back = store.rollback_adapter(TENANT, "test:ops-2").expect("rollback");
    assert_eq!((back.name, back.action.as_str()), (None, "rollback"));
    host.pipeline.refresh_adapters().await.expect("applied");
    let again = with_uuid(&template, "e6000000-0000-4000-8000-200000000000");
    assert_eq!(host.post(again.clone()).await.0, 202);
    assert_eq!(host.wait_processed(&uuid_of(&again)).await["adapter"]["name"], "xmeld");
    let err = store.rollback_adapter(TENANT, "test:ops-2").expect_err("nothing left to undo");
    assert!(err.to_string().contains("no earlier adapter"), "{err}");

    // A switch made by another process (the CLI beside `serve`) is picked up by the watcher.
    store.activate_adapter(TENANT, "0201", name, version, "cli:ops-3").expect("activate");
    let mut picked = false;
    for i in 0..50 {
        let b = with_uuid(&template, &format!("e6000000-0000-4000-8000-3{i:011}"));
        assert_eq!(host.post(b.clone()).await.0, 202);
        if host.wait_processed(&uuid_of(&b)).await["adapter"]["name"] == "einheitsakte" {
            picked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(picked, "the registry watcher applied the switch");
    let err = store.remove_adapter(name, version, "test:ops-1").expect_err("in use");
    assert!(err.to_string().contains("is active for tenant(s) 09162000"), "{err}");

    let host = Arc::try_unwrap(host).unwrap_or_else(|_| panic!("host still shared"));
    let dir = host.stop().await;
    let entries: Vec<(String, String)> = efile_bridge_tests::backend::raw_journal(dir.path())
        .into_iter()
        .filter(|e| e.kind.starts_with("adapter-"))
        .map(|e| (e.meta_str("by"), e.kind))
        .map(|(by, kind)| (kind, by))
        .collect();
    let expected = [
        ("adapter-installed", "test:ops-1"),
        ("adapter-activated", "test:ops-1"),
        ("adapter-rolled-back", "test:ops-2"),
        ("adapter-activated", "cli:ops-3"),
    ];
    assert_eq!(entries, expected.map(|(k, b)| (k.to_owned(), b.to_owned())), "who did what");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_installs_switches_and_rolls_back() {
    let key = PublisherKey::generate().expect("key");
    let host = start(&key).await;
    let (manifest, bytes) = package(&efile_bridge_tests::einheitsakte_wasm());
    let sig = serde_json::to_string(&efile_bridge_package::sign(&bytes, &key)).expect("sig");
    let post = |path: &str| host.client.post(format!("{}{path}", host.base));
    let resp = post("/v1/admin/adapters").body(bytes.clone()).send().await.expect("post");
    assert_eq!(resp.status().as_u16(), 422, "unsigned: {}", resp.text().await.unwrap_or_default());
    let resp = post("/v1/admin/adapters")
        .header("efile-signature", &sig)
        .header("efile-operator", "ops-api")
        .body(bytes)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 201);
    let adapter = format!("{}@{}", manifest.name, manifest.version);
    let activate = format!("/v1/admin/tenants/{TENANT}/adapters/activate");
    let resp =
        post(&activate).json(&serde_json::json!({"adapter": adapter, "type": "0090"})).send().await.expect("post");
    assert_eq!(resp.status().as_u16(), 422, "einheitsakte does not handle 0090");
    let resp = post(&activate).json(&serde_json::json!({"adapter": adapter, "operator": "ops-api"})).send().await;
    let switch: serde_json::Value = resp.expect("post").json().await.expect("json");
    assert_eq!(switch["by"], "open-mode operator:ops-api", "{switch}");
    // Applied before the answer: the next message is mapped by the new adapter.
    let body = with_uuid(&fixture("anmeldung-0201-single-person"), "e7000000-0000-4000-8000-000000000001");
    assert_eq!(host.post(body.clone()).await.0, 202);
    assert_eq!(host.wait_processed(&uuid_of(&body)).await["adapter"]["name"], "einheitsakte");
    let (_, listed) = host.get("/v1/admin/adapters").await;
    assert_eq!(listed["installed"][0]["publisher"], "KRZ Test", "{listed}");
    assert_eq!(listed["switches"].as_array().map(Vec::len), Some(1), "{listed}");
    let resp = post(&format!("/v1/admin/tenants/{TENANT}/adapters/rollback")).send().await.expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    let body = with_uuid(&fixture("anmeldung-0201-single-person"), "e7000000-0000-4000-8000-000000000002");
    assert_eq!(host.post(body.clone()).await.0, 202);
    assert_eq!(host.wait_processed(&uuid_of(&body)).await["adapter"]["name"], "xmeld");

    // Which adapter a tenant runs cannot be changed behind the journal's back.
    crate::support::verify(&host).await.expect("verifies");
    let dir = host.stop().await;
    let why = crate::store::tamper(
        &dir,
        &format!(
            "INSERT INTO activations (tenant, scope, name, version, action, by, idx)
         VALUES ('{TENANT}', '*', 'einheitsakte', '{}', 'activate', 'nobody', 1)",
            manifest.version
        ),
    );
    assert!(why.contains("adapter switch of tenant 09162000 (*) differs from journal entry 1"), "{why}");
    // Removing every switch (the forged one too) leaves the journaled ones missing.
    let why = crate::store::tamper(&dir, "DELETE FROM activations");
    assert!(why.contains("adapter switch recorded by journal entry") && why.contains("missing"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_run_compares_a_candidate_with_what_was_filed_and_stores_nothing() {
    let key = PublisherKey::generate().expect("key");
    let host = start(&key).await;
    for case in ["anmeldung-0201-single-person", "anmeldung-0201-family-of-three", "invalid-idnr-0201"] {
        let body = fixture(case);
        assert_eq!(host.post(body.clone()).await.0, 202);
        host.wait_processed(&uuid_of(&body)).await;
    }
    for wasm in [efile_bridge_tests::xmeld_wasm(), efile_bridge_tests::einheitsakte_wasm()] {
        let (_, bytes) = package(&wasm);
        do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &key))).expect("installs");
    }
    let store = host.pipeline.store();
    let entries_before = crate::support::verify(&host).await.expect("verifies").entries;
    let config = host.pipeline.config();
    let run = |name: &str| {
        let installed = store.installed_adapters().expect("list");
        let version = installed.iter().find(|a| a.name == name).map(|a| a.version.clone()).expect("installed");
        efile_bridge_pipeline::shadow::run(
            &config,
            &host.pipeline.runtime(),
            store.as_ref(),
            TENANT,
            name,
            &version,
            10,
            None,
        )
        .expect("shadow")
    };
    // The same adapter: every filed message identical, the failed one still fails.
    let same = run("xmeld");
    let outcomes: Vec<&str> = same.entries.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, ["identical", "identical", "both-failed"], "{same:#?}");
    assert!(same.entries[2].error.as_deref().is_some_and(|e| e.contains("idNr")), "{same:#?}");
    // A different adapter: what would change in the files, field by field.
    let other = run("einheitsakte");
    let differs = other.entries.iter().find(|e| e.outcome == "differs").expect("a difference");
    assert!(differs.changes.iter().any(|c| c.path.ends_with("file_plan_code")), "{differs:#?}");
    let plan = differs.changes.iter().find(|c| c.path == "[0].file_plan_code").expect("plan code change");
    assert_eq!(plan.candidate.as_deref(), Some("\"99.1\""), "{plan:?}");
    // Nothing was stored: no records, no journal entries.
    assert_eq!(crate::support::verify(&host).await.expect("verifies").entries, entries_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_keeps_old_versions_and_the_same_adapter_gives_byte_identical_records() {
    let key = PublisherKey::generate().expect("key");
    let host = start(&key).await;
    let mut uuids = Vec::new();
    for (i, case) in ["anmeldung-0201-single-person", "anmeldung-0201-family-of-three"].iter().enumerate() {
        let body = with_uuid(&fixture(case), &format!("e8000000-0000-4000-8000-00000000000{i}"));
        assert_eq!(host.post(body.clone()).await.0, 202);
        host.wait_processed(&uuid_of(&body)).await;
        uuids.push(uuid_of(&body));
    }
    let mut versions = BTreeMap::new();
    for wasm in [efile_bridge_tests::xmeld_wasm(), efile_bridge_tests::einheitsakte_wasm()] {
        let (m, bytes) = package(&wasm);
        do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &key))).expect("installs");
        versions.insert(m.name.clone(), m.version.clone());
    }
    let store = host.pipeline.store();
    let config = host.pipeline.config();
    let runtime = host.pipeline.runtime();
    let replay = |name: &str, dry_run: bool| {
        let spec = efile_bridge_pipeline::replay::ReplaySpec {
            messages: efile_bridge_store::MessageQuery::all(TENANT),
            name: name.into(),
            version: versions[name].clone(),
            dry_run,
            by: "test:replay".into(),
        };
        efile_bridge_pipeline::replay::run(&config, &runtime, store.as_ref(), &spec, &|_| {}).expect("replay")
    };
    let journal = || store.checkpoint().expect("checkpoint").map_or(0, |c| c.tree_size);
    let before = journal();
    // The adapter that filed them, same component: byte-identical, nothing written.
    let same = replay("xmeld", false);
    assert_eq!((same.messages, same.new_versions, same.new_documents), (2, 0, 0), "{same:?}");
    assert_eq!(same.unchanged, 4, "every record byte-identical: {same:?}");
    assert_eq!(journal(), before);
    // A time range selects by arrival: nothing before 2000 or after 2999, everything since 2000.
    for (from, to, expected) in [(None, Some("2000"), 0), (Some("2999"), None, 0), (Some("2000-01-01"), None, 2)] {
        let spec = efile_bridge_pipeline::replay::ReplaySpec {
            messages: efile_bridge_store::MessageQuery {
                from_time: from.map(str::to_owned),
                to_time: to.map(str::to_owned),
                ..efile_bridge_store::MessageQuery::all(TENANT)
            },
            name: "xmeld".into(),
            version: versions["xmeld"].clone(),
            dry_run: true,
            by: "test:replay".into(),
        };
        let stats =
            efile_bridge_pipeline::replay::run(&config, &runtime, store.as_ref(), &spec, &|_| {}).expect("replay");
        assert_eq!(stats.messages, expected, "from {from:?} to {to:?}");
    }
    // Another adapter, dry run: reports, writes nothing.
    let dry = replay("einheitsakte", true);
    assert!(dry.new_versions > 0 && !dry.differences.is_empty(), "{dry:?}");
    assert_eq!(journal(), before, "a dry run writes nothing");
    // For real: new versions linked to the old ones, which stay.
    let real = replay("einheitsakte", false);
    assert_eq!(real.new_versions, dry.new_versions, "the dry run said what happens: {real:?}");
    let status = host.wait_processed(&uuids[0]).await;
    assert_eq!(status["documents"][0]["version"], 2, "{status}");
    // Again with the same adapter: deterministic, so nothing new.
    let again = replay("einheitsakte", false);
    assert_eq!((again.new_versions, again.new_documents), (0, 0), "same input, same hash, same bytes: {again:?}");
    let report = crate::support::verify(&host).await.expect("verifies with the new versions");
    assert_eq!(report.record_versions, 4 + real.new_versions + real.new_documents, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_could_not_be_mapped_is_mapped_by_a_replay_with_a_fixed_adapter() {
    let key = PublisherKey::generate().expect("key");
    let host = start(&key).await;
    let body = fixture("invalid-idnr-0201");
    assert_eq!(host.post(body.clone()).await.0, 202);
    let uuid = uuid_of(&body);
    assert_eq!(host.wait_processed(&uuid).await["state"], "failed");
    // The "fixed" adapter here: einheitsakte, which does not check the idNr.
    let (m, bytes) = package(&efile_bridge_tests::einheitsakte_wasm());
    do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &key))).expect("installs");
    let spec = efile_bridge_pipeline::replay::ReplaySpec {
        messages: efile_bridge_store::MessageQuery {
            message_type: Some("0201".into()),
            ..efile_bridge_store::MessageQuery::all(TENANT)
        },
        name: m.name.clone(),
        version: m.version.clone(),
        dry_run: false,
        by: "test:replay".into(),
    };
    let (config, runtime, store) = (host.pipeline.config(), host.pipeline.runtime(), host.pipeline.store());
    let stats = efile_bridge_pipeline::replay::run(&config, &runtime, store.as_ref(), &spec, &|_| {}).expect("replay");
    assert_eq!((stats.messages, stats.failed, stats.new_documents), (1, 0, 1), "{stats:?}");
    let status = host.wait_processed(&uuid).await;
    assert_eq!(
        (status["state"].as_str(), status["adapter"]["name"].as_str()),
        (Some("processed"), Some("einheitsakte"))
    );
    assert_eq!(status["documents"].as_array().map(Vec::len), Some(1), "{status}");
    crate::support::verify(&host).await.expect("verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_shadow_run_compares_every_new_message_and_files_only_the_active_result() {
    let key = PublisherKey::generate().expect("key");
    let host = start(&key).await;
    let (m, bytes) = package(&efile_bridge_tests::einheitsakte_wasm());
    do_install(&host, &bytes, Some(&efile_bridge_package::sign(&bytes, &key))).expect("installs");
    let store = host.pipeline.store();
    store.start_shadow(TENANT, &m.name, &m.version, "test:ops").expect("start");
    host.pipeline.refresh_adapters().await.expect("applied");
    let template = fixture("anmeldung-0201-single-person");
    let mut uuids = Vec::new();
    for i in 0..3 {
        let body = with_uuid(&template, &format!("e9100000-0000-4000-8000-00000000000{i}"));
        assert_eq!(host.post(body.clone()).await.0, 202);
        let status = host.wait_processed(&uuid_of(&body)).await;
        assert_eq!(status["adapter"]["name"], "xmeld", "the active adapter files: {status}");
        uuids.push(uuid_of(&body));
    }
    let results = store.shadow_results(TENANT, 10).expect("results");
    assert_eq!(results.len(), 3, "{results:?}");
    for r in &results {
        assert_eq!(r["outcome"], "differs", "{r}");
        assert_eq!(r["candidate"], format!("{}@{}", m.name, m.version));
        assert!(uuids.iter().any(|u| r["message_uuid"] == u.as_str()), "{r}");
        let plan = r["changes"].as_array().expect("changes").iter().find(|c| c["path"] == "[0].file_plan_code");
        assert_eq!(plan.map(|c| c["candidate"].clone()), Some(serde_json::json!("\"99.1\"")), "{r}");
    }
    // Only the active adapter's records were filed.
    let citizens = host.citizens(TENANT).await;
    let (_, file) =
        host.get(&format!("/v1/tenants/{TENANT}/citizens/{}", citizens[0]["citizen_id"].as_str().expect("id"))).await;
    assert!(!file.to_string().contains("\"99.1\""), "nothing of the candidate is filed: {file}");
    store.stop_shadow(TENANT, "test:ops").expect("stop");
    host.pipeline.refresh_adapters().await.expect("applied");
    let body = with_uuid(&template, "e9100000-0000-4000-8000-000000000009");
    assert_eq!(host.post(body.clone()).await.0, 202);
    host.wait_processed(&uuid_of(&body)).await;
    assert_eq!(store.shadow_results(TENANT, 10).expect("results").len(), 3, "stopped");
}
