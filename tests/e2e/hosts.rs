//! Several hosts on one PostgreSQL database, filing side by side: each batch files under its
//! tenants' locks with provisional journal positions and takes the journal lock only to
//! append (host/store/src/postgres.rs). These tests check what that must never break: every
//! receipt names the entry it got, no provisional position is ever committed, the journal
//! verifies, and a host cannot file under a tenant's lock for another tenant's message.
//!
//! They always run on PostgreSQL (a fresh database on the server in `EFILE_TEST_POSTGRES`),
//! whichever backend the rest of the run uses: the embedded store has one host.

use std::sync::Arc;

use efile_bridge_pipeline::{Caller, Config, Pipeline, Submitted};
use efile_bridge_store::{Accepted, Storage, StoreError};
use efile_bridge_tests::backend::{fresh_postgres_database, query_i64_at};
use efile_bridge_tests::generator::{Generator, Kind};

/// Columns that name journal entries by position, and the tables they are in.
const POSITIONS: &[(&str, &str)] = &[
    ("messages", "journal_idx"),
    ("citizens", "created_idx"),
    ("document_versions", "journal_idx"),
    ("reviews", "opened_idx"),
    ("deliveries", "created_idx"),
    ("deliveries", "outcome_idx"),
];

/// Six tenants (`efile_bridge_tests::spread_tenants`).
fn config(dir: &std::path::Path, storage: &str, host: usize) -> Config {
    let mut config = efile_bridge_tests::config(dir);
    config.storage = Some(storage.to_owned());
    config.host_id = Some(format!("host-{host}"));
    efile_bridge_tests::spread_tenants(&mut config, 6);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_filing_for_many_tenants_side_by_side_leave_one_verifiable_journal() {
    let url = fresh_postgres_database();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let mut hosts = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if i > 0 {
            efile_bridge_tests::share_signing_key(dirs[0].path(), dir.path());
        }
        hosts.push(Arc::new(Pipeline::start(config(dir.path(), &url, i)).expect("start")));
    }
    let tenants: Vec<String> = config(dirs[0].path(), &url, 0).tenants.iter().map(|t| t.ags.clone()).collect();
    let mut generator = Generator::new(7);
    let bodies: Vec<Vec<u8>> =
        (0..240).map(|i| generator.message(Kind::ALL[i % Kind::ALL.len()], &tenants[i % tenants.len()]).xml).collect();
    // Every body is sent twice, to two different hosts at once: the second is a duplicate
    // whichever host wins, and both must name the same entry.
    let mut senders = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        for copy in 0..2 {
            let host = hosts[(i + copy) % hosts.len()].clone();
            let body = body.clone();
            senders.push(tokio::spawn(async move {
                match host.submit(body, &Caller::Admin).await.expect("accepted") {
                    Submitted::Accepted(r) | Submitted::Duplicate(r) => r,
                }
            }));
        }
    }
    // Operator actions and checkpoints meanwhile: exclusive and tip-of-journal batches
    // between the filing ones, on other hosts.
    let operator = {
        let (a, b) = (hosts[1].store(), hosts[2].store());
        tokio::task::spawn_blocking(move || {
            for n in 0..20 {
                a.apply_config(format!("digest-{n}"), serde_json::json!({"n": n})).expect("config");
                b.checkpoint().expect("checkpoint");
            }
        })
    };
    let mut receipts = Vec::new();
    for s in senders {
        receipts.push(s.await.expect("sender"));
    }
    operator.await.expect("operator");
    let mut watches: Vec<_> = hosts.iter().map(|h| h.processed()).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done: u64 = watches.iter_mut().map(|w| *w.borrow_and_update()).sum();
        if done >= bodies.len() as u64 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {done} of {} processed", bodies.len());
        let changed = tokio::time::timeout(std::time::Duration::from_secs(1), watches[0].changed());
        let _ = changed.await;
    }

    let store = hosts[0].store();
    let key = store.public_key();
    for r in &receipts {
        // The receipt given at acceptance names the entry the journal holds for the message.
        let proof = store.receipt(Some(&r.tenant), &r.message_uuid).expect("receipt").expect("journaled");
        assert_eq!(proof.entry.index, r.journal_index, "{}", r.message_uuid);
        assert_eq!(hex::encode(proof.leaf_hash), r.entry_hash, "{}", r.message_uuid);
        assert_eq!(proof.entry.tenant, r.tenant);
        proof.verify(&key, None).expect("the receipt verifies");
    }
    let mut by_uuid: std::collections::HashMap<&str, &efile_bridge_store::Receipt> = Default::default();
    for r in &receipts {
        let first = by_uuid.entry(&r.message_uuid).or_insert(r);
        assert_eq!((first.journal_index, &first.entry_hash), (r.journal_index, &r.entry_hash), "duplicate differs");
    }
    assert_eq!(by_uuid.len(), bodies.len());
    for (table, column) in POSITIONS {
        assert_eq!(
            query_i64_at(&url, &format!("SELECT COUNT(*) FROM {table} WHERE {column} < 0")),
            0,
            "{table}.{column}"
        );
    }
    // Each row names an entry that is about it.
    let unmatched = query_i64_at(
        &url,
        "SELECT COUNT(*) FROM messages m LEFT JOIN journal j ON j.idx = m.journal_idx AND j.hash = m.entry_hash
         AND j.kind = 'message-accepted' AND j.tenant = m.tenant WHERE j.idx IS NULL",
    );
    assert_eq!(unmatched, 0, "messages whose entry is another");
    let unmatched = query_i64_at(
        &url,
        "SELECT COUNT(*) FROM document_versions v JOIN documents d ON d.id = v.document_id
         JOIN messages m ON m.id = d.message_id LEFT JOIN journal j ON j.idx = v.journal_idx
         AND j.kind = 'message-processed' AND j.meta LIKE '%' || d.public_id || '%' WHERE j.idx IS NULL",
    );
    assert_eq!(unmatched, 0, "document versions whose entry is another");
    assert_eq!(query_i64_at(&url, "SELECT COUNT(*) FROM messages WHERE state = 'processed'"), bodies.len() as i64);
    assert_eq!(query_i64_at(&url, "SELECT COUNT(DISTINCT tenant) FROM journal WHERE kind = 'message-processed'"), 6);
    let report = store.verify(&|_| {}).expect("verify");
    assert!(report.entries >= 2 * bodies.len() as u64 + 20, "{report:?}");
    // More than one host appended (not one doing all the work).
    let busy = hosts.iter().filter(|h| h.store().write_lock().batches > 0).count();
    assert_eq!(busy, 3, "every host committed batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_under_one_tenants_lock_cannot_touch_another_tenants_message() {
    let url = fresh_postgres_database();
    let dir = tempfile::tempdir().expect("tmp");
    let store = efile_bridge_store::open(Some(&url), dir.path()).expect("open");
    let xml = efile_bridge_tests::fixture("anmeldung-0201-single-person");
    let Accepted::New { id, .. } = store.accept(crate::store::new_message(&xml)).expect("accept") else {
        panic!("new")
    };
    let adapter = efile_bridge_store::AdapterRef { name: "x".into(), version: "1".into(), hash: "h".into() };
    let e = store.record_processed("06412000", id, adapter, Vec::new()).expect_err("other tenant");
    assert!(matches!(e, StoreError::UnknownMessage(n) if n == id), "{e}");
    let e = store.record_failed("06412000", id, None, "why".into()).expect_err("other tenant");
    assert!(matches!(e, StoreError::UnknownMessage(_)), "{e}");
    assert_eq!(store.pending().expect("pending").len(), 1, "still waiting for its own tenant");
    store.record_failed("09162000", id, None, "no adapter".into()).expect("own tenant");
    assert!(store.pending().expect("pending").is_empty());
    store.verify(&|_| {}).expect("verify");
}
