//! Journal commands: verify, receipts, checkpoints, retention and holds.

use std::path::Path;

use anyhow::Context as _;
use clap::Subcommand;
use efile_bridge_pipeline::Config;
use efile_bridge_store::journal::checkpoint::PublicKey;
use efile_bridge_store::journal::receipt::Receipt;
use efile_bridge_store::{Storage, Store, VerifyStage};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Reported;

#[derive(Subcommand)]
pub(crate) enum RetentionCommand {
    /// Deletes payloads whose retention deadline passed, each with a journal entry.
    Run {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// The day to judge deadlines by (YYYY-MM-DD). Default: today (UTC).
        #[arg(long)]
        today: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum HoldCommand {
    /// Places a legal hold on a citizen's file.
    Add {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// Citizen id.
        citizen: String,
        /// Why (file reference of the proceedings; no personal data).
        #[arg(long)]
        reason: String,
    },
    /// Lifts a legal hold.
    Remove {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// Citizen id.
        citizen: String,
    },
    /// Lists active holds.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

fn open(config: &Config) -> anyhow::Result<Store> {
    efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))
}

pub(crate) fn verify(config: &Config, quiet: bool) -> anyhow::Result<()> {
    let store = open(config)?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:10} [{elapsed_precise}] {bar:40} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |stage: VerifyStage| match stage {
        VerifyStage::Entries(done, total) => {
            bar.set_message("entries");
            bar.set_length(total);
            bar.set_position(done);
        }
        VerifyStage::Payloads(done, total) => {
            bar.set_message("payloads");
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let result = efile_bridge_store::verify_and_record(&store, "cli", &progress);
    bar.finish_and_clear();
    match result {
        Ok(r) => {
            let mb = r.payload_bytes as f64 / 1e6;
            println!(
                "journal ok: {} entries, {} checkpoints, {} consistency steps, {} messages, {} record versions",
                r.entries, r.checkpoints, r.consistency_steps, r.messages, r.record_versions
            );
            println!(
                "payloads ok: {} rehashed ({mb:.1} MB in {:.2} s, {:.0} MB/s), {} deleted with protocol; total {:.2} s",
                r.payloads,
                r.payload_seconds,
                if r.payload_seconds > 0.0 { mb / r.payload_seconds } else { 0.0 },
                r.deleted_payloads,
                r.seconds
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("verification failed: {e}");
            Err(Reported.into())
        }
    }
}

pub(crate) fn receipt(config: &Config, tenant: &str, uuid: &str) -> anyhow::Result<()> {
    let store = open(config)?;
    let receipt = store
        .receipt(Some(tenant), &uuid.to_ascii_lowercase())?
        .with_context(|| format!("tenant {tenant} has no message {uuid}"))?;
    println!("{}", serde_json::to_string_pretty(&receipt)?);
    Ok(())
}

pub(crate) fn verify_receipt(receipt: &Path, key: &Path, message: Option<&Path>) -> anyhow::Result<()> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let receipt_bytes = read(receipt)?;
    let receipt: Receipt =
        serde_json::from_slice(&receipt_bytes).with_context(|| format!("{} is not a receipt", receipt.display()))?;
    let key_text = String::from_utf8(read(key)?).with_context(|| format!("{} is not text", key.display()))?;
    let key =
        PublicKey::from_json(&key_text).map_err(|e| anyhow::anyhow!("{} is not a public key: {e}", key.display()))?;
    let body = message.map(read).transpose()?;
    match receipt.verify(&key, body.as_deref()) {
        Ok(v) => {
            println!(
                "receipt ok: entry {} ({}) is in the journal of {} (tree size {}, checkpoint signed {}){}",
                v.index,
                receipt.entry.kind,
                key.origin,
                v.tree_size,
                v.checkpoint_time,
                if v.payload_checked { "; the message matches" } else { "" }
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("receipt does not verify: {e}");
            Err(Reported.into())
        }
    }
}

pub(crate) fn checkpoint(config: &Config) -> anyhow::Result<()> {
    match open(config)?.checkpoint()? {
        Some(cp) => println!("{}", serde_json::to_string_pretty(&cp)?),
        None => println!("the journal is empty; nothing to sign"),
    }
    Ok(())
}

pub(crate) fn public_key(config: &Config) -> anyhow::Result<()> {
    print!("{}", open(config)?.public_key().to_json());
    Ok(())
}

fn today_utc() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = d as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

pub(crate) fn retention(config: &Config, cmd: &RetentionCommand) -> anyhow::Result<()> {
    let RetentionCommand::Run { dry_run, today } = cmd;
    let today = today.clone().unwrap_or_else(today_utc);
    if !(today.len() == 10 && today.as_bytes()[4] == b'-' && today.as_bytes()[7] == b'-') {
        anyhow::bail!("--today `{today}` is not a date (YYYY-MM-DD)");
    }
    let deleted = open(config)?.retention_run(&today, *dry_run)?;
    for d in &deleted {
        let entry = d.journal_index.map(|i| format!(" (entry {i})")).unwrap_or_default();
        println!(
            "{} {} {} {}: {}{entry}",
            if *dry_run { "would delete" } else { "deleted" },
            d.tenant,
            d.what,
            d.id,
            d.rule
        );
    }
    println!("{} payload(s) {} as of {today}", deleted.len(), if *dry_run { "due for deletion" } else { "deleted" });
    Ok(())
}

pub(crate) fn hold(config: &Config, cmd: &HoldCommand) -> anyhow::Result<()> {
    let store = open(config)?;
    match cmd {
        HoldCommand::Add { tenant, citizen, reason } => {
            let h = store.hold_add(tenant, citizen, reason)?;
            println!("hold on {} {} since entry {}: {}", h.tenant, h.citizen_id, h.added_index, h.reason);
        }
        HoldCommand::Remove { tenant, citizen } => {
            if store.hold_remove(tenant, citizen)? {
                println!("hold on {tenant} {citizen} lifted");
            } else {
                println!("{tenant} {citizen} had no active hold");
            }
        }
        HoldCommand::List { tenant } => {
            for h in store.holds(tenant.as_deref())? {
                println!("{} {} since entry {}: {}", h.tenant, h.citizen_id, h.added_index, h.reason);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_plausible_date() {
        let t = super::today_utc();
        assert!(t.as_str() > "2025-01-01" && t.len() == 10, "{t}");
    }
}
