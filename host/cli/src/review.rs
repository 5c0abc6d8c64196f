//! `review`: records that matched several citizens and wait for a clerk's decision.

use anyhow::Context as _;
use clap::Subcommand;
use efile_bridge_pipeline::Config;
use efile_bridge_store::{ReviewDecision, ReviewItem, Storage};

#[derive(Subcommand)]
pub(crate) enum ReviewCommand {
    /// Lists review items (open ones unless --all).
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Decided items too.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one review item with its candidates and the waiting record.
    Show {
        /// Review id.
        review: String,
        /// Only look in this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Files the record under one of the candidates.
    Assign {
        /// Review id.
        review: String,
        /// The candidate citizen id.
        #[arg(long)]
        citizen: String,
        /// Who decides (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
        /// Only look in this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The record is about another person: opens a new citizen file for it.
    NewCitizen {
        /// Review id.
        review: String,
        /// Who decides (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
        /// Only look in this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub(crate) fn operator(by: Option<&String>) -> anyhow::Result<String> {
    match by.cloned().or_else(|| std::env::var("USER").ok()).filter(|b| !b.trim().is_empty()) {
        Some(b) => Ok(format!("cli:{b}")),
        None => anyhow::bail!("say who decides with --by NAME (no login name in $USER)"),
    }
}

fn print_item(item: &ReviewItem) {
    let state = match &item.decision {
        None => "open".to_owned(),
        Some(d) => format!("{} {} by {} (entry {})", d.decision, d.citizen_id, d.by, d.journal_index),
    };
    println!(
        "{} {} message {} record {} {}: {} [{state}]",
        item.review_id, item.tenant, item.message_uuid, item.record_no, item.document_type, item.reason
    );
    for c in &item.candidates {
        println!(
            "    candidate {} {} born {} ({} documents)",
            c.citizen_id,
            c.display_name,
            c.birth_date.as_deref().unwrap_or("unknown"),
            c.documents
        );
    }
}

pub(crate) fn run(config: &Config, cmd: &ReviewCommand) -> anyhow::Result<()> {
    let store = efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    match cmd {
        ReviewCommand::List { tenant, all, json } => {
            let items = store.reviews(tenant.as_deref(), !all)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                items.iter().for_each(print_item);
                println!("{} review item(s){}", items.len(), if *all { "" } else { " open" });
            }
        }
        ReviewCommand::Show { review, tenant } => {
            let (item, record) =
                store.review(tenant.as_deref(), review)?.with_context(|| format!("no review item `{review}`"))?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"review": item, "record": record}))?);
        }
        ReviewCommand::Assign { review, citizen, by, tenant } => {
            let decision = ReviewDecision::Assign { citizen: citizen.clone() };
            let item = store.decide_review(tenant.as_deref(), review, decision, &operator(by.as_ref())?)?;
            print_item(&item);
        }
        ReviewCommand::NewCitizen { review, by, tenant } => {
            let item =
                store.decide_review(tenant.as_deref(), review, ReviewDecision::NewCitizen, &operator(by.as_ref())?)?;
            print_item(&item);
        }
    }
    Ok(())
}
