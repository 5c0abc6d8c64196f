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
        // The file system work of a scan (folders of new tenants, listing every inbox) runs on
        // a blocking thread: with hundreds of tenants it must not hold an async worker.
        let tenants = pipeline.tenant_ags();
        let (root_dir, known) = (root.clone(), prepared.clone());
        let scan = tokio::task::spawn_blocking(move || scan(&root_dir, &tenants, &known)).await;
        let Ok(scan) = scan else { return };
        for (ags, dir, leftovers) in scan.new {
            let caller = Caller::Tenant(ags.clone());
            // Left over from a crash: submit again.
            for path in leftovers {
                handle(&pipeline, &dir, path, &caller).await;
            }
            prepared.insert(ags);
        }
        let mut still_there = HashMap::new();
        for (ags, dir, path, stamp) in scan.inbox {
            if seen.get(&path) == Some(&stamp) {
                let Some(name) = path.file_name() else { continue };
                let claimed = dir.join(PROCESSING).join(name);
                if std::fs::rename(&path, &claimed).is_ok() {
                    handle(&pipeline, &dir, claimed, &Caller::Tenant(ags)).await;
                }
            } else {
                still_there.insert(path, stamp);
            }
        }
        seen = still_there;
        tokio::time::sleep(interval).await;
    }
}

/// What one scan found.
struct Scan {
    /// Tenants whose folder was prepared now: (AGS, folder, files left in `processing/`).
    new: Vec<(String, PathBuf, Vec<PathBuf>)>,
    /// Files in the inboxes: (AGS, tenant folder, file, (size, mtime)).
    inbox: Vec<(String, PathBuf, PathBuf, (u64, SystemTime))>,
}

fn scan(root: &Path, tenants: &[String], prepared: &std::collections::HashSet<String>) -> Scan {
    let mut out = Scan { new: Vec::new(), inbox: Vec::new() };
    for ags in tenants {
        let dir = root.join(ags);
        if !prepared.contains(ags) {
            if let Err(e) = prepare(&dir) {
                tracing::error!(path = %dir.display(), error = %e, "drop folder unusable");
                continue;
            }
            out.new.push((ags.clone(), dir.clone(), list(&dir.join(PROCESSING))));
        }
        for path in list(&dir.join(INBOX)) {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            out.inbox.push((ags.clone(), dir.clone(), path, stamp));
        }
    }
    out
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
