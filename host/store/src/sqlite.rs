//! The embedded SQLite backend: one database in WAL mode under the data directory. The
//! writer's transactions are `BEGIN IMMEDIATE` (the database's write lock, so a CLI command
//! beside `serve` appends safely); readers use their own connections beside it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use efile_bridge_journal::checkpoint::Signer;
use rusqlite::types::{Value as SqlValue, ValueRef};

use crate::StoreError;
use crate::engine::{ReadPool, Store, WriteConn};
use crate::sql::{Connection, Db, Dialect, Error, Row, Value};

const READERS: usize = 4;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS journal (
    idx            INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    tenant         TEXT NOT NULL,
    at             TEXT NOT NULL,
    payload_digest BLOB NOT NULL,
    meta           TEXT NOT NULL,
    hash           BLOB NOT NULL -- Merkle leaf hash H(0x00 || leaf bytes)
);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TABLE IF NOT EXISTS merkle_nodes (
    level INTEGER NOT NULL, -- perfect subtree of 2^level leaves, level >= 1 (leaves are in journal)
    idx   INTEGER NOT NULL, -- starting at leaf idx << level
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS merkle_no_update BEFORE UPDATE ON merkle_nodes
    BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS merkle_no_delete BEFORE DELETE ON merkle_nodes
    BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END;
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root      BLOB NOT NULL,
    at        TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TABLE IF NOT EXISTS payloads (
    digest      BLOB PRIMARY KEY,
    salt        BLOB NOT NULL,
    data        BLOB,             -- NULL once deleted by retention
    deleted_idx INTEGER           -- the payload-deleted entry
);
CREATE TRIGGER IF NOT EXISTS payloads_only_deleted BEFORE UPDATE ON payloads
    WHEN NEW.data IS NOT NULL OR NEW.digest IS NOT OLD.digest OR NEW.salt IS NOT OLD.salt
         OR NEW.deleted_idx IS NULL
    BEGIN SELECT RAISE(ABORT, 'payloads can only be deleted, with a journal entry'); END;
CREATE TRIGGER IF NOT EXISTS payloads_no_delete BEFORE DELETE ON payloads
    BEGIN SELECT RAISE(ABORT, 'payload rows are kept; only their bytes are deleted'); END;
CREATE TABLE IF NOT EXISTS holds (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    citizen_id  INTEGER NOT NULL REFERENCES citizens (id),
    reason      TEXT NOT NULL,
    added_idx   INTEGER NOT NULL,
    removed_idx INTEGER
);
-- Hosts working on this store and when they last said they are alive (schema 3).
CREATE TABLE IF NOT EXISTS hosts (
    id           TEXT PRIMARY KEY,
    heartbeat_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT NOT NULL,
    uuid            TEXT NOT NULL,
    standard        TEXT NOT NULL,
    version         TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    message_name    TEXT NOT NULL,
    direction       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    journal_idx     INTEGER NOT NULL,
    entry_hash      BLOB NOT NULL,
    payload_digest  BLOB NOT NULL,
    state           TEXT NOT NULL,
    error           TEXT,
    adapter         TEXT,
    adapter_version TEXT,
    adapter_hash    TEXT,
    claimed_by      TEXT, -- the host processing it (schema 3)
    UNIQUE (tenant, uuid)
);
CREATE INDEX IF NOT EXISTS messages_state ON messages (state) WHERE state = 'accepted';
CREATE TABLE IF NOT EXISTS citizens (
    id           INTEGER PRIMARY KEY,
    tenant       TEXT NOT NULL,
    public_id    TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    family_name  TEXT NOT NULL,
    given_names  TEXT NOT NULL,
    birth_date   TEXT,
    created_idx  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS citizens_tenant ON citizens (tenant, family_name);
-- A strong identifier (id-nr, register-key) belongs to one citizen (enforced when it is
-- added); a fingerprint can be shared by several, which is what makes a match ambiguous.
CREATE TABLE IF NOT EXISTS citizen_identifiers (
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    citizen_id INTEGER NOT NULL REFERENCES citizens (id),
    PRIMARY KEY (tenant, kind, value, citizen_id)
);
CREATE TABLE IF NOT EXISTS reviews (
    id             INTEGER PRIMARY KEY,
    tenant         TEXT NOT NULL,
    public_id      TEXT NOT NULL UNIQUE,
    message_id     INTEGER NOT NULL REFERENCES messages (id),
    record_no      INTEGER NOT NULL,
    content_digest BLOB NOT NULL, -- the waiting record, a payload
    document_type  TEXT NOT NULL,
    title          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    candidates     TEXT NOT NULL, -- JSON array of citizen row ids
    opened_idx     INTEGER NOT NULL,
    decided_idx    INTEGER,
    decision       TEXT,
    citizen_id     INTEGER REFERENCES citizens (id),
    document_id    INTEGER REFERENCES documents (id),
    decided_by     TEXT,
    UNIQUE (message_id, record_no)
);
CREATE INDEX IF NOT EXISTS reviews_open ON reviews (tenant) WHERE decided_idx IS NULL;
CREATE TABLE IF NOT EXISTS sinks (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
-- One row per record version and sink: the durable delivery queue.
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY,
    public_id       TEXT NOT NULL UNIQUE,
    tenant          TEXT NOT NULL,
    sink            TEXT NOT NULL,
    document_id     INTEGER NOT NULL REFERENCES documents (id),
    version         INTEGER NOT NULL,
    citizen_id      INTEGER NOT NULL REFERENCES citizens (id),
    idempotency_key TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_ms      INTEGER NOT NULL,
    errors          TEXT NOT NULL DEFAULT '[]',
    outcome_idx     INTEGER,
    created_idx     INTEGER NOT NULL,
    claimed_by      TEXT, -- the host attempting it (schema 3)
    UNIQUE (tenant, sink, idempotency_key)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at_ms) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_citizen ON deliveries (tenant, sink, citizen_id, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_document ON deliveries (document_id);
CREATE TABLE IF NOT EXISTS adapter_packages (
    name             TEXT NOT NULL,
    version          TEXT NOT NULL,
    component_sha256 TEXT NOT NULL,
    package_sha256   TEXT NOT NULL,
    publisher        TEXT NOT NULL,
    manifest         TEXT NOT NULL,
    installed_idx    INTEGER NOT NULL,
    removed_idx      INTEGER,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS activations (
    id      INTEGER PRIMARY KEY,
    tenant  TEXT NOT NULL,
    scope   TEXT NOT NULL, -- '*' or a message type code
    name    TEXT,          -- NULL: back to the operator config's adapters
    version TEXT,
    action  TEXT NOT NULL, -- activate | rollback
    by      TEXT NOT NULL,
    idx     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS activations_scope ON activations (tenant, scope, id);
CREATE TABLE IF NOT EXISTS shadows (
    tenant      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    by          TEXT NOT NULL,
    started_idx INTEGER NOT NULL
);
-- Comparisons of live shadow runs (operational data, not evidence: never journaled).
CREATE TABLE IF NOT EXISTS shadow_results (
    id        INTEGER PRIMARY KEY,
    tenant    TEXT NOT NULL,
    candidate TEXT NOT NULL,
    entry     TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_results_tenant ON shadow_results (tenant, id);
CREATE TRIGGER IF NOT EXISTS activations_no_update BEFORE UPDATE ON activations
    BEGIN SELECT RAISE(ABORT, 'adapter switches are append-only'); END;
CREATE TRIGGER IF NOT EXISTS reviews_decided_once BEFORE UPDATE ON reviews
    WHEN OLD.decided_idx IS NOT NULL OR NEW.content_digest IS NOT OLD.content_digest
         OR NEW.opened_idx IS NOT OLD.opened_idx
    BEGIN SELECT RAISE(ABORT, 'a review item is decided once'); END;
CREATE TABLE IF NOT EXISTS files (
    id             INTEGER PRIMARY KEY,
    citizen_id     INTEGER NOT NULL REFERENCES citizens (id),
    public_id      TEXT NOT NULL UNIQUE,
    file_plan_code TEXT NOT NULL,
    subject        TEXT NOT NULL,
    UNIQUE (citizen_id, file_plan_code)
);
CREATE TABLE IF NOT EXISTS cases (
    id        INTEGER PRIMARY KEY,
    file_id   INTEGER NOT NULL REFERENCES files (id),
    public_id TEXT NOT NULL UNIQUE,
    case_type TEXT NOT NULL,
    case_ref  TEXT NOT NULL,
    UNIQUE (file_id, case_type, case_ref)
);
CREATE TABLE IF NOT EXISTS documents (
    id                 INTEGER PRIMARY KEY,
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    public_id          TEXT NOT NULL UNIQUE,
    message_id         INTEGER NOT NULL REFERENCES messages (id),
    record_no          INTEGER NOT NULL,
    document_type      TEXT NOT NULL,
    title              TEXT NOT NULL,
    event_date         TEXT,
    retention_deadline TEXT,
    retention_rule     TEXT NOT NULL,
    confidentiality    TEXT NOT NULL,
    UNIQUE (message_id, record_no)
);
CREATE TABLE IF NOT EXISTS document_versions (
    id              INTEGER PRIMARY KEY,
    document_id     INTEGER NOT NULL REFERENCES documents (id),
    version         INTEGER NOT NULL,
    content_digest  BLOB NOT NULL,
    journal_idx     INTEGER NOT NULL,
    UNIQUE (document_id, version)
);
CREATE TRIGGER IF NOT EXISTS versions_no_update BEFORE UPDATE ON document_versions
    BEGIN SELECT RAISE(ABORT, 'document versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS versions_no_delete BEFORE DELETE ON document_versions
    BEGIN SELECT RAISE(ABORT, 'document versions are immutable'); END;
"#;

/// The schema version this code writes (`PRAGMA user_version`).
/// 2: fingerprints may be shared by several citizens; review items.
/// 3: messages and deliveries name the host working on them; `hosts`.
const SCHEMA_VERSION: i64 = 3;

/// Columns added after a table was first created (`ALTER TABLE .. ADD COLUMN` where missing).
const ADDED_COLUMNS: &[(&str, &str, &str)] =
    &[("messages", "claimed_by", "TEXT"), ("deliveries", "claimed_by", "TEXT")];

/// Brings a version 1 database to version 2 (before `SCHEMA` creates what is new).
const MIGRATE_1_TO_2: &str = r#"
ALTER TABLE citizen_identifiers RENAME TO citizen_identifiers_v1;
CREATE TABLE citizen_identifiers (
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    citizen_id INTEGER NOT NULL REFERENCES citizens (id),
    PRIMARY KEY (tenant, kind, value, citizen_id)
);
INSERT INTO citizen_identifiers SELECT tenant, kind, value, citizen_id FROM citizen_identifiers_v1;
DROP TABLE citizen_identifiers_v1;
"#;

fn open_connection(path: &Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so a commit that returned survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Bytes deleted at the end of their retention period are overwritten, not just unlinked.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Room for every statement we prepare: the writer runs some twenty distinct statements
    // per message, more than rusqlite's default cache of 16 holds.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(256);
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the embedded store in `data_dir`, and the installation's
    /// signing key in `data_dir/keys` (created on first start).
    ///
    /// Recovery after an unclean stop is SQLite's: a transaction whose WAL frames were not
    /// completely written (a torn last batch) fails its checksum and is discarded, and no
    /// caller was told it was durable. On top of that, the tree is checked against the latest
    /// checkpoint before anything is written: a journal that lost signed entries does not open.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let location = data_dir.display().to_string();
        let open_err = |reason: String| StoreError::Open { path: location.clone(), reason };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        let signer = Arc::new(Signer::load_or_create(&data_dir.join("keys"))?);
        let path = data_dir.join("efile.sqlite3");
        let conn = open_connection(&path).map_err(|e| open_err(e.to_string()))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(open_err(format!(
                "schema version {version} is newer than this efile-bridge understands ({SCHEMA_VERSION})"
            )));
        }
        if version == 1 {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {MIGRATE_1_TO_2} PRAGMA user_version = 2; COMMIT;"))
                .map_err(|e| open_err(format!("migrating the schema from version 1 to 2: {e}")))?;
        }
        conn.execute_batch(SCHEMA).map_err(|e| open_err(e.to_string()))?;
        for (table, column, ty) in ADDED_COLUMNS {
            let present: i64 =
                conn.query_row("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| {
                    r.get(0)
                })?;
            if present == 0 {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                    .map_err(|e| open_err(format!("migrating the schema to version {SCHEMA_VERSION}: {e}")))?;
            }
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let readers = (0..READERS).map(|_| open_connection(&path).map(Mutex::new)).collect::<Result<Vec<_>, _>>()?;
        let pool = Readers { conns: readers, next: AtomicUsize::new(0) };
        Store::start(vec![Writer(conn)], Box::new(pool), signer, "sqlite", &location)
    }
}

/// The writer's connection.
struct Writer(rusqlite::Connection);

impl WriteConn for Writer {
    fn db(&self) -> &Connection {
        &self.0
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock before the tip is read.
        Ok(self.0.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.0.execute_batch("COMMIT")?)
    }

    fn abort(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

struct Readers {
    conns: Vec<Mutex<rusqlite::Connection>>,
    next: AtomicUsize,
}

impl ReadPool for Readers {
    fn with(&self, f: &mut dyn FnMut(&Connection) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.conns.len() {
            if let Ok(conn) = self.conns[(start + i) % self.conns.len()].try_lock() {
                return f(&*conn);
            }
        }
        let conn = self.conns[start % self.conns.len()].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&*conn)
    }
}

fn bind(params: Vec<Value>) -> impl Iterator<Item = SqlValue> {
    params.into_iter().map(|v| match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    })
}

fn row_of(r: &rusqlite::Row<'_>, columns: usize) -> Result<Row, Error> {
    let mut values = Vec::with_capacity(columns);
    for i in 0..columns {
        values.push(match r.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        });
    }
    Ok(Row::new(values))
}

impl Db for rusqlite::Connection {
    fn exec(&self, sql: &str, params: Vec<Value>) -> Result<usize, Error> {
        Ok(self.prepare_cached(sql)?.execute(rusqlite::params_from_iter(bind(params)))?)
    }

    fn fetch(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, Error> {
        let mut stmt = self.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(params)))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(row_of(r, columns)?);
        }
        Ok(out)
    }

    fn stream(&self, sql: &str, params: Vec<Value>, f: &mut dyn FnMut(&Row) -> Result<(), Error>) -> Result<(), Error> {
        let mut stmt = self.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(params)))?;
        while let Some(r) = rows.next()? {
            f(&row_of(r, columns)?)?;
        }
        Ok(())
    }

    fn insert(&self, sql: &str, params: Vec<Value>) -> Result<i64, Error> {
        self.exec(sql, params)?;
        Ok(rusqlite::Connection::last_insert_rowid(self))
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}
