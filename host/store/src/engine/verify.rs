//! `verify`: recompute everything the journal commits to and name the first thing that differs.
//!
//! 1. every checkpoint's signature;
//! 2. every entry, in order: no gaps, its leaf hash recomputed from its content, every stored
//!    Merkle node recomputed, and at each checkpoint size the signed root;
//! 3. the consistency proof between each pair of consecutive checkpoints (the signed history
//!    only ever grew);
//! 4. every message row against its acceptance entry, every record version against the
//!    processing (or review decision) entry that lists it, every review item against the
//!    entries that opened and decided it;
//! 5. every payload rehashed (in parallel, it is the bulk of the bytes), every deleted payload
//!    backed by a deletion entry, and no payload that no entry refers to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use crate::sql::{Connection, OptionalExtension, params};
use efile_bridge_journal::checkpoint::PublicKey;
use efile_bridge_journal::merkle::{self, Frontier};
use efile_bridge_journal::{Entry, EntryKind, Hash, payload_digest};

use super::{DbNodes, all_checkpoints, to_hash};
use crate::{StoreError, VerifyReport, VerifyStage};

fn fail(message: String) -> StoreError {
    StoreError::Verify(message)
}

fn short(h: &Hash) -> String {
    hex::encode(&h[..8])
}

/// What the journal says about payloads and record versions.
#[derive(Default)]
struct Commitments {
    /// Message body digest → acceptance entry.
    bodies: HashMap<Hash, u64>,
    /// (document, version) → (content digest, processing entry).
    versions: HashMap<(String, u32), (Hash, u64)>,
    /// Record content digests.
    record_digests: HashMap<Hash, u64>,
    /// Deleted payload digest → deletion entry.
    deleted: HashMap<Hash, u64>,
    /// Review id → (waiting record's digest, entry that opened it).
    reviews: HashMap<String, (Hash, u64)>,
    /// Review id → entry that decided it.
    decisions: HashMap<String, u64>,
    /// Adapter switch entry → (tenant, scope, name, version).
    switches: HashMap<u64, (String, String, Option<String>, Option<String>)>,
}

