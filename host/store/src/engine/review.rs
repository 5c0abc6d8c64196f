//! Review items: records that matched several citizens and wait for a clerk.
//!
//! Opening one is part of the `message-processed` transaction (the entry lists it under
//! `reviews` with the waiting record's content digest); deciding one is a `review-decided`
//! entry naming the review, the decision, the citizen, who decided and the record version it
//! became. The record's content is stored once, as a payload, and becomes version 1 of the
//! document unchanged, so `verify` can tie the document to both entries.

use crate::sql::{Connection, OptionalExtension, params};
use efile_bridge_journal::{EntryKind, NO_PAYLOAD};
use efile_bridge_model::EfileRecord;

use super::{JournalHead, citizens, file_record, new_public_id, to_hash};
use crate::{CitizenSummary, ReviewDecision, ReviewItem, ReviewOutcome, StoreError, now_rfc3339};

/// Parks `record` (already stored as payload `digest`) as a review item; returns its id.
#[allow(clippy::too_many_arguments, reason = "the facts of one row")]
pub(super) fn open(
    tx: &Connection,
    tenant: &str,
    message_id: i64,
    record_no: u32,
    record: &EfileRecord,
    digest: efile_bridge_journal::Hash,
    candidates: &[i64],
    reason: &str,
    idx: u64,
) -> Result<String, StoreError> {
    let public = new_public_id();
    let candidates = serde_json::to_string(candidates).map_err(|e| StoreError::Verify(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO reviews (tenant, public_id, message_id, record_no, content_digest, document_type, title, reason,
             candidates, opened_idx)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        tenant,
        public,
        message_id,
        record_no,
        &digest[..],
        record.document_type.as_str(),
        record.title,
        reason,
        candidates,
        idx as i64
    ])?;
    tracing::info!(tenant, review = %public, reason, "record waits for a clerk: ambiguous citizen match");
    Ok(public)
}

const SELECT: &str = "SELECT r.id, r.public_id, r.tenant, m.uuid, r.record_no, r.reason, r.candidates, r.document_type,
        r.title, r.opened_idx, r.decided_idx, r.decision, ci.public_id, d.public_id, r.decided_by
     FROM reviews r JOIN messages m ON m.id = r.message_id
     LEFT JOIN citizens ci ON ci.id = r.citizen_id LEFT JOIN documents d ON d.id = r.document_id";

struct Row {
    id: i64,
    item: ReviewItem,
    candidate_rows: Vec<i64>,
}

fn row(r: &crate::sql::Row) -> Result<Row, crate::sql::Error> {
    let candidates: String = r.get(6)?;
    let decided: Option<i64> = r.get(10)?;
    let decision = match (decided, r.get::<_, Option<String>>(11)?, r.get(12)?, r.get(13)?, r.get(14)?) {
        (Some(idx), Some(decision), Some(citizen_id), Some(document_id), Some(by)) => {
            Some(ReviewOutcome { decision, citizen_id, document_id, by, journal_index: idx as u64 })
        }
        _ => None,
    };
    Ok(Row {
        id: r.get(0)?,
        candidate_rows: serde_json::from_str(&candidates).unwrap_or_default(),
        item: ReviewItem {
            review_id: r.get(1)?,
            tenant: r.get(2)?,
            message_uuid: r.get(3)?,
            record_no: r.get::<_, i64>(4)? as u32,
            reason: r.get(5)?,
            candidates: Vec::new(),
            document_type: r.get(7)?,
            title: r.get(8)?,
            opened_index: r.get::<_, i64>(9)? as u64,
            decision,
        },
    })
}

fn with_candidates(c: &Connection, mut row: Row) -> Result<Row, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT ci.public_id, ci.display_name, ci.birth_date,
                (SELECT COUNT(*) FROM files f JOIN cases ca ON ca.file_id = f.id JOIN documents d ON d.case_id = ca.id
                 WHERE f.citizen_id = ci.id)
         FROM citizens ci WHERE ci.id = ?1",
    )?;
    for id in &row.candidate_rows {
        let summary = stmt.query_row([id], |r| {
            Ok(CitizenSummary {
                citizen_id: r.get(0)?,
                display_name: r.get(1)?,
                birth_date: r.get(2)?,
                documents: r.get::<_, i64>(3)? as u64,
            })
        })?;
        row.item.candidates.push(summary);
    }
    Ok(row)
}

/// Review items of one tenant or all, oldest first.
pub(super) fn list(c: &Connection, tenant: Option<&str>, open_only: bool) -> Result<Vec<ReviewItem>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR r.tenant = ?1) AND (?2 = 0 OR r.decided_idx IS NULL) ORDER BY r.id"
    );
    let rows: Vec<Row> = c.prepare(&sql)?.query_map(params![tenant, open_only], row)?.collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| with_candidates(c, r).map(|r| r.item)).collect()
}

