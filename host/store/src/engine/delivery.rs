//! The durable delivery queue: one row per record version and sink.
//!
//! A row is written in the same transaction as the record version it delivers (so nothing
//! filed is ever left undelivered), and only its outcome is journaled: `delivered`,
//! `delivery-dead` (with every attempt's error), and the operator's `delivery-requeued` and
//! `delivery-discarded`. Failed attempts that will be retried only update the row: they are
//! operations, not evidence.

use crate::sql::{Connection, Dialect, OptionalExtension, params};
use efile_bridge_journal::{EntryKind, NO_PAYLOAD};

use super::{JournalHead, new_public_id};
use crate::{
    AttemptError, AttemptOutcome, DeliveryItem, DeliveryState, DeliveryView, DueDelivery, StoreError, now_ms,
    now_rfc3339,
};

/// Queues the new version `version` of `document` for every sink of `tenant`.
pub(super) fn enqueue(
    tx: &Connection,
    tenant: &str,
    document: i64,
    document_public: &str,
    version: u32,
    citizen: i64,
    idx: u64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO deliveries (public_id, tenant, sink, document_id, version, citizen_id, idempotency_key, state,
             next_at_ms, created_idx)
         SELECT ?1 || '.' || name, tenant, name, ?2, ?3, ?4, ?5, 'pending', ?6, ?7 FROM sinks WHERE tenant = ?8",
    )?
    .execute(params![
        new_public_id(),
        document,
        version,
        citizen,
        format!("{document_public}.v{version}"),
        now_ms(),
        idx as i64,
        tenant
    ])?;
    Ok(())
}

pub(super) fn configure(tx: &Connection, sinks: &[(String, String)]) -> Result<(), StoreError> {
    tx.execute("DELETE FROM sinks", ())?;
    for (tenant, name) in sinks {
        tx.prepare_cached("INSERT INTO sinks (tenant, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
            .execute(params![tenant, name])?;
    }
    Ok(())
}

fn due(c: &Connection, now: i64, limit: u32, busy: &[i64], lock: &str) -> Result<Vec<DueDelivery>, StoreError> {
    // Busy ones are still pending, so they also hold back their citizen's later records.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT d.id, d.tenant, d.sink FROM deliveries d JOIN sinks s ON s.tenant = d.tenant AND s.name = d.sink
         WHERE d.state = 'pending' AND d.next_at_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.state = 'pending' AND e.tenant = d.tenant
                           AND e.sink = d.sink AND e.citizen_id = d.citizen_id AND e.id < d.id)
         ORDER BY d.next_at_ms, d.id LIMIT ?2{lock}"
    ))?;
    let extra = busy.len() as u32;
    let rows = stmt.query_map(params![now, limit + extra], |r| {
        Ok(DueDelivery { id: r.get(0)?, tenant: r.get(1)?, sink: r.get(2)? })
    })?;
    let mut out = Vec::new();
    for row in rows {
        let row = row?;
        if !busy.contains(&row.id) && out.len() < limit as usize {
            out.push(row);
        }
    }
    Ok(out)
}

/// [`due`], claimed for `host`: not due for anyone else until the lease ends.
pub(super) fn claim_due(
    c: &Connection,
    host: &str,
    now: i64,
    lease_ms: i64,
    limit: u32,
    busy: &[i64],
) -> Result<Vec<DueDelivery>, StoreError> {
    // Claims run under no lock of their own (other hosts claim at the same time): on
    // PostgreSQL the rows are locked as they are read, and rows another host is claiming are
    // skipped; a row claimed meanwhile no longer qualifies once locked (its lease moved on).
    let lock = if c.dialect() == Dialect::Postgres { " FOR UPDATE OF d SKIP LOCKED" } else { "" };
    let due = due(c, now, limit, busy, lock)?;
    for d in &due {
        c.prepare_cached("UPDATE deliveries SET next_at_ms = ?2, claimed_by = ?3 WHERE id = ?1")?.execute(params![
            d.id,
            now + lease_ms,
            host
        ])?;
    }
    Ok(due)
}

pub(super) fn next_at(c: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT MIN(d.next_at_ms) FROM deliveries d JOIN sinks s ON s.tenant = d.tenant AND s.name = d.sink
         WHERE d.state = 'pending'",
    )?
    .query_row((), |r| r.get(0))?)
}