pub(crate) fn verify(
    c: &Connection,
    key: &PublicKey,
    progress: &(dyn Fn(VerifyStage) + Sync),
) -> Result<VerifyReport, StoreError> {
    let started = Instant::now();
    let mut report = VerifyReport::default();
    let checkpoints = all_checkpoints(c)?;
    for cp in &checkpoints {
        cp.verify(key).map_err(|e| fail(format!("checkpoint at tree size {}: {e}", cp.tree_size)))?;
    }
    let total: i64 = c.query_row("SELECT COUNT(*) FROM journal", (), |r| r.get(0))?;
    let total = total as u64;
    let mut commitments = Commitments::default();
    let mut frontier = Frontier::new();
    let mut pending_cps = checkpoints.iter().peekable();
    {
        let mut node_stmt = c.prepare("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2")?;
        let mut stmt =
            c.prepare("SELECT idx, kind, tenant, at, payload_digest, meta, hash FROM journal ORDER BY idx")?;
        let mut n = 0u64;
        stmt.for_each((), |r| -> Result<(), StoreError> {
            let idx = r.get::<_, i64>(0)? as u64;
            if idx != n {
                return Err(fail(format!("journal entry {n} is missing (the next stored entry is {idx})")));
            }
            let kind_text: String = r.get(1)?;
            let kind = EntryKind::parse(&kind_text)
                .ok_or_else(|| fail(format!("journal entry {idx} has unknown kind `{kind_text}`")))?;
            let entry = Entry {
                index: idx,
                kind,
                tenant: r.get(2)?,
                at: r.get(3)?,
                payload_digest: to_hash(&r.get::<_, Vec<u8>>(4)?),
                meta: r.get(5)?,
            };
            let stored = to_hash(&r.get::<_, Vec<u8>>(6)?);
            let leaf = entry.leaf_hash();
            if leaf != stored {
                return Err(fail(format!(
                    "journal entry {idx} ({kind}): its content hashes to {} but the stored leaf hash is {}",
                    short(&leaf),
                    short(&stored)
                )));
            }
            for (level, i, node) in frontier.push(leaf) {
                let kept: Option<Vec<u8>> = node_stmt.query_row(params![level, i as i64], |r| r.get(0)).optional()?;
                let (lo, hi) = (i << level, (i + 1) << level);
                match kept {
                    None => return Err(fail(format!("merkle node for entries {lo}..{hi} is missing"))),
                    Some(h) if to_hash(&h) != node => {
                        return Err(fail(format!(
                            "merkle node for entries {lo}..{hi} differs from the recomputed tree"
                        )));
                    }
                    Some(_) => {}
                }
            }
            while let Some(cp) = pending_cps.next_if(|cp| cp.tree_size == frontier.size()) {
                let root = frontier.root();
                if root != cp.root_hash {
                    return Err(fail(format!(
                        "checkpoint at tree size {} (signed {}): signed root {} but entries 0..{} give {}",
                        cp.tree_size,
                        cp.time,
                        short(&cp.root_hash),
                        cp.tree_size,
                        short(&root)
                    )));
                }
                report.checkpoints += 1;
            }
            collect(&entry, &mut commitments)?;
            n += 1;
            if n.is_multiple_of(4096) {
                progress(VerifyStage::Entries(n, total));
            }
            Ok(())
        })?;
        report.entries = n;
        progress(VerifyStage::Entries(n, total));
    }
    if let Some(cp) = pending_cps.next() {
        return Err(fail(format!(
            "checkpoint at tree size {} covers more entries than the journal holds ({}): entries were removed",
            cp.tree_size, report.entries
        )));
    }
    for pair in checkpoints.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let proof = merkle::consistency_proof(&DbNodes(c), a.tree_size, b.tree_size)?;
        merkle::verify_consistency(a.tree_size, b.tree_size, &a.root_hash, &b.root_hash, &proof).map_err(|e| {
            fail(format!("checkpoints at tree sizes {} and {} are not consistent: {e}", a.tree_size, b.tree_size))
        })?;
        report.consistency_steps += 1;
    }
    check_messages(c, &commitments, &mut report)?;
    check_versions(c, &commitments, &mut report)?;
    check_reviews(c, &commitments)?;
    check_switches(c, &commitments)?;
    let payload_started = Instant::now();
    check_payloads(c, &commitments, &mut report, progress)?;
    report.payload_seconds = payload_started.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn collect(entry: &Entry, into: &mut Commitments) -> Result<(), StoreError> {
    match entry.kind {
        EntryKind::MessageAccepted => {
            into.bodies.insert(entry.payload_digest, entry.index);
        }
        EntryKind::MessageProcessed | EntryKind::ReviewDecided | EntryKind::MessageReplayed => {
            let malformed =
                |what: &str| fail(format!("journal entry {} ({}): malformed {what}", entry.index, entry.kind));
            let meta: serde_json::Value = serde_json::from_str(&entry.meta)
                .map_err(|e| fail(format!("journal entry {} ({}): meta is not JSON: {e}", entry.index, entry.kind)))?;
            for r in meta["records"].as_array().into_iter().flatten() {
                let (Some(doc), Some(version), Some(digest)) = (
                    r["document"].as_str(),
                    r["version"].as_u64(),
                    r["digest"].as_str().and_then(efile_bridge_journal::parse_hash),
                ) else {
                    return Err(malformed("record list"));
                };
                into.versions.insert((doc.to_owned(), version as u32), (digest, entry.index));
                into.record_digests.insert(digest, entry.index);
            }
            for r in meta["reviews"].as_array().into_iter().flatten() {
                let (Some(review), Some(digest)) =
                    (r["review"].as_str(), r["digest"].as_str().and_then(efile_bridge_journal::parse_hash))
                else {
                    return Err(malformed("review list"));
                };
                into.reviews.insert(review.to_owned(), (digest, entry.index));
                into.record_digests.entry(digest).or_insert(entry.index);
            }
            if entry.kind == EntryKind::ReviewDecided {
                let review = meta["review"].as_str().ok_or_else(|| malformed("review id"))?;
                into.decisions.insert(review.to_owned(), entry.index);
            }
        }
        EntryKind::AdapterActivated | EntryKind::AdapterRolledBack => {
            let meta: serde_json::Value = serde_json::from_str(&entry.meta)
                .map_err(|e| fail(format!("journal entry {} ({}): meta is not JSON: {e}", entry.index, entry.kind)))?;
            let text = |k: &str| meta[k].as_str().map(str::to_owned);
            let scope = text("scope")
                .ok_or_else(|| fail(format!("journal entry {} ({}): no scope", entry.index, entry.kind)))?;
            into.switches.insert(entry.index, (entry.tenant.clone(), scope, text("name"), text("version")));
        }
        EntryKind::PayloadDeleted => {
            into.deleted.insert(entry.payload_digest, entry.index);
        }
        _ => {}
    }
    Ok(())
}

