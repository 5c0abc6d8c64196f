//! The clerk's and operator's reads: one document with its content and journal proof, the
//! message flow per tenant, the checkpoint list and the outcome of the latest `verify`.
//!
//! Every document read names the tenant in its `WHERE` (through the citizen the document is
//! filed under), so a tenant's id for another tenant's document finds nothing.

use crate::sql::{Connection, OptionalExtension, Row, params};
use efile_bridge_journal::checkpoint::Checkpoint;
use efile_bridge_model::EfileRecord;

use super::to_hash;
use crate::{
    DocumentContent, DocumentDetail, DocumentMessage, DocumentVersion, DocumentView, FlowError, Latency, MessageState,
    StoreError, TenantFlow,
};

/// Columns read by [`document_view`], starting at its first argument's column.
pub(crate) const DOCUMENT_VIEW_COLUMNS: &str = "d.public_id, d.document_type, d.title, d.event_date, \
     d.retention_deadline, d.retention_rule, d.confidentiality, v.version, m.uuid, p.data";

/// A [`DocumentView`] (without deliveries) from the [`DOCUMENT_VIEW_COLUMNS`] at `at..at + 10`
/// of a row joining `documents d`, its latest `document_versions v`, `messages m` and the
/// version's `payloads p` (left join: the content may have been deleted).
pub(crate) fn document_view(r: &Row, at: usize) -> Result<(DocumentView, Option<EfileRecord>), crate::sql::Error> {
    let content: Option<Vec<u8>> = r.get(at + 9)?;
    let record: Option<EfileRecord> = content.and_then(|b| serde_json::from_slice(&b).ok());
    let view = DocumentView {
        document_id: r.get(at)?,
        document_type: r.get(at + 1)?,
        title: r.get(at + 2)?,
        event_date: r.get(at + 3)?,
        retention_deadline: r.get(at + 4)?,
        retention_rule: r.get(at + 5)?,
        confidentiality: r.get(at + 6)?,
        version: r.get::<_, i64>(at + 7)? as u32,
        message_uuid: r.get(at + 8)?,
        metadata: record.as_ref().map(|r| r.metadata.clone()).unwrap_or_default(),
        content_deleted: record.is_none(),
        attachments: record
            .as_ref()
            .map(|r| r.attachments.iter().map(|a| a.name.clone()).collect())
            .unwrap_or_default(),
        deliveries: Vec::new(),
    };
    Ok((view, record))
}

