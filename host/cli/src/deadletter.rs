//! `deadletter`: what could not be done, and what an operator does about it.
//!
//! Two kinds: record versions a sink refused or that ran out of attempts (delivery dead
//! letters: redeliver or discard), and messages the adapter could not map (state `failed`,
//! with the sandbox's or the adapter's reason; they stay journaled, and `replay` with a fixed
//! adapter maps them).

use anyhow::Context as _;
use clap::Subcommand;
use efile_bridge_pipeline::Config;
use efile_bridge_store::{DeliveryState, DeliveryView, MessageState, Storage};

#[derive(Subcommand)]
pub(crate) enum DeadLetterCommand {
    /// Lists dead letters (deliveries, then messages that could not be mapped), newest first.
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Shows one, with every attempt's error.
    Show {
        /// Delivery id.
        delivery: String,
    },
    /// Queues it again (a running host picks it up within seconds).
    Redeliver {
        /// Delivery id.
        delivery: String,
        /// Who asks (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
    /// Gives it up for good.
    Discard {
        /// Delivery id.
        delivery: String,
        /// Why (recorded in the journal).
        #[arg(long)]
        reason: String,
        /// Who decides (recorded in the journal). Default: the login name.
        #[arg(long)]
        by: Option<String>,
    },
}

fn line(d: &DeliveryView) -> String {
    let last = d.errors.last().map(|e| e.error.as_str()).unwrap_or("-");
    format!(
        "{} {} sink {} document {} v{} [{}] {} attempt(s), last error: {last}",
        d.delivery_id,
        d.tenant,
        d.sink,
        d.document_id,
        d.version,
        d.state.as_str(),
        d.attempts
    )
}

pub(crate) fn run(config: &Config, cmd: &DeadLetterCommand) -> anyhow::Result<()> {
    let store = efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    match cmd {
        DeadLetterCommand::List { tenant, json } => {
            let dead = store.deliveries(tenant.as_deref(), Some(DeliveryState::Dead), 10_000)?;
            let unmapped = store.messages(tenant.as_deref(), Some(MessageState::Failed), 10_000)?;
            if *json {
                let all = serde_json::json!({"deliveries": dead, "unmapped_messages": unmapped});
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                dead.iter().for_each(|d| println!("{}", line(d)));
                println!("{} delivery dead letter(s)", dead.len());
                for m in &unmapped {
                    println!(
                        "{} {} message {} (entry {}): {}",
                        m.tenant,
                        m.message_type,
                        m.message_uuid,
                        m.journal_index,
                        m.error.as_deref().unwrap_or("-")
                    );
                }
                println!("{} message(s) that could not be mapped (fix the adapter, then `replay`)", unmapped.len());
            }
        }
        DeadLetterCommand::Show { delivery } => {
            let d = store.delivery(None, delivery)?.with_context(|| format!("no delivery `{delivery}`"))?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
        DeadLetterCommand::Redeliver { delivery, by } => {
            let d = store.redeliver(None, delivery, &crate::review::operator(by.as_ref())?)?;
            println!("{}", line(&d));
        }
        DeadLetterCommand::Discard { delivery, reason, by } => {
            let d = store.discard(None, delivery, &crate::review::operator(by.as_ref())?, reason)?;
            println!("{}", line(&d));
        }
    }
    Ok(())
}
