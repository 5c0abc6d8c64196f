//! Deletion with protocol: retention runs and legal holds.
//!
//! A payload (a record version's content, a message body) may be deleted once the retention
//! deadline of every record it belongs to has passed and no legal hold covers the citizen.
//! Deleting writes a `payload-deleted` entry naming the payload's digest and the rule, and
//! clears the bytes (SQLite `secure_delete` overwrites them); the digest, the salt and every
//! entry stay, so every proof, including the proof that the deleted record existed, stays
//! valid. A message body goes only when every record made from it has gone.

use crate::sql::{Connection, OptionalExtension, params};
use efile_bridge_journal::{EntryKind, NO_PAYLOAD};

use super::{JournalHead, to_hash};
use crate::{Deletion, Hold, StoreError, now_rfc3339};

/// Record versions and message bodies due for deletion on `today`.
pub(crate) fn candidates(c: &Connection, today: &str) -> Result<Vec<Deletion>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = c.prepare(
        "SELECT ci.tenant, d.public_id, v.content_digest, d.retention_deadline, d.retention_rule
         FROM documents d
         JOIN document_versions v ON v.document_id = d.id
         JOIN payloads p ON p.digest = v.content_digest
         JOIN cases ca ON ca.id = d.case_id JOIN files f ON f.id = ca.file_id JOIN citizens ci ON ci.id = f.citizen_id
         WHERE d.retention_deadline IS NOT NULL AND d.retention_deadline < ?1 AND p.data IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.citizen_id = ci.id AND h.removed_idx IS NULL)
         ORDER BY d.id, v.version",
    )?;
    let rows = stmt.query_map([today], |r| {
        let deadline: String = r.get(3)?;
        let rule: String = r.get(4)?;
        Ok(Deletion {
            tenant: r.get(0)?,
            what: "record-version".into(),
            id: r.get(1)?,
            digest: hex::encode(r.get::<_, Vec<u8>>(2)?),
            rule: format!("retention deadline {deadline} passed ({rule})"),
            journal_index: None,
        })
    })?;
    out.extend(rows.collect::<Result<Vec<_>, _>>()?);
    let mut stmt = c.prepare(
        "SELECT m.tenant, m.uuid, m.payload_digest FROM messages m JOIN payloads p ON p.digest = m.payload_digest
         WHERE m.state = 'processed' AND p.data IS NOT NULL
           AND EXISTS (SELECT 1 FROM documents d WHERE d.message_id = m.id)
           AND NOT EXISTS (
               SELECT 1 FROM documents d JOIN cases ca ON ca.id = d.case_id JOIN files f ON f.id = ca.file_id
               WHERE d.message_id = m.id
                 AND (d.retention_deadline IS NULL OR d.retention_deadline >= ?1
                      OR EXISTS (SELECT 1 FROM holds h WHERE h.citizen_id = f.citizen_id AND h.removed_idx IS NULL)))
         ORDER BY m.id",
    )?;
    let rows = stmt.query_map([today], |r| {
        Ok(Deletion {
            tenant: r.get(0)?,
            what: "message-body".into(),
            id: r.get(1)?,
            digest: hex::encode(r.get::<_, Vec<u8>>(2)?),
            rule: "the retention deadline of every record made from it passed".into(),
            journal_index: None,
        })
    })?;
    out.extend(rows.collect::<Result<Vec<_>, _>>()?);
    Ok(out)
}

/// Deletes what [`candidates`] lists, each with its journal entry, in one transaction.
pub(crate) fn run(c: &Connection, head: &mut JournalHead, today: &str) -> Result<Vec<Deletion>, StoreError> {
    let mut done = candidates(c, today)?;
    let at = now_rfc3339();
    for d in &mut done {
        let digest = hex::decode(&d.digest).map(|b| to_hash(&b)).unwrap_or(NO_PAYLOAD);
        let meta = serde_json::json!({"what": d.what, "id": d.id, "rule": d.rule}).to_string();
        let (idx, _) = head.append(c, EntryKind::PayloadDeleted, &d.tenant, &at, digest, meta)?;
        c.prepare_cached("UPDATE payloads SET data = NULL, deleted_idx = ?2 WHERE digest = ?1")?
            .execute(params![&digest[..], idx as i64])?;
        d.journal_index = Some(idx);
    }
    if !done.is_empty() {
        tracing::info!(deleted = done.len(), today, "retention run deleted payloads");
    }
    Ok(done)
}

fn citizen_row(c: &Connection, tenant: &str, citizen: &str) -> Result<i64, StoreError> {
    c.prepare_cached("SELECT id FROM citizens WHERE tenant = ?1 AND public_id = ?2")?
        .query_row(params![tenant, citizen], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant} has no citizen `{citizen}`")))
}

pub(crate) fn hold_add(
    c: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    citizen: &str,
    reason: &str,
) -> Result<Hold, StoreError> {
    let id = citizen_row(c, tenant, citizen)?;
    let existing: Option<(String, i64)> = c
        .prepare_cached("SELECT reason, added_idx FROM holds WHERE citizen_id = ?1 AND removed_idx IS NULL")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((reason, added)) = existing {
        return Ok(Hold { tenant: tenant.into(), citizen_id: citizen.into(), reason, added_index: added as u64 });
    }
    let meta = serde_json::json!({"citizen": citizen, "reason": reason}).to_string();
    let (idx, _) = head.append(c, EntryKind::HoldAdded, tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    c.prepare_cached("INSERT INTO holds (tenant, citizen_id, reason, added_idx) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![tenant, id, reason, idx as i64])?;
    Ok(Hold { tenant: tenant.into(), citizen_id: citizen.into(), reason: reason.into(), added_index: idx })
}

pub(crate) fn hold_remove(
    c: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    citizen: &str,
) -> Result<bool, StoreError> {
    let id = citizen_row(c, tenant, citizen)?;
    let active: Option<i64> = c
        .prepare_cached("SELECT id FROM holds WHERE citizen_id = ?1 AND removed_idx IS NULL")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(hold) = active else { return Ok(false) };
    let meta = serde_json::json!({"citizen": citizen}).to_string();
    let (idx, _) = head.append(c, EntryKind::HoldRemoved, tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    c.prepare_cached("UPDATE holds SET removed_idx = ?2 WHERE id = ?1")?.execute(params![hold, idx as i64])?;
    Ok(true)
}

pub(crate) fn holds(c: &Connection, tenant: Option<&str>) -> Result<Vec<Hold>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT h.tenant, ci.public_id, h.reason, h.added_idx FROM holds h JOIN citizens ci ON ci.id = h.citizen_id
         WHERE h.removed_idx IS NULL AND (CAST(?1 AS TEXT) IS NULL OR h.tenant = ?1) ORDER BY h.id",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok(Hold {
            tenant: r.get(0)?,
            citizen_id: r.get(1)?,
            reason: r.get(2)?,
            added_index: r.get::<_, i64>(3)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
