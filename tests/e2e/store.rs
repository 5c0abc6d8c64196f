//! Durability and tamper evidence of the embedded store: crash recovery, and every kind of
//! change to the stored data is found by `verify` and named.

use efile_bridge_store::{Accepted, Direction, NewMessage, Storage, StoreError};
use efile_bridge_tests::backend::{
    Backend, RawEntry, backend, open_store, portable_sql, raw_execute, raw_journal, raw_query_i64,
};
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

pub(crate) fn new_message(xml: &[u8]) -> NewMessage {
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
        host: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_accepted_before_a_crash_is_processed_after_the_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let xml = fixture("anmeldung-0201-two-households");
    {
        // Accepted and journaled, then the process "dies" before any worker ran.
        let store = open_store(dir.path()).expect("open");
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

/// A data folder with three processed messages and two checkpoints, closed.
async fn populated() -> tempfile::TempDir {
    let host = Host::start().await;
    let xml = fixture("anmeldung-0201-single-person");
    for (n, uuid) in ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"].iter().enumerate()
    {
        let body = if n == 0 { xml.clone() } else { with_uuid(&fixture("anmeldung-0201-family-of-three"), uuid) };
        assert!([200, 202].contains(&host.post(body.clone()).await.0));
        host.wait_processed(&uuid_of(&body)).await;
        host.pipeline.store().checkpoint().expect("checkpoint");
    }
    let third = with_uuid(&xml, "33333333-3333-4333-8333-333333333333");
    assert_eq!(host.post(third).await.0, 202);
    host.wait_processed("33333333-3333-4333-8333-333333333333").await;
    host.pipeline.store().checkpoint().expect("checkpoint");
    let report = crate::support::verify(&host).await.expect("clean store verifies");
    assert_eq!((report.entries, report.checkpoints, report.consistency_steps), (7, 3, 2), "{report:?}");
    host.stop().await
}

/// Applies `sql` to the closed store (as someone with database access could, with the
/// append-only triggers out of the way) and returns what `verify` says, or the error opening it.
pub(crate) fn tamper(dir: &tempfile::TempDir, sql: &str) -> String {
    let without_triggers = match backend() {
        Backend::Sqlite => {
            "DROP TRIGGER IF EXISTS journal_no_update; DROP TRIGGER IF EXISTS journal_no_delete;
             DROP TRIGGER IF EXISTS payloads_only_deleted; DROP TRIGGER IF EXISTS versions_no_update;
             DROP TRIGGER IF EXISTS versions_no_delete; DROP TRIGGER IF EXISTS merkle_no_update;
             DROP TRIGGER IF EXISTS checkpoints_no_delete; DROP TRIGGER IF EXISTS checkpoints_no_update;
             DROP TRIGGER IF EXISTS payloads_no_delete;"
        }
        // A superuser can switch triggers off for the session.
        Backend::Postgres => "SET session_replication_role = replica;",
    };
    raw_execute(dir.path(), &format!("{without_triggers} {}", portable_sql(sql))).expect("tamper");
    match open_store(dir.path()) {
        Err(e) => e.to_string(),
        Ok(store) => match store.verify(&|_| {}) {
            Ok(r) => panic!("tampering with `{sql}` was not detected: {r:?}"),
            Err(StoreError::Verify(why)) => why,
            Err(e) => panic!("unexpected error: {e}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_sql_cannot_change_the_journal() {
    let dir = populated().await;
    for sql in [
        "UPDATE journal SET meta = 'x' WHERE idx = 1",
        "DELETE FROM journal WHERE idx = 6",
        "UPDATE payloads SET data = X'00'",
        "DELETE FROM payloads",
        "UPDATE document_versions SET content_digest = X'00'",
        "DELETE FROM merkle_nodes",
        "DELETE FROM checkpoints",
    ] {
        assert!(raw_execute(dir.path(), &portable_sql(sql)).is_err(), "`{sql}` was allowed");
    }
    if backend() == Backend::Postgres {
        for table in ["journal", "payloads", "document_versions", "merkle_nodes", "checkpoints"] {
            let sql = format!("TRUNCATE {table} CASCADE");
            assert!(raw_execute(dir.path(), &sql).is_err(), "`{sql}` was allowed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_payload_is_named() {
    let dir = populated().await;
    let why = tamper(
        &dir,
        match backend() {
            Backend::Sqlite => {
                "UPDATE payloads SET data = CAST(replace(CAST(data AS TEXT), 'Brandl', 'Brandt') AS BLOB)"
            }
            Backend::Postgres => {
                "UPDATE payloads SET data = convert_to(replace(convert_from(data, 'UTF8'), 'Brandl', 'Brandt'), 'UTF8')"
            }
        },
    );
    assert!(why.contains("payload") && why.contains("does not match its digest"), "{why}");
    assert!(why.contains("journal entry"), "the place is not named: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_record_version_is_named() {
    let dir = populated().await;
    let why = tamper(
        &dir,
        "UPDATE document_versions SET content_digest = (SELECT content_digest FROM document_versions WHERE id = 2) WHERE id = 1",
    );
    assert!(why.contains("record version") && why.contains("v1"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_leaf_is_named() {
    let dir = populated().await;
    let why = tamper(&dir, "UPDATE journal SET tenant = '06412000' WHERE idx = 3");
    assert!(why.contains("journal entry 3"), "{why}");
    // Recomputing the stored leaf hash too does not help: the tree and the signed root differ.
    let dir = populated().await;
    // Entry 3 is the acceptance of the second message.
    let RawEntry { kind, tenant, at, digest, meta, .. } = raw_journal(dir.path()).swap_remove(3);
    assert!(meta.contains("incoming"), "{meta}");
    let forged = efile_bridge_store::journal::Entry {
        index: 3,
        kind: efile_bridge_store::journal::EntryKind::parse(&kind).expect("kind"),
        tenant,
        at,
        payload_digest: digest.try_into().expect("32"),
        meta: meta.replace("incoming", "outgoing-copy"),
    };
    let sql = format!(
        "UPDATE journal SET meta = '{}', hash = X'{}' WHERE idx = 3",
        forged.meta.replace('\'', "''"),
        hex::encode(forged.leaf_hash())
    );
    let why = tamper(&dir, &sql);
    assert!(why.contains("merkle node") || why.contains("checkpoint"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_journal_is_named() {
    let dir = populated().await;
    let why = tamper(&dir, "DELETE FROM journal WHERE idx = 6");
    assert!(why.contains("covers more entries than the journal holds"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_entry_is_named() {
    let dir = populated().await;
    let why = tamper(&dir, "DELETE FROM journal WHERE idx = 2");
    assert!(why.contains("journal entry 2 is missing"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_entries_are_named() {
    let dir = populated().await;
    let why = tamper(
        &dir,
        "UPDATE journal SET idx = -1 WHERE idx = 1; UPDATE journal SET idx = 1 WHERE idx = 2;
         UPDATE journal SET idx = 2 WHERE idx = -1;",
    );
    assert!(why.contains("journal entry 1"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_record_version_is_named() {
    let dir = populated().await;
    let why = tamper(&dir, "DELETE FROM document_versions WHERE id = 1");
    assert!(why.contains("record version") && why.contains("is missing from the store"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_payload_row_is_named() {
    let dir = populated().await;
    let why = tamper(&dir, "DELETE FROM payloads WHERE digest = (SELECT payload_digest FROM messages WHERE id = 1)");
    assert!(why.contains("payload of journal entry") && why.contains("missing"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_cleared_without_a_deletion_entry_are_named() {
    let dir = populated().await;
    let why = tamper(
        &dir,
        "UPDATE payloads SET data = NULL, deleted_idx = 5
         WHERE digest = (SELECT payload_digest FROM messages WHERE id = 1)",
    );
    assert!(why.contains("without a deletion entry"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_checkpoint_is_refused() {
    let dir = populated().await;
    let why = tamper(
        &dir,
        "UPDATE checkpoints SET root = X'0000000000000000000000000000000000000000000000000000000000000000' WHERE tree_size = (SELECT MIN(tree_size) FROM checkpoints)",
    );
    assert!(why.contains("signature") && why.contains("does not verify"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schema_is_migrated_and_a_newer_one_refused() {
    let dir = populated().await;
    if backend() == Backend::Postgres {
        assert_eq!(raw_query_i64(dir.path(), "SELECT MAX(version) FROM schema_migrations"), 2);
        // Back to what the release before wrote (schema version 1): migration 2 undone.
        raw_execute(
            dir.path(),
            "DROP INDEX messages_journal_idx, citizens_created_idx, versions_journal_idx, reviews_opened_idx,
                 deliveries_created_idx, deliveries_outcome_idx;
             DROP TRIGGER versions_no_delete ON document_versions;
             DROP TRIGGER versions_immutable ON document_versions;
             CREATE TRIGGER versions_immutable BEFORE UPDATE OR DELETE ON document_versions
                 FOR EACH ROW EXECUTE FUNCTION efile_refuse('document versions are immutable');
             DROP TRIGGER reviews_decided_once ON reviews;
             CREATE TRIGGER reviews_decided_once BEFORE UPDATE ON reviews FOR EACH ROW
                 WHEN (OLD.decided_idx IS NOT NULL OR NEW.content_digest IS DISTINCT FROM OLD.content_digest
                       OR NEW.opened_idx IS DISTINCT FROM OLD.opened_idx)
                 EXECUTE FUNCTION efile_refuse('a review item is decided once');
             DELETE FROM schema_migrations WHERE version = 2;",
        )
        .expect("downgrade");
        let config = efile_bridge_tests::config(dir.path());
        let host = Host::start_in(dir, config).await;
        assert_eq!(raw_query_i64(host.dir.path(), "SELECT MAX(version) FROM schema_migrations"), 2);
        // The migrated database files new messages (provisional positions rewritten under
        // the new triggers) and verifies.
        let body = with_uuid(&fixture("anmeldung-0201-family-of-three"), "44444444-4444-4444-8444-444444444444");
        assert_eq!(host.post(body).await.0, 202);
        host.wait_processed("44444444-4444-4444-8444-444444444444").await;
        host.pipeline.store().verify(&|_| {}).expect("verifies after the migration");
        let dir = host.stop().await;
        raw_execute(dir.path(), "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')").expect("insert");
        let e = open_store(dir.path()).expect_err("a newer schema is refused");
        assert!(e.to_string().contains("schema is at version 99, newer than this efile-bridge understands (2)"), "{e}");
        return;
    }
    // Turn it back into what version 1 wrote: one citizen per identifier, no review items.
    let c = rusqlite::Connection::open(dir.path().join("efile.sqlite3")).expect("sqlite");
    c.execute_batch(
        "DROP TABLE reviews;
             ALTER TABLE citizen_identifiers RENAME TO ci2;
             CREATE TABLE citizen_identifiers (tenant TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
                 citizen_id INTEGER NOT NULL REFERENCES citizens (id), PRIMARY KEY (tenant, kind, value));
             INSERT INTO citizen_identifiers SELECT * FROM ci2; DROP TABLE ci2;
             PRAGMA user_version = 1;",
    )
    .expect("downgrade");
    let before: i64 = c.query_row("SELECT COUNT(*) FROM citizen_identifiers", [], |r| r.get(0)).expect("count");
    drop(c);
    let store = open_store(dir.path()).expect("a version 1 store opens");
    store.verify(&|_| {}).expect("and verifies");
    drop(store);
    let c = rusqlite::Connection::open(dir.path().join("efile.sqlite3")).expect("sqlite");
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    let key: i64 = c
        .query_row("SELECT COUNT(*) FROM pragma_table_info('citizen_identifiers') WHERE pk > 0", [], |r| r.get(0))
        .expect("pk");
    let after: i64 = c.query_row("SELECT COUNT(*) FROM citizen_identifiers", [], |r| r.get(0)).expect("count");
    assert_eq!((version, key, after), (3, 4, before), "identifiers kept, keyed by citizen too");
}
