//! Replays: a message mapped again, the differences kept as new record versions.

use crate::sql::{Connection, OptionalExtension, params};
use efile_bridge_journal::{EntryKind, NO_PAYLOAD};
use efile_bridge_model::EfileRecord;

use super::{JournalHead, citizens, delivery, file_record, store_payload};
use crate::{AdapterRef, ReplayOutcome, StoreError, now_rfc3339};

/// A document of the message: row id, public id, latest version, citizen, that version's content.
type Filed = (i64, String, i64, i64, Option<Vec<u8>>);

pub(super) fn replayed(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    uuid: &str,
    adapter: AdapterRef,
    records: Vec<EfileRecord>,
    by: &str,
) -> Result<ReplayOutcome, StoreError> {
    let message: i64 = tx
        .prepare_cached("SELECT id FROM messages WHERE tenant = ?1 AND uuid = ?2")?
        .query_row(params![tenant, uuid], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {tenant} has no message {uuid}")))?;
    let idx = head.next();
    let mut outcome = ReplayOutcome::default();
    let mut produced = Vec::new();
    let mut parked = Vec::new();
    for (no, record) in records.iter().enumerate() {
        let content = serde_json::to_vec(record).map_err(|e| StoreError::Verify(e.to_string()))?;
        let existing: Option<Filed> = tx
            .prepare_cached(
                "SELECT d.id, d.public_id, v.version, f.citizen_id, p.data FROM documents d
                 JOIN document_versions v ON v.document_id = d.id
                      AND v.version = (SELECT MAX(version) FROM document_versions WHERE document_id = d.id)
                 JOIN payloads p ON p.digest = v.content_digest
                 JOIN cases ca ON ca.id = d.case_id JOIN files f ON f.id = ca.file_id
                 WHERE d.message_id = ?1 AND d.record_no = ?2",
            )?
            .query_row(params![message, no as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        match existing {
            Some((_, _, _, _, Some(old))) if old == content => outcome.unchanged += 1,
            Some((doc, public, version, citizen, _)) => {
                let digest = store_payload(tx, &content)?;
                let next = version + 1;
                tx.prepare_cached(
                    "INSERT INTO document_versions (document_id, version, content_digest, journal_idx)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![doc, next, &digest[..], idx as i64])?;
                // The document row shows its latest version; the old versions stay as they were.
                tx.prepare_cached(
                    "UPDATE documents SET document_type = ?2, title = ?3, event_date = ?4, retention_deadline = ?5,
                         retention_rule = ?6, confidentiality = ?7 WHERE id = ?1",
                )?
                .execute(params![
                    doc,
                    record.document_type.as_str(),
                    record.title,
                    record.event_date,
                    record.retention.deadline,
                    record.retention.rule,
                    record.confidentiality.as_str()
                ])?;
                delivery::enqueue(tx, tenant, doc, &public, next as u32, citizen, idx)?;
                produced.push(serde_json::json!({
                    "document": public, "version": next, "digest": hex::encode(digest), "replaces": version,
                }));
                outcome.new_versions += 1;
            }
            None => {
                let digest = store_payload(tx, &content)?;
                match citizens::resolve(tx, tenant, record, idx)? {
                    citizens::Resolution::Citizen(citizen) => {
                        let doc = file_record(tx, tenant, citizen, record, message, uuid, no as u32, digest, idx)?;
                        produced
                            .push(serde_json::json!({"document": doc, "version": 1, "digest": hex::encode(digest)}));
                    }
                    citizens::Resolution::Ambiguous { candidates, reason } => {
                        let review = super::review::open(
                            tx,
                            tenant,
                            message,
                            no as u32,
                            record,
                            digest,
                            &candidates,
                            &reason,
                            idx,
                        )?;
                        parked.push(serde_json::json!({"review": review, "record": no, "digest": hex::encode(digest)}));
                    }
                }
                outcome.new_documents += 1;
            }
        }
    }
    if produced.is_empty() && parked.is_empty() {
        return Ok(outcome);
    }
    let mut meta = serde_json::json!({
        "message": uuid,
        "adapter": {"name": adapter.name, "version": adapter.version, "hash": adapter.hash},
        "by": by,
        "records": produced,
    });
    if !parked.is_empty() {
        meta["reviews"] = serde_json::Value::Array(parked);
    }
    head.append(tx, EntryKind::MessageReplayed, tenant, &now_rfc3339(), NO_PAYLOAD, meta.to_string())?;
    // A message that had failed is mapped now (its failure stays in the journal).
    tx.prepare_cached(
        "UPDATE messages SET state = 'processed', error = NULL, adapter = ?2, adapter_version = ?3, adapter_hash = ?4
         WHERE id = ?1 AND state = 'failed'",
    )?
    .execute(params![message, adapter.name, adapter.version, adapter.hash])?;
    outcome.journal_index = Some(idx);
    Ok(outcome)
}
