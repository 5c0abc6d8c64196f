//! Durable storage: the journal and the revision-safe e-file store.
//!
//! [`Storage`] is what the pipeline needs from a store; [`Store`] implements it on two
//! backends with one body of logic (`engine`, written against the small SQL layer in [`sql`]):
//! the embedded default, one SQLite database in WAL mode under the data directory
//! ([`Store::open`]), and PostgreSQL, which several hosts share ([`Store::connect`]; see
//! `postgres.rs` for how they append to one journal). [`open`] picks by configuration.
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
//! - **Merkle journal.** Every state change is a leaf of an RFC 6962-style Merkle tree (see
//!   `efile-bridge-journal`); perfect subtree hashes are stored as they complete, in the same
//!   transaction as the leaf, so roots and proofs cost O(log n) reads. Checkpoints (size,
//!   root, time) are signed with the installation's Ed25519 key.
//! - **Payloads apart.** Entries reference payloads only by salted digest, so a payload can be
//!   deleted at the end of its retention period (with a `payload-deleted` entry) while every
//!   proof stays valid. Payload rows are never removed, only their bytes.
//!
//! # On-disk layout
//! `DATA_DIR/efile.sqlite3` (+ `-wal`, `-shm`) with the tables `journal`, `payloads`,
//! `messages`, `citizens`, `citizen_identifiers`, `files` (Akte), `cases` (Vorgang),
//! `documents` and `document_versions`, `merkle_nodes`, `checkpoints`, `holds`, `settings`;
//! see `SCHEMA` in `sqlite.rs`. The signing key is `DATA_DIR/keys/checkpoint-ed25519.key`
//! (owner-only), the installation's name `DATA_DIR/keys/origin`.

mod engine;
mod postgres;
pub mod sql;
mod sqlite;

pub use efile_bridge_journal as journal;
pub use engine::Store;

/// Opens the store the operator configured: `None` or `sqlite` is the embedded database
/// under `data_dir`; a `postgres://` (or `postgresql://`) url is a PostgreSQL database that
/// several hosts can share. The signing key lives under `data_dir/keys` either way.
pub fn open(storage: Option<&str>, data_dir: &std::path::Path) -> Result<Store, StoreError> {
    match storage {
        None | Some("sqlite") => Store::open(data_dir),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Store::connect(url, data_dir)
        }
        Some(other) => Err(StoreError::Open {
            path: other.to_owned(),
            reason: "storage must be `sqlite` or a postgres:// url".into(),
        }),
    }
}

use efile_bridge_journal::Hash;
use efile_bridge_journal::checkpoint::{Checkpoint, PublicKey};
use efile_bridge_journal::receipt::Receipt as JournalReceipt;

use efile_bridge_model::{EfileRecord, MessageInfo};
use serde::Serialize;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("storage: {0}")]
    Database(#[from] sql::Error),
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
    /// A request names something that does not exist or is out of range.
    #[error("{0}")]
    NotFound(String),
    /// A request contradicts the stored state (e.g. a review item decided twice).
    #[error("{0}")]
    Conflict(String),
    /// A request is not acceptable as given (e.g. a citizen that is not a candidate).
    #[error("{0}")]
    Rejected(String),
    /// The signing key is unusable.
    #[error(transparent)]
    Key(#[from] efile_bridge_journal::checkpoint::CheckpointError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.into())
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError::Database(e.into())
    }
}

/// How far `verify` has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyStage {
    /// Entries checked so far, of a total.
    Entries(u64, u64),
    /// Payload bytes checked so far, of a total.
    Payloads(u64, u64),
}