fn check_messages(c: &Connection, commitments: &Commitments, report: &mut VerifyReport) -> Result<(), StoreError> {
    let mut stmt = c.prepare(
        "SELECT m.uuid, m.journal_idx, m.entry_hash, m.payload_digest, j.hash, j.kind
         FROM messages m LEFT JOIN journal j ON j.idx = m.journal_idx ORDER BY m.id",
    )?;
    let mut seen = std::collections::HashSet::new();
    stmt.for_each((), |r| -> Result<(), StoreError> {
        let uuid: String = r.get(0)?;
        let idx = r.get::<_, i64>(1)? as u64;
        let entry_hash = to_hash(&r.get::<_, Vec<u8>>(2)?);
        let digest = to_hash(&r.get::<_, Vec<u8>>(3)?);
        let leaf: Option<Vec<u8>> = r.get(4)?;
        let kind: Option<String> = r.get(5)?;
        if kind.as_deref() != Some(EntryKind::MessageAccepted.as_str()) {
            return Err(fail(format!("message {uuid}: journal entry {idx} is not its acceptance entry")));
        }
        if leaf.map(|l| to_hash(&l)) != Some(entry_hash) {
            return Err(fail(format!("message {uuid}: its receipt hash differs from journal entry {idx}")));
        }
        if commitments.bodies.get(&digest) != Some(&idx) {
            return Err(fail(format!(
                "message {uuid}: its payload digest differs from the one journal entry {idx} recorded"
            )));
        }
        seen.insert(idx);
        report.messages += 1;
        Ok(())
    })?;
    let missing = commitments.bodies.values().filter(|i| !seen.contains(*i)).min();
    if let Some(i) = missing {
        return Err(fail(format!("the message accepted by journal entry {i} is missing from the store")));
    }
    Ok(())
}

fn check_versions(c: &Connection, commitments: &Commitments, report: &mut VerifyReport) -> Result<(), StoreError> {
    let mut stmt = c.prepare(
        "SELECT d.public_id, v.version, v.content_digest, v.journal_idx
         FROM document_versions v JOIN documents d ON d.id = v.document_id ORDER BY v.id",
    )?;
    let mut seen = std::collections::HashSet::new();
    stmt.for_each((), |r| -> Result<(), StoreError> {
        let doc: String = r.get(0)?;
        let version = r.get::<_, i64>(1)? as u32;
        let digest = to_hash(&r.get::<_, Vec<u8>>(2)?);
        let idx = r.get::<_, i64>(3)? as u64;
        match commitments.versions.get(&(doc.clone(), version)) {
            None => return Err(fail(format!("record version {doc} v{version} is not recorded in any journal entry"))),
            Some((d, i)) if *i != idx || *d != digest => {
                return Err(fail(format!(
                    "record version {doc} v{version}: content digest {} differs from {} recorded by journal entry {i}",
                    short(&digest),
                    short(d)
                )));
            }
            Some(_) => report.record_versions += 1,
        }
        seen.insert((doc, version));
        Ok(())
    })?;
    let mut missing: Vec<_> = commitments.versions.iter().filter(|(k, _)| !seen.contains(*k)).collect();
    missing.sort_by_key(|(_, (_, i))| *i);
    if let Some(((doc, v), (_, i))) = missing.first() {
        return Err(fail(format!(
            "record version {doc} v{v}, recorded by journal entry {i}, is missing from the store"
        )));
    }
    Ok(())
}

