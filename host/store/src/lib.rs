//! Durable storage: the journal and the revision-safe e-file store.
//!
//! [`Storage`] is what the pipeline needs from a backend; [`SqliteStore`] is the embedded
//! default (one SQLite database in WAL mode under the data directory). A PostgreSQL backend
//! will implement the same trait.
//!
//! # Invariants
//! - **Acknowledged means durable.** [`Storage::accept`] returns only after the transaction
//!   holding the message and its journal entry has been committed with `synchronous=FULL`
//!   (fsync of the WAL). Commits are grouped: a single writer thread drains every pending
//!   write into one transaction, so many concurrent senders share one fsync.
//! - **Once per (tenant, `nachrichtenUUID`).** A second submission returns the first receipt.
//! - **Append-only.** Journal entries, payloads and record versions are only ever inserted;
//!   triggers refuse `UPDATE` and `DELETE` on the journal and on document versions. A changed
//!   record is a new version of the document, never an overwrite.
//! - **Hash-chained.** Every journal entry's hash covers the previous one (see
//!   `efile-bridge-journal`); entries reference payloads only by salted digest.
//!
//! # On-disk layout
//! `DATA_DIR/efile.sqlite3` (+ `-wal`, `-shm`) with the tables `journal`, `payloads`,
//! `messages`, `citizens`, `citizen_identifiers`, `files` (Akte), `cases` (Vorgang),
//! `documents` and `document_versions`; see [`schema`](crate) in `sqlite.rs`.

mod sqlite;

pub use sqlite::SqliteStore;

use efile_bridge_model::{EfileRecord, MessageInfo};
use serde::Serialize;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("storage: {0}")]
    Database(#[from] rusqlite::Error),
    /// The writer thread is gone (the store is shutting down or crashed).
    #[error("storage writer is not running")]
    WriterGone,
    /// Stored data does not verify.
    #[error("journal verification failed: {0}")]
    Verify(String),
    /// Opening the store failed.
    #[error("cannot open store at {path}: {reason}")]
    Open {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A message id does not exist.
    #[error("no message with id {0}")]
    UnknownMessage(i64),
}

/// Where a message came from relative to the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The tenant is the message's reader.
    Incoming,
    /// The tenant is the message's author (a copy of what its own registry sent).
    OutgoingCopy,
}

impl Direction {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incoming => "incoming",
            Self::OutgoingCopy => "outgoing-copy",
        }
    }
}

/// A message that passed intake, to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Tenant AGS.
    pub tenant: String,
    /// Standard.
    pub standard: String,
    /// Version.
    pub version: String,
    /// Type code.
    pub message_type: String,
    /// Root element name.
    pub message_name: String,
    /// `nachrichtenUUID`.
    pub message_uuid: String,
    /// `erstellungszeitpunkt`.
    pub created_at: String,
    /// Direction.
    pub direction: Direction,
    /// The XML, exactly as received.
    pub body: Vec<u8>,
}

/// The answer to an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// `nachrichtenUUID`.
    pub message_uuid: String,
    /// Tenant AGS.
    pub tenant: String,
    /// Journal index of the acceptance entry.
    pub journal_index: u64,
    /// Hash of that entry, hex.
    pub entry_hash: String,
    /// When it was accepted.
    pub received_at: String,
}

/// Result of [`Storage::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now; `id` is the internal message id to process.
    New {
        /// Internal id.
        id: i64,
        /// Receipt.
        receipt: Receipt,
    },
    /// Stored before; the first receipt.
    Duplicate(Receipt),
}

/// A message waiting for its adapter.
#[derive(Debug, Clone)]
pub struct PendingMessage {
    /// Internal id.
    pub id: i64,
    /// What the adapter gets to know.
    pub info: MessageInfo,
    /// The XML.
    pub body: String,
}

/// The adapter that produced (or failed to produce) records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdapterRef {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Content hash of the component.
    pub hash: String,
}

/// Processing state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageState {
    /// Journaled, not yet mapped.
    Accepted,
    /// Mapped into records.
    Processed,
    /// Mapping failed.
    Failed,
}

