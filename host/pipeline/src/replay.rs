//! Deterministic replay: a tenant's journaled messages mapped again by a chosen adapter.
//!
//! Adapters are pure functions of their input (no clock, randomness from a fixed seed, no
//! environment; see the runtime), so the same message and the same component give
//! byte-identical records. A replay therefore only writes what differs: a record that changed
//! becomes a new version of its document linked to the old one (which stays), a record the
//! earlier mapping did not produce becomes a new document; a `message-replayed` entry names
//! them and who replayed. `dry_run` writes nothing and reports the differences instead.
//!
//! Messages are read in pages in journal order and mapped on several threads; each thread
//! stores its own results, so the store's writer commits them in groups.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use efile_bridge_runtime::Runtime;
use efile_bridge_store::{AdapterRef, MessageQuery, Storage};
use serde::Serialize;

use crate::Config;
use crate::shadow::ShadowEntry;

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// Which messages, in journal order (`limit` and `newest` are ignored: a replay pages
    /// through all of them).
    pub messages: MessageQuery,
    /// Installed adapter name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Report only.
    pub dry_run: bool,
    /// Operator identity for the journal.
    pub by: String,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayStats {
    /// Messages mapped.
    pub messages: u64,
    /// Records byte-identical to what is in force.
    pub unchanged: u64,
    /// Records that became new versions (dry run: would).
    pub new_versions: u64,
    /// Records that became new documents (dry run: would).
    pub new_documents: u64,
    /// Messages the adapter could not map (nothing stored for them).
    pub failed: u64,
    /// Seconds.
    pub seconds: f64,
    /// Dry run: every message that would change, with its differences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<ShadowEntry>,
}

const PAGE: u32 = 1024;

/// Runs a replay; `progress(done)` is called as messages finish.
pub fn run(
    config: &Config,
    runtime: &Runtime,
    store: &dyn Storage,
    spec: &ReplaySpec,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReplayStats, String> {
    let started = Instant::now();
    let tenant = &spec.messages.tenant;
    let t =
        config.tenants.iter().find(|t| &t.ags == tenant).ok_or_else(|| format!("tenant {tenant} is not configured"))?;
    let path = crate::adapters::component_path(&config.data_dir, &spec.name, &spec.version);
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{}@{} is not installed ({}: {e})", spec.name, spec.version, path.display()))?;
    let adapter = runtime.load(&bytes).map_err(|e| format!("{}@{}: {e}", spec.name, spec.version))?;
    let adapter_ref = AdapterRef {
        name: adapter.info().name.clone(),
        version: adapter.info().version.clone(),
        hash: adapter.content_hash().to_owned(),
    };
    let limits = config.sandbox.for_tenant(&t.sandbox).to_limits();
    let tenant_config = Arc::new(t.config.clone());
    let stats = Mutex::new(ReplayStats::default());
    let done = AtomicU64::new(0);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(1) * if spec.dry_run { 1 } else { 4 };
    let mut from = spec.messages.from_index;
    loop {
        let query = MessageQuery { from_index: from, limit: PAGE, newest: false, ..spec.messages.clone() };
        let page = store.journaled_messages(&query).map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        from = last.info.journal_index + 1;
        let handled: Vec<_> = page
            .into_iter()
            .filter(|m| {
                adapter.info().handles.iter().any(|h| {
                    h.standard == m.info.standard
                        && h.version == m.info.version
                        && h.message_type == m.info.message_type
                })
            })
            .collect();
        let next = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(m) = handled.get(i) else { break };
                        let result = runtime.map(&adapter, tenant_config.clone(), &limits, &m.info, &m.body);
                        let mut local = ReplayStats { messages: 1, ..ReplayStats::default() };
                        match (&result, spec.dry_run) {
                            (Err(_), _) => local.failed = 1,
                            (Ok(records), true) => {
                                let entry = crate::shadow::compare(m, &result);
                                let old = m.records.len();
                                local.new_documents = records.len().saturating_sub(old) as u64;
                                let changed: std::collections::BTreeSet<&str> = entry
                                    .changes
                                    .iter()
                                    .filter_map(|c| c.path.strip_prefix('[').and_then(|p| p.split(']').next()))
                                    .collect();
                                // Records beyond the shorter list are added (new documents) or no
                                // longer produced (their documents stay as they are).
                                let both = records.len().min(old);
                                let changed_old =
                                    changed.iter().filter(|n| n.parse::<usize>().is_ok_and(|n| n < both)).count();
                                local.new_versions = changed_old as u64;
                                local.unchanged = (both - changed_old) as u64;
                                if entry.outcome != "identical" {
                                    local.differences.push(entry);
                                }
                            }
                            (Ok(records), false) => {
                                match store.record_replayed(
                                    tenant,
                                    &m.info.message_uuid,
                                    adapter_ref.clone(),
                                    records.clone(),
                                    &spec.by,
                                ) {
                                    Ok(o) => {
                                        local.unchanged = u64::from(o.unchanged);
                                        local.new_versions = u64::from(o.new_versions);
                                        local.new_documents = u64::from(o.new_documents);
                                    }
                                    Err(e) => {
                                        let mut f = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                                        f.get_or_insert(format!("message {}: {e}", m.info.message_uuid));
                                        break;
                                    }
                                }
                            }
                        }
                        let mut s = stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        s.messages += local.messages;
                        s.unchanged += local.unchanged;
                        s.new_versions += local.new_versions;
                        s.new_documents += local.new_documents;
                        s.failed += local.failed;
                        s.differences.append(&mut local.differences);
                        drop(s);
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                });
            }
        });
        if let Some(f) = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            return Err(f);
        }
    }
    let mut stats = stats.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    stats.differences.sort_by(|a, b| a.message_uuid.cmp(&b.message_uuid));
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}
