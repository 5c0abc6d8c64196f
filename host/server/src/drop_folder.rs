//! Drop folders, one per tenant: `DROP/<AGS>/inbox/` → `processing/` → `done/` or `failed/`.
//!
//! A file is taken only when it is complete: after it was renamed into `inbox/` (write it as
//! `NAME.part` or `NAME.tmp`, or outside, then rename) or when its size and modification time
//! stayed the same for one scan. Taking is a rename into `processing/`, so a file is never
//! taken twice. A file in a tenant's folder is submitted with that tenant's rights: the tenant
//! must be the message's reader or author. Refused files go to `failed/` with
//! `NAME.error.txt` saying why; when storage is unavailable the file goes back to `inbox/`
//! and is tried again. Files left in `processing/` by a crash are submitted again at start
//! (the journal recognises the ones already accepted).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use efile_bridge_pipeline::{Caller, Pipeline, SubmitError, Submitted};

/// Subfolder for new files.
pub const INBOX: &str = "inbox";
/// Subfolder for files being submitted.
pub const PROCESSING: &str = "processing";
/// Subfolder for accepted files.
pub const DONE: &str = "done";
/// Subfolder for refused files and their `.error.txt`.
pub const FAILED: &str = "failed";

/// Creates the subfolders of one tenant's folder.
pub fn prepare(tenant_dir: &Path) -> std::io::Result<()> {
    for sub in [INBOX, PROCESSING, DONE, FAILED] {
        std::fs::create_dir_all(tenant_dir.join(sub))?;
    }
    Ok(())
}

/// Watches `root/<AGS>/` for every configured tenant until the task is dropped, scanning
/// every `interval`. Tenants added by a reload get their folder at the next scan.
pub async fn run(pipeline: Arc<Pipeline>, root: PathBuf, interval: Duration) {
    let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    let mut prepared: std::collections::HashSet<String> = Default::default();
    loop {
        let mut still_there = HashMap::new();
        for tenant in pipeline.tenants() {
            let dir = root.join(&tenant.ags);
            let caller = Caller::Tenant(tenant.ags.clone());
            if !prepared.contains(&tenant.ags) {
                if let Err(e) = prepare(&dir) {
                    tracing::error!(path = %dir.display(), error = %e, "drop folder unusable");
                    continue;
                }
                // Left over from a crash: submit again.
                for path in list(&dir.join(PROCESSING)) {
                    handle(&pipeline, &dir, path, &caller).await;
                }
                prepared.insert(tenant.ags.clone());
            }
            for path in list(&dir.join(INBOX)) {
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
                if seen.get(&path) == Some(&stamp) {
                    let Some(name) = path.file_name() else { continue };
                    let claimed = dir.join(PROCESSING).join(name);
                    if std::fs::rename(&path, &claimed).is_ok() {
                        handle(&pipeline, &dir, claimed, &caller).await;
                    }
                } else {
                    still_there.insert(path, stamp);
                }
            }
        }
        seen = still_there;
        tokio::time::sleep(interval).await;
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && !name.ends_with(".tmp")
                && !name.ends_with(".part")
                && !name.ends_with(".error.txt")
        })
        .collect();
    files.sort();
    files
}

async fn handle(pipeline: &Pipeline, dir: &Path, path: PathBuf, caller: &Caller) {
    let Some(name) = path.file_name().map(ToOwned::to_owned) else { return };
    let file_name = name.to_string_lossy().into_owned();
    let outcome = match tokio::fs::read(&path).await {
        Ok(body) => pipeline.submit(body, caller).await,
        Err(e) => {
            tracing::warn!(file = %file_name, error = %e, "drop folder file unreadable; left in processing/");
            return;
        }
    };
    match outcome {
        Ok(Submitted::Accepted(r) | Submitted::Duplicate(r)) => {
            tracing::info!(file = %file_name, uuid = %r.message_uuid, journal_index = r.journal_index, "drop folder file accepted");
            if let Err(e) = std::fs::rename(&path, dir.join(DONE).join(&name)) {
                tracing::error!(file = %file_name, error = %e, "could not move accepted file to done/");
            }
        }
        Err(e @ (SubmitError::Storage(_) | SubmitError::ShuttingDown)) => {
            tracing::warn!(file = %file_name, error = %e, "storage unavailable; file goes back to inbox/");
            let _ = std::fs::rename(&path, dir.join(INBOX).join(&name));
        }
        Err(e) => {
            tracing::warn!(file = %file_name, reason = %e, "drop folder file refused");
            let error_file = dir.join(FAILED).join(format!("{file_name}.error.txt"));
            let written = std::fs::write(&error_file, format!("{file_name}: {e}\n"));
            if let Err(e) = written.and_then(|()| std::fs::rename(&path, dir.join(FAILED).join(&name))) {
                tracing::error!(file = %file_name, error = %e, "could not move refused file to failed/");
            }
        }
    }
}
