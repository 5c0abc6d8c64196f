//! The drop folder: files are taken only when complete, accepted ones go to `done/`,
//! refused ones to `failed/` with a reason, and files left in `processing/` by a crash are
//! taken again at start.

use std::path::Path;
use std::time::{Duration, Instant};

use efile_bridge_server::drop_folder::{DONE, FAILED, INBOX, PROCESSING, prepare};
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

async fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_taken_atomically_and_sorted_into_done_and_failed() {
    let host = Host::start().await;
    let drop = host.dir.path().join("drop").join("09162000");
    prepare(&drop).expect("prepare");
    // Left in processing/ by a crash mid-batch: picked up again.
    let crashed = with_uuid(&fixture("anmeldung-0201-single-person"), "5f0e8a3e-8f1b-4c7e-9a0d-2b1c3d4e5f60");
    std::fs::write(drop.join(PROCESSING).join("crashed.xml"), &crashed).expect("write");
    let root = host.dir.path().join("drop");
    let watcher =
        tokio::spawn(efile_bridge_server::drop_folder::run(host.pipeline.clone(), root, Duration::from_millis(20)));

    // A half-written file under a temporary name is left alone until it is renamed.
    let family = fixture("anmeldung-0201-family-of-three");
    let part = drop.join(INBOX).join("family.xml.part");
    std::fs::write(&part, &family[..family.len() / 2]).expect("write");
    std::fs::write(drop.join(INBOX).join("broken.xml"), b"<not-closed>").expect("write");
    wait_for(&drop.join(FAILED).join("broken.xml.error.txt")).await;
    assert!(part.exists(), "a .part file was taken");
    std::fs::write(&part, &family).expect("write");
    std::fs::rename(&part, drop.join(INBOX).join("family.xml")).expect("rename");

    wait_for(&drop.join(DONE).join("family.xml")).await;
    wait_for(&drop.join(DONE).join("crashed.xml")).await;
    let reason = std::fs::read_to_string(drop.join(FAILED).join("broken.xml.error.txt")).expect("reason");
    assert!(reason.starts_with("broken.xml: "), "{reason}");
    assert!(reason.contains("not well-formed") || reason.contains("malformed") || reason.contains("end"), "{reason}");
    assert!(drop.join(FAILED).join("broken.xml").exists());
    assert_eq!(std::fs::read_dir(drop.join(INBOX)).expect("inbox").count(), 0);
    assert_eq!(std::fs::read_dir(drop.join(PROCESSING)).expect("processing").count(), 0);

    let status = host.wait_processed(&uuid_of(&family)).await;
    assert_eq!(status["documents"].as_array().expect("docs").len(), 3);
    host.wait_processed("5f0e8a3e-8f1b-4c7e-9a0d-2b1c3d4e5f60").await;
    assert_eq!(host.citizens("09162000").await.len(), 4);
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_another_tenants_folder_is_refused() {
    // München's message, dropped into the folder of a tenant that is neither reader nor author.
    let host = Host::start_with(|c| {
        let mut other = c.tenants[0].clone();
        other.ags = "09000009".into();
        other.name = "Anderswo".into();
        c.tenants.push(other);
    })
    .await;
    let root = host.dir.path().join("drop");
    let other = root.join("09000009");
    prepare(&other).expect("prepare");
    let watcher =
        tokio::spawn(efile_bridge_server::drop_folder::run(host.pipeline.clone(), root, Duration::from_millis(20)));
    let xml = fixture("anmeldung-0201-single-person");
    std::fs::write(other.join(INBOX).join("wrong.xml"), &xml).expect("write");
    wait_for(&other.join(FAILED).join("wrong.xml.error.txt")).await;
    let reason = std::fs::read_to_string(other.join(FAILED).join("wrong.xml.error.txt")).expect("reason");
    assert!(reason.contains("tenant 09000009 may only post messages it reads or wrote"), "{reason}");
    let (code, _) = host.get(&format!("/v1/messages/{}", uuid_of(&xml))).await;
    assert_eq!(code, 404, "the refused file was stored");
    watcher.abort();
}
