//! Citizen resolution never guesses: a record whose name, birth date and birth place fit two
//! citizens waits as a review item until a clerk assigns it or opens a new citizen; each
//! decision is a journal entry that `verify` checks.

use efile_bridge_tests::fixture;

use crate::support::{Host, uuid_of, with_uuid};

const TENANT: &str = "09162000";

/// The online Anmeldung of Katharina Elisabeth Obermüller (born 1992-02-29 in Regensburg) with
/// another idNr (`None`: without one) and message UUID.
fn obermueller(id_nr: Option<&str>, uuid: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("anmeldung-1704-single-person")).expect("utf-8");
    let line = "<xmeld:idNr>02158049378</xmeld:idNr>";
    assert!(text.contains(line), "the fixture carries an idNr");
    let text = match id_nr {
        Some(id) => text.replace(line, &format!("<xmeld:idNr>{id}</xmeld:idNr>")),
        None => text.lines().filter(|l| !l.contains(line)).map(|l| format!("{l}\n")).collect(),
    };
    with_uuid(text.as_bytes(), uuid)
}

async fn post_json(host: &Host, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut req = host.client.post(format!("{}{path}", host.base)).json(&body);
    if let Some(t) = &host.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

async fn send(host: &Host, body: Vec<u8>) -> serde_json::Value {
    let (code, receipt) = host.post(body.clone()).await;
    assert_eq!(code, 202, "{receipt}");
    let status = host.wait_processed(&uuid_of(&body)).await;
    assert_eq!(status["state"], "processed", "{status}");
    status
}

fn documents_of(citizens: &[serde_json::Value], id: &str) -> u64 {
    citizens.iter().find(|c| c["citizen_id"] == id).and_then(|c| c["documents"].as_u64()).expect("citizen listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_match_waits_for_a_clerk_and_every_decision_is_journaled() {
    let host = Host::start_with(|c| c.tenants.retain(|t| t.ags == TENANT)).await;
    // Two people with the same name, birth date and birth place, told apart by their idNr.
    send(&host, obermueller(Some("02158049378"), "b1000000-0000-4000-8000-000000000001")).await;
    send(&host, obermueller(Some("08962367457"), "b1000000-0000-4000-8000-000000000002")).await;
    let citizens = host.citizens(TENANT).await;
    assert_eq!(citizens.len(), 2, "a different idNr is a different person: {citizens:?}");

    // A message without idNr fits both: it is journaled and processed, but filed nowhere.
    let status = send(&host, obermueller(None, "b1000000-0000-4000-8000-000000000003")).await;
    assert_eq!(status["documents"], serde_json::json!([]), "{status}");
    let waiting = status["reviews"].as_array().expect("reviews listed with the message").clone();
    assert_eq!(waiting.len(), 1, "{status}");
    let review = waiting[0].as_str().expect("review id").to_owned();
    let after = host.citizens(TENANT).await;
    assert_eq!(after.iter().map(|c| c["documents"].as_u64()).sum::<Option<u64>>(), Some(2), "{after:?}");

    let (code, list) = host.get(&format!("/v1/tenants/{TENANT}/reviews")).await;
    assert_eq!(code, 200, "{list}");
    let items = list.as_array().expect("array");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["review_id"], review.as_str());
    assert_eq!(items[0]["reason"], "name, birth date and birth place match 2 citizens");
    let mut candidates: Vec<String> =
        items[0]["candidates"].as_array().expect("candidates").iter().map(|c| c["citizen_id"].to_string()).collect();
    let mut expected: Vec<String> = citizens.iter().map(|c| c["citizen_id"].to_string()).collect();
    candidates.sort();
    expected.sort();
    assert_eq!(candidates, expected, "both people are candidates");
    let (code, one) = host.get(&format!("/v1/tenants/{TENANT}/reviews/{review}")).await;
    assert_eq!(code, 200, "{one}");
    assert_eq!(one["record"]["citizen"]["family_name"], "Obermüller", "the waiting record is shown: {one}");
    let attachment = &one["record"]["attachments"][0];
    assert!(attachment["name"].as_str().is_some_and(|n| n.ends_with(".pdf")), "{one}");
    assert!(attachment.get("data").is_none() && attachment["approximate_bytes"].as_u64() > Some(100), "{one}");

    // Only a candidate can be chosen; the body must say what is decided.
    let path = format!("/v1/tenants/{TENANT}/reviews/{review}");
    let (code, body) = post_json(&host, &path, serde_json::json!({"decision": "assign", "citizen": "nobody"})).await;
    assert_eq!((code, body["error"].as_str()), (422, Some("rejected")), "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("`nobody`")), "{body}");
    let (code, body) = post_json(&host, &path, serde_json::json!({"decision": "merge"})).await;
    assert_eq!(code, 400, "{body}");

    let chosen = citizens[1]["citizen_id"].as_str().expect("id").to_owned();
    let decision = serde_json::json!({"decision": "assign", "citizen": chosen, "clerk": "Sachbearbeiterin 7"});
    let (code, item) = post_json(&host, &path, decision.clone()).await;
    assert_eq!(code, 200, "{item}");
    assert_eq!(item["decision"]["decision"], "assigned");
    assert_eq!(item["decision"]["citizen_id"], chosen.as_str());
    assert_eq!(item["decision"]["by"], "open-mode clerk:Sachbearbeiterin 7");
    let (code, again) = post_json(&host, &path, decision).await;
    assert_eq!((code, again["error"].as_str()), (409, Some("conflict")), "decided once: {again}");

    let after = host.citizens(TENANT).await;
    assert_eq!(documents_of(&after, &chosen), 2, "the record went to the chosen citizen: {after:?}");
    assert_eq!(documents_of(&after, citizens[0]["citizen_id"].as_str().expect("id")), 1);
    let status = host.wait_processed("b1000000-0000-4000-8000-000000000003").await;
    assert_eq!(status["documents"][0]["citizen_id"], chosen.as_str(), "{status}");
    assert!(status.get("reviews").is_none(), "nothing waits any more: {status}");
    let (_, open) = host.get(&format!("/v1/tenants/{TENANT}/reviews")).await;
    assert_eq!(open, serde_json::json!([]));

    // Another such record belongs to someone else altogether: a new citizen file.
    let status = send(&host, obermueller(None, "b1000000-0000-4000-8000-000000000004")).await;
    let second = status["reviews"][0].as_str().expect("a second review").to_owned();
    let path = format!("/v1/tenants/{TENANT}/reviews/{second}");
    let (code, item) = post_json(&host, &path, serde_json::json!({"decision": "new-citizen"})).await;
    assert_eq!(code, 200, "{item}");
    assert_eq!(item["decision"]["decision"], "new-citizen");
    let after = host.citizens(TENANT).await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(documents_of(&after, item["decision"]["citizen_id"].as_str().expect("id")), 1);
    let (_, all) = host.get(&format!("/v1/tenants/{TENANT}/reviews?all=true")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");

    // The decisions are journal entries, and verify ties the documents to them.
    let report = crate::support::verify(&host).await.expect("verifies");
    assert_eq!(report.record_versions, 4, "{report:?}");
    let dir = host.stop().await;
    let kinds: Vec<String> = efile_bridge_tests::backend::raw_journal(dir.path())
        .into_iter()
        .filter(|e| e.kind == "review-decided")
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.len(), 2);
    let why = crate::store::tamper(&dir, &format!("DELETE FROM reviews WHERE public_id = '{second}'"));
    assert!(why.contains(&format!("review item {second}")) && why.contains("missing"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_of_one_tenant_cannot_see_or_decide_another_tenants_reviews() {
    use crate::tenancy::{FRANKFURT, MUENCHEN, with_tokens};
    let mut host = Host::start_with(with_tokens).await;
    host.token = Some(MUENCHEN.into());
    send(&host, obermueller(Some("02158049378"), "b2000000-0000-4000-8000-000000000001")).await;
    send(&host, obermueller(Some("08962367457"), "b2000000-0000-4000-8000-000000000002")).await;
    let status = send(&host, obermueller(None, "b2000000-0000-4000-8000-000000000003")).await;
    let review = status["reviews"][0].as_str().expect("review").to_owned();

    host.token = Some(FRANKFURT.into());
    let (code, body) = host.get(&format!("/v1/tenants/{TENANT}/reviews")).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = post_json(
        &host,
        &format!("/v1/tenants/{TENANT}/reviews/{review}"),
        serde_json::json!({"decision": "new-citizen"}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    // Under its own tenant, Frankfurt finds no such item, whatever the id.
    let (code, body) = host.get(&format!("/v1/tenants/06412000/reviews/{review}")).await;
    assert_eq!(code, 404, "{body}");
    let path = format!("/v1/tenants/06412000/reviews/{review}");
    let (code, body) = post_json(&host, &path, serde_json::json!({"decision": "new-citizen"})).await;
    assert_eq!(code, 404, "{body}");

    host.token = Some(MUENCHEN.into());
    let (code, list) = host.get(&format!("/v1/tenants/{TENANT}/reviews")).await;
    assert_eq!((code, list.as_array().map(Vec::len)), (200, Some(1)), "still open: {list}");
    let path = format!("/v1/tenants/{TENANT}/reviews/{review}");
    let (code, item) = post_json(&host, &path, serde_json::json!({"decision": "new-citizen"})).await;
    assert_eq!(code, 200, "{item}");
    assert_eq!(item["decision"]["by"], format!("tenant-token:{TENANT}"), "the credential is recorded");
}
