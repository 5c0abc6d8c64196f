//! The store's logic, written once against [`crate::sql`] and run on either backend: accepting
//! and journaling messages, filing records under citizens, the delivery queue, the adapter
//! registry, retention, review items and `verify`. The backends (`sqlite.rs`, `postgres.rs`)
//! only provide connections.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::sql::{Connection, Dialect, OptionalExtension, Params, params};
use efile_bridge_journal::checkpoint::{Checkpoint, PublicKey, Signer};
use efile_bridge_journal::merkle::{Frontier, NodeSource};
use efile_bridge_journal::{Entry, EntryKind, Hash, NO_PAYLOAD, payload_digest};
use efile_bridge_model::{EfileRecord, MessageInfo};

mod citizens;
mod delivery;
mod documents;
mod registry;
mod replay;
mod retention;
mod review;
mod verify;

use citizens::Resolution;

use efile_bridge_journal::merkle;
use efile_bridge_journal::receipt::Receipt as JournalReceipt;

use crate::{
    Accepted, Activation, AdapterRef, AttemptOutcome, CaseView, CitizenFile, CitizenSummary, Deletion, DeliveryItem,
    DeliveryState, DeliveryView, DocumentContent, DocumentDetail, DocumentProof, DocumentRef, DueDelivery, FileView,
    Hold, InstalledAdapter, JournaledMessage, MessageCount, MessageLine, MessageQuery, MessageState, MessageStatus,
    NewMessage, PendingMessage, Receipt, ReplayOutcome, ReviewDecision, ReviewItem, Storage, StoreError, TenantFlow,
    VerifyReport, VerifyRun, VerifyStage, WriteLockTimes, now_rfc3339,
};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

/// The store: the journal and the revision-safe e-file, on the embedded SQLite database or on
/// PostgreSQL. The logic is the same for both; only the connections differ.
///
/// A writer thread owns a write connection and commits in groups: every write pending when a
/// batch starts runs in its own savepoint of one transaction, so many concurrent senders share
/// one commit. SQLite has one writer; PostgreSQL several, each for a share of the tenants
/// (they file side by side and meet at the journal lock). Reads use their own connections.
pub struct Store {
    writers: Vec<Mutex<mpsc::Sender<WriteOp>>>,
    lock: Arc<LockCounters>,
    reader: Box<dyn ReadPool>,
    healthy: Arc<AtomicBool>,
    public_key: PublicKey,
    backend: &'static str,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// Connections for reads.
pub(crate) trait ReadPool: Send + Sync {
    /// Runs `f` on a free connection, in one snapshot where the backend offers that.
    fn with(&self, f: &mut dyn FnMut(&Connection) -> Result<(), StoreError>) -> Result<(), StoreError>;
}

/// The writer thread's connection.
pub(crate) trait WriteConn: Send + 'static {
    /// The connection the writes run on.
    fn db(&self) -> &Connection;
    /// Opens a batch's transaction (on SQLite it holds the database's write lock from here).
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Whether batches may file for tenants before they take the journal lock (several hosts
    /// on one database). If not, every batch runs as [`Scope::Exclusive`].
    fn defers(&self) -> bool {
        false
    }
    /// Takes every lock for the rest of the transaction: no other writer, in this process or
    /// another, files or appends until [`WriteConn::commit`].
    fn lock_exclusive(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Takes the locks of the tenants in `wait` (waiting for each, in a fixed order) and of
    /// those in `attempt` that no other transaction holds, for the rest of the transaction, so
    /// that no other host files for them meanwhile. Returns which of `attempt` it got.
    fn lock_tenants(&mut self, _wait: &[&str], attempt: &[&str]) -> Result<Vec<bool>, StoreError> {
        Ok(vec![true; attempt.len()])
    }
    /// Takes the journal's append lock for the rest of the transaction and returns the
    /// journal's size as it is now.
    fn lock_journal(&mut self) -> Result<u64, StoreError> {
        journal_size(self.db())
    }
    /// Appends a batch's deferred entries (their places start at `base`) with the Merkle
    /// nodes they complete, and rewrites every provisional position the batch's rows hold
    /// (those in [`provisional_range`] of `token`).
    fn append_deferred(
        &mut self,
        _base: u64,
        _token: i64,
        _leaves: &[Positioned],
        _nodes: &[(u32, u64, Hash)],
    ) -> Result<(), StoreError> {
        Err(StoreError::Verify("this backend does not defer journal appends".into()))
    }
    /// Commits the batch durably.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Ends a failed batch (and reconnects if the connection is gone).
    fn abort(&mut self);
}

impl Store {
    /// Checks the installation's origin and the journal against its latest checkpoint, then
    /// starts the writer thread. `location` names the database in errors.
    pub(crate) fn start<W: WriteConn>(
        conns: Vec<W>,
        reader: Box<dyn ReadPool>,
        signer: Arc<Signer>,
        backend: &'static str,
        location: &str,
    ) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: location.to_owned(), reason };
        let conn = conns.first().ok_or_else(|| open_err("no write connection".into()))?;
        conn.db().execute(
            "INSERT INTO settings (key, value) VALUES ('origin', ?1) ON CONFLICT DO NOTHING",
            [signer.origin()],
        )?;
        let origin = checkpoint_origin(conn.db())?;
        if origin != signer.origin() {
            return Err(open_err(format!(
                "the signing key in keys/ belongs to `{}`, but this journal is `{origin}`",
                signer.origin()
            )));
        }
        let head = JournalHead::load(conn.db())?;
        check_against_latest_checkpoint(conn.db(), &head, &signer.public_key())
            .map_err(|e| open_err(format!("the journal does not match its latest checkpoint: {e}")))?;
        let healthy = Arc::new(AtomicBool::new(true));
        let lock = Arc::new(LockCounters::default());
        let public_key = signer.public_key();
        let tip = Arc::new(Mutex::new(head.frontier.clone()));
        let mut writers = Vec::with_capacity(conns.len());
        for (n, conn) in conns.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let (head, signer, flag, counters, tip) =
                (head.clone(), signer.clone(), healthy.clone(), lock.clone(), tip.clone());
            std::thread::Builder::new()
                .name(format!("efile-store-writer-{n}"))
                .spawn(move || writer_loop(conn, head, &tip, &signer, &rx, &flag, &counters))
                .map_err(|e| open_err(e.to_string()))?;
            writers.push(Mutex::new(tx));
        }
        Ok(Self { writers, lock, reader, healthy, public_key, backend })
    }

    /// The writer a write goes to: a tenant's writes always to the same one (so two writers of
    /// one host never wait for the same tenant's lock), everything else to the first.
    fn writer_for(&self, scope: &Scope) -> usize {
        match scope {
            Scope::Tenant(t) if self.writers.len() > 1 => (tenant_key(t) as u32 as usize) % self.writers.len(),
            _ => 0,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Runs `f` on the writer thread in its own savepoint of the next group commit, and
    /// returns its result once that commit is durable. `scope` says which locks it needs
    /// where several hosts share the database (see [`Scope`]).
    fn write<R: Send + 'static>(
        &self,
        scope: Scope,
        f: impl FnOnce(&Connection, &mut JournalHead, &Signer) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.write_settled(scope, f, |r, _| r)
    }

    /// As [`Store::write`], for a write whose result names journal positions: `settle` puts
    /// the real ones in place of provisional ones once the batch's entries are appended.
    fn write_settled<R: Send + 'static>(
        &self,
        scope: Scope,
        f: impl FnOnce(&Connection, &mut JournalHead, &Signer) -> Result<R, StoreError> + Send + 'static,
        settle: fn(R, &Settled) -> R,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::channel();
        let run: RunOp = Box::new(move |conn, head, signer| {
            let result = f(conn, head, signer);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |settled| drop(tx.send(result.map(|r| settle(r, settled)))));
            (ok, reply)
        });
        let writer = self.writer_for(&scope);
        self.send(writer, WriteOp { scope, run, put_off: false })?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    fn send(&self, writer: usize, op: WriteOp) -> Result<(), StoreError> {
        let tx = self.writers[writer].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tx.send(op).map_err(|_| StoreError::WriterGone)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        self.reader.with(&mut |c| {
            if let Some(f) = f.take() {
                out = Some(f(c));
            }
            Ok(())
        })?;
        out.unwrap_or_else(|| Err(StoreError::Verify("the read did not run".into())))
    }
}

