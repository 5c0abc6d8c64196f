//! xdomea sinks: one `FVDaten.SGOAblegen.0605` package (zip) per record version, written to a
//! folder or posted to a URL.
//!
//! The package is deterministic (`efile-bridge-xdomea`): a retry sends byte-identical bytes
//! under the same file name and `ProzessID`, so a receiver that already has it can tell. In a
//! folder, an existing file with the same name and bytes counts as delivered. Over HTTP, an
//! xdomea reply in the answer is read: `0629` (received) and `0630` (imported, or "processed
//! before") are success, a `0630` failure is retried when the receiver reports a passing
//! condition and is otherwise a dead letter with the receiver's reason.

use std::io::Write as _;
use std::path::Path;

use efile_bridge_store::DeliveryItem;
use efile_bridge_xdomea::{DocumentExport, Package, Recipient, Reply, Sender};

use crate::config::SinkKind;
use crate::delivery::{Failure, Sink};

fn package(sink: &Sink, item: &DeliveryItem) -> Result<Package, Failure> {
    let doc = DocumentExport {
        record: &item.record,
        citizen_id: &item.citizen_id,
        document_id: &item.document_id,
        version: item.version,
        message_uuid: &item.message_uuid,
        message_type: &item.message_type,
        original_xml: &item.original_xml,
        created_at: &item.received_at,
    };
    // The municipality's registration system sends; the sink is its e-file system.
    let sender = Sender { name: sink.tenant_name.clone(), kennung: format!("ags:{}", item.tenant) };
    let recipient = Recipient { name: sink.config.name.clone(), kennung: String::new() };
    efile_bridge_xdomea::sgo_ablegen(&doc, &sender, &recipient)
        .map_err(|e| Failure::permanent(format!("xdomea export: {e}")))
}

/// Writes `bytes` as `folder/name` so that the file is either absent or complete: a
/// temporary name, fsync, rename, fsync of the folder.
fn write_atomically(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<bool> {
    let target = folder.join(name);
    if let Ok(existing) = std::fs::read(&target) {
        if existing == bytes {
            return Ok(false);
        }
        return Err(std::io::Error::other(format!("{} exists with other content", target.display())));
    }
    std::fs::create_dir_all(folder)?;
    let part = folder.join(format!(".{name}.part"));
    let mut f = std::fs::File::create(&part)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&part, &target)?;
    std::fs::File::open(folder)?.sync_all()?;
    Ok(true)
}

pub(crate) async fn deliver(sink: &Sink, item: &DeliveryItem) -> Result<String, Failure> {
    let package = package(sink, item)?;
    match sink.config.kind {
        SinkKind::XdomeaFolder => {
            let folder = sink.config.folder.clone().unwrap_or_default();
            let name = package.file_name.clone();
            let written = tokio::task::spawn_blocking(move || write_atomically(&folder, &name, &package.zip))
                .await
                .map_err(|e| Failure::retry(e.to_string()))?
                .map_err(|e| Failure::retry(format!("cannot write {}: {e}", package.file_name)))?;
            Ok(if written {
                format!("written {}", package.file_name)
            } else {
                format!("{} was there", package.file_name)
            })
        }
        SinkKind::XdomeaHttp | SinkKind::Http => {
            let url = sink.config.url.as_deref().unwrap_or_default();
            let mut req = sink
                .client
                .post(url)
                .header("Idempotency-Key", &item.idempotency_key)
                .header(reqwest::header::CONTENT_TYPE, "application/zip")
                .header("Content-Disposition", format!("attachment; filename=\"{}\"", package.file_name))
                .body(package.zip.clone());
            if let Some(auth) = &sink.authorization {
                req = req.header(reqwest::header::AUTHORIZATION, auth);
            }
            let resp = req.send().await.map_err(|e| Failure::retry(crate::delivery::classify(&e)))?;
            let (status, body) = crate::delivery::answer(resp).await?;
            let text = String::from_utf8_lossy(&body);
            if !text.trim_start().starts_with('<') {
                return Ok(format!("HTTP {}", status.as_u16()));
            }
            let reply = efile_bridge_xdomea::parse_reply(&body)
                .map_err(|e| Failure::permanent(format!("HTTP {}, reply not understood: {e}", status.as_u16())))?;
            if reply.process_id() != package.message_id {
                return Err(Failure::permanent(format!(
                    "the reply answers process {}, not {}",
                    reply.process_id(),
                    package.message_id
                )));
            }
            match reply {
                Reply::Received { .. } => Ok(format!("HTTP {}, 0629 received", status.as_u16())),
                Reply::Imported { already_processed, .. } => Ok(format!(
                    "HTTP {}, 0630 imported{}",
                    status.as_u16(),
                    if already_processed { " (processed before)" } else { "" }
                )),
                Reply::Rejected { reason, transient: true, .. } => Err(Failure::retry(format!("0630: {reason}"))),
                Reply::Rejected { reason, transient: false, .. } => Err(Failure::permanent(format!("0630: {reason}"))),
            }
        }
    }
}