/// Every review item against the entry that opened it and the one that decided it.
fn check_reviews(c: &Connection, commitments: &Commitments) -> Result<(), StoreError> {
    let mut stmt = c.prepare("SELECT public_id, content_digest, opened_idx, decided_idx FROM reviews ORDER BY id")?;
    let mut seen = std::collections::HashSet::new();
    stmt.for_each((), |r| -> Result<(), StoreError> {
        let review: String = r.get(0)?;
        let digest = to_hash(&r.get::<_, Vec<u8>>(1)?);
        let opened = r.get::<_, i64>(2)? as u64;
        let decided = r.get::<_, Option<i64>>(3)?.map(|i| i as u64);
        match commitments.reviews.get(&review) {
            None => return Err(fail(format!("review item {review} is not recorded in any journal entry"))),
            Some((d, i)) if *d != digest || *i != opened => {
                return Err(fail(format!(
                    "review item {review}: its record digest {} differs from {} recorded by journal entry {i}",
                    short(&digest),
                    short(d)
                )));
            }
            Some(_) => {}
        }
        let journaled = commitments.decisions.get(&review).copied();
        if journaled != decided {
            return Err(fail(match (journaled, decided) {
                (Some(i), _) => {
                    format!("review item {review}: decided by journal entry {i}, but the store says otherwise")
                }
                (None, _) => format!("review item {review}: marked decided, but no journal entry decided it"),
            }));
        }
        seen.insert(review);
        Ok(())
    })?;
    let mut missing: Vec<_> = commitments.reviews.iter().filter(|(k, _)| !seen.contains(*k)).collect();
    missing.sort_by_key(|(_, (_, i))| *i);
    if let Some((review, (_, i))) = missing.first() {
        return Err(fail(format!("review item {review}, opened by journal entry {i}, is missing from the store")));
    }
    Ok(())
}

/// Every adapter switch against the entry that recorded it: which adapter maps a tenant's
/// messages cannot be changed behind the journal's back.
fn check_switches(c: &Connection, commitments: &Commitments) -> Result<(), StoreError> {
    let mut stmt = c.prepare("SELECT idx, tenant, scope, name, version FROM activations ORDER BY id")?;
    let mut seen = std::collections::HashSet::new();
    stmt.for_each((), |r| -> Result<(), StoreError> {
        let idx = r.get::<_, i64>(0)? as u64;
        let row: (String, String, Option<String>, Option<String>) = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        match commitments.switches.get(&idx) {
            Some(entry) if *entry == row => {}
            _ => {
                return Err(fail(format!(
                    "adapter switch of tenant {} ({}) differs from journal entry {idx}",
                    row.0, row.1
                )));
            }
        }
        seen.insert(idx);
        Ok(())
    })?;
    if let Some(i) = commitments.switches.keys().filter(|i| !seen.contains(*i)).min() {
        return Err(fail(format!("the adapter switch recorded by journal entry {i} is missing from the store")));
    }
    Ok(())
}

/// A batch of payloads for a hashing thread.
type Batch = Vec<(Hash, Vec<u8>, Vec<u8>)>;

