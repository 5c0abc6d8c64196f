//! The drop folder: files in `DROP/inbox/` are ingested like HTTP posts.
//!
//! A file is taken only when it has not changed between two scans (a quiet period), so a
//! file that is still being written is never read half. Taking is a rename into
//! `processing/`, which is atomic: a file is never taken twice. After submission the file
//! moves to `done/`, or to `failed/` with `NAME.error.txt` saying why. Files left in
//! `processing/` by a crash are submitted again at start; the journal recognises duplicates.
//! Names starting with `.` or ending in `.tmp`/`.part` are ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use efile_bridge_pipeline::{Pipeline, Submitted};

/// Subfolders of the drop folder.
pub const INBOX: &str = "inbox";
/// Files being submitted.
pub const PROCESSING: &str = "processing";
/// Files that were accepted (or were duplicates).
pub const DONE: &str = "done";
/// Files that were refused, each with `NAME.error.txt`.
pub const FAILED: &str = "failed";

/// Creates the subfolders.
pub fn prepare(root: &Path) -> std::io::Result<()> {
    for sub in [INBOX, PROCESSING, DONE, FAILED] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    Ok(())
}

/// Watches `root` until the task is dropped, scanning every `interval`.
pub async fn run(pipeline: Arc<Pipeline>, root: PathBuf, interval: Duration) {
    if let Err(e) = prepare(&root) {
        tracing::error!(path = %root.display(), error = %e, "drop folder unusable");
        return;
    }
    // Left over from a crash: submit again (duplicates are recognised by the journal).
    for path in list(&root.join(PROCESSING)) {
        handle(&pipeline, &root, path).await;
    }
    let mut seen: HashMap<PathBuf, (u64, SystemTime)> = HashMap::new();
    loop {
        let mut still_there = HashMap::new();
        for path in list(&root.join(INBOX)) {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            if seen.get(&path) == Some(&stamp) {
                let Some(name) = path.file_name() else {
                    continue;
                };
                let claimed = root.join(PROCESSING).join(name);
                if std::fs::rename(&path, &claimed).is_ok() {
                    handle(&pipeline, &root, claimed).await;
                }
            } else {
                still_there.insert(path, stamp);
            }
        }
        seen = still_there;
        tokio::time::sleep(interval).await;
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
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

async fn handle(pipeline: &Pipeline, root: &Path, path: PathBuf) {
    let Some(name) = path.file_name().map(ToOwned::to_owned) else {
        return;
    };
    let outcome = match tokio::fs::read(&path).await {
        Ok(body) => pipeline.submit(body).await.map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot read file: {e}")),
    };
    let file_name = name.to_string_lossy().into_owned();
    match outcome {
        Ok(Submitted::Accepted(r) | Submitted::Duplicate(r)) => {
            tracing::info!(file = %file_name, uuid = %r.message_uuid, journal_index = r.journal_index, "drop folder file accepted");
            if let Err(e) = std::fs::rename(&path, root.join(DONE).join(&name)) {
                tracing::error!(file = %file_name, error = %e, "could not move accepted file to done/");
            }
        }
        Err(reason) => {
            tracing::warn!(file = %file_name, reason = %reason, "drop folder file refused");
            let error_file = root.join(FAILED).join(format!("{file_name}.error.txt"));
            let written = std::fs::write(&error_file, format!("{file_name}: {reason}\n"));
            if let Err(e) = written.and_then(|()| std::fs::rename(&path, root.join(FAILED).join(&name))) {
                tracing::error!(file = %file_name, error = %e, "could not move refused file to failed/");
            }
        }
    }
}