/// The document `document_id` of `tenant`, with its record and, if `with_original`, the
/// original message (the largest part; the detail and the proof do not need it).
pub(crate) fn content(
    c: &Connection,
    tenant: &str,
    document_id: &str,
    with_original: bool,
) -> Result<Option<DocumentContent>, StoreError> {
    let sql = format!(
        "SELECT d.id, {DOCUMENT_VIEW_COLUMNS},
                ci.public_id, ci.display_name, f.public_id, f.file_plan_code, f.subject, ca.public_id, ca.case_type,
                m.message_type, m.received_at, m.payload_digest
         FROM documents d
         JOIN document_versions v ON v.document_id = d.id
              AND v.version = (SELECT MAX(version) FROM document_versions WHERE document_id = d.id)
         JOIN messages m ON m.id = d.message_id
         LEFT JOIN payloads p ON p.digest = v.content_digest
         JOIN cases ca ON ca.id = d.case_id JOIN files f ON f.id = ca.file_id JOIN citizens ci ON ci.id = f.citizen_id
         WHERE ci.tenant = ?1 AND d.public_id = ?2"
    );
    let row = c
        .prepare_cached(&sql)?
        .query_row(params![tenant, document_id], |r| {
            let (document, record) = document_view(r, 1)?;
            let detail = DocumentDetail {
                citizen_id: r.get(11)?,
                display_name: r.get(12)?,
                file_id: r.get(13)?,
                file_plan_code: r.get(14)?,
                file_subject: r.get(15)?,
                case_id: r.get(16)?,
                case_type: r.get(17)?,
                message: DocumentMessage {
                    uuid: document.message_uuid.clone(),
                    message_type: r.get(18)?,
                    received_at: r.get(19)?,
                },
                document,
                versions: Vec::new(),
            };
            Ok((r.get::<_, i64>(0)?, detail, record, r.get::<_, Vec<u8>>(20)?))
        })
        .optional()?;
    let Some((id, mut detail, record, message_digest)) = row else { return Ok(None) };
    detail.versions = c
        .prepare_cached("SELECT version, content_digest, journal_idx FROM document_versions WHERE document_id = ?1 ORDER BY version")?
        .query_map([id], |r| {
            Ok(DocumentVersion {
                version: r.get::<_, i64>(0)? as u32,
                digest: hex::encode(r.get::<_, Vec<u8>>(1)?),
                journal_index: r.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    detail.document.deliveries = super::delivery::of_document(c, id)?;
    let original: Option<Vec<u8>> = if with_original {
        c.prepare_cached("SELECT data FROM payloads WHERE digest = ?1")?
            .query_row([&message_digest[..]], |r| r.get(0))
            .optional()?
            .flatten()
    } else {
        None
    };
    Ok(Some(DocumentContent { detail, record, original }))
}

/// Message counts, traffic of the last day, latency and the latest failure of each tenant
/// that has messages: a fixed number of queries however many tenants there are.
pub(crate) fn flow(c: &Connection, since_24h: &str, sample: u32) -> Result<Vec<TenantFlow>, StoreError> {
    let mut out: Vec<TenantFlow> = Vec::new();
    for count in super::message_counts(c)? {
        if out.last().is_none_or(|f| f.tenant != count.tenant) {
            out.push(TenantFlow {
                tenant: count.tenant.clone(),
                accepted: 0,
                processed: 0,
                failed: 0,
                received_24h: 0,
                latency_ms: None,
                last_error: None,
            });
        }
        let Some(f) = out.last_mut() else { continue };
        match count.state {
            MessageState::Accepted => f.accepted = count.count,
            MessageState::Processed => f.processed = count.count,
            MessageState::Failed => f.failed += count.count,
        }
    }
    let recent = c
        .prepare_cached("SELECT tenant, COUNT(*) FROM messages WHERE received_at >= ?1 GROUP BY tenant")?
        .query_map([since_24h], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<Result<Vec<_>, _>>()?;
    for (tenant, n) in recent {
        if let Some(f) = out.iter_mut().find(|f| f.tenant == tenant) {
            f.received_24h = n;
        }
    }
    // From acceptance to the entry that filed the message's first record, over each tenant's
    // latest `sample` processed messages.
    let times = c
        .prepare_cached(
            "SELECT tenant, received_at, filed_at FROM (
                 SELECT m.tenant, m.received_at, MIN(j.at) AS filed_at,
                        ROW_NUMBER() OVER (PARTITION BY m.tenant ORDER BY m.id DESC) AS n
                 FROM messages m
                 JOIN documents d ON d.message_id = m.id
                 JOIN document_versions v ON v.document_id = d.id AND v.version = 1
                 JOIN journal j ON j.idx = v.journal_idx
                 WHERE m.state = 'processed'
                 GROUP BY m.id, m.tenant, m.received_at
             ) latest WHERE n <= ?1",
        )?
        .query_map([sample], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut per_tenant: std::collections::BTreeMap<String, Vec<u64>> = std::collections::BTreeMap::new();
    for (tenant, from, to) in &times {
        if let Some(ms) = millis_between(from, to) {
            per_tenant.entry(tenant.clone()).or_default().push(ms);
        }
    }
    for (tenant, mut ms) in per_tenant {
        ms.sort_unstable();
        if let Some(f) = out.iter_mut().find(|f| f.tenant == tenant) {
            f.latency_ms = Some(Latency {
                p50: ms[(ms.len() - 1) / 2],
                p95: ms[(ms.len() - 1) * 95 / 100],
                max: ms[ms.len() - 1],
                sample: ms.len() as u64,
            });
        }
    }
    let failures = c
        .prepare_cached(
            "SELECT m.tenant, m.uuid, m.error, m.received_at FROM messages m
             JOIN (SELECT tenant, MAX(id) AS id FROM messages WHERE state = 'failed' GROUP BY tenant) last
               ON last.id = m.id",
        )?
        .query_map((), |r| {
            Ok((
                r.get::<_, String>(0)?,
                FlowError { uuid: r.get(1)?, error: r.get::<_, Option<String>>(2)?.unwrap_or_default(), at: r.get(3)? },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (tenant, failure) in failures {
        if let Some(f) = out.iter_mut().find(|f| f.tenant == tenant) {
            f.last_error = Some(failure);
        }
    }
    Ok(out)
}

fn millis_between(from: &str, to: &str) -> Option<u64> {
    let parse = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok();
    let d = parse(to)? - parse(from)?;
    Some(d.whole_milliseconds().max(0) as u64)
}

/// The `limit` latest checkpoints, newest first.
pub(crate) fn checkpoints(c: &Connection, limit: u32) -> Result<Vec<Checkpoint>, StoreError> {
    let origin = super::checkpoint_origin(c)?;
    Ok(c.prepare_cached("SELECT tree_size, root, at, signature FROM checkpoints ORDER BY tree_size DESC LIMIT ?1")?
        .query_map([limit], |r| {
            Ok(Checkpoint {
                origin: origin.clone(),
                tree_size: r.get::<_, i64>(0)? as u64,
                root_hash: to_hash(&r.get::<_, Vec<u8>>(1)?),
                time: r.get(2)?,
                signature: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}