/// A tenant's lock key: FNV-1a of its AGS, the same on every host and release (PostgreSQL's
/// advisory lock, and which of a host's writers files for it). Two tenants that share a key
/// only wait for each other.
pub(crate) fn tenant_key(tenant: &str) -> i32 {
    let hash = tenant.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Which locks a write needs besides its batch's transaction. On SQLite the transaction holds
/// the database's one write lock and every write runs as [`Scope::Exclusive`]; on PostgreSQL
/// the scopes let several hosts file at the same time and meet only to append to the journal.
pub(crate) enum Scope {
    /// Appends nothing and files nothing (claims, heartbeats): runs first, under no lock of
    /// its own. It must never wait for a row lock while holding another that a tenant's
    /// write may want: it claims with `SKIP LOCKED` or changes one row of its own. (A write
    /// that changes many rows of many tenants is [`Scope::Exclusive`].)
    Free,
    /// Files for one tenant and appends to the journal: runs under the tenant's lock, with
    /// provisional journal positions; the batch appends its entries at the end, under the
    /// journal lock, and puts the real positions in place (see [`Deferred`]).
    Tenant(String),
    /// Needs the journal's tip (a checkpoint): runs after the batch's appends.
    Journal,
    /// Anything else (operator actions, retention, replay, configuration): the batch holds
    /// every lock from its start, as on SQLite. Rare, so simple beats concurrent here.
    Exclusive,
}

/// The in-memory tip of the journal, owned by the writer: the tree's right edge, and, while a
/// batch's tenant writes run, the entries they append (not yet positioned).
#[derive(Clone)]
struct JournalHead {
    frontier: Frontier,
    deferred: Option<Deferrals>,
}

/// A batch's deferred entries, and the token that makes their provisional positions its own.
#[derive(Clone)]
struct Deferrals {
    token: i64,
    entries: Vec<Deferred>,
}

/// An entry appended while its batch does not hold the journal lock. Until the batch takes
/// it, the entry's position is provisional: negative, which no real position ever is, made of
/// the batch's random token and the entry's number `k` in the batch (see [`provisional`]).
/// The rows that name it are written with that value, and the batch rewrites them (one
/// statement for all tables) once the entry has its place: see `WriteConn::append_deferred`.
/// The token gives each batch its own range of values, so the rewrite finds its rows by an
/// index range scan that never meets the index entries earlier batches left behind.
#[derive(Clone)]
pub(crate) struct Deferred {
    pub(crate) kind: EntryKind,
    pub(crate) tenant: String,
    pub(crate) at: String,
    pub(crate) digest: Hash,
    pub(crate) meta: String,
}

impl Deferred {
    /// The entry at its place.
    fn at(self, index: u64) -> Entry {
        Entry { index, kind: self.kind, tenant: self.tenant, at: self.at, payload_digest: self.digest, meta: self.meta }
    }
}

/// A deferred entry with its place in the journal.
pub(crate) struct Positioned {
    pub(crate) entry: Entry,
    pub(crate) hash: Hash,
}

/// Bits of a provisional position that number a batch's deferred entries.
pub(crate) const SLOT_BITS: u32 = 20;

/// The provisional position of a batch's `k`-th deferred entry: `-((token << SLOT_BITS) | k)
/// - 1` as a database value (a `u64` above `i64::MAX` in Rust).
fn provisional(token: i64, k: usize) -> u64 {
    (-((token << SLOT_BITS) | k as i64) - 1) as u64
}

/// The range of provisional positions a batch with `token` can give out, as database values.
pub(crate) fn provisional_range(token: i64) -> (i64, i64) {
    (-((token << SLOT_BITS) | ((1 << SLOT_BITS) - 1)) - 1, -(token << SLOT_BITS) - 1)
}

/// A batch's random token: 40 bits, not 0.
fn batch_token() -> i64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    ((u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], 0, 0]) >> 8) as i64).max(1)
}

/// Where a batch's deferred entries landed, for results that named them provisionally (none,
/// by default).
#[derive(Default)]
pub(crate) struct Settled {
    base: u64,
    hashes: Vec<Hash>,
}

impl Settled {
    /// The real position and leaf hash of a provisional position (`None`: already real).
    fn real(&self, index: u64) -> Option<(u64, Hash)> {
        let value = index as i64;
        if value >= 0 {
            return None;
        }
        let k = ((-value - 1) & ((1 << SLOT_BITS) - 1)) as usize;
        self.hashes.get(k).map(|h| (self.base + k as u64, *h))
    }
}

/// Where a write can go back to if it fails.
struct Mark {
    frontier: Frontier,
    deferred: usize,
}

/// Perfect subtree hashes read from the database: leaves from `journal`, the rest from
/// `merkle_nodes`.
pub(crate) struct DbNodes<'c>(pub(crate) &'c Connection);

impl NodeSource for DbNodes<'_> {
    type Error = StoreError;

    fn perfect(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        let row: Option<Vec<u8>> = if level == 0 {
            self.0
                .prepare_cached("SELECT hash FROM journal WHERE idx = ?1")?
                .query_row([index as i64], |r| r.get(0))
                .optional()?
        } else {
            self.0
                .prepare_cached("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2")?
                .query_row(params![level, index as i64], |r| r.get(0))
                .optional()?
        };
        row.map(|h| to_hash(&h)).ok_or_else(|| {
            StoreError::Verify(format!(
                "merkle node for entries {}..{} is missing",
                index << level,
                (index + 1) << level
            ))
        })
    }
}

/// Number of journal entries.
pub(crate) fn journal_size(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn.query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM journal", (), |r| r.get::<_, i64>(0))? as u64)
}

impl JournalHead {
    fn load(conn: &Connection) -> Result<Self, StoreError> {
        let size = journal_size(conn)?;
        Ok(Self { frontier: Frontier::load(&DbNodes(conn), size)?, deferred: None })
    }

    /// The position the next entry gets (provisional while appends are deferred).
    fn next(&self) -> u64 {
        match &self.deferred {
            Some(d) => provisional(d.token, d.entries.len()),
            None => self.frontier.size(),
        }
    }

    fn mark(&self) -> Mark {
        Mark { frontier: self.frontier.clone(), deferred: self.deferred.as_ref().map_or(0, |d| d.entries.len()) }
    }

    fn reset(&mut self, mark: Mark) {
        self.frontier = mark.frontier;
        if let Some(d) = &mut self.deferred {
            d.entries.truncate(mark.deferred);
        }
    }

