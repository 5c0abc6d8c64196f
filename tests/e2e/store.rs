//! Durability and tamper evidence of the embedded store.

use efile_bridge_store::{Accepted, Direction, NewMessage, SqliteStore, Storage};
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of};

fn new_message(xml: &[u8]) -> NewMessage {
    let env = efile_bridge_intake::check(xml, &efile_bridge_intake::Limits::default()).expect("valid");
    NewMessage {
        tenant: "09162000".into(),
        standard: env.standard,
        version: env.version,
        message_type: env.message_type,
        message_name: env.message_name,
        message_uuid: env.message_uuid,
        created_at: env.created_at,
        direction: Direction::Incoming,
        body: xml.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_accepted_before_a_crash_is_processed_after_the_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let xml = fixture("anmeldung-0201-two-households");
    {
        // Accepted and journaled, then the process "dies" before any worker ran.
        let store = SqliteStore::open(dir.path()).expect("open");
        assert!(matches!(store.accept(new_message(&xml)).expect("accept"), Accepted::New { .. }));
        assert_eq!(store.pending().expect("pending").len(), 1);
    }
    let config = efile_bridge_tests::config(dir.path());
    let host = Host::start_in(dir, config).await;
    let status = host.wait_processed(&uuid_of(&xml)).await;
    assert_eq!(status["state"], "processed", "{status}");
    assert_eq!(status["documents"].as_array().expect("docs").len(), 2);
    assert!(host.pipeline.store().pending().expect("pending").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_changed_payload_and_a_changed_journal_entry() {
    let host = Host::start().await;
    let xml = fixture("anmeldung-0201-single-person");
    assert_eq!(host.post(xml.clone()).await.0, 202);
    host.wait_processed(&uuid_of(&xml)).await;
    let dir = host.stop().await;
    let db = dir.path().join("efile.sqlite3");
    assert_eq!(SqliteStore::open(dir.path()).expect("open").verify().expect("clean store verifies"), 2);

    let c = rusqlite::Connection::open(&db).expect("sqlite");
    // Normal processing can never change the journal: the triggers refuse it.
    let refused = c.execute("UPDATE journal SET meta = 'x' WHERE idx = 1", []);
    assert!(refused.is_err(), "journal update was allowed");
    // Someone with file access changes a stored payload...
    c.execute("UPDATE payloads SET data = CAST(replace(CAST(data AS TEXT), 'Brandl', 'Brandt') AS BLOB)", [])
        .expect("tamper");
    let err = SqliteStore::open(dir.path()).expect("open").verify().expect_err("tampered payload");
    assert!(err.to_string().contains("payload"), "{err}");
    // ...or, dropping the trigger, a journal entry.
    c.execute_batch(
        "UPDATE payloads SET data = CAST(replace(CAST(data AS TEXT), 'Brandt', 'Brandl') AS BLOB);
         DROP TRIGGER journal_no_update; UPDATE journal SET tenant = '06412000' WHERE idx = 1;",
    )
    .expect("tamper");
    let err = SqliteStore::open(dir.path()).expect("open").verify().expect_err("tampered journal");
    assert!(err.to_string().contains("journal entry 1"), "{err}");
}