pub(super) fn item(c: &Connection, id: i64) -> Result<DeliveryItem, StoreError> {
    let row = c
        .prepare_cached(
            "SELECT d.public_id, d.idempotency_key, d.tenant, d.sink, d.attempts, ci.public_id, doc.public_id, d.version,
                    m.uuid, m.message_type, m.received_at, rec.data, body.data
             FROM deliveries d
             JOIN citizens ci ON ci.id = d.citizen_id
             JOIN documents doc ON doc.id = d.document_id
             JOIN document_versions v ON v.document_id = d.document_id AND v.version = d.version
             JOIN payloads rec ON rec.digest = v.content_digest
             JOIN messages m ON m.id = doc.message_id
             JOIN payloads body ON body.digest = m.payload_digest
             WHERE d.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                (r.get::<_, i64>(4)?, r.get::<_, String>(5)?, r.get::<_, String>(6)?, r.get::<_, i64>(7)?),
                (r.get::<_, String>(8)?, r.get::<_, String>(9)?, r.get::<_, String>(10)?),
                (r.get::<_, Option<Vec<u8>>>(11)?, r.get::<_, Option<Vec<u8>>>(12)?),
            ))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no delivery {id}")))?;
    let ((delivery_id, idempotency_key, tenant, sink), (attempts, citizen_id, document_id, version), message, data) =
        row;
    let (message_uuid, message_type, received_at) = message;
    let content = data.0.ok_or_else(|| {
        StoreError::NotFound(format!("delivery {delivery_id}: the record's content was deleted by retention"))
    })?;
    let record = serde_json::from_slice(&content)
        .map_err(|e| StoreError::Verify(format!("delivery {delivery_id}: stored record does not parse: {e}")))?;
    Ok(DeliveryItem {
        id,
        delivery_id,
        idempotency_key,
        tenant,
        sink,
        attempts: attempts as u32,
        citizen_id,
        document_id,
        version: version as u32,
        message_uuid,
        message_type,
        received_at,
        record,
        original_xml: data.1.unwrap_or_default(),
    })
}

fn view_row(r: &crate::sql::Row) -> Result<(i64, DeliveryView), crate::sql::Error> {
    let errors: String = r.get(9)?;
    Ok((
        r.get(0)?,
        DeliveryView {
            delivery_id: r.get(1)?,
            tenant: r.get(2)?,
            sink: r.get(3)?,
            state: DeliveryState::parse(&r.get::<_, String>(4)?).unwrap_or(DeliveryState::Pending),
            document_id: r.get(5)?,
            version: r.get::<_, i64>(6)? as u32,
            idempotency_key: r.get(7)?,
            attempts: r.get::<_, i64>(8)? as u32,
            errors: serde_json::from_str(&errors).unwrap_or_default(),
            outcome_index: r.get::<_, Option<i64>>(10)?.map(|i| i as u64),
        },
    ))
}

const VIEW: &str = "SELECT d.id, d.public_id, d.tenant, d.sink, d.state, doc.public_id, d.version, d.idempotency_key,
        d.attempts, d.errors, d.outcome_idx
     FROM deliveries d JOIN documents doc ON doc.id = d.document_id";

pub(super) fn list(
    c: &Connection,
    tenant: Option<&str>,
    state: Option<DeliveryState>,
    limit: u32,
) -> Result<Vec<DeliveryView>, StoreError> {
    let sql = format!(
        "{VIEW} WHERE (CAST(?1 AS TEXT) IS NULL OR d.tenant = ?1) AND (CAST(?2 AS TEXT) IS NULL OR d.state = ?2) ORDER BY d.id DESC LIMIT ?3"
    );
    let rows = c
        .prepare_cached(&sql)?
        .query_map(params![tenant, state.map(DeliveryState::as_str), limit], view_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().map(|(_, v)| v).collect())
}

/// Deliveries of one document (for the citizen file view).
pub(super) fn of_document(c: &Connection, document: i64) -> Result<Vec<DeliveryView>, StoreError> {
    let sql = format!("{VIEW} WHERE d.document_id = ?1 ORDER BY d.sink, d.version");
    let rows = c.prepare_cached(&sql)?.query_map([document], view_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().map(|(_, v)| v).collect())
}

fn find(c: &Connection, tenant: Option<&str>, public: &str) -> Result<Option<(i64, DeliveryView)>, StoreError> {
    let sql = format!("{VIEW} WHERE d.public_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR d.tenant = ?2)");
    Ok(c.prepare_cached(&sql)?.query_row(params![public, tenant], view_row).optional()?)
}

pub(super) fn get(c: &Connection, tenant: Option<&str>, public: &str) -> Result<Option<DeliveryView>, StoreError> {
    Ok(find(c, tenant, public)?.map(|(_, v)| v))
}

