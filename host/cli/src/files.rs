//! `efile-bridge files`: what a clerk would see, on the terminal.

use clap::Subcommand;
use efile_bridge_pipeline::Config;
use efile_bridge_store::{CitizenFile, Storage};

#[derive(Subcommand)]
pub(crate) enum FilesCommand {
    /// Lists a tenant's citizens.
    List {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows one citizen's e-file: files, cases, documents.
    Show {
        /// Tenant AGS.
        #[arg(long)]
        tenant: String,
        /// Citizen id (from `files list`).
        citizen: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(config: &Config, cmd: &FilesCommand) -> anyhow::Result<()> {
    let store = efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)?;
    match cmd {
        FilesCommand::List { tenant, json } => {
            let citizens = store.citizens(tenant)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&citizens)?);
                return Ok(());
            }
            if citizens.is_empty() {
                println!("tenant {tenant} has no citizens yet");
            }
            for c in citizens {
                println!(
                    "{}  {:<40} {:<10} {} document(s)",
                    c.citizen_id,
                    c.display_name,
                    c.birth_date.as_deref().unwrap_or("-"),
                    c.documents
                );
            }
            Ok(())
        }
        FilesCommand::Show { tenant, citizen, json } => {
            let Some(file) = store.citizen_file(tenant, citizen)? else {
                anyhow::bail!(
                    "tenant {tenant} has no citizen `{citizen}` (see `efile-bridge files list --tenant {tenant}`)"
                );
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&file)?);
            } else {
                print!("{}", render(&file));
            }
            Ok(())
        }
    }
}

fn render(c: &CitizenFile) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "{} (born {})", c.display_name, c.birth_date.as_deref().unwrap_or("unknown"));
    let _ = writeln!(s, "  citizen {}  tenant {}", c.citizen_id, c.tenant);
    let _ = writeln!(s, "  identifiers: {}", c.identifiers.join(", "));
    for f in &c.files {
        let _ = writeln!(s, "  file {} [{}] {}", f.file_id, f.file_plan_code, f.subject);
        for case in &f.cases {
            let _ = writeln!(s, "    case {} ({})", case.case_id, case.case_type);
            for d in &case.documents {
                let _ =
                    writeln!(s, "      document {} v{}: {} ({})", d.document_id, d.version, d.title, d.document_type);
                let _ = writeln!(
                    s,
                    "        event {}  confidentiality {}  keep until {} ({})",
                    d.event_date.as_deref().unwrap_or("-"),
                    d.confidentiality,
                    d.retention_deadline.as_deref().unwrap_or("open"),
                    d.retention_rule
                );
                let _ = writeln!(s, "        from message {}", d.message_uuid);
                for (k, v) in &d.metadata {
                    let _ = writeln!(s, "        {k} = {v}");
                }
                for a in &d.attachments {
                    let _ = writeln!(s, "        attachment {a}");
                }
                for x in &d.deliveries {
                    let last = x.errors.last().map(|e| format!(", last error: {}", e.error)).unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "        delivery to {}: {} after {} attempt(s){last}",
                        x.sink,
                        x.state.as_str(),
                        x.attempts
                    );
                }
            }
        }
    }
    s
}
