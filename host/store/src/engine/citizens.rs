//! Citizen resolution: which citizen's file a record belongs to.
//!
//! A record names its citizen by identifiers, strongest first: the tax id (`id-nr`), the
//! registration authority's person reference (`register-key`), and a fingerprint of the
//! normalised name, birth date and birth place. The rules:
//!
//! 1. Strong identifiers decide. If they all point at one citizen, that is the citizen; if
//!    they point at two different citizens, or the citizen found holds a different identifier
//!    of a kind the record also carries, the record is **ambiguous**.
//! 2. Without a strong match, the fingerprint is consulted, leaving out citizens whose strong
//!    identifier of the same kind differs from the record's (a different id-nr is a different
//!    person). No candidate: a new citizen. One: that citizen. Several (two people share
//!    name, birth date and birth place, or a clerk split them before): **ambiguous**.
//! 3. An ambiguous record is never filed by guessing: it waits as a review item for a clerk.
//!
//! A strong identifier is attached to one citizen only; a fingerprint may be shared.

use std::collections::BTreeSet;

use crate::sql::{Connection, OptionalExtension, params};
use efile_bridge_model::{DocumentType, EfileRecord, Identifier, IdentifierKind};

use super::new_public_id;
use crate::StoreError;

/// Where a record goes.
pub(super) enum Resolution {
    /// This citizen (row id), existing or just created.
    Citizen(i64),
    /// Several citizens fit; a clerk decides.
    Ambiguous {
        /// Candidate citizen row ids, ascending.
        candidates: Vec<i64>,
        /// Why, in words for the clerk (no personal data).
        reason: String,
    },
}

/// Resolves (and, for a new person, creates) the citizen of `record`; `idx` is the journal
/// entry that will record it.
pub(super) fn resolve(tx: &Connection, tenant: &str, record: &EfileRecord, idx: u64) -> Result<Resolution, StoreError> {
    let ids = &record.citizen.identifiers;
    let mut strong = BTreeSet::new();
    let mut strong_kinds = Vec::new();
    for id in ids.iter().filter(|i| i.kind != IdentifierKind::Fingerprint) {
        if let Some(c) = holders(tx, tenant, id)?.first() {
            strong.insert(*c);
            strong_kinds.push(id.kind.as_str());
        }
    }
    let strong: Vec<i64> = strong.into_iter().collect();
    let citizen = match strong[..] {
        [c] => {
            if conflicting_strong_id(tx, tenant, c, ids)? {
                return Ok(Resolution::Ambiguous {
                    candidates: vec![c],
                    reason: format!(
                        "the citizen found by {} holds a different identifier of a kind the record carries",
                        strong_kinds.join(", ")
                    ),
                });
            }
            Some(c)
        }
        [] => {
            let mut weak = Vec::new();
            for id in ids.iter().filter(|i| i.kind == IdentifierKind::Fingerprint) {
                for c in holders(tx, tenant, id)? {
                    if !conflicting_strong_id(tx, tenant, c, ids)? && !weak.contains(&c) {
                        weak.push(c);
                    }
                }
            }
            weak.sort_unstable();
            match weak.len() {
                0 | 1 => weak.first().copied(),
                n => {
                    return Ok(Resolution::Ambiguous {
                        candidates: weak,
                        reason: format!("name, birth date and birth place match {n} citizens"),
                    });
                }
            }
        }
        _ => {
            strong_kinds.dedup();
            return Ok(Resolution::Ambiguous {
                candidates: strong,
                reason: format!("identifiers ({}) belong to different citizens", strong_kinds.join(", ")),
            });
        }
    };
    let citizen = match citizen {
        // A name change (the record names the citizen by the old name's fingerprint and
        // carries the new one too): the file follows the person under the new name.
        Some(c) if record.document_type == DocumentType::Namensaenderung => {
            tx.prepare_cached(
                "UPDATE citizens SET display_name = ?2, family_name = ?3, given_names = ?4 WHERE id = ?1",
            )?
            .execute(params![
                c,
                record.citizen.display_name,
                record.citizen.family_name,
                record.citizen.given_names
            ])?;
            c
        }
        Some(c) => c,
        None => create(tx, tenant, record, idx)?,
    };
    attach(tx, tenant, citizen, ids)?;
    Ok(Resolution::Citizen(citizen))
}

/// Opens a new citizen for `record`.
pub(super) fn create(tx: &Connection, tenant: &str, record: &EfileRecord, idx: u64) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO citizens (tenant, public_id, display_name, family_name, given_names, birth_date, created_idx)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .insert(params![
            tenant,
            new_public_id(),
            record.citizen.display_name,
            record.citizen.family_name,
            record.citizen.given_names,
            record.citizen.birth_date,
            idx as i64
        ])?)
}

/// Adds the identifiers to `citizen`: a strong identifier only if no other citizen holds it,
/// a fingerprint always (it may be shared).
pub(super) fn attach(tx: &Connection, tenant: &str, citizen: i64, ids: &[Identifier]) -> Result<(), StoreError> {
    for id in ids {
        if id.kind == IdentifierKind::Fingerprint {
            tx.prepare_cached(
                "INSERT INTO citizen_identifiers (tenant, kind, value, citizen_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![tenant, id.kind.as_str(), id.value, citizen])?;
        } else {
            tx.prepare_cached(
                "INSERT INTO citizen_identifiers (tenant, kind, value, citizen_id)
                 SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS
                     (SELECT 1 FROM citizen_identifiers WHERE tenant = ?1 AND kind = ?2 AND value = ?3)",
            )?
            .execute(params![tenant, id.kind.as_str(), id.value, citizen])?;
        }
    }
    Ok(())
}

/// Citizens holding `id`, ascending.
fn holders(tx: &Connection, tenant: &str, id: &Identifier) -> Result<Vec<i64>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT citizen_id FROM citizen_identifiers WHERE tenant = ?1 AND kind = ?2 AND value = ?3 ORDER BY citizen_id",
    )?;
    let rows = stmt.query_map(params![tenant, id.kind.as_str(), id.value], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<i64>, _>>()?)
}

fn conflicting_strong_id(tx: &Connection, tenant: &str, citizen: i64, ids: &[Identifier]) -> Result<bool, StoreError> {
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