/// What `verify` checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Journal entries (leaves) recomputed.
    pub entries: u64,
    /// Checkpoint signatures and roots checked.
    pub checkpoints: u64,
    /// Consistency proofs between consecutive checkpoints checked.
    pub consistency_steps: u64,
    /// Messages checked against their entries.
    pub messages: u64,
    /// Record versions checked against their processing entries.
    pub record_versions: u64,
    /// Payloads rehashed.
    pub payloads: u64,
    /// Payload bytes rehashed.
    pub payload_bytes: u64,
    /// Payloads deleted with a deletion entry.
    pub deleted_payloads: u64,
    /// Seconds spent rehashing payloads.
    pub payload_seconds: f64,
    /// Seconds in all.
    pub seconds: f64,
}

/// A legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// Tenant.
    pub tenant: String,
    /// Citizen id.
    pub citizen_id: String,
    /// Why.
    pub reason: String,
    /// Journal index of the hold-added entry.
    pub added_index: u64,
}

/// A record that could not be assigned to exactly one citizen and waits for a clerk.
///
/// Citizen resolution never merges two people on a weak match: when a record's identifiers
/// point at several citizens, or only its name/birth fingerprint matches and more than one
/// citizen carries that fingerprint, the record is journaled and parked here instead of being
/// filed. A clerk assigns it to one of the candidates or opens a new citizen for it; the
/// decision is a `review-decided` journal entry and the record becomes a document then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewItem {
    /// Review id.
    pub review_id: String,
    /// Tenant.
    pub tenant: String,
    /// The message the record came from.
    pub message_uuid: String,
    /// Position of the record in the adapter's output.
    pub record_no: u32,
    /// Why the record waits.
    pub reason: String,
    /// The citizens it could belong to.
    pub candidates: Vec<CitizenSummary>,
    /// Document type of the waiting record.
    pub document_type: String,
    /// Title of the waiting record.
    pub title: String,
    /// Journal index of the entry that parked it.
    pub opened_index: u64,
    /// The decision, once taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<ReviewOutcome>,
}

/// What a clerk decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewOutcome {
    /// `assigned` or `new-citizen`.
    pub decision: String,
    /// The citizen the record was filed under.
    pub citizen_id: String,
    /// The document it became.
    pub document_id: String,
    /// Who decided (operator or token identity).
    pub by: String,
    /// Journal index of the `review-decided` entry.
    pub journal_index: u64,
}

/// A clerk's decision on a review item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ReviewDecision {
    /// File the record under this candidate.
    Assign {
        /// Citizen id (one of the candidates).
        citizen: String,
    },
    /// The record is about someone else: open a new citizen file for it.
    NewCitizen,
}

/// Where a record version is in its delivery to one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The sink confirmed it.
    Delivered,
    /// Every attempt failed, or the sink refused it for good: a dead letter.
    Dead,
    /// An operator gave it up.
    Discarded,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Discarded => "discarded",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead, Self::Discarded].into_iter().find(|d| d.as_str() == s)
    }
}

/// A delivery whose next attempt is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// Internal id.
    pub id: i64,
    /// Tenant.
    pub tenant: String,
    /// Sink name (per tenant).
    pub sink: String,
}

/// Everything a sink needs to deliver one record version.
#[derive(Debug, Clone)]
pub struct DeliveryItem {
    /// Internal id.
    pub id: i64,
    /// Public id.
    pub delivery_id: String,
    /// Stable per record version, across retries and restarts: `DOCUMENT.vVERSION`.
    pub idempotency_key: String,
    /// Tenant.
    pub tenant: String,
    /// Sink name.
    pub sink: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Citizen id.
    pub citizen_id: String,
    /// Document id.
    pub document_id: String,
    /// Version.
    pub version: u32,
    /// The message the record came from.
    pub message_uuid: String,
    /// Its type code.
    pub message_type: String,
    /// When the journal accepted it.
    pub received_at: String,
    /// The record.
    pub record: EfileRecord,
    /// The original message (empty once deleted by retention).
    pub original_xml: Vec<u8>,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttemptError {
    /// When (RFC 3339).
    pub at: String,
    /// What went wrong.
    pub error: String,
}

/// A record version's delivery to one sink, as the API and `files show` present it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    /// Public id (dead letters are addressed by it).
    pub delivery_id: String,
    /// Tenant.
    pub tenant: String,
    /// Sink name.
    pub sink: String,
    /// State.
    pub state: DeliveryState,
    /// Document id.
    pub document_id: String,
    /// Version.
    pub version: u32,
    /// Idempotency key sent with every attempt.
    pub idempotency_key: String,
    /// Attempts made.
    pub attempts: u32,
    /// Every failed attempt, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AttemptError>,
    /// Journal index of the entry that recorded the outcome (delivered, dead, discarded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_index: Option<u64>,
}