fn find(c: &Connection, tenant: Option<&str>, review_id: &str) -> Result<Option<(Row, Vec<u8>)>, StoreError> {
    let sql = format!("{SELECT} WHERE r.public_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR r.tenant = ?2)");
    let Some(found) = c.prepare(&sql)?.query_row(params![review_id, tenant], row).optional()? else {
        return Ok(None);
    };
    let content: Option<Vec<u8>> = c
        .prepare_cached("SELECT p.data FROM reviews r JOIN payloads p ON p.digest = r.content_digest WHERE r.id = ?1")?
        .query_row([found.id], |r| r.get(0))?;
    let content =
        content.ok_or_else(|| StoreError::Verify(format!("review item {review_id}: its record was deleted")))?;
    Ok(Some((with_candidates(c, found)?, content)))
}

fn parse_record(review_id: &str, content: &[u8]) -> Result<EfileRecord, StoreError> {
    serde_json::from_slice(content)
        .map_err(|e| StoreError::Verify(format!("review item {review_id}: stored record does not parse: {e}")))
}

/// One review item and its waiting record.
pub(super) fn get(
    c: &Connection,
    tenant: Option<&str>,
    review_id: &str,
) -> Result<Option<(ReviewItem, EfileRecord)>, StoreError> {
    let Some((found, content)) = find(c, tenant, review_id)? else { return Ok(None) };
    Ok(Some((found.item, parse_record(review_id, &content)?)))
}

/// Takes a clerk's decision: files the record and appends the `review-decided` entry.
pub(super) fn decide(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: Option<&str>,
    review_id: &str,
    decision: ReviewDecision,
    by: &str,
) -> Result<ReviewItem, StoreError> {
    let not_found = || StoreError::NotFound(format!("no review item `{review_id}`"));
    let (found, content) = find(tx, tenant, review_id)?.ok_or_else(not_found)?;
    if let Some(done) = &found.item.decision {
        return Err(StoreError::Conflict(format!(
            "review item {review_id} was already decided ({} by {}) at journal entry {}",
            done.decision, done.by, done.journal_index
        )));
    }
    let record = parse_record(review_id, &content)?;
    let tenant = found.item.tenant.clone();
    let idx = head.next();
    let (citizen, decision_name) = match &decision {
        ReviewDecision::Assign { citizen } => {
            let row: Option<i64> = tx
                .prepare_cached("SELECT id FROM citizens WHERE tenant = ?1 AND public_id = ?2")?
                .query_row(params![tenant, citizen], |r| r.get(0))
                .optional()?;
            match row {
                Some(row) if found.candidate_rows.contains(&row) => (row, "assigned"),
                _ => {
                    return Err(StoreError::Rejected(format!(
                        "citizen `{citizen}` is not a candidate of review item {review_id}"
                    )));
                }
            }
        }
        ReviewDecision::NewCitizen => (citizens::create(tx, &tenant, &record, idx)?, "new-citizen"),
    };
    citizens::attach(tx, &tenant, citizen, &record.citizen.identifiers)?;
    let (message_id, digest): (i64, Vec<u8>) = tx
        .prepare_cached("SELECT message_id, content_digest FROM reviews WHERE id = ?1")?
        .query_row([found.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let digest = to_hash(&digest);
    let document = file_record(
        tx,
        &tenant,
        citizen,
        &record,
        message_id,
        &found.item.message_uuid,
        found.item.record_no,
        digest,
        idx,
    )?;
    let citizen_public: String =
        tx.prepare_cached("SELECT public_id FROM citizens WHERE id = ?1")?.query_row([citizen], |r| r.get(0))?;
    let meta = serde_json::json!({
        "review": review_id,
        "message": found.item.message_uuid,
        "record": found.item.record_no,
        "decision": decision_name,
        "citizen": citizen_public,
        "by": by,
        "records": [{"document": document, "version": 1, "digest": hex::encode(digest)}],
    })
    .to_string();
    head.append(tx, EntryKind::ReviewDecided, &tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    tx.prepare_cached(
        "UPDATE reviews SET decided_idx = ?2, decision = ?3, citizen_id = ?4, document_id =
             (SELECT id FROM documents WHERE public_id = ?5), decided_by = ?6 WHERE id = ?1",
    )?
    .execute(params![found.id, idx as i64, decision_name, citizen, document, by])?;
    tracing::info!(tenant, review = review_id, decision = decision_name, journal_index = idx, "review item decided");
    let mut item = found.item;
    item.decision = Some(ReviewOutcome {
        decision: decision_name.into(),
        citizen_id: citizen_public,
        document_id: document,
        by: by.into(),
        journal_index: idx,
    });
    Ok(item)
}
