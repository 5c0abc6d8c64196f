//! The routes behind the web console (also plain API calls): who the caller is, one
//! document with its original message, attachments and journal proof, the operator's
//! message flow, checkpoint list and `verify`, and the console's static files.
//!
//! Tenant isolation: every document read names the tenant in its query, and a document above
//! a clerk's clearance is answered as if it did not exist (404, not 403, so the answer does
//! not confirm that a confidential document is there).

use bytes::Bytes;
use efile_bridge_pipeline::{Caller, Pipeline};
use efile_bridge_store::{DocumentContent, StoreError, confidentiality_of};
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{Body, blocking, error, json};

/// `GET /v1/session`: what the console shows this caller.
pub(super) fn session(pipeline: &Pipeline, caller: &Caller) -> Response<Body> {
    #[derive(Serialize)]
    struct Tenant {
        ags: String,
        name: String,
    }
    let (role, tenant, name) = match caller {
        Caller::Admin => ("admin", None, None),
        Caller::Open => ("open", None, None),
        Caller::Tenant(t) => ("tenant", Some(t.clone()), None),
        Caller::Clerk { ags, name, .. } => ("clerk", Some(ags.clone()), Some(name.clone())),
    };
    let tenants: Vec<Tenant> = pipeline
        .tenants()
        .into_iter()
        .filter(|t| caller.may_read(&t.ags))
        .map(|t| Tenant { ags: t.ags, name: t.name })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "role": role,
            "tenant": tenant,
            "name": name,
            "clearance": caller.clearance().as_str(),
            "tenants": tenants,
        }),
    )
}

/// What of a document is asked for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    Detail,
    Original,
    Attachment(usize),
}

/// `GET /v1/tenants/{ags}/documents/{id}/proof`; the router has checked that the caller may
/// read `ags`.
pub(super) async fn proof(pipeline: &Pipeline, caller: &Caller, ags: String, id: String) -> Response<Body> {
    let store = pipeline.store();
    let clearance = caller.clearance();
    blocking(move || {
        Ok(match store.document_proof(&ags, &id)? {
            Some(proof) if confidentiality_of(&proof.confidentiality) <= clearance => json(StatusCode::OK, &proof),
            _ => error(StatusCode::NOT_FOUND, "not_found", format!("tenant {ags} has no document {id}")),
        })
    })
    .await
}

/// `GET /v1/tenants/{ags}/documents/{id}[/original|/attachments/{n}]`; the router has checked
/// that the caller may read `ags`.
pub(super) async fn document(
    pipeline: &Pipeline,
    caller: &Caller,
    ags: String,
    id: String,
    part: Part,
) -> Response<Body> {
    let store = pipeline.store();
    let clearance = caller.clearance();
    blocking(move || {
        let missing = || error(StatusCode::NOT_FOUND, "not_found", format!("tenant {ags} has no document {id}"));
        let deleted = || {
            error(
                StatusCode::GONE,
                "deleted",
                format!("the content of document {id} was deleted at the end of its retention period"),
            )
        };
        // The parts that need the bytes read them; the detail reads the filing only.
        let (detail, content) = match part {
            Part::Original | Part::Attachment(_) => match store.document_content(&ags, &id)? {
                Some(DocumentContent { detail, record, original }) => (detail, Some((record, original))),
                None => return Ok(missing()),
            },
            Part::Detail => match store.document(&ags, &id)? {
                Some(detail) => (detail, None),
                None => return Ok(missing()),
            },
        };
        if confidentiality_of(&detail.document.confidentiality) > clearance {
            return Ok(missing());
        }
        Ok(match (part, content) {
            (Part::Original, Some((_, Some(xml)))) => {
                download(xml, "application/xml; charset=utf-8", &format!("{}.xml", detail.message.uuid))
            }
            (Part::Attachment(n), Some((Some(mut r), _))) if n < r.attachments.len() => {
                let a = r.attachments.swap_remove(n);
                download(a.data, &a.media_type, &a.name)
            }
            (Part::Attachment(n), Some((Some(r), _))) => error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("document {id} has {} attachments; there is no number {n}", r.attachments.len()),
            ),
            (Part::Original | Part::Attachment(_), _) => deleted(),
            (Part::Detail, _) => json(StatusCode::OK, &detail),
        })
    })
    .await
}

/// Bytes from a citizen's message as a download: never rendered by the browser as a page.
fn download(body: Vec<u8>, media_type: &str, name: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    let media = HeaderValue::from_str(media_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, media);
    // Only printable ASCII in the quoted name; the console names the file itself.
    let safe: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    resp
}

/// `GET /v1/admin/flow`: every configured tenant, also those without messages yet.
pub(super) async fn flow(pipeline: &Pipeline) -> Response<Body> {
    let store = pipeline.store();
    let tenants: Vec<(String, String)> = pipeline.tenants().into_iter().map(|t| (t.ags, t.name)).collect();
    blocking(move || {
        let since = time::OffsetDateTime::now_utc() - time::Duration::hours(24);
        let since = since
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Verify(e.to_string()))?;
        let flows = store.message_flow(&since, 500)?;
        let out: Vec<serde_json::Value> = tenants
            .into_iter()
            .map(|(ags, name)| {
                let mut v = match flows.iter().find(|f| f.tenant == ags) {
                    Some(f) => serde_json::to_value(f).unwrap_or_default(),
                    None => serde_json::json!({"tenant": ags, "accepted": 0, "processed": 0, "failed": 0,
                        "received_24h": 0, "latency_ms": null, "last_error": null}),
                };
                v["name"] = name.into();
                v
            })
            .collect();
        Ok(json(StatusCode::OK, &out))
    })
    .await
}

/// `GET /v1/admin/checkpoints?limit=`.
pub(super) async fn checkpoints(pipeline: &Pipeline, limit: u32) -> Response<Body> {
    let store = pipeline.store();
    blocking(move || store.checkpoints(limit.min(1000)).map(|c| json(StatusCode::OK, &c))).await
}

/// `GET /v1/admin/verify`: the latest outcome (from any host or the CLI), or that one is
/// running here.
pub(super) async fn last_verify(pipeline: &Pipeline) -> Response<Body> {
    let store = pipeline.store();
    let running = pipeline.verifying();
    blocking(move || {
        let mut v = match store.last_verify()? {
            Some(run) => serde_json::to_value(run).unwrap_or_default(),
            None => serde_json::json!({"state": "never", "report": null, "error": null}),
        };
        if running {
            v["state"] = "running".into();
        }
        Ok(json(StatusCode::OK, &v))
    })
    .await
}

/// `POST /v1/admin/verify`: starts one in the background.
pub(super) fn start_verify(pipeline: &Pipeline) -> Response<Body> {
    if pipeline.start_verify() {
        json(StatusCode::ACCEPTED, &serde_json::json!({"state": "running"}))
    } else {
        error(StatusCode::CONFLICT, "running", "a verify is running on this host already")
    }
}

/// `GET /console`, `/console/…`: the app's files, with a strict content security policy.
pub(super) fn console(path: &str) -> Response<Body> {
    let Some(rest) = path.strip_prefix("/console/") else {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
        resp.headers_mut().insert(LOCATION, HeaderValue::from_static("/console/"));
        return resp;
    };
    let Some(asset) = efile_bridge_console::asset(rest) else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no console file {rest}"));
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(asset.body)));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(efile_bridge_console::CSP),
    );
    for (name, value) in efile_bridge_console::SECURITY_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    resp
}