/// How an attempt ended, as the delivery worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered; what the sink answered (status, reply id), no personal data.
    Delivered(String),
    /// Failed; retry at this time (unix milliseconds).
    Retry {
        /// The error.
        error: String,
        /// Next attempt.
        at_ms: i64,
    },
    /// Failed for good (attempts exhausted or refused): a dead letter.
    Dead(String),
}

/// An installed adapter package version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledAdapter {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the component, hex (what processed messages record).
    pub component_sha256: String,
    /// SHA-256 of the signed package file, hex.
    pub package_sha256: String,
    /// The trusted publisher whose key signed it.
    pub publisher: String,
    /// The package manifest (JSON).
    pub manifest: serde_json::Value,
    /// Journal index of the `adapter-installed` entry.
    pub installed_index: u64,
    /// Journal index of the `adapter-removed` entry, once removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_index: Option<u64>,
}

/// One adapter switch of a tenant; the latest per scope is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    /// Tenant.
    pub tenant: String,
    /// `*` (every message type the adapter handles) or one message type code.
    pub scope: String,
    /// Adapter name; `None` hands the scope back to the operator config.
    pub name: Option<String>,
    /// Adapter version.
    pub version: Option<String>,
    /// `activate` or `rollback`.
    pub action: String,
    /// Who.
    pub by: String,
    /// Journal index of the entry.
    pub journal_index: u64,
}

/// One payload that retention deletes (or would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// Tenant.
    pub tenant: String,
    /// `record-version` or `message-body`.
    pub what: String,
    /// Document id (record versions) or message UUID (bodies).
    pub id: String,
    /// The payload digest, hex.
    pub digest: String,
    /// Why it may go.
    pub rule: String,
    /// Journal index of the deletion entry (none in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_index: Option<u64>,
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
    /// The host that accepted it and will process it (see [`Storage::claim_messages`]).
    pub host: Option<String>,
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

/// Which journaled messages (shadow runs, replays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    /// Tenant.
    pub tenant: String,
    /// Only this type code.
    pub message_type: Option<String>,
    /// Acceptance entries from this journal index (inclusive).
    pub from_index: u64,
    /// Up to this journal index (exclusive).
    pub to_index: u64,
    /// Received at or after this time (RFC 3339 UTC, or a prefix such as `2026-11-25`).
    pub from_time: Option<String>,
    /// Received before this time (same form).
    pub to_time: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// The newest `limit` (still returned oldest first) instead of the oldest.
    pub newest: bool,
}

impl MessageQuery {
    /// Every processed or failed message of `tenant`, oldest first.
    pub fn all(tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            message_type: None,
            from_index: 0,
            to_index: u64::MAX,
            from_time: None,
            to_time: None,
            limit: u32::MAX,
            newest: false,
        }
    }
}

/// What a replay changed for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayOutcome {
    /// Records byte-identical to their document's latest version.
    pub unchanged: u32,
    /// Records that became a new version of their document.
    pub new_versions: u32,
    /// Records the earlier mapping did not produce: new documents (or review items).
    pub new_documents: u32,
    /// Journal index of the `message-replayed` entry, if anything changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_index: Option<u64>,
}