/// What `GET /v1/messages/{uuid}` shows.
#[derive(Debug, Clone, Serialize)]
pub struct MessageStatus {
    /// Receipt.
    #[serde(flatten)]
    pub receipt: Receipt,
    /// Message type code.
    pub message_type: String,
    /// Direction.
    pub direction: String,
    /// State.
    pub state: MessageState,
    /// Error, if failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Adapter that handled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterRef>,
    /// Documents it produced.
    pub documents: Vec<DocumentRef>,
}

/// A document produced by a message.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentRef {
    /// Document id.
    pub document_id: String,
    /// Citizen id.
    pub citizen_id: String,
    /// Version.
    pub version: u32,
    /// Document type.
    pub document_type: String,
    /// Title.
    pub title: String,
}

/// A line in the list of citizens.
#[derive(Debug, Clone, Serialize)]
pub struct CitizenSummary {
    /// Citizen id.
    pub citizen_id: String,
    /// Display name.
    pub display_name: String,
    /// Birth date as known.
    pub birth_date: Option<String>,
    /// Number of documents.
    pub documents: u64,
}

/// A citizen's e-file.
#[derive(Debug, Clone, Serialize)]
pub struct CitizenFile {
    /// Citizen id.
    pub citizen_id: String,
    /// Tenant.
    pub tenant: String,
    /// Display name.
    pub display_name: String,
    /// Family name.
    pub family_name: String,
    /// Given names.
    pub given_names: String,
    /// Birth date.
    pub birth_date: Option<String>,
    /// Identifier kinds known (values are not shown).
    pub identifiers: Vec<String>,
    /// Files (Akten).
    pub files: Vec<FileView>,
}

/// One Akte.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    /// File id.
    pub file_id: String,
    /// File-plan code.
    pub file_plan_code: String,
    /// Subject.
    pub subject: String,
    /// Cases.
    pub cases: Vec<CaseView>,
}

/// One Vorgang.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    /// Case id.
    pub case_id: String,
    /// Case type.
    pub case_type: String,
    /// Documents in event-date order.
    pub documents: Vec<DocumentView>,
}

/// One document with its latest version.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentView {
    /// Document id.
    pub document_id: String,
    /// Document type.
    pub document_type: String,
    /// Title.
    pub title: String,
    /// Event date.
    pub event_date: Option<String>,
    /// Retention deadline.
    pub retention_deadline: Option<String>,
    /// Retention rule.
    pub retention_rule: String,
    /// Confidentiality.
    pub confidentiality: String,
    /// Latest version number.
    pub version: u32,
    /// Message it came from.
    pub message_uuid: String,
    /// Metadata of the latest version.
    pub metadata: Vec<(String, String)>,
    /// Attachment names.
    pub attachments: Vec<String>,
}

/// What a storage backend offers the pipeline.
pub trait Storage: Send + Sync + 'static {
    /// Stores a message and its journal entry durably, or recognises a duplicate.
    fn accept(&self, msg: NewMessage) -> Result<Accepted, StoreError>;
    /// Stores the records of a processed message and the processing entry, atomically.
    fn record_processed(
        &self,
        message_id: i64,
        adapter: AdapterRef,
        records: Vec<EfileRecord>,
    ) -> Result<(), StoreError>;
    /// Marks a message as failed with a reason, journaled.
    fn record_failed(&self, message_id: i64, adapter: Option<AdapterRef>, error: String) -> Result<(), StoreError>;
    /// Messages accepted but not yet processed (after a restart).
    fn pending(&self) -> Result<Vec<PendingMessage>, StoreError>;
    /// A message's status, scoped to a tenant if given.
    fn message_status(&self, tenant: Option<&str>, uuid: &str) -> Result<Option<MessageStatus>, StoreError>;
    /// A tenant's citizens.
    fn citizens(&self, tenant: &str) -> Result<Vec<CitizenSummary>, StoreError>;
    /// One citizen's file.
    fn citizen_file(&self, tenant: &str, citizen_id: &str) -> Result<Option<CitizenFile>, StoreError>;
    /// Recomputes the hash chain and checks payload digests; returns the number of entries.
    fn verify(&self) -> Result<u64, StoreError>;
    /// Whether the backend can currently write.
    fn healthy(&self) -> bool;
}

/// Now, RFC 3339 in UTC with millisecond precision.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    now.format(&fmt).unwrap_or_else(|_| now.unix_timestamp().to_string())
}