fn journal(
    tx: &Connection,
    head: &mut JournalHead,
    kind: EntryKind,
    view: &DeliveryView,
    extra: serde_json::Value,
) -> Result<u64, StoreError> {
    let mut meta = serde_json::json!({
        "delivery": view.delivery_id,
        "sink": view.sink,
        "document": view.document_id,
        "version": view.version,
        "key": view.idempotency_key,
        "attempts": view.attempts,
    });
    if let (Some(m), serde_json::Value::Object(extra)) = (meta.as_object_mut(), extra) {
        m.extend(extra);
    }
    let (idx, _) = head.append(tx, kind, &view.tenant, &now_rfc3339(), NO_PAYLOAD, meta.to_string())?;
    Ok(idx)
}

pub(super) fn attempted(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    id: i64,
    outcome: AttemptOutcome,
) -> Result<(), StoreError> {
    // `tenant` is the one whose lock the write holds: another tenant's delivery is not found.
    let public: String = tx
        .prepare_cached("SELECT public_id FROM deliveries WHERE id = ?1 AND tenant = ?2 AND state = 'pending'")?
        .query_row(params![id, tenant], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Conflict(format!("delivery {id} is not pending")))?;
    let (_, mut view) = find(tx, None, &public)?.ok_or_else(|| StoreError::NotFound(format!("no delivery {id}")))?;
    view.attempts += 1;
    match outcome {
        AttemptOutcome::Delivered(answer) => {
            let idx = journal(tx, head, EntryKind::Delivered, &view, serde_json::json!({"answer": answer}))?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, outcome_idx = ?2, claimed_by = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, idx as i64])?;
        }
        AttemptOutcome::Retry { error, at_ms } => {
            view.errors.push(AttemptError { at: now_rfc3339(), error });
            tx.prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, next_at_ms = ?2, errors = ?3, claimed_by = NULL WHERE id = ?1",
            )?
            .execute(params![id, at_ms, errors_json(&view.errors)?])?;
        }
        AttemptOutcome::Dead(error) => {
            view.errors.push(AttemptError { at: now_rfc3339(), error });
            let idx = journal(tx, head, EntryKind::DeliveryDead, &view, serde_json::json!({"errors": view.errors}))?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, errors = ?2, outcome_idx = ?3, claimed_by = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, errors_json(&view.errors)?, idx as i64])?;
            tracing::warn!(tenant = %view.tenant, sink = %view.sink, delivery = %view.delivery_id, attempts = view.attempts,
                "delivery failed for good: dead letter");
        }
    }
    Ok(())
}

fn errors_json(errors: &[AttemptError]) -> Result<String, StoreError> {
    serde_json::to_string(errors).map_err(|e| StoreError::Verify(e.to_string()))
}

fn dead_letter(tx: &Connection, tenant: Option<&str>, public: &str) -> Result<(i64, DeliveryView), StoreError> {
    let (id, view) =
        find(tx, tenant, public)?.ok_or_else(|| StoreError::NotFound(format!("no delivery `{public}`")))?;
    if view.state != DeliveryState::Dead {
        return Err(StoreError::Conflict(format!("delivery {public} is {}, not a dead letter", view.state.as_str())));
    }
    Ok((id, view))
}

pub(super) fn redeliver(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: Option<&str>,
    public: &str,
    by: &str,
) -> Result<DeliveryView, StoreError> {
    let (id, mut view) = dead_letter(tx, tenant, public)?;
    let idx = journal(tx, head, EntryKind::DeliveryRequeued, &view, serde_json::json!({"by": by}))?;
    // Attempts start again; the errors of the earlier ones stay for the record.
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_at_ms = ?2, outcome_idx = ?3 WHERE id = ?1",
    )?
    .execute(params![id, now_ms(), idx as i64])?;
    view.state = DeliveryState::Pending;
    view.attempts = 0;
    view.outcome_index = Some(idx);
    Ok(view)
}

pub(super) fn discard(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: Option<&str>,
    public: &str,
    by: &str,
    reason: &str,
) -> Result<DeliveryView, StoreError> {
    let (id, mut view) = dead_letter(tx, tenant, public)?;
    let idx = journal(tx, head, EntryKind::DeliveryDiscarded, &view, serde_json::json!({"by": by, "reason": reason}))?;
    tx.prepare_cached("UPDATE deliveries SET state = 'discarded', outcome_idx = ?2 WHERE id = ?1")?
        .execute(params![id, idx as i64])?;
    view.state = DeliveryState::Discarded;
    view.outcome_index = Some(idx);
    Ok(view)
}