/// A journaled message with what was made of it, for shadow runs and replays.
#[derive(Debug, Clone)]
pub struct JournaledMessage {
    /// What the adapter gets to know.
    pub info: MessageInfo,
    /// The XML (empty once deleted by retention).
    pub body: String,
    /// `processed` or `failed`.
    pub state: MessageState,
    /// The adapter that mapped it.
    pub adapter: Option<AdapterRef>,
    /// The records in force for it, in order (each document's latest version).
    pub records: Vec<EfileRecord>,
    /// The mapping error, if it failed.
    pub error: Option<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageState {
    /// Journaled, not yet mapped.
    Accepted,
    /// Mapped into records.
    Processed,
    /// Mapping failed.
    Failed,
}

impl MessageState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Processed => "processed",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Accepted, Self::Processed, Self::Failed].into_iter().find(|m| m.as_str() == s)
    }
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
    /// Records that wait for a clerk's decision (review ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<String>,
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

/// A line in the admin list of messages.
#[derive(Debug, Clone, Serialize)]
pub struct MessageLine {
    /// Tenant.
    pub tenant: String,
    /// UUID.
    pub message_uuid: String,
    /// Type code.
    pub message_type: String,
    /// Journal index of its acceptance.
    pub journal_index: u64,
    /// When it arrived.
    pub received_at: String,
    /// State.
    pub state: MessageState,
    /// Error, if failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How many messages a tenant has in a state.
#[derive(Debug, Clone, Serialize)]
pub struct MessageCount {
    /// Tenant.
    pub tenant: String,
    /// State.
    pub state: MessageState,
    /// Count.
    pub count: u64,
}

/// A line in the list of citizens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Documents left out because they are more confidential than the reader may see.
    pub withheld_documents: u64,
}

impl CitizenFile {
    /// Leaves out documents more confidential than `clearance` and counts them. An unknown
    /// level counts as the highest (fail closed).
    pub fn withhold_above(&mut self, clearance: efile_bridge_model::Confidentiality) {
        for case in self.files.iter_mut().flat_map(|f| f.cases.iter_mut()) {
            let before = case.documents.len();
            case.documents.retain(|d| confidentiality_of(&d.confidentiality) <= clearance);
            self.withheld_documents += (before - case.documents.len()) as u64;
        }
    }
}

/// The stored name of a confidentiality level; an unknown name is the highest level.
pub fn confidentiality_of(name: &str) -> efile_bridge_model::Confidentiality {
    use efile_bridge_model::Confidentiality as C;
    [C::Normal, C::High].into_iter().find(|c| c.as_str() == name).unwrap_or(C::Secret)
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
    /// The record's content was deleted at the end of its retention period (metadata gone,
    /// the journal still proves it existed).
    pub content_deleted: bool,
    /// Delivery to each sink of the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryView>,
}

/// One document with where it is filed, for the document page of the clerk's view.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentDetail {
    /// The document and its latest version.
    pub document: DocumentView,
    /// Citizen id.
    pub citizen_id: String,
    /// Citizen's display name.
    pub display_name: String,
    /// File (Akte) id.
    pub file_id: String,
    /// File-plan code.
    pub file_plan_code: String,
    /// Subject of the file.
    pub file_subject: String,
    /// Case (Vorgang) id.
    pub case_id: String,
    /// Case type.
    pub case_type: String,
    /// The message the document came from.
    pub message: DocumentMessage,
    /// Every version, oldest first.
    pub versions: Vec<DocumentVersion>,
}

/// The message a document came from.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentMessage {
    /// `nachrichtenUUID`.
    pub uuid: String,
    /// Message type code.
    pub message_type: String,
    /// When it was accepted.
    pub received_at: String,
}

/// One version of a document.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentVersion {
    /// Version number, from 1.
    pub version: u32,
    /// Salted digest of its content, hex.
    pub digest: String,
    /// The journal entry that recorded it.
    pub journal_index: u64,
}