    /// Appends an entry; returns its position and leaf hash. While appends are deferred both
    /// are provisional (the hash is all zeros) until the batch settles them.
    fn append(
        &mut self,
        tx: &Connection,
        kind: EntryKind,
        tenant: &str,
        at: &str,
        digest: Hash,
        meta: String,
    ) -> Result<(u64, Hash), StoreError> {
        let index = self.next();
        let new = Deferred { kind, tenant: tenant.to_owned(), at: at.to_owned(), digest, meta };
        if let Some(deferred) = &mut self.deferred {
            if deferred.entries.len() >= 1 << SLOT_BITS {
                return Err(StoreError::Verify(format!("more than {} journal entries in one batch", 1 << SLOT_BITS)));
            }
            deferred.entries.push(new);
            return Ok((index, [0; 32]));
        }
        let entry = new.at(index);
        let hash = entry.leaf_hash();
        tx.prepare_cached(
            "INSERT INTO journal (idx, kind, tenant, at, payload_digest, meta, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            entry.index as i64,
            entry.kind.as_str(),
            entry.tenant,
            entry.at,
            &entry.payload_digest[..],
            entry.meta,
            &hash[..]
        ])?;
        for (level, idx, node) in self.frontier.push(hash) {
            tx.prepare_cached("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?.execute(params![
                level,
                idx as i64,
                &node[..]
            ])?;
        }
        Ok((entry.index, hash))
    }

    /// Gives the deferred entries their places after the tip: their entries with leaf hashes,
    /// and the Merkle nodes they complete. Appends are direct again afterwards.
    fn position_deferred(&mut self) -> (Vec<Positioned>, Vec<(u32, u64, Hash)>) {
        let base = self.frontier.size();
        let mut leaves = Vec::new();
        let mut nodes = Vec::new();
        let entries = self.deferred.take().map(|d| d.entries).unwrap_or_default();
        for (k, d) in entries.into_iter().enumerate() {
            let entry = d.at(base + k as u64);
            let hash = entry.leaf_hash();
            nodes.extend(self.frontier.push(hash));
            leaves.push(Positioned { entry, hash });
        }
        (leaves, nodes)
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

/// Sends a write's result once its transaction is committed (or drops it if the commit failed,
/// which the caller sees as [`StoreError::WriterGone`]).
type Reply = Box<dyn FnOnce(&Settled) + Send>;

type RunOp = Box<dyn FnOnce(&Connection, &mut JournalHead, &Signer) -> (bool, Reply) + Send>;

/// One write, run by the writer thread inside its own savepoint; `run` returns whether it
/// succeeded.
struct WriteOp {
    scope: Scope,
    run: RunOp,
    /// Put off by a batch because another host was filing for its tenant: the next batch
    /// waits for the tenant's lock rather than putting it off again.
    put_off: bool,
}

/// Time this process's writer spent waiting for the journal's write lock and holding it
/// (nanoseconds), and its batches: where several hosts share one journal, the held time
/// summed over the hosts against the wall clock shows how close the lock is to saturation.
#[derive(Debug, Default)]
struct LockCounters {
    wait_ns: std::sync::atomic::AtomicU64,
    held_ns: std::sync::atomic::AtomicU64,
    tenant_wait_ns: std::sync::atomic::AtomicU64,
    batches: std::sync::atomic::AtomicU64,
    writes: std::sync::atomic::AtomicU64,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The journal's tip as this process's writers last committed it. A writer takes it only
/// while it holds the journal lock, so the writers of one process need not re-read the tree's
/// edge from the database after each other's appends (only after another process's).
type Tip = Mutex<Frontier>;

fn writer_loop(
    mut conn: impl WriteConn,
    mut head: JournalHead,
    tip: &Tip,
    signer: &Signer,
    rx: &mpsc::Receiver<WriteOp>,
    healthy: &AtomicBool,
    lock: &LockCounters,
) {
    let mut put_off: Vec<WriteOp> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut put_off);
        if batch.is_empty() {
            match rx.recv() {
                Ok(first) => batch.push(first),
                Err(_) => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let saved = head.clone();
        let before = batch.len();
        let mut times = BatchTimes::default();
        let exclusive = !conn.defers() || batch.iter().any(|op| matches!(op.scope, Scope::Exclusive));
        let result = if exclusive {
            run_exclusive(&mut conn, &mut head, tip, signer, batch, &mut times)
        } else {
            run_deferred(&mut conn, &mut head, tip, signer, batch, &mut put_off, &mut times)
        };
        if let Some(at) = times.locked {
            lock.wait_ns.fetch_add(nanos(at - times.asked), Ordering::Relaxed);
            lock.held_ns.fetch_add(nanos(at.elapsed()), Ordering::Relaxed);
        }
        lock.tenant_wait_ns.fetch_add(nanos(times.tenant_wait), Ordering::Relaxed);
        lock.batches.fetch_add(1, Ordering::Relaxed);
        lock.writes.fetch_add((before - put_off.len()) as u64, Ordering::Relaxed);
        match result {
            Ok((replies, settled)) => {
                healthy.store(true, Ordering::Relaxed);
                replies.into_iter().for_each(|reply| reply(&settled));
            }
            Err(e) => {
                // Nothing of this batch is durable; no sender is told it is. Re-read the tip.
                healthy.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, "journal commit failed");
                conn.abort();
                head = JournalHead::load(conn.db()).unwrap_or(saved);
            }
        }
    }
}

/// When a batch asked for the journal lock and got it, and how long it waited for tenants.
struct BatchTimes {
    asked: std::time::Instant,
    locked: Option<std::time::Instant>,
    tenant_wait: std::time::Duration,
}

impl Default for BatchTimes {
    fn default() -> Self {
        Self { asked: std::time::Instant::now(), locked: None, tenant_wait: std::time::Duration::ZERO }
    }
}

type BatchResult = Result<(Vec<Reply>, Settled), StoreError>;

/// The whole batch under the journal lock (and, on PostgreSQL, every tenant's): SQLite always,
/// PostgreSQL when an exclusive write is in it.
fn run_exclusive(
    conn: &mut impl WriteConn,
    head: &mut JournalHead,
    tip: &Tip,
    signer: &Signer,
    batch: Vec<WriteOp>,
    times: &mut BatchTimes,
) -> BatchResult {
    conn.begin()?;
    conn.lock_exclusive()?;
    times.locked = Some(std::time::Instant::now());
    // The tip after the locks here (the other way round in `run_deferred`): a sibling writer
    // holds the tip only while it holds the filing lock, which this batch now holds alone.
    let mut shared = tip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    head.frontier = shared.clone();
    let db = conn.db();
    // Another process (a CLI command beside `serve`, another host on the same PostgreSQL)
    // may have appended since the last batch: the lock is held now.
    if journal_size(db)? != head.next() {
        *head = JournalHead::load(db)?;
    }
    let mut replies = Vec::with_capacity(batch.len());
    run_ops(db, head, signer, batch.into_iter().map(|op| op.run), &mut replies)?;
    conn.commit()?;
    *shared = head.frontier.clone();
    Ok((replies, Settled::default()))
}

/// PostgreSQL's concurrent batch: free writes, then each tenant's writes under its lock with
/// deferred appends, then the journal lock only for the appends themselves (one statement)
/// and the writes that need the tip.
fn run_deferred(
    conn: &mut impl WriteConn,
    head: &mut JournalHead,
    tip: &Tip,
    signer: &Signer,
    batch: Vec<WriteOp>,
    put_off: &mut Vec<WriteOp>,
    times: &mut BatchTimes,
) -> BatchResult {
    // Tenants of writes put off before are waited for; the others are taken only if free, and
    // writes for a tenant another host is filing for wait for this writer's next batch, so
    // that hosts file for different tenants side by side instead of queueing behind each
    // other's whole batches.
    let tenants = |waited_before: bool| {
        let mut t: Vec<String> = batch
            .iter()
            .filter(|op| op.put_off == waited_before)
            .filter_map(|op| if let Scope::Tenant(t) = &op.scope { Some(t.clone()) } else { None })
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    let wait = tenants(true);
    let mut attempt = tenants(false);
    attempt.retain(|t| wait.binary_search(t).is_err());
    conn.begin()?;
    let asked = std::time::Instant::now();
    let got = conn.lock_tenants(&str_refs(&wait), &str_refs(&attempt))?;
    let mut busy: Vec<&str> = attempt.iter().zip(&got).filter(|(_, got)| !**got).map(|(t, _)| t.as_str()).collect();
    if wait.is_empty() && !attempt.is_empty() && busy.len() == attempt.len() {
        // Every tenant is busy elsewhere: wait for them rather than commit nothing.
        conn.lock_tenants(&str_refs(&attempt), &[])?;
        busy.clear();
    }
    times.tenant_wait = asked.elapsed();
    // Free writes first: a claim must not see a message accepted in this batch, whose journal
    // position is still provisional.
    let (mut free, mut filing, mut at_tip) = (Vec::new(), Vec::new(), Vec::new());
    for op in batch {
        match &op.scope {
            Scope::Free => free.push(op.run),
            Scope::Tenant(t) if busy.contains(&t.as_str()) => put_off.push(WriteOp { put_off: true, ..op }),
            Scope::Tenant(_) => filing.push(op.run),
            Scope::Journal | Scope::Exclusive => at_tip.push(op.run),
        }
    }
    let mut replies = Vec::with_capacity(free.len() + filing.len() + at_tip.len());
    // (On any error the writer loop re-reads the head, deferrals and all.)
    head.deferred = Some(Deferrals { token: batch_token(), entries: Vec::new() });
    run_ops(conn.db(), head, signer, free.into_iter().chain(filing), &mut replies)?;
    if head.deferred.as_ref().is_some_and(|d| d.entries.is_empty()) && at_tip.is_empty() {
        // Nothing to append (heartbeats, claims, writes that changed nothing): no journal lock.
        head.deferred = None;
        conn.commit()?;
        return Ok((replies, Settled::default()));
    }
    let token = head.deferred.as_ref().map_or(0, |d| d.token);
    times.asked = std::time::Instant::now();
    // The process's tip first, then the journal lock: a writer holding the lock never waits
    // for another writer of this process.
    let mut shared = tip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let size = conn.lock_journal()?;
    times.locked = Some(std::time::Instant::now());
    head.frontier = shared.clone();
    if size != head.frontier.size() {
        head.frontier = Frontier::load(&DbNodes(conn.db()), size)?;
    }
    let base = head.frontier.size();
    let (leaves, nodes) = head.position_deferred();
    if !leaves.is_empty() {
        conn.append_deferred(base, token, &leaves, &nodes)?;
    }
    let settled = Settled { base, hashes: leaves.iter().map(|l| l.hash).collect() };
    run_ops(conn.db(), head, signer, at_tip.into_iter(), &mut replies)?;
    conn.commit()?;
    *shared = head.frontier.clone();
    Ok((replies, settled))
}

fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Runs writes one after the other, each in its own savepoint: one bad write fails alone,
/// not the batch.
fn run_ops(
    db: &Connection,
    head: &mut JournalHead,
    signer: &Signer,
    ops: impl Iterator<Item = RunOp>,
    replies: &mut Vec<Reply>,
) -> Result<(), StoreError> {
    // On PostgreSQL, closing one savepoint and opening the next is one round trip.
    let postgres = db.dialect() == Dialect::Postgres;
    let mut ops = ops.peekable();
    if ops.peek().is_none() {
        return Ok(());
    }
    db.execute("SAVEPOINT op", ())?;
    while let Some(op) = ops.next() {
        let mark = head.mark();
        let (ok, reply) = op(db, head, signer);
        if !ok {
            head.reset(mark);
            db.execute("ROLLBACK TO SAVEPOINT op", ())?;
        }
        let more = ops.peek().is_some();
        if postgres && more {
            db.execute("RELEASE SAVEPOINT op; SAVEPOINT op", ())?;
        } else {
            db.execute("RELEASE SAVEPOINT op", ())?;
            if more {
                db.execute("SAVEPOINT op", ())?;
            }
        }
        replies.push(reply);
    }
    Ok(())
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
    let id = tx
        .prepare_cached(
            "INSERT INTO messages (tenant, uuid, standard, version, message_type, message_name, direction, created_at,
             received_at, journal_idx, entry_hash, payload_digest, state, claimed_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'accepted', ?13)",
        )?
        .insert(params![
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
            msg.host,
        ])?;
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

/// A message's tenant, uuid and state; `scope` is the tenant the caller named (and whose lock
/// the write holds): a message of another tenant is not found.
fn message_head(tx: &Connection, id: i64, scope: &str) -> Result<(String, String, String), StoreError> {
    tx.prepare_cached("SELECT tenant, uuid, state FROM messages WHERE id = ?1 AND tenant = ?2")?
        .query_row(params![id, scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or(StoreError::UnknownMessage(id))
}

/// Puts the real journal position and entry hash into a receipt the batch gave out
/// provisionally (a message accepted, or found again, in the same batch).
fn settle_accepted(accepted: Accepted, settled: &Settled) -> Accepted {
    let settle = |mut receipt: Receipt| {
        if let Some((index, hash)) = settled.real(receipt.journal_index) {
            receipt.journal_index = index;
            receipt.entry_hash = hex::encode(hash);
        }
        receipt
    };
    match accepted {
        Accepted::New { id, receipt } => Accepted::New { id, receipt: settle(receipt) },
        Accepted::Duplicate(receipt) => Accepted::Duplicate(settle(receipt)),
    }
}

fn new_public_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn upsert_returning_id(
    tx: &Connection,
    select: &str,
    insert: &str,
    key: &[&dyn crate::sql::ToValue],
    extra: &[&dyn crate::sql::ToValue],
) -> Result<i64, StoreError> {
    if let Some(id) = tx.prepare_cached(select)?.query_row(key, |r| r.get(0)).optional()? {
        return Ok(id);
    }
    let mut all: Vec<&dyn crate::sql::ToValue> = key.to_vec();
    all.extend_from_slice(extra);
    Ok(tx.prepare_cached(insert)?.insert(all.as_slice())?)
}

fn processed(
    tx: &Connection,
    head: &mut JournalHead,
    scope: &str,
    id: i64,
    adapter: AdapterRef,
    records: Vec<EfileRecord>,
) -> Result<(), StoreError> {
    let (tenant, uuid, state) = message_head(tx, id, scope)?;
    if state != "accepted" {
        // Processed before a crash and re-queued: the first result stands.
        return Ok(());
    }
    let at = now_rfc3339();
    let idx = head.next();
    let mut produced = Vec::with_capacity(records.len());
    let mut parked = Vec::new();
    for (no, record) in records.iter().enumerate() {
        let content = serde_json::to_vec(record).map_err(|e| StoreError::Verify(e.to_string()))?;
        let digest = store_payload(tx, &content)?;
        match citizens::resolve(tx, &tenant, record, idx)? {
            Resolution::Citizen(citizen) => {
                let doc = file_record(tx, &tenant, citizen, record, id, &uuid, no as u32, digest, idx)?;
                produced.push(serde_json::json!({"document": doc, "version": 1, "digest": hex::encode(digest)}));
            }
            Resolution::Ambiguous { candidates, reason } => {
                let review = review::open(tx, &tenant, id, no as u32, record, digest, &candidates, &reason, idx)?;
                parked.push(serde_json::json!({"review": review, "record": no, "digest": hex::encode(digest)}));
            }
        }
    }
    let mut meta = serde_json::json!({
        "message": uuid,
        "adapter": {"name": adapter.name, "version": adapter.version, "hash": adapter.hash},
        "records": produced,
    });
    if !parked.is_empty() {
        meta["reviews"] = serde_json::Value::Array(parked);
    }
    let meta = meta.to_string();
    head.append(tx, EntryKind::MessageProcessed, &tenant, &at, NO_PAYLOAD, meta)?;
    tx.prepare_cached(
        "UPDATE messages SET state = 'processed', adapter = ?2, adapter_version = ?3, adapter_hash = ?4 WHERE id = ?1",
    )?
    .execute(params![id, adapter.name, adapter.version, adapter.hash])?;
    Ok(())
}

/// Files one record under a citizen: finds or opens the file (Akte) for its file-plan code and
/// the case (Vorgang), and adds the document with version 1 whose content is the payload
/// `digest`, recorded by journal entry `idx`. Returns the document's public id.
#[allow(clippy::too_many_arguments, reason = "one row in each of five tables")]
fn file_record(
    tx: &Connection,
    tenant: &str,
    citizen: i64,
    record: &EfileRecord,
    message_id: i64,
    message_uuid: &str,
    record_no: u32,
    digest: Hash,
    idx: u64,
) -> Result<String, StoreError> {
    let file = upsert_returning_id(
        tx,
        "SELECT id FROM files WHERE citizen_id = ?1 AND file_plan_code = ?2",
        "INSERT INTO files (citizen_id, file_plan_code, public_id, subject) VALUES (?1, ?2, ?3, ?4)",
        &[&citizen, &record.file_plan_code],
        &[&new_public_id(), &record.file_subject],
    )?;
    let case_ref = record.case_ref.clone().unwrap_or_else(|| message_uuid.to_owned());
    let case = upsert_returning_id(
        tx,
        "SELECT id FROM cases WHERE file_id = ?1 AND case_type = ?2 AND case_ref = ?3",
        "INSERT INTO cases (file_id, case_type, case_ref, public_id) VALUES (?1, ?2, ?3, ?4)",
        &[&file, &record.case_type, &case_ref],
        &[&new_public_id()],
    )?;
    let doc_public = new_public_id();
    let document = tx
        .prepare_cached(
            "INSERT INTO documents (case_id, public_id, message_id, record_no, document_type, title, event_date,
             retention_deadline, retention_rule, confidentiality)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .insert(params![
            case,
            doc_public,
            message_id,
            record_no,
            record.document_type.as_str(),
            record.title,
            record.event_date,
            record.retention.deadline,
            record.retention.rule,
            record.confidentiality.as_str(),
        ])?;
    tx.prepare_cached(
        "INSERT INTO document_versions (document_id, version, content_digest, journal_idx) VALUES (?1, 1, ?2, ?3)",
    )?
    .execute(params![document, &digest[..], idx as i64])?;
    delivery::enqueue(tx, tenant, document, &doc_public, 1, citizen, idx)?;
    Ok(doc_public)
}

fn failed(
    tx: &Connection,
    head: &mut JournalHead,
    scope: &str,
    id: i64,
    adapter: Option<AdapterRef>,
    error: String,
) -> Result<(), StoreError> {
    let (tenant, uuid, state) = message_head(tx, id, scope)?;
    if state != "accepted" {
        return Ok(());
    }
    let meta = serde_json::json!({"message": uuid, "adapter": adapter, "error": error}).to_string();
    head.append(tx, EntryKind::MessageFailed, &tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    let (name, version, hash) = match adapter {
        Some(a) => (Some(a.name), Some(a.version), Some(a.hash)),
        None => (None, None, None),
    };
    tx.prepare_cached("UPDATE messages SET state = 'failed', error = ?2, adapter = ?3, adapter_version = ?4, adapter_hash = ?5 WHERE id = ?1")?
        .execute(params![id, error, name, version, hash])?;
    Ok(())
}

/// Columns 1 to 9 of a `messages` row selected as `m.tenant, m.standard, m.version,
/// m.message_type, m.message_name, m.uuid, m.created_at, m.received_at, m.journal_idx`.
fn message_info(r: &crate::sql::Row) -> Result<MessageInfo, crate::sql::Error> {
    Ok(MessageInfo {
        tenant_ags: r.get(1)?,
        standard: r.get(2)?,
        version: r.get(3)?,
        message_type: r.get(4)?,
        message_name: r.get(5)?,
        message_uuid: r.get(6)?,
        created_at: r.get(7)?,
        received_at: r.get(8)?,
        journal_index: r.get::<_, i64>(9)? as u64,
    })
}

/// Accepted messages (with `clause` added to the `WHERE`), oldest first.
fn pending_where(c: &Connection, clause: &str, params: impl Params) -> Result<Vec<PendingMessage>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT m.id, m.tenant, m.standard, m.version, m.message_type, m.message_name, m.uuid, m.created_at,
                m.received_at, m.journal_idx, p.data
         FROM messages m JOIN payloads p ON p.digest = m.payload_digest
         WHERE m.state = 'accepted' {clause} ORDER BY m.id"
    ))?;
    let rows = stmt.query_map(params, |r| {
        let body: Vec<u8> = r.get::<_, Option<Vec<u8>>>(10)?.unwrap_or_default();
        Ok(PendingMessage { id: r.get(0)?, info: message_info(r)?, body: String::from_utf8_lossy(&body).into_owned() })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Messages per tenant and state.
pub(crate) fn message_counts(c: &Connection) -> Result<Vec<MessageCount>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT tenant, state, COUNT(*) FROM messages GROUP BY tenant, state ORDER BY tenant, state")?;
    let rows = stmt.query_map((), |r| {
        Ok(MessageCount {
            tenant: r.get(0)?,
            state: state_of(&r.get::<_, String>(1)?),
            count: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn state_of(s: &str) -> MessageState {
    match s {
        "processed" => MessageState::Processed,
        "failed" => MessageState::Failed,
        _ => MessageState::Accepted,
    }
}

impl Store {
    /// A receipt for the entry at `index`: the entry, its inclusion proof and the latest
    /// checkpoint (signed now if none covers the entry yet).
    fn receipt_at(&self, index: u64, message_uuid: Option<String>) -> Result<JournalReceipt, StoreError> {
        let mut checkpoint = self.latest_checkpoint()?;
        if checkpoint.as_ref().is_none_or(|cp| cp.tree_size <= index) {
            checkpoint = self.checkpoint()?;
        }
        let Some(checkpoint) = checkpoint else {
            return Err(StoreError::Verify(format!("no checkpoint covers entry {index}")));
        };
        self.read(|c| {
            let entry = read_entry(c, index)?;
            let salt: Option<Vec<u8>> = c
                .prepare_cached("SELECT salt FROM payloads WHERE digest = ?1")?
                .query_row([&entry.payload_digest[..]], |r| r.get(0))
                .optional()?;
            let proof = merkle::inclusion_proof(&DbNodes(c), index, checkpoint.tree_size)?;
            Ok(JournalReceipt {
                format: efile_bridge_journal::receipt::FORMAT.into(),
                message_uuid,
                leaf_hash: entry.leaf_hash(),
                entry,
                inclusion_proof: proof.iter().map(hex::encode).collect(),
                checkpoint,
                payload_salt: salt.map(hex::encode),
            })
        })
    }
}

impl Storage for Store {
    fn accept(&self, msg: NewMessage) -> Result<Accepted, StoreError> {
        self.write_settled(Scope::Tenant(msg.tenant.clone()), move |c, head, _| accept(c, head, msg), settle_accepted)
    }

    fn record_processed(
        &self,
        tenant: &str,
        message_id: i64,
        adapter: AdapterRef,
        records: Vec<EfileRecord>,
    ) -> Result<(), StoreError> {
        let scope = Scope::Tenant(tenant.to_owned());
        let tenant = tenant.to_owned();
        self.write(scope, move |c, head, _| processed(c, head, &tenant, message_id, adapter, records))
    }

    fn record_failed(
        &self,
        tenant: &str,
        message_id: i64,
        adapter: Option<AdapterRef>,
        error: String,
    ) -> Result<(), StoreError> {
        let scope = Scope::Tenant(tenant.to_owned());
        let tenant = tenant.to_owned();
        self.write(scope, move |c, head, _| failed(c, head, &tenant, message_id, adapter, error))
    }

    fn pending(&self) -> Result<Vec<PendingMessage>, StoreError> {
        self.read(|c| pending_where(c, "", ()))
    }

    fn heartbeat(&self, host: &str, now_ms: i64) -> Result<(), StoreError> {
        let host = host.to_owned();
        self.write(Scope::Free, move |c, _, _| {
            c.execute(
                "INSERT INTO hosts (id, heartbeat_ms) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                params![host, now_ms],
            )?;
            Ok(())
        })
    }

    fn claim_messages(
        &self,
        host: &str,
        own: bool,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<PendingMessage>, StoreError> {
        let host = host.to_owned();
        self.write(Scope::Free, move |c, _, _| {
            // Claims run under no lock of their own, beside other hosts' claims: on
            // PostgreSQL each row is locked as it is read, and rows another host is claiming
            // are skipped.
            let lock = if c.dialect() == Dialect::Postgres { " FOR UPDATE OF m SKIP LOCKED" } else { "" };
            let rows = c
                .prepare_cached(&format!(
                    "SELECT m.id, m.claimed_by FROM messages m LEFT JOIN hosts h ON h.id = m.claimed_by
                     WHERE m.state = 'accepted'
                       AND (m.claimed_by IS NULL OR h.heartbeat_ms IS NULL OR h.heartbeat_ms < ?2
                            OR (?3 = 1 AND m.claimed_by = ?1))
                     ORDER BY m.id LIMIT ?4{lock}"
                ))?
                .query_map(params![host, now_ms - lease_ms, own, limit], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, holder) in rows {
                // A row another host claimed after this statement began is read as it is now
                // (locked), but PostgreSQL re-checks only the message, not the join to `hosts`
                // (it keeps the old, missing, host): ask again, in a statement of its own.
                if let Some(other) = holder.filter(|h| *h != host) {
                    let alive: i64 = c
                        .prepare_cached("SELECT COUNT(*) FROM hosts WHERE id = ?1 AND heartbeat_ms >= ?2")?
                        .query_row(params![other, now_ms - lease_ms], |r| r.get(0))?;
                    if alive > 0 {
                        continue;
                    }
                }
                c.prepare_cached("UPDATE messages SET claimed_by = ?1 WHERE id = ?2")?.execute(params![host, id])?;
                out.extend(pending_where(c, "AND m.id = ?1", [id])?);
            }
            Ok(out)
        })
    }

    fn record_replayed(
        &self,
        tenant: &str,
        message_uuid: &str,
        adapter: AdapterRef,
        records: Vec<EfileRecord>,
        by: &str,
    ) -> Result<ReplayOutcome, StoreError> {
        let (tenant, uuid, by) = (tenant.to_owned(), message_uuid.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| replay::replayed(c, head, &tenant, &uuid, adapter, records, &by))
    }

    fn journaled_messages(&self, q: &MessageQuery) -> Result<Vec<JournaledMessage>, StoreError> {
        self.read(|c| {
            let order = if q.newest { "DESC" } else { "ASC" };
            let mut stmt = c.prepare(&format!(
                "SELECT m.id, m.tenant, m.standard, m.version, m.message_type, m.message_name, m.uuid, m.created_at,
                        m.received_at, m.journal_idx, p.data, m.state, m.adapter, m.adapter_version, m.adapter_hash, m.error
                 FROM messages m JOIN payloads p ON p.digest = m.payload_digest
                 WHERE m.tenant = ?1 AND (CAST(?2 AS TEXT) IS NULL OR m.message_type = ?2) AND m.state IN ('processed', 'failed')
                   AND m.journal_idx >= ?4 AND m.journal_idx < ?5
                   AND (CAST(?6 AS TEXT) IS NULL OR m.received_at >= ?6) AND (CAST(?7 AS TEXT) IS NULL OR m.received_at < ?7)
                 ORDER BY m.id {order} LIMIT ?3"
            ))?;
            let (from, to) = (q.from_index.min(i64::MAX as u64) as i64, q.to_index.min(i64::MAX as u64) as i64);
            let rows = stmt.query_map(params![q.tenant, q.message_type, q.limit, from, to, q.from_time, q.to_time], |r| {
                let body: Option<Vec<u8>> = r.get(10)?;
                let adapter = match (r.get::<_, Option<String>>(12)?, r.get::<_, Option<String>>(13)?, r.get::<_, Option<String>>(14)?) {
                    (Some(name), Some(version), Some(hash)) => Some(AdapterRef { name, version, hash }),
                    _ => None,
                };
                Ok((
                    r.get::<_, i64>(0)?,
                    JournaledMessage {
                        info: message_info(r)?,
                        body: body.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
                        state: state_of(&r.get::<_, String>(11)?),
                        adapter,
                        records: Vec::new(),
                        error: r.get(15)?,
                    },
                ))
            })?;
            let mut out = rows.collect::<Result<Vec<_>, _>>()?;
            if q.newest {
                out.reverse();
            }
            for (id, m) in &mut out {
                // Record order: the document's position in the adapter's output.
                // The latest version of each document: a replay compares with what is in force.
                let mut numbered: Vec<(i64, Vec<u8>)> = c
                    .prepare_cached(
                        "SELECT d.record_no, p.data FROM documents d
                         JOIN document_versions v ON v.document_id = d.id
                              AND v.version = (SELECT MAX(version) FROM document_versions WHERE document_id = d.id)
                         JOIN payloads p ON p.digest = v.content_digest WHERE d.message_id = ?1
                         UNION ALL
                         SELECT r.record_no, p.data FROM reviews r JOIN payloads p ON p.digest = r.content_digest
                         WHERE r.message_id = ?1 AND r.decided_idx IS NULL",
                    )?
                    .query_map([*id], |r| Ok((r.get(0)?, r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default())))?
                    .collect::<Result<_, _>>()?;
                numbered.sort_by_key(|(no, _)| *no);
                m.records = numbered.into_iter().filter_map(|(_, data)| serde_json::from_slice(&data).ok()).collect();
            }
            Ok(out.into_iter().map(|(_, m)| m).collect())
        })
    }

    fn message_status(&self, tenant: Option<&str>, uuid: &str) -> Result<Option<MessageStatus>, StoreError> {
        self.read(|c| {
            let row = c
                .prepare_cached(
                    "SELECT id, tenant, journal_idx, entry_hash, received_at, message_type, direction, state, error,
                            adapter, adapter_version, adapter_hash
                     FROM messages WHERE uuid = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant = ?2) ORDER BY id LIMIT 1",
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
                            reviews: Vec::new(),
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
            status.reviews = c
                .prepare_cached("SELECT public_id FROM reviews WHERE message_id = ?1 AND decided_idx IS NULL ORDER BY record_no")?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
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

    fn search_citizens(
        &self,
        tenant: &str,
        name: Option<&str>,
        birth_date: Option<&str>,
    ) -> Result<Vec<CitizenSummary>, StoreError> {
        let needle = name.map(str::to_lowercase);
        Ok(self
            .citizens(tenant)?
            .into_iter()
            .filter(|c| needle.as_deref().is_none_or(|n| c.display_name.to_lowercase().contains(n)))
            .filter(|c| birth_date.is_none_or(|d| c.birth_date.as_deref().is_some_and(|b| b.starts_with(d))))
            .collect())
    }

    fn messages(
        &self,
        tenant: Option<&str>,
        state: Option<MessageState>,
        limit: u32,
    ) -> Result<Vec<MessageLine>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT tenant, uuid, message_type, journal_idx, received_at, state, error FROM messages
                 WHERE (CAST(?1 AS TEXT) IS NULL OR tenant = ?1) AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![tenant, state.map(MessageState::as_str), limit], |r| {
                Ok(MessageLine {
                    tenant: r.get(0)?,
                    message_uuid: r.get(1)?,
                    message_type: r.get(2)?,
                    journal_index: r.get::<_, i64>(3)? as u64,
                    received_at: r.get(4)?,
                    state: state_of(&r.get::<_, String>(5)?),
                    error: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn message_counts(&self) -> Result<Vec<MessageCount>, StoreError> {
        self.read(message_counts)
    }

    fn citizen_file(&self, tenant: &str, citizen_id: &str) -> Result<Option<CitizenFile>, StoreError> {
        self.read(|c| citizen_file(c, tenant, citizen_id))
    }

    fn document(&self, tenant: &str, document_id: &str) -> Result<Option<DocumentDetail>, StoreError> {
        Ok(self.read(|c| documents::content(c, tenant, document_id, false))?.map(|c| c.detail))
    }

    fn document_content(&self, tenant: &str, document_id: &str) -> Result<Option<DocumentContent>, StoreError> {
        self.read(|c| documents::content(c, tenant, document_id, true))
    }

    fn document_proof(&self, tenant: &str, document_id: &str) -> Result<Option<DocumentProof>, StoreError> {
        let Some(detail) = self.document(tenant, document_id)? else { return Ok(None) };
        let Some(latest) = detail.versions.last() else { return Ok(None) };
        let receipt = self.receipt_at(latest.journal_index, Some(detail.message.uuid.clone()))?;
        Ok(Some(DocumentProof {
            document_id: document_id.to_owned(),
            version: latest.version,
            digest: latest.digest.clone(),
            receipt,
            confidentiality: detail.document.confidentiality.clone(),
        }))
    }

    fn message_flow(&self, since_24h: &str, sample: u32) -> Result<Vec<TenantFlow>, StoreError> {
        self.read(|c| documents::flow(c, since_24h, sample))
    }

    fn checkpoints(&self, limit: u32) -> Result<Vec<Checkpoint>, StoreError> {
        self.read(|c| documents::checkpoints(c, limit))
    }

    fn record_verify(&self, run: &VerifyRun) -> Result<(), StoreError> {
        let value = serde_json::to_string(run).map_err(|e| StoreError::Verify(e.to_string()))?;
        self.write(Scope::Free, move |c, _, _| {
            c.prepare_cached(
                "INSERT INTO settings (key, value) VALUES ('last_verify', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([&value])?;
            Ok(())
        })
    }

    fn last_verify(&self) -> Result<Option<VerifyRun>, StoreError> {
        let value: Option<String> = self.read(|c| {
            Ok(c.prepare_cached("SELECT value FROM settings WHERE key = 'last_verify'")?
                .query_row((), |r| r.get(0))
                .optional()?)
        })?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    fn verify(&self, progress: &(dyn Fn(VerifyStage) + Sync)) -> Result<VerifyReport, StoreError> {
        self.read(|c| verify::verify(c, &self.public_key, progress))
    }

    fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.write(Scope::Journal, |c, head, signer| make_checkpoint(c, head, signer))
    }

    fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.read(|c| checkpoint_where(c, "ORDER BY tree_size DESC LIMIT 1", None))
    }

    fn checkpoint_at(&self, tree_size: u64) -> Result<Option<Checkpoint>, StoreError> {
        self.read(|c| checkpoint_where(c, "WHERE tree_size = ?1", Some(tree_size)))
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.read(|c| {
            let latest = checkpoint_where(c, "ORDER BY tree_size DESC LIMIT 1", None)?.map_or(0, |cp| cp.tree_size);
            if old > new || new > latest {
                return Err(StoreError::NotFound(format!(
                    "no consistency proof from {old} to {new}: sizes must satisfy old <= new <= {latest} (latest checkpoint)"
                )));
            }
            merkle::consistency_proof(&DbNodes(c), old, new)
        })
    }

    fn receipt(&self, tenant: Option<&str>, uuid: &str) -> Result<Option<JournalReceipt>, StoreError> {
        let found = self.read(|c| {
            c.prepare_cached(
                "SELECT journal_idx FROM messages WHERE uuid = ?1 AND (CAST(?2 AS TEXT) IS NULL OR tenant = ?2) ORDER BY id LIMIT 1",
            )?
            .query_row(params![uuid, tenant], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(StoreError::from)
        })?;
        let Some(index) = found.map(|i| i as u64) else { return Ok(None) };
        self.receipt_at(index, Some(uuid.to_owned())).map(Some)
    }

    fn public_key(&self) -> PublicKey {
        self.public_key.clone()
    }

    fn apply_config(&self, digest: String, meta: serde_json::Value) -> Result<bool, StoreError> {
        self.write(Scope::Exclusive, move |c, head, _| {
            let last: Option<String> = c
                .prepare_cached("SELECT value FROM settings WHERE key = 'config_digest'")?
                .query_row((), |r| r.get(0))
                .optional()?;
            if last.as_deref() == Some(digest.as_str()) {
                return Ok(false);
            }
            let meta = serde_json::json!({"config_digest": digest, "config": meta}).to_string();
            head.append(c, EntryKind::ConfigApplied, "-", &now_rfc3339(), NO_PAYLOAD, meta)?;
            c.prepare_cached(
                "INSERT INTO settings (key, value) VALUES ('config_digest', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([&digest])?;
            Ok(true)
        })
    }

    fn retention_run(&self, today: &str, dry_run: bool) -> Result<Vec<Deletion>, StoreError> {
        let today = today.to_owned();
        if dry_run {
            return self.read(|c| retention::candidates(c, &today));
        }
        self.write(Scope::Exclusive, move |c, head, _| retention::run(c, head, &today))
    }

    fn reviews(&self, tenant: Option<&str>, open_only: bool) -> Result<Vec<ReviewItem>, StoreError> {
        self.read(|c| review::list(c, tenant, open_only))
    }

    fn review(&self, tenant: Option<&str>, review_id: &str) -> Result<Option<(ReviewItem, EfileRecord)>, StoreError> {
        self.read(|c| review::get(c, tenant, review_id))
    }

    fn decide_review(
        &self,
        tenant: Option<&str>,
        review_id: &str,
        decision: ReviewDecision,
        by: &str,
    ) -> Result<ReviewItem, StoreError> {
        let (tenant, review_id, by) = (tenant.map(str::to_owned), review_id.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| {
            review::decide(c, head, tenant.as_deref(), &review_id, decision, &by)
        })
    }

    fn configure_sinks(&self, sinks: Vec<(String, String)>) -> Result<(), StoreError> {
        self.write(Scope::Exclusive, move |c, _, _| delivery::configure(c, &sinks))
    }

    fn due_deliveries(
        &self,
        host: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
        busy: &[i64],
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let (host, busy) = (host.to_owned(), busy.to_vec());
        self.write(Scope::Free, move |c, _, _| delivery::claim_due(c, &host, now_ms, lease_ms, limit, &busy))
    }

    fn release_deliveries(&self, host: &str, now_ms: i64) -> Result<u64, StoreError> {
        let host = host.to_owned();
        // Exclusive: it changes many rows of every tenant, which another host's (or this
        // host's previous run's) filing may hold in a different order; run alone, it waits for
        // nobody's row (it runs once, at start).
        self.write(Scope::Exclusive, move |c, _, _| {
            let n = c
                .prepare_cached(
                    "UPDATE deliveries SET next_at_ms = ?2, claimed_by = NULL
                     WHERE state = 'pending' AND claimed_by = ?1",
                )?
                .execute(params![host, now_ms])?;
            Ok(n as u64)
        })
    }

    fn next_delivery_at(&self) -> Result<Option<i64>, StoreError> {
        self.read(delivery::next_at)
    }

    fn delivery_item(&self, id: i64) -> Result<DeliveryItem, StoreError> {
        self.read(|c| delivery::item(c, id))
    }

    fn delivery_attempted(&self, tenant: &str, id: i64, outcome: AttemptOutcome) -> Result<(), StoreError> {
        let scope = Scope::Tenant(tenant.to_owned());
        let tenant = tenant.to_owned();
        self.write(scope, move |c, head, _| delivery::attempted(c, head, &tenant, id, outcome))
    }

    fn deliveries(
        &self,
        tenant: Option<&str>,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        self.read(|c| delivery::list(c, tenant, state, limit))
    }

    fn delivery(&self, tenant: Option<&str>, delivery_id: &str) -> Result<Option<DeliveryView>, StoreError> {
        self.read(|c| delivery::get(c, tenant, delivery_id))
    }

    fn redeliver(&self, tenant: Option<&str>, delivery_id: &str, by: &str) -> Result<DeliveryView, StoreError> {
        let (tenant, id, by) = (tenant.map(str::to_owned), delivery_id.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| delivery::redeliver(c, head, tenant.as_deref(), &id, &by))
    }

    fn discard(
        &self,
        tenant: Option<&str>,
        delivery_id: &str,
        by: &str,
        reason: &str,
    ) -> Result<DeliveryView, StoreError> {
        let (tenant, id, by, reason) =
            (tenant.map(str::to_owned), delivery_id.to_owned(), by.to_owned(), reason.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| delivery::discard(c, head, tenant.as_deref(), &id, &by, &reason))
    }

    fn register_adapter(&self, adapter: InstalledAdapter, by: &str) -> Result<InstalledAdapter, StoreError> {
        let by = by.to_owned();
        self.write(Scope::Exclusive, move |c, head, _| registry::register(c, head, adapter, &by))
    }

    fn remove_adapter(&self, name: &str, version: &str, by: &str) -> Result<InstalledAdapter, StoreError> {
        let (name, version, by) = (name.to_owned(), version.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| registry::remove(c, head, &name, &version, &by))
    }

    fn installed_adapters(&self) -> Result<Vec<InstalledAdapter>, StoreError> {
        self.read(registry::list)
    }

    fn activate_adapter(
        &self,
        tenant: &str,
        scope: &str,
        name: &str,
        version: &str,
        by: &str,
    ) -> Result<Activation, StoreError> {
        let (tenant, scope, name, version, by) =
            (tenant.to_owned(), scope.to_owned(), name.to_owned(), version.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| {
            registry::activate(c, head, &tenant, &scope, &name, &version, &by)
        })
    }

    fn rollback_adapter(&self, tenant: &str, by: &str) -> Result<Activation, StoreError> {
        let (tenant, by) = (tenant.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| registry::rollback(c, head, &tenant, &by))
    }

    fn activations(&self, tenant: Option<&str>) -> Result<Vec<Activation>, StoreError> {
        self.read(|c| registry::history(c, tenant))
    }

    fn registry_generation(&self) -> Result<i64, StoreError> {
        self.read(registry::generation)
    }

    fn start_shadow(&self, tenant: &str, name: &str, version: &str, by: &str) -> Result<u64, StoreError> {
        let (tenant, name, version, by) = (tenant.to_owned(), name.to_owned(), version.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| registry::start_shadow(c, head, &tenant, &name, &version, &by))
    }

    fn stop_shadow(&self, tenant: &str, by: &str) -> Result<u64, StoreError> {
        let (tenant, by) = (tenant.to_owned(), by.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| registry::stop_shadow(c, head, &tenant, &by))
    }

    fn shadows(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(registry::shadows)
    }

    fn record_shadow(&self, tenant: &str, candidate: &str, entry: serde_json::Value) -> Result<(), StoreError> {
        let (tenant, candidate) = (tenant.to_owned(), candidate.to_owned());
        self.write(Scope::Free, move |c, _, _| {
            c.prepare_cached("INSERT INTO shadow_results (tenant, candidate, entry, at) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![tenant, candidate, entry.to_string(), now_rfc3339()])?;
            Ok(())
        })
    }

    fn shadow_results(&self, tenant: &str, limit: u32) -> Result<Vec<serde_json::Value>, StoreError> {
        self.read(|c| {
            let rows: Vec<(String, String, String)> = c
                .prepare_cached(
                    "SELECT candidate, entry, at FROM shadow_results WHERE tenant = ?1 ORDER BY id DESC LIMIT ?2",
                )?
                .query_map(params![tenant, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows
                .into_iter()
                .map(|(candidate, entry, at)| {
                    let mut v: serde_json::Value = serde_json::from_str(&entry).unwrap_or_default();
                    v["candidate"] = candidate.into();
                    v["at"] = at.into();
                    v
                })
                .collect())
        })
    }

    fn hold_add(&self, tenant: &str, citizen_id: &str, reason: &str) -> Result<Hold, StoreError> {
        let (tenant, citizen_id, reason) = (tenant.to_owned(), citizen_id.to_owned(), reason.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| retention::hold_add(c, head, &tenant, &citizen_id, &reason))
    }

    fn hold_remove(&self, tenant: &str, citizen_id: &str) -> Result<bool, StoreError> {
        let (tenant, citizen_id) = (tenant.to_owned(), citizen_id.to_owned());
        self.write(Scope::Exclusive, move |c, head, _| retention::hold_remove(c, head, &tenant, &citizen_id))
    }

    fn holds(&self, tenant: Option<&str>) -> Result<Vec<Hold>, StoreError> {
        self.read(|c| retention::holds(c, tenant))
    }

    fn write_lock(&self) -> WriteLockTimes {
        let secs = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed) as f64 / 1e9;
        WriteLockTimes {
            wait_seconds: secs(&self.lock.wait_ns),
            held_seconds: secs(&self.lock.held_ns),
            tenant_wait_seconds: secs(&self.lock.tenant_wait_ns),
            batches: self.lock.batches.load(Ordering::Relaxed),
            writes: self.lock.writes.load(Ordering::Relaxed),
        }
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
            let sql = format!(
                "SELECT d.id, {}
                 FROM documents d
                 JOIN document_versions v ON v.document_id = d.id
                      AND v.version = (SELECT MAX(version) FROM document_versions WHERE document_id = d.id)
                 JOIN messages m ON m.id = d.message_id
                 LEFT JOIN payloads p ON p.digest = v.content_digest
                 WHERE d.case_id = ?1 ORDER BY d.event_date, d.id",
                documents::DOCUMENT_VIEW_COLUMNS
            );
            let drows = c
                .prepare_cached(&sql)?
                .query_map([cid], |r| Ok((r.get::<_, i64>(0)?, documents::document_view(r, 1)?.0)))?
                .collect::<Result<Vec<_>, _>>()?;
            let drows = drows
                .into_iter()
                .map(|(row, mut view)| {
                    view.deliveries = delivery::of_document(c, row)?;
                    Ok(view)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
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
        withheld_documents: 0,
    }))
}

/// Signs a checkpoint at the current size if the journal grew since the last one.
fn make_checkpoint(c: &Connection, head: &JournalHead, signer: &Signer) -> Result<Option<Checkpoint>, StoreError> {
    let latest = checkpoint_where(c, "ORDER BY tree_size DESC LIMIT 1", None)?;
    let size = head.frontier.size();
    if size == 0 || latest.as_ref().is_some_and(|cp| cp.tree_size >= size) {
        return Ok(latest);
    }
    let cp = signer.sign(size, head.frontier.root(), now_rfc3339());
    c.prepare_cached("INSERT INTO checkpoints (tree_size, root, at, signature) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![cp.tree_size as i64, &cp.root_hash[..], cp.time, cp.signature])?;
    tracing::debug!(tree_size = cp.tree_size, "checkpoint signed");
    Ok(Some(cp))
}

pub(crate) fn checkpoint_where(
    c: &Connection,
    clause: &str,
    size: Option<u64>,
) -> Result<Option<Checkpoint>, StoreError> {
    let origin = checkpoint_origin(c)?;
    let sql = format!("SELECT tree_size, root, at, signature FROM checkpoints {clause}");
    let mut stmt = c.prepare_cached(&sql)?;
    let map = |r: &crate::sql::Row| -> Result<Checkpoint, crate::sql::Error> {
        Ok(Checkpoint {
            origin: origin.clone(),
            tree_size: r.get::<_, i64>(0)? as u64,
            root_hash: to_hash(&r.get::<_, Vec<u8>>(1)?),
            time: r.get(2)?,
            signature: r.get(3)?,
        })
    };
    Ok(match size {
        Some(n) => stmt.query_row([n as i64], map).optional()?,
        None => stmt.query_row((), map).optional()?,
    })
}

/// Every checkpoint, oldest first.
pub(crate) fn all_checkpoints(c: &Connection) -> Result<Vec<Checkpoint>, StoreError> {
    let origin = checkpoint_origin(c)?;
    let mut stmt = c.prepare("SELECT tree_size, root, at, signature FROM checkpoints ORDER BY tree_size")?;
    let rows = stmt.query_map((), |r| {
        Ok(Checkpoint {
            origin: origin.clone(),
            tree_size: r.get::<_, i64>(0)? as u64,
            root_hash: to_hash(&r.get::<_, Vec<u8>>(1)?),
            time: r.get(2)?,
            signature: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The origin is not stored per checkpoint: the installation has one, recorded at first start.
fn checkpoint_origin(c: &Connection) -> Result<String, StoreError> {
    c.prepare_cached("SELECT value FROM settings WHERE key = 'origin'")?
        .query_row((), |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Verify("the installation's origin is not recorded".into()))
}

/// One journal entry as stored.
pub(crate) fn read_entry(c: &Connection, index: u64) -> Result<Entry, StoreError> {
    let row = c
        .prepare_cached("SELECT kind, tenant, at, payload_digest, meta FROM journal WHERE idx = ?1")?
        .query_row([index as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, Vec<u8>>(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((kind, tenant, at, digest, meta)) = row else {
        return Err(StoreError::NotFound(format!("journal entry {index} does not exist")));
    };
    let kind = EntryKind::parse(&kind)
        .ok_or_else(|| StoreError::Verify(format!("journal entry {index} has unknown kind `{kind}`")))?;
    Ok(Entry { index, kind, tenant, at, payload_digest: to_hash(&digest), meta })
}

/// At start: the latest checkpoint is correctly signed, the journal has at least its entries,
/// and they still give its root.
fn check_against_latest_checkpoint(c: &Connection, head: &JournalHead, key: &PublicKey) -> Result<(), StoreError> {
    let Some(cp) = checkpoint_where(c, "ORDER BY tree_size DESC LIMIT 1", None)? else { return Ok(()) };
    cp.verify(key).map_err(|e| StoreError::Verify(e.to_string()))?;
    if cp.tree_size > head.frontier.size() {
        return Err(StoreError::Verify(format!(
            "the checkpoint at tree size {} covers more entries than the journal holds ({})",
            cp.tree_size,
            head.frontier.size()
        )));
    }
    let root = merkle::root(&DbNodes(c), cp.tree_size)?;
    if root != cp.root_hash {
        return Err(StoreError::Verify(format!(
            "entries 0..{} give root {} but the checkpoint signed {}",
            cp.tree_size,
            hex::encode(root),
            hex::encode(cp.root_hash)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisional_positions_are_negative_in_their_batchs_range_and_settle_to_their_place() {
        for token in [1, batch_token(), batch_token(), (1 << 40) - 1] {
            let (lo, hi) = provisional_range(token);
            for k in [0, 1, 511, (1 << SLOT_BITS) - 1] {
                let value = provisional(token, k) as i64;
                assert!(value < 0 && (lo..=hi).contains(&value), "token {token} k {k}: {value} not in {lo}..={hi}");
            }
            // Other batches' ranges do not overlap this one.
            let (next_lo, next_hi) = provisional_range(token + 1);
            assert!(next_hi < lo || next_lo > hi);
        }
        let token = batch_token();
        assert!((1..1 << 40).contains(&token));
        let settled = Settled { base: 1000, hashes: vec![[1; 32], [2; 32], [3; 32]] };
        assert_eq!(settled.real(provisional(token, 2)), Some((1002, [3; 32])));
        assert_eq!(settled.real(provisional(token, 0)), Some((1000, [1; 32])));
        assert_eq!(settled.real(17), None, "a real position stays");
        assert_eq!(settled.real(provisional(token, 3)), None, "no such entry in the batch");
    }

    #[test]
    fn tenant_keys_are_stable_across_hosts_and_releases() {
        // The same key on every host (the lock) and in every release (hosts of one release
        // must agree): FNV-1a, fixed values.
        assert_eq!(tenant_key(""), 0x811c_9dc5_u32 as i32);
        assert_eq!(tenant_key("09162000"), tenant_key("09162000"));
        assert_ne!(tenant_key("09162000"), tenant_key("06412000"));
        assert_eq!(tenant_key("a"), 0xe40c_292c_u32 as i32);
    }
}