fn check_payloads(
    c: &Connection,
    commitments: &Commitments,
    report: &mut VerifyReport,
    progress: &(dyn Fn(VerifyStage) + Sync),
) -> Result<(), StoreError> {
    let total: i64 =
        c.query_row("SELECT CAST(COALESCE(SUM(LENGTH(data)), 0) AS BIGINT) FROM payloads", (), |r| r.get(0))?;
    let total = total as u64;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let (tx, rx) = mpsc::sync_channel::<Batch>(workers * 2);
    let rx = Arc::new(Mutex::new(rx));
    let mismatch: Mutex<Option<Hash>> = Mutex::new(None);
    std::thread::scope(|scope| -> Result<(), StoreError> {
        for _ in 0..workers {
            let rx = rx.clone();
            let mismatch = &mismatch;
            scope.spawn(move || {
                loop {
                    let batch = match rx.lock().map(|r| r.recv()) {
                        Ok(Ok(b)) => b,
                        _ => break,
                    };
                    for (digest, salt, data) in batch {
                        if payload_digest(&salt, &data) != digest {
                            let mut m = mismatch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            m.get_or_insert(digest);
                        }
                    }
                }
            });
        }
        let result = (|| -> Result<(), StoreError> {
            let mut stmt = c.prepare("SELECT digest, salt, data, deleted_idx FROM payloads")?;
            let (mut batch, mut batch_bytes, mut done) = (Vec::new(), 0usize, 0u64);
            let mut seen = std::collections::HashSet::new();
            stmt.for_each((), |r| -> Result<(), StoreError> {
                let digest = to_hash(&r.get::<_, Vec<u8>>(0)?);
                seen.insert(digest);
                let what = describe(commitments, &digest).ok_or_else(|| {
                    fail(format!("payload {} is not referenced by any journal entry", short(&digest)))
                })?;
                let data: Option<Vec<u8>> = r.get(2)?;
                let deleted_idx: Option<i64> = r.get(3)?;
                match (data, commitments.deleted.get(&digest)) {
                    (None, Some(i)) if deleted_idx == Some(*i as i64) => report.deleted_payloads += 1,
                    (None, _) => {
                        return Err(fail(format!(
                            "payload {} ({what}) was removed without a deletion entry",
                            short(&digest)
                        )));
                    }
                    (Some(_), Some(i)) => {
                        return Err(fail(format!(
                            "payload {} ({what}) has deletion entry {i} but its bytes are still stored",
                            short(&digest)
                        )));
                    }
                    (Some(data), None) => {
                        batch_bytes += data.len();
                        report.payload_bytes += data.len() as u64;
                        report.payloads += 1;
                        batch.push((digest, r.get::<_, Vec<u8>>(1)?, data));
                        if batch_bytes >= 1 << 20 {
                            done += batch_bytes as u64;
                            batch_bytes = 0;
                            tx.send(std::mem::take(&mut batch)).map_err(|_| fail("payload hashing stopped".into()))?;
                            progress(VerifyStage::Payloads(done, total));
                        }
                    }
                }
                Ok(())
            })?;
            if !batch.is_empty() {
                tx.send(batch).map_err(|_| fail("payload hashing stopped".into()))?;
            }
            let missing = commitments
                .bodies
                .iter()
                .chain(commitments.record_digests.iter())
                .filter(|(d, _)| !seen.contains(*d))
                .map(|(_, i)| *i)
                .min();
            if let Some(i) = missing {
                return Err(fail(format!("a payload of journal entry {i} is missing from the store")));
            }
            progress(VerifyStage::Payloads(total, total));
            Ok(())
        })();
        drop(tx);
        result
    })?;
    if let Some(digest) = mismatch.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        let what = describe(commitments, &digest).unwrap_or_default();
        return Err(fail(format!(
            "payload {} ({what}) does not match its digest: its bytes were changed",
            short(&digest)
        )));
    }
    Ok(())
}

fn describe(commitments: &Commitments, digest: &Hash) -> Option<String> {
    if let Some(i) = commitments.bodies.get(digest) {
        return Some(format!("message body of journal entry {i}"));
    }
    commitments.record_digests.get(digest).map(|i| format!("record content of journal entry {i}"))
}