/// A document's content: the latest version's record and the original message.
#[derive(Debug, Clone)]
pub struct DocumentContent {
    /// Where it is filed.
    pub detail: DocumentDetail,
    /// The record (with its attachments); `None` once deleted at the end of its retention.
    pub record: Option<EfileRecord>,
    /// The original XML message; `None` once deleted at the end of its retention.
    pub original: Option<Vec<u8>>,
}

/// The evidence that a document's latest version is in the journal.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentProof {
    /// Document id.
    pub document_id: String,
    /// Version.
    pub version: u32,
    /// Salted digest of the version's content, hex, as the entry's `meta` names it.
    pub digest: String,
    /// The entry that recorded the version, its inclusion proof and the signed checkpoint.
    pub receipt: JournalReceipt,
    /// The document's confidentiality, for the caller's clearance check (not part of the answer).
    #[serde(skip)]
    pub confidentiality: String,
}

/// One tenant's message flow, for the operator.
#[derive(Debug, Clone, Serialize)]
pub struct TenantFlow {
    /// Tenant.
    pub tenant: String,
    /// Messages waiting for processing.
    pub accepted: u64,
    /// Messages processed.
    pub processed: u64,
    /// Messages that failed.
    pub failed: u64,
    /// Messages received in the last 24 hours.
    pub received_24h: u64,
    /// Time from acceptance to the processing entry over the latest processed messages.
    pub latency_ms: Option<Latency>,
    /// The latest failure.
    pub last_error: Option<FlowError>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Largest.
    pub max: u64,
    /// Messages measured.
    pub sample: u64,
}

/// A failed message.
#[derive(Debug, Clone, Serialize)]
pub struct FlowError {
    /// `nachrichtenUUID`.
    pub uuid: String,
    /// Why.
    pub error: String,
    /// When it was received.
    pub at: String,
}

/// The journal write lock as one process saw it (counters since it started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WriteLockTimes {
    /// Seconds spent waiting for it (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: the advisory lock).
    pub wait_seconds: f64,
    /// Seconds it was held (from getting it to the batch's commit). On PostgreSQL a batch
    /// takes it only to append its entries, after filing under its tenants' locks.
    pub held_seconds: f64,
    /// Seconds spent waiting for tenants' locks (PostgreSQL: another host was filing for one
    /// of the batch's tenants; always 0 on SQLite).
    pub tenant_wait_seconds: f64,
    /// Batches (transactions) committed or failed (on PostgreSQL, a batch that appends nothing
    /// does not take the journal lock).
    pub batches: u64,
    /// Writes in those batches.
    pub writes: u64,
}

/// The outcome of the latest `verify`, kept for the operator.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct VerifyRun {
    /// `ok` or `failed`.
    pub state: String,
    /// Where it ran (`host_id`, or `cli`).
    pub by: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// The figures when it passed.
    pub report: Option<VerifyReport>,
    /// What failed.
    pub error: Option<String>,
}

/// Runs [`Storage::verify`] and keeps its outcome ([`Storage::last_verify`]) for the
/// operator; `by` names where it ran. Failing to keep the outcome is logged, not returned.
pub fn verify_and_record(
    store: &dyn Storage,
    by: &str,
    progress: &(dyn Fn(VerifyStage) + Sync),
) -> Result<VerifyReport, StoreError> {
    let started_at = now_rfc3339();
    let result = store.verify(progress);
    let run = VerifyRun {
        state: if result.is_ok() { "ok" } else { "failed" }.to_owned(),
        by: by.to_owned(),
        started_at,
        finished_at: now_rfc3339(),
        report: result.as_ref().ok().cloned(),
        error: result.as_ref().err().map(ToString::to_string),
    };
    if let Err(e) = store.record_verify(&run) {
        tracing::warn!(error = %e, "cannot keep the outcome of verify");
    }
    result
}

