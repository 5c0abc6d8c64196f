//! The adapter registry: installed packages and each tenant's switches, every change a
//! journal entry naming who made it.

use crate::sql::{Connection, OptionalExtension, params};
use efile_bridge_journal::{EntryKind, NO_PAYLOAD};

use super::JournalHead;
use crate::{Activation, InstalledAdapter, StoreError, now_rfc3339};

fn bump(tx: &Connection) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO settings (key, value) VALUES ('registry_generation', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)",
        (),
    )?;
    Ok(())
}

pub(super) fn generation(c: &Connection) -> Result<i64, StoreError> {
    Ok(c.prepare_cached("SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'registry_generation'")?
        .query_row((), |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn adapter_row(r: &crate::sql::Row) -> Result<InstalledAdapter, crate::sql::Error> {
    let manifest: String = r.get(5)?;
    Ok(InstalledAdapter {
        name: r.get(0)?,
        version: r.get(1)?,
        component_sha256: r.get(2)?,
        package_sha256: r.get(3)?,
        publisher: r.get(4)?,
        manifest: serde_json::from_str(&manifest).unwrap_or_default(),
        installed_index: r.get::<_, i64>(6)? as u64,
        removed_index: r.get::<_, Option<i64>>(7)?.map(|i| i as u64),
    })
}

const ADAPTERS: &str = "SELECT name, version, component_sha256, package_sha256, publisher, manifest, installed_idx,
        removed_idx FROM adapter_packages";

fn find(c: &Connection, name: &str, version: &str) -> Result<Option<InstalledAdapter>, StoreError> {
    let sql = format!("{ADAPTERS} WHERE name = ?1 AND version = ?2");
    Ok(c.prepare_cached(&sql)?.query_row(params![name, version], adapter_row).optional()?)
}

pub(super) fn list(c: &Connection) -> Result<Vec<InstalledAdapter>, StoreError> {
    let sql = format!("{ADAPTERS} ORDER BY name, installed_idx");
    Ok(c.prepare_cached(&sql)?.query_map((), adapter_row)?.collect::<Result<_, _>>()?)
}

pub(super) fn register(
    tx: &Connection,
    head: &mut JournalHead,
    a: InstalledAdapter,
    by: &str,
) -> Result<InstalledAdapter, StoreError> {
    if let Some(existing) = find(tx, &a.name, &a.version)? {
        if existing.package_sha256 == a.package_sha256 && existing.removed_index.is_none() {
            return Ok(existing);
        }
        if existing.removed_index.is_none() {
            return Err(StoreError::Conflict(format!(
                "{}@{} is installed already from another package (sha256 {}); publish a new version",
                a.name, a.version, existing.package_sha256
            )));
        }
        return Err(StoreError::Conflict(format!(
            "{}@{} was removed at journal entry {}; versions are not reused, publish a new one",
            a.name,
            a.version,
            existing.removed_index.unwrap_or_default()
        )));
    }
    let meta = serde_json::json!({
        "name": a.name, "version": a.version, "component_sha256": a.component_sha256,
        "package_sha256": a.package_sha256, "publisher": a.publisher, "by": by,
    })
    .to_string();
    let (idx, _) = head.append(tx, EntryKind::AdapterInstalled, "-", &now_rfc3339(), NO_PAYLOAD, meta)?;
    tx.prepare_cached(
        "INSERT INTO adapter_packages (name, version, component_sha256, package_sha256, publisher, manifest, installed_idx)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![a.name, a.version, a.component_sha256, a.package_sha256, a.publisher, a.manifest.to_string(), idx as i64])?;
    bump(tx)?;
    Ok(InstalledAdapter { installed_index: idx, removed_index: None, ..a })
}

fn activation_row(r: &crate::sql::Row) -> Result<Activation, crate::sql::Error> {
    Ok(Activation {
        tenant: r.get(0)?,
        scope: r.get(1)?,
        name: r.get(2)?,
        version: r.get(3)?,
        action: r.get(4)?,
        by: r.get(5)?,
        journal_index: r.get::<_, i64>(6)? as u64,
    })
}

const ACTIVATIONS: &str = "SELECT tenant, scope, name, version, action, by, idx FROM activations";

pub(super) fn history(c: &Connection, tenant: Option<&str>) -> Result<Vec<Activation>, StoreError> {
    let sql = format!("{ACTIVATIONS} WHERE (CAST(?1 AS TEXT) IS NULL OR tenant = ?1) ORDER BY id");
    Ok(c.prepare_cached(&sql)?.query_map([tenant], activation_row)?.collect::<Result<_, _>>()?)
}

/// The switches in force: the latest per (tenant, scope) that names an adapter.
pub(super) fn current(c: &Connection) -> Result<Vec<Activation>, StoreError> {
    let sql = format!(
        "{ACTIVATIONS} a WHERE id = (SELECT MAX(id) FROM activations b WHERE b.tenant = a.tenant AND b.scope = a.scope)
         AND name IS NOT NULL ORDER BY tenant, id"
    );
    Ok(c.prepare_cached(&sql)?.query_map((), activation_row)?.collect::<Result<_, _>>()?)
}

#[allow(clippy::too_many_arguments, reason = "one journaled row")]
fn switch(
    tx: &Connection,
    head: &mut JournalHead,
    kind: EntryKind,
    tenant: &str,
    scope: &str,
    adapter: Option<(&str, &str)>,
    previous: Option<(String, String)>,
    by: &str,
) -> Result<Activation, StoreError> {
    let (name, version) = (adapter.map(|a| a.0), adapter.map(|a| a.1));
    let hash = match adapter {
        Some((n, v)) => find(tx, n, v)?.map(|a| a.component_sha256),
        None => None,
    };
    let meta = serde_json::json!({
        "scope": scope, "name": name, "version": version, "component_sha256": hash,
        "previous": previous.map(|(n, v)| format!("{n}@{v}")), "by": by,
    })
    .to_string();
    let (idx, _) = head.append(tx, kind, tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    let action = if kind == EntryKind::AdapterRolledBack { "rollback" } else { "activate" };
    tx.prepare_cached(
        "INSERT INTO activations (tenant, scope, name, version, action, by, idx) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![tenant, scope, name, version, action, by, idx as i64])?;
    bump(tx)?;
    Ok(Activation {
        tenant: tenant.into(),
        scope: scope.into(),
        name: name.map(str::to_owned),
        version: version.map(str::to_owned),
        action: action.into(),
        by: by.into(),
        journal_index: idx,
    })
}

fn in_force(tx: &Connection, tenant: &str, scope: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT name, version FROM activations WHERE tenant = ?1 AND scope = ?2 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![tenant, scope], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)))
        .optional()?
        .and_then(|(n, v)| Some((n?, v?))))
}

pub(super) fn activate(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    scope: &str,
    name: &str,
    version: &str,
    by: &str,
) -> Result<Activation, StoreError> {
    match find(tx, name, version)? {
        None => return Err(StoreError::NotFound(format!("{name}@{version} is not installed"))),
        Some(a) if a.removed_index.is_some() => {
            return Err(StoreError::Conflict(format!("{name}@{version} was removed")));
        }
        Some(_) => {}
    }
    let previous = in_force(tx, tenant, scope)?;
    if previous.as_ref().is_some_and(|(n, v)| n == name && v == version) {
        return Err(StoreError::Conflict(format!("{name}@{version} is already active for tenant {tenant} ({scope})")));
    }
    switch(tx, head, EntryKind::AdapterActivated, tenant, scope, Some((name, version)), previous, by)
}

pub(super) fn rollback(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    by: &str,
) -> Result<Activation, StoreError> {
    // The scope of the tenant's latest switch.
    let scope: Option<String> = tx
        .prepare_cached("SELECT scope FROM activations WHERE tenant = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    let Some(scope) = scope else {
        return Err(StoreError::NotFound(format!("tenant {tenant} has no adapter switch to roll back")));
    };
    // Replay the scope's switches as a stack: an activation pushes, a rollback pops.
    let rows: Vec<(String, Option<String>, Option<String>)> = tx
        .prepare_cached("SELECT action, name, version FROM activations WHERE tenant = ?1 AND scope = ?2 ORDER BY id")?
        .query_map(params![tenant, scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut stack: Vec<(String, String)> = Vec::new();
    for (action, name, version) in rows {
        if action == "rollback" {
            stack.pop();
        } else if let (Some(n), Some(v)) = (name, version) {
            stack.push((n, v));
        }
    }
    let Some(current) = stack.pop() else {
        return Err(StoreError::NotFound(format!("tenant {tenant} has no earlier adapter to roll back to")));
    };
    let adapter = match stack.last() {
        Some((n, v)) => {
            if find(tx, n, v)?.is_none_or(|a| a.removed_index.is_some()) {
                return Err(StoreError::Conflict(format!("cannot roll back to {n}@{v}: it was removed")));
            }
            Some((n.as_str(), v.as_str()))
        }
        // Nothing before: the scope goes back to the operator config's adapters.
        None => None,
    };
    switch(tx, head, EntryKind::AdapterRolledBack, tenant, &scope, adapter, Some(current), by)
}

pub(super) fn remove(
    tx: &Connection,
    head: &mut JournalHead,
    name: &str,
    version: &str,
    by: &str,
) -> Result<InstalledAdapter, StoreError> {
    let a =
        find(tx, name, version)?.ok_or_else(|| StoreError::NotFound(format!("{name}@{version} is not installed")))?;
    if a.removed_index.is_some() {
        return Err(StoreError::Conflict(format!("{name}@{version} was removed already")));
    }
    let users: Vec<String> = current(tx)?
        .into_iter()
        .filter(|x| x.name.as_deref() == Some(name) && x.version.as_deref() == Some(version))
        .map(|x| x.tenant)
        .collect();
    if !users.is_empty() {
        return Err(StoreError::Conflict(format!(
            "{name}@{version} is active for tenant(s) {}; switch them first",
            users.join(", ")
        )));
    }
    let meta = serde_json::json!({"name": name, "version": version, "by": by}).to_string();
    let (idx, _) = head.append(tx, EntryKind::AdapterRemoved, "-", &now_rfc3339(), NO_PAYLOAD, meta)?;
    tx.prepare_cached("UPDATE adapter_packages SET removed_idx = ?3 WHERE name = ?1 AND version = ?2")?
        .execute(params![name, version, idx as i64])?;
    bump(tx)?;
    Ok(InstalledAdapter { removed_index: Some(idx), ..a })
}

pub(super) fn start_shadow(
    tx: &Connection,
    head: &mut JournalHead,
    tenant: &str,
    name: &str,
    version: &str,
    by: &str,
) -> Result<u64, StoreError> {
    let a =
        find(tx, name, version)?.ok_or_else(|| StoreError::NotFound(format!("{name}@{version} is not installed")))?;
    if a.removed_index.is_some() {
        return Err(StoreError::Conflict(format!("{name}@{version} was removed")));
    }
    let meta = serde_json::json!({"name": name, "version": version, "component_sha256": a.component_sha256, "by": by})
        .to_string();
    let (idx, _) = head.append(tx, EntryKind::ShadowStarted, tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    tx.prepare_cached(
        "INSERT INTO shadows (tenant, name, version, by, started_idx) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant) DO UPDATE SET name = excluded.name, version = excluded.version, by = excluded.by,
             started_idx = excluded.started_idx",
    )?
    .execute(params![tenant, name, version, by, idx as i64])?;
    bump(tx)?;
    Ok(idx)
}

pub(super) fn stop_shadow(tx: &Connection, head: &mut JournalHead, tenant: &str, by: &str) -> Result<u64, StoreError> {
    let running: Option<(String, String)> = tx
        .prepare_cached("SELECT name, version FROM shadows WHERE tenant = ?1")?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((name, version)) = running else {
        return Err(StoreError::NotFound(format!("tenant {tenant} has no shadow run")));
    };
    let meta = serde_json::json!({"name": name, "version": version, "by": by}).to_string();
    let (idx, _) = head.append(tx, EntryKind::ShadowStopped, tenant, &now_rfc3339(), NO_PAYLOAD, meta)?;
    tx.prepare_cached("DELETE FROM shadows WHERE tenant = ?1")?.execute([tenant])?;
    bump(tx)?;
    Ok(idx)
}

pub(super) fn shadows(c: &Connection) -> Result<Vec<(String, String, String)>, StoreError> {
    Ok(c.prepare_cached("SELECT tenant, name, version FROM shadows ORDER BY tenant")?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?)
}
