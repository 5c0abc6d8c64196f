//! The embedded SQLite backend. One writer thread owns the write connection and commits in
//! groups; readers use their own connections (WAL lets them run beside the writer).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use efile_bridge_journal::{Entry, EntryKind, GENESIS, Hash, payload_digest};
use efile_bridge_model::{EfileRecord, IdentifierKind, MessageInfo};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Accepted, AdapterRef, CaseView, CitizenFile, CitizenSummary, DocumentRef, DocumentView, FileView, MessageState,
    MessageStatus, NewMessage, PendingMessage, Receipt, Storage, StoreError, now_rfc3339,
};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
const READERS: usize = 4;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS journal (
    idx            INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,
    tenant         TEXT NOT NULL,
    at             TEXT NOT NULL,
    payload_digest BLOB NOT NULL,
    meta           TEXT NOT NULL,
    hash           BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TABLE IF NOT EXISTS payloads (
    digest BLOB PRIMARY KEY,
    salt   BLOB NOT NULL,
    data   BLOB
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
CREATE TABLE IF NOT EXISTS citizen_identifiers (
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    citizen_id INTEGER NOT NULL REFERENCES citizens (id),
    PRIMARY KEY (tenant, kind, value)
);
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

enum WriteOp {
    Accept(NewMessage, mpsc::Sender<Result<Accepted, StoreError>>),
    Processed(i64, AdapterRef, Vec<EfileRecord>, mpsc::Sender<Result<(), StoreError>>),
    Failed(i64, Option<AdapterRef>, String, mpsc::Sender<Result<(), StoreError>>),
}

/// The embedded SQLite store.
pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<WriteOp>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    healthy: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, so a commit that returned survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: data_dir.display().to_string(), reason };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        let path = data_dir.join("efile.sqlite3");
        let conn = open_connection(&path).map_err(|e| open_err(e.to_string()))?;
        conn.execute_batch(SCHEMA).map_err(|e| open_err(e.to_string()))?;
        let head = JournalHead::load(&conn)?;
        let readers = (0..READERS).map(|_| open_connection(&path).map(Mutex::new)).collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let flag = healthy.clone();
        std::thread::Builder::new()
            .name("efile-store-writer".into())
            .spawn(move || writer_loop(conn, head, rx, flag))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(Self { writer: Mutex::new(tx), readers, next_reader: AtomicUsize::new(0), healthy })
    }

    fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        let tx = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tx.send(op).map_err(|_| StoreError::WriterGone)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..READERS {
            if let Ok(conn) = self.readers[(start + i) % READERS].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.readers[start % READERS].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&conn)
    }
}

/// The in-memory tip of the journal, owned by the writer.
#[derive(Clone, Copy)]
struct JournalHead {
    next: u64,
    last: Hash,
}

impl JournalHead {
    fn load(conn: &Connection) -> Result<Self, StoreError> {
        let row: Option<(i64, Vec<u8>)> = conn
            .query_row("SELECT idx, hash FROM journal ORDER BY idx DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((idx, hash)) => Self { next: idx as u64 + 1, last: to_hash(&hash) },
            None => Self { next: 0, last: GENESIS },
        })
    }

    fn append(
        &mut self,
        tx: &Connection,
        kind: EntryKind,
        tenant: &str,
        at: &str,
        digest: Hash,
        meta: String,
    ) -> Result<(u64, Hash), StoreError> {
        let entry = Entry {
            index: self.next,
            kind,
            tenant: tenant.to_owned(),
            at: at.to_owned(),
            payload_digest: digest,
            meta,
        };
        let hash = entry.chain_hash(&self.last);
        tx.prepare_cached("INSERT INTO journal (idx, kind, tenant, at, payload_digest, meta, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![entry.index as i64, kind.as_str(), tenant, at, &digest[..], entry.meta, &hash[..]])?;
        self.next += 1;
        self.last = hash;
        Ok((entry.index, hash))
    }
}

fn to_hash(bytes: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    let n = bytes.len().min(32);
    h[..n].copy_from_slice(&bytes[..n]);
    h
}

fn store_payload(tx: &Connection, data: &[u8]) -> Result<Hash, StoreError> {
    let salt = *uuid::Uuid::new_v4().as_bytes();
    let digest = payload_digest(&salt, data);
    tx.prepare_cached("INSERT INTO payloads (digest, salt, data) VALUES (?1, ?2, ?3)")?.execute(params![
        &digest[..],
        &salt[..],
        data
    ])?;
    Ok(digest)
}