/// What a storage backend offers the pipeline.
pub trait Storage: Send + Sync + 'static {
    /// Stores a message and its journal entry durably, or recognises a duplicate.
    fn accept(&self, msg: NewMessage) -> Result<Accepted, StoreError>;
    /// Stores the records of a processed message and the processing entry, atomically.
    /// `tenant` is the message's (another tenant's message is not found).
    fn record_processed(
        &self,
        tenant: &str,
        message_id: i64,
        adapter: AdapterRef,
        records: Vec<EfileRecord>,
    ) -> Result<(), StoreError>;
    /// Marks a message as failed with a reason, journaled.
    fn record_failed(
        &self,
        tenant: &str,
        message_id: i64,
        adapter: Option<AdapterRef>,
        error: String,
    ) -> Result<(), StoreError>;
    /// Messages accepted but not yet processed (after a restart).
    fn pending(&self) -> Result<Vec<PendingMessage>, StoreError>;
    /// Records that `host` is alive (`now_ms`); hosts that stop doing so lose their claims.
    fn heartbeat(&self, host: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Claims accepted, unprocessed messages for `host`: those nobody claimed, those whose
    /// host has not sent a heartbeat for `lease_ms` (it died), and with `own`, those `host`
    /// itself claimed before a restart. On PostgreSQL the rows are locked `FOR UPDATE SKIP
    /// LOCKED`, so hosts sweeping at the same moment take different messages.
    fn claim_messages(
        &self,
        host: &str,
        own: bool,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<PendingMessage>, StoreError>;
    /// A tenant's processed or failed messages as `query` selects them, oldest first.
    fn journaled_messages(&self, query: &MessageQuery) -> Result<Vec<JournaledMessage>, StoreError>;
    /// Stores what a replay made of a message: each record that differs from its document's
    /// latest version becomes a new version (linked to the old, which stays), new records
    /// become documents; one `message-replayed` entry names them all. Nothing changes (and no
    /// entry is written) when every record is byte-identical.
    fn record_replayed(
        &self,
        tenant: &str,
        message_uuid: &str,
        adapter: AdapterRef,
        records: Vec<EfileRecord>,
        by: &str,
    ) -> Result<ReplayOutcome, StoreError>;
    /// A message's status, scoped to a tenant if given.
    fn message_status(&self, tenant: Option<&str>, uuid: &str) -> Result<Option<MessageStatus>, StoreError>;
    /// A tenant's citizens.
    fn citizens(&self, tenant: &str) -> Result<Vec<CitizenSummary>, StoreError>;
    /// A tenant's citizens whose name contains `name` (any case) and/or who were born on
    /// `birth_date` (a prefix: `1991`, `1991-04`, `1991-04-17`).
    fn search_citizens(
        &self,
        tenant: &str,
        name: Option<&str>,
        birth_date: Option<&str>,
    ) -> Result<Vec<CitizenSummary>, StoreError>;
    /// Messages, newest first, optionally of one tenant and in one state.
    fn messages(
        &self,
        tenant: Option<&str>,
        state: Option<MessageState>,
        limit: u32,
    ) -> Result<Vec<MessageLine>, StoreError>;
    /// Message counts per tenant and state.
    fn message_counts(&self) -> Result<Vec<MessageCount>, StoreError>;
    /// One citizen's file.
    fn citizen_file(&self, tenant: &str, citizen_id: &str) -> Result<Option<CitizenFile>, StoreError>;
    /// One document of the tenant, with where it is filed and its versions.
    fn document(&self, tenant: &str, document_id: &str) -> Result<Option<DocumentDetail>, StoreError>;
    /// One document of the tenant with its record and the original message.
    fn document_content(&self, tenant: &str, document_id: &str) -> Result<Option<DocumentContent>, StoreError>;
    /// The journal receipt of a document's latest version.
    fn document_proof(&self, tenant: &str, document_id: &str) -> Result<Option<DocumentProof>, StoreError>;
    /// Every tenant's message flow (counts, latency over the latest `sample` processed
    /// messages, the latest failure); `since_24h` is the RFC 3339 time 24 hours ago.
    fn message_flow(&self, since_24h: &str, sample: u32) -> Result<Vec<TenantFlow>, StoreError>;
    /// The latest signed checkpoints, newest first.
    fn checkpoints(&self, limit: u32) -> Result<Vec<Checkpoint>, StoreError>;
    /// Keeps the outcome of a `verify` (shared by every host on one database).
    fn record_verify(&self, run: &VerifyRun) -> Result<(), StoreError>;
    /// The outcome of the latest `verify`, if one ran.
    fn last_verify(&self) -> Result<Option<VerifyRun>, StoreError>;
    /// Recomputes the whole tree, checks every checkpoint signature and consistency step, every
    /// message, record version and payload against its entry; the first mismatch is a
    /// [`StoreError::Verify`] naming the place.
    fn verify(&self, progress: &(dyn Fn(VerifyStage) + Sync)) -> Result<VerifyReport, StoreError>;
    /// Signs a checkpoint if the journal grew since the last one; returns the latest.
    fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// The latest checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError>;
    /// The checkpoint at exactly this tree size.
    fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Checkpoint>, StoreError>;
    /// The consistency proof between two tree sizes (both at most the latest checkpoint's).
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError>;
    /// A receipt with inclusion proof for a message's acceptance entry, against a checkpoint
    /// that covers it (signed now if needed).
    fn receipt(&self, tenant: Option<&str>, uuid: &str) -> Result<Option<JournalReceipt>, StoreError>;
    /// The installation's public key.
    fn public_key(&self) -> PublicKey;
    /// Records a `config-applied` entry if `digest` differs from the last one recorded.
    fn apply_config(&self, digest: String, meta: serde_json::Value) -> Result<bool, StoreError>;
    /// Deletes payloads whose retention deadline is before `today` (YYYY-MM-DD) and that are
    /// not under a legal hold, each with a `payload-deleted` entry; `dry_run` only lists them.
    fn retention_run(&self, today: &str, dry_run: bool) -> Result<Vec<Deletion>, StoreError>;
    /// Review items of one tenant or all; `open_only` leaves out decided ones.
    fn reviews(&self, tenant: Option<&str>, open_only: bool) -> Result<Vec<ReviewItem>, StoreError>;
    /// One review item with the waiting record.
    fn review(&self, tenant: Option<&str>, review_id: &str) -> Result<Option<(ReviewItem, EfileRecord)>, StoreError>;
    /// Decides a review item: files the record and journals who decided what.
    fn decide_review(
        &self,
        tenant: Option<&str>,
        review_id: &str,
        decision: ReviewDecision,
        by: &str,
    ) -> Result<ReviewItem, StoreError>;
    /// Replaces the configured sinks (tenant, sink name); new record versions are queued for
    /// each sink of their tenant. Pending deliveries to a sink no longer configured wait.
    fn configure_sinks(&self, sinks: Vec<(String, String)>) -> Result<(), StoreError>;
    /// Claims deliveries due at `now_ms` to configured sinks for `host`, oldest first, at most
    /// one per citizen and sink (a citizen's records reach a sink in order), leaving out `busy`
    /// ones. A claimed delivery is not due for others until `now_ms + lease_ms`: if `host` dies
    /// during the attempt, another host makes it then (the idempotency key stays the same).
    fn due_deliveries(
        &self,
        host: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// Makes the deliveries `host` claimed before a restart due now.
    fn release_deliveries(&self, host: &str, now_ms: i64) -> Result<u64, StoreError>;
    /// When the earliest pending delivery to a configured sink is due (unix ms).
    fn next_delivery_at(&self) -> Result<Option<i64>, StoreError>;
    /// What a sink needs to deliver `id`.
    fn delivery_item(&self, id: i64) -> Result<DeliveryItem, StoreError>;
    /// Records an attempt's outcome; delivered and dead are journal entries. `tenant` is the
    /// delivery's.
    fn delivery_attempted(&self, tenant: &str, id: i64, outcome: AttemptOutcome) -> Result<(), StoreError>;
    /// Deliveries of one tenant or all, in a state, newest first.
    fn deliveries(
        &self,
        tenant: Option<&str>,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, StoreError>;
    /// One delivery by public id.
    fn delivery(&self, tenant: Option<&str>, delivery_id: &str) -> Result<Option<DeliveryView>, StoreError>;
    /// Queues a dead letter again (a journal entry naming who asked).
    fn redeliver(&self, tenant: Option<&str>, delivery_id: &str, by: &str) -> Result<DeliveryView, StoreError>;
    /// Gives a dead letter up (a journal entry naming who and why).
    fn discard(
        &self,
        tenant: Option<&str>,
        delivery_id: &str,
        by: &str,
        reason: &str,
    ) -> Result<DeliveryView, StoreError>;
    /// Records an installed package (idempotent for the same package; a different package
    /// under the same name and version is a conflict).
    fn register_adapter(&self, adapter: InstalledAdapter, by: &str) -> Result<InstalledAdapter, StoreError>;
    /// Marks an installed version removed; refused while a tenant has it active.
    fn remove_adapter(&self, name: &str, version: &str, by: &str) -> Result<InstalledAdapter, StoreError>;
    /// Installed versions (removed ones too), by name and install order.
    fn installed_adapters(&self) -> Result<Vec<InstalledAdapter>, StoreError>;
    /// Makes `name@version` active for `tenant` in `scope` (`*` or a message type).
    fn activate_adapter(
        &self,
        tenant: &str,
        scope: &str,
        name: &str,
        version: &str,
        by: &str,
    ) -> Result<Activation, StoreError>;
    /// Undoes the tenant's latest switch: its scope gets what it had before.
    fn rollback_adapter(&self, tenant: &str, by: &str) -> Result<Activation, StoreError>;
    /// Every switch, oldest first, of one tenant or all.
    fn activations(&self, tenant: Option<&str>) -> Result<Vec<Activation>, StoreError>;
    /// Changes with every install, removal and switch (a running host polls it).
    fn registry_generation(&self) -> Result<i64, StoreError>;
    /// Starts running installed `name@version` beside the tenant's active adapters on live
    /// traffic (replacing a running shadow); returns the journal index.
    fn start_shadow(&self, tenant: &str, name: &str, version: &str, by: &str) -> Result<u64, StoreError>;
    /// Stops the tenant's shadow run.
    fn stop_shadow(&self, tenant: &str, by: &str) -> Result<u64, StoreError>;
    /// Running shadows: (tenant, name, version).
    fn shadows(&self) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Keeps one comparison of a live shadow run (`entry`: the comparison as JSON).
    fn record_shadow(&self, tenant: &str, candidate: &str, entry: serde_json::Value) -> Result<(), StoreError>;
    /// A tenant's latest live shadow comparisons, newest first.
    fn shadow_results(&self, tenant: &str, limit: u32) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Places a legal hold on a citizen's file.
    fn hold_add(&self, tenant: &str, citizen_id: &str, reason: &str) -> Result<Hold, StoreError>;
    /// Lifts a legal hold; false if there was none.
    fn hold_remove(&self, tenant: &str, citizen_id: &str) -> Result<bool, StoreError>;
    /// Active holds, of one tenant or all.
    fn holds(&self, tenant: Option<&str>) -> Result<Vec<Hold>, StoreError>;
    /// How long this process waited for and held the journal's write lock, since it started.
    fn write_lock(&self) -> WriteLockTimes;
    /// Whether the backend can currently write.
    fn healthy(&self) -> bool;
}

/// Now, RFC 3339 in UTC with millisecond precision.
/// Unix time in milliseconds (the delivery queue's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    now.format(&fmt).unwrap_or_else(|_| now.unix_timestamp().to_string())
}
