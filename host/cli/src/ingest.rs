//! `efile-bridge ingest`: the batch path, for backfills and for trying a config out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use efile_bridge_pipeline::store::{MessageState, Receipt};
use efile_bridge_pipeline::{Caller, Config, Pipeline, Submitted};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Reported;

/// Expands folders into the `.xml` files they contain (recursively, sorted).
fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot read folder {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files)?;
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            anyhow::bail!("{} does not exist", p.display());
        }
    }
    Ok(files)
}

pub(crate) async fn run(config: Config, paths: &[PathBuf], quiet: bool) -> anyhow::Result<()> {
    let files = collect(paths)?;
    let pipeline = Arc::new(Pipeline::start(config)?);
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(files.len() as u64 * 2) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("submitting");
    let mut refused = Vec::new();
    let mut waiting: Vec<(PathBuf, Receipt)> = Vec::new();
    let mut duplicates = 0usize;
    for path in &files {
        let outcome = match tokio::fs::read(path).await {
            // The operator's own tool: admin rights, tenants from the message headers.
            Ok(body) => pipeline.submit(body, &Caller::Admin).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot read file: {e}")),
        };
        match outcome {
            Ok(Submitted::Accepted(r)) => waiting.push((path.clone(), r)),
            Ok(Submitted::Duplicate(r)) => {
                duplicates += 1;
                waiting.push((path.clone(), r));
            }
            Err(reason) => {
                refused.push((path.clone(), reason));
                bar.inc(1);
            }
        }
        bar.inc(1);
    }
    bar.set_message("processing");
    let store = pipeline.store();
    let mut processed = pipeline.processed();
    let mut failed = Vec::new();
    let mut ok = 0usize;
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for (path, receipt) in waiting {
            let status = {
                let store = store.clone();
                let (tenant, uuid) = (receipt.tenant.clone(), receipt.message_uuid.clone());
                tokio::task::spawn_blocking(move || store.message_status(Some(&tenant), &uuid)).await??
            };
            match status.map(|s| (s.state, s.error)) {
                Some((MessageState::Accepted, _)) => still.push((path, receipt)),
                Some((MessageState::Processed, _)) => {
                    ok += 1;
                    bar.inc(1);
                }
                Some((MessageState::Failed, error)) => {
                    failed.push((path, error.unwrap_or_default()));
                    bar.inc(1);
                }
                None => anyhow::bail!("message {} vanished from the store", receipt.message_uuid),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            // Either a message finished or we look again; never a busy loop.
            let _ = tokio::time::timeout(Duration::from_secs(1), processed.changed()).await;
        }
    }
    bar.finish_and_clear();
    for (path, reason) in &refused {
        eprintln!("refused {}: {reason}", path.display());
    }
    for (path, reason) in &failed {
        eprintln!("failed {}: {reason}", path.display());
    }
    println!(
        "{} file(s): {ok} processed ({duplicates} already known), {} failed, {} refused",
        files.len(),
        failed.len(),
        refused.len()
    );
    if refused.is_empty() && failed.is_empty() { Ok(()) } else { Err(Reported.into()) }
}