enum Reply {
    Accept(mpsc::Sender<Result<Accepted, StoreError>>, Result<Accepted, StoreError>),
    Unit(mpsc::Sender<Result<(), StoreError>>, Result<(), StoreError>),
}

fn writer_loop(mut conn: Connection, mut head: JournalHead, rx: mpsc::Receiver<WriteOp>, healthy: Arc<AtomicBool>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let saved = head;
        let result = (|| -> Result<Vec<Reply>, StoreError> {
            let mut tx = conn.transaction()?;
            let mut replies = Vec::with_capacity(batch.len());
            for op in batch.drain(..) {
                // Each write gets its own savepoint: one bad write fails alone, not the batch.
                let before = head;
                let mut sp = tx.savepoint_with_name("op")?;
                sp.set_drop_behavior(rusqlite::DropBehavior::Rollback);
                let reply = match op {
                    WriteOp::Accept(msg, reply) => {
                        let r = accept(&sp, &mut head, msg);
                        Reply::Accept(reply, r)
                    }
                    WriteOp::Processed(id, adapter, records, reply) => {
                        let r = processed(&sp, &mut head, id, adapter, records);
                        Reply::Unit(reply, r)
                    }
                    WriteOp::Failed(id, adapter, error, reply) => {
                        let r = failed(&sp, &mut head, id, adapter, error);
                        Reply::Unit(reply, r)
                    }
                };
                let ok = match &reply {
                    Reply::Accept(_, r) => r.is_ok(),
                    Reply::Unit(_, r) => r.is_ok(),
                };
                if ok {
                    sp.commit()?;
                } else {
                    head = before;
                    drop(sp);
                }
                replies.push(reply);
            }
            tx.commit()?;
            Ok(replies)
        })();
        match result {
            Ok(replies) => {
                healthy.store(true, Ordering::Relaxed);
                for r in replies {
                    match r {
                        Reply::Accept(tx, r) => drop(tx.send(r)),
                        Reply::Unit(tx, r) => drop(tx.send(r)),
                    }
                }
            }
            Err(e) => {
                // Nothing of this batch is durable: tell every sender, and re-read the tip.
                healthy.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, "journal commit failed");
                head = JournalHead::load(&conn).unwrap_or(saved);
                // The batch was drained into replies that never got built; senders see a
                // closed channel, which the caller reports as WriterGone.
            }
        }
    }
}

fn accept(tx: &Connection, head: &mut JournalHead, msg: NewMessage) -> Result<Accepted, StoreError> {
    if let Some(receipt) = receipt_of(tx, &msg.tenant, &msg.message_uuid)? {
        return Ok(Accepted::Duplicate(receipt));
    }
    let received_at = now_rfc3339();
    let digest = store_payload(tx, &msg.body)?;
    let meta = serde_json::json!({
        "message": msg.message_uuid,
        "standard": msg.standard,
        "version": msg.version,
        "type": msg.message_type,
        "direction": msg.direction.as_str(),
        "bytes": msg.body.len(),
    })
    .to_string();
    let (idx, hash) = head.append(tx, EntryKind::MessageAccepted, &msg.tenant, &received_at, digest, meta)?;
    tx.prepare_cached(
        "INSERT INTO messages (tenant, uuid, standard, version, message_type, message_name, direction, created_at,
             received_at, journal_idx, entry_hash, payload_digest, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'accepted')",
    )?
    .execute(params![
        msg.tenant,
        msg.message_uuid,
        msg.standard,
        msg.version,
        msg.message_type,
        msg.message_name,
        msg.direction.as_str(),
        msg.created_at,
        received_at,
        idx as i64,
        &hash[..],
        &digest[..],
    ])?;
    let id = tx.last_insert_rowid();
    Ok(Accepted::New {
        id,
        receipt: Receipt {
            message_uuid: msg.message_uuid,
            tenant: msg.tenant,
            journal_index: idx,
            entry_hash: hex::encode(hash),
            received_at,
        },
    })
}

