//! Receipts, checkpoints and proofs over HTTP, checked with nothing but the public key; and
//! deletion with protocol that leaves every proof valid.

use efile_bridge_store::journal::checkpoint::{Checkpoint, PublicKey};
use efile_bridge_store::journal::merkle::verify_consistency;
use efile_bridge_store::journal::parse_hash;
use efile_bridge_store::journal::receipt::Receipt;
use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

async fn public_key(host: &Host) -> PublicKey {
    let text =
        host.client.get(format!("{}/v1/public-key", host.base)).send().await.expect("get").text().await.expect("text");
    PublicKey::from_json(&text).expect("public key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_from_the_api_verifies_offline_and_checkpoints_stay_consistent() {
    let host = Host::start().await;
    let first = fixture("anmeldung-0201-single-person");
    assert_eq!(host.post(first.clone()).await.0, 202);
    host.wait_processed(&uuid_of(&first)).await;

    let (code, body) = host.get(&format!("/v1/messages/{}/proof", uuid_of(&first))).await;
    assert_eq!(code, 200, "{body}");
    let receipt: Receipt = serde_json::from_value(body).expect("receipt");
    let key = public_key(&host).await;
    let verified = receipt.verify(&key, Some(&first)).expect("the receipt verifies");
    assert!(verified.payload_checked);
    assert!(receipt.verify(&key, Some(&fixture("anmeldung-0201-two-households"))).is_err());
    let old: Checkpoint = receipt.checkpoint.clone();

    // More messages, a new checkpoint: the new tree extends the old one.
    for uuid in ["aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"] {
        let body = with_uuid(&fixture("anmeldung-0201-family-of-three"), uuid);
        assert_eq!(host.post(body).await.0, 202);
        host.wait_processed(uuid).await;
    }
    let resp = host.client.post(format!("{}/v1/checkpoints", host.base)).send().await.expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    let new: Checkpoint = resp.json().await.expect("checkpoint");
    new.verify(&key).expect("signed");
    assert!(new.tree_size > old.tree_size);
    let (code, latest) = host.get("/v1/checkpoints/latest").await;
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_value::<Checkpoint>(latest).expect("cp"), new);
    let (code, at) = host.get(&format!("/v1/checkpoints/{}", old.tree_size)).await;
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_value::<Checkpoint>(at).expect("cp"), old);

    let (code, proof) =
        host.get(&format!("/v1/checkpoints/consistency?from={}&to={}", old.tree_size, new.tree_size)).await;
    assert_eq!(code, 200, "{proof}");
    let hashes: Vec<_> = proof["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| parse_hash(h.as_str().expect("hex")).expect("hash"))
        .collect();
    verify_consistency(old.tree_size, new.tree_size, &old.root_hash, &new.root_hash, &hashes).expect("consistent");
    let mut forged = new.root_hash;
    forged[5] ^= 0x40;
    assert!(verify_consistency(old.tree_size, new.tree_size, &old.root_hash, &forged, &hashes).is_err());

    // The old receipt still verifies against its checkpoint; a fresh one against the new.
    receipt.verify(&key, None).expect("old receipt");
    let (code, _) = host.get("/v1/checkpoints/consistency?from=1&to=99999").await;
    assert_eq!(code, 404);
    let (code, _) = host.get("/v1/checkpoints/abc").await;
    assert_eq!(code, 400);
    let (code, _) = host.get("/v1/messages/00000000-0000-4000-8000-000000000000/proof").await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_with_protocol_respects_holds_and_keeps_proofs_valid() {
    let host = Host::start().await;
    let single = fixture("anmeldung-0201-single-person");
    let family = fixture("anmeldung-0201-family-of-three");
    for body in [&single, &family] {
        assert_eq!(host.post(body.clone()).await.0, 202);
        host.wait_processed(&uuid_of(body)).await;
    }
    let store = host.pipeline.store();
    let key = store.public_key();
    let receipt = store.receipt(None, &uuid_of(&single)).expect("receipt").expect("exists");
    let citizens = host.citizens("09162000").await;
    let brandl = citizens.iter().find(|c| c["display_name"] == "Brandl, Katharina Maria").expect("brandl");
    let brandl = brandl["citizen_id"].as_str().expect("id").to_owned();
    let family_member = citizens.iter().find(|c| c["display_name"] != "Brandl, Katharina Maria").expect("family");
    let family_member = family_member["citizen_id"].as_str().expect("id").to_owned();

    // Nothing is due before the deadline (2031-12-31).
    assert!(store.retention_run("2031-12-31", true).expect("dry run").is_empty());
    // A hold keeps one family member's record, and so the family's message body.
    store.hold_add("09162000", &family_member, "Az. 4 K 12/31").expect("hold");
    let planned = store.retention_run("2032-01-01", true).expect("dry run");
    assert_eq!(planned.iter().filter(|d| d.what == "record-version").count(), 3, "{planned:?}");
    assert_eq!(planned.iter().filter(|d| d.what == "message-body").count(), 1, "{planned:?}");
    assert!(planned.iter().all(|d| d.journal_index.is_none()));
    // The dry run changed nothing.
    assert!(crate::support::verify(&host).await.expect("verify").deleted_payloads == 0);

    let done = store.retention_run("2032-01-01", false).expect("run");
    assert_eq!(done.len(), 4);
    assert!(done.iter().all(|d| d.journal_index.is_some()));
    let report = crate::support::verify(&host).await.expect("proofs stay valid after deletion");
    assert_eq!(report.deleted_payloads, 4);
    // The file still shows the record, marked as deleted; the held one keeps its content.
    let (_, file) = host.get(&format!("/v1/tenants/09162000/citizens/{brandl}")).await;
    let doc = &file["files"][0]["cases"][0]["documents"][0];
    assert_eq!(doc["content_deleted"], true, "{doc}");
    assert!(doc["metadata"].as_array().expect("metadata").is_empty());
    let (_, held) = host.get(&format!("/v1/tenants/09162000/citizens/{family_member}")).await;
    assert_eq!(held["files"][0]["cases"][0]["documents"][0]["content_deleted"], false);
    // The document routes: the bytes are gone (410), the filing and its journal proof are not.
    let id = doc["document_id"].as_str().expect("id");
    let path = format!("/v1/tenants/09162000/documents/{id}");
    for part in ["/original", "/attachments/0"] {
        let (code, body) = host.get(&format!("{path}{part}")).await;
        assert_eq!((code, body["error"].as_str()), (410, Some("deleted")), "{part}: {body}");
    }
    let (code, detail) = host.get(&path).await;
    assert_eq!((code, detail["document"]["content_deleted"].as_bool()), (200, Some(true)), "{detail}");
    let (code, proof) = host.get(&format!("{path}/proof")).await;
    assert_eq!(code, 200, "{proof}");
    let proof: efile_bridge_store::journal::receipt::Receipt =
        serde_json::from_value(proof["receipt"].clone()).expect("receipt");
    proof.verify(&key, None).expect("the proof that the deleted record existed stays valid");
    // The receipt of the deleted message still proves it was accepted; the bytes are gone.
    receipt.verify(&key, None).expect("old receipt still verifies");
    let fresh = store.receipt(None, &uuid_of(&single)).expect("receipt").expect("exists");
    fresh.verify(&key, Some(&single)).expect("the digest still matches the original message");

    // Lifting the hold lets the next run take the rest; nothing is deleted twice.
    assert!(store.hold_remove("09162000", &family_member).expect("remove"));
    let rest = store.retention_run("2032-01-01", false).expect("run");
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(store.retention_run("2032-01-01", false).expect("run").is_empty());
    let report = crate::support::verify(&host).await.expect("verify");
    assert_eq!(report.deleted_payloads, 6);
    assert!(store.holds(None).expect("holds").is_empty());
}