fn receipt_of(conn: &Connection, tenant: &str, uuid: &str) -> Result<Option<Receipt>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT journal_idx, entry_hash, received_at FROM messages WHERE tenant = ?1 AND uuid = ?2")?
        .query_row(params![tenant, uuid], |r| {
            Ok(Receipt {
                message_uuid: uuid.to_owned(),
                tenant: tenant.to_owned(),
                journal_index: r.get::<_, i64>(0)? as u64,
                entry_hash: hex::encode(r.get::<_, Vec<u8>>(1)?),
                received_at: r.get(2)?,
            })
        })
        .optional()?)
}

fn message_head(tx: &Connection, id: i64) -> Result<(String, String, String), StoreError> {
    tx.prepare_cached("SELECT tenant, uuid, state FROM messages WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or(StoreError::UnknownMessage(id))
}

fn new_public_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Finds the citizen a record belongs to, or creates one: the strongest identifier that
/// matches wins (id-nr, then register key, then fingerprint); a match on the weak name/birth
/// fingerprint never joins two people whose strong identifiers differ.
fn resolve_citizen(tx: &Connection, tenant: &str, record: &EfileRecord, idx: u64) -> Result<i64, StoreError> {
    let mut ids = record.citizen.identifiers.clone();
    ids.sort_by_key(|i| i.kind);
    let mut found: Option<i64> = None;
    for id in &ids {
        let hit: Option<i64> = tx
            .prepare_cached(
                "SELECT citizen_id FROM citizen_identifiers WHERE tenant = ?1 AND kind = ?2 AND value = ?3",
            )?
            .query_row(params![tenant, id.kind.as_str(), id.value], |r| r.get(0))
            .optional()?;
        if let Some(c) = hit {
            if id.kind == IdentifierKind::Fingerprint && conflicting_strong_id(tx, tenant, c, &ids)? {
                continue;
            }
            found = Some(c);
            break;
        }
    }
    let citizen = match found {
        Some(c) => c,
        None => {
            tx.prepare_cached(
                "INSERT INTO citizens (tenant, public_id, display_name, family_name, given_names, birth_date, created_idx)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                tenant,
                new_public_id(),
                record.citizen.display_name,
                record.citizen.family_name,
                record.citizen.given_names,
                record.citizen.birth_date,
                idx as i64
            ])?;
            tx.last_insert_rowid()
        }
    };
    for id in &ids {
        // An identifier already held by another citizen stays with that citizen.
        tx.prepare_cached(
            "INSERT OR IGNORE INTO citizen_identifiers (tenant, kind, value, citizen_id) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![tenant, id.kind.as_str(), id.value, citizen])?;
    }
    Ok(citizen)
}

fn conflicting_strong_id(
    tx: &Connection,
    tenant: &str,
    citizen: i64,
    ids: &[efile_bridge_model::Identifier],
) -> Result<bool, StoreError> {
    for id in ids.iter().filter(|i| i.kind != IdentifierKind::Fingerprint) {
        let other: Option<String> = tx
            .prepare_cached(
                "SELECT value FROM citizen_identifiers WHERE tenant = ?1 AND citizen_id = ?2 AND kind = ?3",
            )?
            .query_row(params![tenant, citizen, id.kind.as_str()], |r| r.get(0))
            .optional()?;
        if other.is_some_and(|v| v != id.value) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn upsert_returning_id(
    tx: &Connection,
    select: &str,
    insert: &str,
    key: &[&dyn rusqlite::ToSql],
    extra: &[&dyn rusqlite::ToSql],
) -> Result<i64, StoreError> {
    if let Some(id) = tx.prepare_cached(select)?.query_row(key, |r| r.get(0)).optional()? {
        return Ok(id);
    }
    let mut all: Vec<&dyn rusqlite::ToSql> = key.to_vec();
    all.extend_from_slice(extra);
    tx.prepare_cached(insert)?.execute(all.as_slice())?;
    Ok(tx.last_insert_rowid())
}

fn processed(
    tx: &Connection,
    head: &mut JournalHead,
    id: i64,
    adapter: AdapterRef,
    records: Vec<EfileRecord>,
) -> Result<(), StoreError> {
    let (tenant, uuid, state) = message_head(tx, id)?;
    if state != "accepted" {
        // Processed before a crash and re-queued: the first result stands.
        return Ok(());
    }
    let at = now_rfc3339();
    let idx = head.next;
    let mut produced = Vec::with_capacity(records.len());
    for (no, record) in records.iter().enumerate() {
        let citizen = resolve_citizen(tx, &tenant, record, idx)?;
        let file = upsert_returning_id(
            tx,
            "SELECT id FROM files WHERE citizen_id = ?1 AND file_plan_code = ?2",
            "INSERT INTO files (citizen_id, file_plan_code, public_id, subject) VALUES (?1, ?2, ?3, ?4)",
            &[&citizen, &record.file_plan_code],
            &[&new_public_id(), &record.file_subject],
        )?;
        let case_ref = record.case_ref.clone().unwrap_or_else(|| uuid.clone());
        let case = upsert_returning_id(
            tx,
            "SELECT id FROM cases WHERE file_id = ?1 AND case_type = ?2 AND case_ref = ?3",
            "INSERT INTO cases (file_id, case_type, case_ref, public_id) VALUES (?1, ?2, ?3, ?4)",
            &[&file, &record.case_type, &case_ref],
            &[&new_public_id()],
        )?;
        let doc_public = new_public_id();
        tx.prepare_cached(
            "INSERT INTO documents (case_id, public_id, message_id, record_no, document_type, title, event_date,
                 retention_deadline, retention_rule, confidentiality)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            case,
            doc_public,
            id,
            no as i64,
            record.document_type.as_str(),
            record.title,
            record.event_date,
            record.retention.deadline,
            record.retention.rule,
            record.confidentiality.as_str(),
        ])?;
        let document = tx.last_insert_rowid();
        let content = serde_json::to_vec(record).map_err(|e| StoreError::Verify(e.to_string()))?;
        let digest = store_payload(tx, &content)?;
        tx.prepare_cached(
            "INSERT INTO document_versions (document_id, version, content_digest, journal_idx) VALUES (?1, 1, ?2, ?3)",
        )?
        .execute(params![document, &digest[..], idx as i64])?;
        produced.push(serde_json::json!({"document": doc_public, "version": 1, "digest": hex::encode(digest)}));
    }
    let meta = serde_json::json!({
        "message": uuid,
        "adapter": {"name": adapter.name, "version": adapter.version, "hash": adapter.hash},
        "records": produced,
    })
    .to_string();
    head.append(tx, EntryKind::MessageProcessed, &tenant, &at, GENESIS, meta)?;
    tx.prepare_cached(
        "UPDATE messages SET state = 'processed', adapter = ?2, adapter_version = ?3, adapter_hash = ?4 WHERE id = ?1",
    )?
    .execute(params![id, adapter.name, adapter.version, adapter.hash])?;
    Ok(())
}

fn failed(
    tx: &Connection,
    head: &mut JournalHead,
    id: i64,
    adapter: Option<AdapterRef>,
    error: String,
) -> Result<(), StoreError> {
    let (tenant, uuid, state) = message_head(tx, id)?;
    if state != "accepted" {
        return Ok(());
    }
    let meta = serde_json::json!({"message": uuid, "adapter": adapter, "error": error}).to_string();
    head.append(tx, EntryKind::MessageFailed, &tenant, &now_rfc3339(), GENESIS, meta)?;
    let (name, version, hash) = match adapter {
        Some(a) => (Some(a.name), Some(a.version), Some(a.hash)),
        None => (None, None, None),
    };
    tx.prepare_cached("UPDATE messages SET state = 'failed', error = ?2, adapter = ?3, adapter_version = ?4, adapter_hash = ?5 WHERE id = ?1")?
        .execute(params![id, error, name, version, hash])?;
    Ok(())
}

fn state_of(s: &str) -> MessageState {
    match s {
        "processed" => MessageState::Processed,
        "failed" => MessageState::Failed,
        _ => MessageState::Accepted,
    }
}

impl Storage for SqliteStore {
    fn accept(&self, msg: NewMessage) -> Result<Accepted, StoreError> {
        let (tx, rx) = mpsc::channel();
        self.send(WriteOp::Accept(msg, tx))?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn record_processed(
        &self,
        message_id: i64,
        adapter: AdapterRef,
        records: Vec<EfileRecord>,
    ) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.send(WriteOp::Processed(message_id, adapter, records, tx))?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn record_failed(&self, message_id: i64, adapter: Option<AdapterRef>, error: String) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        self.send(WriteOp::Failed(message_id, adapter, error, tx))?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn pending(&self) -> Result<Vec<PendingMessage>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT m.id, m.tenant, m.standard, m.version, m.message_type, m.message_name, m.uuid, m.created_at,
                        m.received_at, m.journal_idx, p.data
                 FROM messages m JOIN payloads p ON p.digest = m.payload_digest
                 WHERE m.state = 'accepted' ORDER BY m.id",
            )?;
            let rows = stmt.query_map([], |r| {
                let body: Vec<u8> = r.get(10)?;
                Ok(PendingMessage {
                    id: r.get(0)?,
                    info: MessageInfo {
                        tenant_ags: r.get(1)?,
                        standard: r.get(2)?,
                        version: r.get(3)?,
                        message_type: r.get(4)?,
                        message_name: r.get(5)?,
                        message_uuid: r.get(6)?,
                        created_at: r.get(7)?,
                        received_at: r.get(8)?,
                        journal_index: r.get::<_, i64>(9)? as u64,
                    },
                    body: String::from_utf8_lossy(&body).into_owned(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn message_status(&self, tenant: Option<&str>, uuid: &str) -> Result<Option<MessageStatus>, StoreError> {
        self.read(|c| {
            let row = c
                .prepare_cached(
                    "SELECT id, tenant, journal_idx, entry_hash, received_at, message_type, direction, state, error,
                            adapter, adapter_version, adapter_hash
                     FROM messages WHERE uuid = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY id LIMIT 1",
                )?
                .query_row(params![uuid, tenant], |r| {
                    let adapter = match (r.get::<_, Option<String>>(9)?, r.get::<_, Option<String>>(10)?, r.get::<_, Option<String>>(11)?) {
                        (Some(name), Some(version), Some(hash)) => Some(AdapterRef { name, version, hash }),
                        _ => None,
                    };
                    Ok((
                        r.get::<_, i64>(0)?,
                        MessageStatus {
                            receipt: Receipt {
                                message_uuid: uuid.to_owned(),
                                tenant: r.get(1)?,
                                journal_index: r.get::<_, i64>(2)? as u64,
                                entry_hash: hex::encode(r.get::<_, Vec<u8>>(3)?),
                                received_at: r.get(4)?,
                            },
                            message_type: r.get(5)?,
                            direction: r.get(6)?,
                            state: state_of(&r.get::<_, String>(7)?),
                            error: r.get(8)?,
                            adapter,
                            documents: Vec::new(),
                        },
                    ))
                })
                .optional()?;
            let Some((id, mut status)) = row else { return Ok(None) };
            let mut stmt = c.prepare_cached(
                "SELECT d.public_id, ci.public_id, (SELECT MAX(version) FROM document_versions v WHERE v.document_id = d.id),
                        d.document_type, d.title
                 FROM documents d JOIN cases ca ON ca.id = d.case_id JOIN files f ON f.id = ca.file_id
                 JOIN citizens ci ON ci.id = f.citizen_id
                 WHERE d.message_id = ?1 ORDER BY d.record_no",
            )?;
            status.documents = stmt
                .query_map([id], |r| {
                    Ok(DocumentRef {
                        document_id: r.get(0)?,
                        citizen_id: r.get(1)?,
                        version: r.get::<_, i64>(2)? as u32,
                        document_type: r.get(3)?,
                        title: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(status))
        })
    }

    fn citizens(&self, tenant: &str) -> Result<Vec<CitizenSummary>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT ci.public_id, ci.display_name, ci.birth_date,
                        (SELECT COUNT(*) FROM files f JOIN cases ca ON ca.file_id = f.id JOIN documents d ON d.case_id = ca.id
                         WHERE f.citizen_id = ci.id)
                 FROM citizens ci WHERE ci.tenant = ?1 ORDER BY ci.family_name, ci.given_names, ci.id",
            )?;
            let rows = stmt.query_map([tenant], |r| {
                Ok(CitizenSummary { citizen_id: r.get(0)?, display_name: r.get(1)?, birth_date: r.get(2)?, documents: r.get::<_, i64>(3)? as u64 })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn citizen_file(&self, tenant: &str, citizen_id: &str) -> Result<Option<CitizenFile>, StoreError> {
        self.read(|c| citizen_file(c, tenant, citizen_id))
    }

    fn verify(&self) -> Result<u64, StoreError> {
        self.read(verify)
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

fn citizen_file(c: &Connection, tenant: &str, citizen_id: &str) -> Result<Option<CitizenFile>, StoreError> {
    let row = c
        .prepare_cached("SELECT id, display_name, family_name, given_names, birth_date FROM citizens WHERE tenant = ?1 AND public_id = ?2")?
        .query_row(params![tenant, citizen_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, Option<String>>(4)?))
        })
        .optional()?;
    let Some((id, display_name, family_name, given_names, birth_date)) = row else {
        return Ok(None);
    };
    let identifiers = c
        .prepare_cached("SELECT DISTINCT kind FROM citizen_identifiers WHERE citizen_id = ?1 ORDER BY kind")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    let mut files = Vec::new();
    let mut fstmt = c.prepare_cached(
        "SELECT id, public_id, file_plan_code, subject FROM files WHERE citizen_id = ?1 ORDER BY file_plan_code",
    )?;
    let frows = fstmt
        .query_map([id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (fid, file_id, file_plan_code, subject) in frows {
        let mut cases = Vec::new();
        let crows = c
            .prepare_cached("SELECT id, public_id, case_type FROM cases WHERE file_id = ?1 ORDER BY id")?
            .query_map([fid], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        for (cid, case_id, case_type) in crows {
            let drows = c
                .prepare_cached(
                    "SELECT d.public_id, d.document_type, d.title, d.event_date, d.retention_deadline, d.retention_rule,
                            d.confidentiality, v.version, m.uuid, p.data
                     FROM documents d
                     JOIN document_versions v ON v.document_id = d.id
                          AND v.version = (SELECT MAX(version) FROM document_versions WHERE document_id = d.id)
                     JOIN messages m ON m.id = d.message_id
                     LEFT JOIN payloads p ON p.digest = v.content_digest
                     WHERE d.case_id = ?1 ORDER BY d.event_date, d.id",
                )?
                .query_map([cid], |r| {
                    let content: Option<Vec<u8>> = r.get(9)?;
                    let record: Option<EfileRecord> = content.and_then(|b| serde_json::from_slice(&b).ok());
                    Ok(DocumentView {
                        document_id: r.get(0)?,
                        document_type: r.get(1)?,
                        title: r.get(2)?,
                        event_date: r.get(3)?,
                        retention_deadline: r.get(4)?,
                        retention_rule: r.get(5)?,
                        confidentiality: r.get(6)?,
                        version: r.get::<_, i64>(7)? as u32,
                        message_uuid: r.get(8)?,
                        metadata: record.as_ref().map(|r| r.metadata.clone()).unwrap_or_default(),
                        attachments: record.map(|r| r.attachments.into_iter().map(|a| a.name).collect()).unwrap_or_default(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            cases.push(CaseView { case_id, case_type, documents: drows });
        }
        files.push(FileView { file_id, file_plan_code, subject, cases });
    }
    Ok(Some(CitizenFile {
        citizen_id: citizen_id.to_owned(),
        tenant: tenant.to_owned(),
        display_name,
        family_name,
        given_names,
        birth_date,
        identifiers,
        files,
    }))
}

fn verify(c: &Connection) -> Result<u64, StoreError> {
    let mut stmt = c.prepare("SELECT idx, kind, tenant, at, payload_digest, meta, hash FROM journal ORDER BY idx")?;
    let mut rows = stmt.query([])?;
    let mut entries = Vec::new();
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        let kind = EntryKind::parse(&kind).ok_or_else(|| {
            StoreError::Verify(format!("entry {} has unknown kind `{kind}`", r.get::<_, i64>(0).unwrap_or(-1)))
        })?;
        entries.push((
            Entry {
                index: r.get::<_, i64>(0)? as u64,
                kind,
                tenant: r.get(2)?,
                at: r.get(3)?,
                payload_digest: to_hash(&r.get::<_, Vec<u8>>(4)?),
                meta: r.get(5)?,
            },
            to_hash(&r.get::<_, Vec<u8>>(6)?),
        ));
    }
    let (count, _) = efile_bridge_journal::verify_chain(entries).map_err(|e| StoreError::Verify(e.to_string()))?;
    let mut stmt = c.prepare("SELECT digest, salt, data FROM payloads WHERE data IS NOT NULL")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let digest = to_hash(&r.get::<_, Vec<u8>>(0)?);
        let salt: Vec<u8> = r.get(1)?;
        let data: Vec<u8> = r.get(2)?;
        if payload_digest(&salt, &data) != digest {
            return Err(StoreError::Verify(format!("payload {} does not match its digest", hex::encode(digest))));
        }
    }
    Ok(count)
}
